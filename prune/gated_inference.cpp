#include "prune/gated_inference.h"

#include <algorithm>
#include <cmath>
#include <numeric>

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
  Shape in_shape = gm.sites[0].input == "input" ? g.input_shape : info[first - 1].out_shape;
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
    fold_bn(m, s.pw, s.pw_bn, b.pw_scale, b.pw_shift);
    b.gate_w = copy_of(gm.predictors.at("gate." + s.act + ".weight").value());
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
// One image's pass through the gated blocks and the head. x: [C0, H, W] of the prefix output.
int64_t run_image(const std::vector<GatedRunner::Block>& blocks, const GatedRunner::Head& head, const float* x,
                  double keep, float* logits) {
  int64_t macs = 0;
  std::vector<int64_t> active(static_cast<size_t>(blocks[0].cin));
  std::iota(active.begin(), active.end(), 0);
  std::vector<float> cur(x, x + blocks[0].cin * blocks[0].h * blocks[0].w), z, out, pad, wsub, gap, sal;
  std::vector<char> is_active;
  for (const GatedRunner::Block& b : blocks) {
    const int64_t na = int64_t(active.size()), hw = b.h * b.w, ohw = b.ho * b.wo;
    // Saliencies from the pooled input (inactive channels pool to 0).
    gap.assign(size_t(na), 0.f);
    for (int64_t a = 0; a < na; ++a) {
      float acc = 0;
      for (int64_t p = 0; p < hw; ++p) acc += cur[size_t(a * hw + p)];
      gap[size_t(a)] = acc / float(hw);
    }
    sal.assign(size_t(b.cout), 0.f);
    for (int64_t o = 0; o < b.cout; ++o) {
      float acc = 0;
      for (int64_t a = 0; a < na; ++a) acc += b.gate_w[size_t(o * b.cin + active[size_t(a)])] * gap[size_t(a)];
      const float v = acc + b.gate_b[size_t(o)];
      sal[size_t(o)] = v < 0.f ? 0.f : v;
    }
    macs += b.cout * na;
    const std::vector<int64_t> kept = top_k_indices(sal.data(), b.cout, gate_k(b.cout, keep));
    const int64_t nk = int64_t(kept.size());
    // Depthwise 3x3 (padding 1) + BN + act on the active channels, through a zero-bordered copy.
    const int64_t pw_ = b.w + 2;
    pad.assign(size_t((b.h + 2) * pw_), 0.f);
    z.resize(size_t(na * ohw));
    for (int64_t a = 0; a < na; ++a) {
      const int64_t c = active[size_t(a)];
      for (int64_t y = 0; y < b.h; ++y)
        std::copy_n(&cur[size_t(a * hw + y * b.w)], b.w, &pad[size_t((y + 1) * pw_ + 1)]);
      const float* k = &b.dw_w[size_t(c * 9)];
      const float sc = b.dw_scale[size_t(c)], sh = b.dw_shift[size_t(c)];
      float* zc = &z[size_t(a * ohw)];
      for (int64_t oy = 0; oy < b.ho; ++oy) {
        const float* r0 = &pad[size_t(oy * b.stride * pw_)];
        const float *r1 = r0 + pw_, *r2 = r1 + pw_;
        for (int64_t ox = 0; ox < b.wo; ++ox) {
          const int64_t ix = ox * b.stride;
          const float acc = k[0] * r0[ix] + k[1] * r0[ix + 1] + k[2] * r0[ix + 2] + k[3] * r1[ix] + k[4] * r1[ix + 1] +
                            k[5] * r1[ix + 2] + k[6] * r2[ix] + k[7] * r2[ix + 1] + k[8] * r2[ix + 2];
          zc[oy * b.wo + ox] = std::clamp(sc * acc + sh, b.lo1, b.hi1);
        }
      }
    }
    macs += 9 * na * ohw + na * ohw;  // taps, then BN's multiply-add (counted as the graph counts BN)
    // Pointwise on the kept output channels; the inactive inputs' constants as a bias.
    is_active.assign(size_t(b.cin), 0);
    for (int64_t c : active) is_active[size_t(c)] = 1;
    wsub.resize(size_t(nk * na));
    std::vector<float> corr(static_cast<size_t>(nk), 0.f);
    for (int64_t r = 0; r < nk; ++r) {
      const float* wr = &b.pw_w[size_t(kept[size_t(r)] * b.cin)];
      for (int64_t a = 0; a < na; ++a) wsub[size_t(r * na + a)] = wr[active[size_t(a)]];
      float acc = 0;
      for (int64_t c = 0; c < b.cin; ++c)
        if (!is_active[size_t(c)]) acc += wr[c] * b.dw_const[size_t(c)];
      corr[size_t(r)] = acc;
    }
    macs += nk * (b.cin - na) + nk * na * ohw + 2 * nk * ohw;  // constants, GEMM, BN and the gate's scale
    out.resize(size_t(nk * ohw));
    if (nk > 0 && na > 0)
      MatMap(out.data(), nk, ohw).noalias() = CMatMap(wsub.data(), nk, na) * CMatMap(z.data(), na, ohw);
    else
      std::fill(out.begin(), out.end(), 0.f);
    for (int64_t r = 0; r < nk; ++r) {
      const int64_t o = kept[size_t(r)];
      const float sc = b.pw_scale[size_t(o)], sh = b.pw_shift[size_t(o)], s = sal[size_t(o)], cr = corr[size_t(r)];
      float* y = &out[size_t(r * ohw)];
      for (int64_t p = 0; p < ohw; ++p) y[p] = std::clamp(sc * (y[p] + cr) + sh, b.lo2, b.hi2) * s;
    }
    active = kept;
    std::swap(cur, out);
  }
  // Head: pool the kept channels of the last block, then the linear layer on their columns.
  const GatedRunner::Block& last = blocks.back();
  const int64_t ohw = last.ho * last.wo;
  for (int64_t k = 0; k < head.classes; ++k) logits[k] = head.b[size_t(k)];
  for (size_t a = 0; a < active.size(); ++a) {
    float acc = 0;
    for (int64_t p = 0; p < ohw; ++p) acc += cur[a * size_t(ohw) + size_t(p)];
    const float g = acc / float(ohw);
    for (int64_t k = 0; k < head.classes; ++k) logits[k] += head.w[size_t(k * head.channels + active[a])] * g;
  }
  macs += head.classes * int64_t(active.size());
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
