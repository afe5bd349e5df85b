// kd gate: dynamic channel gating of a student (prune/channel_gating.h): saliency predictors are
// added to every depthwise-separable block, trained with the student (optionally distilled from
// a teacher), and the gated model is measured at several keep ratios with the sparse runner
// (prune/gated_inference.h): computed FLOPs per image (averaged over the test set), test
// accuracy and batch-1 latency, beside the ungated model.
#include <cstdio>
#include <filesystem>
#include <memory>
#include <numeric>
#include <optional>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/prune_run.h"
#include "cli/timing.h"
#include "cli/training_run.h"
#include "core/threads.h"
#include "nn/atomic_file.h"
#include "nn/config_check.h"
#include "nn/model_io.h"
#include "prune/channel_gating.h"
#include "prune/gated_inference.h"

namespace kd::cli {

namespace {

// The gating config (JSON):
//   {"keep": 0.6,                    fraction of each gated block's channels computed per image (training)
//    "train_keeps": [0.5, 0.7, 1],   optional: each step trains at one of these instead, drawn from
//                                    (seed, step); the per-epoch evaluation uses "keep"
//    "keep_start": 1.0, "ramp": 0.5, optional: the training keep falls linearly from keep_start to
//                                    keep over the first `ramp` of the steps (progressive gating)
//    "init": "runs/gate/gated.safetensors",  optional: continue from a gated model of --model's graph
//    "report_keeps": [1, 0.8, 0.7, 0.6, 0.5],   keep ratios measured after training
//    "train": "configs/student.json", recipe and data of the training (required)
//    "epochs": 3, "lr": 0.01,        overrides of the recipe
//    "teacher": "runs/teacher/model.safetensors", "temperature": 4, "alpha": 0.9,  (optional: distilled)
//    "out": "runs/gate"}
struct GateConfig {
  double keep = 0.6;
  std::vector<double> report_keeps{1.0, 0.8, 0.7, 0.6, 0.5}, train_keeps;
  std::string train, teacher, init, out = "runs/gate";
  double keep_start = 0, ramp = 0;
  int64_t epochs = 3;
  double lr = 0.01, temperature = 4, alpha = 0.9;
  static GateConfig load(const std::string& path) {
    const nlohmann::json j = read_json_file(path);  // ConfigReader keeps a reference
    ConfigReader r(j, path, "");
    GateConfig c;
    c.keep = r.number("keep", c.keep, 0.01, 1.0);
    c.report_keeps = r.num_list("report_keeps", c.report_keeps, 0.01, 1.0);
    c.train_keeps = r.num_list("train_keeps", {c.keep}, 0.01, 1.0);
    r.require(!c.train_keeps.empty(), "'train_keeps' must not be empty");
    c.keep_start = r.number("keep_start", c.keep, 0.01, 1.0);
    c.ramp = r.number("ramp", 0.0, 0.0, 1.0);
    r.require(c.train_keeps.size() == 1 || (c.ramp == 0 && c.keep_start == c.keep),
              "give either 'train_keeps' (drawn per step) or 'keep_start'/'ramp' (a schedule), not both");
    c.init = r.any_str("init", "");
    c.train = r.any_str("train", "");
    r.require(!c.train.empty(), "'train' (a training config: recipe and data) is required");
    c.epochs = r.integer("epochs", c.epochs, 0, 1000);
    c.lr = r.number("lr", c.lr, 1e-9, 10.0);
    c.teacher = r.any_str("teacher", "");
    c.temperature = r.number("temperature", c.temperature, 0.05, 100.0);
    c.alpha = r.number("alpha", c.alpha, 0.0, 1.0);
    c.out = r.any_str("out", c.out);
    r.done();
    return c;
  }
};

std::vector<double> parse_keeps(const std::string& s) {
  std::vector<double> out;
  size_t pos = 0;
  while (pos <= s.size()) {
    const size_t end = std::min(s.find(',', pos), s.size());
    const std::string item = s.substr(pos, end - pos);
    char* e = nullptr;
    const double v = std::strtod(item.c_str(), &e);
    KD_CHECK(!item.empty() && e && *e == '\0' && v > 0 && v <= 1, "--keeps: '", item,
             "' is not a keep ratio in (0, 1] (give a comma-separated list, e.g. 1,0.8,0.6)");
    out.push_back(v);
    pos = end + 1;
  }
  return out;
}

// baseline: the ungated model to compare with (the model gating started from), if known.
void report(prune::GatedModel& g, Model* baseline, const std::vector<double>& keeps, const Dataset& test, int64_t reps,
            const std::string& json_out) {
  const prune::GatedRunner runner(g);
  const double dense = double(runner.dense_macs());
  const Shape chw = g.model.graph.input_shape;
  nlohmann::json rows = nlohmann::json::array();
  std::printf(
      "\n| model | keep | MFLOPs per image (computed, mean) | of the ungated | test accuracy | latency b1 ms |\n"
      "|---|---|---|---|---|---|\n");
  if (baseline) {
    const double base_acc = evaluate(*baseline, test).accuracy();
    const double base_ms = measure_latency(*baseline, 1, reps).median_ms;
    std::printf("| ungated | - | %.3f | 100.0%% | %.2f | %.3f |\n", 2e-6 * dense, base_acc, base_ms);
    rows.push_back({{"model", "ungated"}, {"flops", 2 * dense}, {"accuracy", base_acc}, {"latency_b1_ms", base_ms}});
  }
  for (double k : keeps) {
    double macs_sum = 0;
    int64_t images = 0;
    std::vector<int64_t> macs;
    const EvalResult ev = evaluate_logits(
        [&](const Tensor& x) {
          Tensor y = runner.run(x, k, &macs);
          macs_sum += double(std::accumulate(macs.begin(), macs.end(), int64_t(0)));
          images += int64_t(macs.size());
          return y;
        },
        runner.classes(), test);
    const double mean_macs = images ? macs_sum / double(images) : 0;
    const double ms = measure_latency([&](const Tensor& x) { runner.run(x, k); }, chw, 1, reps).median_ms;
    std::printf("| gated | %.2f | %.3f | %.1f%% | %.2f | %.3f |\n", k, 2e-6 * mean_macs, 100.0 * mean_macs / dense,
                ev.accuracy(), ms);
    rows.push_back({{"model", "gated"},
                    {"keep", k},
                    {"flops", 2 * mean_macs},
                    {"flops_fraction", mean_macs / dense},
                    {"accuracy", ev.accuracy()},
                    {"latency_b1_ms", ms}});
  }
  std::printf(
      "(FLOPs = 2 x multiply-adds as computed by the sparse runner, predictors included; latency: median "
      "of %lld batch-1 passes, %d threads)\n",
      (long long)reps, num_threads());
  if (!json_out.empty()) {
    write_file_atomic(json_out, nlohmann::json{{"threads", num_threads()}, {"rows", rows}}.dump(1) + "\n");
    std::printf("written to %s\n", json_out.c_str());
  }
}

}  // namespace

int cmd_gate(int argc, char** argv) {
  Args a("gate",
         "Dynamic channel gating: adds a saliency predictor to each depthwise-separable block of\n"
         "--model (a dsnet-like student), which picks per image the channels of the block that are\n"
         "computed; trains predictors and model together (distilled from 'teacher' if the config\n"
         "names one), writes OUT/gated.safetensors and OUT/gating.json, and prints for several keep\n"
         "ratios the FLOPs actually computed per image, test accuracy and batch-1 latency of the\n"
         "sparse runner, beside the ungated model. --gated FILE measures an already gated model.\n"
         "Config keys: cli/cmd_gate.cpp; how gating differs from pruning: prune/channel_gating.h.",
         {{"--model", "FILE", "the model to gate (with --config)"},
          {"--config", "FILE", "gating config (with --model)"},
          {"--gated", "FILE", "measure this gated model instead of training one"},
          {"--baseline", "FILE", "with --gated: the ungated model to compare with (its first row)"},
          {"--keeps", "LIST", "keep ratios to measure, e.g. 1,0.8,0.6 (default: the config's report_keeps)"},
          {"--data", "DIR", "directory with the IDX files (with --gated; default /usr/share/datasets/fashion-mnist)"},
          {"--limit", "N", "with --gated: measure accuracy on the first N test images only"},
          {"--reps", "N", "timed batch-1 passes per row (default 200)"},
          {"--threads", "N", "OpenMP threads (default: all cores)"}});
  if (!a.parse(argc, argv, 2)) return 0;
  KD_CHECK(a.has("--gated") ? !a.has("--model") && !a.has("--config") : a.has("--model") && a.has("--config"),
           "give --model FILE --config FILE (train), or --gated FILE (measure)");
  apply_threads(a);
  const int64_t reps = a.integer("--reps", 1, 1000000).value_or(200);
  if (auto file = a.str("--gated")) {
    prune::GatedModel g = prune::GatedModel::load(*file);
    TrainConfig c;
    if (auto d = a.str("--data")) c.data_dir = *d;
    Dataset test = load_datasets(c).test;
    if (auto n = a.integer("--limit", 1, int64_t(1) << 40)) test = take_first(test, *n);
    std::vector<double> keeps = a.has("--keeps") ? parse_keeps(*a.str("--keeps")) : std::vector<double>{g.keep};
    std::optional<Model> base;
    if (auto b = a.str("--baseline")) base = load_model(*b);
    report(g, base ? &*base : nullptr, keeps, test, reps, "");
    return 0;
  }
  const GateConfig c = GateConfig::load(*a.str("--config"));
  std::filesystem::create_directories(c.out);
  TrainConfig tc = TrainConfig::load(c.train);
  tc.epochs = c.epochs;
  tc.set_lr(c.lr);
  const Datasets data = load_datasets(tc);
  Model baseline = load_model(*a.str("--model"));
  prune::GatedModel g = c.init.empty() ? prune::GatedModel::create(load_model(*a.str("--model")), c.keep, tc.seed)
                                       : prune::GatedModel::load(c.init);
  KD_CHECK(g.model.graph.to_json() == baseline.graph.to_json(), c.init, ": its model is not --model's graph");
  g.keep = c.keep;
  std::printf("gating %zu blocks (", g.sites.size());
  for (size_t i = 0; i < g.sites.size(); ++i)
    std::printf("%s%s: %lld of %lld", i ? ", " : "", g.sites[i].act.c_str(),
                (long long)prune::gate_k(g.sites[i].out_channels, c.keep), (long long)g.sites[i].out_channels);
  std::printf(" channels per image)\n");
  const std::string dir = c.out + "/train";
  TrainOptions opts;
  opts.out_dir = dir;
  opts.resume = std::filesystem::exists(dir + "/checkpoint.safetensors");
  opts.objective = finetune_objective({c.teacher, c.temperature, c.alpha}, tc, g.model, data.train.size());
  for (auto& [k, p] : g.predictors) opts.objective.extra_params[k] = p;
  // The keep ratio of each training step (drawn from train_keeps by step); evaluation uses c.keep.
  auto step_keep = std::make_shared<double>(c.keep);
  const std::vector<double> train_keeps = c.train_keeps;
  const uint64_t seed = tc.seed;
  const double ramp_steps = c.ramp * double(data.train.size() / tc.batch * tc.epochs), k0 = c.keep_start, k1 = c.keep;
  opts.objective.before_step = [step_keep, train_keeps, seed, ramp_steps, k0, k1](int64_t step) {
    if (train_keeps.size() > 1) {
      Rng r(seed + uint64_t(step) * 0x9E3779B97F4A7C15ull, 0x47617465ull);  // "Gate"
      *step_keep = train_keeps[std::min(train_keeps.size() - 1, size_t(r.uniform() * double(train_keeps.size())))];
    } else {
      *step_keep = double(step) < ramp_steps ? k0 + (k1 - k0) * double(step) / ramp_steps : k1;
    }
  };
  prune::GatedModel* gp = &g;
  const double keep = c.keep;
  opts.objective.forward = [gp, keep, step_keep](const Var& x, bool training) {
    return gp->forward(x, training, training ? *step_keep : keep);
  };
  opts.objective.record["gating"] = {{"keep", keep},     {"train_keeps", train_keeps},
                                     {"keep_start", k0}, {"ramp", c.ramp},
                                     {"init", c.init},   {"teacher", c.teacher}};
  if (c.epochs > 0)
    run_with_progress(g.model, tc, data, opts,
                      opts.resume ? "resuming gated training of"
                                  : (c.teacher.empty() ? "gated training of" : "distilled gated training of"));
  g.save(c.out + "/gated.safetensors");
  std::printf("gated model written to %s/gated.safetensors\n", c.out.c_str());
  std::vector<double> keeps = a.has("--keeps") ? parse_keeps(*a.str("--keeps")) : c.report_keeps;
  report(g, &baseline, keeps, data.test, reps, c.out + "/gating.json");
  return 0;
}

}  // namespace kd::cli
