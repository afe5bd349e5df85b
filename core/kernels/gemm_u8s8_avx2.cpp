// Compiled with -mavx2 (CMakeLists.txt). No 8-bit dot product on AVX2, and vpmaddubsw's s16
// pair sums saturate for u8 x s8 (255*127*2 > 32767), so both operands are widened to s16 and
// multiplied with vpmaddwd, whose int32 pair sums are exact. Per k-group, a 16-byte slice of the
// packed block (4 columns x 4 inputs) widens to 16 s16; against the row's 4 activations repeated
// it gives 8 int32 lanes: (column c, inputs 0-1) and (column c, inputs 2-3) for 4 columns,
// summed pairwise when the tile is stored. Tile: MR rows x 16 columns (4 such slices).
#include <immintrin.h>

#include "core/kernels/gemm_u8s8.h"

namespace kd::kernels::avx2 {

namespace {

template <int MR>
void tile(const uint8_t* A, int64_t lda, const PackedS8& W, int64_t nb, const int32_t* bias, int32_t* C, int64_t ldc) {
  const int64_t Kg = W.Kg, K = W.K;
  const int8_t* w = W.data.data() + nb * Kg * 64;
  __m256i acc[MR][4];
  for (int r = 0; r < MR; ++r)
    for (int q = 0; q < 4; ++q) acc[r][q] = _mm256_setzero_si256();
  for (int64_t g = 0; g < Kg; ++g) {
    __m256i a[MR];
    for (int r = 0; r < MR; ++r) {
      // 4 u8 -> 4 s16 (64 bits), repeated over the 256-bit register.
      const __m128i a8 = _mm_cvtsi32_si128(int32_t(load_a4(A + r * lda, g, K)));
      a[r] = _mm256_broadcastq_epi64(_mm_cvtepu8_epi16(a8));
    }
    for (int q = 0; q < 4; ++q) {
      const __m256i b = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + g * 64 + q * 16)));
      for (int r = 0; r < MR; ++r) acc[r][q] = _mm256_add_epi32(acc[r][q], _mm256_madd_epi16(a[r], b));
    }
  }
  const int64_t n0 = nb * 16, valid = W.N - n0 < 16 ? W.N - n0 : 16;
  for (int r = 0; r < MR; ++r) {
    alignas(32) int32_t lanes[4][8];
    for (int q = 0; q < 4; ++q) _mm256_store_si256(reinterpret_cast<__m256i*>(lanes[q]), acc[r][q]);
    for (int64_t c = 0; c < valid; ++c) {
      const int32_t* l = lanes[c / 4] + 2 * (c % 4);
      C[r * ldc + n0 + c] = l[0] + l[1] + (bias ? bias[n0 + c] : 0);
    }
  }
}

}  // namespace

void gemm_s8_rows(const uint8_t* A, int64_t M, int64_t lda, const PackedS8& W, const int32_t* bias, int32_t* C,
                  int64_t ldc) {
  constexpr int MR = 3;
  int64_t m = 0;
  for (; m + MR <= M; m += MR)
    for (int64_t nb = 0; nb < W.Nb; ++nb) tile<MR>(A + m * lda, lda, W, nb, bias, C + m * ldc, ldc);
  for (; m < M; ++m)
    for (int64_t nb = 0; nb < W.Nb; ++nb) tile<1>(A + m * lda, lda, W, nb, bias, C + m * ldc, ldc);
}

double int8_loop(int64_t iters) {
  // 12 independent vpmaddwd + vpaddd chains: 8 lanes x 2 multiply-adds each.
  constexpr int K = 12;
  __m256i acc[K];
  for (int k = 0; k < K; ++k) acc[k] = _mm256_set1_epi32(k);
  const __m256i a = _mm256_set1_epi16(3), b = _mm256_set1_epi16(-2);
  for (int64_t i = 0; i < iters; ++i)
    for (int k = 0; k < K; ++k) acc[k] = _mm256_add_epi32(acc[k], _mm256_madd_epi16(a, b));
  __m256i s = acc[0];
  for (int k = 1; k < K; ++k) s = _mm256_add_epi32(s, acc[k]);
  alignas(32) int32_t lanes[8];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), s);
  volatile int sink = lanes[0];
  (void)sink;
  return 2.0 * 16 * K * double(iters);
}

}  // namespace kd::kernels::avx2
