// SpinBarrier (core/spin_barrier.h): no thread leaves a phase before every thread has finished
// it, phase after phase, with more threads than this machine has cores (so waiters must yield).
#include <doctest/doctest.h>
#include <omp.h>

#include <atomic>
#include <vector>

#include "core/spin_barrier.h"

TEST_CASE("SpinBarrier: every thread's writes of a phase are seen by all after the barrier") {
  for (int threads : {1, 2, 3, 5}) {
    INFO(threads << " threads");
    constexpr int kPhases = 300;
    kd::SpinBarrier barrier(threads);
    std::vector<std::atomic<int>> done(static_cast<size_t>(threads));
    for (auto& d : done) d.store(0);
    std::atomic<int> early{0}, team{0};
#pragma omp parallel num_threads(threads)
    {
      team.store(omp_get_num_threads());
      const int t = omp_get_thread_num();
      for (int phase = 1; phase <= kPhases; ++phase) {
        done[size_t(t)].store(phase, std::memory_order_relaxed);
        barrier.wait();
        // Every thread has written this phase; none can have written the next one yet, since
        // that needs this thread at the next barrier too.
        for (int u = 0; u < threads; ++u)
          if (done[size_t(u)].load(std::memory_order_relaxed) != phase) early.fetch_add(1);
        barrier.wait();
      }
    }
    REQUIRE(team.load() == threads);
    CHECK(early.load() == 0);
  }
}
