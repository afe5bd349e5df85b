// The training config (JSON) and its validation. A config file has three sections:
//   {"model": {...see nn/builders.h...},
//    "data":  {"dir": "/usr/share/datasets/fashion-mnist", "train_limit": 0, "test_limit": 0,
//              "augment": "crop_flip" | "none", "cutmix": 0.0, "mixup": 0.0, "shuffle": true},
//    "recipe": {"epochs": 30, "batch": 128, "max_steps": 0, "seed": 0, "label_smoothing": 0.0, "clip_grad_norm": 0.0,
//               "on_nonfinite": "stop" | "skip"   (a NaN/Inf loss or gradient ends the run, or skips the step),
//               "optimizer": {"type": "sgd", "lr": 0.1, "momentum": 0.9, "nesterov": true,
//                             "weight_decay": 5e-4}               (or "adamw": lr, betas, eps, weight_decay)
//               "schedule": {"type": "onecycle", "pct_start": 0.05, "div_factor": 25,
//                            "final_div_factor": 1e4, "anneal": "cos", "cycle_momentum": true,
//                            "base_momentum": 0.85, "max_momentum": 0.95}
//                           (or "cosine": warmup_steps, min_lr; "step": step_size, gamma, warmup_steps;
//                            "constant")}}
// Unknown keys and out-of-range values are errors naming the file and the key.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

#include "nn/optim.h"
#include "nn/schedule.h"

namespace kd {

struct TrainConfig {
  nlohmann::json model;
  // data
  std::string data_dir = "/usr/share/datasets/fashion-mnist";
  int64_t train_limit = 0, test_limit = 0;  // 0 = all
  std::string augment = "crop_flip";
  double cutmix = 0, mixup = 0;
  bool shuffle = true;
  // recipe
  int64_t epochs = 30, batch = 128, max_steps = 0;  // max_steps > 0 stops early (auditing)
  uint64_t seed = 0;
  double label_smoothing = 0, clip_grad_norm = 0;
  std::string on_nonfinite = "stop";
  std::string optimizer = "sgd";
  SgdOptions sgd{.lr = 0.1, .momentum = 0.9, .dampening = 0, .weight_decay = 5e-4, .nesterov = true};
  AdamWOptions adamw;
  std::string schedule = "onecycle";
  OneCycleOptions onecycle{.max_lr = 0.1, .pct_start = 0.05};
  int64_t warmup_steps = 0, step_size = 1000;
  double min_lr = 0, gamma = 0.1;

  double lr() const { return optimizer == "sgd" ? sgd.lr : adamw.lr; }
  void set_lr(double lr);
  static TrainConfig from_json(const nlohmann::json& j, const std::string& file);
  static TrainConfig load(const std::string& path);
  nlohmann::json to_json() const;  // the resolved config, recorded in logs and checkpoints
};

std::unique_ptr<Optimizer> make_optimizer(const TrainConfig& c, const std::map<std::string, Var>& params);
std::unique_ptr<Schedule> make_schedule(const TrainConfig& c, int64_t total_steps);

}  // namespace kd
