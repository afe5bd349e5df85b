// Small reference-family models for tests, with batch norms that look trained (running
// statistics and affine parameters away from their fresh values), so that BN folding, masking
// and quantization are really exercised.
#pragma once
#include <nlohmann/json.hpp>

#include "core/rng.h"
#include "nn/builders.h"
#include "nn/model.h"

namespace kd::test {

inline Model trained_looking_model(const nlohmann::json& cfg, uint64_t seed) {
  Model m = Model::create(build_model(cfg, "test"), seed);
  Rng r(seed, 3);
  for (auto& [name, t] : m.buffers)
    for (int64_t i = 0; i < t.numel(); ++i)
      t.f32()[i] = name.find("running_var") != std::string::npos ? 0.5f + r.uniform() : 0.2f * r.normal();
  for (auto& [name, v] : m.params)  // BN gamma and beta (the 1-D parameters) away from 1 and 0
    if (v.value().dim() == 1 && m.buffers.count(name.substr(0, name.rfind('.')) + ".running_mean"))
      for (int64_t i = 0; i < v.value().numel(); ++i) v.value().f32()[i] += 0.3f * r.normal();
  return m;
}

}  // namespace kd::test
