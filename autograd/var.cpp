#include "autograd/var.h"

#include <atomic>
#include <cmath>
#include <cstring>
#include <unordered_set>

namespace kd {

struct Node {
  const char* op;
  std::string layer;
  std::vector<Var> inputs;
  std::function<std::vector<Tensor>(const Tensor&)> backward_fn;
};

struct VarImpl {
  Tensor value, grad;
  bool requires_grad = false;
  std::shared_ptr<Node> node;  // null for leaves
};

static thread_local bool g_grad_enabled = true;
static thread_local const std::string* g_layer = nullptr;
static std::atomic<bool> g_anomaly{false};

LayerScope::LayerScope(const std::string& name) : prev_(g_layer) { g_layer = &name; }
LayerScope::~LayerScope() { g_layer = prev_; }
const std::string& current_layer() {
  static const std::string none;
  return g_layer ? *g_layer : none;
}
void set_anomaly_detection(bool on) { g_anomaly = on; }
bool anomaly_detection() { return g_anomaly; }

int64_t first_nonfinite(const Tensor& t) {
  Tensor c = t.contiguous();
  const float* p = c.f32();
  const int64_t n = c.numel();
  // x * 0 is 0 for finite x and NaN for NaN/Inf: one branch-free pass, then a search only on failure.
  float acc = 0;
#pragma omp simd reduction(+ : acc)
  for (int64_t i = 0; i < n; ++i) acc += p[i] * 0.0f;
  if (acc == 0) return -1;
  for (int64_t i = 0; i < n; ++i)
    if (!std::isfinite(p[i])) return i;
  return -1;
}

namespace {
std::string where(const char* op, const std::string& layer) {
  return std::string("op ") + op + (layer.empty() ? std::string() : " in layer '" + layer + "'");
}
void check_finite(const Tensor& t, const char* what, const char* op, const std::string& layer) {
  if (t.dtype() != DType::f32) return;
  const int64_t i = first_nonfinite(t);
  if (i >= 0)
    fail("anomaly: ", what, " of ", where(op, layer), " is non-finite (", t.contiguous().f32()[i], " at element ", i,
         " of ", shape_str(t.shape()), ")");
}
}  // namespace
bool grad_enabled() { return g_grad_enabled; }
NoGrad::NoGrad() : prev_(g_grad_enabled) { g_grad_enabled = false; }
NoGrad::~NoGrad() { g_grad_enabled = prev_; }

Var::Var(Tensor value, bool requires_grad) : p_(std::make_shared<VarImpl>()) {
  p_->value = std::move(value);
  p_->requires_grad = requires_grad;
}

const Tensor& Var::value() const {
  KD_CHECK(p_, "autograd: use of an undefined Var");
  return p_->value;
}
Tensor& Var::value() {
  KD_CHECK(p_, "autograd: use of an undefined Var");
  return p_->value;
}
const Tensor& Var::grad() const { return p_->grad; }
void Var::set_grad(Tensor g) { p_->grad = std::move(g); }
void Var::zero_grad() { p_->grad = Tensor(); }
bool Var::requires_grad() const { return p_ && p_->requires_grad; }
std::string Var::op_name() const { return p_->node ? p_->node->op : "leaf"; }

void accumulate(Tensor& dst, const Tensor& src) {
  KD_CHECK(dst.shape() == src.shape(), "autograd: gradient of shape ", shape_str(src.shape()),
           " does not match ", shape_str(dst.shape()));
  Tensor s = src.contiguous();
  float* d = dst.f32();
  const float* p = s.f32();
  // Residual blocks sum activation-sized gradients (millions of values at batch 128): split
  // them over the threads; element-wise, so the result does not depend on the thread count.
  const int64_t n = dst.numel();
#pragma omp parallel for schedule(static) if (n >= (int64_t(1) << 16))
  for (int64_t i = 0; i < n; ++i) d[i] += p[i];
}

Var make_result(const char* op, Tensor value, const std::vector<Var>& inputs,
                std::function<std::vector<Tensor>(const Tensor&)> backward_fn) {
  if (g_anomaly) check_finite(value, "the forward output", op, current_layer());
  Var out(std::move(value), false);
  if (!g_grad_enabled) return out;
  bool any = false;
  for (const Var& v : inputs) any = any || v.requires_grad();
  if (!any) return out;
  out.p_->requires_grad = true;
  out.p_->node = std::make_shared<Node>(Node{op, current_layer(), inputs, std::move(backward_fn)});
  return out;
}

void Var::backward() const {
  KD_CHECK(value().numel() == 1, "backward: called on a non-scalar of shape ", shape_str(value().shape()),
           "; pass a seed gradient");
  backward(Tensor::full(value().shape(), 1.0f));
}

void Var::backward(const Tensor& seed) const {
  KD_CHECK(requires_grad(), "backward: the value does not require a gradient (no parameter reached it, or it "
                            "was computed under NoGrad)");
  KD_CHECK(seed.shape() == value().shape(), "backward: seed ", shape_str(seed.shape()), " for value ",
           shape_str(value().shape()));
  // Iterative DFS post-order gives a topological order without deep recursion on long graphs.
  // `order` holds owning pointers: releasing a node's closure below drops its references to
  // its inputs, and an intermediate value must outlive its turn in the loop.
  std::vector<std::shared_ptr<VarImpl>> order;
  std::unordered_set<VarImpl*> seen;
  std::vector<std::pair<std::shared_ptr<VarImpl>, size_t>> stack{{p_, 0}};
  seen.insert(p_.get());
  while (!stack.empty()) {
    auto& [v, i] = stack.back();
    if (v->node && i < v->node->inputs.size()) {
      const std::shared_ptr<VarImpl>& c = v->node->inputs[i++].p_;
      if (c->requires_grad && seen.insert(c.get()).second) stack.push_back({c, 0});
    } else {
      order.push_back(v);
      stack.pop_back();
    }
  }
  if (p_->grad.defined())
    accumulate(p_->grad, seed);
  else
    p_->grad = seed.clone();
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    VarImpl* v = it->get();
    if (!v->node) continue;  // leaf: keep its accumulated gradient
    std::shared_ptr<Node> node = std::move(v->node);  // release the graph as we go
    Tensor g = std::move(v->grad);
    if (!g.defined()) continue;
    std::vector<Tensor> gin = node->backward_fn(g);
    KD_CHECK(gin.size() == node->inputs.size(), "autograd: op ", node->op, " returned ", gin.size(),
             " gradients for ", node->inputs.size(), " inputs");
    if (g_anomaly) {
      check_finite(g, "the incoming gradient", node->op, node->layer);
      for (size_t k = 0; k < gin.size(); ++k)
        if (gin[k].defined()) check_finite(gin[k], "the gradient it passes back (backward pass)", node->op, node->layer);
    }
    for (size_t k = 0; k < gin.size(); ++k) {
      VarImpl* in = node->inputs[k].impl();
      if (!in->requires_grad || !gin[k].defined()) continue;
      // Never accumulate in place into a gradient a backward_fn handed out: it may share storage
      // with another input's gradient (add returns the same tensor for both operands). Leaves
      // get their own copy because users and optimizers modify parameter gradients in place.
      if (in->grad.defined() && !in->node) {
        accumulate(in->grad, gin[k]);
      } else if (in->grad.defined()) {
        Tensor sum = in->grad.clone();
        accumulate(sum, gin[k]);
        in->grad = std::move(sum);
      } else {
        in->grad = in->node ? gin[k].contiguous() : gin[k].clone();
      }
    }
  }
}

}  // namespace kd
