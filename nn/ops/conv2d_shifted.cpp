#include "nn/ops/conv2d_shifted.h"

#include <algorithm>
#include <cstring>

#include "nn/ops/eigen_map.h"

namespace kd::F::shifted {

namespace {

using kernels::ConvGeom;
using Strided = Eigen::Map<const RowMat, 0, Eigen::OuterStride<>>;

// Padded plane sizes for the forward / weight-gradient passes: Hp x Wp, plus a tail of kw-1
// floats read (for garbage columns only) past the last channel's plane.
struct Padded {
  int64_t Hp, Wp, plane, total;
};
Padded padded_input(const ConvGeom& g) {
  Padded p{g.H + 2 * g.pad, g.W + 2 * g.pad, 0, 0};
  p.plane = p.Hp * p.Wp;
  p.total = g.C * p.plane + g.kw;
  return p;
}
// For the input gradient: dY padded by k-1-p on each side, so that its "valid" convolution with
// the flipped kernel has exactly the input's size H x W.
Padded padded_grad(const ConvGeom& g, int64_t O) {
  Padded p{g.Ho() + 2 * (g.kh - 1 - g.pad), g.Wo() + 2 * (g.kw - 1 - g.pad), 0, 0};
  p.plane = p.Hp * p.Wp;
  p.total = O * p.plane + g.kw;
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
  if (g.stride != 1 || g.kh * g.kw < 2 || g.pad > g.kh - 1 || g.pad > g.kw - 1) return false;
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

void to_taps_major(const float* w, int64_t O, const ConvGeom& g, float* wt) {
  const int64_t kk = g.kh * g.kw;
  for (int64_t o = 0; o < O; ++o)
    for (int64_t c = 0; c < g.C; ++c)
      for (int64_t k = 0; k < kk; ++k) wt[(k * O + o) * g.C + c] = w[(o * g.C + c) * kk + k];
}

void add_from_taps_major(const float* dwt, int64_t O, const ConvGeom& g, float* dw) {
  const int64_t kk = g.kh * g.kw;
  for (int64_t o = 0; o < O; ++o)
    for (int64_t c = 0; c < g.C; ++c)
      for (int64_t k = 0; k < kk; ++k) dw[(o * g.C + c) * kk + k] += dwt[(k * O + o) * g.C + c];
}

void forward(const float* x, const float* wt, int64_t O, const ConvGeom& g, float* scratch, float* y) {
  const Padded p = padded_input(g);
  const int64_t Ho = g.Ho(), Wo = g.Wo(), cols = Ho * p.Wp;
  float* xp = scratch;
  float* yp = scratch + p.total;
  pad_planes(x, g.C, g.H, g.W, g.pad, g.pad, p, xp);
  MatMap Y(yp, O, cols);
  for (int64_t i = 0; i < g.kh; ++i)
    for (int64_t j = 0; j < g.kw; ++j) {
      const int64_t k = i * g.kw + j;
      CMatMap Wk(wt + k * O * g.C, O, g.C);
      Strided B(xp + i * p.Wp + j, g.C, cols, Eigen::OuterStride<>(p.plane));
      if (k == 0)
        Y.noalias() = Wk * B;
      else
        Y.noalias() += Wk * B;
    }
  for (int64_t o = 0; o < O; ++o)
    for (int64_t r = 0; r < Ho; ++r) std::memcpy(y + (o * Ho + r) * Wo, yp + o * cols + r * p.Wp, Wo * sizeof(float));
}

void backward_input(const float* dy, const float* wt, int64_t O, const ConvGeom& g, float* scratch, float* dx) {
  const Padded p = padded_grad(g, O);
  const int64_t Ho = g.Ho(), Wo = g.Wo(), cols = g.H * p.Wp;
  float* dyp = scratch;
  float* dxp = scratch + p.total;
  pad_planes(dy, O, Ho, Wo, g.kh - 1 - g.pad, g.kw - 1 - g.pad, p, dyp);
  // dx[c, h, w] = sum_{o,i,j} W[o, c, i, j] * dyp[o, h + (kh-1-i), w + (kw-1-j)].
  MatMap DX(dxp, g.C, cols);
  for (int64_t i = 0; i < g.kh; ++i)
    for (int64_t j = 0; j < g.kw; ++j) {
      const int64_t k = i * g.kw + j;
      CMatMap Wk(wt + k * O * g.C, O, g.C);
      Strided B(dyp + (g.kh - 1 - i) * p.Wp + (g.kw - 1 - j), O, cols, Eigen::OuterStride<>(p.plane));
      if (k == 0)
        DX.noalias() = Wk.transpose() * B;
      else
        DX.noalias() += Wk.transpose() * B;
    }
  for (int64_t c = 0; c < g.C; ++c)
    for (int64_t r = 0; r < g.H; ++r)
      std::memcpy(dx + (c * g.H + r) * g.W, dxp + c * cols + r * p.Wp, g.W * sizeof(float));
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
