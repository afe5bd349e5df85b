#include "nn/model.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <exception>
#include <optional>

#include "core/threads.h"
#include "nn/functional.h"
#include "nn/ops/weight_cache.h"

namespace kd {

Model Model::create(Graph g, uint64_t seed) {
  g.validate();
  Model m;
  Rng rng(seed, rng_stream::init);
  for (const ParamSpec& p : g.param_specs()) {
    Tensor t = Tensor::empty(p.shape);
    const std::string suffix = p.name.substr(p.name.rfind('.') + 1);
    const Node& node = g.node(p.name.substr(0, p.name.rfind('.')));
    if (node.op == "batchnorm2d") {
      t.fill(suffix == "weight" || suffix == "running_var" ? 1.f : 0.f);
    } else {
      // fan_in of the layer: in/groups * k * k for conv, in for linear.
      int64_t fan_in = node.op == "conv2d" ? node.attrs["in"].get<int64_t>() / node.attrs["groups"].get<int64_t>() *
                                                 node.attrs["kernel"].get<int64_t>() * node.attrs["kernel"].get<int64_t>()
                                           : node.attrs["in"].get<int64_t>();
      const float bound = 1.f / std::sqrt(float(fan_in));
      for (int64_t i = 0; i < t.numel(); ++i) t.f32()[i] = rng.uniform(-bound, bound);
    }
    if (p.trainable)
      m.params.emplace(p.name, Var(t, true));
    else
      m.buffers.emplace(p.name, t);
  }
  m.graph = std::move(g);
  return m;
}

Var Model::forward(const Var& x, bool training, Rng* dropout_rng, std::map<std::string, Var>* taps,
                   const NodeHook* hook) {
  const int threads = omp_in_parallel() ? 1 : num_threads();
  if (split_batch_inference && !training && !grad_enabled() && !taps && !hook && threads > 1 && x.value().dim() == 4 &&
      x.value().size(0) >= 2 * threads)
    return Var(forward_slices(x.value(), threads));
  return forward_graph(x, training, dropout_rng, taps, hook);
}

// Inference on a batch, slices of images over the threads, each slice through the whole graph on
// one thread (its ops see omp_in_parallel() and stay on it). Against every op splitting its own
// work: no parallel region per op (with OMP_WAIT_POLICY=passive each wakes the other threads,
// tens of microseconds on a VM), no op whose work is too small to split well (the student's
// depthwise layers and small GEMMs scale poorly), and a slice's activations stay in its core's
// caches between layers. Slices of at most 16 images, dealt out dynamically: a busy core takes
// fewer. Each image's result depends only on its own input: the same computation, except that
// the linear layer's Eigen GEMM orders a row's sum by the number of rows (an ulp or so, as with
// any other batch size; tests/test_fused_inference.cpp).
Tensor Model::forward_slices(const Tensor& x, int threads) {
  const int64_t N = x.size(0);
  const int64_t per_thread = (N + threads - 1) / threads, rounds = (per_thread + 15) / 16;
  const int64_t slices = std::min<int64_t>(N, threads * rounds), size = (N + slices - 1) / slices;
  std::vector<Tensor> out(size_t((N + size - 1) / size));
  std::exception_ptr error;
  // The conv layers' transformed and packed weights, made once for all slices (and kept for the
  // next pass while the weights stay the same).
  F::WeightCache& weight_cache = *derived_weights;
  weight_cache.new_pass();
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
  for (int64_t s = 0; s < int64_t(out.size()); ++s) {
    try {
      NoGrad no_grad;  // the flag is per thread
      F::WeightCacheUse use_cache(weight_cache);
      out[size_t(s)] =
          forward_graph(Var(x.slice(0, s * size, std::min(N, (s + 1) * size))), false, nullptr, nullptr, nullptr)
              .value()
              .contiguous();
    } catch (...) {
#pragma omp critical(kd_forward_slices)
      if (!error) error = std::current_exception();
    }
  }
  if (error) std::rethrow_exception(error);
  Shape shape = out[0].shape();
  shape[0] = N;
  Tensor y = Tensor::empty(shape);  // a model's output is f32 (f32() checks)
  float* dst = y.f32();
  for (const Tensor& t : out) {
    std::memcpy(dst, t.f32(), sizeof(float) * size_t(t.numel()));
    dst += t.numel();
  }
  return y;
}

Var Model::forward_graph(const Var& x, bool training, Rng* dropout_rng, std::map<std::string, Var>* taps,
                         const NodeHook* hook) {
  const Shape& is = graph.input_shape;
  KD_CHECK(x.value().dim() == 4 && x.value().size(1) == is[0] && x.value().size(2) == is[1] &&
               x.value().size(3) == is[2],
           "model: input ", shape_str(x.shape()), " does not match the graph's input [N,", is[0], ",", is[1], ",",
           is[2], "]");
  std::map<std::string, Var> v{{"input", x}};
  static const Var kNoParam;
  auto P = [&](const std::string& n, const char* p) -> const Var& {
    auto it = params.find(n + "." + p);
    return it == params.end() ? kNoParam : it->second;
  };
  // How many nodes read each value (the model output counts as a reader).
  const bool fuse = fuse_inference && !training && !grad_enabled();
  std::map<std::string, int> readers;
  for (const Node& n : graph.nodes)
    for (const std::string& in : n.inputs) ++readers[in];
  ++readers[graph.output];
  auto private_to = [&](const Node& producer, const Node& consumer) {
    return consumer.inputs.size() == 1 && consumer.inputs[0] == producer.name && readers[producer.name] == 1 &&
           !(taps && taps->count(producer.name)) && !(hook && hook->nodes.count(producer.name));
  };
  auto hooked = [&](const std::string& name, Var y) {
    return hook && hook->nodes.count(name) ? hook->fn(name, y, v) : y;
  };
  // At inference, conv2d -> batchnorm2d [-> relu | relu6] whose inner values nobody else reads,
  // or conv -> bn -> add -> relu | relu6 (a residual block's end) whose add has its other input
  // already: one op, the BN folded and the sum and clamp applied while each output is in cache.
  struct ConvChain {
    const Node* bn = nullptr;
    const Node* act = nullptr;              // the activation right after the BN, if any
    const std::string* residual = nullptr;  // the add's other input, if the chain ends a block
    const Node* last = nullptr;             // the node whose value the chain produces
    size_t length = 0;                      // nodes
    float lo = -INFINITY, hi = INFINITY;    // the clamp after the BN or the sum
  };
  auto conv_chain = [&](size_t i) -> std::optional<ConvChain> {
    const Node& conv = graph.nodes[i];
    if (i + 1 >= graph.nodes.size() || graph.nodes[i + 1].op != "batchnorm2d" || !private_to(conv, graph.nodes[i + 1]))
      return std::nullopt;
    ConvChain c;
    c.bn = &graph.nodes[i + 1];
    const Node* a = i + 2 < graph.nodes.size() ? &graph.nodes[i + 2] : nullptr;
    if (a && (a->op == "relu" || a->op == "relu6") && private_to(*c.bn, *a)) {
      c.act = c.last = a;
      c.length = 3;
    } else if (a && i + 3 < graph.nodes.size()) {
      const Node& r = graph.nodes[i + 3];
      if (a->op == "add" && a->inputs.size() == 2 && readers[c.bn->name] == 1 && !(taps && taps->count(c.bn->name)) &&
          !(hook && hook->nodes.count(c.bn->name)) && (r.op == "relu" || r.op == "relu6") && private_to(*a, r)) {
        const std::string& other = a->inputs[0] == c.bn->name ? a->inputs[1] : a->inputs[0];
        if ((a->inputs[0] == c.bn->name) != (a->inputs[1] == c.bn->name) && v.count(other))
          c.residual = &other, c.last = &r, c.length = 4;
      }
    }
    if (!c.last) c.last = c.bn, c.length = 2;
    if (c.last != c.bn) c.lo = 0.f, c.hi = c.last->op == "relu6" ? 6.f : INFINITY;
    return c;
  };
  // References into params and buffers (no tensor copies: a copy of each per conv was ~1.5% of
  // the student's batch-1 pass).
  static const Tensor kNoTensor;
  auto conv_bn = [&](const Node& conv, const Node& bn) {
    const Var& bias = P(conv.name, "bias");
    return F::ConvBn{P(conv.name, "weight").value(),
                     bias.defined() ? bias.value() : kNoTensor,
                     conv.attrs["stride"],
                     conv.attrs["padding"],
                     conv.attrs["groups"],
                     P(bn.name, "weight").value(),
                     P(bn.name, "bias").value(),
                     buffers.at(bn.name + ".running_mean"),
                     buffers.at(bn.name + ".running_var"),
                     bn.attrs["eps"].get<float>()};
  };
  for (size_t idx = 0; idx < graph.nodes.size(); ++idx) {
    const Node& n = graph.nodes[idx];
    LayerScope scope(n.name);
    if (auto c = fuse && n.op == "conv2d" ? conv_chain(idx) : std::nullopt) {
      // A block's first chain whose result only the next chain's convolution reads: the two as
      // one op, which sends the first one's output straight into the second's padded copy where
      // it can (one image on a team, or a batch with both on Winograd) and runs the two ops one
      // after the other otherwise. Only dense convolutions can take those paths.
      std::optional<ConvChain> c2;
      if (c->act && idx + c->length < graph.nodes.size()) {
        const Node& n2 = graph.nodes[idx + c->length];
        if (n2.op == "conv2d" && n.attrs["groups"] == 1 && n2.attrs["groups"] == 1 && private_to(*c->act, n2))
          c2 = conv_chain(idx + c->length);
      }
      const Node& last = c2 ? *c2->last : *c->last;
      Tensor y;
      if (c2) {
        y = F::conv2d_bn_pair_inference(v.at(n.inputs[0]).value(), conv_bn(n, *c->bn), c->lo, c->hi,
                                        conv_bn(graph.nodes[idx + c->length], *c2->bn),
                                        c2->residual ? v.at(*c2->residual).value() : Tensor(), c2->lo, c2->hi);
      } else {
        y = F::conv2d_bn_act_inference(v.at(n.inputs[0]).value(), conv_bn(n, *c->bn),
                                       c->residual ? v.at(*c->residual).value() : Tensor(), c->lo, c->hi);
      }
      Var out = hooked(last.name, Var(y));
      if (taps && taps->count(last.name)) (*taps)[last.name] = out;
      v[last.name] = out;
      idx += c->length + (c2 ? c2->length : 0) - 1;
      continue;
    }
    // add -> relu | relu6 (a residual block's end) at inference: one pass instead of two.
    if (fuse && n.op == "add" && idx + 1 < graph.nodes.size() &&
        (graph.nodes[idx + 1].op == "relu" || graph.nodes[idx + 1].op == "relu6") &&
        private_to(n, graph.nodes[idx + 1])) {
      const Node& act = graph.nodes[idx + 1];
      Tensor y = F::add_act_inference(v.at(n.inputs[0]).value(), v.at(n.inputs[1]).value(), 0.f,
                                      act.op == "relu6" ? 6.f : INFINITY);
      Var out = hooked(act.name, Var(y));
      if (taps && taps->count(act.name)) (*taps)[act.name] = out;
      v[act.name] = out;
      ++idx;
      continue;
    }
    // batchnorm2d -> relu | relu6 whose BN output nobody else reads: one op (the activation
    // clamped in the BN's pass, its gradient masked inside the BN's backward).
    if (fuse_bn_act && n.op == "batchnorm2d" && idx + 1 < graph.nodes.size() &&
        (graph.nodes[idx + 1].op == "relu" || graph.nodes[idx + 1].op == "relu6") &&
        private_to(n, graph.nodes[idx + 1])) {
      const Node& act = graph.nodes[idx + 1];
      Var y = F::batch_norm2d(v.at(n.inputs[0]), P(n.name, "weight"), P(n.name, "bias"),
                              buffers.at(n.name + ".running_mean"), buffers.at(n.name + ".running_var"), training,
                              n.attrs["momentum"].get<float>(), n.attrs["eps"].get<float>(), 0.f,
                              act.op == "relu6" ? 6.f : INFINITY);
      y = hooked(act.name, y);
      if (taps && taps->count(act.name)) (*taps)[act.name] = y;
      v[act.name] = std::move(y);
      ++idx;
      continue;
    }
    const Var& a = v.at(n.inputs[0]);
    const auto& at = n.attrs;
    Var y;
    if (n.op == "conv2d")
      y = F::conv2d(a, P(n.name, "weight"), P(n.name, "bias"), at["stride"], at["padding"], at["groups"]);
    else if (n.op == "batchnorm2d")
      y = F::batch_norm2d(a, P(n.name, "weight"), P(n.name, "bias"), buffers.at(n.name + ".running_mean"),
                          buffers.at(n.name + ".running_var"), training, at["momentum"].get<float>(),
                          at["eps"].get<float>());
    else if (n.op == "linear")
      y = F::linear(a, P(n.name, "weight"), P(n.name, "bias"));
    else if (n.op == "relu")
      y = F::relu(a);
    else if (n.op == "relu6")
      y = F::relu6(a);
    else if (n.op == "maxpool2d")
      y = F::max_pool2d(a, at["kernel"], at["stride"], at["padding"]);
    else if (n.op == "avgpool2d")
      y = F::avg_pool2d(a, at["kernel"], at["stride"], at["padding"]);
    else if (n.op == "global_avgpool")
      y = F::global_avg_pool(a);
    else if (n.op == "flatten")
      y = F::flatten(a);
    else if (n.op == "add")
      y = F::add(a, v.at(n.inputs[1]));
    else if (n.op == "dropout") {
      KD_CHECK(!training || dropout_rng, "model: node '", n.name, "' (dropout) needs an rng in training");
      Rng none;
      y = F::dropout(a, at["p"].get<float>(), training, dropout_rng ? *dropout_rng : none);
    } else if (n.op == "softmax")
      y = F::softmax(a);
    else if (n.op == "log_softmax")
      y = F::log_softmax(a);
    else
      fail("model: node '", n.name, "' has unknown op '", n.op, "'");
    y = hooked(n.name, y);
    if (taps && taps->count(n.name)) (*taps)[n.name] = y;
    v[n.name] = std::move(y);
  }
  return v.at(graph.output);
}

int64_t Model::num_params() const {
  int64_t n = 0;
  for (auto& [k, p] : params) n += p.value().numel();
  return n;
}

void Model::zero_grad() {
  for (auto& [k, p] : params) p.zero_grad();
}

std::map<std::string, Tensor> Model::state() const {
  std::map<std::string, Tensor> s = buffers;
  for (auto& [k, p] : params) s[k] = p.value();
  return s;
}

void Model::load_state(const std::map<std::string, Tensor>& s, const std::string& what) {
  auto copy = [&](const std::string& name, Tensor& dst) {
    auto it = s.find(name);
    KD_CHECK(it != s.end(), what, ": missing tensor '", name, "'");
    KD_CHECK(it->second.dtype() == DType::f32 && it->second.shape() == dst.shape(), what, ": tensor '", name, "' is ",
             dtype_name(it->second.dtype()), " ", shape_str(it->second.shape()), ", the model expects f32 ",
             shape_str(dst.shape()));
    Tensor src = it->second.contiguous();
    std::memcpy(dst.f32(), src.f32(), dst.numel() * 4);
  };
  for (auto& [k, p] : params) copy(k, p.value());
  for (auto& [k, b] : buffers) copy(k, b);
  for (auto& [k, t] : s)
    KD_CHECK(params.count(k) || buffers.count(k), what, ": tensor '", k, "' is not a parameter of the model");
}

}  // namespace kd
