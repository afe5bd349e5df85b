#include "prune/plan.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>

#include "core/error.h"

namespace kd::prune {

Criterion criterion_of(const std::string& name) {
  if (name == "l1") return Criterion::l1;
  if (name == "l2") return Criterion::l2;
  if (name == "bn_scale") return Criterion::bn_scale;
  if (name == "taylor") return Criterion::taylor;
  throw Error("unknown pruning criterion \"" + name + "\" (allowed: l1, l2, bn_scale, taylor)");
}

const char* criterion_name(Criterion c) {
  switch (c) {
    case Criterion::l1: return "l1";
    case Criterion::l2: return "l2";
    case Criterion::bn_scale: return "bn_scale";
    case Criterion::taylor:
      return "taylor";
  }
  return "?";
}

Scope scope_of(const std::string& name) {
  if (name == "uniform") return Scope::uniform;
  if (name == "global") return Scope::global;
  throw Error("unknown pruning scope \"" + name + "\" (allowed: uniform, global)");
}

const char* scope_name(Scope s) { return s == Scope::uniform ? "uniform" : "global"; }

namespace {

const Tensor& tensor_of(const Model& m, const std::string& name) {
  auto p = m.params.find(name);
  if (p != m.params.end()) return p->second.value();
  return m.buffers.at(name);
}

bool is_weight_of(const Model& m, const std::string& param, const char* op) {
  const std::string node = param.substr(0, param.rfind('.'));
  return param.size() > 7 && param.compare(param.size() - 7, 7, ".weight") == 0 && m.graph.node(node).op == op;
}

// Indices kept along a member's dimension: each kept channel's block.
std::vector<int64_t> expand(const std::vector<int64_t>& keep, int64_t block) {
  std::vector<int64_t> r;
  for (int64_t c : keep)
    for (int64_t b = 0; b < block; ++b) r.push_back(c * block + b);
  return r;
}

Tensor gather(const Tensor& t, int dim, const std::vector<int64_t>& idx) {
  const Tensor c = t.contiguous();
  Shape s = c.shape();
  const int64_t outer = std::accumulate(s.begin(), s.begin() + dim, int64_t(1), std::multiplies<>());
  const int64_t inner = std::accumulate(s.begin() + dim + 1, s.end(), int64_t(1), std::multiplies<>());
  const int64_t n = s[size_t(dim)];
  s[size_t(dim)] = int64_t(idx.size());
  Tensor r = Tensor::empty(s);
  for (int64_t o = 0; o < outer; ++o)
    for (size_t k = 0; k < idx.size(); ++k)
      std::copy(c.f32() + (o * n + idx[k]) * inner, c.f32() + (o * n + idx[k] + 1) * inner,
                r.f32() + (o * int64_t(idx.size()) + int64_t(k)) * inner);
  return r;
}

}  // namespace

std::vector<double> channel_importance(const Model& m, const ChannelGroup& g, Criterion c) {
  KD_CHECK(c != Criterion::taylor,
           "prune: the taylor criterion is measured on data (prune/taylor.h), not read from the weights");
  std::vector<double> imp(size_t(g.channels), 0.0);
  for (const GroupMember& mem : g.members) {
    if (!mem.producer) continue;
    const bool bn = is_weight_of(m, mem.param, "batchnorm2d");
    const bool w = is_weight_of(m, mem.param, "conv2d") || is_weight_of(m, mem.param, "linear");
    if (c == Criterion::bn_scale ? !bn : !w) continue;
    const Tensor t = tensor_of(m, mem.param).contiguous();
    const int64_t per = t.numel() / g.channels;
    for (int64_t ch = 0; ch < g.channels; ++ch) {
      double s = 0;
      for (int64_t i = 0; i < per; ++i) {
        const double v = t.f32()[ch * per + i];
        s += c == Criterion::l2 ? v * v : std::fabs(v);
      }
      imp[size_t(ch)] += s;
    }
  }
  if (c == Criterion::l2)
    for (double& v : imp) v = std::sqrt(v);
  return imp;
}

namespace {

// How many channels each group keeps, before rounding: uniform, each prunable group loses
// floor(r C); global, the floor(r P) channels of lowest importance / group mean go.
std::vector<int64_t> kept_counts(const std::vector<GroupPlan>& gs, const PlanOptions& opt) {
  std::vector<int64_t> keep(gs.size());
  for (size_t i = 0; i < gs.size(); ++i) {
    const ChannelGroup& g = gs[i].group;
    keep[i] = !g.prunable ? g.channels
                          : std::max(std::min(opt.min_channels, g.channels),
                                     g.channels - int64_t(std::floor(opt.ratio * g.channels)));
  }
  if (opt.scope == Scope::uniform) return keep;
  struct Scored {
    double score;
    size_t group;
    int64_t channel;
  };
  std::vector<Scored> all;
  int64_t total = 0;
  for (size_t i = 0; i < gs.size(); ++i) {
    const ChannelGroup& g = gs[i].group;
    if (!g.prunable) continue;
    keep[i] = g.channels;
    total += g.channels;
    double mean = 0;
    for (double v : gs[i].importance) mean += v;
    mean /= double(g.channels);
    // A group whose channels all score 0 (e.g. dead ones) has nothing to tell them apart: all 0.
    for (int64_t c = 0; c < g.channels; ++c) all.push_back({mean > 0 ? gs[i].importance[size_t(c)] / mean : 0.0, i, c});
  }
  // Least important first; ties by group, then channel (deterministic).
  std::stable_sort(all.begin(), all.end(), [](const Scored& a, const Scored& b) { return a.score < b.score; });
  int64_t to_remove = int64_t(std::floor(opt.ratio * double(total)));
  for (const Scored& s : all) {
    if (to_remove == 0) break;
    const int64_t floor_c = std::min(opt.min_channels, gs[s.group].group.channels);
    if (keep[s.group] > floor_c) --keep[s.group], --to_remove;
  }
  return keep;
}

}  // namespace

Plan make_plan(const Model& m, const PlanOptions& opt, const Importance& given) {
  KD_CHECK(opt.ratio >= 0 && opt.ratio < 1, "prune: ratio ", opt.ratio, " must be in [0, 1)");
  KD_CHECK(opt.min_channels >= 1 && opt.round_to >= 1, "prune: min_channels and round_to must be at least 1");
  Plan p;
  p.options = opt;
  const std::vector<ChannelGroup> groups = channel_groups(m);
  KD_CHECK(given.empty() || given.size() == groups.size(), "prune: importance given for ", given.size(),
           " groups, the model has ", groups.size());
  KD_CHECK(!given.empty() || opt.criterion != Criterion::taylor,
           "prune: the taylor criterion needs its importance measured on data (prune/taylor.h)");
  for (size_t i = 0; i < groups.size(); ++i) {
    GroupPlan gp;
    gp.group = groups[i];
    gp.importance = given.empty() ? channel_importance(m, groups[i], opt.criterion) : given[i];
    KD_CHECK(int64_t(gp.importance.size()) == groups[i].channels, "prune: importance of group ", i, " has ",
             gp.importance.size(), " values for ", groups[i].channels, " channels");
    p.groups.push_back(std::move(gp));
  }
  const std::vector<int64_t> counts = kept_counts(p.groups, opt);
  for (size_t i = 0; i < p.groups.size(); ++i) {
    GroupPlan& gp = p.groups[i];
    const int64_t C = gp.group.channels;
    const int64_t keep_n =
        gp.group.prunable ? std::min(C, (counts[i] + opt.round_to - 1) / opt.round_to * opt.round_to) : C;
    std::vector<int64_t> order(static_cast<size_t>(C));
    std::iota(order.begin(), order.end(), 0);
    // Most important first; ties keep the lower index (deterministic).
    std::stable_sort(order.begin(), order.end(),
                     [&](int64_t a, int64_t b) { return gp.importance[size_t(a)] > gp.importance[size_t(b)]; });
    gp.keep.assign(order.begin(), order.begin() + keep_n);
    std::sort(gp.keep.begin(), gp.keep.end());
  }
  return p;
}

int64_t Plan::removed() const {
  int64_t r = 0;
  for (const GroupPlan& g : groups) r += g.group.channels - int64_t(g.keep.size());
  return r;
}

nlohmann::json Plan::to_json() const {
  nlohmann::json gs = nlohmann::json::array();
  for (const GroupPlan& g : groups) {
    std::vector<int64_t> removed;
    for (int64_t c = 0; c < g.group.channels; ++c)
      if (!std::binary_search(g.keep.begin(), g.keep.end(), c)) removed.push_back(c);
    nlohmann::json members = nlohmann::json::array();
    for (const GroupMember& mem : g.group.members)
      members.push_back({{"tensor", mem.param}, {"dim", mem.dim}, {"block", mem.block}});
    gs.push_back({{"id", g.group.id}, {"nodes", g.group.nodes}, {"channels", g.group.channels},
                  {"kept", g.keep.size()}, {"removed", removed}, {"importance", g.importance},
                  {"prunable", g.group.prunable}, {"why_not", g.group.why_not}, {"tensors", members}});
  }
  return {
      {"criterion", criterion_name(options.criterion)},
      {"scope", scope_name(options.scope)},
      {"ratio", options.ratio},
      {"min_channels", options.min_channels},
      {"round_to", options.round_to},
      {"why", options.scope == Scope::uniform
                  ? "channels ranked by importance within each dependency group; the least important removed"
                  : "channels ranked across groups by importance / their group's mean; the least important removed"},
      {"groups", gs}};
}

Model masked_model(const Model& m, const Plan& p) {
  Model r = Model::create(m.graph, 0);
  r.load_state(m.state(), "masked_model");
  for (const GroupPlan& g : p.groups)
    for (const GroupMember& mem : g.group.members) {
      if (!mem.producer || mem.param.find("running_") != std::string::npos) continue;
      Tensor& t = r.params.at(mem.param).value();
      const int64_t per = t.numel() / g.group.channels;
      for (int64_t c = 0; c < g.group.channels; ++c)
        if (!std::binary_search(g.keep.begin(), g.keep.end(), c))
          std::fill(t.f32() + c * per, t.f32() + (c + 1) * per, 0.f);
    }
  return r;
}

Model pruned_model(const Model& m, const Plan& p) {
  // Per tensor and dimension, the indices kept.
  std::map<std::string, std::map<int, std::vector<int64_t>>> cut;
  std::map<std::string, int64_t> kept_of_node;  // output channels per node whose output is in a group
  for (const GroupPlan& g : p.groups) {
    for (const GroupMember& mem : g.group.members) cut[mem.param][mem.dim] = expand(g.keep, mem.block);
    for (const std::string& n : g.group.nodes) kept_of_node[n] = int64_t(g.keep.size());
  }
  Graph ng = m.graph;
  const std::vector<NodeInfo> info = m.graph.validate();
  std::map<std::string, int64_t> channels{{"input", m.graph.input_shape[0]}};  // new channel count per value
  for (size_t i = 0; i < ng.nodes.size(); ++i) {
    Node& n = ng.nodes[i];
    const int64_t in_c = channels.at(n.inputs[0]);
    int64_t out_c = kept_of_node.count(n.name) ? kept_of_node.at(n.name) : info[i].out_shape[0];
    if (n.op == "conv2d") {
      const bool dw = n.attrs["groups"].get<int64_t>() == n.attrs["in"].get<int64_t>() &&
                      n.attrs["in"].get<int64_t>() == n.attrs["out"].get<int64_t>() && n.attrs["groups"].get<int64_t>() > 1;
      n.attrs["in"] = in_c;
      if (dw) n.attrs["groups"] = in_c, out_c = in_c;
      n.attrs["out"] = out_c;
    } else if (n.op == "batchnorm2d") {
      n.attrs["channels"] = in_c, out_c = in_c;
    } else if (n.op == "linear") {
      const auto it = cut.find(n.name + ".weight");
      n.attrs["in"] = it != cut.end() && it->second.count(1) ? int64_t(it->second.at(1).size())
                                                               : n.attrs["in"].get<int64_t>();
      n.attrs["out"] = out_c;
    } else if (n.op != "flatten") {
      out_c = in_c;
    }
    channels[n.name] = out_c;
  }
  ng.validate();
  std::map<std::string, Tensor> state;
  for (const auto& [name, t] : m.state()) {
    Tensor v = t;
    if (auto it = cut.find(name); it != cut.end())
      for (const auto& [dim, idx] : it->second)
        if (dim < v.dim()) v = gather(v, dim, idx);
    state[name] = v;
  }
  Model r = Model::create(ng, 0);
  r.load_state(state, "pruned_model");
  return r;
}

int64_t model_flops(const Model& m) {
  int64_t f = 0;
  for (const NodeInfo& i : m.graph.validate()) f += 2 * i.macs;
  return f;
}

double ratio_for_flops(const Model& m, PlanOptions opt, double target, const Importance& given) {
  const double full = double(model_flops(m));
  double lo = 0, hi = 0.95;
  for (int it = 0; it < 30; ++it) {
    opt.ratio = 0.5 * (lo + hi);
    const double f = double(model_flops(pruned_model(m, make_plan(m, opt, given)))) / full;
    (f > target ? lo : hi) = opt.ratio;
  }
  return hi;
}

}  // namespace kd::prune
