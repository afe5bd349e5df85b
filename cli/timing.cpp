#include "cli/timing.h"

#include <algorithm>
#include <chrono>

namespace kd::cli {

double now_s() {
  using namespace std::chrono;
  return duration<double>(steady_clock::now().time_since_epoch()).count();
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

Tensor random_images(int64_t n, const Shape& chw, uint64_t seed) {
  Rng r(seed, 77);
  Tensor x = Tensor::empty({n, chw[0], chw[1], chw[2]});
  for (int64_t i = 0; i < x.numel(); ++i) x.f32()[i] = r.normal();
  return x;
}

Latency measure_latency(Model& m, int64_t batch, int64_t reps, int64_t warmup) {
  NoGrad ng;
  return measure_latency([&](const Tensor& x) { m.forward(Var(x), false); }, m.graph.input_shape, batch, reps, warmup);
}

Latency measure_latency(const std::function<void(const Tensor&)>& forward, const Shape& chw, int64_t batch,
                        int64_t reps, int64_t warmup) {
  const Tensor x = random_images(batch, chw, 2);
  for (int64_t i = 0; i < warmup; ++i) forward(x);
  Latency l;
  for (int64_t r = 0; r < reps; ++r) {
    const double t = now_s();
    forward(x);
    l.runs_ms.push_back(1e3 * (now_s() - t));
  }
  l.median_ms = median(l.runs_ms);
  return l;
}

}  // namespace kd::cli
