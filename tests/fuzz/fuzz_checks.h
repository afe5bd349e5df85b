// The checks behind the libFuzzer targets of tests/fuzz/ (fuzz_<name>.cpp) and behind
// tests/test_fuzz_regressions.cpp, which replays the committed corpora and every saved finding
// in the normal build. Each check_<name>(bytes) feeds one input to a loader and either returns
// (accepted, and the invariant holds), throws kd::Error (rejected cleanly), or throws
// kd::fuzz::Violation (accepted, but the invariant is broken). Violation, any other exception,
// a crash, a sanitizer report, a hang or a huge allocation are all findings.
#pragma once
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "autograd/var.h"
#include "core/error.h"
#include "core/threads.h"
#include "data/idx.h"
#include "nn/builders.h"
#include "nn/graph.h"
#include "nn/model.h"
#include "nn/model_io.h"
#include "nn/safetensors.h"
#include "nn/train_config.h"

namespace kd::fuzz {

struct Violation : std::logic_error {
  using std::logic_error::logic_error;
};

// The engine's memory guards (core/tensor.cpp) refuse an allocation with a kd::Error. A loader
// must bound what it allocates by the size of its input, so an input that reaches a guard is a
// finding, not a clean rejection (scripts/fuzz.sh sets KD_MEMORY_LIMIT_MB=1024).
inline bool is_memory_refusal(const Error& e) {
  const std::string m = e.what();
  return m.rfind("out of memory: a tensor of shape", 0) == 0 ||
         (m.rfind("tensor: shape ", 0) == 0 && m.ends_with("needs more than 1 TiB"));
}

template <typename... Parts>
void expect(bool cond, const Parts&... parts) {
  if (cond) return;
  std::ostringstream os;
  os << "fuzz invariant broken: ";
  (os << ... << parts);
  throw Violation(os.str());
}

// Runs fn, turning a kd::Error into a Violation: for steps that must not fail once the input
// has been accepted.
template <typename Fn>
auto must(const char* step, Fn&& fn) {
  try {
    return fn();
  } catch (const Error& e) {
    throw Violation(std::string("fuzz invariant broken: ") + step + " failed on accepted input: " + e.what());
  }
}

// The elements of a tensor of element type T, as bytes.
template <typename T>
std::string bytes_of(const Tensor& t) {
  const Tensor c = t.contiguous();
  return c.numel() ? std::string(reinterpret_cast<const char*>(c.data<T>()), static_cast<size_t>(c.numel()) * sizeof(T))
                   : std::string();
}

// safetensors: what parse_safetensors accepts survives serialize -> parse unchanged, and
// serializing is then a fixed point. A kd model file among them (metadata format = kd-model-1)
// loads as a model, or is rejected with a kd::Error.
inline void check_safetensors(const std::string& bytes) {
  const TensorFile f = parse_safetensors(bytes, "fuzz");
  const std::string once = must("serialize_safetensors", [&] { return serialize_safetensors(f); });
  const TensorFile g = must("parse_safetensors(serialized)", [&] { return parse_safetensors(once, "fuzz"); });
  expect(g.metadata == f.metadata, "metadata changed in the round trip");
  expect(g.tensors.size() == f.tensors.size(), "tensor count changed in the round trip");
  for (const auto& [name, t] : f.tensors) {
    auto it = g.tensors.find(name);
    expect(it != g.tensors.end() && it->second.dtype() == t.dtype() && it->second.shape() == t.shape(), "tensor '",
           name, "' lost or changed dtype or shape in the round trip");
  }
  // Serialization writes every byte of every tensor, so this also compares the data.
  expect(must("serialize_safetensors", [&] { return serialize_safetensors(g); }) == once,
         "tensor data changed in the round trip, or serialization is not a fixed point");
  auto fmt = f.metadata.find("format");
  if (fmt != f.metadata.end() && fmt->second == kModelFormat) {
    const Model m = model_from_file(f, "fuzz");
    for (const auto& [name, t] : m.state()) {  // all f32: model_from_file checked them
      auto it = f.tensors.find(name);
      expect(it != f.tensors.end() && bytes_of<float>(it->second) == bytes_of<float>(t), "model tensor '", name,
             "' differs from the file");
    }
  }
}

inline std::string idx_encode(const Tensor& t) {
  std::string out;
  auto put = [&](uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<char>((v >> s) & 0xff));
  };
  put(t.dim() == 1 ? 0x801 : 0x803);
  for (int64_t d : t.shape()) put(static_cast<uint32_t>(d));
  return out + bytes_of<uint8_t>(t);
}

// IDX: parse_idx returns a u8 tensor of rank 1 (labels) or 3 (images) holding exactly the data
// of the (decompressed) input: plain input is byte-for-byte the tensor's IDX encoding.
inline void check_idx(const std::string& bytes) {
  const Tensor t = parse_idx(bytes, "fuzz");
  expect(t.dtype() == DType::u8, "idx gave dtype ", dtype_name(t.dtype()));
  expect(t.dim() == 1 || t.dim() == 3, "idx gave rank ", t.dim());
  const std::string plain = idx_encode(t);
  const bool gzip = bytes.size() >= 2 && static_cast<uint8_t>(bytes[0]) == 0x1f && static_cast<uint8_t>(bytes[1]) == 0x8b;
  if (!gzip) expect(plain == bytes, "plain idx input differs from the encoding of what was read");
  const Tensor u = must("parse_idx(encoded)", [&] { return parse_idx(plain, "fuzz"); });
  expect(u.shape() == t.shape() && bytes_of<uint8_t>(u) == bytes_of<uint8_t>(t), "idx round trip changed the tensor");
}

