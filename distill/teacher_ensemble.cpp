#include "distill/teacher_ensemble.h"

#include <algorithm>
#include <cmath>

namespace kd::distill {

Tensor ensemble_logits(const std::vector<Tensor>& logits, const std::vector<double>& weights, float T) {
  KD_CHECK(!logits.empty() && logits.size() == weights.size(), "ensemble_logits: ", logits.size(), " teachers and ",
           weights.size(), " weights");
  KD_CHECK(T > 0, "ensemble_logits: temperature ", T, " must be > 0");
  if (logits.size() == 1) return logits[0];
  const Shape& shape = logits[0].shape();
  double wsum = 0;
  for (size_t i = 0; i < logits.size(); ++i) {
    KD_CHECK(logits[i].shape() == shape && shape.size() == 2, "ensemble_logits: teacher ", i, " logits ",
             shape_str(logits[i].shape()), " vs teacher 0 ", shape_str(shape));
    KD_CHECK(weights[i] > 0, "ensemble_logits: weight ", i, " is ", weights[i], ", must be > 0");
    wsum += weights[i];
  }
  const int64_t N = shape[0], K = shape[1];
  std::vector<Tensor> lc;
  for (const Tensor& t : logits) lc.push_back(t.contiguous());
  Tensor out = Tensor::empty(shape);
  const double floor_log = std::log(1e-30);
  for (int64_t n = 0; n < N; ++n) {
    std::vector<double> p(K, 0.0);
    for (size_t i = 0; i < lc.size(); ++i) {
      const float* z = lc[i].f32() + n * K;
      // softmax(z / T) with the max subtracted (no overflow for large logits or small T).
      const double m = double(*std::max_element(z, z + K)) / T;
      double s = 0;
      for (int64_t k = 0; k < K; ++k) s += std::exp(double(z[k]) / T - m);
      for (int64_t k = 0; k < K; ++k) p[k] += weights[i] / wsum * std::exp(double(z[k]) / T - m) / s;
    }
    for (int64_t k = 0; k < K; ++k) out.f32()[n * K + k] = float(T * std::max(std::log(p[k]), floor_log));
  }
  return out;
}

}  // namespace kd::distill
