// nn/slimmable.h and the sandwich-rule helpers: the narrow networks are slices of the wide one
// (their gradients land in the right slice, checked by finite differences), files round-trip,
// width choice by budget.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <set>

#include "distill/slimmable_training.h"
#include "nn/functional.h"
#include "nn/slimmable.h"
#include "random_tensor.h"

using namespace kd;

namespace {
SlimmableModel small_slim() {
  return SlimmableModel::create({{"family", "dsnet"}, {"num_classes", 10}}, {1.0, 0.75, 0.5}, 7);
}
// A scalar of the eval-mode output of width i: sum of logits times fixed random weights.
double probe(SlimmableModel& s, size_t i, const Tensor& x, const Tensor& r) {
  s.sync(i);
  NoGrad ng;
  Tensor y = s.nets[i].forward(Var(x), false).value();
  double acc = 0;
  for (int64_t k = 0; k < y.numel(); ++k) acc += double(y.f32()[k]) * double(r.f32()[k]);
  return acc;
}
}  // namespace

TEST_CASE("slimmable: a narrow width's weights are leading slices and its gradients land in them") {
  SlimmableModel s = small_slim();
  REQUIRE(s.nets.size() == 3);
  // Width 0.5: 8 stem channels of the full 16; a pointwise weight [32, 16] of the full [64, 32].
  CHECK(s.nets[2].params.at("features.0.weight").shape() == Shape{8, 1, 3, 3});
  CHECK(s.nets[2].params.at("features.12.weight").shape() == Shape{32, 16, 1, 1});
  const Tensor& full = s.nets[0].params.at("features.12.weight").value();
  const Tensor& half = s.nets[2].params.at("features.12.weight").value();
  CHECK(half.f32()[1 * 16 + 5] == full.f32()[1 * 32 + 5]);  // [1,5] of both
  CHECK(s.per_width("features.1.weight"));
  CHECK(!s.per_width("features.0.weight"));

  // d probe / d W_full by the chain through the slice, against finite differences.
  const Tensor x = test::randn({2, 1, 28, 28}, 1), r = test::randn({2, 10}, 2);
  s.sync(2);
  for (auto& [k, p] : s.nets[0].params) p.zero_grad();
  for (auto& [k, p] : s.nets[2].params) p.zero_grad();
  // Eval-mode BN keeps the output a smooth function of the weights; backward seeded with r is the
  // gradient of sum_k out_k r_k.
  s.nets[2].fuse_inference = false;
  s.nets[2].forward(Var(x), false).backward(r);
  s.accumulate_grads(2);
  const Var& w = s.nets[0].params.at("features.12.weight");
  for (int64_t idx : {int64_t(0), int64_t(1 * 32 + 5), int64_t(31 * 32 + 15), int64_t(1 * 32 + 20), int64_t(40 * 32 + 3)}) {
    INFO("element ", idx);
    const bool inside = idx / 32 < 32 && idx % 32 < 16;
    const float saved = w.value().f32()[idx];
    const float h = 1e-2f;
    w.value().f32()[idx] = saved + h;
    const double up = probe(s, 2, x, r);
    w.value().f32()[idx] = saved - h;
    const double down = probe(s, 2, x, r);
    w.value().f32()[idx] = saved;
    const double numeric = (up - down) / (2 * h);
    const double analytic = w.grad().f32()[idx];
    if (inside)
      CHECK(analytic == doctest::Approx(numeric).epsilon(2e-2).scale(1e-3));
    else {
      CHECK(analytic == 0.0);
      CHECK(std::fabs(numeric) < 1e-6);
    }
  }
}

TEST_CASE("slimmable: file round trip keeps every width's output") {
  SlimmableModel s = small_slim();
  // Make the per-width BN state differ from the defaults.
  for (size_t i = 0; i < s.nets.size(); ++i)
    for (auto& [k, t] : s.nets[i].buffers) t.f32()[0] = 0.5f + float(i);
  const std::string path = std::filesystem::temp_directory_path() / "kd_test_slim.safetensors";
  s.save(path);
  SlimmableModel back = SlimmableModel::load(path);
  REQUIRE(back.widths == s.widths);
  const Tensor x = test::randn({3, 1, 28, 28}, 4);
  NoGrad ng;
  for (size_t i = 0; i < s.nets.size(); ++i) {
    INFO("width ", s.widths[i]);
    s.sync(i);
    Tensor a = s.nets[i].forward(Var(x), false).value(), b = back.nets[i].forward(Var(x), false).value();
    CHECK(std::memcmp(a.f32(), b.f32(), a.numel() * 4) == 0);
  }
  std::filesystem::remove(path);
  CHECK_THROWS_WITH(SlimmableModel::create({{"family", "resnet"}}, {1.0}, 0), doctest::Contains("only the dsnet"));
  CHECK_THROWS_WITH(SlimmableModel::create({{"family", "dsnet"}}, {0.5, 1.0}, 0), doctest::Contains("descending"));
}

TEST_CASE("sandwich rule: smallest always, k distinct middle widths, same draw for the same step") {
  std::set<size_t> seen;
  for (int64_t step = 0; step < 50; ++step) {
    auto w = distill::sandwich_widths(5, 2, 9, step);
    REQUIRE(w.size() == 3);
    CHECK(w.back() == 4);
    CHECK(w[0] != w[1]);
    CHECK(w[0] >= 1);
    CHECK(w[1] <= 3);
    seen.insert(w[0]), seen.insert(w[1]);
    CHECK(w == distill::sandwich_widths(5, 2, 9, step));
  }
  CHECK(seen == std::set<size_t>{1, 2, 3});  // every middle width gets its turn
  CHECK(distill::sandwich_widths(2, 3, 0, 0) == std::vector<size_t>{1});
  CHECK(distill::sandwich_widths(1, 1, 0, 0).empty());
}

TEST_CASE("latency budget picks the widest width that fits") {
  const std::vector<double> lat{0.50, 0.31, 0.20, 0.12};
  CHECK(distill::widest_within_budget(lat, 1.0) == 0);
  CHECK(distill::widest_within_budget(lat, 0.31) == 1);
  CHECK(distill::widest_within_budget(lat, 0.25) == 2);
  CHECK(distill::widest_within_budget(lat, 0.1) == -1);
}
