// Progressive pruning as kd prune and kd pipeline run it: the ratio reached in steps of at most
// `step`, each step planned on the model the previous one left (prune/plan.h), its plan written
// to OUT/plan-step<k>.json, and fine-tuned in OUT/step<k>/ (reused if finished, resumed if
// interrupted) when a training config is given. With a teacher, the fine-tuning is distilled:
// the student's loss is distill/'s alpha T^2 KL(teacher || student) + (1 - alpha) CE.
#pragma once
#include <string>

#include "cli/training_run.h"
#include "prune/plan.h"

namespace kd::cli {

struct DistilledFinetune {
  std::string teacher;  // a model file; empty: plain fine-tuning on the labels
  double temperature = 4, alpha = 0.9;
};
// The objective of a fine-tuning run of `student` with recipe tc: distill/'s KD loss from the
// one teacher at constant T and alpha (kd prune, kd gate); the default (labels) without one.
Objective finetune_objective(const DistilledFinetune& d, const TrainConfig& tc, const Model& student,
                             int64_t train_rows);

struct ProgressiveOptions {
  double step = 0.05;             // at most this fraction of the channels per step
  int64_t last_step_epochs = -1;  // fine-tuning epochs of the last step (-1: as the others)
  // FLOPs per image the result must not exceed (0: none). The steps' ratios follow plan.ratio;
  // the last step's ratio is found again on the model it starts from so that the target holds
  // (per-step rounding of channel counts would otherwise leave it a little above).
  double flops_target = 0;
  DistilledFinetune distilled;
  int64_t taylor_images = 1024;  // criterion taylor: training images its importance is measured on, each step,
  int64_t taylor_batch = 64;     // in mini-batches of this size
  // Importance already measured on the model given (taylor: kd prune measures it to find the
  // ratio for a FLOPs target); step 1 uses it instead of measuring again. Empty: measure.
  prune::Importance first_importance;
};

// The importance make_plan should use: measured on the first `images` training images for the
// taylor criterion (prune/taylor.h); empty (read from the weights) for the others.
prune::Importance measured_importance(const Model& m, const prune::PlanOptions& plan, const Dataset& train,
                                      int64_t images, int64_t batch);

Model progressive_prune(const Model& m, const prune::PlanOptions& plan, const ProgressiveOptions& po,
                        const TrainConfig* finetune, const Datasets& data, const std::string& out);

}  // namespace kd::cli
