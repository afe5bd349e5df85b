#include "cli/pipeline_config.h"

#include "nn/config_check.h"

namespace kd::cli {

namespace {

// A stage's training config: the file it names, with the pipeline's epochs and data applied.
TrainConfig stage_config(ConfigReader& r, const std::string& what, const nlohmann::json& data, const std::string& file) {
  const std::string cfg = r.any_str("config", "");
  r.require(!cfg.empty(), "'config' (a training config file, e.g. configs/" + what + ".json) is required");
  TrainConfig c = TrainConfig::load(cfg);
  if (r.has("epochs")) c.epochs = r.integer("epochs", c.epochs, 1, 100000);
  r.done();
  if (data.contains("dir")) c.data_dir = data["dir"].get<std::string>();
  if (data.contains("train_limit")) c.train_limit = data["train_limit"].get<int64_t>();
  if (data.contains("test_limit")) c.test_limit = data["test_limit"].get<int64_t>();
  return c;
}

}  // namespace

PipelineConfig PipelineConfig::load(const std::string& path) {
  const nlohmann::json j = read_json_file(path);
  ConfigReader top(j, path, "");
  PipelineConfig p;
  p.out = top.any_str("out", p.out);
  ConfigReader d = top.object("data");
  nlohmann::json data = nlohmann::json::object();
  if (d.has("dir")) data["dir"] = d.any_str("dir", "");
  if (d.has("train_limit")) data["train_limit"] = d.integer("train_limit", 0, 0, int64_t(1) << 40);
  if (d.has("test_limit")) data["test_limit"] = d.integer("test_limit", 0, 0, int64_t(1) << 40);
  d.done();
  ConfigReader t = top.object("teacher");
  if (t.has("model")) {
    p.teacher_model = t.any_str("model", "");
    t.done();
  } else {
    p.teacher = stage_config(t, "teacher", data, path);
  }
  ConfigReader s = top.object("student");
  p.student = stage_config(s, "student", data, path);
  if (top.has("distill")) {
    p.distill = top.raw("distill");
    KD_CHECK(p.distill.is_object() && !p.distill.contains("student") && !p.distill.contains("teachers"), path,
             ": 'distill' must be an object of distillation settings (temperature, alpha, hints, attention, "
             "cache_teacher); the pipeline supplies student and teachers");
  }
  std::vector<int64_t> seeds = top.int_list("seeds", {0}, 0, int64_t(1) << 53);
  top.require(!seeds.empty() && seeds.size() <= 16, "'seeds' must list 1 to 16 seeds");
  p.seeds.assign(seeds.begin(), seeds.end());
  ConfigReader b = top.object("bench");
  p.latency_reps = b.integer("latency_reps", 100, 1, 100000);
  p.throughput_reps = b.integer("throughput_reps", 10, 1, 10000);
  b.done();
  ConfigReader pr = top.object("prune");
  p.prune_ratio = pr.number("ratio", p.prune_ratio, 0.0, 0.95);
  p.prune_step = pr.number("step", p.prune_step, 0.001, 0.95);
  p.prune_epochs = pr.integer("epochs_per_step", p.prune_epochs, 0, 1000);
  p.prune_lr = pr.number("lr", p.prune_lr, 1e-9, 10.0);
  p.prune_min_channels = pr.integer("min_channels", p.prune_min_channels, 1, 1 << 20);
  p.prune_criterion = pr.any_str("criterion", p.prune_criterion);
  p.prune_distilled = pr.boolean("distilled", p.prune_distilled);
  pr.require(p.prune_criterion == "l1" || p.prune_criterion == "l2" || p.prune_criterion == "bn_scale" ||
                 p.prune_criterion == "taylor",
             "'criterion' must be one of l1, l2, bn_scale, taylor");
  p.prune_scope = pr.any_str("scope", p.prune_scope);
  pr.require(p.prune_scope == "uniform" || p.prune_scope == "global", "'scope' must be one of uniform, global");
  pr.done();
  ConfigReader q = top.object("quantize");
  p.quant_calib = q.integer("calib", 1024, 0, 60000);
  p.quant_observer = q.any_str("observer", "minmax");
  q.require(p.quant_observer == "minmax" || p.quant_observer == "moving_average" || p.quant_observer == "percentile" ||
                p.quant_observer == "mse",
            "'observer' must be one of minmax, moving_average, percentile, mse");
  q.done();
  top.done();
  return p;
}

}  // namespace kd::cli
