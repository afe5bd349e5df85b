#include "autograd/gradcheck.h"

#include <cmath>
#include <sstream>

#include "core/rng.h"

namespace kd {

static double projected(const Tensor& y, const Tensor& r) {
  Tensor yc = y.contiguous();
  double s = 0;
  for (int64_t i = 0; i < y.numel(); ++i) s += double(yc.f32()[i]) * r.f32()[i];
  return s;
}

GradcheckResult gradcheck(const std::function<Var(const std::vector<Var>&)>& f, const std::vector<Tensor>& inputs,
                          float eps, double atol, double rtol, uint64_t seed) {
  std::vector<Var> vars;
  for (const Tensor& t : inputs) vars.emplace_back(t.clone(), true);
  Var y = f(vars);
  Rng rng(seed);
  Tensor r = Tensor::empty(y.shape());
  for (int64_t i = 0; i < r.numel(); ++i) r.f32()[i] = rng.uniform(-1.f, 1.f);
  y.backward(r);

  GradcheckResult res;
  for (size_t k = 0; k < inputs.size(); ++k) {
    Tensor x = inputs[k].clone();
    Tensor analytic = vars[k].grad();
    for (int64_t i = 0; i < x.numel(); ++i) {
      float orig = x.f32()[i];
      auto eval = [&](float v) {
        x.f32()[i] = v;
        std::vector<Var> in;
        for (size_t j = 0; j < inputs.size(); ++j) in.emplace_back(j == k ? x : inputs[j].clone(), false);
        NoGrad ng;
        return projected(f(in).value(), r);
      };
      double num = (eval(orig + eps) - eval(orig - eps)) / (2.0 * eps);
      x.f32()[i] = orig;
      double ana = analytic.defined() ? analytic.f32()[i] : 0.0;
      double err = std::fabs(ana - num);
      res.max_abs_err = std::max(res.max_abs_err, err);
      if (res.ok && err > atol + rtol * std::fabs(num)) {
        res.ok = false;
        std::ostringstream os;
        os << "input " << k << ", element " << i << ": analytic " << ana << " numeric " << num;
        res.first_failure = os.str();
      }
    }
  }
  return res;
}

}  // namespace kd
