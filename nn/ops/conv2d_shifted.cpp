#include "nn/ops/conv2d_shifted.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "core/spin_barrier.h"
#include "core/threads.h"
#include "nn/ops/padded_layout.h"

namespace kd::F::shifted {

namespace {

using kernels::ConvGeom;
using padded::build;
using padded::Layout;
using padded::make_layout;

Layout forward_layout(const ConvGeom& g, int64_t G) {
  return make_layout(g.C, g.H, g.W, g.kh, g.kw, g.stride, g.pad, g.pad, G);
}
// For the input gradient: dY padded by k-1-p, so that its stride-1 "valid" convolution with the
// flipped kernel has exactly the input's size H x W.
Layout grad_layout(const ConvGeom& g, int64_t O, int64_t G) {
  return make_layout(O, g.Ho(), g.Wo(), g.kh, g.kw, 1, g.kh - 1 - g.pad, g.kw - 1 - g.pad, G);
}
// The weight gradient's dY rows: the result's columns rounded up for tap_gemm_grad (zeros there).
int64_t grad_pitch(const Layout& L) {
  return (L.cols + kernels::kTapGemmGradColumns - 1) / kernels::kTapGemmGradColumns * kernels::kTapGemmGradColumns;
}

// Output channels [o0, o1) of image g [O, Ho, Wo] (at out + g * image_stride) from the tap GEMM's
// result, garbage dropped, then the epilogue over each output plane while it is in cache (over
// whole planes: rows of 7 or 14 floats would leave the vector loop to its scalar tail).
void crop(const float* yp, const Layout& L, int64_t o0, int64_t o1, float* out, int64_t image_stride,
          const Epilogue& ep = {}, const Residual& res = {}) {
  const int64_t P = L.Ho * L.Wo;
  for (int64_t g = 0; g < L.G; ++g)
    for (int64_t o = o0; o < o1; ++o) {
      const int64_t at = g * image_stride + o * P;
      float* plane = out + at;
      for (int64_t ho = 0; ho < L.Ho; ++ho)
        std::memcpy(plane + ho * L.Wo, yp + o * L.cols + L.out_col(g, ho), sizeof(float) * size_t(L.Wo));
      if (ep.active()) ep.apply(plane, P, o);
      if (res.active()) res.at(at).apply(plane, P);
    }
}

// Each tap's offset into the padded copy.
struct Shifts {
  int64_t v[64];
  Shifts(const Layout& L, int64_t kh, int64_t kw) {
    KD_CHECK(kh * kw <= 64, "shifted conv: at most 64 taps, got ", kh, "x", kw);
    for (int64_t i = 0; i < kh; ++i)
      for (int64_t j = 0; j < kw; ++j) v[i * kw + j] = L.shift(i, j);
  }
};

// yp [w.O, L.cols] = the tap GEMM over the padded copy xp.
void run_taps(const kernels::TapGemmWeights& w, const float* xp, const Layout& L, int64_t kh, int64_t kw, float* yp) {
  const Shifts shift(L, kh, kw);
  const kernels::TapGemmArgs a{xp, L.pitch, shift.v, L.cols, yp, L.cols, {}};
  kernels::tap_gemm(w, a, 0, kernels::tap_gemm_tiles(w, L.cols));
}

bool common(const ConvGeom& g) {
  return g.kh * g.kw >= 2 && g.kh * g.kw <= 64 && g.pad <= g.kh - 1 && g.pad <= g.kw - 1 && g.Ho() > 0 && g.Wo() > 0;
}

}  // namespace

bool applies_forward(const ConvGeom& g) {
  if ((g.stride != 1 && g.stride != 2) || !common(g)) return false;
  // Garbage columns per output row of a single image (batch 1 shares no padding): kw-1 at
  // stride 1, ceil((W+2p)/2) - Wo at stride 2.
  const Layout L = forward_layout(g, 1);
  return 100 * (L.R - g.Wo()) <= 30 * g.Wo();
}

bool applies_backward(const ConvGeom& g) { return g.stride == 1 && applies_forward(g); }

bool applies_weight(const ConvGeom& g) { return applies_forward(g); }

int64_t images_per_call(const ConvGeom& g, int64_t N, int threads) {
  if (N < threads) return 1;
  // Enough columns to fill the tap GEMM's tiles (~400: a 7x7 image gives 56), but at least one
  // call per thread, in a whole number of calls per thread.
  const int64_t per_image = std::max<int64_t>(1, forward_layout(g, 1).cols);
  const int64_t want = std::max<int64_t>(1, (400 + per_image - 1) / per_image);
  const int64_t per_thread = std::max<int64_t>(1, N / (int64_t(threads) * want));
  return (N + threads * per_thread - 1) / (threads * per_thread);
}

size_t scratch_floats(const ConvGeom& g, int64_t O, int64_t G) {
  // Forward: the padded copy + its result; weight gradient: the same copy + dY at the result's
  // pitch; input gradient (stride 1): dY padded + dX'.
  const Layout f = forward_layout(g, G);
  int64_t n = std::max(f.total + O * f.cols, f.total + O * grad_pitch(f));
  if (g.stride == 1) {
    const Layout gr = grad_layout(g, O, G);
    n = std::max(n, gr.total + g.C * gr.cols);
  }
  return size_t(n);
}

void add_from_taps_major(const float* dwt, int64_t O, const ConvGeom& g, float* dw) {
  const int64_t kk = g.kh * g.kw;
  for (int64_t o = 0; o < O; ++o)
    for (int64_t c = 0; c < g.C; ++c)
      for (int64_t k = 0; k < kk; ++k) dw[(o * g.C + c) * kk + k] += dwt[(k * O + o) * g.C + c];
}

kernels::TapGemmWeights forward_weights(const float* w, int64_t O, const ConvGeom& g) {
  const int64_t kk = g.kh * g.kw;
  return kernels::TapGemmWeights{
      .w = w, .rows = 1, .sb = g.C * kk, .so = 0, .sc = kk, .st = 1, .O = O, .C = g.C, .taps = int(kk)};
}

kernels::TapGemmWeights backward_input_weights(const float* w, int64_t O, const ConvGeom& g) {
  // A'[t, c, o] = W[o, c, kk-1-t]: flipping both i and j reverses the flattened tap index.
  const int64_t kk = g.kh * g.kw;
  return kernels::TapGemmWeights{
      .w = w + (kk - 1), .rows = 1, .sb = kk, .so = 0, .sc = g.C * kk, .st = -1, .O = g.C, .C = O, .taps = int(kk)};
}

namespace {
// A team's share of a tap GEMM between two barriers: every share of the padded copy is built
// before it starts, every share of the result is there when it returns.
void team_tap_gemm(const kernels::TapGemmWeights& w, const kernels::TapGemmArgs& a, int t, int nt,
                   SpinBarrier& barrier) {
  barrier.wait();
  kernels::tap_gemm_share(w, a, t, nt);
  barrier.wait();
}
}  // namespace

void forward(const float* x, int64_t x_image, int64_t G, const kernels::TapGemmWeights& w, const ConvGeom& g,
             float* scratch, float* y, int64_t y_image, const Epilogue& ep, bool split_tiles, const Residual& res) {
  const Layout L = forward_layout(g, G);
  float* xp = scratch;
  float* yp = scratch + L.total;
  if (!split_tiles || omp_in_parallel()) {
    build(x, x_image, g.C, L, xp);
    run_taps(w, xp, L, g.kh, g.kw, yp);
    crop(yp, L, 0, w.O, y, y_image, ep, res);
    return;
  }
  // One team for the whole convolution: each thread builds its share of the input channels, then
  // computes its share of the tiles, then crops its share of the output channels. (With only the
  // tiles shared, the copy and the crop ran on one thread while the other waited: at batch 1 the
  // teacher's threads spent 17% of a pass spinning.)
  const Shifts shift(L, g.kh, g.kw);
  const kernels::TapGemmArgs a{xp, L.pitch, shift.v, L.cols, yp, L.cols, {}};
  run_team(num_threads(), [&](int t, int nt, SpinBarrier& barrier) {
    build(x, x_image, g.C, L, xp, g.C * t / nt, g.C * (t + 1) / nt);
    team_tap_gemm(w, a, t, nt, barrier);
    crop(yp, L, w.O * t / nt, w.O * (t + 1) / nt, y, y_image, ep, res);
  });
}

size_t pair_scratch_floats(const ConvGeom& g1, int64_t O1, const ConvGeom& g2, int64_t O2) {
  const Layout L1 = forward_layout(g1, 1), L2 = forward_layout(g2, 1);
  return size_t(L1.total + O1 * L1.cols + L2.total + O2 * L2.cols);
}

void forward_pair(const float* x, const kernels::TapGemmWeights& w1, const ConvGeom& g1, const Epilogue& ep1,
                  const kernels::TapGemmWeights& w2, const ConvGeom& g2, const Epilogue& ep2, const Residual& res2,
                  float* scratch, float* y) {
  const Layout L1 = forward_layout(g1, 1), L2 = forward_layout(g2, 1);
  KD_CHECK(g2.stride == 1 && g2.C == w1.O && g2.H == L1.Ho && g2.W == L1.Wo,
           "shifted conv pair: the second convolution must be stride 1 over the first one's output");
  float* xp1 = scratch;
  float* yp1 = xp1 + L1.total;
  float* xp2 = yp1 + w1.O * L1.cols;
  float* yp2 = xp2 + L2.total;
  const Shifts shift1(L1, g1.kh, g1.kw), shift2(L2, g2.kh, g2.kw);
  const kernels::TapGemmArgs a1{xp1, L1.pitch, shift1.v, L1.cols, yp1, L1.cols, {}};
  const kernels::TapGemmArgs a2{xp2, L2.pitch, shift2.v, L2.cols, yp2, L2.cols, {}};
  run_team(num_threads(), [&](int t, int nt, SpinBarrier& barrier) {
    build(x, 0, g1.C, L1, xp1, g1.C * t / nt, g1.C * (t + 1) / nt);
    team_tap_gemm(w1, a1, t, nt, barrier);
    // conv1's output channels [c0, c1) through ep1, each over its whole result row (garbage
    // columns included: an element-wise op, the same values where they are kept), then built into
    // conv2's padded copy from where they lie (image 0's output row h at h * R).
    const int64_t c0 = g2.C * t / nt, c1 = g2.C * (t + 1) / nt;
    if (ep1.active())
      for (int64_t c = c0; c < c1; ++c) ep1.apply(yp1 + c * L1.cols, L1.cols, c);
    build(yp1, 0, g2.C, L2, xp2, c0, c1, L1.cols, L1.R);
    team_tap_gemm(w2, a2, t, nt, barrier);
    crop(yp2, L2, w2.O * t / nt, w2.O * (t + 1) / nt, y, w2.O * L2.Ho * L2.Wo, ep2, res2);
  });
}

void backward_input(const float* dy, int64_t dy_image, int64_t G, const kernels::TapGemmWeights& w, const ConvGeom& g,
                    float* scratch, float* dx, int64_t dx_image) {
  const Layout L = grad_layout(g, w.C, G);
  float* dyp = scratch;
  float* dxp = scratch + L.total;
  build(dy, dy_image, w.C, L, dyp);
  // dx[c, h, v] = sum_{o,i,j} W[o, c, i, j] * dyp[o, h + (kh-1-i), v + (kw-1-j)]: tap t' = (i', j')
  // of the packed weights is W's tap (kh-1-i', kw-1-j'), read at shift i'*R + j'.
  run_taps(w, dyp, L, g.kh, g.kw, dxp);
  crop(dxp, L, 0, g.C, dx, dx_image);
}

void backward_weight(const float* x, int64_t x_image, const float* dy, int64_t dy_image, int64_t G, int64_t O,
                     const ConvGeom& g, float* scratch, float* dwt) {
  const Layout L = forward_layout(g, G);
  const int64_t pitch = grad_pitch(L);
  float* xp = scratch;
  float* dyw = scratch + L.total;
  build(x, x_image, g.C, L, xp);
  // dY where the forward result had its columns; zero in the garbage ones, so the wrapped reads
  // of Xp they meet add nothing.
  std::fill(dyw, dyw + O * pitch, 0.f);
  for (int64_t n = 0; n < G; ++n)
    for (int64_t o = 0; o < O; ++o)
      for (int64_t r = 0; r < L.Ho; ++r)
        std::memcpy(dyw + o * pitch + L.out_col(n, r), dy + n * dy_image + (o * L.Ho + r) * L.Wo,
                    sizeof(float) * size_t(L.Wo));
  const Shifts shift(L, g.kh, g.kw);
  kernels::tap_gemm_grad(
      kernels::TapGemmGradArgs{xp, L.pitch, g.C, shift.v, int(g.kh * g.kw), dyw, pitch, O, L.cols, dwt});
}

}  // namespace kd::F::shifted
