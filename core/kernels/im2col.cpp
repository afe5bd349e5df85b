#include "core/kernels/im2col.h"

#include <algorithm>
#include <cstring>

namespace kd::kernels {

// For kernel column j, the output columns wo whose input column wo*s - p + j lies in [0, W):
// wo in [lo, hi). Computing the range once per row keeps the inner loop branch-free.
static inline void valid_range(int64_t j, const ConvGeom& g, int64_t Wo, int64_t& lo, int64_t& hi) {
  int64_t off = j - g.pad;  // input column = wo*s + off
  lo = off >= 0 ? 0 : (-off + g.stride - 1) / g.stride;
  hi = off >= g.W ? 0 : std::min(Wo, (g.W - off + g.stride - 1) / g.stride);
  if (hi < lo) hi = lo;
}

void im2col(const float* x, const ConvGeom& g, float* col) {
  const int64_t Ho = g.Ho(), Wo = g.Wo();
  for (int64_t c = 0; c < g.C; ++c)
    for (int64_t i = 0; i < g.kh; ++i)
      for (int64_t j = 0; j < g.kw; ++j) {
        float* dst = col + ((c * g.kh + i) * g.kw + j) * Ho * Wo;
        int64_t lo, hi;
        valid_range(j, g, Wo, lo, hi);
        for (int64_t ho = 0; ho < Ho; ++ho) {
          float* d = dst + ho * Wo;
          int64_t hi_row = ho * g.stride - g.pad + i;
          if (hi_row < 0 || hi_row >= g.H) {
            for (int64_t wo = 0; wo < Wo; ++wo) d[wo] = 0.f;
            continue;
          }
          // Plain loops, not memcpy/memset: rows are 7-28 floats here, where a library call per
          // row cost more than the copy (measured on the teacher's 7x7 layers).
          const float* src = x + (c * g.H + hi_row) * g.W + (j - g.pad);
          for (int64_t wo = 0; wo < lo; ++wo) d[wo] = 0.f;
          if (g.stride == 1)
            for (int64_t wo = lo; wo < hi; ++wo) d[wo] = src[wo];
          else
            for (int64_t wo = lo; wo < hi; ++wo) d[wo] = src[wo * g.stride];
          for (int64_t wo = hi; wo < Wo; ++wo) d[wo] = 0.f;
        }
      }
}

void col2im_add(const float* col, const ConvGeom& g, float* x) {
  const int64_t Ho = g.Ho(), Wo = g.Wo();
  for (int64_t c = 0; c < g.C; ++c)
    for (int64_t i = 0; i < g.kh; ++i)
      for (int64_t j = 0; j < g.kw; ++j) {
        const float* src = col + ((c * g.kh + i) * g.kw + j) * Ho * Wo;
        int64_t lo, hi;
        valid_range(j, g, Wo, lo, hi);
        for (int64_t ho = 0; ho < Ho; ++ho) {
          int64_t hi_row = ho * g.stride - g.pad + i;
          if (hi_row < 0 || hi_row >= g.H) continue;
          float* d = x + (c * g.H + hi_row) * g.W + (j - g.pad);
          const float* s = src + ho * Wo;
          for (int64_t wo = lo; wo < hi; ++wo) d[wo * g.stride] += s[wo];
        }
      }
}

}  // namespace kd::kernels
