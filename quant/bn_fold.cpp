#include "quant/bn_fold.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "nn/ops/bn_fold_values.h"

namespace kd::quant {

namespace {
// 1 / sqrt(var + eps) per channel (the scale's derivative with respect to gamma).
std::vector<double> inv_std(const Tensor& var, float eps) {
  std::vector<double> r(size_t(var.numel()));
  for (int64_t o = 0; o < var.numel(); ++o) r[size_t(o)] = 1.0 / std::sqrt(double(var.f32()[o]) + double(eps));
  return r;
}
// The scales k = gamma / sqrt(var + eps), exactly as the conversion computes them
// (nn/ops/bn_fold_values.h).
std::vector<double> scales(const Tensor& gamma, const Tensor& var, float eps) {
  std::vector<double> k(size_t(var.numel()));
  for (int64_t o = 0; o < var.numel(); ++o) k[size_t(o)] = F::bn_fold_scale(gamma.f32()[o], var.f32()[o], eps);
  return k;
}
}  // namespace

Var fold_bn_weight(const Var& w, const Var& gamma, const Tensor& running_var, float eps) {
  const Tensor wc = w.value().contiguous(), gc = gamma.value().contiguous(), vc = running_var.contiguous();
  const int64_t O = wc.size(0), per = wc.numel() / O;
  KD_CHECK(gc.numel() == O && vc.numel() == O, "fold_bn_weight: weight ", shape_str(wc.shape()), " with ", gc.numel(),
           " gammas and ", vc.numel(), " variances");
  const std::vector<double> is = inv_std(vc, eps), k = scales(gc, vc, eps);
  Tensor y = Tensor::empty(wc.shape());
  for (int64_t o = 0; o < O; ++o)
    for (int64_t i = 0; i < per; ++i) y.f32()[o * per + i] = float(double(wc.f32()[o * per + i]) * k[size_t(o)]);
  return make_result("fold_bn_weight", y, {w, gamma}, [wc, is, k, O, per](const Tensor& g) {
    const Tensor gcn = g.contiguous();
    Tensor dw = Tensor::empty(wc.shape()), dg = Tensor::empty({O});
    for (int64_t o = 0; o < O; ++o) {
      double acc = 0;
      for (int64_t i = 0; i < per; ++i) {
        dw.f32()[o * per + i] = float(double(gcn.f32()[o * per + i]) * k[size_t(o)]);
        acc += double(gcn.f32()[o * per + i]) * wc.f32()[o * per + i];
      }
      dg.f32()[o] = float(acc * is[size_t(o)]);
    }
    return std::vector<Tensor>{dw, dg};
  });
}

Var unscale_channels(const Var& y, const Var& gamma, const Tensor& running_var, float eps) {
  const Tensor yc = y.value().contiguous(), gc = gamma.value().contiguous(), vc = running_var.contiguous();
  KD_CHECK(yc.dim() >= 2 && gc.numel() == yc.size(1) && vc.numel() == yc.size(1), "unscale_channels: value ",
           shape_str(yc.shape()), " with ", gc.numel(), " gammas and ", vc.numel(), " variances");
  const int64_t N = yc.size(0), O = yc.size(1), per = yc.numel() / std::max<int64_t>(N * O, 1);
  const std::vector<double> k = scales(gc, vc, eps);
  std::vector<double> inv_k(static_cast<size_t>(O));  // sqrt(var + eps) / gamma
  for (int64_t o = 0; o < O; ++o) inv_k[size_t(o)] = 1.0 / k[size_t(o)];
  Tensor out = Tensor::empty(yc.shape());
  for (int64_t n = 0; n < N; ++n)
    for (int64_t o = 0; o < O; ++o)
      for (int64_t i = 0, at = (n * O + o) * per; i < per; ++i)
        out.f32()[at + i] = float(double(yc.f32()[at + i]) * inv_k[size_t(o)]);
  return make_result("unscale_channels", out, {y, gamma}, [yc, gc, inv_k, N, O, per](const Tensor& g) {
    const Tensor gcn = g.contiguous();
    Tensor dy = Tensor::empty(yc.shape()), dg = Tensor::zeros({O});
    std::vector<double> acc(size_t(O), 0.0);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t o = 0; o < O; ++o)
        for (int64_t i = 0, at = (n * O + o) * per; i < per; ++i) {
          dy.f32()[at + i] = float(double(gcn.f32()[at + i]) * inv_k[size_t(o)]);
          acc[size_t(o)] += double(gcn.f32()[at + i]) * yc.f32()[at + i];
        }
    // d(y / k)/dgamma = -y / (k gamma)  since k is proportional to gamma.
    for (int64_t o = 0; o < O; ++o) dg.f32()[o] = float(-acc[size_t(o)] * inv_k[size_t(o)] / gc.f32()[o]);
    return std::vector<Tensor>{dy, dg};
  });
}

Var fold_bn_bias(const Var& conv_bias, const Var& gamma, const Var& beta, const Tensor& running_mean,
                 const Tensor& running_var, float eps) {
  const Tensor gc = gamma.value().contiguous(), bc = beta.value().contiguous(), mc = running_mean.contiguous(),
               vc = running_var.contiguous();
  const int64_t O = gc.numel();
  const bool has_b = conv_bias.defined();
  const Tensor cb = has_b ? conv_bias.value().contiguous() : Tensor::zeros({O});
  KD_CHECK(bc.numel() == O && mc.numel() == O && vc.numel() == O && cb.numel() == O,
           "fold_bn_bias: parameters of different lengths");
  const std::vector<double> is = inv_std(vc, eps), k = scales(gc, vc, eps);
  Tensor y = Tensor::empty({O});
  for (int64_t o = 0; o < O; ++o) y.f32()[o] = F::bn_fold_bias(bc.f32()[o], cb.f32()[o], mc.f32()[o], k[size_t(o)]);
  std::vector<Var> inputs{gamma, beta};
  if (has_b) inputs.push_back(conv_bias);
  return make_result("fold_bn_bias", y, inputs, [gc, cb, mc, is, O, has_b](const Tensor& g) {
    const Tensor gcn = g.contiguous();
    Tensor dg = Tensor::empty({O}), dbeta = gcn.clone(), db = Tensor::empty({O});
    for (int64_t o = 0; o < O; ++o) {
      dg.f32()[o] = float(double(gcn.f32()[o]) * (double(cb.f32()[o]) - mc.f32()[o]) * is[size_t(o)]);
      db.f32()[o] = float(double(gcn.f32()[o]) * gc.f32()[o] * is[size_t(o)]);
    }
    std::vector<Tensor> r{dg, dbeta};
    if (has_b) r.push_back(db);
    return r;
  });
}

}  // namespace kd::quant
