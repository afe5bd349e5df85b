#include "nn/ops/conv2d_shifted.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "core/threads.h"

namespace kd::F::shifted {

namespace {

using kernels::ConvGeom;

// Where G images of C channels (each rows x cols_in) sit in the padded copy, and where the
// output columns land. Per channel: s*s sub-planes (the row and column parities at stride 2; one
// plane at stride 1) of Hq rows of R floats. Image g's pixel (h, w) is at padded row h + top and
// combined column g*Ws + lead + w.
//   stride 1: Ws = cols_in + lead, so neighbouring images share their zero columns (a 7x7 image
//             with padding 1 wastes 1 column in 8 instead of 2 in 9);
//   stride 2: Ws = cols_in + 2*lead rounded up to even, so every image starts on an even column
//             and the parities mean the same in every image.
// Tap (i, j) reads sub-plane (i % s, j % s) from row i / s, column j / s, so output (g, ho, wo)
// is at column ho*R + g*Ws/s + wo of the tap GEMM's result; the columns between are garbage.
struct Layout {
  int64_t s, G, rows, cols_in, top, lead, Ws, Hq, R, pitch, Ho, Wo, cols, total;
  int64_t shift(int64_t i, int64_t j) const { return (((i % s) * s + j % s) * Hq + i / s) * R + j / s; }
  int64_t out_col(int64_t g, int64_t ho) const { return ho * R + g * Ws / s; }
};

Layout make_layout(int64_t C, int64_t rows, int64_t cols_in, int64_t kh, int64_t kw, int64_t s, int64_t top,
                   int64_t lead, int64_t G) {
  Layout L{};
  L.s = s, L.G = G, L.rows = rows, L.cols_in = cols_in, L.top = top, L.lead = lead;
  const int64_t Hp = rows + 2 * top;
  L.Ho = (Hp - kh) / s + 1;
  L.Wo = (cols_in + 2 * lead - kw) / s + 1;
  int64_t Wc;  // the combined padded row
  if (s == 1) {
    L.Ws = cols_in + lead;
    Wc = lead + G * L.Ws;
  } else {
    L.Ws = (cols_in + 2 * lead + s - 1) / s * s;
    Wc = G * L.Ws;
  }
  L.Hq = (Hp + s - 1) / s;
  L.R = Wc / s;
  L.pitch = s * s * L.Hq * L.R;
  L.cols = L.Ho * L.R;
  // The last channel is read up to its pitch plus kw-1 floats (the last tap's shift past the last
  // output column), and past that by tap_gemm's last column tile, computed whole.
  L.total = C * L.pitch + kw + kernels::kTapGemmSlack;
  return L;
}

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

// The padded copy of G images (image g at src + g * image_stride, C planes of rows x cols_in).
void build(const float* src, int64_t image_stride, int64_t C, const Layout& L, float* dst) {
  std::fill(dst, dst + L.total, 0.f);
  for (int64_t g = 0; g < L.G; ++g)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t h = 0; h < L.rows; ++h) {
        const float* row = src + g * image_stride + (c * L.rows + h) * L.cols_in;
        const int64_t r = h + L.top, col0 = g * L.Ws + L.lead;
        if (L.s == 1) {
          std::memcpy(dst + c * L.pitch + r * L.R + col0, row, sizeof(float) * size_t(L.cols_in));
        } else {
          // Even and odd columns in two strided loops (a per-element parity test does not vectorize).
          float* plane = dst + c * L.pitch + (r % 2) * 2 * L.Hq * L.R + (r / 2) * L.R;
          for (int64_t parity = 0; parity < 2; ++parity) {
            const int64_t w0 = (col0 + parity) % 2, n = (L.cols_in - w0 + 1) / 2;
            const float* src = row + w0;
            float* d = plane + parity * L.Hq * L.R + (col0 + w0) / 2;
            for (int64_t k = 0; k < n; ++k) d[k] = src[2 * k];
          }
        }
      }
}

// out image g [O, Ho, Wo] (at out + g * image_stride) from the tap GEMM's result, garbage dropped,
// then the epilogue over each output plane while it is in cache (over whole planes: rows of 7 or 14
// floats would leave the vector loop to its scalar tail).
void crop(const float* yp, const Layout& L, int64_t O, float* out, int64_t image_stride, const Epilogue& ep = {}) {
  const int64_t P = L.Ho * L.Wo;
  for (int64_t g = 0; g < L.G; ++g)
    for (int64_t o = 0; o < O; ++o) {
      float* plane = out + g * image_stride + o * P;
      for (int64_t ho = 0; ho < L.Ho; ++ho)
        std::memcpy(plane + ho * L.Wo, yp + o * L.cols + L.out_col(g, ho), sizeof(float) * size_t(L.Wo));
      if (ep.active()) ep.apply(plane, P, o);
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
void run_taps(const kernels::TapGemmWeights& w, const float* xp, const Layout& L, int64_t kh, int64_t kw, float* yp,
              bool split_tiles) {
  const Shifts shift(L, kh, kw);
  const kernels::TapGemmArgs a{xp, L.pitch, shift.v, L.cols, yp, L.cols};
  const int64_t tiles = kernels::tap_gemm_tiles(w, L.cols);
  parallel_for_range(tiles, split_tiles, [&](int64_t b, int64_t e) { kernels::tap_gemm(w, a, b, e); });
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

void forward(const float* x, int64_t x_image, int64_t G, const kernels::TapGemmWeights& w, const ConvGeom& g,
             float* scratch, float* y, int64_t y_image, const Epilogue& ep, bool split_tiles) {
  const Layout L = forward_layout(g, G);
  float* xp = scratch;
  float* yp = scratch + L.total;
  build(x, x_image, g.C, L, xp);
  run_taps(w, xp, L, g.kh, g.kw, yp, split_tiles);
  crop(yp, L, w.O, y, y_image, ep);
}

void backward_input(const float* dy, int64_t dy_image, int64_t G, const kernels::TapGemmWeights& w, const ConvGeom& g,
                    float* scratch, float* dx, int64_t dx_image) {
  const Layout L = grad_layout(g, w.C, G);
  float* dyp = scratch;
  float* dxp = scratch + L.total;
  build(dy, dy_image, w.C, L, dyp);
  // dx[c, h, v] = sum_{o,i,j} W[o, c, i, j] * dyp[o, h + (kh-1-i), v + (kw-1-j)]: tap t' = (i', j')
  // of the packed weights is W's tap (kh-1-i', kw-1-j'), read at shift i'*R + j'.
  run_taps(w, dyp, L, g.kh, g.kw, dxp, false);
  crop(dxp, L, g.C, dx, dx_image);
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
