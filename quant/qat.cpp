#include "quant/qat.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "nn/functional.h"
#include "quant/bn_fold.h"
#include "quant/fake_quant.h"

namespace kd::quant {

namespace {

void min_max(const Tensor& t, float& lo, float& hi) {
  const Tensor c = t.contiguous();
  lo = INFINITY, hi = -INFINITY;
  for (int64_t i = 0; i < c.numel(); ++i)
    if (std::isfinite(c.f32()[i])) lo = std::min(lo, c.f32()[i]), hi = std::max(hi, c.f32()[i]);
}

}  // namespace

QatModel::QatModel(Model& m, const QatOptions& opt) : m_(m), opt_(opt), plan_(plan_int8(m, opt.first_fp32)) {
  for (size_t i = 0; i < plan_.units.size(); ++i) range_.push_back(Tensor::zeros({2}));
  input_range_ = Tensor::zeros({2});
  steps_ = Tensor::zeros({1});
}

bool QatModel::frozen() const {
  return opt_.freeze_observers_step >= 0 && int64_t(steps_.f32()[0]) >= opt_.freeze_observers_step;
}

bool QatModel::bn_frozen() const {
  return opt_.freeze_bn_step >= 0 && int64_t(steps_.f32()[0]) >= opt_.freeze_bn_step;
}

void QatModel::calibrate(const Tensor& calib, int64_t batch) {
  NoGrad ng;
  std::vector<float> lo(plan_.units.size(), INFINITY), hi(plan_.units.size(), -INFINITY);
  float in_lo = INFINITY, in_hi = -INFINITY;
  for (int64_t s = 0; s < calib.size(0); s += batch) {
    const Tensor xb = calib.slice(0, s, std::min(calib.size(0), s + batch)).contiguous();
    std::map<std::string, Var> taps;
    for (const Int8Unit& u : plan_.units)
      if (u.kind != Int8Unit::Kind::linear_fp32) taps[u.name] = Var();
    m_.forward(Var(xb), false, nullptr, &taps);
    float a, b;
    min_max(xb, a, b);
    in_lo = std::min(in_lo, a), in_hi = std::max(in_hi, b);
    for (size_t i = 0; i < plan_.units.size(); ++i) {
      if (plan_.units[i].kind == Int8Unit::Kind::linear_fp32) continue;
      min_max(taps.at(plan_.units[i].name).value(), a, b);
      lo[i] = std::min(lo[i], a), hi[i] = std::max(hi[i], b);
    }
  }
  KD_CHECK(in_lo <= in_hi, "qat: calibration saw no finite input");
  input_range_.f32()[0] = in_lo, input_range_.f32()[1] = in_hi;
  for (size_t i = 0; i < plan_.units.size(); ++i)
    if (plan_.units[i].kind != Int8Unit::Kind::linear_fp32)
      range_[i].f32()[0] = lo[i], range_[i].f32()[1] = hi[i];
}

Var QatModel::fake_quant_output(size_t unit, const Var& y, bool training) {
  Tensor& r = range_[unit];
  if (training && !frozen()) {
    float lo, hi;
    min_max(y.value(), lo, hi);
    if (lo <= hi) {
      r.f32()[0] += float(opt_.averaging) * (lo - r.f32()[0]);
      r.f32()[1] += float(opt_.averaging) * (hi - r.f32()[1]);
    }
  }
  return fake_quantize(y, {affine_qparams(r.f32()[0], r.f32()[1], kActivationRange)}, 0, kActivationRange);
}

Var QatModel::forward(const Var& x, bool training) {
  std::vector<Var> val(plan_.units.size());
  Var x_q;  // the fake-quantized input, for an int8 first conv
  auto input_of = [&](int idx, bool int8_reader) -> Var {
    if (idx >= 0) return val[size_t(idx)];
    if (!int8_reader) return x;
    if (!x_q.defined()) {
      if (training && !frozen()) {
        float lo, hi;
        min_max(x.value(), lo, hi);
        input_range_.f32()[0] += float(opt_.averaging) * (lo - input_range_.f32()[0]);
        input_range_.f32()[1] += float(opt_.averaging) * (hi - input_range_.f32()[1]);
      }
      x_q = fake_quantize(x, {affine_qparams(input_range_.f32()[0], input_range_.f32()[1], kActivationRange)}, 0,
                          kActivationRange);
    }
    return x_q;
  };
  auto P = [&](const std::string& name) -> Var {
    auto it = m_.params.find(name);
    return it == m_.params.end() ? Var() : it->second;
  };
  for (size_t i = 0; i < plan_.units.size(); ++i) {
    const Int8Unit& u = plan_.units[i];
    Var y;
    switch (u.kind) {
      case Int8Unit::Kind::conv:
      case Int8Unit::Kind::conv_fp32: {
        const bool int8 = u.kind == Int8Unit::Kind::conv;
        Var w = P(u.src_conv + ".weight"), b = P(u.src_conv + ".bias");
        if (!u.src_bn.empty() && training && !bn_frozen()) {  // BN statistics still move
          const Node& bn = m_.graph.node(u.src_bn);
          const float eps = bn.attrs["eps"].get<float>(), momentum = bn.attrs["momentum"].get<float>();
          KD_CHECK(!b.defined(), "qat: conv '", u.src_conv, "' has a bias and a batch norm: BN statistics cannot ",
                   "move during QAT for it (set freeze_bn_epoch to 0)");
          Tensor &mean = m_.buffers.at(u.src_bn + ".running_mean"), &var = m_.buffers.at(u.src_bn + ".running_var");
          const Var gamma = P(u.src_bn + ".weight"), beta = P(u.src_bn + ".bias");
          Var wf = fold_bn_weight(w, gamma, var, eps);
          if (int8) wf = fake_quantize(wf, per_channel_weight_qparams(wf.value()), 0, kWeightRange);
          y = unscale_channels(F::conv2d(input_of(u.inputs[0], int8), wf, Var(), int(u.stride), int(u.pad), int(u.groups)),
                               gamma, var, eps);
          y = F::batch_norm2d(y, gamma, beta, mean, var, true, momentum, eps);
          break;
        }
        if (!u.src_bn.empty()) {
          const Node& bn = m_.graph.node(u.src_bn);
          const float eps = bn.attrs["eps"].get<float>();
          const Tensor &mean = m_.buffers.at(u.src_bn + ".running_mean"), &var = m_.buffers.at(u.src_bn + ".running_var");
          const Var gamma = P(u.src_bn + ".weight"), beta = P(u.src_bn + ".bias");
          const Var wf = fold_bn_weight(w, gamma, var, eps);
          b = fold_bn_bias(b, gamma, beta, mean, var, eps);
          w = wf;
        }
        if (int8) w = fake_quantize(w, per_channel_weight_qparams(w.value()), 0, kWeightRange);
        y = F::conv2d(input_of(u.inputs[0], int8), w, b, int(u.stride), int(u.pad), int(u.groups));
        break;
      }
      case Int8Unit::Kind::add: y = F::add(input_of(u.inputs[0], true), input_of(u.inputs[1], true)); break;
      case Int8Unit::Kind::gap: y = F::global_avg_pool(input_of(u.inputs[0], true)); break;
      case Int8Unit::Kind::linear_fp32:
        y = F::linear(F::flatten(input_of(u.inputs[0], true)), P(u.name + ".weight"), P(u.name + ".bias"));
        break;
    }
    if (u.act == "relu") y = F::relu(y);
    if (u.act == "relu6") y = F::relu6(y);
    val[i] = u.kind == Int8Unit::Kind::linear_fp32 ? y : fake_quant_output(i, y, training);
  }
  if (training) steps_.f32()[0] += 1.f;
  return val.back();
}

Objective QatModel::objective(const nlohmann::json& record) {
  Objective o;
  o.forward = [this](const Var& x, bool training) { return forward(x, training); };
  for (size_t i = 0; i < range_.size(); ++i) o.extra_buffers["qat.range." + std::to_string(i)] = range_[i];
  o.extra_buffers["qat.input_range"] = input_range_;
  o.extra_buffers["qat.steps"] = steps_;
  o.record = record;
  return o;
}

Int8Model QatModel::convert() const {
  Int8Model q = plan_int8(m_, opt_.first_fp32);
  q.input = affine_qparams(input_range_.f32()[0], input_range_.f32()[1], kActivationRange);
  for (size_t i = 0; i < q.units.size(); ++i)
    if (q.units[i].kind != Int8Unit::Kind::linear_fp32)
      q.units[i].out = affine_qparams(range_[i].f32()[0], range_[i].f32()[1], kActivationRange);
  quantize_units(q, m_);
  return q;
}

}  // namespace kd::quant
