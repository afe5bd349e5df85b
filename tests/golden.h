// Helpers for comparing against the PyTorch goldens in tests/goldens/ (made by scripts/make_goldens.py).
#pragma once
#include <doctest/doctest.h>

#include <cmath>
#include <string>

#include "nn/safetensors.h"

namespace kd::test {

inline const TensorFile& golden(const std::string& file) {
  static std::map<std::string, TensorFile> cache;
  auto it = cache.find(file);
  if (it == cache.end()) it = cache.emplace(file, load_safetensors(std::string(KD_SOURCE_DIR) + "/tests/goldens/" + file)).first;
  return it->second;
}

inline const Tensor& gt(const TensorFile& f, const std::string& name) {
  auto it = f.tensors.find(name);
  if (it == f.tensors.end()) FAIL("golden tensor missing: " << name);
  return it->second;
}

// max_i |a - b| / (atol + rtol |b|) <= 1, reported with the worst element.
inline void expect_close(const Tensor& a, const Tensor& b, double rtol, double atol, const std::string& what) {
  REQUIRE_MESSAGE(a.shape() == b.shape(), what << ": shape " << shape_str(a.shape()) << " vs " << shape_str(b.shape()));
  Tensor ac = a.contiguous(), bc = b.contiguous();
  double worst = 0;
  int64_t wi = -1;
  for (int64_t i = 0; i < a.numel(); ++i) {
    double r = std::fabs(double(ac.f32()[i]) - bc.f32()[i]) / (atol + rtol * std::fabs(bc.f32()[i]));
    if (!(r <= worst)) worst = r, wi = i;  // also catches NaN
  }
  CHECK_MESSAGE(worst <= 1.0, what << ": element " << wi << " got " << (wi >= 0 ? ac.f32()[wi] : 0.f) << " want "
                                   << (wi >= 0 ? bc.f32()[wi] : 0.f) << " (ratio to tolerance " << worst << ")");
}

}  // namespace kd::test
