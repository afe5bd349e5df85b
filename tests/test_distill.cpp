// distill/: hint (FitNets), attention transfer and multi-teacher KD against PyTorch goldens and
// finite differences; schedules and config validation; and distillation runs that resume
// bit-identically (adapters included) and whose teacher cache changes nothing.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <filesystem>

#include "autograd/gradcheck.h"
#include "random_tensor.h"
#include "distill/attention.h"
#include "distill/distiller.h"
#include "distill/hint.h"
#include "distill/slimmable_training.h"
#include "nn/slimmable.h"
#include "distill/teacher_ensemble.h"
#include "golden.h"
#include "nn/builders.h"
#include "nn/functional.h"
#include "nn/model_io.h"

using namespace kd;
using namespace kd::distill;

namespace {
using test::randn;
}  // namespace

TEST_CASE("hint loss (1x1 adapter + MSE) matches PyTorch, with the adapter's gradients") {
  const TensorFile& g = test::golden("distill.safetensors");
  Var s(test::gt(g, "hint.s").clone(), true);
  HintAdapter a{Var(test::gt(g, "hint.w").clone(), true), Var(test::gt(g, "hint.b").clone(), true)};
  Var loss = hint_loss(s, test::gt(g, "hint.t"), a);
  test::expect_close(loss.value().reshape({1}), test::gt(g, "hint.loss"), 1e-5, 1e-7, "hint loss");
  loss.backward();
  test::expect_close(s.grad(), test::gt(g, "hint.grad_s"), 1e-4, 1e-6, "d/ds");
  test::expect_close(a.weight.grad(), test::gt(g, "hint.grad_w"), 1e-4, 1e-6, "d/dW");
  test::expect_close(a.bias.grad(), test::gt(g, "hint.grad_b"), 1e-4, 1e-6, "d/db");
}

TEST_CASE("attention transfer matches PyTorch (maps, loss, gradient)") {
  const TensorFile& g = test::golden("distill.safetensors");
  test::expect_close(attention_map(test::gt(g, "at.t")), test::gt(g, "at.map_t"), 1e-5, 1e-7, "teacher map");
  Var s(test::gt(g, "at.s").clone(), true);
  Var loss = attention_transfer_loss(s, test::gt(g, "at.t"));
  test::expect_close(loss.value().reshape({1}), test::gt(g, "at.loss"), 1e-5, 1e-8, "AT loss");
  loss.backward();
  test::expect_close(s.grad(), test::gt(g, "at.grad_s"), 1e-4, 1e-7, "d/ds");
}

TEST_CASE("two teachers: KD against their weighted mean distribution matches PyTorch") {
  const TensorFile& g = test::golden("distill.safetensors");
  const float T = std::stof(g.metadata.at("T")), alpha = std::stof(g.metadata.at("alpha"));
  const double w1 = std::stod(g.metadata.at("w1")), w2 = std::stod(g.metadata.at("w2"));
  std::vector<int32_t> y;
  for (int64_t i = 0; i < 4; ++i) y.push_back(int32_t(test::gt(g, "multi.y").f32()[i]));
  // Weights are normalised: (7, 3) means the same as (0.7, 0.3).
  for (double scale : {1.0, 10.0}) {
    INFO("weights scaled by ", scale);
    Tensor t = ensemble_logits({test::gt(g, "multi.t1"), test::gt(g, "multi.t2")}, {w1 * scale, w2 * scale}, T);
    Var s(test::gt(g, "multi.s").clone(), true);
    Var loss = F::kd_loss(s, t, y, T, alpha);
    test::expect_close(loss.value().reshape({1}), test::gt(g, "multi.loss"), 2e-5, 1e-6, "loss");
    loss.backward();
    test::expect_close(s.grad(), test::gt(g, "multi.grad_s"), 1e-4, 1e-6, "grad");
  }
  // One teacher passes through untouched; equal teachers give the teacher's own distribution.
  const Tensor& t1 = test::gt(g, "multi.t1");
  CHECK(ensemble_logits({t1}, {0.5}, T).f32() == t1.f32());
  Tensor twice = ensemble_logits({t1, t1}, {1, 3}, T);
  Var s1(test::gt(g, "multi.s").clone());
  CHECK(F::kd_loss(s1, twice, y, T, 1.f).value().f32()[0] ==
        doctest::Approx(F::kd_loss(s1, t1, y, T, 1.f).value().f32()[0]).epsilon(1e-5));
}

