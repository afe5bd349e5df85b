// Compiled with -march=armv8.2-a+dotprod (CMakeLists.txt); called only where the CPU has it.
// sdot multiplies s8 by s8, so activations are flipped to s8 on load (a ^ 0x80 == a - 128) and
// the lost 128 * sum_k W[n, k] is added back from the packed column sums:
//   sum_k a w = sum_k (a - 128) w + 128 * colsum[n].
// Tile: 4 rows x 16 columns; per k-group the 4 rows' 4 bytes form one vector and
// vdotq_laneq_s32 multiplies each 4-column weight slice by one row (lane).
#include <arm_neon.h>

#include "core/kernels/gemm_u8s8.h"

namespace kd::kernels::neon_dot {

namespace {

template <int MR>
void tile(const uint8_t* A, int64_t lda, const PackedS8& W, int64_t nb, const int32_t* bias, int32_t* C, int64_t ldc) {
  const int8_t* w = W.data.data() + nb * W.Kg * 64;
  int32x4_t acc[MR][4];
  for (int r = 0; r < MR; ++r)
    for (int q = 0; q < 4; ++q) acc[r][q] = vdupq_n_s32(0);
  const uint8x16_t flip = vdupq_n_u8(0x80);
  for (int64_t g = 0; g < W.Kg; ++g) {
    uint32_t rows[4] = {0, 0, 0, 0};
    for (int r = 0; r < MR; ++r) rows[r] = load_a4(A + r * lda, g, W.K);
    // Past K the activation bytes are 0 and flip to -128; their weights are 0, so no effect.
    const int8x16_t a = vreinterpretq_s8_u8(veorq_u8(vreinterpretq_u8_u32(vld1q_u32(rows)), flip));
    for (int q = 0; q < 4; ++q) {
      const int8x16_t b = vld1q_s8(w + g * 64 + q * 16);
      acc[0][q] = vdotq_laneq_s32(acc[0][q], b, a, 0);
      if (MR > 1) acc[1][q] = vdotq_laneq_s32(acc[1][q], b, a, 1);
      if (MR > 2) acc[2][q] = vdotq_laneq_s32(acc[2][q], b, a, 2);
      if (MR > 3) acc[3][q] = vdotq_laneq_s32(acc[3][q], b, a, 3);
    }
  }
  const int64_t n0 = nb * 16;
  for (int r = 0; r < MR; ++r) {
    int32_t lanes[16];
    for (int q = 0; q < 4; ++q) vst1q_s32(lanes + 4 * q, acc[r][q]);
    for (int64_t c = 0; c < 16 && n0 + c < W.N; ++c)
      C[r * ldc + n0 + c] = lanes[c] + 128 * W.colsum[size_t(n0 + c)] + (bias ? bias[n0 + c] : 0);
  }
}

}  // namespace

void gemm_s8_rows(const uint8_t* A, int64_t M, int64_t lda, const PackedS8& W, const int32_t* bias, int32_t* C,
                  int64_t ldc) {
  int64_t m = 0;
  for (; m + 4 <= M; m += 4)
    for (int64_t nb = 0; nb < W.Nb; ++nb) tile<4>(A + m * lda, lda, W, nb, bias, C + m * ldc, ldc);
  for (; m < M; ++m)
    for (int64_t nb = 0; nb < W.Nb; ++nb) tile<1>(A + m * lda, lda, W, nb, bias, C + m * ldc, ldc);
}

double int8_loop(int64_t iters) {
  // 12 independent sdot chains: 4 lanes x 4 multiply-adds each.
  constexpr int K = 12;
  int32x4_t acc[K];
  for (int k = 0; k < K; ++k) acc[k] = vdupq_n_s32(k);
  const int8x16_t a = vdupq_n_s8(3), b = vdupq_n_s8(-2);
  for (int64_t i = 0; i < iters; ++i)
    for (int k = 0; k < K; ++k) acc[k] = vdotq_s32(acc[k], a, b);
  int32x4_t s = acc[0];
  for (int k = 1; k < K; ++k) s = vaddq_s32(s, acc[k]);
  volatile int sink = vaddvq_s32(s);
  (void)sink;
  return 2.0 * 16 * K * double(iters);
}

}  // namespace kd::kernels::neon_dot
