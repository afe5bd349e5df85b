// Channel dependency groups: the sets of tensor slices that must lose a channel together when a
// channel is pruned, computed from the model graph.
//   a conv's output channels start a group: its weight and bias along dim 0;
//   batch norm, ReLU/ReLU6, pooling and dropout carry their input's group (BN's four tensors along
//   dim 0 join it);
//   a depthwise conv (groups = in = out) carries it too: its input and output channels are the
//   same channels, so its weight joins along dim 0;
//   a residual add merges the groups of its two inputs (the channels of both branches and of the
//   shortcut are the same channels);
//   consumers join along their input dimension: a dense conv's weight along dim 1, a linear
//   layer's weight along dim 1 in blocks of H*W when it reads a flattened [C,H,W] value.
// A group that reaches the model's input or output (the image's channel, the class logits) or a
// grouped non-depthwise conv cannot be pruned; `why_not` says which.
#pragma once
#include <string>
#include <vector>

#include "nn/model.h"

namespace kd::prune {

struct GroupMember {
  std::string param;  // "<node>.weight", "<node>.running_mean", ...
  int dim = 0;        // the dimension that indexes the group's channels
  int64_t block = 1;  // channel c owns indices [c*block, (c+1)*block) along dim
  bool producer = false;  // dim-0 slice of a conv/linear/BN that computes the channel (masking zeroes these)
};

struct ChannelGroup {
  int id = 0;
  int64_t channels = 0;
  std::vector<GroupMember> members;
  std::vector<std::string> nodes;  // nodes whose output lies in this group, in graph order
  bool prunable = true;
  std::string why_not;
};

std::vector<ChannelGroup> channel_groups(const Model& m);

}  // namespace kd::prune
