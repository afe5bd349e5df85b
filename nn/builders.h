// Builders for the reference families of DESIGN.md, from a JSON model config.
//   {"family": "resnet", "widths": [32, 64, 128], "blocks": [2, 2, 2], "num_classes": 10}
//   {"family": "dsnet", "width": 1.0, "num_classes": 10}
// Optional in both: "in_channels" (1), "image_size" (28), "bn_eps" (1e-5), "bn_momentum" (0.1).
// Node names equal the PyTorch module paths of ../shared/reference/torch_ref.py (stem.0,
// layers.3.c1, features.6, fc, ...), so its state_dicts load without a name map.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

#include "nn/graph.h"

namespace kd {

// where: the file (or flag) the config came from, for error messages.
Graph build_model(const nlohmann::json& cfg, const std::string& where);

}  // namespace kd
