// Quantization-aware training (quant/qat.h, quant/bn_fold.h): BN folding's gradients by finite
// differences, the fake-quantized forward pass against the INT8 model converted from it, and the
// observer schedule (moving ranges, then frozen).
#include <doctest/doctest.h>

#include <cmath>

#include "autograd/gradcheck.h"
#include "nn/builders.h"
#include "nn/ops/bn_fold_values.h"
#include "quant/bn_fold.h"
#include "quant/qat.h"
#include "random_tensor.h"
#include "test_models.h"

using namespace kd;
using namespace kd::quant;

TEST_CASE("gradcheck: BN folded into conv weights and bias") {
  const Tensor var = Tensor::from({3}, {0.5f, 1.7f, 0.05f}), mean = Tensor::from({3}, {0.3f, -1.f, 2.f});
  CHECK(gradcheck([&](const std::vector<Var>& v) { return fold_bn_weight(v[0], v[1], var, 1e-5f); },
                  {test::randn({3, 2, 3, 3}, 1), test::randn({3}, 2)})
            .ok);
  CHECK(gradcheck([&](const std::vector<Var>& v) { return fold_bn_bias(v[2], v[0], v[1], mean, var, 1e-5f); },
                  {test::randn({3}, 3), test::randn({3}, 4), test::randn({3}, 5)})
            .ok);
  CHECK(gradcheck([&](const std::vector<Var>& v) { return fold_bn_bias(Var(), v[0], v[1], mean, var, 1e-5f); },
                  {test::randn({3}, 6), test::randn({3}, 7)})
            .ok);
  // The BN-statistics phase's division by k = gamma / sqrt(var + eps), in y and gamma.
  CHECK(gradcheck([&](const std::vector<Var>& v) { return unscale_channels(v[0], v[1], var, 1e-5f); },
                  {test::randn({2, 3, 4, 5}, 8), test::randn({3}, 9)})
            .ok);
}

// QAT folds with the definition the INT8 conversion and the fused inference convolution use
// (nn/ops/bn_fold_values.h), to the bit: a model trained with QAT is the model converted. (The
// three used to write it three ways - a product with 1/sqrt(var + eps), eps read as a double -
// which agreed after rounding to float on these values; a wrong eps or term fails this.)
TEST_CASE("BN folding: QAT's folded weights and bias are the shared definition's, bit for bit") {
  const int64_t O = 16, per = 27;
  Tensor w = test::randn({O, 3, 3, 3}, 31), gamma = test::randn({O}, 32), beta = test::randn({O}, 33);
  Tensor b = test::randn({O}, 34), mean = test::randn({O}, 35), var = test::randn({O}, 36);
  for (int64_t o = 0; o < O; ++o) var.f32()[o] = 0.01f + std::fabs(var.f32()[o]);
  const float eps = 1e-5f;
  const Tensor wf = fold_bn_weight(Var(w), Var(gamma), var, eps).value();
  const Tensor bf = fold_bn_bias(Var(b), Var(gamma), Var(beta), mean, var, eps).value();
  int64_t differ = 0;
  for (int64_t o = 0; o < O; ++o) {
    const double k = F::bn_fold_scale(gamma.f32()[o], var.f32()[o], eps);
    for (int64_t i = 0; i < per; ++i) differ += wf.f32()[o * per + i] != float(double(w.f32()[o * per + i]) * k);
    differ += bf.f32()[o] != F::bn_fold_bias(beta.f32()[o], b.f32()[o], mean.f32()[o], k);
  }
  CHECK(differ == 0);
}

TEST_CASE("qat: BN statistics move until freeze_bn_step, then stay; evaluation uses them") {
  Model m = test::trained_looking_model(nlohmann::json{{"family", "dsnet"}, {"width", 0.5}}, 3);
  QatOptions opt;
  opt.freeze_bn_step = 2;
  QatModel qat(m, opt);
  qat.calibrate(test::randn({32, 1, 28, 28}, 5));
  const Tensor& mean = m.buffers.at(m.graph.nodes[4].name + ".running_mean");  // the first block's BN
  REQUIRE(m.graph.nodes[4].op == "batchnorm2d");
  std::vector<float> seen{mean.f32()[0]};
  for (int step = 0; step < 4; ++step) {
    CHECK(qat.bn_frozen() == (step >= 2));
    qat.forward(Var(test::randn({8, 1, 28, 28}, 20 + step, 2.f)), true);
    seen.push_back(mean.f32()[0]);
  }
  CHECK(seen[1] != seen[0]);
  CHECK(seen[2] != seen[1]);
  CHECK(seen[3] == seen[2]);
  CHECK(seen[4] == seen[2]);
  // Once frozen, the fake-quantized model is again the INT8 model it converts to.
  const Tensor x = test::randn({4, 1, 28, 28}, 30);
  Tensor fq;
  {
    NoGrad ng;
    fq = qat.forward(Var(x), false).value();
  }
  const Tensor i8 = qat.convert().forward(x);
  double num = 0, den = 0;
  for (int64_t i = 0; i < fq.numel(); ++i)
    num += std::pow(double(fq.f32()[i]) - i8.f32()[i], 2), den += std::pow(double(fq.f32()[i]), 2);
  CHECK(std::sqrt(num / den) < 0.02);
}

TEST_CASE("qat: the fake-quantized model is the INT8 model it converts to; ranges move, then freeze") {
  for (const nlohmann::json& cfg : {nlohmann::json{{"family", "dsnet"}, {"width", 0.5}},
                                    nlohmann::json{{"family", "resnet"}, {"widths", {8, 16}}, {"blocks", {1, 1}}}}) {
    INFO(cfg.dump());
    Model m = test::trained_looking_model(cfg, 3);
    QatOptions opt;
    opt.freeze_observers_step = 2;
    QatModel qat(m, opt);
    qat.calibrate(test::randn({32, 1, 28, 28}, 5));
    const Tensor x = test::randn({8, 1, 28, 28}, 6);
    Tensor fq, i8;
    {
      NoGrad ng;
      fq = qat.forward(Var(x), false).value();
    }
    i8 = qat.convert().forward(x);
    double num = 0, den = 0;
    for (int64_t i = 0; i < fq.numel(); ++i) {
      num += std::pow(double(fq.f32()[i]) - i8.f32()[i], 2);
      den += std::pow(double(fq.f32()[i]), 2);
    }
    MESSAGE("fake-quant vs INT8 relative error " << std::sqrt(num / den));
    CHECK(std::sqrt(num / den) < 0.02);

    // Training passes: the ranges follow the batches for two steps, then stay.
    Objective o = qat.objective({{"qat", true}});
    const Tensor& first = o.extra_buffers.at("qat.range.1");
    std::vector<float> seen;
    for (int step = 0; step < 4; ++step) {
      CHECK(qat.frozen() == (step >= 2));
      qat.forward(Var(test::randn({8, 1, 28, 28}, 10 + step, 3.f)), true);
      seen.push_back(first.f32()[1]);
    }
    CHECK(seen[0] != seen[1]);
    CHECK(seen[2] == seen[1]);
    CHECK(seen[3] == seen[1]);
    CHECK(o.extra_buffers.at("qat.steps").f32()[0] == 4.f);
  }
}
