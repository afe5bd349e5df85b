// kd prune: structured channel pruning of a model file (prune/plan.h), progressive with
// fine-tuning between steps, and a before/after report (parameters, FLOPs, latency, accuracy).
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/timing.h"
#include "cli/prune_run.h"
#include "cli/training_run.h"
#include "nn/atomic_file.h"
#include "nn/config_check.h"
#include "nn/model_io.h"
#include "prune/plan.h"

namespace kd::cli {

namespace {

// The pruning config (JSON):
//   {"criterion": "l1",            l1 | l2 | bn_scale | taylor (first-order Taylor, measured on
//    "taylor_images": 1024,          this many training images before each step; prune/taylor.h)
//    "scope": "uniform",           uniform (every group loses the ratio) | global (the ratio of all
//                                    channels, ranked across groups; prune/plan.h)
//    "ratio": 0.3,                 fraction of the channels to remove, or instead
//    "flops_target": 0.5,          the fraction of the model's FLOPs to keep (the ratio found by bisection)
//    "step": 0.05,                 at most this fraction of the channels per step (progressive)
//    "min_channels": 8, "round_to": 1,
//    "finetune": {"train": "configs/student.json", "epochs_per_step": 1, "lr": 0.01,  (optional)
//                 "last_step_epochs": 3,          (the last step's fine-tuning; default epochs_per_step)
//                 "teacher": "runs/teacher/model.safetensors",  (optional: distilled fine-tuning,
//                 "temperature": 4, "alpha": 0.9}                 the distill/ KD loss)
//    "out": "runs/prune"}
struct PruneConfig {
  prune::PlanOptions plan;
  double flops_target = 0, step = 0.05;
  int64_t taylor_images = 1024, taylor_batch = 64;
  std::string train, out = "runs/prune";
  int64_t epochs_per_step = 1, last_step_epochs = -1;
  double lr = 0.01;
  DistilledFinetune distilled;
  static PruneConfig load(const std::string& path) {
    const nlohmann::json j = read_json_file(path);  // ConfigReader keeps a reference
    ConfigReader r(j, path, "");
    PruneConfig c;
    c.plan.criterion = prune::criterion_of(r.any_str("criterion", "l1"));
    c.plan.scope = prune::scope_of(r.any_str("scope", "uniform"));
    c.taylor_images = r.integer("taylor_images", c.taylor_images, 1, 1 << 30);
    c.taylor_batch = r.integer("taylor_batch", c.taylor_batch, 1, 1 << 20);
    const bool has_ratio = r.has("ratio"), has_flops = r.has("flops_target");
    r.require(has_ratio != has_flops, "give exactly one of 'ratio' and 'flops_target'");
    if (has_ratio) c.plan.ratio = r.number("ratio", 0.3, 0.0, 0.95);
    if (has_flops) c.flops_target = r.number("flops_target", 0.5, 0.01, 1.0);
    c.step = r.number("step", c.step, 0.001, 0.95);
    c.plan.min_channels = r.integer("min_channels", 4, 1, 1 << 20);
    c.plan.round_to = r.integer("round_to", 1, 1, 1024);
    c.out = r.any_str("out", c.out);
    if (r.has("finetune")) {
      ConfigReader f = r.object("finetune");
      c.train = f.any_str("train", "");
      f.require(!c.train.empty(), "'train' (a training config: recipe and data) is required");
      c.epochs_per_step = f.integer("epochs_per_step", 1, 0, 1000);
      c.lr = f.number("lr", 0.01, 1e-9, 10.0);
      c.last_step_epochs = f.integer("last_step_epochs", c.epochs_per_step, 0, 1000);
      c.distilled.teacher = f.any_str("teacher", "");
      c.distilled.temperature = f.number("temperature", 4.0, 0.05, 100.0);
      c.distilled.alpha = f.number("alpha", 0.9, 0.0, 1.0);
      f.done();
    }
    r.done();
    return c;
  }
};

struct Measured {
  int64_t params, flops;
  double acc, b1_ms, b64_ms;
};

Measured measure(Model& m, const Dataset& test) {
  Measured r{m.num_params(), prune::model_flops(m), test.size() ? evaluate(m, test).accuracy() : 0.0, 0, 0};
  r.b1_ms = measure_latency(m, 1, 100).median_ms;
  r.b64_ms = measure_latency(m, 64, 10, 3).median_ms;
  return r;
}

}  // namespace

int cmd_prune(int argc, char** argv) {
  Args a("prune",
         "Structured channel pruning: channels are ranked within each dependency group (channels\n"
         "tied by residual adds, depthwise convs and batch norms go together; prune/groups.h), or\n"
         "across groups with \"scope\": \"global\", by L1/L2 norm, BN scale or first-order Taylor\n"
         "importance, and the least important are removed physically, at most --config's 'step' of the channels per\n"
         "step with fine-tuning between steps. Writes OUT/plan-step<k>.json (which channels, and\n"
         "their importance), OUT/step<k>/ (each fine-tuning run, resumable) and OUT/model.safetensors\n"
         "(an ordinary, smaller model), and prints parameters, FLOPs, latency and test accuracy\n"
         "before and after. Config keys: cli/cmd_prune.cpp.",
         {{"--model", "FILE", "the model to prune (required)"},
          {"--config", "FILE", "pruning config (required)"},
          {"--threads", "N", "OpenMP threads (default: all cores)"}});
  if (!a.parse(argc, argv, 2)) return 0;
  KD_CHECK(a.has("--model") && a.has("--config"), "--model FILE and --config FILE are required");
  apply_threads(a);
  PruneConfig c = PruneConfig::load(*a.str("--config"));
  Model m = load_model(*a.str("--model"));
  std::filesystem::create_directories(c.out);
  TrainConfig tc;
  Datasets data;
  if (!c.train.empty()) {
    tc = TrainConfig::load(c.train);
    tc.epochs = c.epochs_per_step;
    tc.set_lr(c.lr);
    data = load_datasets(tc);
  } else {
    data.test = load_mnist_like(kFashionMnistDir, false);
    if (c.plan.criterion == prune::Criterion::taylor) data.train = load_mnist_like(kFashionMnistDir, true);
  }
  const Measured before = measure(m, data.test);
  ProgressiveOptions po;
  if (c.flops_target > 0) {
    // Measured once on the unpruned model: for the ratio here and for the first step.
    po.first_importance = measured_importance(m, c.plan, data.train, c.taylor_images, c.taylor_batch);
    c.plan.ratio = prune::ratio_for_flops(m, c.plan, c.flops_target, po.first_importance);
    std::printf("flops_target %.2f: %s ratio %.3f\n", c.flops_target, prune::scope_name(c.plan.scope), c.plan.ratio);
  }
  po.step = c.step;
  po.last_step_epochs = c.last_step_epochs;
  po.flops_target = c.flops_target > 0 ? c.flops_target * double(prune::model_flops(m)) : 0;
  po.distilled = c.distilled;
  po.taylor_images = c.taylor_images;
  po.taylor_batch = c.taylor_batch;
  Model cur = progressive_prune(m, c.plan, po, c.train.empty() || c.epochs_per_step == 0 ? nullptr : &tc, data, c.out);
  save_model(c.out + "/model.safetensors", cur);
  const Measured after = measure(cur, data.test);
  std::printf("\n| | parameters | FLOPs | latency b1 ms | latency b64 ms | test accuracy |\n|---|---|---|---|---|---|\n");
  for (auto [name, r] : {std::pair{"before", before}, std::pair{"after", after}})
    std::printf("| %s | %s | %s | %.3f | %.2f | %.2f |\n", name, with_commas(r.params).c_str(),
                with_commas(r.flops).c_str(), r.b1_ms, r.b64_ms, r.acc);
  std::printf("FLOPs kept %.1f%%, speedup batch 1 %.2fx, batch 64 %.2fx; model written to %s/model.safetensors\n",
              100.0 * double(after.flops) / double(before.flops), before.b1_ms / after.b1_ms,
              before.b64_ms / after.b64_ms, c.out.c_str());
  return 0;
}

}  // namespace kd::cli