TEST_CASE("distillation loss terms agree with finite differences") {
  SUBCASE("attention transfer") {
    Tensor t = randn({2, 5, 3, 4}, 2);
    auto r = gradcheck([&](const std::vector<Var>& v) { return attention_transfer_loss(v[0], t); },
                       {randn({2, 3, 3, 4}, 1)});
    CHECK_MESSAGE(r.ok, r.first_failure);
  }
  SUBCASE("hint: student features, adapter weight and bias") {
    Tensor t = randn({2, 4, 3, 3}, 4);
    auto r = gradcheck(
        [&](const std::vector<Var>& v) { return hint_loss(v[0], t, HintAdapter{v[1], v[2]}); },
        {randn({2, 3, 3, 3}, 3), randn({4, 3, 1, 1}, 5, 0.5f), randn({4}, 6, 0.1f)});
    CHECK_MESSAGE(r.ok, r.first_failure);
  }
  SUBCASE("mse and weighted sum") {
    Tensor t = randn({3, 5}, 8);
    auto r = gradcheck(
        [&](const std::vector<Var>& v) {
          return F::weighted_sum({F::mse_loss(v[0], t), F::mse_loss(v[1], t)}, {0.3f, 2.f});
        },
        {randn({3, 5}, 7), randn({3, 5}, 9)});
    CHECK_MESSAGE(r.ok, r.first_failure);
  }
}

TEST_CASE("attention and hint losses reject maps of different resolution, naming both shapes") {
  Var s(randn({2, 3, 4, 4}, 1), true);
  CHECK_THROWS_WITH(attention_transfer_loss(s, randn({2, 3, 2, 2}, 2)), doctest::Contains("[2,3,2,2]"));
  Rng r(1, 1);
  HintAdapter a = make_hint_adapter(3, 5, r);
  CHECK_THROWS_WITH(hint_loss(s, randn({2, 5, 8, 8}, 2), a), doctest::Contains("equal resolution"));
  CHECK_THROWS_WITH(hint_loss(s, randn({2, 6, 4, 4}, 2), a), doctest::Contains("teacher channels"));
}

TEST_CASE("temperature and alpha schedules") {
  ValueSchedule c = ValueSchedule::from_json(4.0, "f: temperature", 1e-3, 1e3);
  CHECK(c.at(0, 100) == 4.0);
  CHECK(c.at(99, 100) == 4.0);
  ValueSchedule l = ValueSchedule::from_json({{"schedule", "linear"}, {"start", 4}, {"end", 2}}, "f: t", 0, 10);
  CHECK(l.at(0, 100) == 4.0);
  CHECK(l.at(50, 100) == doctest::Approx(3.0));
  ValueSchedule k = ValueSchedule::from_json({{"schedule", "cosine"}, {"start", 0.9}, {"end", 0.5}}, "f: a", 0, 1);
  CHECK(k.at(0, 100) == doctest::Approx(0.9));
  CHECK(k.at(50, 100) == doctest::Approx(0.7));
  CHECK(k.at(100, 100) == doctest::Approx(0.5));
  CHECK(ValueSchedule::from_json(k.to_json(), "x", 0, 1).to_json() == k.to_json());
  CHECK_THROWS_WITH(ValueSchedule::from_json(1.5, "f: alpha", 0, 1), doctest::Contains("f: alpha is 1.5, allowed [0, 1]"));
  CHECK_THROWS_WITH(ValueSchedule::from_json({{"schedule", "step"}, {"start", 1}}, "f: alpha", 0, 1),
                    doctest::Contains("allowed: constant, linear, cosine"));
  CHECK_THROWS_WITH(ValueSchedule::from_json({{"schedule", "linear"}, {"start", 1}}, "f: t", 0, 9),
                    doctest::Contains("end is required"));
  CHECK_THROWS_WITH(ValueSchedule::from_json({{"begin", 1}}, "f: t", 0, 9), doctest::Contains("unknown key 'begin'"));
}

