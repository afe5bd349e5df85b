// Differentiable ops on Vars (layout NCHW for images, [N, features] for vectors).
// Each is a forward computation plus the closure that maps d(loss)/d(output) to
// d(loss)/d(inputs); the arithmetic lives in nn/ops/<op>.cpp. Semantics follow PyTorch's
// torch.nn.functional so goldens from it apply directly.
// Dimension legend: N batch, C channels, H/W height/width, K classes, O output channels.
#pragma once
#include <cmath>
#include <cstdint>
#include <vector>

#include "autograd/var.h"
#include "core/rng.h"

namespace kd::F {

// x [N,C,H,W], w [O, C/groups, kh, kw], b [O] or undefined. Square stride and padding.
Var conv2d(const Var& x, const Var& w, const Var& b, int stride, int padding, int groups);

// Batch norm over (N,H,W) per channel. Training: normalises with the batch's biased variance
// and updates running stats in place with the unbiased one (as PyTorch):
//   running = (1 - momentum) * running + momentum * batch_stat.
// Eval: normalises with the running stats.
// lo/hi fuse a following relu (0, inf) or relu6 (0, 6): the output clamped to [lo, hi] in the same
// pass, and the gradient passed only strictly inside (as relu's and relu6's).
Var batch_norm2d(const Var& x, const Var& gamma, const Var& beta, Tensor& running_mean, Tensor& running_var,
                 bool training, float momentum, float eps, float lo = -INFINITY, float hi = INFINITY);

Var relu(const Var& x);
Var relu6(const Var& x);  // min(max(x, 0), 6); gradient 0 at and beyond both kinks as PyTorch
Var max_pool2d(const Var& x, int kernel, int stride, int padding);
Var avg_pool2d(const Var& x, int kernel, int stride, int padding);  // count_include_pad = true
Var global_avg_pool(const Var& x);                                 // [N,C,H,W] -> [N,C,1,1]
Var flatten(const Var& x);                                         // [N,...] -> [N, rest]
// x [N,C,H,W] with each channel of each image scaled by s[n,c] * mask[n,c]; s [N,C] is
// differentiable (a saliency), mask [N,C] a constant 0/1 choice (dynamic channel gating).
Var channel_gate(const Var& x, const Var& s, const Tensor& mask);
// Inference only (under NoGrad): conv2d, then eval-mode batch norm as one scale and bias per
// channel, then the output clamped to [lo, hi] (relu: 0, inf; relu6: 0, 6; none: -inf, inf), all in
// one pass over the output while it is in cache. b may be undefined.
Tensor conv2d_bn_act_inference(const Tensor& x, const Tensor& w, const Tensor& b, int stride, int padding, int groups,
                              const Tensor& gamma, const Tensor& beta, const Tensor& mean, const Tensor& var, float eps,
                              float lo, float hi);
// The same with a residual block's end: clamp(BN(conv2d(x)) + residual, lo, hi), residual of the
// output's shape; the same bits as add_act_inference after conv2d_bn_act_inference(-inf, inf).
Tensor conv2d_bn_add_act_inference(const Tensor& x, const Tensor& w, const Tensor& b, int stride, int padding,
                                   int groups, const Tensor& gamma, const Tensor& beta, const Tensor& mean,
                                   const Tensor& var, float eps, const Tensor& residual, float lo, float hi);
// A convolution and the batch norm after it, as conv2d_bn_act_inference takes them (b may be
// undefined), by reference: the tensors must outlive it.
struct ConvBn {
  const Tensor &w, &b;
  int stride, padding, groups;
  const Tensor &gamma, &beta, &mean, &var;
  float eps;
};
// conv2d_bn_act_inference of c, or, with the residual defined, conv2d_bn_add_act_inference.
Tensor conv2d_bn_act_inference(const Tensor& x, const ConvBn& c, const Tensor& residual, float lo, float hi);
// Two of them back to back, the first one's output read by the second only (a residual block's
// two convolutions): conv2d_bn_act_inference(c1, lo1, hi1), then conv2d_bn_act_inference(c2, lo2,
// hi2) or, with a residual, conv2d_bn_add_act_inference. The same bits; for a single image on
// several threads with both on the shifted path, one team pass in which the first one's result
// goes straight into the second one's padded copy (nn/ops/conv2d_shifted.h, forward_pair).
Tensor conv2d_bn_pair_inference(const Tensor& x, const ConvBn& c1, float lo1, float hi1, const ConvBn& c2,
                                const Tensor& residual, float lo2, float hi2);
Var linear(const Var& x, const Var& w, const Var& b);              // x [N,in], w [out,in], b [out]
Var add(const Var& a, const Var& b);                               // same shapes
// Inference only (under NoGrad): clamp(a + b, lo, hi) in one pass, for a residual add followed by
// ReLU / ReLU6 (relu: 0, inf). NaN passes the clamp, as in relu.
Tensor add_act_inference(const Tensor& a, const Tensor& b, float lo, float hi);
// Inverted dropout: zeroes with probability p, scales survivors by 1/(1-p). Identity in eval.
Var dropout(const Var& x, float p, bool training, Rng& rng);
Var softmax(const Var& x);      // over the last dim of [N,K]
Var log_softmax(const Var& x);  // over the last dim of [N,K]
// Mean over the batch of -[(1-s) log p_y + s/K sum_k log p_k]  (PyTorch label_smoothing = s).
Var cross_entropy(const Var& logits, const std::vector<int32_t>& labels, float label_smoothing = 0.0f);
// Mean over the batch of -sum_k target[n,k] log p_k; targets are rows of probabilities (mixup, CutMix).
Var soft_cross_entropy(const Var& logits, const Tensor& targets);
// Hinton's distillation loss on the fused kernel (core/kernels/kd_loss.h):
//   alpha * T^2 * KL(softmax(t/T) || softmax(s/T)) [batchmean] + (1 - alpha) * CE(s, y) [mean].
// The teacher's logits are a constant; labels are unused when alpha == 1.
Var kd_loss(const Var& student_logits, const Tensor& teacher_logits, const std::vector<int32_t>& labels, float T,
            float alpha);

// Mean over all elements of (x - target)^2 (PyTorch mse_loss, reduction "mean"); target is a constant.
Var mse_loss(const Var& x, const Tensor& target);
// sum_i weights[i] * terms[i] over scalar terms (the parts of a combined objective).
Var weighted_sum(const std::vector<Var>& terms, const std::vector<float>& weights);

}  // namespace kd::F
