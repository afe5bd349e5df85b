// Dynamic channel gating (prune/channel_gating.h, prune/gated_inference.h): the gate op's
// gradients, the top-k choice, and the sparse runner computing what the masked forward computes
// while doing only the work of the kept channels.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>

#include "autograd/gradcheck.h"
#include "core/error.h"
#include "nn/functional.h"
#include "nn/model_io.h"
#include "prune/channel_gating.h"
#include "prune/gated_inference.h"
#include "random_tensor.h"
#include "test_models.h"

using namespace kd;
using namespace kd::prune;

namespace {

// A dsnet at width 0.5 with trained-looking BN and predictors whose saliencies vary per image.
GatedModel small_gated(uint64_t seed) {
  GatedModel g =
      GatedModel::create(test::trained_looking_model({{"family", "dsnet"}, {"width", 0.5}}, seed), 0.6, seed);
  int i = 0;
  for (auto& [k, p] : g.predictors)
    if (k.ends_with(".weight")) p.value() = test::randn(p.shape(), seed + uint64_t(++i), 2.f);
  return g;
}

// act(BN(0)) of channel c of a block's depthwise conv: what a skipped input channel becomes.
float const_of(const GatedModel& g, const GateSite& s, int64_t c) {
  const float gamma = g.model.params.at(s.dw_bn + ".weight").value().f32()[c];
  const float beta = g.model.params.at(s.dw_bn + ".bias").value().f32()[c];
  const float mean = g.model.buffers.at(s.dw_bn + ".running_mean").f32()[c];
  const float var = g.model.buffers.at(s.dw_bn + ".running_var").f32()[c];
  return std::max(0.f, beta - mean * gamma / std::sqrt(var + 1e-5f));
}

double max_rel_diff(const Tensor& a, const Tensor& b) {
  REQUIRE(a.shape() == b.shape());
  double scale = 0, diff = 0;
  for (int64_t i = 0; i < a.numel(); ++i) {
    scale = std::max(scale, double(std::fabs(b.f32()[i])));
    diff = std::max(diff, double(std::fabs(a.f32()[i] - b.f32()[i])));
  }
  return diff / std::max(scale, 1e-6);
}

}  // namespace

TEST_CASE("gating: channel_gate gradients (x and saliency; the mask is a constant)") {
  const Tensor x = test::randn({2, 3, 4, 5}, 1), s = test::randn({2, 3}, 2);
  Tensor mask = Tensor::from({2, 3}, {1, 0, 1, 0, 1, 1});
  const auto r = gradcheck([&](const std::vector<Var>& v) { return F::channel_gate(v[0], v[1], mask); }, {x, s});
  CHECK_MESSAGE(r.ok, r.first_failure);
  // Forward: masked channels are exactly zero, kept ones scaled by their saliency.
  NoGrad ng;
  const Tensor y = F::channel_gate(Var(x), Var(s), mask).value();
  CHECK(y.f32()[1 * 20 + 7] == 0.f);
  CHECK(y.f32()[2 * 20 + 3] == x.f32()[2 * 20 + 3] * s.f32()[2]);
}

TEST_CASE("gating: top-k picks the largest positive saliencies, ties by the lower index") {
  const Tensor s = Tensor::from({2, 5}, {0.5f, 2.f, 0.5f, -1.f, 1.f, 0.f, 3.f, 0.f, 0.f, 1.f});
  const Tensor m = top_k_mask(s, 3);
  const std::vector<float> want{1, 1, 0, 0, 1, 0, 1, 0, 0, 1};  // row 2: only two are > 0
  for (int i = 0; i < 10; ++i) CHECK(m.f32()[i] == want[size_t(i)]);
  CHECK(top_k_indices(s.f32(), 5, 3) == std::vector<int64_t>{0, 1, 4});
  CHECK(gate_k(128, 0.6) == 77);
  CHECK(gate_k(10, 0.01) == 1);
  CHECK_THROWS_AS(gate_k(10, 0.0), Error);
}

TEST_CASE("gating: the blocks of dsnet are found; a graph without any is refused") {
  const GatedModel g = small_gated(3);
  REQUIRE(g.sites.size() == 5);
  CHECK(g.sites[0].input == "features.2");
  CHECK(g.sites[0].act == "features.8");
  CHECK(g.sites[4].in_channels == 64);
  CHECK(g.sites[4].out_channels == 64);
  for (size_t i = 1; i < 5; ++i) CHECK(g.sites[i].input == g.sites[i - 1].act);
  CHECK_THROWS_AS(find_gate_sites(test::trained_looking_model({{"family", "resnet"}}, 1).graph), Error);
}

