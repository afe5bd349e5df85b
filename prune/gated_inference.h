// The sparse inference of a gated model (prune/channel_gating.h): per image, each gated block
// computes only the channels its predictor keeps, and reads only the kept channels of the block
// before it. The layers before the first gated block (the stem) run densely, batched.
//
// Per image and block, with A the kept channels of the block's input and S those of its output:
//   g_j = mean(x_j)                     j in A (the others are 0)
//   s   = relu(W_gate g + b_gate)       C_out x |A| multiply-adds
//   S   = top-k of s, s > 0             (top_k_indices, as the masked forward picks them)
//   z_j = act(BN(dw_j(x_j)))            j in A: 9 |A| Ho Wo multiply-adds (+ |A| Ho Wo for BN)
//       = act(BN(0 + bias)) = c_j       j not in A: a per-channel constant, nothing computed
//   y_i = act(BN(sum_{j in A} W_ij z_j + sum_{j not in A} W_ij c_j)) s_i      i in S:
//         |S| |A| Ho Wo multiply-adds for the first sum, C_out for each inactive j
//         with c_j != 0 for the constant one (for every output, along the transposed weight:
//         that vectorizes),
//         2 |S| Ho Wo for BN and the saliency scale
// Multiply-adds are counted as the graph counts them (nn/graph.h: BN as one per element), so
// the computed count compares with the ungated model's; at keep 1 it exceeds it by the
// predictors and the scales.
// The head (global average pool, linear) reads only the last block's kept channels.
// Batch norm runs folded into a scale and shift (eval statistics), so the logits match the
// masked forward up to float rounding (tests/test_gating.cpp).
#pragma once
#include <vector>

#include "prune/channel_gating.h"

namespace kd::prune {

class GatedRunner {
 public:
  // Copies what it needs from g (later changes to g are not seen).
  explicit GatedRunner(const GatedModel& g);
  // x [N,C,H,W] normalized images -> logits [N, classes]. macs, if given, receives each image's
  // multiply-adds as computed (stem included). Images run in parallel, each on one thread.
  Tensor run(const Tensor& x, double keep, std::vector<int64_t>* macs = nullptr) const;
  int64_t dense_macs() const { return dense_macs_; }  // the ungated model's multiply-adds per image
  int64_t classes() const { return head_.classes; }

  struct Block {  // one gated block, batch norms folded to scale and shift
    int64_t cin = 0, cout = 0, stride = 1, h = 0, w = 0, ho = 0, wo = 0;  // input [cin,h,w] -> [cout,ho,wo]
    float lo1 = 0, hi1 = 0, lo2 = 0, hi2 = 0;                             // the two activations' clamps
    std::vector<float> dw_w;                                              // [cin, 9]
    std::vector<float> dw_scale, dw_shift, dw_const;                      // [cin]; dw_const = act(BN(bias))
    std::vector<float> pw_w, pw_wt;                                       // [cout, cin], and transposed [cin, cout]
    std::vector<float> pw_scale, pw_shift;                                // [cout] (pw bias in the shift)
    std::vector<float> gate_wt, gate_b;                                   // [cin, cout] (transposed), [cout]
  };
  struct Head {
    std::vector<float> w, b;  // [classes, C], [classes]
    int64_t classes = 0, channels = 0;
  };

 private:
  mutable Model prefix_;  // (forward is not const) the layers before the first gated block (may be empty)
  std::vector<Block> blocks_;
  Head head_;
  int64_t prefix_macs_ = 0, dense_macs_ = 0;
};

}  // namespace kd::prune
