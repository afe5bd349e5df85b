// Compiled for avx2 only (CMakeLists.txt); called only where dispatch.h says the CPU has it.
#include "core/kernels/peak.h"
#include "core/kernels/peak_simd.h"

namespace kd::kernels::avx2 {
double fma_loop(int64_t iters) { return simd::fma_loop<xsimd::fma3<xsimd::avx2>>(iters); }
}  // namespace kd::kernels::avx2
