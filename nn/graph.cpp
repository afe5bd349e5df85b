#include "nn/graph.h"

#include <algorithm>
#include <map>
#include <set>

#include "nn/config_check.h"

namespace kd {

using nlohmann::json;

const Node& Graph::node(const std::string& name) const {
  for (const Node& n : nodes)
    if (n.name == name) return n;
  fail("graph: no node named '", name, "'");
}

namespace {

// Attribute readers: the message names the node, the attribute and what is allowed.
int64_t int_attr(const Node& n, const char* key, int64_t lo, int64_t hi = int64_t(1) << 20) {
  auto it = n.attrs.find(key);
  KD_CHECK(it != n.attrs.end(), "graph: node '", n.name, "' (", n.op, ") is missing attribute '", key, "'");
  KD_CHECK(it->is_number_integer(), "graph: node '", n.name, "' attribute '", key, "' must be an integer");
  int64_t v = it->get<int64_t>();
  KD_CHECK(v >= lo && v <= hi, "graph: node '", n.name, "' attribute '", key, "' = ", v, ", allowed ", lo, "..", hi);
  return v;
}
double float_attr(const Node& n, const char* key, double lo, double hi) {
  auto it = n.attrs.find(key);
  KD_CHECK(it != n.attrs.end() && it->is_number(), "graph: node '", n.name, "' (", n.op,
           ") needs a numeric attribute '", key, "'");
  double v = it->get<double>();
  KD_CHECK(v >= lo && v <= hi, "graph: node '", n.name, "' attribute '", key, "' = ", v, ", allowed ", lo, "..", hi);
  return v;
}
bool bool_attr(const Node& n, const char* key) {
  auto it = n.attrs.find(key);
  KD_CHECK(it != n.attrs.end() && it->is_boolean(), "graph: node '", n.name, "' (", n.op,
           ") needs a boolean attribute '", key, "'");
  return it->get<bool>();
}

const std::map<std::string, size_t> kArity = {
    {"conv2d", 1},  {"batchnorm2d", 1},    {"linear", 1},  {"relu", 1},        {"relu6", 1},     {"flatten", 1},
    {"maxpool2d", 1}, {"avgpool2d", 1},    {"dropout", 1}, {"global_avgpool", 1}, {"softmax", 1}, {"log_softmax", 1},
    {"add", 2}};

// The product of non-negative sizes, saturated at kSaturated so that it cannot overflow before
// it is checked against the limits.
constexpr int64_t kSaturated = int64_t(1) << 62;
int64_t product(const std::vector<int64_t>& factors) {
  int64_t p = 1;
  for (int64_t f : factors) {
    if (f != 0 && p > kSaturated / f) return kSaturated;
    p *= f;
  }
  return p;
}

std::string known_ops() {
  std::string s;
  for (auto& [k, v] : kArity) s += (s.empty() ? "" : ", ") + k;
  return s;
}

}  // namespace

std::vector<NodeInfo> Graph::validate() const {
  KD_CHECK(input_shape.size() == 3, "graph: input_shape must be [C,H,W], got ", shape_str(input_shape));
  for (int64_t d : input_shape)
    KD_CHECK(d >= 1 && d <= 4096, "graph: input_shape ", shape_str(input_shape), " has a dimension outside 1..4096");
  KD_CHECK(!nodes.empty(), "graph: no nodes");
  KD_CHECK(nodes.size() <= 100000, "graph: ", nodes.size(), " nodes is more than the 100000 allowed");
  KD_CHECK(shape_numel(input_shape) <= kMaxGraphActivations, "graph: input_shape ", shape_str(input_shape),
           " has more than ", kMaxGraphActivations, " elements");
  std::map<std::string, Shape> shape_of{{"input", input_shape}};
  std::vector<NodeInfo> info;
  int64_t total_params = 0, total_macs = 0;
  for (const Node& n : nodes) {
    KD_CHECK(!n.name.empty() && n.name != "input", "graph: invalid node name '", n.name, "'");
    KD_CHECK(!shape_of.count(n.name), "graph: duplicate node name '", n.name, "'");
    auto ar = kArity.find(n.op);
    KD_CHECK(ar != kArity.end(), "graph: node '", n.name, "' has unknown op '", n.op, "' (known: ", known_ops(), ")");
    KD_CHECK(n.inputs.size() == ar->second, "graph: node '", n.name, "' (", n.op, ") takes ", ar->second,
             " input(s), has ", n.inputs.size());
    std::vector<Shape> in;
    for (const std::string& i : n.inputs) {
      auto it = shape_of.find(i);
      KD_CHECK(it != shape_of.end(), "graph: node '", n.name, "' reads '", i,
               "', which is not the input or an earlier node");
      in.push_back(it->second);
    }
    const Shape& x = in[0];
    NodeInfo ni;
    auto need_chw = [&] {
      KD_CHECK(x.size() == 3, "graph: node '", n.name, "' (", n.op, ") needs an image input [C,H,W], got ",
               shape_str(x));
    };
    if (n.op == "conv2d") {
      need_chw();
      int64_t ci = int_attr(n, "in", 1), co = int_attr(n, "out", 1), k = int_attr(n, "kernel", 1, 64),
              s = int_attr(n, "stride", 1, 64), p = int_attr(n, "padding", 0, 64), g = int_attr(n, "groups", 1);
      bool b = bool_attr(n, "bias");
      KD_CHECK(ci == x[0], "graph: node '", n.name, "' expects ", ci, " input channels, its input has ", x[0]);
      KD_CHECK(ci % g == 0 && co % g == 0, "graph: node '", n.name, "' groups=", g, " must divide in=", ci,
               " and out=", co);
      KD_CHECK(x[1] + 2 * p >= k && x[2] + 2 * p >= k, "graph: node '", n.name, "' kernel ", k,
               " larger than padded input ", shape_str(x));
      int64_t ho = (x[1] + 2 * p - k) / s + 1, wo = (x[2] + 2 * p - k) / s + 1;
      ni.out_shape = {co, ho, wo};
      ni.params = product({co, ci / g, k, k}) + (b ? co : 0);
      ni.macs = product({co, ho, wo, ci / g, k, k});
    } else if (n.op == "batchnorm2d") {
      need_chw();
      int64_t c = int_attr(n, "channels", 1);
      float_attr(n, "eps", 0, 1);
      float_attr(n, "momentum", 0, 1);
      KD_CHECK(c == x[0], "graph: node '", n.name, "' has ", c, " channels, its input has ", x[0]);
      ni.out_shape = x;
      ni.params = 2 * c;
      ni.macs = product({x[0], x[1], x[2]});
    } else if (n.op == "linear") {
      int64_t fi = int_attr(n, "in", 1), fo = int_attr(n, "out", 1);
      bool b = bool_attr(n, "bias");
      KD_CHECK(x.size() == 1 && x[0] == fi, "graph: node '", n.name, "' (linear) expects [", fi, "] features, got ",
               shape_str(x));
      ni.out_shape = {fo};
      ni.params = product({fo, fi}) + (b ? fo : 0);
      ni.macs = product({fo, fi});
    } else if (n.op == "maxpool2d" || n.op == "avgpool2d") {
      need_chw();
      int64_t k = int_attr(n, "kernel", 1, 64), s = int_attr(n, "stride", 1, 64), p = int_attr(n, "padding", 0, 32);
      KD_CHECK(2 * p <= k && x[1] + 2 * p >= k && x[2] + 2 * p >= k, "graph: node '", n.name, "' kernel ", k,
               " padding ", p, " does not fit input ", shape_str(x));
      ni.out_shape = {x[0], (x[1] + 2 * p - k) / s + 1, (x[2] + 2 * p - k) / s + 1};
    } else if (n.op == "global_avgpool") {
      need_chw();
      ni.out_shape = {x[0], 1, 1};
    } else if (n.op == "flatten") {
      ni.out_shape = {shape_numel(x)};
    } else if (n.op == "dropout") {
      float_attr(n, "p", 0, 0.999);
      ni.out_shape = x;
    } else if (n.op == "softmax" || n.op == "log_softmax") {
      KD_CHECK(x.size() == 1, "graph: node '", n.name, "' (", n.op, ") needs a feature vector, got ", shape_str(x));
      ni.out_shape = x;
    } else if (n.op == "add") {
      KD_CHECK(in[0] == in[1], "graph: node '", n.name, "' adds ", shape_str(in[0]), " and ", shape_str(in[1]));
      ni.out_shape = x;
    } else {  // relu, relu6
      ni.out_shape = x;
    }
    for (int64_t d : ni.out_shape)
      KD_CHECK(d >= 1, "graph: node '", n.name, "' produces an empty shape ", shape_str(ni.out_shape));
    // Absurd sizes: a corrupt or hostile graph must not make kd allocate terabytes or run for days.
    KD_CHECK(product(ni.out_shape) <= kMaxGraphActivations, "graph: node '", n.name, "' (", n.op, ") output ",
             shape_str(ni.out_shape), " has more than ", kMaxGraphActivations, " elements per image");
    total_params += ni.params;
    total_macs += ni.macs;
    KD_CHECK(total_params <= kMaxGraphParams, "graph: node '", n.name, "' (", n.op, ") brings the parameters to ",
             total_params, ", more than the ", kMaxGraphParams, " allowed");
    KD_CHECK(total_macs <= kMaxGraphMacs, "graph: node '", n.name, "' (", n.op,
             ") brings the multiply-accumulates per image to ", total_macs, ", more than the ", kMaxGraphMacs, " allowed");
    shape_of[n.name] = ni.out_shape;
    info.push_back(ni);
  }
  KD_CHECK(shape_of.count(output) && output != "input", "graph: output '", output, "' is not a node");
  return info;
}

std::vector<ParamSpec> Graph::param_specs() const {
  std::vector<ParamSpec> out;
  for (const Node& n : nodes) {
    if (n.op == "conv2d") {
      int64_t ci = n.attrs["in"], co = n.attrs["out"], k = n.attrs["kernel"], g = n.attrs["groups"];
      out.push_back({n.name + ".weight", {co, ci / g, k, k}, true});
      if (n.attrs["bias"].get<bool>()) out.push_back({n.name + ".bias", {co}, true});
    } else if (n.op == "batchnorm2d") {
      int64_t c = n.attrs["channels"];
      out.push_back({n.name + ".weight", {c}, true});
      out.push_back({n.name + ".bias", {c}, true});
      out.push_back({n.name + ".running_mean", {c}, false});
      out.push_back({n.name + ".running_var", {c}, false});
    } else if (n.op == "linear") {
      int64_t fi = n.attrs["in"], fo = n.attrs["out"];
      out.push_back({n.name + ".weight", {fo, fi}, true});
      if (n.attrs["bias"].get<bool>()) out.push_back({n.name + ".bias", {fo}, true});
    }
  }
  return out;
}

json Graph::to_json() const {
  json j;
  j["input_shape"] = input_shape;
  j["output"] = output;
  j["nodes"] = json::array();
  for (const Node& n : nodes) j["nodes"].push_back({{"name", n.name}, {"op", n.op}, {"inputs", n.inputs}, {"attrs", n.attrs}});
  return j;
}

Graph Graph::from_json(const json& j) {
  KD_CHECK(j.is_object(), "graph: JSON must be an object with input_shape, nodes, output");
  KD_CHECK(json_depth(j) <= kMaxJsonDepth, "graph: JSON nested more than ", kMaxJsonDepth, " levels deep");
  for (auto& [k, v] : j.items())
    KD_CHECK(k == "input_shape" || k == "nodes" || k == "output", "graph: unknown key '", k,
             "' (allowed: input_shape, nodes, output)");
  Graph g;
  try {
    const json& is = j.at("input_shape");
    KD_CHECK(is.is_array() && std::all_of(is.begin(), is.end(), [](const json& d) { return d.is_number_integer(); }),
             "graph: input_shape must be an array of integers [C,H,W], got ", is.dump());
    g.input_shape = is.get<Shape>();
    g.output = j.at("output").get<std::string>();
    const json& ns = j.at("nodes");
    KD_CHECK(ns.is_array(), "graph: 'nodes' must be an array");
    for (const json& n : ns) {
      KD_CHECK(n.is_object(), "graph: each node must be an object");
      Node node;
      node.name = n.at("name").get<std::string>();
      node.op = n.at("op").get<std::string>();
      node.inputs = n.at("inputs").get<std::vector<std::string>>();
      if (n.contains("attrs")) node.attrs = n.at("attrs");
      KD_CHECK(node.attrs.is_object(), "graph: node '", node.name, "' attrs must be an object");
      g.nodes.push_back(std::move(node));
    }
  } catch (const json::exception& e) {
    fail("graph: malformed JSON structure: ", e.what());
  }
  g.validate();
  return g;
}

}  // namespace kd
