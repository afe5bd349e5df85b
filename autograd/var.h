// Reverse-mode automatic differentiation, in the micrograd style but over tensors.
//
// A Var is a handle to a value plus, when gradients are recorded, the node that produced it.
// Each differentiable op computes its forward result and, unless a NoGrad scope is active or
// no input requires a gradient, attaches a Node holding its inputs and a closure that maps
// d(loss)/d(output) to d(loss)/d(each input). backward() visits the nodes in reverse
// topological order and accumulates (sums) gradients into every Var that requires one, so a
// value used twice receives the sum of both paths, and leaf gradients accumulate across
// backward() calls until zero_grad().
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace kd {

struct VarImpl;

class Var {
 public:
  Var() = default;
  explicit Var(Tensor value, bool requires_grad = false);
  bool defined() const { return p_ != nullptr; }
  const Tensor& value() const;
  Tensor& value();
  const Tensor& grad() const;  // undefined Tensor until a gradient has flowed here
  void set_grad(Tensor g);
  void zero_grad();
  bool requires_grad() const;
  const Shape& shape() const { return value().shape(); }
  // Runs the backward pass from this scalar (numel 1); d(this)/d(this) = 1.
  void backward() const;
  // Runs the backward pass seeded with d(loss)/d(this) = seed.
  void backward(const Tensor& seed) const;
  // Name of the op that produced this Var ("leaf" for inputs and parameters).
  std::string op_name() const;
  VarImpl* impl() const { return p_.get(); }

 private:
  std::shared_ptr<VarImpl> p_;
  friend Var make_result(const char*, Tensor, const std::vector<Var>&,
                         std::function<std::vector<Tensor>(const Tensor&)>);
};

// Records an op's result. backward_fn(grad_out) returns one Tensor per input, in order; an
// undefined Tensor means "no gradient for this input". The closure is dropped after use, which
// frees whatever it captured (saved activations) as soon as the backward pass passes it.
Var make_result(const char* op, Tensor value, const std::vector<Var>& inputs,
                std::function<std::vector<Tensor>(const Tensor&)> backward_fn);

// While alive, ops record nothing (inference, teacher forward, optimizer updates).
class NoGrad {
 public:
  NoGrad();
  ~NoGrad();
  NoGrad(const NoGrad&) = delete;
  NoGrad& operator=(const NoGrad&) = delete;

 private:
  bool prev_;
};
bool grad_enabled();

// Names the layer (graph node) whose ops run while it is alive; Model::forward opens one per
// node. Recorded in every autograd node so that errors can say where a value came from.
class LayerScope {
 public:
  explicit LayerScope(const std::string& name);
  ~LayerScope();
  LayerScope(const LayerScope&) = delete;
  LayerScope& operator=(const LayerScope&) = delete;

 private:
  const std::string* prev_;
};
const std::string& current_layer();  // "" outside any LayerScope

// Anomaly detection (kd train --detect-anomaly): every op's forward output and every gradient
// its backward returns is checked for NaN/Inf, and the first non-finite one throws kd::Error
// naming the op, the layer and the pass. Costs one extra read of each tensor; off by default.
void set_anomaly_detection(bool on);
bool anomaly_detection();

// Index of the first NaN or Inf in t (f32), or -1 if every element is finite.
int64_t first_nonfinite(const Tensor& t);

// dst += src (same shape, f32, dst contiguous). Used for gradient accumulation.
void accumulate(Tensor& dst, const Tensor& src);

}  // namespace kd
