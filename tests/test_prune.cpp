// Structured pruning (prune/): dependency groups on both reference models (residual adds and
// depthwise convs tie channels), and the physically pruned model computes what the original with
// those channels masked computes.
#include <doctest/doctest.h>

#include <cmath>

#include "core/error.h"
#include "nn/builders.h"
#include "prune/plan.h"
#include "random_tensor.h"
#include "test_models.h"

using namespace kd;
using namespace kd::prune;

namespace {

Tensor logits(Model& m, const Tensor& x) {
  NoGrad ng;
  return m.forward(Var(x), false).value();
}

const ChannelGroup* group_with(const std::vector<ChannelGroup>& gs, const std::string& node) {
  for (const ChannelGroup& g : gs)
    for (const std::string& n : g.nodes)
      if (n == node) return &g;
  return nullptr;
}

}  // namespace

TEST_CASE("prune: groups tie residual and depthwise channels") {
  Model t = test::trained_looking_model({{"family", "resnet"}}, 1);
  const auto gt = channel_groups(t);
  // Stage 1: the stem, both blocks' second convs and the adds share one group of 32 channels.
  const ChannelGroup* s1 = group_with(gt, "stem.0");
  REQUIRE(s1);
  CHECK(s1->channels == 32);
  CHECK(s1->prunable);
  CHECK(group_with(gt, "layers.0.c2") == s1);
  CHECK(group_with(gt, "layers.1.add") == s1);
  CHECK(group_with(gt, "layers.0.c1") != s1);  // a block's inner conv is free
  CHECK_FALSE(group_with(gt, "fc")->prunable);  // the logits
  Model s = test::trained_looking_model({{"family", "dsnet"}}, 2);
  const auto gs = channel_groups(s);
  // The depthwise conv after the stem carries the stem's channels.
  CHECK(group_with(gs, "features.3") == group_with(gs, "features.0"));
  CHECK(group_with(gs, "features.6") != group_with(gs, "features.0"));
}

TEST_CASE("prune: the pruned model computes what the masked original computes") {
  const std::vector<nlohmann::json> cfgs = {{{"family", "dsnet"}},
                                            {{"family", "resnet"}, {"widths", {16, 32}}, {"blocks", {2, 1}}}};
  for (const auto& cfg : cfgs)
    for (Criterion c : {Criterion::l1, Criterion::l2, Criterion::bn_scale}) {
      INFO(cfg.dump() << " " << std::string(criterion_name(c)));
      Model m = test::trained_looking_model(cfg, 5);
      PlanOptions opt;
      opt.criterion = c, opt.ratio = 0.4, opt.min_channels = 3, opt.round_to = 2;
      const Plan p = make_plan(m, opt);
      CHECK(p.removed() > 0);
      Model masked = masked_model(m, p), pruned = pruned_model(m, p);
      CHECK(pruned.num_params() < m.num_params());
      const Tensor x = test::randn({4, 1, 28, 28}, 7);
      const Tensor a = logits(masked, x), b = logits(pruned, x), orig = logits(m, x);
      double worst = 0, changed = 0;
      for (int64_t i = 0; i < a.numel(); ++i) {
        worst = std::max(worst, std::fabs(double(a.f32()[i]) - b.f32()[i]) / (1e-3 + std::fabs(a.f32()[i])));
        changed = std::max(changed, std::fabs(double(a.f32()[i]) - orig.f32()[i]));
      }
      MESSAGE("masked vs pruned: worst relative difference " << worst);
      CHECK(worst < 1e-4);  // only the summation order differs (fewer zero terms)
      CHECK(changed > 1e-3);  // and masking really changed the model
      // Kept counts obey min_channels and round_to.
      for (const GroupPlan& g : p.groups)
        if (g.group.prunable) {
          CHECK(int64_t(g.keep.size()) >= std::min<int64_t>(3, g.group.channels));
          CHECK((g.keep.size() % 2 == 0 || int64_t(g.keep.size()) == g.group.channels));
        }
    }
}

TEST_CASE("prune: plan errors") {
  Model m = test::trained_looking_model({{"family", "dsnet"}, {"width", 0.25}}, 3);
  PlanOptions bad;
  bad.ratio = 1.0;
  CHECK_THROWS_WITH_AS(make_plan(m, bad), doctest::Contains("ratio 1 must be in [0, 1)"), Error);
  CHECK_THROWS_WITH_AS(criterion_of("taylor2"), doctest::Contains("allowed: l1, l2, bn_scale, taylor"), Error);
}
