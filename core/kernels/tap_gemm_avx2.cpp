// Compiled with -mavx2 -mfma (CMakeLists.txt); selected at run time only on CPUs that have them.
#include "core/kernels/tap_gemm_simd.h"

namespace kd::kernels::avx2 {
// 4 rows x 3 vectors of 8 columns: 12 accumulators, 3 B vectors and a broadcast of the 16 registers.
const TapGemmKernel tap_gemm_kernel{"avx2 4x24", 4, 24, simd::tap_gemm<xsimd::fma3<xsimd::avx2>, 4, 3>,
                                    simd::tap_gemm_grad<xsimd::fma3<xsimd::avx2>>};
}  // namespace kd::kernels::avx2
