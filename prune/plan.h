// Pruning plans: which channels of which dependency group (prune/groups.h) go, and why; and the
// two ways to apply one: masking (the channels' producers set to zero in the original model) and
// physical removal (a smaller ordinary model). On any graph the groups describe, the pruned model
// computes what the masked one computes (tests/test_prune.cpp).
//   importance of channel c of a group:
//     l1        sum of |w| over the group's producer weights' slices c (conv and linear weights
//               along their output dimension; depthwise weights included);
//     l2        the square root of the sum of their squares;
//     bn_scale  sum of |gamma_c| over the group's batch norms (network slimming).
//   uniform ratio r: every prunable group keeps max(min_channels, C - floor(r C)) channels,
//   rounded up to a multiple of round_to (never above C), the most important ones.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "nn/model.h"
#include "prune/groups.h"

namespace kd::prune {

enum class Criterion { l1, l2, bn_scale };
Criterion criterion_of(const std::string& name);  // throws, naming the allowed names
const char* criterion_name(Criterion c);

struct PlanOptions {
  Criterion criterion = Criterion::l1;
  double ratio = 0.3;           // fraction of each group's channels removed
  int64_t min_channels = 4;     // no group below this
  int64_t round_to = 1;         // kept counts rounded up to a multiple of this
};

struct GroupPlan {
  ChannelGroup group;
  std::vector<double> importance;  // per channel
  std::vector<int64_t> keep;       // sorted channel indices kept
};

struct Plan {
  PlanOptions options;
  std::vector<GroupPlan> groups;  // every group; unprunable ones keep all channels
  nlohmann::json to_json() const;
  int64_t removed() const;
};

std::vector<double> channel_importance(const Model& m, const ChannelGroup& g, Criterion c);
Plan make_plan(const Model& m, const PlanOptions& opt);

// The original model with the plan's removed channels zeroed in their producers (conv and linear
// weights and biases along dim 0, batch norm's weight and bias): every removed channel then
// carries exactly 0 to its consumers.
Model masked_model(const Model& m, const Plan& p);
// A smaller ordinary model: the graph's channel attributes and every member tensor sliced.
Model pruned_model(const Model& m, const Plan& p);

// FLOPs per image of m's graph (2 x multiply-accumulates, as kd info counts them).
int64_t model_flops(const Model& m);
// The smallest uniform ratio (opt's other fields as given) whose pruned model keeps at most
// `target` (a fraction) of m's FLOPs, by bisection.
double ratio_for_flops(const Model& m, PlanOptions opt, double target);

}  // namespace kd::prune
