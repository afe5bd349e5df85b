// Plain NEON (ARMv8.0, no dot product): per k-group, a row's 4 activations widen to s16 and
// multiply the 4 inputs of each column (vmlal, exact in int32); each column's accumulator holds
// its 4 partial sums, added across lanes when the tile is stored. Tile: 1 row x 16 columns.
#include <arm_neon.h>

#include "core/kernels/gemm_u8s8.h"

namespace kd::kernels::neon {

void gemm_s8_rows(const uint8_t* A, int64_t M, int64_t lda, const PackedS8& W, const int32_t* bias, int32_t* C,
                  int64_t ldc) {
  for (int64_t m = 0; m < M; ++m)
    for (int64_t nb = 0; nb < W.Nb; ++nb) {
      const int8_t* w = W.data.data() + nb * W.Kg * 64;
      int32x4_t acc[16];
      for (int c = 0; c < 16; ++c) acc[c] = vdupq_n_s32(0);
      for (int64_t g = 0; g < W.Kg; ++g) {
        const uint32_t a4 = load_a4(A + m * lda, g, W.K);
        const int16x4_t a = vreinterpret_s16_u16(vget_low_u16(vmovl_u8(vreinterpret_u8_u32(vdup_n_u32(a4)))));
        for (int q = 0; q < 4; ++q) {
          const int8x16_t b = vld1q_s8(w + g * 64 + q * 16);  // columns 4q..4q+3, 4 inputs each
          const int16x8_t lo = vmovl_s8(vget_low_s8(b)), hi = vmovl_s8(vget_high_s8(b));
          acc[4 * q + 0] = vmlal_s16(acc[4 * q + 0], vget_low_s16(lo), a);
          acc[4 * q + 1] = vmlal_s16(acc[4 * q + 1], vget_high_s16(lo), a);
          acc[4 * q + 2] = vmlal_s16(acc[4 * q + 2], vget_low_s16(hi), a);
          acc[4 * q + 3] = vmlal_s16(acc[4 * q + 3], vget_high_s16(hi), a);
        }
      }
      const int64_t n0 = nb * 16;
      for (int64_t c = 0; c < 16 && n0 + c < W.N; ++c)
        C[m * ldc + n0 + c] = vaddvq_s32(acc[c]) + (bias ? bias[n0 + c] : 0);
    }
}

double int8_loop(int64_t iters) {
  // 12 independent vmlal_s16 chains: 4 multiply-adds each.
  constexpr int K = 12;
  int32x4_t acc[K];
  for (int k = 0; k < K; ++k) acc[k] = vdupq_n_s32(k);
  const int16x4_t a = vdup_n_s16(3), b = vdup_n_s16(-2);
  for (int64_t i = 0; i < iters; ++i)
    for (int k = 0; k < K; ++k) acc[k] = vmlal_s16(acc[k], a, b);
  int32x4_t s = acc[0];
  for (int k = 1; k < K; ++k) s = vaddq_s32(s, acc[k]);
  volatile int sink = vaddvq_s32(s);
  (void)sink;
  return 2.0 * 4 * K * double(iters);
}

}  // namespace kd::kernels::neon
