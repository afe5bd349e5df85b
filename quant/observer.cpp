#include "quant/observer.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace kd::quant {

ObserverKind observer_kind(const std::string& name) {
  if (name == "minmax") return ObserverKind::minmax;
  if (name == "moving_average") return ObserverKind::moving_average;
  if (name == "percentile") return ObserverKind::percentile;
  if (name == "mse") return ObserverKind::mse;
  throw Error("unknown observer \"" + name + "\" (allowed: minmax, moving_average, percentile, mse)");
}

const char* observer_name(ObserverKind k) {
  switch (k) {
    case ObserverKind::minmax: return "minmax";
    case ObserverKind::moving_average: return "moving_average";
    case ObserverKind::percentile: return "percentile";
    case ObserverKind::mse: return "mse";
  }
  return "?";
}

void Histogram::grow_to(float absmax) {
  if (limit_ == 0.f) {
    limit_ = std::exp2(std::ceil(std::log2(std::max(absmax, 1e-30f))));
    if (limit_ < absmax) limit_ *= 2;
    return;
  }
  // Doubling the range maps bins 2i and 2i+1 of the old range onto bin kBins/4 + i of the new:
  // the counts stay exact, only the resolution halves.
  while (limit_ < absmax) {
    std::vector<double> merged(kBins, 0.0);
    for (int b = 0; b < kBins; ++b) merged[kBins / 4 + b / 2] += counts_[b];
    counts_.swap(merged);
    limit_ *= 2;
  }
}

void Histogram::add(const float* x, int64_t n) {
  float absmax = 0.f;
  for (int64_t i = 0; i < n; ++i)
    if (std::isfinite(x[i])) absmax = std::max(absmax, std::fabs(x[i]));
  grow_to(absmax);
  const float to_bin = kBins / (2 * limit_);
  for (int64_t i = 0; i < n; ++i) {
    if (!std::isfinite(x[i])) continue;
    const int b = std::clamp(int((x[i] + limit_) * to_bin), 0, kBins - 1);
    counts_[b] += 1;
  }
  total_ += double(n);
}

float Histogram::quantile(double q) const {
  KD_CHECK(total_ > 0, "Histogram::quantile: no values observed");
  const double target = std::clamp(q, 0.0, 1.0) * total_;
  const float width = 2 * limit_ / kBins;
  double below = 0;
  for (int b = 0; b < kBins; ++b) {
    if (below + counts_[b] >= target && counts_[b] > 0) {
      const double frac = (target - below) / counts_[b];
      return -limit_ + (float(b) + float(frac)) * width;
    }
    below += counts_[b];
  }
  return limit_;
}

double histogram_quant_mse(const Histogram& h, float lo, float hi, QRange r) {
  const QParams p = affine_qparams(lo, hi, r);
  double err = 0;
  for (int b = 0; b < Histogram::kBins; ++b) {
    if (h.counts()[b] == 0) continue;
    const float x = h.bin_center(b);
    const double d = double(x) - fake_quantize(x, p, r);
    err += h.counts()[b] * d * d;
  }
  return err / h.total();
}

void Observer::observe(const Tensor& x) {
  KD_CHECK(x.dtype() == DType::f32, "Observer::observe: expected f32, got ", dtype_name(x.dtype()));
  Tensor c = x.contiguous();
  const float* v = c.f32();
  const int64_t n = c.numel();
  if (n == 0) return;
  if (kind_ == ObserverKind::percentile || kind_ == ObserverKind::mse) {
    hist_.add(v, n);
    ++batches_;
    return;
  }
  float lo = INFINITY, hi = -INFINITY;
  for (int64_t i = 0; i < n; ++i)
    if (std::isfinite(v[i])) lo = std::min(lo, v[i]), hi = std::max(hi, v[i]);
  if (lo > hi) return;  // nothing finite in this batch
  if (batches_ == 0) {
    lo_ = lo, hi_ = hi;
  } else if (kind_ == ObserverKind::minmax) {
    lo_ = std::min(lo_, lo), hi_ = std::max(hi_, hi);
  } else {
    lo_ += float(averaging_) * (lo - lo_);
    hi_ += float(averaging_) * (hi - hi_);
  }
  ++batches_;
}

std::pair<float, float> Observer::range() const {
  KD_CHECK(batches_ > 0, "observer (", observer_name(kind_), "): no data observed; calibrate before converting");
  switch (kind_) {
    case ObserverKind::minmax:
    case ObserverKind::moving_average: return {lo_, hi_};
    case ObserverKind::percentile: {
      const double tail = (100.0 - percentile_) / 100.0;
      return {hist_.quantile(tail), hist_.quantile(1.0 - tail)};
    }
    case ObserverKind::mse: {
      // Both ends shrink independently (an outlier on one side must not clip the other):
      // [b * lo, a * hi] for a, b in {1, 0.99, ..., 0.01}; a side at 0 stays at 0.
      const float lo = hist_.quantile(0.0), hi = hist_.quantile(1.0);
      float best_lo = lo, best_hi = hi;
      double best = histogram_quant_mse(hist_, lo, hi, kActivationRange);
      const int lo_steps = lo < 0.f ? 100 : 1, hi_steps = hi > 0.f ? 100 : 1;
      for (int i = 0; i < lo_steps; ++i)
        for (int j = 0; j < hi_steps; ++j) {
          const float cl = (1.f - float(i) / 100.f) * lo, ch = (1.f - float(j) / 100.f) * hi;
          const double e = histogram_quant_mse(hist_, cl, ch, kActivationRange);
          if (e < best) best = e, best_lo = cl, best_hi = ch;
        }
      return {best_lo, best_hi};
    }
  }
  return {lo_, hi_};
}

QParams Observer::qparams(QRange r) const {
  const auto [lo, hi] = range();
  return r.qmin < 0 && r.qmin == -r.qmax ? symmetric_qparams(lo, hi, r) : affine_qparams(lo, hi, r);
}

std::vector<QParams> per_channel_weight_qparams(const Tensor& w, QRange r) {
  KD_CHECK(w.dim() >= 1 && w.dtype() == DType::f32, "per_channel_weight_qparams: expected an f32 weight, got ",
           shape_str(w.shape()));
  Tensor c = w.contiguous();
  const int64_t O = c.size(0), per = O ? c.numel() / O : 0;
  std::vector<QParams> out(static_cast<size_t>(O));
  for (int64_t o = 0; o < O; ++o) {
    float lo = 0.f, hi = 0.f;
    for (int64_t i = 0; i < per; ++i) lo = std::min(lo, c.f32()[o * per + i]), hi = std::max(hi, c.f32()[o * per + i]);
    out[size_t(o)] = symmetric_qparams(lo, hi, r);
  }
  return out;
}

}  // namespace kd::quant
