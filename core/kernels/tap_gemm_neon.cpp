// AArch64 only (Advanced SIMD is part of the base architecture there).
#include "core/kernels/tap_gemm_simd.h"

namespace kd::kernels::neon {
// 8 rows x 3 vectors of 4 columns: 24 accumulators of the 32 registers.
const TapGemmKernel tap_gemm_kernel{"neon 8x12", 8, 12, simd::tap_gemm<xsimd::neon64, 8, 3>,
                                    simd::tap_gemm_grad<xsimd::neon64>};
}  // namespace kd::kernels::neon