namespace {

nlohmann::json tiny_student() {
  return {{"model", {{"family", "dsnet"}, {"width", 0.25}}},
          {"data", {{"augment", "none"}}},
          {"recipe", {{"epochs", 2}, {"batch", 16}, {"seed", 5}, {"optimizer", {{"type", "sgd"}, {"lr", 0.05}}}}}};
}

// Random images whose label is a function of their mean brightness: a signal a tiny model can find.
Dataset synthetic(int64_t n, uint64_t seed) {
  Dataset d;
  d.images = Tensor::empty({n, 28, 28}, DType::u8);
  Rng r(seed, 3);
  for (int64_t i = 0; i < n; ++i) {
    const int32_t label = int32_t(r.uniform() * 10) % 10;
    for (int64_t p = 0; p < 784; ++p)
      d.images.data<uint8_t>()[i * 784 + p] = uint8_t(std::min(255.f, float(label) * 20.f + r.uniform() * 60.f));
    d.labels.push_back(label);
  }
  return d;
}

struct Fixture {
  std::string dir = std::filesystem::temp_directory_path() / "kd_test_distill";
  std::string teacher = dir + "/teacher.safetensors";
  Fixture() {
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    Model t = Model::create(build_model({{"family", "resnet"}, {"widths", {8, 16, 32}}, {"blocks", {1, 1, 1}}}, "test"), 11);
    save_model(teacher, t);
  }
  ~Fixture() { std::filesystem::remove_all(dir); }
  DistillConfig config(const nlohmann::json& extra = nlohmann::json::object()) const {
    nlohmann::json j = {{"student", tiny_student()}, {"teachers", {{{"model", teacher}}}}};
    j.update(extra);
    return DistillConfig::from_json(j, "test.json");
  }
};

std::map<std::string, Tensor> run(const DistillConfig& c, const Dataset& tr, TrainOptions o, Objective* keep = nullptr) {
  Model m = Model::create(build_model(c.student.model, "test"), c.student.seed);
  o.objective = make_objective(c, m, tr.size());
  train(m, c.student, tr, Dataset{}, o);
  auto st = m.state();
  for (auto& [k, p] : o.objective.extra_params) st["extra." + k] = p.value();
  if (keep) *keep = o.objective;
  return st;
}

void expect_identical(const std::map<std::string, Tensor>& a, const std::map<std::string, Tensor>& b) {
  REQUIRE(a.size() == b.size());
  for (auto& [k, t] : a) {
    INFO(k);
    REQUIRE(b.count(k));
    CHECK(std::memcmp(t.f32(), b.at(k).f32(), t.numel() * 4) == 0);
  }
}

}  // namespace

TEST_CASE("distillation config: errors name the file and key") {
  Fixture f;
  auto bad = [&](nlohmann::json extra, const char* want) {
    nlohmann::json j = {{"student", tiny_student()}, {"teachers", {{{"model", f.teacher}}}}};
    j.update(extra);
    CHECK_THROWS_WITH(
        {
          DistillConfig c = DistillConfig::from_json(j, "d.json");
          Model m = Model::create(build_model(c.student.model, "t"), 0);
          make_objective(c, m, 10);
        },
        doctest::Contains(want));
  };
  bad({{"temprature", 4}}, "d.json: 'temprature' is not a known key");
  bad({{"alpha", 2}}, "d.json: alpha is 2, allowed [0, 1]");
  bad({{"teachers", nlohmann::json::array()}}, "d.json: 'teachers' must be a non-empty list");
  bad({{"teachers", {{{"model", f.dir + "/none.safetensors"}}}}}, "none.safetensors");
  bad({{"hints", {{{"student", "features.20"}, {"teacher", "layers.9"}}}}}, "hint teacher node 'layers.9' is not in");
  bad({{"hints", {{{"student", "features.20"}, {"teacher", "layers.2.relu2"}}}}}, "need feature maps [C,H,W] of equal H and W");
  bad({{"attention", {{{"student", "features.20"}}}}}, "'student' and 'teacher' (node names) are required");
  CHECK_THROWS_WITH(DistillConfig::from_json({{"teachers", {{{"model", "x"}}}}}, "d.json"),
                    doctest::Contains("d.json: 'student' is required"));
}

