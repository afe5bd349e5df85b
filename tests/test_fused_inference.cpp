// Inference fuses conv2d -> batchnorm2d [-> relu/relu6] into one op with the BN folded into the
// weights, and add -> relu into one pass; the result must equal the op-by-op evaluation up to
// rounding, on both reference models, at batch 1 (a convolution's tiles shared among threads) and 3.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>

#include "core/rng.h"
#include "core/threads.h"
#include "direct_conv.h"
#include "nn/builders.h"
#include "nn/functional.h"
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

// The sliced passes keep their derived conv weights (Winograd filter transforms, packed copies)
// from pass to pass; a weight changed in place between passes, as by an optimizer step, must be
// seen by the next pass: it equals a pass of a fresh copy of the changed model (which derives
// everything anew), bit for bit, on every kind of conv weight of both reference models.
TEST_CASE("sliced inference: derived weights kept between passes never outlive a change of the weights") {
  const int threads_before = num_threads();
  set_threads(2);
  for (const char* family : {"dsnet", "resnet"}) {
    Model m = Model::create(build_model({{"family", family}}, "test"), 5);
    const Tensor x = test::randn({16, 1, 28, 28}, 4);
    NoGrad ng;
    const Tensor before = m.forward(Var(x), false).value().clone();
    int changed = 0;
    for (auto& [name, p] : m.params) {
      if (p.value().dim() != 4) continue;  // conv weights
      INFO(family, " ", name);
      float* w = p.value().f32();
      for (int64_t i = 0; i < p.value().numel(); i += 7) w[i] = -1.5f * w[i] + 0.01f;  // in place
      Model fresh = m;
      fresh.derived_weights = std::make_shared<F::WeightCache>();
      fresh.params.clear();
      for (auto& [n2, p2] : m.params) fresh.params.emplace(n2, Var(p2.value().clone(), true));
      const Tensor got = m.forward(Var(x), false).value();
      const Tensor want = fresh.forward(Var(x), false).value();
      REQUIRE(got.shape() == want.shape());
      CHECK(std::memcmp(got.f32(), want.f32(), sizeof(float) * size_t(got.numel())) == 0);
      ++changed;
    }
    CHECK(changed >= 4);
    const Tensor after = m.forward(Var(x), false).value();
    CHECK(std::memcmp(after.f32(), before.f32(), sizeof(float) * size_t(after.numel())) != 0);
  }
  set_threads(threads_before);
}

