// linear: y[N,out] = x[N,in] W^T + b.  Gradients: dx = dy W, dW = dy^T x, db = sum_n dy.
#include "nn/functional.h"
#include "nn/ops/eigen_map.h"

namespace kd::F {

Var linear(const Var& x, const Var& w, const Var& b) {
  const Tensor &xv = x.value(), &wv = w.value();
  KD_CHECK(xv.dim() == 2 && wv.dim() == 2 && xv.size(1) == wv.size(1), "linear: input ", shape_str(xv.shape()),
           " and weight ", shape_str(wv.shape()), " (need [N,in] and [out,in])");
  const int64_t N = xv.size(0), I = xv.size(1), O = wv.size(0);
  if (b.defined())
    KD_CHECK(b.value().dim() == 1 && b.value().size(0) == O, "linear: bias ", shape_str(b.shape()), " for ", O,
             " outputs");
  Tensor xc = xv.contiguous(), wc = wv.contiguous();
  Tensor y = Tensor::empty({N, O});
  MatMap Y(y.f32(), N, O);
  Y.noalias() = CMatMap(xc.f32(), N, I) * CMatMap(wc.f32(), O, I).transpose();
  if (b.defined()) Y.rowwise() += Eigen::Map<const Eigen::RowVectorXf>(b.value().contiguous().f32(), O);
  std::vector<Var> inputs{x, w};
  if (b.defined()) inputs.push_back(b);
  bool has_b = b.defined();
  return make_result("linear", y, inputs, [xc, wc, N, I, O, has_b](const Tensor& g) {
    Tensor gc = g.contiguous();
    CMatMap dY(gc.f32(), N, O);
    Tensor dx = Tensor::empty({N, I}), dw = Tensor::empty({O, I});
    MatMap(dx.f32(), N, I).noalias() = dY * CMatMap(wc.f32(), O, I);
    MatMap(dw.f32(), O, I).noalias() = dY.transpose() * CMatMap(xc.f32(), N, I);
    std::vector<Tensor> r{dx, dw};
    if (has_b) {
      Tensor db = Tensor::empty({O});
      Eigen::Map<Eigen::RowVectorXf>(db.f32(), O) = dY.colwise().sum();
      r.push_back(db);
    }
    return r;
  });
}

}  // namespace kd::F
