// Every op's forward and backward against PyTorch (tests/goldens/ops.safetensors).
#include <functional>

#include "golden.h"
#include "nn/functional.h"

using namespace kd;
using test::expect_close;
using test::gt;

namespace {

const TensorFile& G() { return test::golden("ops.safetensors"); }

// Runs op on the golden inputs x0..x{n-1}, seeds backward with gy, checks y and every dx.
void check_case(const std::string& name, int n_inputs, const std::function<Var(std::vector<Var>&)>& op,
                double rtol = 1e-4, double atol = 1e-5) {
  INFO("case " << name);
  std::vector<Var> in;
  for (int i = 0; i < n_inputs; ++i) in.emplace_back(gt(G(), name + ".x" + std::to_string(i)).clone(), true);
  Var y = op(in);
  Tensor want_y = gt(G(), name + ".y");
  expect_close(y.value().reshape(want_y.shape()), want_y, rtol, atol, name + " forward");
  y.backward(gt(G(), name + ".gy").reshape(y.shape()));
  for (int i = 0; i < n_inputs; ++i)
    expect_close(in[i].grad(), gt(G(), name + ".dx" + std::to_string(i)), rtol, atol, name + " dx" + std::to_string(i));
}

std::vector<int32_t> labels() {
  const Tensor& t = gt(G(), "labels");
  return std::vector<int32_t>(t.data<int32_t>(), t.data<int32_t>() + t.numel());
}

}  // namespace

TEST_CASE("conv2d matches PyTorch: dense, strided, depthwise, pointwise, grouped, bias") {
  struct C { const char* name; int s, p, g; bool bias; };
  for (C c : {C{"conv_k3s1p1", 1, 1, 1, true}, C{"conv_k3s2p1_dw", 2, 1, 5, false}, C{"conv_k3s1p1_dw", 1, 1, 4, false},
              C{"conv_k1", 1, 0, 1, false}, C{"conv_k1s2", 2, 0, 1, true}, C{"conv_k5s2p2_g2", 2, 2, 2, true}})
    check_case(c.name, c.bias ? 3 : 2, [c](std::vector<Var>& v) {
      return F::conv2d(v[0], v[1], c.bias ? v[2] : Var(), c.s, c.p, c.g);
    });
}

TEST_CASE("batch_norm2d matches PyTorch in training (with running stats) and eval") {
  Tensor rm = gt(G(), "bn_train.rm0").clone(), rv = gt(G(), "bn_train.rv0").clone();
  check_case("bn_train", 3, [&](std::vector<Var>& v) { return F::batch_norm2d(v[0], v[1], v[2], rm, rv, true, 0.1f, 1e-5f); });
  expect_close(rm, gt(G(), "bn_train.rm1"), 1e-5, 1e-6, "running_mean");
  expect_close(rv, gt(G(), "bn_train.rv1"), 1e-5, 1e-6, "running_var (unbiased)");
  Tensor em = gt(G(), "bn_eval.rm0").clone(), ev = gt(G(), "bn_eval.rv0").clone();
  check_case("bn_eval", 3, [&](std::vector<Var>& v) { return F::batch_norm2d(v[0], v[1], v[2], em, ev, false, 0.1f, 1e-5f); });
  expect_close(em, gt(G(), "bn_eval.rm0"), 0, 1e-30, "eval leaves running_mean alone");
}

TEST_CASE("activations, pooling, linear, softmax family match PyTorch") {
  check_case("relu", 1, [](std::vector<Var>& v) { return F::relu(v[0]); });
  check_case("relu6", 1, [](std::vector<Var>& v) { return F::relu6(v[0]); });
  check_case("maxpool_k3s2p1", 1, [](std::vector<Var>& v) { return F::max_pool2d(v[0], 3, 2, 1); });
  check_case("maxpool_k2s2", 1, [](std::vector<Var>& v) { return F::max_pool2d(v[0], 2, 2, 0); });
  check_case("avgpool_k3s2p1", 1, [](std::vector<Var>& v) { return F::avg_pool2d(v[0], 3, 2, 1); });
  check_case("gap", 1, [](std::vector<Var>& v) { return F::global_avg_pool(v[0]); });
  check_case("linear", 3, [](std::vector<Var>& v) { return F::linear(v[0], v[1], v[2]); });
  check_case("softmax", 1, [](std::vector<Var>& v) { return F::softmax(v[0]); });
  check_case("log_softmax", 1, [](std::vector<Var>& v) { return F::log_softmax(v[0]); });
}

TEST_CASE("cross-entropy (plain, label smoothing, soft targets) matches PyTorch") {
  check_case("ce", 1, [](std::vector<Var>& v) { return F::cross_entropy(v[0], labels()); });
  check_case("ce_ls", 1, [](std::vector<Var>& v) { return F::cross_entropy(v[0], labels(), 0.1f); });
  check_case("soft_ce", 1, [](std::vector<Var>& v) { return F::soft_cross_entropy(v[0], gt(G(), "soft_target")); });
}
