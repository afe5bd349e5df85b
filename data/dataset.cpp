#include "data/dataset.h"

#include <algorithm>
#include <filesystem>

#include "data/idx.h"

namespace kd {

namespace {

// The packaged files are gzip-compressed; a user who unpacked them keeps the bare name.
std::string find_file(const std::string& dir, const std::string& name) {
  const std::string gz = dir + "/" + name + ".gz", plain = dir + "/" + name;
  if (std::filesystem::exists(gz)) return gz;
  if (std::filesystem::exists(plain)) return plain;
  fail("data: ", gz, " not found (nor ", plain, "); install Debian's dataset-fashion-mnist ",
       "(apt-get install dataset-fashion-mnist) or pass --data DIR with the IDX files");
}

}  // namespace

Dataset load_mnist_like(const std::string& dir, bool train) {
  const std::string split = train ? "train" : "t10k";
  const std::string image_path = find_file(dir, split + "-images-idx3-ubyte");
  const std::string label_path = find_file(dir, split + "-labels-idx1-ubyte");

  Dataset d;
  d.images = read_idx(image_path);
  KD_CHECK(d.images.dim() == 3 && d.images.size(1) == 28 && d.images.size(2) == 28, "data: ", image_path,
           ": expected images [N,28,28], found ", shape_str(d.images.shape()));
  const Tensor labels = read_idx(label_path);
  KD_CHECK(labels.dim() == 1, "data: ", label_path, ": expected labels [N], found ", shape_str(labels.shape()));
  KD_CHECK(labels.size(0) == d.images.size(0), "data: ", label_path, " has ", labels.size(0), " labels but ",
           image_path, " has ", d.images.size(0), " images");

  const uint8_t* l = labels.data<uint8_t>();
  d.labels.assign(l, l + labels.numel());
  for (size_t i = 0; i < d.labels.size(); ++i)
    KD_CHECK(d.labels[i] < kNumClasses, "data: ", label_path, ": label ", d.labels[i], " at index ", i,
             " is not a class in [0,", kNumClasses, ")");
  return d;
}

Dataset take_first(const Dataset& d, int64_t n) {
  KD_CHECK(n >= 0, "data: take_first(", n, ") needs n >= 0");
  n = std::min(n, d.size());
  return {d.images.slice(0, 0, n), std::vector<int32_t>(d.labels.begin(), d.labels.begin() + n)};
}

}  // namespace kd
