#include "distill/attention.h"

#include <cmath>
#include <vector>

namespace kd::distill {

namespace {

constexpr double kNormEps = 1e-12;  // F.normalize's eps: a zero map stays zero instead of NaN

// a [N,P] = channel mean of x^2, and r [N] = max(||a_n||, eps); q = a / r.
void attention_parts(const Tensor& xc, std::vector<double>& a, std::vector<double>& r) {
  const int64_t N = xc.size(0), C = xc.size(1), P = xc.size(2) * xc.size(3);
  a.assign(N * P, 0.0);
  r.assign(N, 0.0);
  const float* X = xc.f32();
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n) {
    double* an = &a[n * P];
    for (int64_t c = 0; c < C; ++c) {
      const float* xp = X + (n * C + c) * P;
      for (int64_t p = 0; p < P; ++p) an[p] += double(xp[p]) * double(xp[p]);
    }
    double ss = 0;
    for (int64_t p = 0; p < P; ++p) an[p] /= double(C), ss += an[p] * an[p];
    r[n] = std::max(std::sqrt(ss), kNormEps);
  }
}

void check_map(const Tensor& x, const char* who) {
  KD_CHECK(x.defined() && x.dim() == 4, "attention_transfer_loss: the ", who, "'s features must be [N,C,H,W], got ",
           x.defined() ? shape_str(x.shape()) : std::string("(none)"));
}

}  // namespace

Tensor attention_map(const Tensor& x) {
  check_map(x, "input");
  Tensor xc = x.contiguous();
  std::vector<double> a, r;
  attention_parts(xc, a, r);
  const int64_t N = xc.size(0), P = xc.size(2) * xc.size(3);
  Tensor q = Tensor::empty({N, P});
  for (int64_t n = 0; n < N; ++n)
    for (int64_t p = 0; p < P; ++p) q.f32()[n * P + p] = float(a[n * P + p] / r[n]);
  return q;
}

Var attention_transfer_loss(const Var& student_features, const Tensor& teacher_features) {
  const Tensor& s = student_features.value();
  check_map(s, "student");
  check_map(teacher_features, "teacher");
  KD_CHECK(s.size(0) == teacher_features.size(0) && s.size(2) == teacher_features.size(2) &&
               s.size(3) == teacher_features.size(3),
           "attention_transfer_loss: student features ", shape_str(s.shape()), " and teacher features ",
           shape_str(teacher_features.shape()), " differ in batch or spatial size (pick layers of equal resolution)");
  Tensor xc = s.contiguous();
  const int64_t N = xc.size(0), C = xc.size(1), P = xc.size(2) * xc.size(3);
  std::vector<double> a, r;
  attention_parts(xc, a, r);
  Tensor qt = attention_map(teacher_features);
  double sum = 0;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t p = 0; p < P; ++p) {
      const double d = a[n * P + p] / r[n] - double(qt.f32()[n * P + p]);
      sum += d * d;
    }
  const double count = double(N * P);
  return make_result("attention_transfer_loss", Tensor::full({}, float(sum / count)), {student_features},
                     [xc, qt, a, r, N, C, P, count](const Tensor& g) {
    // dL/dq = 2 (q_s - q_t) / (N P). Through q = a / ||a|| (when ||a|| > eps):
    //   dL/da = (dL/dq - q (q . dL/dq)) / ||a||;  below eps the norm is the constant eps: dL/dq / eps.
    // Through a = mean_c x^2: dL/dx[n,c,p] = dL/da[n,p] * 2 x[n,c,p] / C.
    const double gs = double(g.f32()[0]);
    Tensor dx = Tensor::empty(xc.shape());
    const float* X = xc.f32();
    float* D = dx.f32();
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < N; ++n) {
      std::vector<double> gq(P), q(P);
      double dot = 0;
      for (int64_t p = 0; p < P; ++p) {
        q[p] = a[n * P + p] / r[n];
        gq[p] = gs * 2.0 * (q[p] - double(qt.f32()[n * P + p])) / count;
        dot += q[p] * gq[p];
      }
      const bool clamped = r[n] <= kNormEps;
      for (int64_t p = 0; p < P; ++p) gq[p] = (clamped ? gq[p] : gq[p] - q[p] * dot) / r[n];
      for (int64_t c = 0; c < C; ++c) {
        const float* xp = X + (n * C + c) * P;
        float* dp = D + (n * C + c) * P;
        for (int64_t p = 0; p < P; ++p) dp[p] = float(gq[p] * 2.0 * double(xp[p]) / double(C));
      }
    }
    return std::vector<Tensor>{dx};
  });
}

}  // namespace kd::distill
