// Normalisation: u8 pixels to the f32 network input (x/255 - mean) / std.
#pragma once
#include <vector>

#include "core/tensor.h"

namespace kd {

// Fashion-MNIST's train-set pixel mean and std (of x/255), as in the reference recipe.
struct NormalizeParams {
  float mean = 0.2860f;
  float std = 0.3530f;
};

// u8 [N,H,W] -> f32 [N,1,H,W].
Tensor normalize(const Tensor& images, const NormalizeParams& p = {});
// The listed rows only, in that order -> f32 [rows.size(),1,H,W] (the loader's batch gather).
Tensor normalize_rows(const Tensor& images, const std::vector<int64_t>& rows, const NormalizeParams& p = {});

}  // namespace kd
