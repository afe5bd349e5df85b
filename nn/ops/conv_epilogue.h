// What a convolution does to each output row right after computing it (still in cache):
// y = clamp(y + bias[o], lo, hi), with the bias of folded batch norm and the clamp of a following
// ReLU / ReLU6. NaN passes the clamp, as in relu.
#pragma once
#include <cmath>
#include <cstdint>

namespace kd::F {

struct Epilogue {
  const float* bias = nullptr;
  float lo = -INFINITY, hi = INFINITY;
  bool active() const { return bias || lo != -INFINITY || hi != INFINITY; }
  // dst[p] = clamp(src[p] + bias[o], lo, hi) for p < n; dst may be src.
  void apply(const float* src, float* dst, int64_t n, int64_t o) const {
    // Locals: read through `this`, the bounds could alias dst, and the loop would not vectorize.
    const float b = bias ? bias[o] : 0.f, l = lo, h = hi;
    for (int64_t p = 0; p < n; ++p) {
      const float v = src[p] + b;
      dst[p] = v < l ? l : (v > h ? h : v);
    }
  }
  void apply(float* row, int64_t n, int64_t o) const { apply(row, row, n, o); }
};

}  // namespace kd::F