// Parses JSON; false for text that is not JSON (a parse error, or a number too large for a
// double, is a clean rejection: kd's readers catch json::exception around json::parse).
inline bool parse_json(const std::string& bytes, nlohmann::json& j) {
  try {
    j = nlohmann::json::parse(bytes);
    return true;
  } catch (const nlohmann::json::exception&) {
    return false;
  }
}

// Training config: from_json accepts or throws kd::Error; an accepted config's to_json() reads
// back to the same config.
inline void check_config(const std::string& bytes) {
  nlohmann::json j;
  if (!parse_json(bytes, j)) return;
  const TrainConfig c = TrainConfig::from_json(j, "fuzz");
  const nlohmann::json resolved = c.to_json();
  const TrainConfig d = must("TrainConfig::from_json(to_json())", [&] { return TrainConfig::from_json(resolved, "fuzz"); });
  expect(d.to_json() == resolved, "config changed in the to_json round trip");
}

// Graphs small enough to build and run once per fuzz input.
constexpr int64_t kRunMaxParams = 1'000'000, kRunMaxActivations = 2'000'000, kRunMaxMacs = 20'000'000;

// A graph that Graph::from_json or build_model accepted: it validates again, every input is the
// graph input or an earlier node (no dangling inputs, no cycles), names are unique, the output
// is a node, it reads back from its JSON unchanged, and its sizes are within the graph limits.
// Small ones are built with Model::create and run once (batch 1, eval, NoGrad): every node's
// output has the shape validation inferred, and the parameter count matches.
inline void check_graph_accepted(const Graph& g) {
  const std::vector<NodeInfo> info = must("Graph::validate", [&] { return g.validate(); });
  expect(info.size() == g.nodes.size(), "validate gave ", info.size(), " infos for ", g.nodes.size(), " nodes");
  std::set<std::string> seen{"input"};
  int64_t params = 0, activations = 0, macs = 0;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& n = g.nodes[i];
    for (const std::string& in : n.inputs) expect(seen.count(in), "node '", n.name, "' reads '", in, "' before it exists");
    expect(seen.insert(n.name).second, "duplicate node name '", n.name, "'");
    expect(!info[i].out_shape.empty(), "node '", n.name, "' has a rank-0 output");
    int64_t numel = 1;
    for (int64_t d : info[i].out_shape) {
      expect(d >= 1 && d <= kMaxGraphActivations, "node '", n.name, "' has dimension ", d);
      numel *= d;
      expect(numel <= kMaxGraphActivations, "node '", n.name, "' output ", shape_str(info[i].out_shape),
             " exceeds the activation limit");
    }
    expect(info[i].params >= 0 && info[i].macs >= 0, "node '", n.name, "' has negative size");
    params += info[i].params;
    macs += info[i].macs;
    activations += numel;
    expect(params <= kMaxGraphParams && macs <= kMaxGraphMacs, "graph sizes exceed the limits at node '", n.name, "'");
  }
  expect(g.output != "input" && seen.count(g.output), "output '", g.output, "' is not a node");
  const nlohmann::json j = g.to_json();
  const Graph h = must("Graph::from_json(to_json())", [&] { return Graph::from_json(j); });
  expect(h.to_json() == j, "graph changed in the JSON round trip");

  if (params > kRunMaxParams || activations > kRunMaxActivations || macs > kRunMaxMacs) return;
  Model m = must("Model::create", [&] { return Model::create(g, 0); });
  expect(m.num_params() == params, "model has ", m.num_params(), " parameters, validation counted ", params);
  NoGrad no_grad;
  std::map<std::string, Var> taps;
  for (const Node& n : g.nodes) taps[n.name] = Var();
  const Shape& is = g.input_shape;
  const Var x(Tensor::full({1, is[0], is[1], is[2]}, 0.5f));
  const Var y = must("Model::forward", [&] { return m.forward(x, false, nullptr, &taps); });
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    Shape want{1};
    want.insert(want.end(), info[i].out_shape.begin(), info[i].out_shape.end());
    const Var& t = taps.at(g.nodes[i].name);
    expect(t.defined() && t.shape() == want, "node '", g.nodes[i].name, "' computed ",
           t.defined() ? shape_str(t.shape()) : "nothing", ", validation inferred ", shape_str(want));
    if (g.nodes[i].name == g.output) expect(y.shape() == want, "model output has the wrong shape");
  }
}

// Graph JSON (as in a model file's metadata) through Graph::from_json, or a config's "model"
// section through build_model; whatever either accepts must pass check_graph_accepted.
inline void check_graph(const std::string& bytes) {
  nlohmann::json j;
  if (!parse_json(bytes, j)) return;
  if (j.is_object() && j.contains("model"))
    check_graph_accepted(build_model(j["model"], "fuzz"));
  else
    check_graph_accepted(Graph::from_json(j));
}

}  // namespace kd::fuzz

// Defines the libFuzzer entry points of a target running check(bytes): kd::Error is a clean
// rejection (unless a memory guard raised it); anything else escapes and libFuzzer reports it.
// One thread: one fuzz process per core, and OpenMP fan-out would only add noise.
#define KD_FUZZ_TARGET(check)                                                  \
  extern "C" int LLVMFuzzerInitialize(int*, char***) {                         \
    kd::set_threads(1);                                                        \
    return 0;                                                                  \
  }                                                                            \
  extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {    \
    try {                                                                      \
      check(std::string(reinterpret_cast<const char*>(data), size));           \
    } catch (const kd::Error& e) {                                             \
      if (kd::fuzz::is_memory_refusal(e)) throw;                               \
    }                                                                          \
    return 0;                                                                  \
  }
