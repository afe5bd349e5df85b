// Batch mixing: CutMix (Yun et al. 2019) and mixup (Zhang et al. 2018).
//
// Both pair each sample b with sample perm[b] of a random permutation of the batch, blend
// them with weight lambda ~ Beta(alpha, alpha), and blend the targets with the same weight,
// so the labels become soft: f32 [B,classes] rows of probabilities. A sample paired with
// itself is left unchanged, as in the papers' code.
#pragma once
#include <cstdint>
#include <vector>

#include "core/rng.h"
#include "core/tensor.h"

namespace kd {

// f32 [B,classes] with a 1 at each label.
Tensor one_hot(const std::vector<int32_t>& labels, int64_t classes);

// Both mix x (f32 [B,C,H,W]) and soft (f32 [B,classes]) in place and return the lambda used:
// the weight of each sample's own content.
//
// CutMix pastes one box, the same for the whole batch, from the partner sample: box sides
// sqrt(1-lambda) of the image's, centre uniform over the image, clipped at the borders; lambda is
// then recomputed from the clipped box's area, so the targets match the pixels.
float cutmix(Tensor& x, Tensor& soft, float alpha, Rng& rng);
// mixup blends every pixel: x = lambda*x + (1-lambda)*x[perm].
float mixup(Tensor& x, Tensor& soft, float alpha, Rng& rng);

}  // namespace kd