// conv2d_bn_add_act_inference against the ops it replaces (conv2d_bn_act_inference with no clamp,
// then add_act_inference): the same bits, on every convolution path: depthwise (3x3 kernel and the
// general plane loop), pointwise on the tap kernel (a batch, >= 32 channels) and on Eigen (one
// image), Winograd (>= 4 images), the shifted convolution (one image shared by the threads, and
// images per call), grouped, and the general im2col path (5x5 stride 3; and one image on the team
// by output channels, a 1x1 stride-2 shortcut). Inputs include NaN.
TEST_CASE("conv + BN + residual add + ReLU as one op equals the ops one after another, bit for bit") {
  struct Case {
    const char* path;
    int64_t N, C, H, O, k, stride, pad, groups;
  };
  const int threads_before = num_threads();
  set_threads(2);
  for (Case t :
       {Case{"depthwise 3x3", 2, 8, 9, 8, 3, 1, 1, 8}, Case{"depthwise 5x5", 2, 8, 9, 8, 5, 1, 2, 8},
        Case{"pointwise tap", 3, 32, 7, 40, 1, 1, 0, 1}, Case{"pointwise Eigen", 1, 16, 7, 24, 1, 1, 0, 1},
        Case{"winograd", 5, 8, 12, 16, 3, 1, 1, 1}, Case{"shifted, one image", 1, 32, 28, 32, 3, 1, 1, 1},
        Case{"shifted, images", 3, 6, 14, 10, 3, 1, 1, 1}, Case{"shifted, stride 2", 1, 32, 28, 64, 3, 2, 1, 1},
        Case{"grouped", 2, 8, 10, 12, 3, 1, 1, 2}, Case{"im2col", 2, 5, 17, 7, 5, 3, 1, 1},
        Case{"im2col, one image on the team", 1, 32, 28, 64, 1, 2, 0, 1}})
    for (float hi : {INFINITY, 6.f}) {
      INFO(t.path << " hi " << hi);
      Rng r(13, 2);
      auto fill = [&](Shape shape, float mul, float add) {
        Tensor u = Tensor::empty(shape);
        for (int64_t i = 0; i < u.numel(); ++i) u.f32()[i] = add + mul * r.normal();
        return u;
      };
      Tensor x = fill({t.N, t.C, t.H, t.H}, 1.f, 0.f), w = fill({t.O, t.C / t.groups, t.k, t.k}, 0.3f, 0.f);
      Tensor b = fill({t.O}, 0.1f, 0.f), gamma = fill({t.O}, 0.2f, 1.f), beta = fill({t.O}, 0.2f, 0.f);
      Tensor mean = fill({t.O}, 0.2f, 0.f), var = fill({t.O}, 0.f, 0.7f);
      x.f32()[3] = NAN;
      const int64_t Ho = (t.H + 2 * t.pad - t.k) / t.stride + 1;
      Tensor res = fill({t.N, t.O, Ho, Ho}, 1.f, 0.f);
      res.f32()[5] = NAN;
      NoGrad ng;
      const Tensor y = F::conv2d_bn_act_inference(x, w, b, int(t.stride), int(t.pad), int(t.groups), gamma, beta, mean,
                                                  var, 1e-5f, -INFINITY, INFINITY);
      const Tensor want = F::add_act_inference(y, res, 0.f, hi);
      const Tensor got = F::conv2d_bn_add_act_inference(x, w, b, int(t.stride), int(t.pad), int(t.groups), gamma, beta,
                                                        mean, var, 1e-5f, res, 0.f, hi);
      REQUIRE(got.shape() == want.shape());
      int64_t differ = 0, nans = 0;
      for (int64_t i = 0; i < want.numel(); ++i) {
        nans += std::isnan(want.f32()[i]);
        differ += std::memcmp(want.f32() + i, got.f32() + i, sizeof(float)) != 0;
      }
      CHECK(nans > 0);
      CHECK(differ == 0);
    }
  set_threads(threads_before);
}

// One image on a team, by output channels (nn/ops/conv2d.cpp: the im2col path below the threads'
// count of images; the teacher's 1x1 stride-2 shortcuts), against the direct convolution, for
// teams of 1-3 (the channels split unevenly over 3).
TEST_CASE("conv2d, one image, output channels split over the team, equals the direct convolution") {
  const int threads_before = num_threads();
  struct Case {
    int64_t C, H, O, k, stride, pad;
  };
  for (Case t : {Case{32, 28, 64, 1, 2, 0}, Case{5, 29, 40, 5, 3, 1}})
    for (int threads : {1, 2, 3}) {
      INFO("C " << t.C << " " << t.H << "x" << t.H << " O " << t.O << " k " << t.k << " team " << threads);
      set_threads(threads);
      const kernels::ConvGeom g{t.C, t.H, t.H, t.k, t.k, t.stride, t.pad};
      // Other values for every team: a row left unwritten cannot show the last run's right answer.
      Tensor x = test::randn({1, t.C, t.H, t.H}, uint64_t(21 + threads)), w = test::randn({t.O, t.C, t.k, t.k}, 22);
      NoGrad ng;
      const Tensor y = F::conv2d(Var(x), Var(w), Var(), int(t.stride), int(t.pad), 1).value();
      test::check_close(y.f32(), test::direct_conv(x.f32(), w.f32(), t.O, g), 1e-4);
    }
  set_threads(threads_before);
}

