// Optimizers and schedules against PyTorch (tests/goldens/optim.safetensors).
#include "golden.h"
#include "nn/optim.h"
#include "nn/schedule.h"

using namespace kd;

namespace {
const TensorFile& G() { return test::golden("optim.safetensors"); }

Tensor run(const std::function<std::unique_ptr<Optimizer>(std::map<std::string, Var>)>& make) {
  Var p(test::gt(G(), "p0").clone(), true);
  auto opt = make({{"p", p}});
  for (int i = 0; i < 3; ++i) {
    p.set_grad(test::gt(G(), "g" + std::to_string(i)).clone());
    opt->step();
  }
  return p.value();
}
}  // namespace

TEST_CASE("SGD and AdamW match torch.optim over three steps") {
  test::expect_close(run([](auto p) { return make_sgd(p, {.lr = 0.1, .momentum = 0.9, .weight_decay = 5e-4, .nesterov = true}); }),
                     test::gt(G(), "sgd_nesterov"), 1e-6, 1e-7, "sgd nesterov");
  test::expect_close(run([](auto p) { return make_sgd(p, {.lr = 0.05, .momentum = 0, .weight_decay = 1e-3}); }),
                     test::gt(G(), "sgd_plain"), 1e-6, 1e-7, "sgd plain");
  test::expect_close(run([](auto p) { return make_sgd(p, {.lr = 0.05, .momentum = 0.8, .dampening = 0.1}); }),
                     test::gt(G(), "sgd_momentum"), 1e-6, 1e-7, "sgd dampening");
  test::expect_close(
      run([](auto p) { return make_adamw(p, {.lr = 0.01, .beta1 = 0.9, .beta2 = 0.99, .eps = 1e-8, .weight_decay = 0.05}); }),
      test::gt(G(), "adamw"), 1e-5, 1e-7, "adamw");
}

TEST_CASE("OneCycle matches torch OneCycleLR (lr and momentum) over the whole 30-epoch recipe") {
  const Tensor& lr = test::gt(G(), "onecycle_lr");
  const Tensor& mom = test::gt(G(), "onecycle_momentum");
  auto s = make_onecycle({.max_lr = 0.1, .pct_start = 0.05, .div_factor = 25, .final_div_factor = 1e4}, lr.numel());
  Tensor mine_lr = Tensor::empty(lr.shape()), mine_m = Tensor::empty(mom.shape());
  for (int64_t k = 0; k < lr.numel(); ++k) {
    ScheduleValue v = s->at(k);
    mine_lr.f32()[k] = float(v.lr);
    mine_m.f32()[k] = float(v.momentum.value());
  }
  test::expect_close(mine_lr, lr, 1e-5, 1e-9, "onecycle lr");
  test::expect_close(mine_m, mom, 1e-6, 1e-9, "onecycle momentum");
}

TEST_CASE("cosine and step schedules with warm-up") {
  auto c = make_cosine(0.1, 0.0, 110, 10);
  CHECK(c->at(0).lr == doctest::Approx(0.01));
  CHECK(c->at(9).lr == doctest::Approx(0.1));
  CHECK(c->at(60).lr == doctest::Approx(0.05));
  CHECK(c->at(110).lr == doctest::Approx(0.0));
  auto st = make_step(0.1, 30, 0.1, 0);
  CHECK(st->at(29).lr == doctest::Approx(0.1));
  CHECK(st->at(30).lr == doctest::Approx(0.01));
  CHECK(st->at(65).lr == doctest::Approx(0.001));
}

TEST_CASE("clip_grad_norm scales to the requested global norm") {
  Var a(Tensor::zeros({2}), true), b(Tensor::zeros({1}), true);
  a.set_grad(Tensor::from({2}, {3.f, 0.f}));
  b.set_grad(Tensor::from({1}, {4.f}));
  double n = clip_grad_norm({{"a", a}, {"b", b}}, 1.0);
  CHECK(n == doctest::Approx(5.0));
  CHECK(a.grad().f32()[0] == doctest::Approx(0.6).epsilon(1e-5));
  CHECK(b.grad().f32()[0] == doctest::Approx(0.8).epsilon(1e-5));
}
