// Compiled for avx512 only (CMakeLists.txt); called only where dispatch.h says the CPU has it.
#include "core/kernels/peak.h"
#include "core/kernels/peak_simd.h"

namespace kd::kernels::avx512 {
double fma_loop(int64_t iters) { return simd::fma_loop<xsimd::avx512f>(iters); }
}  // namespace kd::kernels::avx512
