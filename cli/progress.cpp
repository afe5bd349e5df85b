#include "cli/progress.h"

#include <unistd.h>

#include <cstdio>
#include <string>

namespace kd::cli {

static std::string hms(double s) {
  char buf[32];
  int t = s < 0 ? 0 : int(s + 0.5);
  std::snprintf(buf, sizeof buf, "%d:%02d:%02d", t / 3600, t / 60 % 60, t % 60);
  return buf;
}

Progress::Progress() : tty_(isatty(STDERR_FILENO)) {}

void Progress::step(const StepInfo& s) {
  const int64_t done = s.global_step - s.start_step;  // steps this process has timed
  const double eta = done > 0 ? s.elapsed_s / double(done) * double(s.total_steps - s.global_step) : 0;
  if (tty_) {
    const int width = 24, filled = int(width * double(s.step_in_epoch) / double(s.steps_per_epoch));
    std::string bar(filled, '#');
    bar.resize(width, '.');
    std::fprintf(stderr, "\r\033[Kepoch %lld [%s] %lld/%lld loss %.4f acc %.2f%% lr %.4g %.0f img/s ETA %s",
                 (long long)s.epoch + 1, bar.c_str(), (long long)s.step_in_epoch, (long long)s.steps_per_epoch, s.loss,
                 s.accuracy, s.lr, s.images_per_s, hms(eta).c_str());
    std::fflush(stderr);
  } else if (s.elapsed_s - last_print_ >= 10.0 || s.step_in_epoch == s.steps_per_epoch) {
    last_print_ = s.elapsed_s;
    std::fprintf(stderr, "epoch %lld step %lld/%lld loss %.4f acc %.2f%% lr %.4g %.0f img/s ETA %s\n",
                 (long long)s.epoch + 1, (long long)s.step_in_epoch, (long long)s.steps_per_epoch, s.loss, s.accuracy,
                 s.lr, s.images_per_s, hms(eta).c_str());
  }
}

void Progress::epoch(const EpochInfo& e) {
  if (tty_) std::fprintf(stderr, "\r\033[K");
  std::printf("epoch %lld: train loss %.4f acc %.2f%% | test loss %.4f acc %.2f%% | %.1fs, %.0f img/s\n",
              (long long)e.epoch, e.train_loss, e.train_accuracy, e.test_loss, e.test_accuracy, e.seconds,
              e.images_per_s);
  std::fflush(stdout);
}

}  // namespace kd::cli
