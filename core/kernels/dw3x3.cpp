#include "core/kernels/dw3x3.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "core/kernels/depthwise.h"
#include "core/kernels/dispatch.h"
#include "core/kernels/dw3x3_rows.h"
#include "core/kernels/taps.h"

namespace kd::kernels {

namespace {

using TapsFwd = void (*)(const Taps&, const float*, int64_t, float*);
using TapsWgt = void (*)(const Taps&, const float*, int64_t, float*);

struct TapsImpl {
  TapsFwd fwd;
  TapsWgt wgt;
};

TapsImpl impl(Isa isa) {
  switch (isa) {
#if !defined(KD_SCALAR_ONLY) && defined(__x86_64__)
    case Isa::avx512: return {avx512::taps_forward, avx512::taps_weight};
    case Isa::avx2: return {avx2::taps_forward, avx2::taps_weight};
#endif
#if !defined(KD_SCALAR_ONLY) && defined(__aarch64__)
    case Isa::neon: return {neon::taps_forward, neon::taps_weight};
#endif
    default: return {taps_forward_scalar, taps_weight_scalar};
  }
}

// Per-thread scratch planes, grown on demand and reused across calls.
float* scratch(int slot, size_t n) {
  thread_local std::vector<float> bufs[3];
  std::vector<float>& b = bufs[slot];
  if (b.size() < n) b.resize(n);
  return b.data();
}

// x (H x W) into a zeroed (H+2) x Wp plane at offset (1, 1).
void pad1(const float* x, int64_t H, int64_t W, int64_t Wp, int64_t rows, float* P) {
  std::memset(P, 0, sizeof(float) * size_t(rows * Wp + kTapsSlack));
  for (int64_t r = 0; r < H; ++r) std::memcpy(P + (r + 1) * Wp + 1, x + r * W, sizeof(float) * size_t(W));
}

// Stride-1 taps over a padded plane of row stride Wp: tap (i, j) at shift i*Wp + j.
Taps stride1_taps(const float* P, int64_t Wp) {
  Taps t;
  for (int q = 0; q < 9; ++q) {
    t.src[q] = P;
    t.shift[q] = (q / 3) * Wp + q % 3;
  }
  return t;
}

// The four parity planes of pad1(x) for stride 2: plane (a, b) holds P[2r + a][2c + b] at
// [r * Wd + c]. Tap (i, j) reads plane (i % 2, j % 2) at shift (i / 2) * Wd + j / 2.
struct Parity {
  int64_t Wd, rows;
  float* planes;  // 4 planes of rows * Wd (+ slack) each
  int64_t plane_size;
};

Parity split_parity(const float* x, int64_t H, int64_t W, int slot) {
  Parity p;
  p.Wd = (W + 3) / 2;
  p.rows = (H + 3) / 2;
  p.plane_size = p.rows * p.Wd + kTapsSlack;
  p.planes = scratch(slot, size_t(4 * p.plane_size));
  // Zero only what the deinterleave below does not write: the padding. Plane (a, b) row rr holds
  // padded row R = 2 rr + a, slot cc padded column C = 2 cc + b; inside means 1 <= R <= H and
  // 1 <= C <= W. (Zeroing all four planes first cost 9% of a batch-64 student pass.)
  for (int a = 0; a < 2; ++a)
    for (int b = 0; b < 2; ++b) {
      float* plane = p.planes + (a * 2 + b) * p.plane_size;
      const int64_t first_out = (W - b) / 2 + 1;  // the first slot with C > W
      for (int64_t rr = 0; rr < p.rows; ++rr) {
        float* row = plane + rr * p.Wd;
        const int64_t R = 2 * rr + a;
        if (R < 1 || R > H) {
          std::memset(row, 0, sizeof(float) * size_t(p.Wd));
          continue;
        }
        if (b == 0) row[0] = 0.f;  // C = 0
        for (int64_t cc = first_out; cc < p.Wd; ++cc) row[cc] = 0.f;
      }
      std::memset(plane + p.rows * p.Wd, 0, sizeof(float) * size_t(kTapsSlack));
    }
  // Padded coordinate (R, Cc) = (r + 1, c + 1).
  for (int64_t r = 0; r < H; ++r) {
    const int64_t R = r + 1;
    float* row_even = p.planes + ((R % 2) * 2 + 0) * p.plane_size + (R / 2) * p.Wd;
    float* row_odd = p.planes + ((R % 2) * 2 + 1) * p.plane_size + (R / 2) * p.Wd;
    // Input column c sits at padded column c + 1: even c -> odd plane slot c/2, odd c -> even
    // plane slot (c + 1)/2. A branch-free deinterleave the compiler vectorizes.
    const float* xr = x + r * W;
    int64_t c = 0;
    for (; c + 1 < W; c += 2) {
      row_odd[c / 2] = xr[c];
      row_even[c / 2 + 1] = xr[c + 1];
    }
    if (c < W) row_odd[c / 2] = xr[c];
  }
  return p;
}

Taps stride2_taps(const Parity& p) {
  Taps t;
  for (int q = 0; q < 9; ++q) {
    const int i = q / 3, j = q % 3;
    t.src[q] = p.planes + ((i % 2) * 2 + (j % 2)) * p.plane_size;
    t.shift[q] = (i / 2) * p.Wd + j / 2;
  }
  return t;
}

void flip(const float* w, float* wf) {
  for (int q = 0; q < 9; ++q) wf[q] = w[8 - q];
}

// Copies the valid Wo columns of rows laid out at stride Ws into a dense Ho x Wo array.
void compact(const float* src, int64_t Ho, int64_t Wo, int64_t Ws, float* dst) {
  for (int64_t r = 0; r < Ho; ++r) std::memcpy(dst + r * Wo, src + r * Ws, sizeof(float) * size_t(Wo));
}

// dout (Ho x Wo, dense) at row stride Ws with zero padding columns, plus slack.
const float* spread_rows(const float* dout, int64_t Ho, int64_t Wo, int64_t Ws, int slot) {
  float* d = scratch(slot, size_t(Ho * Ws + kTapsSlack));
  std::memset(d, 0, sizeof(float) * size_t(Ho * Ws + kTapsSlack));
  for (int64_t r = 0; r < Ho; ++r) std::memcpy(d + r * Ws, dout + r * Wo, sizeof(float) * size_t(Wo));
  return d;
}

}  // namespace

bool dw3x3_applies(const ConvGeom& g) {
  return g.kh == 3 && g.kw == 3 && g.pad == 1 && (g.stride == 1 || g.stride == 2) && g.H >= 1 && g.W >= 1;
}

// The forward without epilogue on the taps below (the reference: depthwise.h's loops).
static void dw3x3_forward_taps(Isa isa, const float* x, const float* w, const ConvGeom& g, float* out);

// AVX-512 runs along rows with masked loads (dw3x3_rows.h) instead of the taps below, with one
// kernel per stride.
#if !defined(KD_SCALAR_ONLY) && defined(__x86_64__)
static bool use_rows(Isa isa, const ConvGeom& g, int64_t stride) { return isa == Isa::avx512 && g.stride == stride; }
#endif

void dw3x3_forward(Isa isa, const float* x, const float* w, const ConvGeom& g, float* out, const ChannelEpilogue& ep) {
#if !defined(KD_SCALAR_ONLY) && defined(__x86_64__)
  if (use_rows(isa, g, 1)) return avx512::dw3x3_s1_rows_forward(x, w, g.H, g.W, out, ep);
  if (use_rows(isa, g, 2)) return avx512::dw3x3_s2_rows_forward(x, w, g.H, g.W, out, ep);
#endif
  dw3x3_forward_taps(isa, x, w, g, out);
  if (ep.active()) ep.apply(out, g.Ho() * g.Wo());
}

static void dw3x3_forward_taps(Isa isa, const float* x, const float* w, const ConvGeom& g, float* out) {
  if (isa == Isa::ref) {
    dw_plane_forward(x, w, g, out);
    return;
  }
  const int64_t H = g.H, W = g.W, Ho = g.Ho(), Wo = g.Wo();
  if (g.stride == 1) {
    const int64_t Wp = W + 2;
    float* P = scratch(0, size_t((H + 2) * Wp + kTapsSlack));
    pad1(x, H, W, Wp, H + 2, P);
    float* o = scratch(1, size_t(Ho * Wp + kTapsSlack));
    impl(isa).fwd(stride1_taps(P, Wp), w, Ho * Wp, o);
    compact(o, Ho, Wo, Wp, out);
  } else {
    Parity p = split_parity(x, H, W, 0);
    float* o = scratch(1, size_t(Ho * p.Wd + kTapsSlack));
    impl(isa).fwd(stride2_taps(p), w, Ho * p.Wd, o);
    compact(o, Ho, Wo, p.Wd, out);
  }
}

void dw3x3_backward_input(Isa isa, const float* dout, const float* w, const ConvGeom& g, float* dx) {
  if (isa == Isa::ref) {
    std::fill(dx, dx + g.H * g.W, 0.f);
    dw_plane_backward_input(dout, w, g, dx);
    return;
  }
#if !defined(KD_SCALAR_ONLY) && defined(__x86_64__)
  if (use_rows(isa, g, 2)) return avx512::dw3x3_s2_rows_input(dout, w, g.H, g.W, dx);
  if (use_rows(isa, g, 1)) {  // the forward of dout with the flipped kernel (Ho = H, Wo = W)
    float wf[9];
    flip(w, wf);
    return avx512::dw3x3_s1_rows_forward(dout, wf, g.H, g.W, dx, {});
  }
#endif
  const int64_t H = g.H, W = g.W, Ho = g.Ho(), Wo = g.Wo(), Wp = W + 2;
  float* Z = scratch(0, size_t((H + 2) * Wp + kTapsSlack));
  if (g.stride == 1) {
    pad1(dout, Ho, Wo, Wp, H + 2, Z);
  } else {
    std::memset(Z, 0, sizeof(float) * size_t((H + 2) * Wp + kTapsSlack));
    for (int64_t ho = 0; ho < Ho; ++ho)
      for (int64_t wo = 0; wo < Wo; ++wo) Z[(2 * ho + 1) * Wp + 2 * wo + 1] = dout[ho * Wo + wo];
  }
  float wf[9];
  flip(w, wf);
  float* o = scratch(1, size_t(H * Wp + kTapsSlack));
  impl(isa).fwd(stride1_taps(Z, Wp), wf, H * Wp, o);
  compact(o, H, W, Wp, dx);
}

void dw3x3_backward_weight(Isa isa, const float* x, const float* dout, const ConvGeom& g, float* dw) {
  if (isa == Isa::ref) {
    dw_plane_backward_weight(x, dout, g, dw);
    return;
  }
#if !defined(KD_SCALAR_ONLY) && defined(__x86_64__)
  if (use_rows(isa, g, 1)) return avx512::dw3x3_s1_rows_weight(x, dout, g.H, g.W, 1, 0, 0, dw);
  if (use_rows(isa, g, 2)) return avx512::dw3x3_s2_rows_weight(x, dout, g.H, g.W, 1, 0, 0, dw);
#endif
  const int64_t H = g.H, W = g.W, Ho = g.Ho(), Wo = g.Wo();
  if (g.stride == 1) {
    const int64_t Wp = W + 2;
    float* P = scratch(0, size_t((H + 2) * Wp + kTapsSlack));
    pad1(x, H, W, Wp, H + 2, P);
    impl(isa).wgt(stride1_taps(P, Wp), spread_rows(dout, Ho, Wo, Wp, 1), Ho * Wp, dw);
  } else {
    Parity p = split_parity(x, H, W, 0);
    impl(isa).wgt(stride2_taps(p), spread_rows(dout, Ho, Wo, p.Wd, 1), Ho * p.Wd, dw);
  }
}

void dw3x3_backward_weight_planes(Isa isa, const float* x, const float* dout, const ConvGeom& g, int64_t n,
                                  int64_t x_stride, int64_t d_stride, float* dw) {
#if !defined(KD_SCALAR_ONLY) && defined(__x86_64__)
  if (use_rows(isa, g, 1)) return avx512::dw3x3_s1_rows_weight(x, dout, g.H, g.W, n, x_stride, d_stride, dw);
  if (use_rows(isa, g, 2)) return avx512::dw3x3_s2_rows_weight(x, dout, g.H, g.W, n, x_stride, d_stride, dw);
#endif
  for (int64_t i = 0; i < n; ++i) dw3x3_backward_weight(isa, x + i * x_stride, dout + i * d_stride, g, dw);
}

void dw3x3_forward(const float* x, const float* w, const ConvGeom& g, float* out, const ChannelEpilogue& ep) {
  dw3x3_forward(selected_isa(), x, w, g, out, ep);
}
void dw3x3_backward_weight_planes(const float* x, const float* dout, const ConvGeom& g, int64_t n, int64_t x_stride,
                                  int64_t d_stride, float* dw) {
  dw3x3_backward_weight_planes(selected_isa(), x, dout, g, n, x_stride, d_stride, dw);
}
void dw3x3_backward_input(const float* dout, const float* w, const ConvGeom& g, float* dx) {
  dw3x3_backward_input(selected_isa(), dout, w, g, dx);
}
void dw3x3_backward_weight(const float* x, const float* dout, const ConvGeom& g, float* dw) {
  dw3x3_backward_weight(selected_isa(), x, dout, g, dw);
}

}  // namespace kd::kernels
