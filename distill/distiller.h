// Distillation as a training objective (nn/trainer's Objective): loads the teachers, creates the
// hint adapters, and computes the combined loss of distill_config.h each step.
//
// The teachers run in eval mode without gradients on the student's batch (the same crops and
// flips; for mixed batches the same mixed images). When nothing can change a teacher's output for
// an image (no augmentation, no CutMix/mixup, no hint or attention pairs, cache_teacher on), its
// logits are computed once per image and reused in later epochs.
#pragma once
#include <memory>

#include "distill/distill_config.h"
#include "nn/model.h"
#include "nn/trainer.h"

namespace kd::distill {

// Checks the config against the student and teachers (node names exist, maps have equal spatial
// sizes, teachers' class counts match the student's) and returns the objective. Adapter weights
// are drawn from the student's seed. `train_rows` is the size of the training set (for the cache).
Objective make_objective(const DistillConfig& c, const Model& student, int64_t train_rows);

// What a checkpoint or model file records about the objective: the resolved config and, for
// each teacher file, its size and FNV-1a 64-bit digest, so that a run whose teacher was retrained
// in place is not mistaken for the same run (resume and pipeline stage reuse compare it).
nlohmann::json objective_record(const DistillConfig& c);
// The config inside such a record (for kd distill --resume).
DistillConfig config_from_record(const nlohmann::json& record, const std::string& where);

// Trains the student of c with distillation (the student's recipe, data and seed).
TrainResult distill(Model& student, const DistillConfig& c, const Dataset& train_set, const Dataset& test_set,
                    TrainOptions opts);

}  // namespace kd::distill
