// First-order Taylor importance of channels (Molchanov et al., "Importance Estimation for Neural
// Network Pruning", 2019), measured on data.
//   Put a gate a on channel c at every place the group computes it, after the last affine step of
//   each chain (a batch norm's output; a conv's or linear's output where no batch norm follows):
//   y_c -> a y_c. Removing the channel is a = 0 (ReLU(0) = 0, so what masked_model computes), and
//   to first order the loss then changes by
//     dL ~= -dL/da = -sum_y sum_{n,h,w} dL/dy_c y_c = -sum_{p in those affine steps' slices c} g_p w_p,
//   (y = gamma x^ + beta is linear in its own gamma and beta, as y = W x + b is in W and b).
//   The importance of c is the squared estimate, averaged over mini-batches b:
//     I_c = mean_b ( sum_p g_p^(b) w_p )^2
//   (squared per batch before averaging: the signed sums of different batches would cancel; a
//   small batch makes the mean of squares approach the Fisher information of the gate, the
//   second-order term that remains when a trained model's mean gradient is near 0).
//   Only the last affine step of a chain counts: scaling a conv and the batch norm after it by a
//   together is quadratic in a, and its slope at 1 would count the channel twice.
// The loss is the cross-entropy on the labels, the model in eval mode (BN on its running
// statistics): the model that is pruned is the one that is deployed.
#pragma once
#include <vector>

#include "data/dataset.h"
#include "nn/model.h"
#include "prune/groups.h"

namespace kd::prune {

// Per group (in the order of `groups`), per channel. Uses the first min(images, data.size())
// samples in mini-batches of `batch`. m is not changed (its gradients are computed on a copy).
std::vector<std::vector<double>> taylor_importance(const Model& m, const std::vector<ChannelGroup>& groups,
                                                   const Dataset& data, int64_t images, int64_t batch = 64);

}  // namespace kd::prune
