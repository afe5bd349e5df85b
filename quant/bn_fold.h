// Batch norm folded into the convolution before it, as differentiable ops (for QAT) over frozen
// running statistics:
//   k[o]      = gamma[o] / sqrt(running_var[o] + eps)
//   w_fold    = w * k[o]                       (every weight of output channel o)
//   b_fold[o] = beta[o] + (b[o] - running_mean[o]) * k[o]      (b = 0 for a conv without bias)
// so that conv(x, w_fold) + b_fold = BN_eval(conv(x, w) + b). Gradients:
//   dw = dw_fold * k;   dgamma[o] = (sum_i dw_fold[o,i] w[o,i] + db_fold[o] (b[o] - mean[o])) / sqrt(var + eps)
//   dbeta = db_fold;    db = db_fold * k.
// quantize's conversion folds with the same definition (nn/ops/bn_fold_values.h, in double), so a
// model trained this way is the model that is converted.
#pragma once
#include "autograd/var.h"

namespace kd::quant {

// w [O, ...], gamma [O]; var, eps: the frozen statistics.
Var fold_bn_weight(const Var& w, const Var& gamma, const Tensor& running_var, float eps);
// The QAT phase in which BN statistics still move (PyTorch's ConvBn with freeze_bn off): the conv
// runs on the folded, fake-quantized weights, and its output is divided back by
// k[o] = gamma[o] / sqrt(running_var[o] + eps) so that a training-mode batch norm (batch
// statistics, running statistics updated) can follow:
//   unscale_channels(y)[n,o,...] = y[n,o,...] / k[o]
// Gradients: dy_in = dy / k[o];  dgamma[o] = -sum(dy * y) / (k[o] * gamma[o]).
// k is taken from running_var at the call (before the batch norm updates it).
Var unscale_channels(const Var& y, const Var& gamma, const Tensor& running_var, float eps);
// conv_bias may be undefined (no bias).
Var fold_bn_bias(const Var& conv_bias, const Var& gamma, const Var& beta, const Tensor& running_mean,
                 const Tensor& running_var, float eps);

}  // namespace kd::quant
