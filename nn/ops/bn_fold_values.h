// Eval-mode batch norm folded into the convolution before it, per output channel o:
//   k[o] = gamma[o] / sqrt(running_var[o] + eps),   b'[o] = beta[o] + (b[o] - running_mean[o]) * k[o]
// so that conv(x) * k + b' = BN(conv(x) + b). Computed in double from the float parameters and the
// float eps the model's own batch norm uses, and rounded once. One definition for every place
// that folds (the fused inference convolution, QAT's folded weights, the INT8 conversion), so
// that a model trained with QAT folds to exactly the weights the conversion produces.
#pragma once
#include <cmath>

namespace kd::F {

inline double bn_fold_scale(float gamma, float var, float eps) {
  return double(gamma) / std::sqrt(double(var) + double(eps));
}
inline float bn_fold_bias(float beta, float conv_bias, float mean, double scale) {
  return float(double(beta) + (double(conv_bias) - double(mean)) * scale);
}

}  // namespace kd::F
