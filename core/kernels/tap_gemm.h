// tap_gemm: the arithmetic of a stride-1 dense convolution, as one GEMM whose right-hand matrix
// is never built. With the input zero-padded and flattened (channel planes of pitch x_pitch, each
// read at the output's row pitch), a k-tap convolution is
//   Y[o, p] = sum_{c < C} sum_{t < taps} A[t, o, c] * X[c * x_pitch + shift[t] + p],  p in [0, cols)
// i.e. a GEMM with K = C * taps whose column (c, t) of B is plane c seen from offset shift[t]
// (nn/ops/conv2d_shifted.h derives the shifts and crops the garbage columns). Eigen needs B as a
// matrix: one GEMM per tap, each repacking its B and re-reading and re-writing all of Y. Here a
// register tile of MR output rows x NR columns accumulates over the whole K at once and is stored
// once; B is read straight from the padded planes (unaligned vector loads), A from a packed copy.
//
// Layout of the packed A (TapGemmWeights): row blocks of mr output channels; within a block, K in
// (channel, tap) order, mr consecutive floats per K step, so a micro-kernel broadcasts them in
// order. Rows past O are zero. Channel-major K keeps a channel's taps (a few rows of one plane)
// together for the kernel, and makes packing OIHW weights a read of mr sequential streams:
// batch-1 inference packs every weight once per pass.
//
// Summation order, every variant: for each output, acc = fma(A[t,o,c], X[...], acc) over c, then
// t, from 0. The scalar reference does exactly that with std::fma, so every SIMD variant gives
// the same bits (tests/test_tap_gemm.cpp asserts equality).
#pragma once
#include <cstdint>
#include <vector>

namespace kd::kernels {

struct TapGemmWeights {
  int64_t O = 0, C = 0;
  int taps = 0, mr = 0;
  std::vector<float> data;  // [ceil(O / mr)][C][taps][mr]
  int64_t blocks() const { return (O + mr - 1) / mr; }
};

// Packs A[t, o, c] = src[t * st + o * so + c * sc] * (scale ? scale[o] : 1) for the selected
// variant's mr. Strides may be negative (the input gradient reads the taps in reverse).
// Examples: weights w[O, C, kh, kw] for the forward pass: st = 1, so = C*kh*kw, sc = kh*kw.
void tap_gemm_pack(const float* src, int64_t O, int64_t C, int taps, int64_t st, int64_t so, int64_t sc,
                   const float* scale, TapGemmWeights& w);

struct TapGemmArgs {
  const float* x = nullptr;  // C planes, plane c at x + c * x_pitch
  int64_t x_pitch = 0;
  const int64_t* shift = nullptr;  // one offset per tap, >= 0
  int64_t cols = 0;                // output columns
  float* y = nullptr;              // O rows of cols floats, row o at y + o * y_pitch
  int64_t y_pitch = 0;
};

// Floats past X[(C-1) * x_pitch + max shift + cols] that must be readable: the last column tile
// is computed whole and its extra columns dropped. Their values never reach Y.
inline constexpr int64_t kTapGemmSlack = 64;

// The work is cut into tiles (mr rows x one column tile); tiles are numbered column tile major,
// so consecutive tiles share the B columns they read. tap_gemm computes tiles [begin, end): split
// the range over threads for a single image.
int64_t tap_gemm_tiles(const TapGemmWeights& w, int64_t cols);
void tap_gemm(const TapGemmWeights& w, const TapGemmArgs& a, int64_t tile_begin, int64_t tile_end);
inline void tap_gemm(const TapGemmWeights& w, const TapGemmArgs& a) { tap_gemm(w, a, 0, tap_gemm_tiles(w, a.cols)); }

// The weight gradient of the same convolution, added into dA [taps, O, C]:
//   dA[t, o, c] += sum_{p < cols} D[o * d_pitch + p] * X[c * x_pitch + shift[t] + p]
// with D = dY at the output's pitch, zero in its garbage columns (so the wrapped reads of X there
// add nothing). A GEMM with K = cols, long: vectorized along p, a 4 x 4 block of (o, c) sums in
// registers, all taps of a block in turn while its 4 + 4 rows sit in L1, each sum's lanes added
// once at the end. D's rows are read up to cols rounded up to kTapGemmGradColumns and must hold
// zeros there; X is read as far, within kTapGemmSlack.
struct TapGemmGradArgs {
  const float* x = nullptr;
  int64_t x_pitch = 0, C = 0;
  const int64_t* shift = nullptr;
  int taps = 0;
  const float* d = nullptr;
  int64_t d_pitch = 0, O = 0;
  int64_t cols = 0;
  float* dA = nullptr;
};
inline constexpr int64_t kTapGemmGradColumns = 16;
void tap_gemm_grad(const TapGemmGradArgs& a);

// The selected variant ("ref", "avx512 8x48", ...) for kd info --kernels.
const char* tap_gemm_variant();

// Every variant, by name, for the tests: the scalar reference, then the SIMD ones this CPU runs.
struct TapGemmKernel {
  const char* name;
  int mr;
  int64_t nr;  // columns per tile
  void (*run)(const TapGemmWeights&, const TapGemmArgs&, int64_t, int64_t);
  void (*grad)(const TapGemmGradArgs&);
};
std::vector<TapGemmKernel> tap_gemm_kernels();
// Packs for a given mr (tests run every variant over one set of weights).
void tap_gemm_pack_mr(const float* src, int64_t O, int64_t C, int taps, int64_t st, int64_t so, int64_t sc,
                      const float* scale, int mr, TapGemmWeights& w);

// Per-ISA variants (compiled only where the target has them).
#define KD_DECLARE_TAP_GEMM(ns)               \
  namespace ns {                              \
  extern const TapGemmKernel tap_gemm_kernel; \
  }
KD_DECLARE_TAP_GEMM(avx2)
KD_DECLARE_TAP_GEMM(avx512)
KD_DECLARE_TAP_GEMM(neon)
#undef KD_DECLARE_TAP_GEMM

}  // namespace kd::kernels
