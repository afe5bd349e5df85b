#include "prune/groups.h"

#include <map>
#include <numeric>

#include "core/error.h"

namespace kd::prune {

namespace {

struct Space {
  std::vector<GroupMember> members;
  std::vector<std::string> nodes;
  int64_t channels = 0;
  bool prunable = true;
  std::string why_not;
};

class Spaces {
 public:
  int make(int64_t channels) {
    parent_.push_back(int(parent_.size()));
    spaces_.push_back({});
    spaces_.back().channels = channels;
    return parent_.back();
  }
  int find(int s) { return parent_[size_t(s)] == s ? s : parent_[size_t(s)] = find(parent_[size_t(s)]); }
  Space& at(int s) { return spaces_[size_t(find(s))]; }
  void merge(int a, int b, const std::string& where) {
    a = find(a), b = find(b);
    if (a == b) return;
    Space &sa = spaces_[size_t(a)], &sb = spaces_[size_t(b)];
    KD_CHECK(sa.channels == sb.channels, "prune: node '", where, "' adds values of ", sa.channels, " and ",
             sb.channels, " channels");
    sa.members.insert(sa.members.end(), sb.members.begin(), sb.members.end());
    sa.nodes.insert(sa.nodes.end(), sb.nodes.begin(), sb.nodes.end());
    if (!sb.prunable) sa.prunable = false, sa.why_not = sb.why_not;
    parent_[size_t(b)] = a;
  }
  void forbid(int s, const std::string& why) {
    Space& sp = at(s);
    if (sp.prunable) sp.prunable = false, sp.why_not = why;
  }
  std::vector<int> roots() {
    std::vector<int> r;
    for (size_t i = 0; i < parent_.size(); ++i)
      if (find(int(i)) == int(i)) r.push_back(int(i));
    return r;
  }

 private:
  std::vector<int> parent_;
  std::vector<Space> spaces_;
};

}  // namespace

std::vector<ChannelGroup> channel_groups(const Model& m) {
  const Graph& g = m.graph;
  const std::vector<NodeInfo> info = g.validate();
  Spaces sp;
  struct Value {
    int space;
    int64_t block;
  };
  std::map<std::string, Value> val;
  val["input"] = {sp.make(g.input_shape[0]), 1};
  sp.forbid(val["input"].space, "it holds the model's input channels");
  auto has = [&](const std::string& p) { return m.params.count(p) > 0 || m.buffers.count(p) > 0; };
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& n = g.nodes[i];
    const Value in = val.at(n.inputs[0]);
    const int64_t out_c = info[i].out_shape[0];
    auto produce = [&](int s, const std::vector<const char*>& names) {
      for (const char* p : names)
        if (has(n.name + "." + p)) sp.at(s).members.push_back({n.name + "." + p, 0, 1, true});
      sp.at(s).nodes.push_back(n.name);
    };
    if (n.op == "conv2d") {
      const int64_t groups = n.attrs["groups"], ci = n.attrs["in"];
      if (groups == 1) {
        sp.at(in.space).members.push_back({n.name + ".weight", 1, 1, false});
        const int s = sp.make(out_c);
        produce(s, {"weight", "bias"});
        val[n.name] = {s, 1};
      } else if (groups == ci && out_c == ci) {  // depthwise: same channels in and out
        produce(in.space, {"weight", "bias"});
        val[n.name] = in;
      } else {
        sp.forbid(in.space, "node '" + n.name + "' is a grouped (not depthwise) conv");
        const int s = sp.make(out_c);
        produce(s, {"weight", "bias"});
        sp.forbid(s, "node '" + n.name + "' is a grouped (not depthwise) conv");
        val[n.name] = {s, 1};
      }
    } else if (n.op == "batchnorm2d") {
      produce(in.space, {"weight", "bias", "running_mean", "running_var"});
      val[n.name] = in;
    } else if (n.op == "linear") {
      sp.at(in.space).members.push_back({n.name + ".weight", 1, in.block, false});
      const int s = sp.make(out_c);
      produce(s, {"weight", "bias"});
      val[n.name] = {s, 1};
    } else if (n.op == "add") {
      const Value b = val.at(n.inputs[1]);
      sp.merge(in.space, b.space, n.name);
      val[n.name] = {sp.find(in.space), in.block};
      sp.at(in.space).nodes.push_back(n.name);
    } else if (n.op == "flatten") {
      Shape src = g.input_shape;
      for (size_t j = 0; j < i; ++j)
        if (g.nodes[j].name == n.inputs[0]) src = info[j].out_shape;
      const int64_t hw = src.size() == 3 ? src[1] * src[2] : 1;
      val[n.name] = {in.space, in.block * hw};
    } else if (n.op == "relu" || n.op == "relu6" || n.op == "maxpool2d" || n.op == "avgpool2d" ||
               n.op == "global_avgpool" || n.op == "dropout" || n.op == "softmax" || n.op == "log_softmax") {
      val[n.name] = in;
    } else {
      fail("prune: node '", n.name, "': op '", n.op, "' is not known to the dependency analysis");
    }
  }
  sp.forbid(val.at(g.output).space, "it holds the model's outputs");
  std::vector<ChannelGroup> out;
  for (int r : sp.roots()) {
    Space& s = sp.at(r);
    if (s.members.empty()) continue;  // the input's own space with nothing reading it
    ChannelGroup cg;
    cg.id = int(out.size());
    cg.channels = s.channels;
    cg.members = s.members;
    cg.nodes = s.nodes;
    cg.prunable = s.prunable;
    cg.why_not = s.why_not;
    out.push_back(std::move(cg));
  }
  return out;
}

}  // namespace kd::prune
