#include "data/normalize.h"

#include <numeric>

namespace kd {

Tensor normalize_rows(const Tensor& images, const std::vector<int64_t>& rows, const NormalizeParams& p) {
  KD_CHECK(images.dtype() == DType::u8 && images.dim() == 3 && images.is_contiguous(),
           "normalize: expected contiguous u8 images [N,H,W], got ", dtype_name(images.dtype()), " ",
           shape_str(images.shape()));
  KD_CHECK(p.std > 0, "normalize: std must be positive, got ", p.std);
  const int64_t n = images.size(0), hw = images.size(1) * images.size(2);

  // A u8 pixel has 256 possible values, so a table makes this a gather. The table is computed
  // in f32 exactly as the PyTorch reference does (x/255 first, then subtract and divide), so
  // inputs match it bit for bit.
  float table[256];
  for (int v = 0; v < 256; ++v) table[v] = (static_cast<float>(v) / 255.0f - p.mean) / p.std;

  Tensor out = Tensor::empty({static_cast<int64_t>(rows.size()), 1, images.size(1), images.size(2)});
  const uint8_t* src = images.data<uint8_t>();
  float* dst = out.f32();
  for (size_t r = 0; r < rows.size(); ++r) {
    KD_CHECK(rows[r] >= 0 && rows[r] < n, "normalize: row ", rows[r], " out of range for ", n, " images");
    const uint8_t* s = src + rows[r] * hw;
    float* d = dst + static_cast<int64_t>(r) * hw;
    for (int64_t i = 0; i < hw; ++i) d[i] = table[s[i]];
  }
  return out;
}

Tensor normalize(const Tensor& images, const NormalizeParams& p) {
  KD_CHECK(images.dim() == 3, "normalize: expected images [N,H,W], got ", shape_str(images.shape()));
  std::vector<int64_t> all(images.size(0));
  std::iota(all.begin(), all.end(), 0);
  return normalize_rows(images, all, p);
}

}  // namespace kd
