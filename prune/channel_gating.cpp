#include "prune/channel_gating.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>

#include "nn/functional.h"
#include "nn/model_io.h"
#include "nn/safetensors.h"

namespace kd::prune {

namespace {
bool is_act(const Node& n) { return n.op == "relu" || n.op == "relu6"; }
}  // namespace

std::vector<GateSite> find_gate_sites(const Graph& g) {
  std::vector<GateSite> out;
  const auto& N = g.nodes;
  for (size_t i = 0; i + 5 < N.size(); ++i) {
    const Node& dw = N[i];
    if (dw.op != "conv2d" || dw.attrs["groups"] != dw.attrs["in"] || dw.attrs["in"] != dw.attrs["out"] ||
        dw.attrs["kernel"] != 3 || dw.attrs["padding"] != 1)
      continue;
    const Node &bn1 = N[i + 1], &a1 = N[i + 2], &pw = N[i + 3], &bn2 = N[i + 4], &a2 = N[i + 5];
    auto reads = [](const Node& n, const Node& from) { return n.inputs.size() == 1 && n.inputs[0] == from.name; };
    if (bn1.op != "batchnorm2d" || !reads(bn1, dw) || !is_act(a1) || !reads(a1, bn1) || pw.op != "conv2d" ||
        !reads(pw, a1) || pw.attrs["kernel"] != 1 || pw.attrs["groups"] != 1 || pw.attrs["stride"] != 1 ||
        bn2.op != "batchnorm2d" || !reads(bn2, pw) || !is_act(a2) || !reads(a2, bn2))
      continue;
    // The block's inner values must have no reader but the next node of the block (the sparse
    // runner never forms them).
    for (size_t j = i; j < i + 5; ++j) {
      KD_CHECK(g.output != N[j].name, "channel gating: the graph's output is '", N[j].name,
               "', inside a depthwise-separable block");
      for (const Node& n : N)
        for (const std::string& in : n.inputs)
          KD_CHECK(in != N[j].name || &n == &N[j + 1], "channel gating: node '", n.name, "' reads '", N[j].name,
                   "' inside the depthwise-separable block ending at '", a2.name, "'");
    }
    out.push_back({dw.inputs[0], dw.name, bn1.name, a1.name, pw.name, bn2.name, a2.name, dw.attrs["in"].get<int64_t>(),
                   pw.attrs["out"].get<int64_t>()});
    i += 5;
  }
  KD_CHECK(!out.empty(),
           "channel gating: the graph has no depthwise-separable block (dw3x3-BN-act-pw1x1-BN-act) to "
           "gate; gating supports dsnet-like students");
  return out;
}

int64_t gate_k(int64_t channels, double keep) {
  KD_CHECK(keep > 0 && keep <= 1, "channel gating: keep must be in (0, 1], got ", keep);
  return std::clamp<int64_t>(std::llround(keep * double(channels)), 1, channels);
}

std::vector<int64_t> top_k_indices(const float* s, int64_t c, int64_t k) {
  std::vector<int64_t> idx(static_cast<size_t>(c));
  std::iota(idx.begin(), idx.end(), 0);
  k = std::min(k, c);
  // Larger saliency first; equal ones by index, so that every caller picks the same channels.
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(),
                    [s](int64_t a, int64_t b) { return s[a] > s[b] || (s[a] == s[b] && a < b); });
  idx.resize(size_t(k));
  idx.erase(std::remove_if(idx.begin(), idx.end(), [s](int64_t i) { return !(s[i] > 0.f); }), idx.end());
  std::sort(idx.begin(), idx.end());
  return idx;
}

Tensor top_k_mask(const Tensor& s, int64_t k) {
  Tensor sc = s.contiguous();
  const int64_t N = sc.size(0), C = sc.size(1);
  Tensor m = Tensor::zeros({N, C});
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c : top_k_indices(sc.f32() + n * C, C, k)) m.f32()[n * C + c] = 1.f;
  return m;
}

GatedModel GatedModel::create(Model base, double keep, uint64_t seed) {
  GatedModel g;
  g.sites = find_gate_sites(base.graph);
  g.model = std::move(base);
  g.keep = keep;
  gate_k(1, keep);  // validates keep
  Rng rng(seed, rng_stream::init);
  for (const GateSite& s : g.sites) {
    Tensor w = Tensor::empty({s.out_channels, s.in_channels}), b = Tensor::empty({s.out_channels});
    const float bound = 0.01f / std::sqrt(float(s.in_channels));
    for (int64_t i = 0; i < w.numel(); ++i) w.f32()[i] = rng.uniform(-bound, bound);
    // Importance: sum_j |W_pw[c,j]| * |gamma_c| / sqrt(var_c + eps).
    const Tensor pw = g.model.params.at(s.pw + ".weight").value().contiguous();
    const Tensor gamma = g.model.params.at(s.pw_bn + ".weight").value().contiguous();
    const Tensor var = g.model.buffers.at(s.pw_bn + ".running_var").contiguous();
    const float eps = g.model.graph.node(s.pw_bn).attrs["eps"].get<float>();
    std::vector<double> imp(static_cast<size_t>(s.out_channels), 0.0);
    double top = 0;
    for (int64_t c = 0; c < s.out_channels; ++c) {
      double l1 = 0;
      for (int64_t j = 0; j < s.in_channels; ++j) l1 += std::fabs(pw.f32()[c * s.in_channels + j]);
      imp[size_t(c)] = l1 * std::fabs(gamma.f32()[c]) / std::sqrt(double(var.f32()[c]) + eps);
      top = std::max(top, imp[size_t(c)]);
    }
    for (int64_t c = 0; c < s.out_channels; ++c)
      b.f32()[c] = 1.f + float(0.05 * (top > 0 ? imp[size_t(c)] / top : 0.0));
    g.predictors.emplace("gate." + s.act + ".weight", Var(w, true));
    g.predictors.emplace("gate." + s.act + ".bias", Var(b, true));
  }
  return g;
}

