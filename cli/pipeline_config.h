// The pipeline config (JSON) of `kd pipeline`:
//   {"out": "runs/pipeline-quick",
//    "data": {"dir": "/usr/share/datasets/fashion-mnist", "train_limit": 20000},  (applied to every stage)
//    "teacher": {"config": "configs/teacher.json", "epochs": 2}
//            or {"model": "runs/teacher/model.safetensors"}          (use a trained teacher as is),
//    "student": {"config": "configs/student.json", "epochs": 3},
//    "distill": {"temperature": 4, "alpha": 0.9},                   (any key of distill_config.h but
//                                                                     student and teachers)
//    "seeds": [0],                                                  (students trained per seed)
//    "bench": {"latency_reps": 100, "throughput_reps": 10},
//    "prune": {"ratio": 0.3, "step": 0.15, "epochs_per_step": 1,   (the first seed's KD student,
//              "lr": 0.01, "criterion": "l1", "min_channels": 8,     progressively; "ratio": 0 skips;
//              "scope": "uniform",                                   criterion and scope: kd prune's;
//              "distilled": false},                                  true: fine-tuned with the teacher,
//                                                                     the distill section's T and alpha)
//    "quantize": {"calib": 1024, "observer": "minmax"}}             (INT8 PTQ of each KD student;
//                                                                     "calib": 0 skips the stage)
// Stages run in order (teacher, baseline student, KD student per seed, pruning of the first KD
// student, INT8 PTQ of each KD student, then the report). Each
// writes into OUT/<stage>; a stage whose model file exists with the same config is reused, one
// interrupted is resumed from its checkpoint, so rerunning the command after a crash continues.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "nn/train_config.h"

namespace kd::cli {

struct PipelineConfig {
  std::string out = "runs/pipeline";
  std::string teacher_model;  // non-empty: load instead of training
  TrainConfig teacher, student;
  nlohmann::json distill = nlohmann::json::object();  // T, alpha, hints ... (distill_config.h keys)
  std::vector<uint64_t> seeds{0};
  int64_t latency_reps = 100, throughput_reps = 10;
  int64_t quant_calib = 1024;  // 0: no INT8 stage
  double prune_ratio = 0.3, prune_step = 0.15, prune_lr = 0.01;  // ratio 0: no pruning stage
  int64_t prune_epochs = 1, prune_min_channels = 8;
  bool prune_distilled = false;
  std::string prune_criterion = "l1", prune_scope = "uniform";
  std::string quant_observer = "minmax";

  static PipelineConfig load(const std::string& path);
};

}  // namespace kd::cli
