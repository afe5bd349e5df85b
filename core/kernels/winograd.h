// Winograd F(4x4, 3x3): a 3x3 stride-1 convolution computed on 4x4 output tiles with 36
// multiplications per tile and channel pair instead of 144 (Lavin & Gray, "Fast Algorithms for
// Convolutional Neural Networks", 2015). For a 6x6 input patch d (padded rows 4th .. 4th+5, the
// padding being 1) and a 3x3 filter g:
//   Y (4x4) = A^T [ (G g G^T) (.) (B^T d B) ] A                       ((.) = element-wise)
// with the interpolation points 0, 1, -1, 2, -2 and infinity:
//   B^T = | 4  0 -5  0  1  0 |   G = |  1/4    0     0   |   A^T = | 1  1  1  1  1  0 |
//         | 0 -4 -4  1  1  0 |       | -1/6  -1/6  -1/6  |         | 0  1 -1  2 -2  0 |
//         | 0  4 -4 -1  1  0 |       | -1/6   1/6  -1/6  |         | 0  1  1  4  4  0 |
//         | 0 -2 -1  2  1  0 |       |  1/24  1/12  1/6  |         | 0  1 -1  8 -8  1 |
//         | 0  2 -1 -2  1  0 |       |  1/24 -1/12  1/6  |
//         | 0  4  0 -5  0  1 |       |  0     0     1    |
// Summed over the input channels, the element-wise product becomes 36 independent GEMMs, one per
// position xi of the 6x6 transformed tile: M[xi] (O x tiles) = U[xi] (O x C) x V[xi] (C x tiles),
// run on the tap GEMM (tap_gemm.h, one tap).
//
// Numerics: the transforms' entries up to 8 (and G's sixths) cost accuracy: against a float64
// convolution, the teacher's layers come out ~2e-6 RMS relative (the direct float32 sum: ~2e-7;
// F(2x2, 3x3), 2.2x fewer multiplications instead of 4x: ~3e-7). Measured in numpy with the same
// matrices (bench/RESULTS.md). The tests hold the result to 1e-4 absolute against float64.
//
// Every variant of a transform does the same operations in the same order, fused multiply-adds
// where the formulas below have them, so the SIMD variants give the scalar reference's bits
// (tests/test_winograd.cpp).
//
// Layout of the input transform's source: one channel of the padded input split into the 16
// (row, column) phases mod 4 (nn/ops/padded_layout.h, make_tile_layout), so that element (i, j)
// of the patches of a run of consecutive tiles is one contiguous run at offset shift[i*6 + j].
#pragma once
#include <cmath>
#include <cstdint>
#include <vector>

#include "core/kernels/epilogue.h"

