// Pruning criteria and scopes beyond the weight norms (prune/taylor.h, prune/plan.h):
//   the first-order Taylor score of a channel is the square of the derivative of the loss along
//   the scaling of the channel's producer parameters, d/da L(a w_c) at a = 1 = sum g w: checked
//   here against central finite differences of the loss with a gate on the channel (applied to
//   the values through a forward hook, not to the parameters) on both reference models;
//   global ranking removes the planned number of channels across groups, does not depend on a
//   group's importance scale, takes more from a group whose channels matter less, and its
//   physically pruned model still equals the masked original.
#include <doctest/doctest.h>

#include <cmath>

#include "core/error.h"
#include "data/normalize.h"
#include "nn/functional.h"
#include "prune/plan.h"
#include "prune/taylor.h"
#include "random_tensor.h"
#include "test_models.h"

using namespace kd;
using namespace kd::prune;

namespace {

Dataset random_images(int64_t n, uint64_t seed) {
  Dataset d;
  d.images = Tensor::empty({n, 28, 28}, DType::u8);
  Rng r(seed, 5);
  for (int64_t i = 0; i < n * 784; ++i) d.images.data<uint8_t>()[i] = uint8_t(r.uniform() * 255.f);
  for (int64_t i = 0; i < n; ++i) d.labels.push_back(int32_t(r.uniform() * 10) % 10);
  return d;
}

// The eval-mode cross-entropy of m on all of d with a gate a on channel c of the group: the
// outputs of the group's batch norms scaled by a there (in both reference models every conv of a
// prunable group is followed by one, so these are all the places the group computes its channels).
double loss_with_gate(const Model& m, const ChannelGroup& g, int64_t c, double a, const Dataset& d) {
  NodeHook gate;
  for (const std::string& n : g.nodes)
    if (m.graph.node(n).op == "batchnorm2d") gate.nodes.insert(n);
  gate.fn = [&](const std::string&, const Var& y, const std::map<std::string, Var>&) {
    Tensor t = y.value().contiguous().clone();
    const int64_t N = t.size(0), C = t.size(1), hw = t.numel() / (N * C);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t i = 0; i < hw; ++i) t.f32()[(n * C + c) * hw + i] *= float(a);
    return Var(t);
  };
  Model w = m;
  NoGrad ng;
  std::vector<int64_t> rows;
  for (int64_t i = 0; i < d.size(); ++i) rows.push_back(i);
  const Var x(normalize_rows(d.images, rows));
  return double(F::cross_entropy(w.forward(x, false, nullptr, nullptr, &gate), d.labels).value().f32()[0]);
}

}  // namespace

TEST_CASE("prune: taylor importance is the squared slope of the loss along a channel gate (finite differences)") {
  const std::vector<nlohmann::json> cfgs = {{{"family", "dsnet"}, {"width", 0.5}},
                                            {{"family", "resnet"}, {"widths", {8, 16}}, {"blocks", {1, 1}}}};
  const Dataset d = random_images(16, 1);
  for (const auto& cfg : cfgs) {
    INFO(cfg.dump());
    const Model m = test::trained_looking_model(cfg, 4);
    const std::vector<ChannelGroup> groups = channel_groups(m);
    // One batch holding every image: the score is then exactly (sum g w)^2 of that batch.
    const Importance imp = taylor_importance(m, groups, d, d.size(), d.size());
    REQUIRE(imp.size() == groups.size());
    int checked = 0, nonzero = 0;
    for (size_t gi = 0; gi < groups.size(); ++gi) {
      if (!groups[gi].prunable) continue;            // the logits, the image
      for (const std::string& n : groups[gi].nodes)  // the gate's premise: BN after every conv
        if (m.graph.node(n).op == "conv2d") {
          bool bn_after = false;
          for (const Node& o : m.graph.nodes) bn_after |= o.op == "batchnorm2d" && o.inputs[0] == n;
          REQUIRE(bn_after);
        }
      for (int64_t c : {int64_t(0), groups[gi].channels - 1}) {
        // Central differences at h and h/2, Richardson-extrapolated: the h^2 error term cancels.
        const auto central = [&](double h) {
          return (loss_with_gate(m, groups[gi], c, 1 + h, d) - loss_with_gate(m, groups[gi], c, 1 - h, d)) / (2 * h);
        };
        const double fd = (4 * central(1e-2) - central(2e-2)) / 3;
        const double taylor = std::sqrt(imp[gi][size_t(c)]);  // |sum g w|
        INFO("group " << gi << " channel " << c << ": finite difference " << fd << ", taylor " << taylor);
        // The loss is float: its differences are quantized to ~1e-5 after dividing by h (the
        // absolute term); a ReLU kink crossed inside [1-2h, 1+2h] costs up to ~1% (the relative).
        CHECK(std::fabs(std::fabs(fd) - taylor) <= 2e-2 * std::fabs(fd) + 5e-5);
        ++checked, nonzero += taylor > 1e-4;
      }
    }
    CHECK(checked >= 8);
    // Not a comparison between zeros only (channels dead on these images score 0 both ways).
    CHECK(nonzero >= 4);
  }
}

