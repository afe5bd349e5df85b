// Thread count for OpenMP regions, settable at run time (kd --threads N).
#pragma once

namespace kd {
void set_threads(int n);  // n >= 1
int num_threads();
}  // namespace kd
