// Progressive pruning as kd prune and kd pipeline run it: the ratio reached in steps of at most
// `step`, each step planned on the model the previous one left (prune/plan.h), its plan written
// to OUT/plan-step<k>.json, and fine-tuned in OUT/step<k>/ (reused if finished, resumed if
// interrupted) when a training config is given.
#pragma once
#include <string>

#include "cli/training_run.h"
#include "prune/plan.h"

namespace kd::cli {

Model progressive_prune(const Model& m, const prune::PlanOptions& plan, double step, const TrainConfig* finetune,
                        const Datasets& data, const std::string& out);

}  // namespace kd::cli
