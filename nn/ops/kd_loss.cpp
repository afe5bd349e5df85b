// F::kd_loss: the autograd op over the fused kernel of core/kernels/kd_loss.h. The kernel
// produces the loss and dloss/ds in one call, so the forward computes the gradient right away
// (when one is wanted) and the backward only scales it by the incoming scalar.
#include "core/kernels/kd_loss.h"
#include "nn/functional.h"

namespace kd::F {

Var kd_loss(const Var& student_logits, const Tensor& teacher_logits, const std::vector<int32_t>& labels, float T,
            float alpha) {
  const Tensor& sv = student_logits.value();
  KD_CHECK(sv.dim() == 2, "kd_loss: student logits must be [N,K], got ", shape_str(sv.shape()));
  const int64_t N = sv.size(0), K = sv.size(1);
  Tensor s = sv.contiguous(), t;
  if (alpha > 0) {
    KD_CHECK(teacher_logits.defined() && teacher_logits.shape() == sv.shape(), "kd_loss: teacher logits ",
             teacher_logits.defined() ? shape_str(teacher_logits.shape()) : std::string("(none)"),
             " do not match the student's ", shape_str(sv.shape()));
    t = teacher_logits.contiguous();
  }
  if (alpha < 1)
    KD_CHECK(int64_t(labels.size()) == N, "kd_loss: ", labels.size(), " labels for ", N, " rows");
  const bool want_grad = grad_enabled() && student_logits.requires_grad();
  Tensor grad = want_grad ? Tensor::empty({N, K}) : Tensor();
  kernels::KdLossArgs a{s.f32(), alpha > 0 ? t.f32() : nullptr, alpha < 1 ? labels.data() : nullptr, N, K, T, alpha,
                        want_grad ? grad.f32() : nullptr};
  const double loss = kernels::kd_loss(a);
  return make_result("kd_loss", Tensor::full({}, float(loss)), {student_logits}, [grad](const Tensor& g) {
    const float gs = g.f32()[0];
    Tensor out = grad.clone();
    if (gs != 1.f)
      for (int64_t i = 0; i < out.numel(); ++i) out.f32()[i] *= gs;
    return std::vector<Tensor>{out};
  });
}

}  // namespace kd::F
