// Thread count for OpenMP regions, settable at run time (kd --threads N).
#pragma once
#include <cstdint>

namespace kd {

// Below about this many elements of work, an op runs on one thread: a parallel region's fork and
// join cost more than the work (a microsecond or two on an idle machine, and up to milliseconds
// when the other threads must first be woken on a busy one), which dominated batch-1 inference.
inline constexpr int64_t kParallelMinWork = int64_t(1) << 15;
void set_threads(int n);  // n >= 1
int num_threads();
}  // namespace kd
