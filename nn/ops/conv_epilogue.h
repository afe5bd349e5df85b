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
    const float b = bias ? bias[o] : 0.f;
    for (int64_t p = 0; p < n; ++p) {
      const float v = src[p] + b;
      dst[p] = v < lo ? lo : (v > hi ? hi : v);
    }
  }
  void apply(float* row, int64_t n, int64_t o) const { apply(row, row, n, o); }
};

}  // namespace kd::F
