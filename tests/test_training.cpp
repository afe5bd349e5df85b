// A short training on a slice of Fashion-MNIST must clearly learn, and be reproducible.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>

#include "data/loader.h"
#include "nn/safetensors.h"

#include "core/threads.h"
#include "nn/builders.h"
#include "nn/functional.h"
#include "nn/model_io.h"
#include "nn/trainer.h"

using namespace kd;

namespace {
// KD_TEST_QUICK=1 (scripts/test-aarch64.sh, where the suite runs under qemu, some 30x slower):
// the long training tests keep their step counts and checks but train on smaller batches (and the
// short training needs 50% test accuracy instead of 65%).
bool quick() {
  const char* q = std::getenv("KD_TEST_QUICK");
  return q && *q && std::strcmp(q, "0") != 0;
}

bool have_data() { return std::filesystem::exists(std::string(kFashionMnistDir) + "/train-images-idx3-ubyte.gz"); }

TrainConfig small_config() {
  TrainConfig c = TrainConfig::from_json(
      {{"model", {{"family", "dsnet"}, {"width", 0.5}}},
       {"recipe", {{"epochs", 2}, {"batch", 64}, {"seed", 3}, {"optimizer", {{"type", "sgd"}, {"lr", 0.1}}}}}},
      "test");
  return c;
}
}  // namespace

TEST_CASE("a short training (2 epochs, 128 steps) learns far beyond chance") {
  if (!have_data()) {
    MESSAGE("Fashion-MNIST not installed (apt-get install dataset-fashion-mnist): skipped");
    return;
  }
  TrainConfig c = small_config();
  // 4096 images in batches of 64; quick: 1024 in batches of 16, 500 test images. Seeing a quarter
  // of the images, it reaches less and varies more with the seed (55-68% over 14 seeds on x86;
  // this seed: 70% on x86, 66% under qemu), hence its lower bar, still five times chance.
  if (quick()) c.batch = 16;
  const double min_accuracy = quick() ? 50.0 : 65.0;
  Dataset tr = take_first(load_mnist_like(kFashionMnistDir, true), 64 * c.batch);
  Dataset te = take_first(load_mnist_like(kFashionMnistDir, false), quick() ? 500 : 1000);
  Model m = Model::create(build_model(c.model, "test"), c.seed);
  const double before = evaluate(m, te).accuracy();
  const std::string out = std::filesystem::temp_directory_path() / "kd_test_training";
  std::filesystem::remove_all(out);
  TrainResult r = train(m, c, tr, te, out);
  CHECK(r.steps == 2 * 64);
  CHECK(before < 30.0);
  CHECK(r.final_test_accuracy > min_accuracy);  // chance is 10%; the full test reaches ~75% here
  CHECK(r.epochs.back().train_loss < r.epochs.front().train_loss);
  // The saved model evaluates to exactly the reported accuracy.
  Model back = load_model(out + "/model.safetensors");
  CHECK(evaluate(back, te).accuracy() == doctest::Approx(r.final_test_accuracy));
  CHECK(std::filesystem::exists(out + "/checkpoint.safetensors"));
  std::filesystem::remove_all(out);
}

TEST_CASE("same seed and thread count give bit-identical weights") {
  if (!have_data()) return;
  TrainConfig c = small_config();
  c.epochs = 1;
  c.max_steps = 5;
  Dataset tr = take_first(load_mnist_like(kFashionMnistDir, true), 1024);
  Dataset none;
  auto run = [&] {
    Model m = Model::create(build_model(c.model, "test"), c.seed);
    train(m, c, tr, none, "");
    return m.state();
  };
  auto a = run(), b = run();
  for (auto& [k, t] : a) {
    INFO(k);
    REQUIRE(b.at(k).numel() == t.numel());
    CHECK(std::memcmp(t.f32(), b.at(k).f32(), t.numel() * 4) == 0);
  }
}

