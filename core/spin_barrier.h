// A barrier for the threads of one OpenMP team that waits by spinning on an atomic (then
// yielding), whatever OMP_WAIT_POLICY says. Under OMP_WAIT_POLICY=passive (what a shared machine
// wants) every `#pragma omp barrier` puts the waiting thread to sleep and wakes it through the
// kernel: the teacher's batch-1 convolutions, two barriers each, took 2.2 ms a pass that way
// against 1.7 ms without the barriers (about 16 us a barrier in this VM). A phase between two
// barriers here lasts microseconds, so spinning is the cheaper wait; after kSpinsBeforeYield
// rounds a waiter yields its core, so an oversubscribed machine still makes progress.
#pragma once
#include <omp.h>

#include <atomic>
#include <thread>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace kd {

class SpinBarrier {
 public:
  explicit SpinBarrier(int threads) : threads_(threads) {}
  SpinBarrier(const SpinBarrier&) = delete;
  SpinBarrier& operator=(const SpinBarrier&) = delete;

  // Returns once all `threads` threads have called it (reusable: phase after phase).
  void wait() {
    // The generation is read before arriving: the last thread to arrive resets the count and
    // then moves the generation on, so a waiter that sees the new generation also sees the count
    // reset (release / acquire), and a fast thread's next wait() cannot count into this phase.
    const unsigned gen = generation_.load(std::memory_order_acquire);
    if (arrived_.fetch_add(1, std::memory_order_acq_rel) + 1 == threads_) {
      arrived_.store(0, std::memory_order_relaxed);
      generation_.store(gen + 1, std::memory_order_release);
      return;
    }
    for (int spins = 0; generation_.load(std::memory_order_acquire) == gen; ++spins) {
      if (spins < kSpinsBeforeYield)
        relax();
      else
        std::this_thread::yield();
    }
  }

 private:
  static constexpr int kSpinsBeforeYield = 4096;
  static void relax() {
#if defined(__x86_64__)
    _mm_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
  }
  const int threads_;
  std::atomic<int> arrived_{0};
  std::atomic<unsigned> generation_{0};
};

// body(t, nt, barrier) on every thread t of a team of `threads` OpenMP threads, sharing one
// SpinBarrier. Should the runtime give a smaller team (whose barrier would never open), thread 0
// alone runs body(0, 1, a barrier of one), which must then do all the work itself.
template <class Body>
void run_team(int threads, Body&& body) {
  SpinBarrier barrier(threads);
#pragma omp parallel num_threads(threads)
  {
    if (omp_get_num_threads() == threads) {
      body(omp_get_thread_num(), threads, barrier);
    } else if (omp_get_thread_num() == 0) {
      SpinBarrier alone(1);
      body(0, 1, alone);
    }
  }
}

}  // namespace kd
