// Feature (hint) distillation, FitNets (Romero et al., 2015): a student feature map goes through
// a learned 1x1 convolution with bias (the adapter, or "regressor") to the teacher's channel
// count and is regressed onto the teacher's feature map by mean squared error:
//   L = mean over N,C_t,H,W of (conv1x1(s; W, b) - t)^2
// The maps must have the same spatial size (choose layers of equal resolution). The adapter is
// trained with the student and thrown away afterwards.
#pragma once
#include <cstdint>

#include "autograd/var.h"
#include "core/rng.h"

namespace kd::distill {

struct HintAdapter {
  Var weight;  // [C_t, C_s, 1, 1]
  Var bias;    // [C_t]
};

// PyTorch's Conv2d default initialisation: weight and bias ~ U(-1/sqrt(C_s), 1/sqrt(C_s)).
HintAdapter make_hint_adapter(int64_t student_channels, int64_t teacher_channels, Rng& rng);

Var hint_loss(const Var& student_features, const Tensor& teacher_features, const HintAdapter& adapter);

}  // namespace kd::distill
