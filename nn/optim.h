// Optimizers with PyTorch's update rules (torch.optim.SGD / AdamW, single-tensor path).
//   SGD:   d = g + wd p;  buf = d (first step) or mu buf + (1 - dampening) d;
//          d = d + mu buf (nesterov) or buf;  p -= lr d
//   AdamW: p *= 1 - lr wd;  m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
//          p -= lr/(1 - b1^t) * m / (sqrt(v)/sqrt(1 - b2^t) + eps)
// Parameters without a gradient (not reached by the loss) are skipped, as PyTorch does.
#pragma once
#include <map>
#include <memory>
#include <string>

#include "autograd/var.h"

namespace kd {

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  virtual void step() = 0;
  void set_lr(double lr) { lr_ = lr; }
  double lr() const { return lr_; }
  // SGD momentum, or Adam's beta1: what OneCycle's momentum cycling drives.
  virtual void set_momentum(double m) = 0;
  // Optimizer state (momentum buffers, moments, step count) for checkpoints.
  virtual std::map<std::string, Tensor> state() const = 0;
  virtual void load_state(const std::map<std::string, Tensor>& s) = 0;

 protected:
  explicit Optimizer(std::map<std::string, Var> params, double lr) : params_(std::move(params)), lr_(lr) {}
  std::map<std::string, Var> params_;
  double lr_;
};

struct SgdOptions {
  double lr = 0.1, momentum = 0.9, dampening = 0, weight_decay = 0;
  bool nesterov = false;
};
std::unique_ptr<Optimizer> make_sgd(std::map<std::string, Var> params, const SgdOptions& o);

struct AdamWOptions {
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 1e-2;
};
std::unique_ptr<Optimizer> make_adamw(std::map<std::string, Var> params, const AdamWOptions& o);

// Scales all gradients so their global L2 norm is at most max_norm (as
// torch.nn.utils.clip_grad_norm_: coefficient max_norm / (norm + 1e-6), capped at 1).
// Returns the norm before clipping.
double clip_grad_norm(const std::map<std::string, Var>& params, double max_norm);

}  // namespace kd
