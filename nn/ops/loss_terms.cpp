// Loss terms that distillation and other objectives combine: mean squared error against a
// constant target, and a weighted sum of scalar losses.
#include "nn/functional.h"

namespace kd::F {

// L = (1/n) sum_i (x_i - t_i)^2, accumulated in double (n reaches millions for feature maps);
// dL/dx_i = 2 (x_i - t_i) / n.
Var mse_loss(const Var& x, const Tensor& target) {
  KD_CHECK(target.defined() && x.shape() == target.shape(), "mse_loss: input ", shape_str(x.shape()), " and target ",
           target.defined() ? shape_str(target.shape()) : std::string("(none)"), " differ");
  Tensor xc = x.value().contiguous(), tc = target.contiguous();
  const int64_t n = xc.numel();
  KD_CHECK(n > 0, "mse_loss: empty input ", shape_str(x.shape()));
  const float *X = xc.f32(), *T = tc.f32();
  double sum = 0;
#pragma omp parallel for schedule(static) reduction(+ : sum)
  for (int64_t i = 0; i < n; ++i) {
    const double d = double(X[i]) - double(T[i]);
    sum += d * d;
  }
  return make_result("mse_loss", Tensor::full({}, float(sum / double(n))), {x}, [xc, tc, n](const Tensor& g) {
    const float k = 2.f * g.f32()[0] / float(n);
    Tensor dx = Tensor::empty(xc.shape());
    const float *X = xc.f32(), *T = tc.f32();
    float* D = dx.f32();
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) D[i] = k * (X[i] - T[i]);
    return std::vector<Tensor>{dx};
  });
}

Var weighted_sum(const std::vector<Var>& terms, const std::vector<float>& weights) {
  KD_CHECK(!terms.empty() && terms.size() == weights.size(), "weighted_sum: ", terms.size(), " terms and ",
           weights.size(), " weights");
  double s = 0;
  for (size_t i = 0; i < terms.size(); ++i) {
    KD_CHECK(terms[i].value().numel() == 1, "weighted_sum: term ", i, " is ", shape_str(terms[i].shape()),
             ", not a scalar");
    s += double(weights[i]) * double(terms[i].value().f32()[0]);
  }
  return make_result("weighted_sum", Tensor::full({}, float(s)), terms, [weights](const Tensor& g) {
    std::vector<Tensor> out;
    for (float w : weights) out.push_back(Tensor::full({}, w * g.f32()[0]));
    return out;
  });
}

}  // namespace kd::F
