#include "core/kernels/phase_split.h"

#include "core/kernels/dispatch.h"

namespace kd::kernels {

void phase_split_scalar(const PhaseSplitArgs& a) {
  const int64_t pitch = a.src_pitch ? a.src_pitch : a.cols;
  for (int64_t h = 0; h < a.rows; ++h) {
    const int64_t r = h + a.top;
    for (int64_t w = 0; w < a.cols; ++w) {
      const int64_t q = a.col0 + w;
      a.dst[((r % a.s) * a.s + q % a.s) * a.plane + (r / a.s) * a.R + q / a.s] = a.src[h * pitch + w];
    }
  }
}

void tile_rows_to_phases_scalar(const TileRowArgs& a) {
  const int64_t src_image = a.src_image ? a.src_image : a.tiles;
  for (int64_t r = 0; r < a.rows; ++r)
    for (int64_t b = 0; b < 4; ++b) {
      const int64_t off = (b + 1) / 4;
      const float* src = a.src + (r * 4 + b) * a.src_pitch;
      float* dst = a.dst + ((r + 1) % 4 * 4 + (b + 1) % 4) * a.plane + (r + 1) / 4 * a.R;
      for (int64_t i = 0; i < a.images; ++i)
        for (int64_t q = 0; q <= a.tiles; ++q) {
          const int64_t t = q - off;
          dst[i * (a.tiles + 1) + q] = t >= 0 && t < a.tiles && 4 * t + b < a.cols ? src[i * src_image + t] : 0.f;
        }
    }
}

namespace {
const PhaseSplitKernel kRef{"ref", phase_split_scalar, tile_rows_to_phases_scalar};
#if !defined(KD_SCALAR_ONLY) && defined(__x86_64__)
bool has_avx512vl() { return __builtin_cpu_supports("avx512vl"); }
const PhaseSplitKernel kAvx512{"avx512", avx512::phase_split, avx512::tile_rows_to_phases};
#endif
}  // namespace

const PhaseSplitKernel& phase_split_selected() {
#if !defined(KD_SCALAR_ONLY) && defined(__x86_64__)
  static const PhaseSplitKernel& k = selected_isa() == Isa::avx512 && has_avx512vl() ? kAvx512 : kRef;
  return k;
#else
  return kRef;
#endif
}

std::vector<PhaseSplitKernel> phase_split_kernels() {
  std::vector<PhaseSplitKernel> v{kRef};
#if !defined(KD_SCALAR_ONLY) && defined(__x86_64__)
  if (isa_compiled(Isa::avx512) && isa_supported(Isa::avx512) && has_avx512vl()) v.push_back(kAvx512);
#endif
  return v;
}

}  // namespace kd::kernels
