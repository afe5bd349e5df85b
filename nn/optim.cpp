#include "nn/optim.h"

#include <cmath>

namespace kd {

namespace {

class Sgd : public Optimizer {
 public:
  Sgd(std::map<std::string, Var> p, const SgdOptions& o) : Optimizer(std::move(p), o.lr), o_(o) {
    KD_CHECK(o.momentum >= 0 && o.weight_decay >= 0 && o.lr >= 0, "sgd: lr, momentum and weight_decay must be >= 0");
    KD_CHECK(!o.nesterov || (o.momentum > 0 && o.dampening == 0), "sgd: nesterov needs momentum > 0 and dampening 0");
  }
  void set_momentum(double m) override { o_.momentum = m; }
  void step() override {
    const float lr = float(lr_), wd = float(o_.weight_decay), mu = float(o_.momentum), damp = float(1 - o_.dampening);
    for (auto& [name, p] : params_) {
      const Tensor& g = p.grad();
      if (!g.defined()) continue;
      float* P = p.value().f32();
      const float* G = g.f32();
      const int64_t n = p.value().numel();
      if (mu == 0.f) {
        for (int64_t i = 0; i < n; ++i) P[i] -= lr * (G[i] + wd * P[i]);
        continue;
      }
      auto it = buf_.find(name);
      const bool first = it == buf_.end();
      if (first) it = buf_.emplace(name, Tensor::empty(p.value().shape())).first;
      float* B = it->second.f32();
      for (int64_t i = 0; i < n; ++i) {
        const float d = G[i] + wd * P[i];
        B[i] = first ? d : mu * B[i] + damp * d;
        P[i] -= lr * (o_.nesterov ? d + mu * B[i] : B[i]);
      }
    }
  }
  std::map<std::string, Tensor> state() const override {
    std::map<std::string, Tensor> s;
    for (auto& [k, b] : buf_) s["momentum_buffer." + k] = b;
    return s;
  }
  void load_state(const std::map<std::string, Tensor>& s) override {
    buf_.clear();
    for (auto& [k, t] : s)
      if (k.rfind("momentum_buffer.", 0) == 0) buf_[k.substr(16)] = t.clone();
  }

 private:
  SgdOptions o_;
  std::map<std::string, Tensor> buf_;
};

class AdamW : public Optimizer {
 public:
  AdamW(std::map<std::string, Var> p, const AdamWOptions& o) : Optimizer(std::move(p), o.lr), o_(o) {
    KD_CHECK(o.beta1 >= 0 && o.beta1 < 1 && o.beta2 >= 0 && o.beta2 < 1 && o.eps > 0, "adamw: need 0 <= betas < 1, eps > 0");
  }
  void set_momentum(double m) override { o_.beta1 = m; }
  void step() override {
    ++t_;
    const double bc1 = 1 - std::pow(o_.beta1, t_), bc2 = 1 - std::pow(o_.beta2, t_);
    const float b1 = float(o_.beta1), b2 = float(o_.beta2), step = float(lr_ / bc1), sbc2 = float(std::sqrt(bc2));
    const float decay = float(1 - lr_ * o_.weight_decay), eps = float(o_.eps);
    for (auto& [name, p] : params_) {
      const Tensor& g = p.grad();
      if (!g.defined()) continue;
      auto& [m, v] = moments(name, p.value().shape());
      float *P = p.value().f32(), *M = m.f32(), *V = v.f32();
      const float* G = g.f32();
      for (int64_t i = 0, n = p.value().numel(); i < n; ++i) {
        P[i] *= decay;
        M[i] = b1 * M[i] + (1 - b1) * G[i];
        V[i] = b2 * V[i] + (1 - b2) * G[i] * G[i];
        P[i] -= step * M[i] / (std::sqrt(V[i]) / sbc2 + eps);
      }
    }
  }
  std::map<std::string, Tensor> state() const override {
    std::map<std::string, Tensor> s;
    for (auto& [k, mv] : mom_) {
      s["exp_avg." + k] = mv.first;
      s["exp_avg_sq." + k] = mv.second;
    }
    Tensor t = Tensor::empty({}, DType::i32);
    t.data<int32_t>()[0] = static_cast<int32_t>(t_);
    s["step"] = t;
    return s;
  }
  void load_state(const std::map<std::string, Tensor>& s) override {
    mom_.clear();
    for (auto& [k, t] : s) {
      if (k.rfind("exp_avg.", 0) == 0) mom_[k.substr(8)].first = t.clone();
      if (k.rfind("exp_avg_sq.", 0) == 0) mom_[k.substr(11)].second = t.clone();
    }
    auto it = s.find("step");
    t_ = it == s.end() ? 0 : it->second.data<int32_t>()[0];
  }

 private:
  std::pair<Tensor, Tensor>& moments(const std::string& name, const Shape& shape) {
    auto it = mom_.find(name);
    if (it == mom_.end()) it = mom_.emplace(name, std::make_pair(Tensor::zeros(shape), Tensor::zeros(shape))).first;
    return it->second;
  }
  AdamWOptions o_;
  int64_t t_ = 0;
  std::map<std::string, std::pair<Tensor, Tensor>> mom_;
};

}  // namespace

std::unique_ptr<Optimizer> make_sgd(std::map<std::string, Var> params, const SgdOptions& o) {
  return std::make_unique<Sgd>(std::move(params), o);
}
std::unique_ptr<Optimizer> make_adamw(std::map<std::string, Var> params, const AdamWOptions& o) {
  return std::make_unique<AdamW>(std::move(params), o);
}

double clip_grad_norm(const std::map<std::string, Var>& params, double max_norm) {
  double sq = 0;
  for (auto& [k, p] : params) {
    const Tensor& g = p.grad();
    if (!g.defined()) continue;
    for (int64_t i = 0, n = g.numel(); i < n; ++i) sq += double(g.f32()[i]) * g.f32()[i];
  }
  const double norm = std::sqrt(sq), coef = max_norm / (norm + 1e-6);
  if (coef < 1.0)
    for (auto& [k, p] : params) {
      const Tensor& g = p.grad();
      if (!g.defined()) continue;
      for (int64_t i = 0, n = g.numel(); i < n; ++i) g.f32()[i] *= float(coef);
    }
  return norm;
}

}  // namespace kd
