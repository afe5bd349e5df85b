#include "prune/gated_inference.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/kernels/dw3x3.h"
#include "core/kernels/plane_mean.h"
#include "core/threads.h"
#include "nn/ops/eigen_map.h"

namespace kd::prune {

namespace {
void clamps_of(const Node& act, float& lo, float& hi) {
  lo = 0.f;
  hi = act.op == "relu6" ? 6.f : INFINITY;
}
std::vector<float> copy_of(const Tensor& t) {
  Tensor c = t.contiguous();
  return std::vector<float>(c.f32(), c.f32() + c.numel());
}
// A 2-D [r, c] tensor as a [c, r] row-major vector.
std::vector<float> transposed(const Tensor& t) {
  const Tensor c = t.contiguous();
  const int64_t r = c.size(0), k = c.size(1);
  std::vector<float> out(static_cast<size_t>(r * k));
  for (int64_t i = 0; i < r; ++i)
    for (int64_t j = 0; j < k; ++j) out[size_t(j * r + i)] = c.f32()[i * k + j];
  return out;
}
// Eval-mode BN as y = scale x + shift, with the preceding conv's bias (if any) folded into shift.
void fold_bn(const Model& m, const std::string& conv, const std::string& bn, std::vector<float>& scale,
             std::vector<float>& shift) {
  const Node& n = m.graph.node(bn);
  const float eps = n.attrs["eps"].get<float>();
  const auto g = copy_of(m.params.at(bn + ".weight").value()), b = copy_of(m.params.at(bn + ".bias").value());
  const auto mean = copy_of(m.buffers.at(bn + ".running_mean")), var = copy_of(m.buffers.at(bn + ".running_var"));
  auto bias = m.params.find(conv + ".bias");
  const auto cb = bias == m.params.end() ? std::vector<float>(g.size(), 0.f) : copy_of(bias->second.value());
  scale.resize(g.size());
  shift.resize(g.size());
  for (size_t c = 0; c < g.size(); ++c) {
    scale[c] = g[c] / std::sqrt(var[c] + eps);
    shift[c] = b[c] + (cb[c] - mean[c]) * scale[c];
  }
}
}  // namespace

GatedRunner::GatedRunner(const GatedModel& gm) {
  const Model& m = gm.model;
  const Graph& g = m.graph;
  const std::vector<NodeInfo> info = g.validate();
  for (const NodeInfo& i : info) dense_macs_ += i.macs;
  auto index_of = [&](const std::string& name) {
    for (size_t i = 0; i < g.nodes.size(); ++i)
      if (g.nodes[i].name == name) return i;
    fail("gated runner: no node '", name, "'");
  };
  // The prefix: every node before the first block, as an ordinary model whose output is the
  // first block's input.
  const size_t first = index_of(gm.sites[0].dw);
  if (gm.sites[0].input != "input") {
    Graph pg;
    pg.input_shape = g.input_shape;
    pg.nodes.assign(g.nodes.begin(), g.nodes.begin() + long(first));
    pg.output = gm.sites[0].input;
    for (size_t i = 0; i < first; ++i) prefix_macs_ += info[i].macs;
    prefix_ = Model::create(pg, 0);
    for (auto& [k, p] : prefix_.params) p.value() = m.params.at(k).value().clone();
    for (auto& [k, b] : prefix_.buffers) b = m.buffers.at(k).clone();
  }
  // The blocks must follow one another, and the head read the last one.
  Shape in_shape = gm.sites[0].input == "input" ? g.input_shape : info[index_of(gm.sites[0].input)].out_shape;
  for (size_t i = 0; i < gm.sites.size(); ++i) {
    const GateSite& s = gm.sites[i];
    KD_CHECK(i == 0 || s.input == gm.sites[i - 1].act, "gated runner: block '", s.dw, "' reads '", s.input,
             "', not the previous gated block's output '", gm.sites[i - 1].act,
             "' (the sparse runner needs the gated blocks in a chain)");
    Block b;
    b.cin = s.in_channels;
    b.cout = s.out_channels;
    b.stride = g.node(s.dw).attrs["stride"].get<int64_t>();
    b.h = in_shape[1];
    b.w = in_shape[2];
    b.ho = (b.h - 1) / b.stride + 1;  // kernel 3, padding 1
    b.wo = (b.w - 1) / b.stride + 1;
    clamps_of(g.node(s.dw_act), b.lo1, b.hi1);
    clamps_of(g.node(s.act), b.lo2, b.hi2);
    b.dw_w = copy_of(m.params.at(s.dw + ".weight").value());
    fold_bn(m, s.dw, s.dw_bn, b.dw_scale, b.dw_shift);
    b.dw_const.resize(size_t(b.cin));
    for (int64_t c = 0; c < b.cin; ++c) b.dw_const[c] = std::clamp(b.dw_shift[c], b.lo1, b.hi1);
    b.pw_w = copy_of(m.params.at(s.pw + ".weight").value());
    b.pw_wt = transposed(m.params.at(s.pw + ".weight").value().reshape({b.cout, b.cin}));
    fold_bn(m, s.pw, s.pw_bn, b.pw_scale, b.pw_shift);
    b.gate_wt = transposed(gm.predictors.at("gate." + s.act + ".weight").value());
    b.gate_b = copy_of(gm.predictors.at("gate." + s.act + ".bias").value());
    blocks_.push_back(std::move(b));
    in_shape = {s.out_channels, blocks_.back().ho, blocks_.back().wo};
  }
  // The head: global_avgpool -> flatten -> [dropout] -> linear (the graph's output).
  size_t i = index_of(gm.sites.back().act) + 1;
  auto expect = [&](const char* op) {
    KD_CHECK(i < g.nodes.size() && g.nodes[i].op == op && g.nodes[i].inputs[0] == g.nodes[i - 1].name,
             "gated runner: after the last gated block the graph must be global_avgpool, flatten, [dropout,] "
             "linear (its output); node ",
             i < g.nodes.size() ? "'" + g.nodes[i].name + "' is " + g.nodes[i].op : std::string("missing"));
    return g.nodes[i++];
  };
  expect("global_avgpool");
  expect("flatten");
  if (i < g.nodes.size() && g.nodes[i].op == "dropout") expect("dropout");
  const Node& fc = expect("linear");
  KD_CHECK(i == g.nodes.size() && g.output == fc.name, "gated runner: the linear layer '", fc.name,
           "' must be the graph's last node and output");
  head_.w = copy_of(m.params.at(fc.name + ".weight").value());
  head_.classes = fc.attrs["out"].get<int64_t>();
  head_.channels = fc.attrs["in"].get<int64_t>();
  auto fb = m.params.find(fc.name + ".bias");
  head_.b = fb == m.params.end() ? std::vector<float>(size_t(head_.classes), 0.f) : copy_of(fb->second.value());
}

namespace {
// Per-thread buffers, kept across images and calls (no allocation per image).
struct Scratch {
  std::vector<int64_t> active;
  std::vector<float> cur, z, out, wsub, gap, sal, corr;
  std::vector<char> is_active;
};

// One image's pass through the gated blocks and the head. x: [C0, H, W] of the prefix output.
int64_t run_image(const std::vector<GatedRunner::Block>& blocks, const GatedRunner::Head& head, const float* x,
                  double keep, float* logits) {
  thread_local Scratch t;
  int64_t macs = 0;
  t.active.resize(size_t(blocks[0].cin));
  std::iota(t.active.begin(), t.active.end(), 0);
  t.cur.assign(x, x + blocks[0].cin * blocks[0].h * blocks[0].w);
  for (const GatedRunner::Block& b : blocks) {
    const int64_t na = int64_t(t.active.size()), hw = b.h * b.w, ohw = b.ho * b.wo;
    // Saliencies from the pooled input (inactive channels pool to 0): s = relu(b + sum_a Wt[a] g_a),
    // with the predictor's weight stored transposed so that the update runs along C_out.
    t.sal.assign(b.gate_b.begin(), b.gate_b.end());
    float* sal = t.sal.data();
    for (int64_t a = 0; a < na; ++a) {
      const float g = kernels::plane_mean(&t.cur[size_t(a * hw)], hw);
      const float* wt = &b.gate_wt[size_t(t.active[size_t(a)] * b.cout)];
      for (int64_t o = 0; o < b.cout; ++o) sal[o] += wt[o] * g;
    }
    for (int64_t o = 0; o < b.cout; ++o) sal[o] = sal[o] < 0.f ? 0.f : sal[o];
    macs += b.cout * na;
    const std::vector<int64_t> kept = top_k_indices(sal, b.cout, gate_k(b.cout, keep));
    const int64_t nk = int64_t(kept.size());
    // Depthwise 3x3 (the dispatched kernel of core/kernels/dw3x3.h) + BN + act, active channels.
    const kernels::ConvGeom geom{1, b.h, b.w, 3, 3, b.stride, 1};
    t.z.resize(size_t(na * ohw));
    for (int64_t a = 0; a < na; ++a) {
      const int64_t c = t.active[size_t(a)];
      float* zc = &t.z[size_t(a * ohw)];
      kernels::dw3x3_forward(&t.cur[size_t(a * hw)], &b.dw_w[size_t(c * 9)], geom, zc);
      const float sc = b.dw_scale[size_t(c)], sh = b.dw_shift[size_t(c)], lo = b.lo1, hi = b.hi1;
      for (int64_t p = 0; p < ohw; ++p) zc[p] = std::clamp(sc * zc[p] + sh, lo, hi);
    }
    macs += 9 * na * ohw + na * ohw;  // taps, then BN's multiply-add (counted as the graph counts BN)
    // The inactive inputs' constants, through the transposed pointwise weight: corr[o] for all o.
    t.is_active.assign(size_t(b.cin), 0);
    for (int64_t c : t.active) t.is_active[size_t(c)] = 1;
    t.corr.assign(size_t(b.cout), 0.f);
    float* corr = t.corr.data();
    for (int64_t c = 0; c < b.cin; ++c)
      if (!t.is_active[size_t(c)] && b.dw_const[size_t(c)] != 0.f) {  // a ReLU often makes it 0
        const float k = b.dw_const[size_t(c)], *wt = &b.pw_wt[size_t(c * b.cout)];
        for (int64_t o = 0; o < b.cout; ++o) corr[o] += wt[o] * k;
        macs += b.cout;
      }
    // Pointwise on the kept output channels: their rows of W at the active columns, one GEMM.
    t.wsub.resize(size_t(nk * na));
    for (int64_t r = 0; r < nk; ++r) {
      const float* wr = &b.pw_w[size_t(kept[size_t(r)] * b.cin)];
      for (int64_t a = 0; a < na; ++a) t.wsub[size_t(r * na + a)] = wr[t.active[size_t(a)]];
    }
    t.out.resize(size_t(nk * ohw));
    if (nk > 0 && na > 0)
      MatMap(t.out.data(), nk, ohw).noalias() = CMatMap(t.wsub.data(), nk, na) * CMatMap(t.z.data(), na, ohw);
    else
      std::fill(t.out.begin(), t.out.end(), 0.f);
    for (int64_t r = 0; r < nk; ++r) {
      const int64_t o = kept[size_t(r)];
      const float sc = b.pw_scale[size_t(o)], sh = b.pw_shift[size_t(o)], s = sal[o], cr = corr[o];
      const float lo = b.lo2, hi = b.hi2;
      float* y = &t.out[size_t(r * ohw)];
      for (int64_t p = 0; p < ohw; ++p) y[p] = std::clamp(sc * (y[p] + cr) + sh, lo, hi) * s;
    }
    macs += nk * na * ohw + 2 * nk * ohw;  // GEMM, then BN and the gate's scale
    t.active = kept;
    std::swap(t.cur, t.out);
  }
  // Head: pool the kept channels of the last block, then the linear layer on their columns.
  const GatedRunner::Block& last = blocks.back();
  const int64_t ohw = last.ho * last.wo;
  for (int64_t k = 0; k < head.classes; ++k) logits[k] = head.b[size_t(k)];
  for (size_t a = 0; a < t.active.size(); ++a) {
    const float g = kernels::plane_mean(&t.cur[a * size_t(ohw)], ohw);
    for (int64_t k = 0; k < head.classes; ++k) logits[k] += head.w[size_t(k * head.channels + t.active[a])] * g;
  }
  macs += head.classes * int64_t(t.active.size());
  return macs;
}
}  // namespace

Tensor GatedRunner::run(const Tensor& x, double keep, std::vector<int64_t>* macs) const {
  gate_k(1, keep);  // validates keep
  NoGrad ng;
  Tensor h = prefix_.graph.nodes.empty() ? x.contiguous() : prefix_.forward(Var(x), false).value().contiguous();
  const Block& b0 = blocks_[0];
  KD_CHECK(h.dim() == 4 && h.size(1) == b0.cin && h.size(2) == b0.h && h.size(3) == b0.w, "gated runner: input ",
           shape_str(x.shape()), " does not fit the model");
  const int64_t n = h.size(0), per = b0.cin * b0.h * b0.w;
  Tensor logits = Tensor::empty({n, head_.classes});
  if (macs) macs->assign(size_t(n), 0);
  parallel_for(n, n > 1, [&](int64_t i) {
    const int64_t m = run_image(blocks_, head_, h.f32() + i * per, keep, logits.f32() + i * head_.classes);
    if (macs) (*macs)[size_t(i)] = prefix_macs_ + m;
  });
  return logits;
}

}  // namespace kd::prune
