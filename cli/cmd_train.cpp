// kd train: trains a model from a JSON config; flags override the config.
#include <cstdio>
#include <filesystem>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/training_run.h"
#include "core/threads.h"
#include "nn/builders.h"
#include "nn/model_io.h"
#include "nn/trainer.h"

namespace kd::cli {

namespace {

int run_training(Model& m, const TrainConfig& c, const std::string& out, bool resume, int64_t every) {
  TrainOptions o;
  o.out_dir = out, o.resume = resume, o.checkpoint_every = every;
  run_with_progress(m, c, load_datasets(c), o, resume ? "resuming" : "training");
  return 0;
}

}  // namespace

int cmd_train(int argc, char** argv) {
  Args a("train",
         "Trains the model described by a JSON config (model, data, recipe; see configs/ and\n"
         "nn/train_config.h) on Fashion-MNIST. Shows progress, writes OUT/metrics.jsonl (one JSON\n"
         "line per epoch), OUT/checkpoint.safetensors (each epoch) and OUT/model.safetensors, and\n"
         "prints the test accuracy at the end. --resume DIR continues an interrupted run from\n"
         "DIR/checkpoint.safetensors with the config recorded there; with the same --threads the\n"
         "result is bit-identical to an uninterrupted run.",
         {{"--config", "FILE", "training config (required unless --resume)"},
          {"--resume", "DIR", "continue the run whose output directory is DIR"},
          {"--checkpoint-every", "N", "also checkpoint every N steps (default: at each epoch's end)"},
          {"--detect-anomaly", "", "check every op's output and gradient for NaN/Inf; name the first (slower)"},
          {"--skip-nonfinite", "", "skip (and count) steps with a NaN/Inf loss or gradient instead of stopping"},
          {"--epochs", "N", "override recipe.epochs"},
          {"--batch", "N", "override recipe.batch"},
          {"--lr", "X", "override the optimizer's (maximum) learning rate"},
          {"--seed", "N", "override recipe.seed (initialisation, data order, augmentation)"},
          {"--threads", "N", "OpenMP threads (default: all cores)"},
          {"--out", "DIR", "output directory (default runs/<config name>)"},
          {"--data", "DIR", "directory with the IDX files (default from the config)"},
          {"--train-limit", "N", "use only the first N training images"},
          {"--init", "FILE", "start from these weights (a kd model file with the same graph)"},
          {"--steps", "N", "stop after N optimizer steps (auditing against PyTorch)"},
          {"--no-shuffle", "", "keep the data in file order"},
          {"--augment", "MODE", "crop_flip or none (overrides data.augment)"}});
  if (!a.parse(argc, argv, 2)) return 0;
  auto cfg_path = a.str("--config");
  auto resume = a.str("--resume");
  const int64_t every = a.integer("--checkpoint-every", 1, int64_t(1) << 40).value_or(0);
  if (a.has("--detect-anomaly")) set_anomaly_detection(true);
  if (resume) {
    for (const char* f : {"--config", "--epochs", "--batch", "--lr", "--seed", "--data", "--train-limit", "--init",
                          "--steps", "--no-shuffle", "--augment", "--out", "--skip-nonfinite"})
      KD_CHECK(!a.has(f), f, " cannot be combined with --resume (the run's config is in its checkpoint)");
    apply_threads(a);
    TrainConfig c = checkpoint_config(*resume);
    Model m = Model::create(build_model(c.model, *resume + "/checkpoint.safetensors"), c.seed);
    return run_training(m, c, *resume, true, every);
  }
  KD_CHECK(cfg_path, "--config FILE is required (e.g. configs/student.json), or --resume DIR");
  TrainConfig c = TrainConfig::load(*cfg_path);
  if (auto v = a.integer("--epochs", 1, 100000)) c.epochs = *v;
  if (auto v = a.integer("--batch", 1, 1 << 20)) c.batch = *v;
  if (auto v = a.number("--lr", 0, 100)) c.set_lr(*v);
  if (auto v = a.integer("--seed", 0, int64_t(1) << 53)) c.seed = static_cast<uint64_t>(*v);
  if (auto v = a.str("--data")) c.data_dir = *v;
  if (auto v = a.integer("--train-limit", 1, int64_t(1) << 40)) c.train_limit = *v;
  if (auto v = a.integer("--steps", 1, int64_t(1) << 40)) c.max_steps = *v;
  if (a.has("--no-shuffle")) c.shuffle = false;
  if (a.has("--skip-nonfinite")) c.on_nonfinite = "skip";
  if (auto v = a.str("--augment")) {
    KD_CHECK(*v == "none" || *v == "crop_flip", "--augment '", *v, "', allowed: crop_flip, none");
    c.augment = *v;
  }
  apply_threads(a);
  const std::string out = a.str_or("--out", "runs/" + std::filesystem::path(*cfg_path).stem().string());

  Model m = Model::create(build_model(c.model, *cfg_path), c.seed);
  if (auto init = a.str("--init")) {
    Model src = load_model(*init);
    KD_CHECK(src.graph.to_json() == m.graph.to_json(), *init, ": its graph differs from the config's model");
    m.load_state(src.state(), *init);
  }
  return run_training(m, c, out, false, every);
}

}  // namespace kd::cli