TEST_CASE("a run interrupted and resumed from its checkpoint ends bit-identical to an uninterrupted one") {
  if (!have_data()) return;
  TrainConfig c = small_config();
  c.epochs = 2;
  c.cutmix = 1.0;  // exercise the mixing stream too
  if (quick()) c.batch = 16;  // the same steps and crash points on a quarter of the images
  Dataset tr = take_first(load_mnist_like(kFashionMnistDir, true), 16 * c.batch);  // 16 steps per epoch
  Dataset te = take_first(load_mnist_like(kFashionMnistDir, false), quick() ? 100 : 200);
  const std::string base = std::filesystem::temp_directory_path() / "kd_test_resume";
  std::filesystem::remove_all(base);
  auto fresh = [&] { return Model::create(build_model(c.model, "test"), c.seed); };
  Model ref = fresh();
  TrainResult rr = train(ref, c, tr, te, TrainOptions{base + "/ref", false, 5, {}, {}});
  // Crash (an exception from the step hook) after step `crash`; resume from what is on disk.
  for (int64_t crash : {7, 17, 23}) {
    INFO("crash after step ", crash);
    const std::string dir = base + "/crash" + std::to_string(crash);
    struct Crash {};
    Model m = fresh();
    TrainHooks h;
    h.on_step = [&](const StepInfo& s) {
      if (s.global_step == crash) throw Crash{};
    };
    CHECK_THROWS_AS(train(m, c, tr, te, TrainOptions{dir, false, 5, h, {}}), Crash);
    Model resumed = fresh();
    TrainResult r2 = train(resumed, c, tr, te, TrainOptions{dir, true, 5, {}, {}});
    CHECK(r2.steps == rr.steps);
    CHECK(r2.final_test_accuracy == rr.final_test_accuracy);
    auto a = ref.state(), b = resumed.state();
    for (auto& [k, t] : a) {
      INFO(k);
      REQUIRE(b.at(k).numel() == t.numel());
      CHECK(std::memcmp(t.f32(), b.at(k).f32(), t.numel() * 4) == 0);
    }
    // The metrics log has one line per epoch, none repeated.
    std::ifstream log(dir + "/metrics.jsonl");
    std::string line;
    int lines = 0;
    while (std::getline(log, line)) ++lines;
    CHECK(lines == 2);
  }
  std::filesystem::remove_all(base);
}

TEST_CASE("a NaN in a batch: stop names the step, anomaly mode names the op and layer, skip mode skips it") {
  if (!have_data()) return;
  TrainConfig c = small_config();
  c.epochs = 1;
  c.max_steps = 6;
  Dataset tr = take_first(load_mnist_like(kFashionMnistDir, true), 1024);
  Dataset none;
  int calls = 0;
  TrainHooks poison;
  poison.on_batch = [&](Batch& b) {
    if (++calls == 3) b.x.f32()[5] = std::numeric_limits<float>::quiet_NaN();
  };
  // relu and relu6 propagate NaN as PyTorch does (max(v, 0) would hide it).
  Tensor nan = Tensor::full({2}, std::numeric_limits<float>::quiet_NaN());
  CHECK(std::isnan(F::relu(Var(nan)).value().f32()[0]));
  CHECK(std::isnan(F::relu6(Var(nan)).value().f32()[1]));
  const std::string dir = std::filesystem::temp_directory_path() / "kd_test_nan";
  std::filesystem::remove_all(dir);
  {
    Model m = Model::create(build_model(c.model, "test"), c.seed);
    calls = 0;
    CHECK_THROWS_WITH(train(m, c, tr, none, TrainOptions{dir, false, 0, poison, {}}),
                      doctest::Contains("the loss is nan at epoch 1 step 3"));
  }
  {
    Model m = Model::create(build_model(c.model, "test"), c.seed);
    calls = 0;
    set_anomaly_detection(true);
    CHECK_THROWS_WITH(train(m, c, tr, none, TrainOptions{"", false, 0, poison, {}}),
                      doctest::Contains("the forward output of op conv2d in layer 'features.0' is non-finite"));
    set_anomaly_detection(false);
  }
  {
    TrainConfig cs = c;
    cs.on_nonfinite = "skip";
    Model m = Model::create(build_model(cs.model, "test"), cs.seed);
    calls = 0;
    TrainResult r = train(m, cs, tr, none, TrainOptions{dir, false, 0, poison, {}});
    CHECK(r.steps == 6);
    CHECK(r.skipped_steps == 1);
    for (auto& [k, t] : m.state()) {
      INFO(k);
      CHECK(first_nonfinite(t) == -1);
    }
    CHECK(load_safetensors(dir + "/checkpoint.safetensors").metadata.at("skipped_steps") == "1");
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE("a checkpoint with NaN weights is never written; the previous one stays readable") {
  if (!have_data()) return;
  TrainConfig c = small_config();
  c.epochs = 2;
  Dataset tr = take_first(load_mnist_like(kFashionMnistDir, true), 256);  // 4 steps per epoch
  Dataset none;
  const std::string dir = std::filesystem::temp_directory_path() / "kd_test_nan_ck";
  std::filesystem::remove_all(dir);
  Model m = Model::create(build_model(c.model, "test"), c.seed);
  TrainHooks h;
  // After epoch 1's checkpoint, poison a BN running mean (no gradient sees it, so only the
  // checkpoint guard can catch it).
  h.on_step = [&](const StepInfo& s) {
    if (s.global_step == 6) m.buffers.begin()->second.f32()[0] = std::numeric_limits<float>::infinity();
  };
  CHECK_THROWS_WITH(train(m, c, tr, none, TrainOptions{dir, false, 0, h, {}}), doctest::Contains("holds NaN/Inf"));
  TensorFile f = load_safetensors(dir + "/checkpoint.safetensors");
  CHECK(f.metadata.at("step") == "4");
  std::filesystem::remove_all(dir);
}
