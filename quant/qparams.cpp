#include "quant/qparams.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/error.h"

namespace kd::quant {

namespace {
constexpr float kEps = std::numeric_limits<float>::epsilon();  // torch.finfo(torch.float32).eps

void check_range(float lo, float hi, const char* what) {
  KD_CHECK(std::isfinite(lo) && std::isfinite(hi) && lo <= hi, what, ": range [", lo, ", ", hi,
           "] is not a finite interval (an observer saw no data, or NaN/Inf)");
}
}  // namespace

QParams affine_qparams(float lo, float hi, QRange r) {
  check_range(lo, hi, "affine_qparams");
  const float lo0 = std::min(lo, 0.f), hi0 = std::max(hi, 0.f);
  QParams p;
  p.scale = std::max((hi0 - lo0) / float(r.qmax - r.qmin), kEps);
  const float zp = float(r.qmin) - std::nearbyint(lo0 / p.scale);
  p.zero_point = int32_t(std::clamp(zp, float(r.qmin), float(r.qmax)));
  return p;
}

QParams symmetric_qparams(float lo, float hi, QRange r) {
  check_range(lo, hi, "symmetric_qparams");
  const float absmax = std::max(-std::min(lo, 0.f), std::max(hi, 0.f));
  QParams p;
  p.scale = std::max(absmax / (float(r.qmax - r.qmin) / 2.f), kEps);
  p.zero_point = 0;
  return p;
}

}  // namespace kd::quant
