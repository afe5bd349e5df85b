// What kd train, kd distill and kd pipeline share: loading the config's data, the header line,
// the progress display and the closing line of a training run.
#pragma once
#include <string>

#include "data/dataset.h"
#include "nn/trainer.h"

namespace kd::cli {

struct Datasets {
  Dataset train, test;
};
// The config's training and test sets, cut to its train_limit / test_limit.
Datasets load_datasets(const TrainConfig& c);

// Trains with a progress display (opts.hooks' step and epoch callbacks are set here). verb:
// "training", "distilling", "resuming" ... for the header line.
TrainResult run_with_progress(Model& m, const TrainConfig& c, const Datasets& d, TrainOptions opts,
                              const std::string& verb);

}  // namespace kd::cli
