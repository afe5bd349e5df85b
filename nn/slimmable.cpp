#include "nn/slimmable.h"

#include <cstdio>
#include <cstring>

#include "nn/builders.h"
#include "nn/model_io.h"
#include "nn/safetensors.h"

namespace kd {

namespace {

// Calls f(offset in `small`, offset in `big`) for every element of the leading box of `big`
// that `small` covers (same rank, small's extents <= big's), contiguous row-major layouts.
template <typename F>
void for_each_in_box(const Shape& small, const Shape& big, F f) {
  const size_t r = small.size();
  KD_CHECK(r == big.size(), "slimmable: ranks differ: ", shape_str(small), " vs ", shape_str(big));
  for (size_t d = 0; d < r; ++d)
    KD_CHECK(small[d] <= big[d], "slimmable: ", shape_str(small), " is not a slice of ", shape_str(big));
  int64_t n = 1;
  for (int64_t e : small) n *= e;
  std::vector<int64_t> idx(r, 0);
  for (int64_t i = 0; i < n; ++i) {
    int64_t off_big = 0;
    for (size_t d = 0; d < r; ++d) off_big = off_big * big[d] + idx[d];
    f(i, off_big);
    for (size_t d = r; d-- > 0;) {
      if (++idx[d] < small[d]) break;
      idx[d] = 0;
    }
  }
}

std::string width_str(double w) {
  char b[32];
  std::snprintf(b, sizeof b, "%g", w);
  return b;
}

}  // namespace

SlimmableModel SlimmableModel::create(nlohmann::json cfg, std::vector<double> widths, uint64_t seed) {
  KD_CHECK(cfg.value("family", "") == "dsnet", "slimmable: only the dsnet family has a width multiplier, got ",
           cfg.value("family", "?"));
  KD_CHECK(!widths.empty() && widths.size() <= 16, "slimmable: 1 to 16 widths, got ", widths.size());
  for (size_t i = 0; i < widths.size(); ++i)
    KD_CHECK(widths[i] > 0 && (i == 0 || widths[i] < widths[i - 1]), "slimmable: widths must be > 0 and strictly "
             "descending, got ", width_str(widths[i]), " at position ", i);
  SlimmableModel s;
  s.widths = widths;
  cfg["width"] = widths[0];
  s.model_cfg = cfg;
  for (double w : widths) {
    nlohmann::json c = cfg;
    c["width"] = w;
    s.nets.push_back(Model::create(build_model(c, "slimmable width " + width_str(w)), seed));
  }
  for (size_t i = 1; i < s.nets.size(); ++i) s.sync(i);
  return s;
}

bool SlimmableModel::per_width(const std::string& name) const {
  const std::string node = name.substr(0, name.rfind('.'));
  return nets[0].graph.node(node).op == "batchnorm2d";
}

std::string SlimmableModel::prefix(size_t i) const { return "width" + width_str(widths[i]) + "/"; }

void SlimmableModel::sync(size_t i) {
  if (i == 0) return;
  for (auto& [k, p] : nets[i].params) {
    if (per_width(k)) continue;
    const Tensor& big = nets[0].params.at(k).value();
    float* dst = p.value().f32();
    const float* src = big.f32();
    for_each_in_box(p.value().shape(), big.shape(), [&](int64_t a, int64_t b) { dst[a] = src[b]; });
  }
}

void SlimmableModel::accumulate_grads(size_t i) {
  if (i == 0) return;
  for (auto& [k, p] : nets[i].params) {
    if (per_width(k) || !p.grad().defined()) continue;
    Var& full = nets[0].params.at(k);
    if (!full.grad().defined()) full.set_grad(Tensor::zeros(full.value().shape()));
    float* dst = full.grad().f32();
    Tensor g = p.grad().contiguous();
    const float* src = g.f32();
    for_each_in_box(p.value().shape(), full.value().shape(), [&](int64_t a, int64_t b) { dst[b] += src[a]; });
  }
}

void SlimmableModel::save(const std::string& path) const {
  TensorFile f = model_to_file(nets[0]);
  for (size_t i = 1; i < nets.size(); ++i)
    for (auto& [k, t] : nets[i].state())
      if (per_width(k)) f.tensors[prefix(i) + k] = t;
  f.metadata["slimmable_widths"] = nlohmann::json(widths).dump();
  f.metadata["slimmable_model"] = model_cfg.dump();
  save_safetensors(path, f);
}

SlimmableModel SlimmableModel::load(const std::string& path) {
  TensorFile f = load_safetensors(path);
  auto w = f.metadata.find("slimmable_widths"), c = f.metadata.find("slimmable_model");
  KD_CHECK(w != f.metadata.end() && c != f.metadata.end(), path,
           ": not a slimmable model (metadata 'slimmable_widths' missing); train one with kd distill and a "
           "\"slimmable\" section");
  std::vector<double> widths;
  nlohmann::json cfg;
  try {
    widths = nlohmann::json::parse(w->second).get<std::vector<double>>();
    cfg = nlohmann::json::parse(c->second);
  } catch (const nlohmann::json::exception& e) {
    fail(path, ": slimmable metadata is not valid: ", e.what());
  }
  SlimmableModel s = create(cfg, widths, 0);
  std::vector<std::map<std::string, Tensor>> states(s.nets.size());
  for (auto& [k, t] : f.tensors) {
    size_t i = 0;
    for (size_t j = 1; j < s.nets.size(); ++j)
      if (k.rfind(s.prefix(j), 0) == 0) i = j;
    states[i][i ? k.substr(s.prefix(i).size()) : k] = t;
  }
  s.nets[0].load_state(states[0], path);
  for (size_t i = 1; i < s.nets.size(); ++i) {
    for (auto& [k, t] : s.nets[i].state())
      if (!s.per_width(k)) states[i][k] = t;  // placeholders, overwritten by sync below
    s.nets[i].load_state(states[i], path + " (" + s.prefix(i) + ")");
    s.sync(i);
  }
  return s;
}

}  // namespace kd
