#include "nn/train_config.h"

#include "nn/atomic_file.h"
#include "nn/builders.h"
#include "nn/config_check.h"

namespace kd {

using nlohmann::json;

void TrainConfig::set_lr(double lr) {
  sgd.lr = adamw.lr = lr;
  onecycle.max_lr = lr;
}

TrainConfig TrainConfig::from_json(const json& j, const std::string& file) {
  TrainConfig c;
  ConfigReader top(j, file, "");
  KD_CHECK(top.has("model"), file, ": 'model' is required (see configs/student.json)");
  c.model = top.raw("model");
  top.object("model");
  build_model(c.model, file);  // validates the model section now, with the file named
  ConfigReader d = top.object("data");
  c.data_dir = d.any_str("dir", c.data_dir);
  c.train_limit = d.integer("train_limit", 0, 0, int64_t(1) << 40);
  c.test_limit = d.integer("test_limit", 0, 0, int64_t(1) << 40);
  c.augment = d.str("augment", {"crop_flip", "none"}, "crop_flip");
  c.cutmix = d.number("cutmix", 0, 0, 100);
  c.mixup = d.number("mixup", 0, 0, 100);
  c.shuffle = d.boolean("shuffle", true);
  d.done();
  ConfigReader r = top.object("recipe");
  c.epochs = r.integer("epochs", 30, 1, 100000);
  c.batch = r.integer("batch", 128, 1, 1 << 20);
  c.max_steps = r.integer("max_steps", 0, 0, int64_t(1) << 40);
  c.seed = static_cast<uint64_t>(r.integer("seed", 0, 0, int64_t(1) << 53));
  c.label_smoothing = r.number("label_smoothing", 0, 0, 1);
  c.clip_grad_norm = r.number("clip_grad_norm", 0, 0, 1e9);
  c.on_nonfinite = r.str("on_nonfinite", {"stop", "skip"}, "stop");
  ConfigReader o = r.object("optimizer");
  c.optimizer = o.str("type", {"sgd", "adamw"}, "sgd");
  if (c.optimizer == "sgd") {
    c.sgd.lr = o.number("lr", 0.1, 0, 100);
    c.sgd.momentum = o.number("momentum", 0.9, 0, 1);
    c.sgd.dampening = o.number("dampening", 0, 0, 1);
    c.sgd.nesterov = o.boolean("nesterov", true);
    c.sgd.weight_decay = o.number("weight_decay", 5e-4, 0, 1);
  } else {
    c.adamw.lr = o.number("lr", 1e-3, 0, 100);
    std::vector<double> betas = o.num_list("betas", {0.9, 0.999}, 0, 0.999999);
    o.require(betas.size() == 2, "'betas' must have two elements");
    c.adamw.beta1 = betas[0], c.adamw.beta2 = betas[1];
    c.adamw.eps = o.number("eps", 1e-8, 1e-30, 1);
    c.adamw.weight_decay = o.number("weight_decay", 1e-2, 0, 1);
  }
  o.done();
  ConfigReader s = r.object("schedule");
  c.schedule = s.str("type", {"onecycle", "cosine", "step", "constant"}, "onecycle");
  if (c.schedule == "onecycle") {
    c.onecycle.pct_start = s.number("pct_start", 0.05, 1e-6, 0.999);
    c.onecycle.div_factor = s.number("div_factor", 25, 1e-6, 1e12);
    c.onecycle.final_div_factor = s.number("final_div_factor", 1e4, 1e-6, 1e12);
    c.onecycle.cos = s.str("anneal", {"cos", "linear"}, "cos") == "cos";
    c.onecycle.cycle_momentum = s.boolean("cycle_momentum", true);
    c.onecycle.base_momentum = s.number("base_momentum", 0.85, 0, 1);
    c.onecycle.max_momentum = s.number("max_momentum", 0.95, 0, 1);
  } else if (c.schedule == "cosine") {
    c.warmup_steps = s.integer("warmup_steps", 0, 0, int64_t(1) << 40);
    c.min_lr = s.number("min_lr", 0, 0, 100);
  } else if (c.schedule == "step") {
    c.warmup_steps = s.integer("warmup_steps", 0, 0, int64_t(1) << 40);
    c.step_size = s.integer("step_size", 1000, 1, int64_t(1) << 40);
    c.gamma = s.number("gamma", 0.1, 0, 1);
  }
  s.done();
  r.done();
  top.done();
  c.onecycle.max_lr = c.lr();
  return c;
}

TrainConfig TrainConfig::load(const std::string& path) { return from_json(read_json_file(path), path); }

json TrainConfig::to_json() const {
  json opt = optimizer == "sgd"
                 ? json{{"type", "sgd"}, {"lr", sgd.lr}, {"momentum", sgd.momentum}, {"dampening", sgd.dampening},
                        {"nesterov", sgd.nesterov}, {"weight_decay", sgd.weight_decay}}
                 : json{{"type", "adamw"}, {"lr", adamw.lr}, {"betas", {adamw.beta1, adamw.beta2}}, {"eps", adamw.eps},
                        {"weight_decay", adamw.weight_decay}};
  json sch = {{"type", schedule}};
  if (schedule == "onecycle")
    sch.update({{"pct_start", onecycle.pct_start}, {"div_factor", onecycle.div_factor},
                {"final_div_factor", onecycle.final_div_factor}, {"anneal", onecycle.cos ? "cos" : "linear"},
                {"cycle_momentum", onecycle.cycle_momentum}, {"base_momentum", onecycle.base_momentum},
                {"max_momentum", onecycle.max_momentum}});
  else if (schedule == "cosine")
    sch.update({{"warmup_steps", warmup_steps}, {"min_lr", min_lr}});
  else if (schedule == "step")
    sch.update({{"warmup_steps", warmup_steps}, {"step_size", step_size}, {"gamma", gamma}});
  return {{"model", model},
          {"data",
           {{"dir", data_dir}, {"train_limit", train_limit}, {"test_limit", test_limit}, {"augment", augment},
            {"cutmix", cutmix}, {"mixup", mixup}, {"shuffle", shuffle}}},
          {"recipe",
           {{"epochs", epochs}, {"batch", batch}, {"max_steps", max_steps}, {"seed", seed}, {"label_smoothing", label_smoothing},
            {"clip_grad_norm", clip_grad_norm}, {"on_nonfinite", on_nonfinite}, {"optimizer", opt}, {"schedule", sch}}}};
}

std::unique_ptr<Optimizer> make_optimizer(const TrainConfig& c, const std::map<std::string, Var>& params) {
  return c.optimizer == "sgd" ? make_sgd(params, c.sgd) : make_adamw(params, c.adamw);
}

std::unique_ptr<Schedule> make_schedule(const TrainConfig& c, int64_t total) {
  if (c.schedule == "onecycle") return make_onecycle(c.onecycle, total);
  if (c.schedule == "cosine") return make_cosine(c.lr(), c.min_lr, total, c.warmup_steps);
  if (c.schedule == "step") return make_step(c.lr(), c.step_size, c.gamma, c.warmup_steps);
  return make_constant(c.lr());
}

}  // namespace kd