TEST_CASE("prune: taylor scores average the squares of the batches' estimates") {
  const Model m = test::trained_looking_model({{"family", "dsnet"}, {"width", 0.25}}, 6);
  const std::vector<ChannelGroup> groups = channel_groups(m);
  const Dataset d = random_images(8, 2);
  const Importance both = taylor_importance(m, groups, d, 8, 4);
  Dataset first = d, second;
  first.labels.resize(4);
  second.images = Tensor::empty({4, 28, 28}, DType::u8);
  std::copy(d.images.data<uint8_t>() + 4 * 784, d.images.data<uint8_t>() + 8 * 784, second.images.data<uint8_t>());
  second.labels.assign(d.labels.begin() + 4, d.labels.end());
  const Importance a = taylor_importance(m, groups, first, 4, 4), b = taylor_importance(m, groups, second, 4, 4);
  for (size_t gi = 0; gi < groups.size(); ++gi)
    for (size_t c = 0; c < both[gi].size(); ++c)
      CHECK(both[gi][c] == doctest::Approx(0.5 * (a[gi][c] + b[gi][c])).epsilon(1e-9));
}

TEST_CASE("prune: the taylor criterion needs measured importance") {
  const Model m = test::trained_looking_model({{"family", "dsnet"}, {"width", 0.25}}, 3);
  PlanOptions opt;
  opt.criterion = Criterion::taylor;
  CHECK_THROWS_WITH_AS(make_plan(m, opt), doctest::Contains("needs its importance measured on data"), Error);
  CHECK_THROWS_WITH_AS(make_plan(m, PlanOptions{}, Importance(2)), doctest::Contains("importance given for 2 groups"),
                       Error);
  CHECK_THROWS_WITH_AS(scope_of("local"), doctest::Contains("allowed: uniform, global"), Error);
}

TEST_CASE("prune: global scope ranks channels across groups") {
  const Model m = test::trained_looking_model({{"family", "resnet"}, {"widths", {16, 32}}, {"blocks", {2, 1}}}, 5);
  const std::vector<ChannelGroup> groups = channel_groups(m);
  PlanOptions opt;
  opt.scope = Scope::global, opt.ratio = 0.3, opt.min_channels = 2;
  int64_t prunable = 0;
  for (const ChannelGroup& g : groups) prunable += g.prunable ? g.channels : 0;
  // Importance: group s (the first prunable one) skewed (a quarter of its channels near 0), the
  // rest flat with noise.
  size_t s = 0;
  while (!groups[s].prunable) ++s;
  Importance imp(groups.size());
  Rng r(9, 1);
  for (size_t gi = 0; gi < groups.size(); ++gi)
    for (int64_t c = 0; c < groups[gi].channels; ++c)
      imp[gi].push_back((gi == s && c % 4 == 0 ? 0.01 : 1.0) + 0.1 * r.uniform());
  const Plan p = make_plan(m, opt, imp);
  CHECK(p.removed() == int64_t(std::floor(0.3 * double(prunable))));
  // Group s's near-zero channels go first: all of them (a quarter), and no other channel of s.
  CHECK(int64_t(p.groups[s].keep.size()) == groups[s].channels - groups[s].channels / 4);
  for (size_t gi = 0; gi < groups.size(); ++gi) {
    CHECK(int64_t(p.groups[gi].keep.size()) >= std::min<int64_t>(2, groups[gi].channels));
    for (int64_t c : p.groups[gi].keep)
      if (gi == s) CHECK(c % 4 != 0);
  }
  // Scaling one group's importance (a layer of larger fan-in has larger norms) changes nothing.
  Importance scaled = imp;
  for (double& v : scaled[s + 1]) v *= 1000;
  const Plan q = make_plan(m, opt, scaled);
  for (size_t gi = 0; gi < groups.size(); ++gi) CHECK(q.groups[gi].keep == p.groups[gi].keep);
  // A uniform plan of the same ratio takes floor(0.3 C) from group s instead.
  opt.scope = Scope::uniform;
  const Plan u = make_plan(m, opt, imp);
  CHECK(int64_t(u.groups[s].keep.size()) == groups[s].channels - int64_t(std::floor(0.3 * groups[s].channels)));
}

TEST_CASE("prune: global and taylor plans prune physically what they mask") {
  const std::vector<nlohmann::json> cfgs = {{{"family", "dsnet"}},
                                            {{"family", "resnet"}, {"widths", {16, 32}}, {"blocks", {2, 1}}}};
  const Dataset d = random_images(16, 3);
  for (const auto& cfg : cfgs)
    for (Criterion c : {Criterion::l1, Criterion::taylor}) {
      INFO(cfg.dump() << " " << std::string(criterion_name(c)));
      const Model m = test::trained_looking_model(cfg, 7);
      PlanOptions opt;
      opt.criterion = c, opt.scope = Scope::global, opt.ratio = 0.4, opt.min_channels = 3, opt.round_to = 2;
      const Importance imp = c == Criterion::taylor ? taylor_importance(m, channel_groups(m), d, 16, 8) : Importance{};
      const Plan p = make_plan(m, opt, imp);
      CHECK(p.removed() > 0);
      Model masked = masked_model(m, p), pruned = pruned_model(m, p);
      const Tensor x = test::randn({3, 1, 28, 28}, 8);
      NoGrad ng;
      const Tensor a = masked.forward(Var(x), false).value(), b = pruned.forward(Var(x), false).value();
      double worst = 0;
      for (int64_t i = 0; i < a.numel(); ++i)
        worst = std::max(worst, std::fabs(double(a.f32()[i]) - b.f32()[i]) / (1e-3 + std::fabs(a.f32()[i])));
      CHECK(worst < 1e-4);
      // A FLOPs target is met in the global scope too.
      const double r = ratio_for_flops(m, opt, 0.6, imp);
      opt.ratio = r;
      CHECK(double(model_flops(pruned_model(m, make_plan(m, opt, imp)))) <= 0.6 * double(model_flops(m)) + 1);
    }
}
