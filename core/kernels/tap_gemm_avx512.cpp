// Compiled with -mavx512f -mfma (CMakeLists.txt); selected at run time only on CPUs that have them.
#include "core/kernels/tap_gemm_simd.h"

namespace kd::kernels::avx512 {
// 8 rows x 3 vectors of 16 columns: 24 accumulators of the 32 registers.
const TapGemmKernel tap_gemm_kernel{"avx512 8x48", 8, 48, simd::tap_gemm<xsimd::avx512f, 8, 3>};
}  // namespace kd::kernels::avx512
