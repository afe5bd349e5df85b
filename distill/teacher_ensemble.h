// Several teachers at once: the student learns the weighted average of their softened
// distributions, p(k) = sum_i w_i softmax(t_i / T)(k), with the weights normalised to sum 1.
//
// The fused KD loss (core/kernels/kd_loss.h) takes teacher *logits*, so the average is handed to
// it as logits z = T log p: then softmax(z / T) = p / sum(p) = p exactly. log p is floored at
// log(1e-30) (about -69) so that a class no teacher believes in keeps a finite logit; the mass
// this adds is below float resolution. One teacher is passed through untouched.
#pragma once
#include <vector>

#include "core/tensor.h"

namespace kd::distill {

// logits: one [N,K] tensor per teacher; weights > 0, one per teacher.
Tensor ensemble_logits(const std::vector<Tensor>& logits, const std::vector<double>& weights, float T);

}  // namespace kd::distill
