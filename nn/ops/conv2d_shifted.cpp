#include "nn/ops/conv2d_shifted.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "core/threads.h"
#include "nn/ops/eigen_map.h"

namespace kd::F::shifted {

namespace {

using kernels::ConvGeom;
using Strided = Eigen::Map<const RowMat, 0, Eigen::OuterStride<>>;

// Padded plane sizes for the forward / weight-gradient passes: Hp x Wp, plus a tail read (for
// garbage columns only) past the last channel's plane: kw-1 floats by the last tap's shift, and
// tap_gemm's last column tile, computed whole.
struct Padded {
  int64_t Hp, Wp, plane, total;
};
Padded padded_input(const ConvGeom& g) {
  Padded p{g.H + 2 * g.pad, g.W + 2 * g.pad, 0, 0};
  p.plane = p.Hp * p.Wp;
  p.total = g.C * p.plane + g.kw + kernels::kTapGemmSlack;
  return p;
}
// For the input gradient: dY padded by k-1-p on each side, so that its "valid" convolution with
// the flipped kernel has exactly the input's size H x W.
Padded padded_grad(const ConvGeom& g, int64_t O) {
  Padded p{g.Ho() + 2 * (g.kh - 1 - g.pad), g.Wo() + 2 * (g.kw - 1 - g.pad), 0, 0};
  p.plane = p.Hp * p.Wp;
  p.total = O * p.plane + g.kw + kernels::kTapGemmSlack;
  return p;
}

// dst[c] = src[c] (rows x cols) placed at (top, left) of a zeroed rows_p x cols_p plane.
void pad_planes(const float* src, int64_t C, int64_t rows, int64_t cols, int64_t top, int64_t left, const Padded& p,
                float* dst) {
  std::fill(dst, dst + p.total, 0.f);
  for (int64_t c = 0; c < C; ++c)
    for (int64_t r = 0; r < rows; ++r)
      std::memcpy(dst + c * p.plane + (r + top) * p.Wp + left, src + (c * rows + r) * cols, cols * sizeof(float));
}

}  // namespace

bool applies(const ConvGeom& g) {
  if (g.stride != 1 || g.kh * g.kw < 2 || g.kh * g.kw > 64 || g.pad > g.kh - 1 || g.pad > g.kw - 1) return false;
  // At stride 1 each output row carries kw-1 garbage columns.
  const int64_t Wo = g.Wo();
  return Wo > 0 && g.Ho() > 0 && 100 * (g.kw - 1) <= 15 * Wo;
}

size_t scratch_floats(const ConvGeom& g, int64_t O) {
  const Padded in = padded_input(g), gr = padded_grad(g, O);
  // Forward / weight gradient: Xp + (Y' or dY'), both at pitch Wp. Input gradient: dYp + dX'.
  const int64_t fwd = in.total + O * g.Ho() * in.Wp;
  const int64_t bwd = gr.total + g.C * g.H * gr.Wp;
  return size_t(std::max(fwd, bwd));
}

void add_from_taps_major(const float* dwt, int64_t O, const ConvGeom& g, float* dw) {
  const int64_t kk = g.kh * g.kw;
  for (int64_t o = 0; o < O; ++o)
    for (int64_t c = 0; c < g.C; ++c)
      for (int64_t k = 0; k < kk; ++k) dw[(o * g.C + c) * kk + k] += dwt[(k * O + o) * g.C + c];
}

void pack_forward(const float* w, int64_t O, const ConvGeom& g, const float* scale, kernels::TapGemmWeights& packed) {
  const int kk = int(g.kh * g.kw);
  kernels::tap_gemm_pack(w, O, g.C, kk, 1, g.C * kk, kk, scale, packed);
}

void pack_backward_input(const float* w, int64_t O, const ConvGeom& g, kernels::TapGemmWeights& packed) {
  // A'[t, c, o] = W[o, c, kk-1-t]: flipping both i and j reverses the flattened tap index.
  const int kk = int(g.kh * g.kw);
  kernels::tap_gemm_pack(w + (kk - 1), g.C, O, kk, -1, kk, g.C * kk, nullptr, packed);
}

namespace {

// out[o, r, :] = yp[o, r * pitch, :cols_out]: drops each row's garbage columns.
void crop(const float* yp, int64_t O, int64_t rows, int64_t pitch, int64_t cols_out, float* out) {
  for (int64_t o = 0; o < O; ++o)
    for (int64_t r = 0; r < rows; ++r)
      std::memcpy(out + (o * rows + r) * cols_out, yp + (o * rows + r) * pitch, cols_out * sizeof(float));
}

// Y' = the tap GEMM over padded planes of pitch Wp, at the row pitch Wp.
void run_taps(const kernels::TapGemmWeights& w, const float* planes, int64_t plane, int64_t Wp, int kh, int kw,
              int64_t cols, float* yp, bool split_tiles) {
  int64_t shift[64];
  KD_CHECK(kh * kw <= 64, "shifted conv: at most 64 taps, got ", kh, "x", kw);
  for (int i = 0; i < kh; ++i)
    for (int j = 0; j < kw; ++j) shift[i * kw + j] = i * Wp + j;
  const kernels::TapGemmArgs a{planes, plane, shift, cols, yp, cols};
  const int64_t tiles = kernels::tap_gemm_tiles(w, cols);
  parallel_for_range(tiles, split_tiles, [&](int64_t b, int64_t e) { kernels::tap_gemm(w, a, b, e); });
}

}  // namespace

void forward(const float* x, const kernels::TapGemmWeights& w, const ConvGeom& g, float* scratch, float* y,
             bool split_tiles) {
  const Padded p = padded_input(g);
  const int64_t Ho = g.Ho(), Wo = g.Wo(), cols = Ho * p.Wp;
  float* xp = scratch;
  float* yp = scratch + p.total;
  pad_planes(x, g.C, g.H, g.W, g.pad, g.pad, p, xp);
  run_taps(w, xp, p.plane, p.Wp, int(g.kh), int(g.kw), cols, yp, split_tiles);
  crop(yp, w.O, Ho, p.Wp, Wo, y);
}

void backward_input(const float* dy, const kernels::TapGemmWeights& w, const ConvGeom& g, float* scratch, float* dx) {
  const Padded p = padded_grad(g, w.C);
  const int64_t Ho = g.Ho(), Wo = g.Wo(), cols = g.H * p.Wp;
  float* dyp = scratch;
  float* dxp = scratch + p.total;
  pad_planes(dy, w.C, Ho, Wo, g.kh - 1 - g.pad, g.kw - 1 - g.pad, p, dyp);
  // dx[c, h, w] = sum_{o,i,j} W[o, c, i, j] * dyp[o, h + (kh-1-i), w + (kw-1-j)]: tap t' = (i', j')
  // of the packed weights is W's tap (kh-1-i', kw-1-j'), read at shift i'*Wp + j'.
  run_taps(w, dyp, p.plane, p.Wp, int(g.kh), int(g.kw), cols, dxp, false);
  crop(dxp, g.C, g.H, p.Wp, g.W, dx);
}

void backward_weight(const float* x, const float* dy, int64_t O, const ConvGeom& g, float* scratch, float* dwt) {
  const Padded p = padded_input(g);
  const int64_t Ho = g.Ho(), Wo = g.Wo(), cols = Ho * p.Wp;
  float* xp = scratch;
  float* dyw = scratch + p.total;
  pad_planes(x, g.C, g.H, g.W, g.pad, g.pad, p, xp);
  // dY at pitch Wp; the garbage columns are zero so the wrapped reads of Xp they meet add nothing.
  for (int64_t o = 0; o < O; ++o)
    for (int64_t r = 0; r < Ho; ++r) {
      float* d = dyw + o * cols + r * p.Wp;
      std::memcpy(d, dy + (o * Ho + r) * Wo, Wo * sizeof(float));
      std::fill(d + Wo, d + p.Wp, 0.f);
    }
  CMatMap DY(dyw, O, cols);
  for (int64_t i = 0; i < g.kh; ++i)
    for (int64_t j = 0; j < g.kw; ++j) {
      const int64_t k = i * g.kw + j;
      Strided B(xp + i * p.Wp + j, g.C, cols, Eigen::OuterStride<>(p.plane));
      MatMap(dwt + k * O * g.C, O, g.C).noalias() += DY * B.transpose();
    }
}

}  // namespace kd::F::shifted
