#include "cli/training_run.h"

#include <cstdio>

#include "cli/common.h"
#include "cli/progress.h"
#include "core/threads.h"

namespace kd::cli {

Datasets load_datasets(const TrainConfig& c) {
  Datasets d{load_mnist_like(c.data_dir, true), load_mnist_like(c.data_dir, false)};
  if (c.train_limit > 0) d.train = take_first(d.train, c.train_limit);
  if (c.test_limit > 0) d.test = take_first(d.test, c.test_limit);
  return d;
}

TrainResult run_with_progress(Model& m, const TrainConfig& c, const Datasets& d, TrainOptions opts,
                              const std::string& verb) {
  std::printf("%s %s (%s parameters) on %lld images, %lld epochs of batch %lld, %d threads -> %s\n", verb.c_str(),
              c.model.value("family", "?").c_str(), with_commas(m.num_params()).c_str(), (long long)d.train.size(),
              (long long)c.epochs, (long long)c.batch, num_threads(), opts.out_dir.c_str());
  std::fflush(stdout);
  Progress p;
  opts.hooks.on_step = [&](const StepInfo& s) { p.step(s); };
  opts.hooks.on_epoch = [&](const EpochInfo& e) { p.epoch(e); };
  TrainResult r = train(m, c, d.train, d.test, opts);
  std::printf("test accuracy: %.2f%% after %lld steps; model saved to %s/model.safetensors\n", r.final_test_accuracy,
              (long long)r.steps, opts.out_dir.c_str());
  return r;
}

}  // namespace kd::cli
