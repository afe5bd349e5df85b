// The direct convolution in double, the yardstick of the fast convolution paths' tests.
#pragma once
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "core/kernels/im2col.h"

namespace kd::test {

using kernels::ConvGeom;

// y[o, ho, wo] = sum_{c,i,j} w[o, c, i, j] x[c, ho*s - p + i, wo*s - p + j], in double.
inline std::vector<double> direct_conv(const float* x, const float* w, int64_t O, const ConvGeom& g) {
  const int64_t Ho = g.Ho(), Wo = g.Wo();
  std::vector<double> y(size_t(O * Ho * Wo), 0.0);
  for (int64_t o = 0; o < O; ++o)
    for (int64_t ho = 0; ho < Ho; ++ho)
      for (int64_t wo = 0; wo < Wo; ++wo) {
        double acc = 0;
        for (int64_t c = 0; c < g.C; ++c)
          for (int64_t i = 0; i < g.kh; ++i)
            for (int64_t j = 0; j < g.kw; ++j) {
              const int64_t h = ho * g.stride - g.pad + i, v = wo * g.stride - g.pad + j;
              if (h >= 0 && h < g.H && v >= 0 && v < g.W)
                acc += double(w[((o * g.C + c) * g.kh + i) * g.kw + j]) * x[(c * g.H + h) * g.W + v];
            }
        y[size_t((o * Ho + ho) * Wo + wo)] = acc;
      }
  return y;
}

// The input and weight gradients of direct_conv for dy, in double.
inline void direct_grads(const float* x, const float* w, const float* dy, int64_t O, const ConvGeom& g,
                         std::vector<double>& dx, std::vector<double>& dw) {
  const int64_t Ho = g.Ho(), Wo = g.Wo();
  dx.assign(size_t(g.C * g.H * g.W), 0.0);
  dw.assign(size_t(O * g.C * g.kh * g.kw), 0.0);
  for (int64_t o = 0; o < O; ++o)
    for (int64_t ho = 0; ho < Ho; ++ho)
      for (int64_t wo = 0; wo < Wo; ++wo)
        for (int64_t c = 0; c < g.C; ++c)
          for (int64_t i = 0; i < g.kh; ++i)
            for (int64_t j = 0; j < g.kw; ++j) {
              const int64_t h = ho * g.stride - g.pad + i, v = wo * g.stride - g.pad + j;
              if (h < 0 || h >= g.H || v < 0 || v >= g.W) continue;
              const double d = dy[(o * Ho + ho) * Wo + wo];
              dx[size_t((c * g.H + h) * g.W + v)] += d * w[((o * g.C + c) * g.kh + i) * g.kw + j];
              dw[size_t(((o * g.C + c) * g.kh + i) * g.kw + j)] += d * x[(c * g.H + h) * g.W + v];
            }
}

inline void check_close(const float* got, const std::vector<double>& want, double tol) {
  double worst = 0;
  for (size_t i = 0; i < want.size(); ++i) worst = std::max(worst, std::fabs(got[i] - want[i]));
  CHECK(worst <= tol);
}

}  // namespace kd::test
