// The mean of a plane of floats, summed in 8 interleaved partial sums (lane j takes elements
// j, j+8, ...), then the lanes pairwise, then the tail. One dependent add per element (the plain
// loop) runs at the add latency, 4 cycles here; eight independent chains run at the throughput
// and vectorize. Global average pooling and the gated runner's saliency input both use this,
// so they round identically (the runner's channel choice must equal the masked forward's).
#pragma once
#include <cstdint>

namespace kd::kernels {

inline float plane_mean(const float* x, int64_t n) {
  float lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) lane[j] += x[i + j];
  float tail = 0;
  for (; i < n; ++i) tail += x[i];
  const float s = ((lane[0] + lane[4]) + (lane[2] + lane[6])) + ((lane[1] + lane[5]) + (lane[3] + lane[7]));
  return (s + tail) / float(n);
}

}  // namespace kd::kernels
