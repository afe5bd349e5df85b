// Learning-rate (and momentum) schedules, evaluated at optimizer step k = 0, 1, ... (the value
// used by step k, i.e. PyTorch's scheduler after k calls of scheduler.step()).
#pragma once
#include <cstdint>
#include <memory>
#include <optional>

namespace kd {

struct ScheduleValue {
  double lr;
  std::optional<double> momentum;  // set only by schedules that cycle momentum
};

class Schedule {
 public:
  virtual ~Schedule() = default;
  virtual ScheduleValue at(int64_t step) const = 0;
};

// torch.optim.lr_scheduler.OneCycleLR (two phases, three_phase = False):
//   initial = max_lr / div_factor, min = initial / final_div_factor
//   phase 1 ends at step pct_start * total - 1: lr initial -> max, momentum max_m -> base_m
//   phase 2 ends at step total - 1:               lr max -> min,     momentum base_m -> max_m
//   cos anneal(a, b, t) = b + (a - b) (1 + cos(pi t)) / 2 ;  linear: a + (b - a) t
struct OneCycleOptions {
  double max_lr = 0.1, pct_start = 0.3, div_factor = 25, final_div_factor = 1e4;
  bool cos = true, cycle_momentum = true;
  double base_momentum = 0.85, max_momentum = 0.95;
};
std::unique_ptr<Schedule> make_onecycle(const OneCycleOptions& o, int64_t total_steps);

// Linear warm-up from 0 over warmup steps, then cosine from base_lr to min_lr at total_steps.
std::unique_ptr<Schedule> make_cosine(double base_lr, double min_lr, int64_t total_steps, int64_t warmup);
// Linear warm-up, then base_lr * gamma^floor((k - warmup) / step_size).
std::unique_ptr<Schedule> make_step(double base_lr, int64_t step_size, double gamma, int64_t warmup);
// Constant learning rate.
std::unique_ptr<Schedule> make_constant(double lr);

}  // namespace kd
