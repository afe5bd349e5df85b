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

struct StepInfo {
  int64_t epoch, step_in_epoch, steps_per_epoch, global_step, total_steps;
  double loss, accuracy, lr, images_per_s, elapsed_s;
};
struct EpochInfo {
  int64_t epoch;
  double train_loss, train_accuracy, test_loss, test_accuracy, lr, seconds, images_per_s;
};

struct TrainHooks {
  std::function<void(const StepInfo&)> on_step;    // after every optimizer step
  std::function<void(const EpochInfo&)> on_epoch;  // after each epoch's evaluation
};

struct TrainResult {
  int64_t steps = 0;
  double final_test_accuracy = 0;
  std::vector<EpochInfo> epochs;
};

// Trains m in place. out_dir (created if missing) receives metrics.jsonl, checkpoint.safetensors
// (each epoch) and model.safetensors (at the end); empty out_dir writes nothing.
TrainResult train(Model& m, const TrainConfig& c, const Dataset& train_set, const Dataset& test_set,
                  const std::string& out_dir, const TrainHooks& hooks = {});

}  // namespace kd
