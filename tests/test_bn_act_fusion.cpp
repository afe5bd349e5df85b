// batchnorm2d -> relu | relu6 fused into one op (F::batch_norm2d's lo/hi, Model::fuse_bn_act):
// the op against batch_norm2d followed by relu / relu6, forward and all three gradients, in
// training and eval mode, with values placed on the kinks; and both reference models' training
// forward and parameter gradients fused against op by op.
#include <doctest/doctest.h>

#include <cmath>

#include "core/threads.h"
#include "nn/functional.h"
#include "nn/ops/conv_epilogue.h"
#include "random_tensor.h"
#include "test_models.h"

using namespace kd;

namespace {

double max_rel_diff(const Tensor& a, const Tensor& b) {
  REQUIRE(a.numel() == b.numel());
  double worst = 0, scale = 1e-6;
  for (int64_t i = 0; i < a.numel(); ++i) scale = std::max(scale, double(std::fabs(b.f32()[i])));
  for (int64_t i = 0; i < a.numel(); ++i) worst = std::max(worst, double(std::fabs(a.f32()[i] - b.f32()[i])));
  return worst / scale;
}

}  // namespace

TEST_CASE("batch_norm2d with a fused relu / relu6 equals the two ops") {
  for (bool training : {true, false})
    for (float hi : {INFINITY, 6.f}) {
      INFO("training " << training << " hi " << hi);
      Tensor x = test::randn({3, 4, 5, 6}, 1);
      for (int64_t i = 0; i < x.numel(); i += 7) x.f32()[i] *= 8.f;  // some values beyond relu6's 6
      const Tensor g0 = test::randn({4}, 2), b0 = test::randn({4}, 3), gy = test::randn({3, 4, 5, 6}, 4);
      Tensor rm0 = test::randn({4}, 5), rv0 = Tensor::empty({4});
      for (int64_t c = 0; c < 4; ++c) rv0.f32()[c] = 0.5f + 0.25f * float(c);
      Tensor out[2], dx[2], dg[2], db[2], rm[2];
      for (int fused = 0; fused < 2; ++fused) {
        Var xv(x.clone(), true), gv(g0.clone(), true), bv(b0.clone(), true);
        Tensor m = rm0.clone(), v = rv0.clone();
        Var y = fused ? F::batch_norm2d(xv, gv, bv, m, v, training, 0.1f, 1e-5f, 0.f, hi)
                      : (hi == 6.f ? F::relu6(F::batch_norm2d(xv, gv, bv, m, v, training, 0.1f, 1e-5f))
                                   : F::relu(F::batch_norm2d(xv, gv, bv, m, v, training, 0.1f, 1e-5f)));
        F::mse_loss(y, gy).backward();
        out[fused] = y.value(), dx[fused] = xv.grad(), dg[fused] = gv.grad(), db[fused] = bv.grad(), rm[fused] = m;
      }
      int clamped = 0;
      for (int64_t i = 0; i < out[0].numel(); ++i) clamped += out[0].f32()[i] == 0.f || out[0].f32()[i] == hi;
      CHECK(clamped > 10);                         // the kinks are exercised
      CHECK(max_rel_diff(out[1], out[0]) == 0.0);  // the same float expression
      CHECK(max_rel_diff(dx[1], dx[0]) < 1e-6);
      CHECK(max_rel_diff(dg[1], dg[0]) < 1e-6);
      CHECK(max_rel_diff(db[1], db[0]) < 1e-6);
      CHECK(max_rel_diff(rm[1], rm[0]) == 0.0);
    }
}

TEST_CASE("models: BN+activation fusion changes neither the training forward nor the gradients") {
  for (const nlohmann::json& cfg : {nlohmann::json{{"family", "dsnet"}, {"width", 0.5}},
                                    nlohmann::json{{"family", "resnet"}, {"widths", {8, 16}}, {"blocks", {1, 1}}}}) {
    INFO(cfg.dump());
    const Tensor x = test::randn({4, 1, 28, 28}, 9), target = test::randn({4, 10}, 10);
    Tensor logits[2];
    std::map<std::string, Tensor> grads[2];
    for (int fused = 0; fused < 2; ++fused) {
      Model m = test::trained_looking_model(cfg, 3);
      m.fuse_bn_act = fused == 1;
      Var y = m.forward(Var(x), true);
      F::mse_loss(y, target).backward();
      logits[fused] = y.value();
      for (auto& [name, p] : m.params) grads[fused][name] = p.grad();
    }
    CHECK(max_rel_diff(logits[1], logits[0]) == 0.0);
    for (auto& [name, g] : grads[0]) {
      INFO(name);
      CHECK(max_rel_diff(grads[1].at(name), g) < 1e-5);
    }
  }
}

