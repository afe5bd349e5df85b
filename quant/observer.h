// Observers: they watch the values a tensor takes over calibration batches and propose the real
// range [lo, hi] that quantization will cover (quant/qparams.h turns it into scale, zero point).
//   minmax          the smallest and largest values seen (PyTorch's MinMaxObserver);
//   moving_average  lo += c * (batch_min - lo), likewise hi, c = 0.01, the first batch taken as
//                   it is (PyTorch's MovingAverageMinMaxObserver): QAT's choice, robust to outliers
//                   of single batches;
//   percentile      the p-th and (100-p)-th percentiles (p = 99.99 by default) of all values seen,
//                   from a histogram: clips rare outliers;
//   mse             the range [b*lo, a*hi] (a, b in (0, 1], 100 candidates each, the two ends
//                   searched jointly) that minimises the expected squared quantization error
//                   (rounding plus clipping) over the histogram of the values seen.
// The histogram has 2048 bins over a range that doubles (adjacent bins merged, counts kept) when
// a batch falls outside it, so it never needs a second pass over the data.
// Per-channel observers (weights) keep one minmax range per slice along axis 0.
#pragma once
#include <string>
#include <vector>

#include "core/tensor.h"
#include "quant/qparams.h"

namespace kd::quant {

enum class ObserverKind { minmax, moving_average, percentile, mse };
ObserverKind observer_kind(const std::string& name);  // throws, naming the allowed names
const char* observer_name(ObserverKind k);

// A histogram of float values over [-limit, limit], limit a power of two that grows on demand.
class Histogram {
 public:
  static constexpr int kBins = 2048;
  void add(const float* x, int64_t n);
  bool empty() const { return total_ == 0; }
  double total() const { return total_; }
  float limit() const { return limit_; }
  const std::vector<double>& counts() const { return counts_; }
  float bin_center(int b) const { return -limit_ + (float(b) + 0.5f) * (2 * limit_ / kBins); }
  // The value below which a fraction q of the mass lies (linear within a bin).
  float quantile(double q) const;

 private:
  void grow_to(float absmax);
  std::vector<double> counts_ = std::vector<double>(kBins, 0.0);
  float limit_ = 0.f;  // 0 until the first value
  double total_ = 0;
};

class Observer {
 public:
  explicit Observer(ObserverKind kind, double percentile = 99.99, double averaging = 0.01)
      : kind_(kind), percentile_(percentile), averaging_(averaging) {}
  void observe(const Tensor& x);  // any shape, f32
  bool empty() const { return batches_ == 0; }
  // The proposed range; throws if nothing was observed.
  std::pair<float, float> range() const;
  QParams qparams(QRange r = kActivationRange) const;
  ObserverKind kind() const { return kind_; }

 private:
  ObserverKind kind_;
  double percentile_, averaging_;
  int64_t batches_ = 0;
  float lo_ = 0.f, hi_ = 0.f;  // minmax / moving average
  Histogram hist_;             // percentile / mse
};

// Expected squared error of quantizing the histogram's values with range [lo, hi].
double histogram_quant_mse(const Histogram& h, float lo, float hi, QRange r);

// Per-output-channel symmetric weight parameters: slice o of w (axis 0) gets
// scale = max|w[o]| / 127, zero point 0.
std::vector<QParams> per_channel_weight_qparams(const Tensor& w, QRange r = kWeightRange);

}  // namespace kd::quant