TEST_CASE("distillation with hints and attention: crash and resume end bit-identical, adapters included") {
  Fixture f;
  DistillConfig c = f.config({{"alpha", {{"schedule", "cosine"}, {"start", 0.9}, {"end", 0.5}}},
                              {"hints", {{{"student", "features.20"}, {"teacher", "layers.1.relu2"}}}},
                              {"attention", {{{"student", "features.32"}, {"teacher", "layers.2.relu2"}, {"weight", 50}}}}});
  c.student.augment = "crop_flip";
  Dataset tr = synthetic(8 * 16, 1);
  Objective o1;
  TrainOptions plain;
  plain.out_dir = f.dir + "/ref";
  auto ref = run(c, tr, plain, &o1);
  CHECK(o1.extra_params.size() == 2);  // hint0.weight, hint0.bias
  // The adapters trained: they moved from their initial values.
  Model fresh = Model::create(build_model(c.student.model, "t"), c.student.seed);
  Objective init = make_objective(c, fresh, tr.size());
  CHECK(std::memcmp(init.extra_params.at("hint0.weight").value().f32(), ref.at("extra.hint0.weight").f32(),
                    ref.at("extra.hint0.weight").numel() * 4) != 0);

  TrainOptions crash;
  crash.out_dir = f.dir + "/crash";
  crash.checkpoint_every = 3;
  struct Crash {};
  int steps = 0;
  crash.hooks.on_step = [&](const StepInfo&) {
    if (++steps == 11) throw Crash{};
  };
  CHECK_THROWS_AS(run(c, tr, crash), Crash);
  TrainOptions resume;
  resume.out_dir = crash.out_dir;
  resume.resume = true;
  expect_identical(ref, run(c, tr, resume));

  // The checkpoint records the objective: resuming with another one is refused.
  DistillConfig other = c;
  other.temperature = {"constant", 2, 2};
  CHECK_THROWS_WITH(run(other, tr, resume), doctest::Contains("written for a different objective"));
}

TEST_CASE("teacher logits cached per image (no augmentation) change nothing") {
  Fixture f;
  DistillConfig c = f.config();
  Dataset tr = synthetic(6 * 16, 2);
  REQUIRE(c.cache_teacher);
  auto cached = run(c, tr, {});
  c.cache_teacher = false;
  expect_identical(cached, run(c, tr, {}));
}

TEST_CASE("two teachers distil into one student; the loss falls") {
  Fixture f;
  Model t2 = Model::create(build_model({{"family", "dsnet"}, {"width", 0.5}}, "test"), 12);
  save_model(f.dir + "/teacher2.safetensors", t2);
  DistillConfig c = f.config({{"teachers", {{{"model", f.teacher}, {"weight", 2}}, {{"model", f.dir + "/teacher2.safetensors"}}}},
                              {"alpha", 0.5}});
  c.student.epochs = 4;
  Dataset tr = synthetic(8 * 16, 3);
  Model m = Model::create(build_model(c.student.model, "test"), c.student.seed);
  TrainOptions o;
  o.objective = make_objective(c, m, tr.size());
  TrainResult r = train(m, c.student, tr, Dataset{}, o);
  REQUIRE(r.epochs.size() == 4);
  CHECK(std::isfinite(r.epochs.back().train_loss));
  CHECK(r.epochs.back().train_loss < r.epochs.front().train_loss);
}

TEST_CASE("slimmable student: sandwich-rule distillation resumes bit-identically, every width's BN included") {
  Fixture f;
  DistillConfig c = f.config({{"slimmable", {{"widths", {1.0, 0.75, 0.5, 0.25}}, {"random_widths", 1}}}});
  REQUIRE(c.slimmable);
  Dataset tr = synthetic(6 * 16, 4);
  auto run_slim = [&](TrainOptions o) {
    SlimmableModel s = SlimmableModel::create(c.student.model, c.slimmable->widths, c.student.seed);
    Model m = s.nets[0];
    o.objective = make_slimmable_objective(s, make_objective(c, m, tr.size()), *c.slimmable, c.student.seed);
    train(m, c.student, tr, Dataset{}, o);
    std::map<std::string, Tensor> st;
    for (size_t i = 0; i < s.nets.size(); ++i)
      for (auto& [k, t] : s.nets[i].state()) st[s.prefix(i) + k] = t.clone();
    return st;
  };
  TrainOptions plain;
  auto ref = run_slim(plain);
  // Every width trained: its BN shift moved away from 0 and its running mean away from 0.
  for (const char* w : {"width1/", "width0.75/", "width0.5/", "width0.25/"}) {
    INFO(w);
    CHECK(ref.at(std::string(w) + "features.1.bias").f32()[0] != 0.f);
    CHECK(ref.at(std::string(w) + "features.1.running_mean").f32()[0] != 0.f);
  }
  TrainOptions crash;
  crash.out_dir = f.dir + "/slim";
  crash.checkpoint_every = 2;
  struct Crash {};
  int steps = 0;
  crash.hooks.on_step = [&](const StepInfo&) {
    if (++steps == 7) throw Crash{};
  };
  CHECK_THROWS_AS(run_slim(crash), Crash);
  TrainOptions resume;
  resume.out_dir = crash.out_dir;
  resume.resume = true;
  expect_identical(ref, run_slim(resume));
}
