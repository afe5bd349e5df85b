#include "data/augment.h"

namespace kd {

Tensor random_crop_flip(const Tensor& x, Rng& rng, int pad) {
  KD_CHECK(x.dtype() == DType::f32 && x.dim() == 4 && x.is_contiguous(),
           "random_crop_flip: expected contiguous f32 [B,C,H,W], got ", dtype_name(x.dtype()), " ",
           shape_str(x.shape()));
  KD_CHECK(pad >= 0, "random_crop_flip: pad must be >= 0, got ", pad);
  const int64_t b = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  Tensor out = Tensor::empty(x.shape());
  for (int64_t n = 0; n < b; ++n) {
    // Crop origin (oy, ox) in padded coordinates, so padded pixel (oy+i, ox+j) is source pixel
    // (oy+i-pad, ox+j-pad), or 0 when that falls outside the image.
    const int64_t oy = static_cast<int64_t>(rng.below(2 * pad + 1));
    const int64_t ox = static_cast<int64_t>(rng.below(2 * pad + 1));
    const bool flip = rng.uniform() < 0.5f;
    for (int64_t ch = 0; ch < c; ++ch) {
      const float* src = x.f32() + (n * c + ch) * h * w;
      float* dst = out.f32() + (n * c + ch) * h * w;
      for (int64_t i = 0; i < h; ++i) {
        const int64_t sy = oy + i - pad;
        for (int64_t j = 0; j < w; ++j) {
          const int64_t sx = ox + j - pad;
          const float v = (sy >= 0 && sy < h && sx >= 0 && sx < w) ? src[sy * w + sx] : 0.0f;
          dst[i * w + (flip ? w - 1 - j : j)] = v;  // flipping after the crop mirrors the crop
        }
      }
    }
  }
  return out;
}

}  // namespace kd
