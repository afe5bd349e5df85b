#include "core/kernels/kd_loss.h"

#include <vector>

#include "core/aligned64.h"
#include "core/error.h"
#include "core/threads.h"

namespace kd::kernels {

static KdRowFn row_fn(Isa isa) {
  switch (isa) {
#if !defined(KD_SCALAR_ONLY) && defined(__x86_64__)
    case Isa::avx512: return avx512::kd_row;
    case Isa::avx2: return avx2::kd_row;
#endif
#if !defined(KD_SCALAR_ONLY) && defined(__aarch64__)
    case Isa::neon: return neon::kd_row;
#endif
    default: return kd_row_scalar;
  }
}

double kd_loss(Isa isa, const KdLossArgs& a) {
  KD_CHECK(a.N > 0 && a.K > 0, "kd_loss: empty logits [", a.N, ",", a.K, "]");
  KD_CHECK(a.T > 0, "kd_loss: temperature must be > 0, got ", a.T);
  KD_CHECK(a.alpha >= 0 && a.alpha <= 1, "kd_loss: alpha must be in [0, 1], got ", a.alpha);
  if (a.alpha < 1)
    for (int64_t n = 0; n < a.N; ++n)
      KD_CHECK(a.y[n] >= 0 && a.y[n] < a.K, "kd_loss: label ", a.y[n], " of row ", n, " is outside [0, ", a.K, ")");
  const KdRowFn fn = row_fn(isa);
  std::vector<double> row_loss(size_t(a.N));
  const float inv_n = 1.f / float(a.N);
  auto row = [&](int64_t n, float* scratch) {
    row_loss[size_t(n)] = fn(a.s + n * a.K, a.alpha > 0 ? a.t + n * a.K : nullptr, a.alpha < 1 ? a.y[n] : 0, a.K, a.T,
                             a.alpha, inv_n, a.grad ? a.grad + n * a.K : nullptr, scratch);
  };
  // From a 64-byte boundary, its rows padded to 16 floats: every scratch row starts on a line.
  auto scratch = [&] {
    thread_local std::vector<float> buffer;
    return aligned64(buffer, kd_row_scratch_floats(a.K));
  };
  if (a.N < 2 || a.N * a.K < kParallelMinWork || omp_in_parallel()) {
    // A 10-class head at batch 128 is ~2 us of work: waking the team cost ~90 us of it.
    float* const s = scratch();
    for (int64_t n = 0; n < a.N; ++n) row(n, s);
  } else {
#pragma omp parallel
    {
      float* const s = scratch();
#pragma omp for schedule(static)
      for (int64_t n = 0; n < a.N; ++n) row(n, s);
    }
  }
  double sum = 0;
  for (double v : row_loss) sum += v;
  return sum / double(a.N);
}

double kd_loss(const KdLossArgs& a) { return kd_loss(selected_isa(), a); }

}  // namespace kd::kernels
