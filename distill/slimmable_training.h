// Training a slimmable student (nn/slimmable.h) with the sandwich rule and in-place distillation
// (Yu & Huang, "Universally Slimmable Networks and Improved Training Techniques", 2019):
// each step trains the largest width on the base objective (the teachers' KD loss, or the
// labels), then the smallest width and `random_widths` widths drawn from those in between, each
// on the largest width's (detached) predictions: KL(softmax(z_full) || softmax(z_w)) at T = 1.
// Gradients of every width accumulate into the shared weights before one optimizer step.
//
// The result is an Objective for nn/trainer on nets[0]; the narrower widths' batch-norm
// parameters are its extra parameters and their running statistics its extra buffers, so
// checkpoints and --resume cover them.
#pragma once
#include <vector>

#include "nn/slimmable.h"
#include "nn/trainer.h"

namespace kd::distill {

struct SlimmableOptions {
  std::vector<double> widths{1.0, 0.75, 0.5, 0.25};
  int64_t random_widths = 1;  // drawn per step from the widths strictly between largest and smallest
};

// base: the objective of the largest width (an empty loss = cross-entropy on the labels).
Objective make_slimmable_objective(SlimmableModel& s, Objective base, const SlimmableOptions& o, uint64_t seed);

// The widths a step trains besides the largest: the smallest and o.random_widths of the middle
// ones, drawn from (seed, step) so that a resumed run draws the same.
std::vector<size_t> sandwich_widths(size_t n_widths, int64_t random_widths, uint64_t seed, int64_t step);

// Of widths measured at latencies_ms (widest first), the widest whose latency is at most
// budget_ms; -1 if none fits.
int widest_within_budget(const std::vector<double>& latencies_ms, double budget_ms);

}  // namespace kd::distill
