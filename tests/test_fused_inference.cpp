// Inference fuses conv2d -> batchnorm2d [-> relu/relu6] into one op with the BN folded into the
// weights, and add -> relu into one pass; the result must equal the op-by-op evaluation up to
// rounding, on both reference models, at batch 1 (a convolution's tiles shared among threads) and 3.
#include <doctest/doctest.h>

#include <cmath>

#include "core/rng.h"
#include "core/threads.h"
#include "nn/builders.h"
#include "nn/model.h"
#include "random_tensor.h"

using namespace kd;

namespace {
// How far got is from ref: the largest |difference| and the largest |ref| (the tolerance's scale).
struct Gap {
  double worst = 0, scale = 0;
};
Gap gap(const Tensor& got, const Tensor& ref) {
  Gap g;
  for (int64_t i = 0; i < ref.numel(); ++i) {
    g.worst = std::max(g.worst, double(std::fabs(got.f32()[i] - ref.f32()[i])));
    g.scale = std::max(g.scale, double(std::fabs(ref.f32()[i])));
  }
  return g;
}
}  // namespace

TEST_CASE("fused conv+BN+activation inference equals op-by-op evaluation") {
  for (const char* family : {"dsnet", "resnet"})
    for (int64_t batch : {1, 3}) {
      INFO(std::string(family), " batch ", batch);
      Model m = Model::create(build_model({{"family", family}}, "test"), 11);
      // Non-trivial BN statistics and affine parameters, so that folding has something to fold.
      Rng r(5, 1);
      for (auto& [k, t] : m.buffers)
        for (int64_t i = 0; i < t.numel(); ++i)
          t.f32()[i] = k.find("running_var") != std::string::npos ? 0.5f + r.uniform() : 0.3f * r.normal();
      for (auto& [k, p] : m.params)
        if (p.value().dim() == 1)
          for (int64_t i = 0; i < p.value().numel(); ++i) p.value().f32()[i] += 0.2f * r.normal();
      Tensor x = Tensor::empty({batch, 1, 28, 28});
      for (int64_t i = 0; i < x.numel(); ++i) x.f32()[i] = r.normal();
      NoGrad ng;
      m.fuse_inference = false;
      Tensor ref = m.forward(Var(x), false).value();
      m.fuse_inference = true;
      Tensor got = m.forward(Var(x), false).value();
      REQUIRE(got.shape() == ref.shape());
      const auto [worst, scale] = gap(got, ref);
      INFO("max |fused - op-by-op| = ", worst, " with max |logit| = ", scale);
      CHECK(worst <= 1e-4 * (1 + scale));
      // A tapped inner value disables fusion of its chain and is still returned.
      std::map<std::string, Var> taps{{m.graph.nodes[1].name, Var()}};
      Tensor tapped = m.forward(Var(x), false, nullptr, &taps).value();
      CHECK(taps.begin()->second.defined());
      for (int64_t i = 0; i < ref.numel(); ++i) CHECK(std::fabs(tapped.f32()[i] - ref.f32()[i]) <= 1e-4 * (1 + scale));
    }
}

// A batch at inference runs as slices of images, each slice through the whole graph on one thread
// (Model::forward_slices). Each image's logits must be those of the whole batch in one pass, up to
// the final linear layer's rounding: Eigen's GEMM orders a row's sum by how many rows it has (so
// any change of batch size moves a logit by an ulp or so; the convolutions give the same bits).
// The batch sizes cut into equal and unequal slices (2 threads: 9 -> 5 + 4, 37 -> 4 slices <= 10).
TEST_CASE("inference in batch slices equals the whole batch, image for image") {
  const int threads_before = num_threads();
  set_threads(2);
  for (const char* family : {"dsnet", "resnet"})
    for (int64_t batch : {9, 37}) {
      INFO(std::string(family), " batch ", batch);
      Model m = Model::create(build_model({{"family", family}}, "test"), 3);
      const Tensor x = test::randn({batch, 1, 28, 28}, 9);
      NoGrad ng;
      m.split_batch_inference = false;
      Tensor whole = m.forward(Var(x), false).value();
      m.split_batch_inference = true;
      Tensor sliced = m.forward(Var(x), false).value();
      REQUIRE(sliced.shape() == whole.shape());
      int64_t differ = 0;
      for (int64_t i = 0; i < whole.numel(); ++i) differ += sliced.f32()[i] != whole.f32()[i];
      const auto [worst, scale] = gap(sliced, whole);
      INFO(differ, " of ", whole.numel(), " logits differ, by at most ", worst, " (max |logit| ", scale, ")");
      CHECK(worst <= 1e-6 * (1 + scale));
    }
  set_threads(threads_before);
}
