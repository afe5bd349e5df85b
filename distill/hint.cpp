#include "distill/hint.h"

#include <cmath>

#include "nn/functional.h"

namespace kd::distill {

HintAdapter make_hint_adapter(int64_t student_channels, int64_t teacher_channels, Rng& rng) {
  KD_CHECK(student_channels > 0 && teacher_channels > 0, "hint adapter: channel counts ", student_channels, " -> ",
           teacher_channels);
  const float bound = 1.f / std::sqrt(float(student_channels));
  Tensor w = Tensor::empty({teacher_channels, student_channels, 1, 1}), b = Tensor::empty({teacher_channels});
  for (int64_t i = 0; i < w.numel(); ++i) w.f32()[i] = bound * (2.f * rng.uniform() - 1.f);
  for (int64_t i = 0; i < b.numel(); ++i) b.f32()[i] = bound * (2.f * rng.uniform() - 1.f);
  return {Var(w, true), Var(b, true)};
}

Var hint_loss(const Var& student_features, const Tensor& teacher_features, const HintAdapter& adapter) {
  const Tensor& s = student_features.value();
  KD_CHECK(s.dim() == 4 && teacher_features.defined() && teacher_features.dim() == 4, "hint_loss: features must be ",
           "[N,C,H,W], got student ", shape_str(s.shape()), " and teacher ",
           teacher_features.defined() ? shape_str(teacher_features.shape()) : std::string("(none)"));
  KD_CHECK(s.size(0) == teacher_features.size(0) && s.size(2) == teacher_features.size(2) &&
               s.size(3) == teacher_features.size(3),
           "hint_loss: student features ", shape_str(s.shape()), " and teacher features ",
           shape_str(teacher_features.shape()), " differ in batch or spatial size (pick layers of equal resolution)");
  const Shape& ws = adapter.weight.shape();
  KD_CHECK(ws[1] == s.size(1) && ws[0] == teacher_features.size(1), "hint_loss: adapter ", shape_str(ws), " does not map ",
           s.size(1), " student channels to ", teacher_features.size(1), " teacher channels");
  return F::mse_loss(F::conv2d(student_features, adapter.weight, adapter.bias, 1, 0, 1), teacher_features);
}

}  // namespace kd::distill
