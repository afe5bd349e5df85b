#include "core/kernels/taps.h"

namespace kd::kernels {

void taps_forward_scalar(const Taps& t, const float* w, int64_t n, float* out) {
  for (int64_t k = 0; k < n; ++k) {
    float acc = 0.f;
    for (int q = 0; q < 9; ++q) acc += w[q] * t.src[q][k + t.shift[q]];
    out[k] = acc;
  }
}

void taps_weight_scalar(const Taps& t, const float* d, int64_t n, float* dw) {
  for (int q = 0; q < 9; ++q) {
    const float* s = t.src[q] + t.shift[q];
    float acc = 0.f;
    for (int64_t k = 0; k < n; ++k) acc += d[k] * s[k];
    dw[q] += acc;
  }
}

}  // namespace kd::kernels
