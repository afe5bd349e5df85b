// Thread count for OpenMP regions, settable at run time (kd --threads N).
#pragma once
#include <omp.h>

#include <cstdint>

namespace kd {

// Below about this many elements of work, an op runs on one thread: a parallel region's fork and
// join cost more than the work (a microsecond or two on an idle machine, and up to milliseconds
// when the other threads must first be woken on a busy one), which dominated batch-1 inference.
inline constexpr int64_t kParallelMinWork = int64_t(1) << 15;
void set_threads(int n);  // n >= 1
int num_threads();

// body(i) for i in [0, n), statically split over the OpenMP team when `parallel` holds (and this
// is not already inside a parallel region), else a plain loop on this thread that never enters
// the OpenMP runtime: a region with if(false) still costs libgomp a futex call or two (~1.5 us
// in this VM; 18 per student batch-1 pass).
template <typename Body>
void parallel_for(int64_t n, bool parallel, Body&& body) {
  if (!parallel || n < 2 || omp_in_parallel()) {
    for (int64_t i = 0; i < n; ++i) body(i);
    return;
  }
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) body(i);
}
// body(begin, end) over [0, n) cut into one contiguous range per thread when `parallel` holds
// (same conditions as parallel_for), else body(0, n) on this thread. For element-wise loops:
// the body's own loop over a range, with its pointers in locals, vectorizes; a per-element
// lambda called through parallel_for did not (ReLU's backward ran 4x slower that way).
template <typename Body>
void parallel_for_range(int64_t n, bool parallel, Body&& body) {
  if (!parallel || n < 2 || omp_in_parallel()) {
    body(int64_t(0), n);
    return;
  }
#pragma omp parallel
  {
    const int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
    const int64_t begin = n * t / nt, end = n * (t + 1) / nt;
    if (begin < end) body(begin, end);
  }
}
}  // namespace kd
