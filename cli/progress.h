// Training progress: a one-line bar redrawn in place on a terminal, plain periodic lines
// otherwise (logs, CI), so captured output stays readable.
#pragma once
#include "nn/trainer.h"

namespace kd::cli {

class Progress {
 public:
  Progress();
  void step(const StepInfo& s);
  void epoch(const EpochInfo& e);

 private:
  bool tty_;
  double last_print_ = -1;
};

}  // namespace kd::cli
