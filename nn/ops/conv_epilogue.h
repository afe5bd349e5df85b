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

// The per-channel arrays (kernels::ChannelsEpilogue: the tap kernel takes it as it is) and a
// pass over whole planes.
struct Epilogue : kernels::ChannelsEpilogue {
  // dst[p] = clamp(src[p] * scale[o] + bias[o], lo, hi) for p < n; dst may be src. (An epilogue
  // with bias and clamp only computes src * 1 + b: exact.) The product and the sum each rounded,
  // not channel(o)'s fma: in a build without FMA instructions (KD_NATIVE=OFF on x86-64) std::fma
  // is a library call per element. Both are held to float64 by the tests.
  void apply(const float* src, float* dst, int64_t n, int64_t o) const {
    // Locals: read through `this`, the bounds could alias dst, and the loop would not vectorize.
    const float k = scale ? scale[o] : 1.f, b = bias ? bias[o] : 0.f, l = lo, h = hi;
    for (int64_t p = 0; p < n; ++p) dst[p] = clamp_pass_nan(src[p] * k + b, l, h);
  }
  void apply(float* row, int64_t n, int64_t o) const { apply(row, row, n, o); }
};

// A residual block's end (add, then ReLU / ReLU6) fused into its last convolution at inference:
// after the epilogue (the folded BN, no clamp), y = clamp(y + r, lo, hi) with r of y's shape,
// while y is in cache. The same operations as add_act_inference after the convolution, so the
// same bits; at batch 1 the separate pass ran on one thread (the teacher's: 20 us a pass).
struct Residual {
  const float* r = nullptr;  // r[i] is added to y[i], i counted from the y this is handed with
  float lo = -INFINITY, hi = INFINITY;
  bool active() const { return r != nullptr; }
  // The same residual for the part of y that starts `offset` floats further on.
  Residual at(int64_t offset) const { return {r ? r + offset : nullptr, lo, hi}; }
  // y[p] = clamp(y[p] + r[p], lo, hi) for p < n.
  void apply(float* y, int64_t n) const { add_clamp(y, r, y, n, lo, hi); }
};

}  // namespace kd::F
