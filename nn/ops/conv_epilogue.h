// What a convolution does to each output row right after computing it (still in cache):
// y = clamp(y * scale[o] + bias[o], lo, hi): inference batch norm (scale gamma / sqrt(var + eps),
// bias beta - mean * scale, plus the conv's own bias times scale) and the clamp of a following
// ReLU / ReLU6. NaN passes the clamp, as in relu.
#pragma once
#include <cmath>
#include <cstdint>

#include "core/kernels/epilogue.h"
#include "nn/ops/clamp.h"

namespace kd::F {

struct Epilogue {
  const float* scale = nullptr;
  const float* bias = nullptr;
  float lo = -INFINITY, hi = INFINITY;
  bool active() const { return scale || bias || lo != -INFINITY || hi != INFINITY; }
  // dst[p] = clamp(src[p] * scale[o] + bias[o], lo, hi) for p < n; dst may be src. (An epilogue
  // with bias and clamp only computes src * 1 + b: exact.)
  void apply(const float* src, float* dst, int64_t n, int64_t o) const {
    // Locals: read through `this`, the bounds could alias dst, and the loop would not vectorize.
    const float k = scale ? scale[o] : 1.f, b = bias ? bias[o] : 0.f, l = lo, h = hi;
    for (int64_t p = 0; p < n; ++p) dst[p] = clamp_pass_nan(src[p] * k + b, l, h);
  }
  void apply(float* row, int64_t n, int64_t o) const { apply(row, row, n, o); }
  // Channel o's values, for kernels that fuse them into their stores (an fma: one rounding where
  // apply() rounds the product and the sum).
  kernels::ChannelEpilogue channel(int64_t o) const { return {scale ? scale[o] : 1.f, bias ? bias[o] : 0.f, lo, hi}; }
};

}  // namespace kd::F
