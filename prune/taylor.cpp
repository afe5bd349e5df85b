#include "prune/taylor.h"

#include <algorithm>
#include <set>

#include "core/error.h"
#include "data/normalize.h"
#include "nn/functional.h"

namespace kd::prune {

std::vector<std::vector<double>> taylor_importance(const Model& m, const std::vector<ChannelGroup>& groups,
                                                   const Dataset& data, int64_t images, int64_t batch) {
  const int64_t n = std::min(images, data.size());
  KD_CHECK(n > 0 && batch > 0, "taylor importance: needs at least one image (got ", n, ") and a batch size");
  // Convs and linears whose output a batch norm reads: the gate sits after that batch norm.
  std::set<std::string> followed_by_bn;
  for (const Node& n : m.graph.nodes)
    if (n.op == "batchnorm2d") followed_by_bn.insert(n.inputs[0]);
  Model w = Model::create(m.graph, 0);  // a copy whose gradients we may fill
  w.load_state(m.state(), "taylor_importance");
  std::vector<std::vector<double>> imp(groups.size());
  for (size_t gi = 0; gi < groups.size(); ++gi) imp[gi].assign(size_t(groups[gi].channels), 0.0);
  int64_t batches = 0;
  for (int64_t start = 0; start < n; start += batch, ++batches) {
    const int64_t end = std::min(n, start + batch);
    std::vector<int64_t> rows;
    for (int64_t i = start; i < end; ++i) rows.push_back(i);
    const std::vector<int32_t> y(data.labels.begin() + start, data.labels.begin() + end);
    w.zero_grad();
    F::cross_entropy(w.forward(Var(normalize_rows(data.images, rows)), false), y).backward();
    for (size_t gi = 0; gi < groups.size(); ++gi) {
      const ChannelGroup& g = groups[gi];
      std::vector<double> dl(size_t(g.channels), 0.0);  // sum g*w per channel, this batch
      for (const GroupMember& mem : g.members) {
        const auto p = w.params.find(mem.param);
        if (!mem.producer || p == w.params.end()) continue;  // running statistics are not parameters
        if (followed_by_bn.count(mem.param.substr(0, mem.param.rfind('.')))) continue;
        KD_CHECK(mem.dim == 0, "taylor importance: producer ", mem.param, " is sliced along dim ", mem.dim);
        const Tensor v = p->second.value().contiguous();
        const Tensor gr = p->second.grad();
        if (!gr.defined()) continue;  // a parameter the loss does not reach
        const Tensor gc = gr.contiguous();
        const int64_t per = v.numel() / g.channels;
        for (int64_t c = 0; c < g.channels; ++c) {
          double s = 0;
          for (int64_t i = 0; i < per; ++i) s += double(gc.f32()[c * per + i]) * double(v.f32()[c * per + i]);
          dl[size_t(c)] += s;
        }
      }
      for (int64_t c = 0; c < g.channels; ++c) imp[gi][size_t(c)] += dl[size_t(c)] * dl[size_t(c)];
    }
  }
  for (auto& v : imp)
    for (double& x : v) x /= double(batches);
  return imp;
}

}  // namespace kd::prune
