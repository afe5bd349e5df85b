// A slimmable network (Yu et al., "Slimmable Neural Networks", 2019): one set of weights that runs
// at several width multipliers. The network at width w is the ordinary model the builder makes
// at that width; its convolution and linear weights are the leading slices of the full-width
// ones (the first c_w output channels, the first c_w' input channels), so the narrow networks
// share weights with the wide one. Batch norm is switchable: each width keeps its own scale,
// shift and running statistics, since the statistics of a slice differ from those of the whole.
//
// In memory every width is a Model (nets[i]); the full one (nets[0]) holds the shared weights.
// sync(i) copies the slices into nets[i] before it runs; accumulate_grads(i) adds its weight
// gradients back into the slices of nets[0]'s, so one optimizer step on nets[0] (plus every
// width's BN parameters) trains them all.
//
// File: the full-width model file, plus "width<w>/<name>" for each narrower width's BN tensors,
// and metadata "slimmable_widths" (JSON list). export_width(i) is an ordinary model file.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "nn/model.h"

namespace kd {

struct SlimmableModel {
  nlohmann::json model_cfg;    // the builder config of the full width ("width" = widths[0] for dsnet)
  std::vector<double> widths;  // strictly descending
  std::vector<Model> nets;     // nets[i] runs at widths[i]

  // model_cfg: a dsnet config; widths: > 0, the largest first (it overrides model_cfg.width).
  static SlimmableModel create(nlohmann::json model_cfg, std::vector<double> widths, uint64_t seed);

  // Is this parameter or buffer per-width (batch norm) rather than a shared slice?
  bool per_width(const std::string& name) const;
  void sync(size_t i);
  void accumulate_grads(size_t i);
  // Prefix of width i's own tensors in files and checkpoints: "width0.5/".
  std::string prefix(size_t i) const;

  void save(const std::string& path) const;
  static SlimmableModel load(const std::string& path);
};

}  // namespace kd
