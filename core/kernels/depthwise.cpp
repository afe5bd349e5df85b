#include "core/kernels/depthwise.h"

#include <algorithm>

namespace kd::kernels {

static inline void col_range(int64_t j, const ConvGeom& g, int64_t Wo, int64_t& lo, int64_t& hi) {
  int64_t off = j - g.pad;
  lo = off >= 0 ? 0 : (-off + g.stride - 1) / g.stride;
  hi = off >= g.W ? 0 : std::min(Wo, (g.W - off + g.stride - 1) / g.stride);
  if (hi < lo) hi = lo;
}

void dw_plane_forward(const float* x, const float* w, const ConvGeom& g, float* out) {
  const int64_t Ho = g.Ho(), Wo = g.Wo();
  std::fill(out, out + Ho * Wo, 0.f);
  for (int64_t ho = 0; ho < Ho; ++ho) {
    float* o = out + ho * Wo;
    for (int64_t i = 0; i < g.kh; ++i) {
      int64_t r = ho * g.stride - g.pad + i;
      if (r < 0 || r >= g.H) continue;
      const float* xr = x + r * g.W;
      for (int64_t j = 0; j < g.kw; ++j) {
        int64_t lo, hi;
        col_range(j, g, Wo, lo, hi);
        const float wij = w[i * g.kw + j];
        const float* xs = xr + (j - g.pad);
        for (int64_t wo = lo; wo < hi; ++wo) o[wo] += wij * xs[wo * g.stride];
      }
    }
  }
}

void dw_plane_backward_input(const float* dout, const float* w, const ConvGeom& g, float* dx) {
  const int64_t Ho = g.Ho(), Wo = g.Wo();
  for (int64_t ho = 0; ho < Ho; ++ho) {
    const float* d = dout + ho * Wo;
    for (int64_t i = 0; i < g.kh; ++i) {
      int64_t r = ho * g.stride - g.pad + i;
      if (r < 0 || r >= g.H) continue;
      float* xr = dx + r * g.W;
      for (int64_t j = 0; j < g.kw; ++j) {
        int64_t lo, hi;
        col_range(j, g, Wo, lo, hi);
        const float wij = w[i * g.kw + j];
        float* xs = xr + (j - g.pad);
        for (int64_t wo = lo; wo < hi; ++wo) xs[wo * g.stride] += wij * d[wo];
      }
    }
  }
}

void dw_plane_backward_weight(const float* x, const float* dout, const ConvGeom& g, float* dw) {
  const int64_t Ho = g.Ho(), Wo = g.Wo();
  for (int64_t i = 0; i < g.kh; ++i)
    for (int64_t j = 0; j < g.kw; ++j) {
      int64_t lo, hi;
      col_range(j, g, Wo, lo, hi);
      float acc = 0.f;
      for (int64_t ho = 0; ho < Ho; ++ho) {
        int64_t r = ho * g.stride - g.pad + i;
        if (r < 0 || r >= g.H) continue;
        const float* xs = x + r * g.W + (j - g.pad);
        const float* d = dout + ho * Wo;
        for (int64_t wo = lo; wo < hi; ++wo) acc += d[wo] * xs[wo * g.stride];
      }
      dw[i * g.kw + j] += acc;
    }
}

}  // namespace kd::kernels
