// Compiled for neon only (CMakeLists.txt); called only where dispatch.h says the CPU has it.
#include "core/kernels/peak.h"
#include "core/kernels/peak_simd.h"

namespace kd::kernels::neon {
double fma_loop(int64_t iters) { return simd::fma_loop<xsimd::neon64>(iters); }
}  // namespace kd::kernels::neon
