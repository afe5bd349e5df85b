// Beta(a, b) samples from kd::Rng, for the mixing weight of CutMix and mixup.
#pragma once
#include "core/rng.h"

namespace kd {

// X/(X+Y) with X ~ Gamma(a), Y ~ Gamma(b) (Marsaglia & Tsang). a, b > 0.
float sample_beta(Rng& rng, float a, float b);

}  // namespace kd
