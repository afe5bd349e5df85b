// Compiled with -mavx512f -mavx512vnni (CMakeLists.txt); called only where the CPU has both.
// Tile: 4 rows x 64 columns (four zmm of 16 int32 per row, 16 accumulators), K in groups of 4:
// per group, four 64-byte weight loads, four 4-byte activation broadcasts and 16 vpdpbusd
// (u8 x s8 -> int32, four products per lane, no intermediate saturation). Tails: missing rows
// repeat the last row and missing column blocks the last block; their results are not stored.
#include <immintrin.h>

#include <algorithm>

#include "core/kernels/gemm_u8s8.h"

namespace kd::kernels::avx512vnni {

namespace {

// acc += the u8 x s8 4-way dot products of a and b. Inline asm rather than
// _mm512_dpbusd_epi32: with the intrinsic, GCC 12 copied every accumulator to another register
// and back around each instruction, which cost a third of the throughput. The accumulators are
// named variables (not an array) so that they stay in registers.
#define KD_DPBUSD(acc, a, b) asm("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(a), "v"(b))
// One row's broadcast against the NB loaded column blocks.
#define KD_ROW4(r, x)                               \
  KD_DPBUSD(c##r##0, x, b0);                        \
  if constexpr (NB > 1) KD_DPBUSD(c##r##1, x, b1); \
  if constexpr (NB > 2) KD_DPBUSD(c##r##2, x, b2); \
  if constexpr (NB > 3) KD_DPBUSD(c##r##3, x, b3)

// NB (1-4) column blocks of 16: narrow layers (16-48 output channels) do only the work they need.
template <int NB>
void tile(const uint8_t* A, int64_t rows, int64_t lda, const PackedS8& W, int64_t nb, const int32_t* bias, int32_t* C,
          int64_t ldc) {
  const int64_t Kg = W.Kg, K = W.K, full = K / 4;
  constexpr int64_t blocks = NB;
  const int8_t* w[4];
  for (int j = 0; j < 4; ++j) w[j] = W.data.data() + (nb + std::min<int64_t>(j, blocks - 1)) * Kg * 64;
  const uint8_t* a[4];
  for (int r = 0; r < 4; ++r) a[r] = A + std::min<int64_t>(r, rows - 1) * lda;
  __m512i c00 = _mm512_setzero_si512(), c01 = c00, c02 = c00, c03 = c00, c10 = c00, c11 = c00, c12 = c00, c13 = c00,
          c20 = c00, c21 = c00, c22 = c00, c23 = c00, c30 = c00, c31 = c00, c32 = c00, c33 = c00;
  for (int64_t g = 0; g < Kg; ++g) {
    const __m512i b0 = _mm512_loadu_si512(w[0] + g * 64);
    __m512i b1, b2, b3;
    if constexpr (NB > 1) b1 = _mm512_loadu_si512(w[1] + g * 64);
    if constexpr (NB > 2) b2 = _mm512_loadu_si512(w[2] + g * 64);
    if constexpr (NB > 3) b3 = _mm512_loadu_si512(w[3] + g * 64);
    int32_t q[4];
    // Whole groups are read directly; the last partial one through load_a4 (zero-filled), so
    // no row is read past K.
    if (g < full)
      for (int r = 0; r < 4; ++r) __builtin_memcpy(&q[r], a[r] + 4 * g, 4);
    else
      for (int r = 0; r < 4; ++r) q[r] = int32_t(load_a4(a[r], g, K));
    __m512i x = _mm512_set1_epi32(q[0]);
    KD_ROW4(0, x);
    x = _mm512_set1_epi32(q[1]);
    KD_ROW4(1, x);
    x = _mm512_set1_epi32(q[2]);
    KD_ROW4(2, x);
    x = _mm512_set1_epi32(q[3]);
    KD_ROW4(3, x);
  }
  const __m512i acc[4][4] = {{c00, c01, c02, c03}, {c10, c11, c12, c13}, {c20, c21, c22, c23}, {c30, c31, c32, c33}};
  for (int64_t j = 0; j < blocks; ++j) {
    const int64_t n = (nb + j) * 16, valid = std::min<int64_t>(16, W.N - n);
    const __mmask16 mask = __mmask16((1u << valid) - 1u);
    const __m512i b = bias ? _mm512_maskz_loadu_epi32(mask, bias + n) : _mm512_setzero_si512();
    for (int64_t r = 0; r < std::min<int64_t>(4, rows); ++r)
      _mm512_mask_storeu_epi32(C + r * ldc + n, mask, _mm512_add_epi32(acc[r][j], b));
  }
}
#undef KD_ROW4
#undef KD_DPBUSD

}  // namespace

void gemm_s8_rows(const uint8_t* A, int64_t M, int64_t lda, const PackedS8& W, const int32_t* bias, int32_t* C,
                  int64_t ldc) {
  for (int64_t m = 0; m < M; m += 4)
    for (int64_t nb = 0; nb < W.Nb; nb += 4) {
      const int64_t rows = std::min<int64_t>(4, M - m);
      switch (std::min<int64_t>(4, W.Nb - nb)) {
        case 1: tile<1>(A + m * lda, rows, lda, W, nb, bias, C + m * ldc, ldc); break;
        case 2: tile<2>(A + m * lda, rows, lda, W, nb, bias, C + m * ldc, ldc); break;
        case 3: tile<3>(A + m * lda, rows, lda, W, nb, bias, C + m * ldc, ldc); break;
        default: tile<4>(A + m * lda, rows, lda, W, nb, bias, C + m * ldc, ldc); break;
      }
    }
}

double int8_loop(int64_t iters) {
  // 12 independent vpdpbusd chains: 16 lanes x 4 multiply-adds each.
  constexpr int K = 12;
  __m512i acc[K];
  for (int k = 0; k < K; ++k) acc[k] = _mm512_set1_epi32(k);
  const __m512i a = _mm512_set1_epi32(0x01010101), b = _mm512_set1_epi32(0x01FF01FF);
  for (int64_t i = 0; i < iters; ++i)
    for (int k = 0; k < K; ++k) acc[k] = _mm512_dpbusd_epi32(acc[k], a, b);
  __m512i s = acc[0];
  for (int k = 1; k < K; ++k) s = _mm512_add_epi32(s, acc[k]);
  alignas(64) int32_t lanes[16];
  _mm512_store_si512(lanes, s);  // (not _mm512_reduce_add_epi32: GCC 12 warns inside it)
  volatile int sink = lanes[0];
  (void)sink;
  return 2.0 * 64 * K * double(iters);
}

}  // namespace kd::kernels::avx512vnni
