// Model = Graph + its parameters (trainable Vars) and buffers (BN running statistics).
#pragma once
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "autograd/var.h"
#include "core/rng.h"
#include "nn/graph.h"
#include "nn/ops/weight_cache.h"

namespace kd {

// Rewrites the outputs of chosen nodes during a forward pass: fn(node, its output, every value
// computed so far) returns what later nodes read instead. Hooked nodes are never fused away as
// the inside of a conv-BN-activation chain. (Dynamic channel gating scales block outputs so.)
struct NodeHook {
  std::set<std::string> nodes;
  std::function<Var(const std::string& node, const Var& y, const std::map<std::string, Var>& values)> fn;
};

struct Model {
  Graph graph;
  std::map<std::string, Var> params;      // "<node>.weight" ... ; requires_grad
  std::map<std::string, Tensor> buffers;  // "<node>.running_mean" / ".running_var"

  // PyTorch's default initialisation, from Rng(seed, rng_stream::init) drawn in node order:
  //   conv/linear weight ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in))   (kaiming_uniform with a = sqrt(5))
  //   conv/linear bias   ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in))
  //   BN weight 1, bias 0, running mean 0, running var 1.
  static Model create(Graph g, uint64_t seed);

  // x [N,C,H,W]. training selects batch statistics in BN (and updates the running ones) and
  // active dropout. If taps is given, it receives the output of every node named in it.
  // In eval mode under NoGrad, conv2d -> batchnorm2d [-> relu | relu6] chains whose inner
  // values nobody else reads (nor taps) run as one fused op (F::conv2d_bn_act_inference).
  // fuse_inference = false runs them op by op (tests compare the two).
  Var forward(const Var& x, bool training, Rng* dropout_rng = nullptr, std::map<std::string, Var>* taps = nullptr,
              const NodeHook* hook = nullptr);
  bool fuse_inference = true;
  // In eval mode under NoGrad, without taps or a hook, a batch of at least two images per thread
  // is cut into slices that each run the whole graph on one thread (nn/model.cpp says why); the
  // result is the same as one pass, image for image. false: every op splits its own work.
  bool split_batch_inference = true;
  // The sliced passes' derived conv weights (Winograd filter transforms, packed copies), kept from
  // pass to pass and checked against the weights' content on each (nn/ops/weight_cache.h), so a
  // changed weight is never served stale. Copies of a model share it (safe for the same reason).
  std::shared_ptr<F::WeightCache> derived_weights = std::make_shared<F::WeightCache>();
  // Otherwise (training, or with gradients), batchnorm2d -> relu | relu6 chains whose BN output
  // nobody else reads (nor taps, nor a hook) run as one op (F::batch_norm2d's lo/hi). false: op by
  // op (tests compare the two).
  bool fuse_bn_act = true;

  int64_t num_params() const;
  void zero_grad();
  // All tensors (params and buffers) by name, as stored in a model file.
  std::map<std::string, Tensor> state() const;
  // Copies values from a state map; every parameter and buffer must be present with its shape.
  void load_state(const std::map<std::string, Tensor>& s, const std::string& what);

 private:
  Var forward_graph(const Var& x, bool training, Rng* dropout_rng, std::map<std::string, Var>* taps,
                    const NodeHook* hook);
  Tensor forward_slices(const Tensor& x, int threads);
};

}  // namespace kd
