// safetensors: the file format of kd models and checkpoints (DESIGN.md section 3).
//
// Layout: an 8-byte little-endian u64 header length N, N bytes of JSON header
//   {"<name>": {"dtype": "F32"|"I8"|"U8"|"I32", "shape": [...], "data_offsets": [begin, end]},
//    "__metadata__": {"<key>": "<string>"}}
// then the raw little-endian tensor data; offsets are relative to the start of the data.
// Written files hold the tensors in name order, densely packed, with the header padded by spaces
// to a multiple of 8 bytes (as the reference implementation does), so saving the same TensorFile
// twice gives identical bytes. Reading validates everything and throws kd::Error naming the file
// and the tensor or field at fault. Only little-endian hosts are supported.
//
// PyTorch interchange: kd parameters and buffers are named "<node>.<param>" in PyTorch layouts
// (conv weight OIHW, linear weight [out, in], batchnorm weight, bias, running_mean, running_var),
// with node names following the PyTorch module paths. PyTorch's batchnorm num_batches_tracked is
// not stored, so a state_dict converts with
//   {k: v for k, v in sd.items() if not k.endswith("num_batches_tracked")}
// written by any safetensors writer (e.g. safetensors.torch.save_file); kd files load back with
// safetensors.torch.load_file + load_state_dict (BatchNorm fills in a missing num_batches_tracked).
#pragma once
#include <map>
#include <string>

#include "core/tensor.h"

namespace kd {

struct TensorFile {
  std::map<std::string, Tensor> tensors;         // name -> tensor
  std::map<std::string, std::string> metadata;  // the "__metadata__" string map
};

TensorFile load_safetensors(const std::string& path);
// Only the "__metadata__" map, reading the header alone (e.g. to tell a file's format).
std::map<std::string, std::string> load_safetensors_metadata(const std::string& path);
// `what` names the source (usually the file name) in error messages.
TensorFile parse_safetensors(const std::string& bytes, const std::string& what);

void save_safetensors(const std::string& path, const TensorFile& f);  // atomic (nn/atomic_file.h)
std::string serialize_safetensors(const TensorFile& f);

}  // namespace kd
