#include "data/mix.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "data/beta.h"

namespace kd {

namespace {

void check_batch(const char* op, const Tensor& x, const Tensor& soft) {
  KD_CHECK(x.dtype() == DType::f32 && x.dim() == 4 && x.is_contiguous(), op,
           ": expected contiguous f32 images [B,C,H,W], got ", shape_str(x.shape()));
  KD_CHECK(soft.dtype() == DType::f32 && soft.dim() == 2 && soft.is_contiguous() && soft.size(0) == x.size(0), op,
           ": expected contiguous f32 targets [", x.size(0), ",classes], got ", shape_str(soft.shape()));
}

std::vector<int64_t> random_pairing(int64_t n, Rng& rng) {
  std::vector<int64_t> perm(n);
  std::iota(perm.begin(), perm.end(), 0);
  rng.shuffle(perm);
  return perm;
}

// soft[b] = lam*soft[b] + (1-lam)*soft[perm[b]], reading from a copy so pairs see unmixed rows.
void mix_targets(Tensor& soft, const std::vector<int64_t>& perm, float lam) {
  const Tensor src = soft.clone();
  const int64_t k = soft.size(1);
  for (size_t b = 0; b < perm.size(); ++b)
    for (int64_t c = 0; c < k; ++c)
      soft.f32()[b * k + c] = lam * src.f32()[b * k + c] + (1.0f - lam) * src.f32()[perm[b] * k + c];
}

}  // namespace

Tensor one_hot(const std::vector<int32_t>& labels, int64_t classes) {
  Tensor t = Tensor::zeros({static_cast<int64_t>(labels.size()), classes});
  for (size_t b = 0; b < labels.size(); ++b) {
    KD_CHECK(labels[b] >= 0 && labels[b] < classes, "one_hot: label ", labels[b], " not in [0,", classes, ")");
    t.f32()[b * classes + labels[b]] = 1.0f;
  }
  return t;
}

float cutmix(Tensor& x, Tensor& soft, float alpha, Rng& rng) {
  check_batch("cutmix", x, soft);
  const int64_t b = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  const float lam_drawn = sample_beta(rng, alpha, alpha);
  const std::vector<int64_t> perm = random_pairing(b, rng);

  // The box of the CutMix paper's code: sides (1-lambda)^(1/2) of the image's, so its area
  // is 1-lambda before clipping; half-widths round down.
  const double cut = std::sqrt(1.0 - lam_drawn);
  const int64_t cut_h = static_cast<int64_t>(h * cut), cut_w = static_cast<int64_t>(w * cut);
  const int64_t cy = static_cast<int64_t>(rng.below(h)), cx = static_cast<int64_t>(rng.below(w));
  const int64_t y0 = std::clamp(cy - cut_h / 2, int64_t{0}, h), y1 = std::clamp(cy + cut_h / 2, int64_t{0}, h);
  const int64_t x0 = std::clamp(cx - cut_w / 2, int64_t{0}, w), x1 = std::clamp(cx + cut_w / 2, int64_t{0}, w);

  const Tensor src = x.clone();
  for (int64_t n = 0; n < b; ++n)
    for (int64_t ch = 0; ch < c; ++ch) {
      const float* s = src.f32() + (perm[n] * c + ch) * h * w;
      float* d = x.f32() + (n * c + ch) * h * w;
      for (int64_t i = y0; i < y1; ++i) std::copy(s + i * w + x0, s + i * w + x1, d + i * w + x0);
    }
  const float lam = 1.0f - static_cast<float>((y1 - y0) * (x1 - x0)) / static_cast<float>(h * w);
  mix_targets(soft, perm, lam);
  return lam;
}

float mixup(Tensor& x, Tensor& soft, float alpha, Rng& rng) {
  check_batch("mixup", x, soft);
  const float lam = sample_beta(rng, alpha, alpha);
  const std::vector<int64_t> perm = random_pairing(x.size(0), rng);
  const Tensor src = x.clone();
  const int64_t per_sample = x.numel() / std::max<int64_t>(x.size(0), 1);
  for (int64_t n = 0; n < x.size(0); ++n) {
    const float* own = src.f32() + n * per_sample;
    const float* other = src.f32() + perm[n] * per_sample;
    float* d = x.f32() + n * per_sample;
    for (int64_t i = 0; i < per_sample; ++i) d[i] = lam * own[i] + (1.0f - lam) * other[i];
  }
  mix_targets(soft, perm, lam);
  return lam;
}

}  // namespace kd
