// INT8 GEMM with 32-bit accumulation, the core of the INT8 runtime's convolutions and linear
// layers:
//   C[m, n] = bias[n] + sum_k A[m, k] * W[n, k]          (int32, exact: no saturation anywhere)
// A: u8 activations, one row per output pixel (NHWC / im2col rows), K contiguous bytes, pitch lda.
// W: s8 weights [N, K] (output channels x inputs, PyTorch's conv OIHW / linear layout, flattened),
//    packed once by pack_s8 into blocks of 16 output channels x 4 inputs:
//      data[((nb * Kg) + g) * 64 + c * 4 + t] = W[16 nb + c, 4 g + t]   (0 past N or K)
//    the order VNNI's vpdpbusd and ARM's sdot consume (four products summed into each int32 lane).
// Variants (each against the scalar reference in tests/test_gemm_u8s8.cpp):
//   ref         the specification: plain loops over the packed layout;
//   avx512vnni  vpdpbusd (u8 x s8, 4-way), 8 rows x 32 columns per tile;
//   avx2        both operands widened to s16, vpmaddwd (2-way, exact), 3 rows x 16 columns;
//               never vpmaddubsw, whose s16 pair sums saturate (255*127*2 > 32767);
//   neon_dot    sdot (s8 x s8): activations flipped to s8 (a - 128) on load and 128 * colsum[n]
//               added back, 4 rows x 16 columns;
//   neon        plain NEON: widened to s16, vmlal (4 products per column lane), 1 row x 16.
// Zero points are not the kernel's business: the caller folds -zp_a * colsum[n] into bias.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace kd::kernels {

enum class GemmS8 { ref, avx2, avx512vnni, neon, neon_dot };

const char* gemm_s8_name(GemmS8 v);
bool gemm_s8_available(GemmS8 v);  // compiled in and supported by this CPU
// The best available, or the scalar reference under KD_KERNELS=ref.
GemmS8 gemm_s8_selected();

struct PackedS8 {
  int64_t N = 0, K = 0, Kg = 0, Nb = 0;  // Kg = ceil(K / 4), Nb = ceil(N / 16)
  std::vector<int8_t> data;               // Nb * Kg * 64 bytes
  std::vector<int32_t> colsum;            // sum_k W[n, k], for zero-point folding (size N)
};
PackedS8 pack_s8(const int8_t* W, int64_t N, int64_t K);

// C[m * ldc + n] for m < M, n < N; bias may be null (zeros). Rows are spread over OpenMP threads
// when the product is large enough to pay for it.
void gemm_u8s8s32(GemmS8 v, const uint8_t* A, int64_t M, int64_t lda, const PackedS8& W, const int32_t* bias,
                  int32_t* C, int64_t ldc);
inline void gemm_u8s8s32(const uint8_t* A, int64_t M, int64_t lda, const PackedS8& W, const int32_t* bias, int32_t* C,
                         int64_t ldc) {
  gemm_u8s8s32(gemm_s8_selected(), A, M, lda, W, bias, C, ldc);
}

// Per-variant row kernels (rows [0, M) of A and C), declared for the dispatcher.
using GemmS8Rows = void (*)(const uint8_t* A, int64_t M, int64_t lda, const PackedS8& W, const int32_t* bias,
                            int32_t* C, int64_t ldc);
void gemm_s8_rows_ref(const uint8_t* A, int64_t M, int64_t lda, const PackedS8& W, const int32_t* bias, int32_t* C,
                      int64_t ldc);
#define KD_DECLARE_GEMM_S8(ns)                                                                                  \
  namespace ns {                                                                                                \
  void gemm_s8_rows(const uint8_t* A, int64_t M, int64_t lda, const PackedS8& W, const int32_t* bias, int32_t* C, \
                    int64_t ldc);                                                                               \
  double int8_loop(int64_t iters);                                                                              \
  }
KD_DECLARE_GEMM_S8(avx2)
KD_DECLARE_GEMM_S8(avx512vnni)
KD_DECLARE_GEMM_S8(neon)
KD_DECLARE_GEMM_S8(neon_dot)
#undef KD_DECLARE_GEMM_S8

// The machine's int8 peak for a variant: independent chains of the variant's multiply-accumulate
// instruction on every thread (best of 3), in GOP/s (2 ops per multiply-add): what the variant's
// kernel could reach at most (kd bench kernels reports the GEMM's share of it).
double int8_peak_gops(GemmS8 v, int threads);

// Loads the 4 activation bytes of k-group g of a row; past K they read as 0 (never past the row).
inline uint32_t load_a4(const uint8_t* row, int64_t g, int64_t K) {
  const int64_t k = 4 * g;
  if (k + 4 <= K) {
    uint32_t v;
    __builtin_memcpy(&v, row + k, 4);
    return v;
  }
  uint32_t v = 0;
  for (int64_t t = 0; k + t < K; ++t) v |= uint32_t(row[k + t]) << (8 * t);
  return v;
}

}  // namespace kd::kernels
