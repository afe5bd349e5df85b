#include "data/beta.h"

#include <cmath>

#include "core/error.h"

namespace kd {

namespace {

// log of a Gamma(k, 1) draw. Logs, because mixing alphas are often small (0.2 or less), and
// then the draw itself can underflow to 0 in double and make X/(X+Y) a 0/0.
double log_gamma_draw(Rng& rng, double k) {
  if (k < 1.0) {
    // Marsaglia & Tsang's boost: Gamma(k) = Gamma(k+1) * U^(1/k). 1 - uniform() is in (0, 1],
    // so the log is finite.
    const double u = 1.0 - rng.uniform();
    return log_gamma_draw(rng, k + 1.0) + std::log(u) / k;
  }
  // Marsaglia & Tsang (2000): for k >= 1, d*v with v = (1 + c*z)^3, z ~ N(0,1), accepted by a
  // squeeze test, then the exact test, is Gamma(k) distributed.
  const double d = k - 1.0 / 3.0, c = 1.0 / std::sqrt(9.0 * d);
  for (;;) {
    const double z = rng.normal();
    double v = 1.0 + c * z;
    if (v <= 0.0) continue;
    v = v * v * v;
    const double u = 1.0 - rng.uniform();
    if (u < 1.0 - 0.0331 * z * z * z * z || std::log(u) < 0.5 * z * z + d * (1.0 - v + std::log(v)))
      return std::log(d) + std::log(v);
  }
}

}  // namespace

float sample_beta(Rng& rng, float a, float b) {
  KD_CHECK(a > 0 && b > 0, "sample_beta: parameters must be positive, got ", a, ", ", b);
  const double lx = log_gamma_draw(rng, a), ly = log_gamma_draw(rng, b);
  // X/(X+Y) = 1/(1 + Y/X); exp overflowing to inf gives the right limit 0.
  return static_cast<float>(1.0 / (1.0 + std::exp(ly - lx)));
}

}  // namespace kd
