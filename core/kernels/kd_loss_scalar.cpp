// The scalar reference of kd_loss.h: the same three passes, one element at a time, sums in double.
#include <cmath>

#include "core/kernels/kd_loss.h"

namespace kd::kernels {

float kd_row_scalar(const float* s, const float* t, int32_t y, int64_t K, float T, float alpha, float inv_n,
                    float* grad_row, float* scratch) {
  const bool soft = alpha > 0.f, hard = alpha < 1.f;
  float* et = scratch;
  float* es = scratch + (K + 15) / 16 * 16;  // rows of kd_row_scratch_floats
  float* eh = es + (K + 15) / 16 * 16;
  float ms = s[0], mt = soft ? t[0] : 0.f;
  for (int64_t i = 1; i < K; ++i) {
    ms = std::max(ms, s[i]);
    if (soft) mt = std::max(mt, t[i]);
  }
  double zt = 0, zs = 0, zh = 0, dot = 0;
  for (int64_t i = 0; i < K; ++i) {
    if (soft) {
      et[i] = std::exp((t[i] - mt) / T);
      es[i] = std::exp((s[i] - ms) / T);
      zt += et[i], zs += es[i];
      dot += double(et[i]) * double(t[i] - s[i]);
    }
    if (hard) {
      eh[i] = std::exp(s[i] - ms);
      zh += eh[i];
    }
  }
  double loss = 0;
  if (soft) {
    const double kl = dot / (zt * T) + double(ms - mt) / T + std::log(zs) - std::log(zt);
    loss += double(alpha) * T * T * kl;
  }
  if (hard) loss += double(1.f - alpha) * (std::log(zh) + ms - s[y]);
  if (grad_row) {
    const float a = soft ? alpha * T * inv_n : 0.f, b = (1.f - alpha) * inv_n;
    const float izt = soft ? float(1.0 / zt) : 0.f, izs = soft ? float(1.0 / zs) : 0.f, izh = hard ? float(1.0 / zh) : 0.f;
    for (int64_t i = 0; i < K; ++i) {
      float g = 0.f;
      if (soft) g += a * (es[i] * izs - et[i] * izt);
      if (hard) g += b * (eh[i] * izh);
      grad_row[i] = g;
    }
    if (hard) grad_row[y] -= b;
  }
  return float(loss);
}

}  // namespace kd::kernels
