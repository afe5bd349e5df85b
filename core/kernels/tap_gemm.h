// tap_gemm: the arithmetic of a stride-1 dense convolution, as one GEMM whose right-hand matrix
// is never built. With the input zero-padded and flattened (channel planes of pitch x_pitch, each
// read at the output's row pitch), a k-tap convolution is
//   Y[o, p] = sum_{c < C} sum_{t < taps} A[t, o, c] * X[c * x_pitch + shift[t] + p],  p in [0, cols)
// i.e. a GEMM with K = C * taps whose column (c, t) of B is plane c seen from offset shift[t]
// (nn/ops/conv2d_shifted.h derives the shifts and crops the garbage columns). Eigen needs B as a
// matrix: one GEMM per tap, each repacking its B and re-reading and re-writing all of Y. Here a
// register tile of MR output rows x NR columns accumulates over the whole K at once and is stored
// once; B is read straight from the padded planes (unaligned vector loads).
//
// A is read through a view (TapGemmWeights): in place, e.g. OIHW weights, each of the tile's MR
// rows a stream of broadcasts, no pass over the weights per call (batch-1 inference packed every
// weight on every pass: 17% of the teacher's); or a packed copy (tap_gemm_pack: the mr values of
// each K step adjacent, one stream per tile, ~5% faster at large batches, where the copy is
// amortized). The input gradient reads the same tensor with the taps reversed and O and C swapped.
//
// Summation order, every variant: for each output, acc = fma(A[t,o,c], X[...], acc) over c, then
// t, from 0. The scalar reference does exactly that with std::fma, so every SIMD variant gives
// the same bits (tests/test_tap_gemm.cpp asserts equality).
#pragma once
#include <cmath>
#include <cstdint>
#include <vector>

#include "core/kernels/epilogue.h"

namespace kd::kernels {

// The left-hand matrix: A[t, o, c] = w[(o / rows) * sb + (o % rows) * so + c * sc + t * st];
// strides may be negative. In place, rows = 1: weights W[O, C, kh, kw] for the forward pass have
// sb = C*kh*kw, sc = kh*kw, st = 1. Packed: rows = the kernel's mr, blocks of mr rows.
struct TapGemmWeights {
  const float* w = nullptr;
  int64_t rows = 1, sb = 0, so = 0, sc = 0, st = 0;
  int64_t O = 0, C = 0;
  int taps = 0;
  float at(int64_t t, int64_t o, int64_t c) const { return w[(o / rows) * sb + (o % rows) * so + c * sc + t * st]; }
};

// A packed for the selected kernel into dst (tap_gemm_packed_floats(a) floats, rows past O zero),
// and the view that reads it.
int64_t tap_gemm_packed_floats(const TapGemmWeights& a);
TapGemmWeights tap_gemm_pack(const TapGemmWeights& a, float* dst);
// The same for a given mr (the tests pack for every variant).
TapGemmWeights tap_gemm_pack_mr(const TapGemmWeights& a, int mr, float* dst);
// The view of A's shape packed for mr at `packed` (A[t, o, c] at ((o / mr) * C * taps + c * taps
// + t) * mr + o % mr), for a caller that writes the packed form itself; and the selected kernel's mr.
TapGemmWeights tap_gemm_packed_view(const TapGemmWeights& a, int mr, const float* packed);
int tap_gemm_mr();

// Applied to each output as it is stored: y = clamp(fma(acc, scale[o], bias[o]), lo, hi)
// (core/kernels/epilogue.h). The folded batch norm and ReLU of an inference convolution, while the
// tile is in registers: as a pass of its own over the outputs it took 7% of a batch-64 student pass.
using TapGemmEpilogue = ChannelsEpilogue;

struct TapGemmArgs {
  const float* x = nullptr;  // C planes, plane c at x + c * x_pitch
  int64_t x_pitch = 0;
  const int64_t* shift = nullptr;  // one offset per tap, >= 0
  int64_t cols = 0;                // output columns
  float* y = nullptr;              // O rows of cols floats, row o at y + o * y_pitch
  int64_t y_pitch = 0;
  TapGemmEpilogue ep;
};

// Floats past X[(C-1) * x_pitch + max shift + cols] that must be readable: the last column tile
// is computed whole and its extra columns dropped. Their values never reach Y.
inline constexpr int64_t kTapGemmSlack = 64;

// The work is cut into tiles (mr rows x one column tile); tiles are numbered column tile major,
// so consecutive tiles share the B columns they read. tap_gemm computes tiles [begin, end): split
// the range over threads for a single image.
int64_t tap_gemm_tiles(const TapGemmWeights& w, int64_t cols);
void tap_gemm(const TapGemmWeights& w, const TapGemmArgs& a, int64_t tile_begin, int64_t tile_end);
// Thread t of nt's share of all the tiles (one image split over a team), equal in columns: the
// row blocks [blocks*t/nt, blocks*(t+1)/nt) of every column tile, where there are at least nt
// blocks (else a range of the tile order). Halving the tile range instead gave one thread a 7x7
// layer's whole first column tile (48 columns) and the other its last 8: a third of the pair idle.
void tap_gemm_share(const TapGemmWeights& w, const TapGemmArgs& a, int t, int nt);

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
  int mr;      // rows per tile
  int64_t nr;  // columns per tile
  void (*run)(const TapGemmWeights&, const TapGemmArgs&, int64_t, int64_t);
  void (*grad)(const TapGemmGradArgs&);
  // Tiles of this variant for O output rows and cols columns (the range run() takes).
  int64_t tiles(int64_t O, int64_t cols) const { return (O + mr - 1) / mr * ((cols + nr - 1) / nr); }
  // Thread t of nt's share (tap_gemm_share).
  void share(const TapGemmWeights& w, const TapGemmArgs& a, int t, int nt) const;
};
std::vector<TapGemmKernel> tap_gemm_kernels();

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
