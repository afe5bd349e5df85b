#include "nn/schedule.h"

#include <cmath>

#include "core/error.h"

namespace kd {

namespace {

double anneal(bool cos, double a, double b, double t) {
  return cos ? b + (a - b) / 2.0 * (std::cos(M_PI * t) + 1.0) : (b - a) * t + a;
}

class OneCycle : public Schedule {
 public:
  OneCycle(const OneCycleOptions& o, int64_t total) : o_(o), total_(total) {
    KD_CHECK(total >= 2, "onecycle: needs at least 2 steps, got ", total);
    KD_CHECK(o.pct_start > 0 && o.pct_start < 1, "onecycle: pct_start must be in (0, 1), got ", o.pct_start);
  }
  ScheduleValue at(int64_t step) const override {
    const double initial = o_.max_lr / o_.div_factor, min_lr = initial / o_.final_div_factor;
    const double end1 = o_.pct_start * double(total_) - 1.0, end2 = double(total_) - 1.0;
    const double k = double(std::min(step, total_ - 1));
    double lr, mom;
    if (k <= end1) {
      const double t = k / end1;
      lr = anneal(o_.cos, initial, o_.max_lr, t);
      mom = anneal(o_.cos, o_.max_momentum, o_.base_momentum, t);
    } else {
      const double t = (k - end1) / (end2 - end1);
      lr = anneal(o_.cos, o_.max_lr, min_lr, t);
      mom = anneal(o_.cos, o_.base_momentum, o_.max_momentum, t);
    }
    ScheduleValue v{lr, std::nullopt};
    if (o_.cycle_momentum) v.momentum = mom;
    return v;
  }

 private:
  OneCycleOptions o_;
  int64_t total_;
};

double warmup_factor(int64_t step, int64_t warmup) {
  return warmup > 0 && step < warmup ? double(step + 1) / double(warmup) : 1.0;
}

class Cosine : public Schedule {
 public:
  Cosine(double base, double min_lr, int64_t total, int64_t warmup)
      : base_(base), min_(min_lr), total_(total), warmup_(warmup) {
    KD_CHECK(total > warmup && warmup >= 0, "cosine: total steps ", total, " must exceed warm-up ", warmup);
  }
  ScheduleValue at(int64_t step) const override {
    if (step < warmup_) return {base_ * warmup_factor(step, warmup_), std::nullopt};
    const double t = std::min(1.0, double(step - warmup_) / double(total_ - warmup_));
    return {anneal(true, base_, min_, t), std::nullopt};
  }

 private:
  double base_, min_;
  int64_t total_, warmup_;
};

class Step : public Schedule {
 public:
  Step(double base, int64_t size, double gamma, int64_t warmup) : base_(base), gamma_(gamma), size_(size), warmup_(warmup) {
    KD_CHECK(size >= 1, "step schedule: step_size must be >= 1, got ", size);
  }
  ScheduleValue at(int64_t step) const override {
    if (step < warmup_) return {base_ * warmup_factor(step, warmup_), std::nullopt};
    return {base_ * std::pow(gamma_, double((step - warmup_) / size_)), std::nullopt};
  }

 private:
  double base_, gamma_;
  int64_t size_, warmup_;
};

class Constant : public Schedule {
 public:
  explicit Constant(double lr) : lr_(lr) {}
  ScheduleValue at(int64_t) const override { return {lr_, std::nullopt}; }

 private:
  double lr_;
};

}  // namespace

std::unique_ptr<Schedule> make_onecycle(const OneCycleOptions& o, int64_t total) {
  return std::make_unique<OneCycle>(o, total);
}
std::unique_ptr<Schedule> make_cosine(double base, double min_lr, int64_t total, int64_t warmup) {
  return std::make_unique<Cosine>(base, min_lr, total, warmup);
}
std::unique_ptr<Schedule> make_step(double base, int64_t size, double gamma, int64_t warmup) {
  return std::make_unique<Step>(base, size, gamma, warmup);
}
std::unique_ptr<Schedule> make_constant(double lr) { return std::make_unique<Constant>(lr); }

}  // namespace kd
