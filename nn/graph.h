// The model graph IR: the one representation that training, export and (later) pruning and
// quantization read and rewrite.
//
// A Graph is a list of nodes in topological order. Each node has a unique name, an op type,
// the names of its inputs (earlier nodes, or "input" for the graph input) and JSON attributes.
// Parameters are named "<node>.<param>" in PyTorch layouts (see nn/safetensors.h), and node
// names follow the PyTorch module paths of the reference models, so a state_dict maps 1:1.
//
// Ops and attributes (all integers unless noted):
//   conv2d        in, out, kernel, stride, padding, groups, bias (bool)   params weight [out,in/groups,k,k], bias [out]
//   batchnorm2d   channels, eps (float), momentum (float)                  params weight, bias; buffers running_mean, running_var
//   linear        in, out, bias (bool)                                    params weight [out,in], bias [out]
//   relu, relu6, flatten, global_avgpool, softmax, log_softmax            no attributes
//   maxpool2d, avgpool2d   kernel, stride, padding
//   dropout       p (float)
//   add           two inputs of the same shape
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace kd {

struct Node {
  std::string name, op;
  std::vector<std::string> inputs;
  nlohmann::json attrs = nlohmann::json::object();
};

// Per-node facts from shape inference (batch dimension excluded from shapes).
struct NodeInfo {
  Shape out_shape;     // [C,H,W] or [F]
  int64_t params = 0;  // trainable parameter count
  int64_t macs = 0;    // multiply-accumulates per image (FLOPs = 2 * macs)
};

struct ParamSpec {
  std::string name;  // "<node>.<param>"
  Shape shape;
  bool trainable;  // false for BN running statistics (buffers)
};

// Size limits of a valid graph (per image): validation rejects anything beyond them, naming the
// node, so that a corrupt or hostile graph cannot make Model::create or a forward pass try to
// allocate terabytes or run for days. They are far above any model kd trains on a CPU.
constexpr int64_t kMaxGraphParams = int64_t(1) << 30;       // trainable parameters, summed: 4 GiB of f32
constexpr int64_t kMaxGraphActivations = int64_t(1) << 28;  // elements of one node's output: 1 GiB of f32
constexpr int64_t kMaxGraphMacs = 1'000'000'000'000;        // multiply-accumulates, summed over nodes

struct Graph {
  Shape input_shape{1, 28, 28};  // [C,H,W] of one image
  std::vector<Node> nodes;
  std::string output;  // name of the node whose value the model returns

  const Node& node(const std::string& name) const;
  // Checks names, inputs (must refer to earlier nodes: this also rules out cycles), attributes
  // and shapes; returns one NodeInfo per node. Throws kd::Error naming the node and field.
  std::vector<NodeInfo> validate() const;
  std::vector<ParamSpec> param_specs() const;  // in node order

  nlohmann::json to_json() const;
  static Graph from_json(const nlohmann::json& j);  // validates
};

}  // namespace kd
