// Dataset: an MNIST-like image classification set held in memory as raw bytes.
//
// Images stay u8 (47 MB for Fashion-MNIST's train split instead of 188 MB as f32); the loader
// normalises each batch as it gathers it.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace kd {

// Where Debian's dataset-fashion-mnist package installs the IDX files.
inline constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";
inline constexpr int64_t kNumClasses = 10;

struct Dataset {
  Tensor images;                // u8 [N,28,28]
  std::vector<int32_t> labels;  // N values in [0, kNumClasses)
  int64_t size() const { return static_cast<int64_t>(labels.size()); }
};

// Reads {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz] from dir (MNIST's file names, which
// Fashion-MNIST and KMNIST reuse). A missing file names the path tried and how to get the data.
Dataset load_mnist_like(const std::string& dir, bool train);

// The first min(n, size) samples, sharing the image storage; for short tests and smoke runs.
Dataset take_first(const Dataset& d, int64_t n);

}  // namespace kd