namespace {
// s = relu(W gap(x) + b): [N, C_out].
Var saliency(const Var& x, const Var& w, const Var& b) {
  return F::relu(F::linear(F::flatten(F::global_avg_pool(x)), w, b));
}
}  // namespace

// The hook that gates each site's output; collects the saliencies if asked.
NodeHook GatedModel::gate_hook(double keep_ratio, std::vector<Tensor>* collect) {
  NodeHook hook;
  for (const GateSite& s : sites) hook.nodes.insert(s.act);
  hook.fn = [this, keep_ratio, collect](const std::string& node, const Var& y,
                                        const std::map<std::string, Var>& values) {
    const GateSite& s = *std::find_if(sites.begin(), sites.end(), [&](const GateSite& g) { return g.act == node; });
    Var sal = saliency(values.at(s.input), predictors.at("gate." + node + ".weight"),
                       predictors.at("gate." + node + ".bias"));
    if (collect) collect->push_back(sal.value());
    return F::channel_gate(y, sal, top_k_mask(sal.value(), gate_k(s.out_channels, keep_ratio)));
  };
  return hook;
}

Var GatedModel::forward(const Var& x, bool training, double keep_ratio) {
  const NodeHook hook = gate_hook(keep_ratio, nullptr);
  return model.forward(x, training, nullptr, nullptr, &hook);
}

std::vector<Tensor> GatedModel::saliencies(const Tensor& x, double keep_ratio) {
  NoGrad ng;
  std::vector<Tensor> out;
  const NodeHook hook = gate_hook(keep_ratio, &out);
  model.forward(Var(x), false, nullptr, nullptr, &hook);
  return out;
}

void GatedModel::save(const std::string& path) const {
  TensorFile f = model_to_file(model);
  for (auto& [k, p] : predictors) f.tensors[k] = p.value();
  f.metadata["format"] = kGatedFormat;
  f.metadata["gating"] = nlohmann::json{{"keep", keep}}.dump();
  save_safetensors(path, f);
}

bool is_gated_file(const std::string& path) {
  const auto meta = load_safetensors_metadata(path);
  auto it = meta.find("format");
  return it != meta.end() && it->second == kGatedFormat;
}

GatedModel GatedModel::load(const std::string& path) {
  TensorFile f = load_safetensors(path);
  auto fmt = f.metadata.find("format");
  KD_CHECK(fmt != f.metadata.end() && fmt->second == kGatedFormat, path,
           ": not a gated model (metadata 'format' should be '", kGatedFormat, "'; kd gate writes these)");
  auto gm = f.metadata.find("gating");
  KD_CHECK(gm != f.metadata.end(), path, ": metadata has no 'gating'");
  double keep = 0;
  try {
    keep = nlohmann::json::parse(gm->second).at("keep").get<double>();
  } catch (const nlohmann::json::exception& e) {
    fail(path, ": metadata 'gating' must be {\"keep\": number}: ", e.what());
  }
  KD_CHECK(keep > 0 && keep <= 1, path, ": metadata 'gating': keep must be in (0, 1], got ", keep);
  TensorFile base;
  base.metadata = f.metadata;
  base.metadata["format"] = kModelFormat;
  std::map<std::string, Tensor> gates;
  for (auto& [k, t] : f.tensors) (k.rfind("gate.", 0) == 0 ? gates : base.tensors)[k] = t;
  GatedModel g = create(model_from_file(base, path), keep, 0);
  for (auto& [k, p] : g.predictors) {
    auto it = gates.find(k);
    KD_CHECK(it != gates.end(), path, ": missing tensor '", k, "'");
    KD_CHECK(it->second.dtype() == DType::f32 && it->second.shape() == p.shape(), path, ": tensor '", k, "' is ",
             dtype_name(it->second.dtype()), " ", shape_str(it->second.shape()), ", expected f32 ",
             shape_str(p.shape()));
    p.value() = it->second.contiguous().clone();
    gates.erase(it);
  }
  KD_CHECK(gates.empty(), path, ": tensor '", gates.empty() ? "" : gates.begin()->first,
           "' is not a gate of the model");
  return g;
}

}  // namespace kd::prune
