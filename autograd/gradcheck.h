// Finite-difference gradient checker.
//
// For a function f of several tensors with output y, draws a fixed random projection r and
// compares the autograd gradient of L = sum(r * y) with central differences
//   dL/dx_i ~ (L(x + eps e_i) - L(x - eps e_i)) / (2 eps),
// accumulated in double to keep the difference quotient's rounding small. f32 limits the
// achievable agreement to about 1e-3 relative, so the default tolerance is 1e-2 on
//   |analytic - numeric| <= atol + rtol * |numeric|.
// Kinks (ReLU at 0, max-pool ties) give wrong numeric gradients; callers keep inputs away.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "autograd/var.h"

namespace kd {

struct GradcheckResult {
  bool ok = true;
  double max_abs_err = 0;
  std::string first_failure;  // "input 1, element 17: analytic 0.12 numeric 0.31"
};

GradcheckResult gradcheck(const std::function<Var(const std::vector<Var>&)>& f, const std::vector<Tensor>& inputs,
                          float eps = 1e-2f, double atol = 1e-3, double rtol = 1e-2, uint64_t seed = 7);

}  // namespace kd
