// Model files: safetensors with every parameter and buffer under its graph name (PyTorch
// layouts) and, in __metadata__, "format" = "kd-model-1" and "graph" = the graph JSON.
// Checkpoints are model files with extra metadata and optimizer tensors ("optim.<...>").
#pragma once
#include <map>
#include <string>

#include "nn/model.h"
#include "nn/safetensors.h"

namespace kd {

constexpr const char* kModelFormat = "kd-model-1";

TensorFile model_to_file(const Model& m);
void save_model(const std::string& path, const Model& m, const std::map<std::string, std::string>& extra_meta = {});
// Loads and validates graph and tensors; names the file in every error.
Model load_model(const std::string& path);
Model model_from_file(const TensorFile& f, const std::string& what);

}  // namespace kd