// The batch statistics and the backward's sums are added per chunk of images, the chunks in
// order (nn/ops/batchnorm.cpp): training gives the same bits on any number of threads. Large
// enough to be split (36,000 values), 10 images: chunks of 4, 4 and 2.
TEST_CASE("batch_norm2d training gives the same bits on 1 and 2 threads") {
  const int threads_before = num_threads();
  const Tensor x = test::randn({10, 3, 40, 30}, 21), gy = test::randn({10, 3, 40, 30}, 22);
  const Tensor g0 = test::randn({3}, 23), b0 = test::randn({3}, 24);
  Tensor out[2], dx[2], dg[2], db[2], rm[2], rv[2];
  for (int t = 0; t < 2; ++t) {
    set_threads(t + 1);
    Var xv(x.clone(), true), gv(g0.clone(), true), bv(b0.clone(), true);
    rm[t] = Tensor::zeros({3}), rv[t] = Tensor::full({3}, 1.f);
    Var y = F::batch_norm2d(xv, gv, bv, rm[t], rv[t], true, 0.1f, 1e-5f, 0.f, INFINITY);
    F::mse_loss(y, gy).backward();
    out[t] = y.value(), dx[t] = xv.grad(), dg[t] = gv.grad(), db[t] = bv.grad();
  }
  set_threads(threads_before);
  for (const auto& [name, pair] : std::vector<std::pair<const char*, Tensor*>>{
           {"output", out}, {"dx", dx}, {"dgamma", dg}, {"dbeta", db}, {"running mean", rm}, {"running var", rv}}) {
    INFO(name);
    CHECK(max_rel_diff(pair[0], pair[1]) == 0.0);
  }
}

// The fused clamps (nn/ops/clamp.h) vectorize to max/min instructions, whose NaN rule is
// operand order: NaN must come out as NaN from every fused activation, in the vector loops (long
// rows, NaN at lanes 0, 5 and 15 of a vector and in the scalar tail) as in scalar code.
TEST_CASE("fused clamps pass NaN and clamp everything else") {
  const int64_t n = 1000;
  Tensor x = Tensor::empty({1, 1, 1, n});
  for (int64_t i = 0; i < n; ++i) x.f32()[i] = float(i % 17) - 8.f;  // -8 .. 8: below, inside and above
  const std::vector<int64_t> nans{0, 5, 15, 500, 999};
  for (int64_t i : nans) x.f32()[i] = NAN;
  const Tensor zero = Tensor::zeros({1, 1, 1, n});
  auto check = [&](const Tensor& y, float lo, float hi, const char* what) {
    INFO(what);
    for (int64_t i = 0; i < n; ++i) {
      const float v = x.f32()[i], got = y.f32()[i];
      if (std::isnan(v))
        CHECK(std::isnan(got));
      else
        CHECK(got == std::min(std::max(v, lo), hi));
    }
  };
  check(F::relu6(Var(x)).value(), 0.f, 6.f, "relu6");
  NoGrad ng;
  check(F::add_act_inference(x, zero, 0.f, INFINITY), 0.f, INFINITY, "add + relu");
  check(F::add_act_inference(x, zero, 0.f, 6.f), 0.f, 6.f, "add + relu6");
  Tensor y = Tensor::empty({1, 1, 1, n});
  F::Epilogue ep;
  ep.lo = 0.f, ep.hi = 6.f;
  ep.apply(x.f32(), y.f32(), n, 0);
  check(y, 0.f, 6.f, "conv epilogue");
  Tensor rm = Tensor::zeros({1}), rv = Tensor::full({1}, 1.f - 1e-5f);  // eval BN: y = x exactly
  check(F::batch_norm2d(Var(x), Var(Tensor::full({1}, 1.f)), Var(Tensor::zeros({1})), rm, rv, false, 0.1f, 1e-5f, 0.f,
                        6.f)
            .value(),
        0.f, 6.f, "batch norm + relu6");
}
