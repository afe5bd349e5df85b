// The training loop of `kd train` (and the building block of distillation later):
// loader -> forward (train mode) -> cross-entropy (hard, smoothed or mixed targets) -> backward
// -> optional global-norm clipping -> schedule sets lr/momentum -> optimizer step.
// Each epoch ends with a test evaluation, a line in the metrics log and an atomic checkpoint.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "nn/model.h"
#include "nn/train_config.h"

namespace kd {

struct EvalResult {
  int64_t n = 0, correct = 0;
  double loss = 0;                    // mean cross-entropy
  std::vector<int64_t> confusion;     // K x K, row = true class, column = predicted
  int64_t classes = 0;
  double accuracy() const { return n ? 100.0 * double(correct) / double(n) : 0.0; }
};

// Eval-mode forward over the dataset in batches, without gradients.
EvalResult evaluate(Model& m, const Dataset& d, int64_t batch = 500);
// The same for any model given as a function from normalized images [N,C,H,W] to logits
// [N,classes] (the INT8 runtime uses it).
EvalResult evaluate_logits(const std::function<Tensor(const Tensor&)>& logits_of, int64_t classes, const Dataset& d,
                           int64_t batch = 500);

struct StepInfo {
  int64_t epoch, step_in_epoch, steps_per_epoch, global_step, total_steps;
  double loss, accuracy, lr, images_per_s, elapsed_s;
  int64_t start_step = 0;  // global step this process started at (> 0 after --resume), for ETAs
};
struct EpochInfo {
  int64_t epoch;
  double train_loss, train_accuracy, test_loss, test_accuracy, lr, seconds, images_per_s;
};

struct Batch;
struct TrainHooks {
  std::function<void(Batch&)> on_batch;            // before the forward pass (fault injection in tests)
  std::function<void(const StepInfo&)> on_step;    // after every optimizer step
  std::function<void(const EpochInfo&)> on_epoch;  // after each epoch's evaluation
};

struct TrainResult {
  int64_t steps = 0;
  int64_t skipped_steps = 0;  // steps skipped for a non-finite loss or gradient (on_nonfinite = skip)
  double final_test_accuracy = 0;
  std::vector<EpochInfo> epochs;
};

// What the training minimises. The default (no loss function) is the cross-entropy of the
// config: hard labels with optional label smoothing, or the mixed targets of CutMix/mixup.
// Distillation (distill/) supplies its own: it reads the logits, the outputs of the model nodes
// named in `taps`, and may train extra parameters of its own (adapters), which the optimizer
// updates with the model's and checkpoints store as "extra.<name>" (model.safetensors does not).
struct Objective {
  struct Context {
    const Batch& batch;
    const Var& logits;
    const std::map<std::string, Var>& taps;
    int64_t step, total_steps;  // global step (0-based) and the run's length, for schedules
  };
  std::function<Var(const Context&)> loss;
  std::vector<std::string> taps;
  std::map<std::string, Var> extra_params;
  std::map<std::string, Tensor> extra_buffers;  // state the objective keeps (e.g. BN statistics), checkpointed alike
  // Recorded in checkpoints (metadata "objective"); a resume must present the same record.
  nlohmann::json record;
  // If set, replaces the model's own forward pass (training steps and the per-epoch evaluation):
  // quantization-aware training runs the model with fake quantization this way. Taps are not
  // available with it.
  std::function<Var(const Var& x, bool training)> forward;
  // If set, called with the global step before each training step's forward pass (a choice that
  // varies by step, e.g. the keep ratio of gated training, made a function of the step so that
  // a resumed run makes the same).
  std::function<void(int64_t step)> before_step;
};

struct TrainOptions {
  std::string out_dir;           // empty: write nothing
  bool resume = false;           // continue from out_dir/checkpoint.safetensors
  int64_t checkpoint_every = 0;  // > 0: also checkpoint every N optimizer steps inside an epoch
  TrainHooks hooks;
  Objective objective;
};

// Trains m in place. out_dir (created if missing) receives metrics.jsonl, checkpoint.safetensors
// (each epoch, and every checkpoint_every steps) and model.safetensors (at the end).
//
// A checkpoint holds everything the rest of the run depends on: parameters and BN statistics,
// optimizer state, the global step (the schedule is a pure function of it; the data order,
// augmentation and mixing are pure functions of (seed, epoch, batch), see data/loader.h; dropout
// draws from a stream reseeded from (seed, step)), the running sums of the unfinished epoch and
// the resolved config. Resuming therefore continues bit-identically to an uninterrupted run with
// the same thread count. Files are replaced atomically, so a crash leaves the previous one.
TrainResult train(Model& m, const TrainConfig& c, const Dataset& train_set, const Dataset& test_set,
                  const TrainOptions& opts);
inline TrainResult train(Model& m, const TrainConfig& c, const Dataset& train_set, const Dataset& test_set,
                         const std::string& out_dir, const TrainHooks& hooks = {}) {
  return train(m, c, train_set, test_set, TrainOptions{out_dir, false, 0, hooks, {}});
}

// The config recorded in out_dir's checkpoint (for `kd train --resume`); names the file in errors.
TrainConfig checkpoint_config(const std::string& out_dir);
// The objective record of out_dir's checkpoint (null for plain cross-entropy training).
nlohmann::json checkpoint_objective(const std::string& out_dir);

}  // namespace kd
