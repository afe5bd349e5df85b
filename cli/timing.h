// Timing helpers shared by kd bench and kd pipeline: a monotonic clock, medians, synthetic
// inputs, and the inference measurements of the deployment table.
#pragma once
#include <functional>
#include <vector>

#include "nn/model.h"

namespace kd::cli {

double now_s();  // steady clock, seconds
double median(std::vector<double> v);
// Synthetic standard-normal images [n, C, H, W]: the arithmetic of a pass does not depend on
// pixel values, so benchmarks need no dataset.
Tensor random_images(int64_t n, const Shape& chw, uint64_t seed);

struct Latency {
  double median_ms;
  std::vector<double> runs_ms;
};
// Eval-mode forward passes without gradients at a batch size: `warmup` untimed, then `reps`
// timed; the median and every run.
Latency measure_latency(Model& m, int64_t batch, int64_t reps, int64_t warmup = 20);
// The same for any forward function of images [batch, C, H, W] (the INT8 runtime).
Latency measure_latency(const std::function<void(const Tensor&)>& forward, const Shape& chw, int64_t batch,
                        int64_t reps, int64_t warmup = 20);

}  // namespace kd::cli
