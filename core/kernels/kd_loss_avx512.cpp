// Compiled for avx512 only (CMakeLists.txt); called only where dispatch.h says the CPU has it.
#include "core/kernels/kd_loss.h"
#include "core/kernels/kd_loss_simd.h"

namespace kd::kernels::avx512 {
float kd_row(const float* s, const float* t, int32_t y, int64_t K, float T, float alpha, float inv_n, float* grad_row,
             float* scratch) {
  return simd::kd_row<xsimd::avx512f>(s, t, y, K, T, alpha, inv_n, grad_row, scratch);
}
}  // namespace kd::kernels::avx512
