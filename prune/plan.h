// Pruning plans: which channels of which dependency group (prune/groups.h) go, and why; and the
// two ways to apply one: masking (the channels' producers set to zero in the original model) and
// physical removal (a smaller ordinary model). On any graph the groups describe, the pruned model
// computes what the masked one computes (tests/test_prune.cpp).
//   importance of channel c of a group:
//     l1        sum of |w| over the group's producer weights' slices c (conv and linear weights
//               along their output dimension; depthwise weights included);
//     l2        the square root of the sum of their squares;
//     bn_scale  sum of |gamma_c| over the group's batch norms (network slimming);
//     taylor    first-order Taylor estimate of the loss change, measured on data (prune/taylor.h;
//               the caller computes it and passes it to make_plan).
//   uniform ratio r: every prunable group keeps max(min_channels, C - floor(r C)) channels,
//   rounded up to a multiple of round_to (never above C), the most important ones.
//   global ratio r: floor(r P) of the P channels of all prunable groups go, the least important
//   across groups, where a channel's score is its importance divided by the mean importance of
//   its group (raw L1 norms or Taylor scores are not comparable between layers of different
//   fan-in or depth; the ratio to the group's mean is). A group is never cut below min_channels;
//   kept counts are then rounded up to round_to. Within a group the kept channels are always the
//   most important ones, so the two scopes differ only in how many each group keeps.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "nn/model.h"
#include "prune/groups.h"

namespace kd::prune {

enum class Criterion { l1, l2, bn_scale, taylor };
Criterion criterion_of(const std::string& name);  // throws, naming the allowed names
const char* criterion_name(Criterion c);
enum class Scope { uniform, global };
Scope scope_of(const std::string& name);  // throws, naming the allowed names
const char* scope_name(Scope s);

struct PlanOptions {
  Criterion criterion = Criterion::l1;
  Scope scope = Scope::uniform;
  double ratio = 0.3;           // fraction of the channels removed (of each group, or of all: scope)
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

// Per group of channel_groups(m), per channel.
using Importance = std::vector<std::vector<double>>;

// The weight-based criteria (l1, l2, bn_scale); taylor needs data: prune/taylor.h.
std::vector<double> channel_importance(const Model& m, const ChannelGroup& g, Criterion c);
// `given` (one vector per group of channel_groups(m)) replaces the computed importance; it is
// required for the taylor criterion.
Plan make_plan(const Model& m, const PlanOptions& opt, const Importance& given = {});

// The original model with the plan's removed channels zeroed in their producers (conv and linear
// weights and biases along dim 0, batch norm's weight and bias): every removed channel then
// carries exactly 0 to its consumers.
Model masked_model(const Model& m, const Plan& p);
// A smaller ordinary model: the graph's channel attributes and every member tensor sliced.
Model pruned_model(const Model& m, const Plan& p);

// FLOPs per image of m's graph (2 x multiply-accumulates, as kd info counts them).
int64_t model_flops(const Model& m);
// The smallest ratio (opt's other fields as given, uniform or global) whose pruned model keeps
// at most `target` (a fraction) of m's FLOPs, by bisection (the removed set grows with the ratio
// in both scopes, so the FLOPs fall monotonically).
double ratio_for_flops(const Model& m, PlanOptions opt, double target, const Importance& given = {});

}  // namespace kd::prune