TEST_CASE("gating: the sparse runner computes the masked forward, doing only the kept channels' work") {
  GatedModel g = small_gated(4);
  const Tensor x = test::randn({6, 1, 28, 28}, 5);
  const GatedRunner runner(g);
  for (double keep : {1.0, 0.75, 0.6, 0.3}) {
    CAPTURE(keep);
    Tensor dense;
    std::vector<Tensor> sal;
    {
      NoGrad ng;
      dense = g.forward(Var(x), false, keep).value();
      sal = g.saliencies(x, keep);
    }
    std::vector<int64_t> macs;
    const Tensor sparse = runner.run(x, keep, &macs);
    CHECK(max_rel_diff(sparse, dense) < 1e-4);
    // The work of each image from the masked forward's choice: per block with a kept inputs
    // (all of the stem's) and k kept outputs over h x w output pixels:
    //   predictor C_out a + depthwise 9 a hw + pointwise k a hw + constants C_out (C_in - a)
    //   + BN a hw + BN and gate scale 2 k hw; head 10 a. The stem counts as the graph counts it.
    const std::vector<NodeInfo> info = g.model.graph.validate();
    const int64_t stem = info[0].macs + info[1].macs;  // conv 1 -> 8, 3x3 on 28x28, and its BN
    for (int64_t n = 0; n < 6; ++n) {
      int64_t want = stem, a = g.sites[0].in_channels;
      for (size_t b = 0; b < g.sites.size(); ++b) {
        const GateSite& s = g.sites[b];
        const Shape& out = info[size_t(&g.model.graph.node(s.act) - g.model.graph.nodes.data())].out_shape;
        const int64_t hw = out[1] * out[2];
        int64_t k = 0;
        for (int64_t c = 0; c < s.out_channels; ++c) {
          const float v = sal[b].f32()[n * s.out_channels + c];
          k += top_k_mask(sal[b], gate_k(s.out_channels, keep)).f32()[n * s.out_channels + c] > 0 && v > 0;
        }
        // Inactive inputs whose constant act(BN(0)) is not 0 cost C_out each.
        int64_t nonzero_consts = 0;
        if (b > 0) {
          const Tensor mprev = top_k_mask(sal[b - 1], gate_k(g.sites[b - 1].out_channels, keep));
          for (int64_t c = 0; c < s.in_channels; ++c)
            nonzero_consts += mprev.f32()[n * s.in_channels + c] == 0 && const_of(g, s, c) != 0;
        }
        want += s.out_channels * a + 9 * a * hw + k * a * hw + s.out_channels * nonzero_consts + a * hw + 2 * k * hw;
        a = k;
      }
      want += 10 * a;
      CHECK(macs[size_t(n)] == want);
      if (keep <= 0.6) CHECK(macs[size_t(n)] < runner.dense_macs() * 2 / 3);
    }
  }
}

TEST_CASE("gating: training reaches the predictors; save and load keep the model") {
  GatedModel g = small_gated(6);
  const Tensor x = test::randn({4, 1, 28, 28}, 7);
  Var loss = F::cross_entropy(g.forward(Var(x), true, 0.6), {0, 1, 2, 3});
  loss.backward();
  for (auto& [k, p] : g.predictors) {
    CAPTURE(k);
    REQUIRE(p.grad().defined());
    double norm = 0;
    for (int64_t i = 0; i < p.grad().numel(); ++i) norm += std::fabs(p.grad().f32()[i]);
    CHECK(norm > 0);
  }
  const std::string path = (std::filesystem::temp_directory_path() / "kd_test_gated.safetensors").string();
  g.keep = 0.55;
  g.save(path);
  CHECK(is_gated_file(path));
  GatedModel h = GatedModel::load(path);
  CHECK(h.keep == 0.55);
  NoGrad ng;
  const Tensor a = g.forward(Var(x), false, 0.5).value(), b = h.forward(Var(x), false, 0.5).value();
  CHECK(max_rel_diff(a, b) == 0);
  // An ordinary model file is not a gated one, and says so.
  save_model(path, g.model);
  CHECK_FALSE(is_gated_file(path));
  CHECK_THROWS_WITH_AS(GatedModel::load(path), doctest::Contains("not a gated model"), Error);
  std::filesystem::remove(path);
}
