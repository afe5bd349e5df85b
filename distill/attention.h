// Attention transfer (Zagoruyko & Komodakis, "Paying More Attention to Attention", 2017).
//
// A feature map x [N,C,H,W] becomes a spatial attention map: the mean over channels of x^2,
// flattened to [N, H*W] and scaled to unit L2 norm per image:
//   a[n,p] = (1/C) sum_c x[n,c,p]^2,   q[n,:] = a[n,:] / max(||a[n,:]||_2, 1e-12)
// The loss is the mean over n and p of (q_s - q_t)^2 (as torchdistill's and the authors' code:
// F.normalize(x.pow(2).mean(1).view(N, -1)), then (q_s - q_t).pow(2).mean()). Student and teacher
// maps need the same N, H, W; their channel counts may differ, which is the point of the method.
#pragma once
#include "autograd/var.h"

namespace kd::distill {

// The attention map q [N, H*W] of a feature map (no gradient).
Tensor attention_map(const Tensor& x);

// Differentiable in the student's features; the teacher's are a constant.
Var attention_transfer_loss(const Var& student_features, const Tensor& teacher_features);

}  // namespace kd::distill
