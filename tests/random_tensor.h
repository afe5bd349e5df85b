// Seeded standard-normal test tensors, shared by the test files.
#pragma once
#include "core/rng.h"
#include "core/tensor.h"

namespace kd::test {

inline Tensor randn(const Shape& s, uint64_t seed, float scale = 1.f) {
  Rng r(seed, 9);
  Tensor t = Tensor::empty(s);
  for (int64_t i = 0; i < t.numel(); ++i) t.f32()[i] = scale * r.normal();
  return t;
}

}  // namespace kd::test
