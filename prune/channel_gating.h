// Dynamic channel gating: input-dependent channel selection at inference, in the manner of
// feature boosting and suppression (Gao et al., "Dynamic Channel Pruning: Feature Boosting and
// Suppression", ICLR 2019).
//
// A gated block is a depthwise-separable block of the graph:
//   x -> dw3x3 -> BN -> act -> pw1x1 -> BN -> act -> y      (act: relu or relu6)
// Its saliency predictor reads the block's input x, globally average-pooled, through a small
// linear layer:  s = relu(W gap(x) + b)  (one saliency per output channel of the block). For
// each image the k = max(1, round(keep * C_out)) channels of largest saliency (ties: the lower
// index) are kept and scaled by their saliency; the others are zero:  y'[c] = y[c] s[c] m[c].
// A channel whose saliency is 0 contributes nothing and counts as skipped even if it is in the
// top k. Training (prune/gating_training.h) is ordinary backpropagation through this masked
// forward: the mask is a constant, the saliencies of kept channels get gradients (s scales y).
//
// At inference (prune/gated_inference.h) the skipped channels are not computed: their rows of
// the pointwise weight, and in the next block their depthwise filters and pointwise columns, are
// never read. A zero channel entering the next block's depthwise conv leaves it as the constant
// act(BN(0)), whose contribution to the pointwise conv is a per-image bias term.
//
// How it differs from the other two ways kd makes the student cheaper:
//   static pruning (prune/plan.h) removes the same channels for every input, once, and yields an
//   ordinary smaller model: fastest and simplest, but it decides without seeing the input;
//   slimmable widths (nn/slimmable.h) run the leading c*w channels of every layer, the same for
//   every input, with the width chosen per deployment (or per latency budget);
//   gating keeps the full model and picks, per input and per block, which channels to compute,
//   so easy and hard images can use different channels; it pays a predictor per block and
//   needs a per-image sparse kernel (irregular work, no batching across images).
//
// File: the base model's tensors, plus "gate.<output node>.weight" [C_out, C_in] and ".bias",
// and metadata "format" = "kd-gated-1", "graph" (the base graph), "gating" ({"keep": k}).
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "nn/model.h"

namespace kd::prune {

struct GateSite {
  std::string input;                              // the value the block reads (and the predictor)
  std::string dw, dw_bn, dw_act, pw, pw_bn, act;  // the block's nodes; act's output is gated
  int64_t in_channels = 0, out_channels = 0;
};

// Every depthwise-separable block of g, in graph order. Throws if g has none.
std::vector<GateSite> find_gate_sites(const Graph& g);

// The kept-channel count of a block of c channels at keep ratio keep (in (0, 1]).
int64_t gate_k(int64_t channels, double keep);

// The indices of the k largest of s[0..c) that are > 0 (ties: the lower index), ascending.
std::vector<int64_t> top_k_indices(const float* s, int64_t c, int64_t k);
// For each row of s [N,C]: 1 for the k largest entries that are > 0 (ties: lower index), else 0.
Tensor top_k_mask(const Tensor& s, int64_t k);

struct GatedModel {
  Model model;
  std::vector<GateSite> sites;
  std::map<std::string, Var> predictors;  // "gate.<act>.weight" [C_out, C_in], "gate.<act>.bias" [C_out]
  double keep = 0.7;                      // the training keep ratio (any can be run)

  // Predictors start near the static choice: bias 1 + 0.05 i_c / max(i), with i_c the L1 norm of
  // channel c's BN-folded pointwise weights (the magnitude it can reach the next layer with), and
  // weights U(+-0.01/sqrt(C_in)), small enough that the input moves the ranking little at first.
  // So every saliency starts within 5% of 1 and the gated model starts as the base model with
  // its least important channels dropped (a random start dropped random ones: the KD student fell
  // from 93% to 17% at keep 0.7 and needed epochs to recover).
  static GatedModel create(Model base, double keep, uint64_t seed);

  // The masked forward at keep ratio `keep` (autograd, training or eval).
  Var forward(const Var& x, bool training, double keep);
  // Saliencies s [N, C_out] of each site for input x (eval mode, no gradients, gated at
  // keep_ratio on the way), for inspection and tests.
  std::vector<Tensor> saliencies(const Tensor& x, double keep_ratio);

  void save(const std::string& path) const;
  static GatedModel load(const std::string& path);

 private:
  NodeHook gate_hook(double keep_ratio, std::vector<Tensor>* collect);
};

constexpr const char* kGatedFormat = "kd-gated-1";
bool is_gated_file(const std::string& path);

}  // namespace kd::prune