namespace kd::kernels {

inline constexpr int kWinogradTile = 4;     // outputs per tile side
inline constexpr int kWinogradPatch = 6;    // inputs per patch side
inline constexpr int kWinogradPoints = 36;  // GEMMs (patch elements)

// What follows the output transform: a ChannelEpilogue (core/kernels/epilogue.h) per channel.

// The filters w [O, C, 3, 3] transformed straight into the tap GEMM's packed layout for mr rows
// (tap_gemm.h): for f in [0, ceil(O / mr) * mr * C), the filter of row o = (f / (C mr)) mr + f % mr
// and column c = (f / mr) % C (zero past O): u[xi * u_stride + f] = (G w[o, c] G^T)[xi]. (Written
// by index instead of transformed and packed in two passes: the packing of 36 matrices per layer
// took 38% of a batch-1 teacher pass on one thread.)
void winograd_filter_scalar(const float* w, int64_t O, int64_t C, int64_t mr, float* u, int64_t u_stride);
// For the tiles k in [0, n) with keep[k] != 0 (all of them if keep is null), in order, j = 0, 1, ...:
// v[xi * v_stride + j] = (B^T d_k B)[xi], d_k(i, j) = x[shift[i*6 + j] + k]; returns the count.
// The padded layout's tile columns past each image's edge are garbage (1/8 to 1/3 of the tiles
// for the teacher's 28x28 to 7x7 layers); dropping them here keeps them out of the GEMMs.
// Room the callers leave (the AVX-512 variant computes whole vectors of 16 tiles): x is read up
// to shift + n + 15, and each v row is written up to 16 floats past its last tile.
int64_t winograd_input_scalar(const float* x, const int64_t* shift, int64_t n, const uint8_t* keep, float* v,
                              int64_t v_stride);
// For k in [0, n): the 4x4 tile A^T m_k A, m_k[xi] = m[xi * m_stride + k], through the epilogue,
// written as four interleaved rows: y[a * y_stride + 4k + b] = ep(Y_k(a, b)). Room the callers
// leave: each m row is read up to 15 floats past n, and each y row written up to
// 4 * round_up(n, 16) floats.
void winograd_output_scalar(const float* m, int64_t m_stride, int64_t n, const ChannelEpilogue& ep, float* y,
                            int64_t y_stride);

// The same tiles written by element instead of in interleaved rows:
// y[(a * 4 + b) * y_stride + k] = ep(Y_k(a, b)), 16 rows of n. Element (a, b) of consecutive tiles
// is a run of one phase plane of the next 3x3 convolution's padded copy (core/kernels/phase_split.h,
// tile_rows_to_phases), so a block's first convolution feeds its second without interleaving and
// splitting again. Room as for winograd_output: m rows read up to 15 floats past n, each y row
// written up to round_up(n, 16) floats.
void winograd_output_planar_scalar(const float* m, int64_t m_stride, int64_t n, const ChannelEpilogue& ep, float* y,
                                   int64_t y_stride);

struct WinogradKernel {
  const char* name;
  void (*filter)(const float*, int64_t, int64_t, int64_t, float*, int64_t);
  int64_t (*input)(const float*, const int64_t*, int64_t, const uint8_t*, float*, int64_t);
  void (*output)(const float*, int64_t, int64_t, const ChannelEpilogue&, float*, int64_t);
  void (*output_planar)(const float*, int64_t, int64_t, const ChannelEpilogue&, float*, int64_t);
  // Whether dropping tiles is fast (AVX-512: compress the lanes kept, one instruction per
  // vector). The others drop them lane by lane, slower than computing the garbage tiles: their
  // callers keep every tile.
  bool drops_fast;
};
// The selected variant; nullptr under KD_KERNELS=ref, where the convolution keeps its direct
// definition (nn/ops/conv2d_winograd.h) so that a reference run audits Winograd's rounding too,
// and under KD_WINOGRAD=off (the SIMD kernels, but the direct convolution).
const WinogradKernel* winograd_selected();
// The scalar references as a variant.
const WinogradKernel& winograd_reference();
// Every variant this CPU runs, the scalar reference first (for the tests).
std::vector<WinogradKernel> winograd_kernels();

#define KD_DECLARE_WINOGRAD(ns)                                                                                 \
  namespace ns {                                                                                                \
  void winograd_filter(const float* w, int64_t O, int64_t C, int64_t mr, float* u, int64_t u_stride);           \
  int64_t winograd_input(const float* x, const int64_t* shift, int64_t n, const uint8_t* keep, float* v,        \
                         int64_t v_stride);                                                                     \
  void winograd_output(const float* m, int64_t m_stride, int64_t n, const ChannelEpilogue& ep, float* y,        \
                       int64_t y_stride);                                                                       \
  void winograd_output_planar(const float* m, int64_t m_stride, int64_t n, const ChannelEpilogue& ep, float* y, \
                              int64_t y_stride);                                                                \
  }
KD_DECLARE_WINOGRAD(avx2)
KD_DECLARE_WINOGRAD(avx512)
KD_DECLARE_WINOGRAD(neon)
#undef KD_DECLARE_WINOGRAD

}  // namespace kd::kernels