// A residual block's two convolutions as one op (F::conv2d_bn_pair_inference): at batch 1 on a
// team of 2-3 the first one's result goes straight into the second one's padded copy
// (shifted::forward_pair), and at batches of >= 4 images with both on Winograd (Winograd builds
// only) into its Winograd copy (winograd::forward_pair; the 64-channel case in calls of fewer
// images than the single convolutions', winograd::pair_images_per_call, split_calls); the same bits as the two ops one
// after the other, with and without the block's residual, the first convolution at stride 1 and 2, channels that split
// unevenly over 3 threads; inputs include NaN. Team 1 at batch 1 (the two ops themselves) is included as a check of the
// test.
TEST_CASE("two convolutions with BN as one op equal the two ops, bit for bit") {
  struct Case {
    int64_t C, H, O1, stride1, O2, N;
  };
  const int threads_before = num_threads();
  for (Case t :
       {Case{16, 14, 16, 1, 16, 1}, Case{8, 15, 32, 2, 24, 1}, Case{7, 28, 21, 1, 13, 1}, Case{16, 14, 16, 1, 16, 5},
        Case{8, 28, 12, 1, 9, 9}, Case{8, 15, 32, 2, 24, 4}, Case{64, 14, 64, 1, 64, 16}})
    for (int threads : {1, 2, 3})
      for (bool with_residual : {false, true}) {
        INFO("N " << t.N << " C " << t.C << " " << t.H << "x" << t.H << " O1 " << t.O1 << " stride " << t.stride1
                  << " O2 " << t.O2 << " team " << threads << " residual " << with_residual);
        set_threads(threads);
        Rng r(uint64_t(40 + threads), 3);  // other values for every team: stale buffers cannot pass
        auto fill = [&](Shape shape, float mul, float add) {
          Tensor u = Tensor::empty(shape);
          for (int64_t i = 0; i < u.numel(); ++i) u.f32()[i] = add + mul * r.normal();
          return u;
        };
        const int64_t H1 = (t.H + 2 - 3) / t.stride1 + 1;
        // F::ConvBn holds references: the tensors live here.
        const Tensor w1 = fill({t.O1, t.C, 3, 3}, 0.3f, 0.f), b1 = fill({t.O1}, 0.1f, 0.f),
                     g1 = fill({t.O1}, 0.2f, 1.f), be1 = fill({t.O1}, 0.2f, 0.f), m1 = fill({t.O1}, 0.2f, 0.f),
                     v1 = fill({t.O1}, 0.f, 0.7f);
        const Tensor w2 = fill({t.O2, t.O1, 3, 3}, 0.3f, 0.f), b2, g2 = fill({t.O2}, 0.2f, 1.f),
                     be2 = fill({t.O2}, 0.2f, 0.f), m2 = fill({t.O2}, 0.2f, 0.f), v2 = fill({t.O2}, 0.f, 0.7f);
        const F::ConvBn c1{w1, b1, int(t.stride1), 1, 1, g1, be1, m1, v1, 1e-5f};
        const F::ConvBn c2{w2, b2, 1, 1, 1, g2, be2, m2, v2, 1e-5f};
        Tensor x = fill({t.N, t.C, t.H, t.H}, 1.f, 0.f);
        x.f32()[3] = NAN;
        Tensor res = with_residual ? fill({t.N, t.O2, H1, H1}, 1.f, 0.f) : Tensor();
        NoGrad ng;
        const Tensor y1 = F::conv2d_bn_act_inference(x, c1.w, c1.b, c1.stride, 1, 1, c1.gamma, c1.beta, c1.mean, c1.var,
                                                     c1.eps, 0.f, INFINITY);
        const Tensor want = with_residual ? F::conv2d_bn_add_act_inference(y1, c2.w, c2.b, 1, 1, 1, c2.gamma, c2.beta,
                                                                           c2.mean, c2.var, c2.eps, res, 0.f, 6.f)
                                          : F::conv2d_bn_act_inference(y1, c2.w, c2.b, 1, 1, 1, c2.gamma, c2.beta,
                                                                       c2.mean, c2.var, c2.eps, -1.f, 6.f);
        const Tensor got = F::conv2d_bn_pair_inference(x, c1, 0.f, INFINITY, c2, res, with_residual ? 0.f : -1.f, 6.f);
        REQUIRE(got.shape() == want.shape());
        int64_t differ = 0, nans = 0, clamped = 0;
        for (int64_t i = 0; i < want.numel(); ++i) {
          nans += std::isnan(want.f32()[i]);
          clamped += want.f32()[i] == 6.f;
          differ += std::memcmp(want.f32() + i, got.f32() + i, sizeof(float)) != 0;
        }
        CHECK(nans > 0);
        CHECK(clamped > 0);
        CHECK(differ == 0);
      }
  set_threads(threads_before);
}
