#include "nn/ops/padded_layout.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "core/kernels/phase_split.h"
#include "core/kernels/tap_gemm.h"

namespace kd::F::padded {

Layout make_layout(int64_t C, int64_t rows, int64_t cols_in, int64_t kh, int64_t kw, int64_t s, int64_t top,
                   int64_t lead, int64_t G) {
  Layout L{};
  L.s = s, L.G = G, L.rows = rows, L.cols_in = cols_in, L.top = top, L.lead = lead;
  const int64_t Hp = rows + 2 * top;
  L.Ho = (Hp - kh) / s + 1;
  L.Wo = (cols_in + 2 * lead - kw) / s + 1;
  // Stride 1: the last image's right padding is the next row's first `lead` columns, image 0's
  // left padding there (zeros; past the last row, the next channel's first row's, or the copy's
  // zero tail), so a row needs no columns of its own for it: the copy and the tap GEMM's columns
  // shrink by `lead` a row (a 7x7 image: 63 -> 56 columns, 11% of that layer's work).
  L.Ws = s == 1 ? cols_in + lead : (cols_in + 2 * lead + s - 1) / s * s;
  const int64_t Wc = G * L.Ws;  // the combined padded row
  L.Hq = (Hp + s - 1) / s;
  L.R = Wc / s;
  L.pitch = s * s * L.Hq * L.R;
  L.cols = L.Ho * L.R;
  // The last channel is read up to its pitch plus kw-1 floats (the last tap's shift past the last
  // output column), and past that by tap_gemm's last column tile, computed whole.
  L.total = C * L.pitch + kw + kernels::kTapGemmSlack;
  return L;
}

Layout make_tile_layout(int64_t C, int64_t rows, int64_t cols_in, int64_t m, int64_t G) {
  Layout L{};
  L.s = m, L.G = G, L.rows = rows, L.cols_in = cols_in, L.top = 1, L.lead = 1;
  L.Ho = (rows + m - 1) / m;     // tile rows
  L.Wo = (cols_in + m - 1) / m;  // tile columns of one image
  // A tile's patch reaches m + 1 padded columns past its first: the last one's must be this
  // image's (zeros), not the next image's pixels.
  L.Ws = (L.Wo * m + 2 + m - 1) / m * m;
  L.Hq = L.Ho + 1;  // patch rows reach phase row th + 1
  L.R = G * L.Ws / m;
  L.pitch = m * m * L.Hq * L.R;
  L.cols = L.Ho * L.R;
  L.total = C * L.pitch + kernels::kTapGemmSlack;
  return L;
}

void build(const float* src, int64_t image_stride, int64_t C, const Layout& L, float* dst) {
  build(src, image_stride, C, L, dst, 0, C);
}

void build(const float* src, int64_t image_stride, int64_t C, const Layout& L, float* dst, int64_t c0, int64_t c1,
           int64_t channel_pitch, int64_t row_pitch) {
  KD_CHECK(L.s == 1 || L.s == 2 || L.s == 4, "padded copy: stride ", L.s, " (1, 2 or 4 supported)");
  KD_CHECK(L.s == 1 || (channel_pitch == 0 && row_pitch == 0), "padded copy: source pitches at stride 1 only");
  if (channel_pitch == 0) channel_pitch = L.rows * L.cols_in;
  if (row_pitch == 0) row_pitch = L.cols_in;
  const kernels::PhaseSplitKernel& split = kernels::phase_split_selected();
  std::fill(dst + c0 * L.pitch, dst + (c1 == C ? L.total : c1 * L.pitch), 0.f);
  for (int64_t g = 0; g < L.G; ++g)
    for (int64_t c = c0; c < c1; ++c) {
      const float* plane = src + g * image_stride + c * channel_pitch;
      const int64_t col0 = g * L.Ws + L.lead;
      if (L.s == 1) {
        for (int64_t h = 0; h < L.rows; ++h)
          std::memcpy(dst + c * L.pitch + (h + L.top) * L.R + col0, plane + h * row_pitch,
                      sizeof(float) * size_t(L.cols_in));
      } else {
        split.run(kernels::PhaseSplitArgs{.src = plane,
                                          .rows = L.rows,
                                          .cols = L.cols_in,
                                          .s = L.s,
                                          .top = L.top,
                                          .col0 = col0,
                                          .dst = dst + c * L.pitch,
                                          .plane = L.Hq * L.R,
                                          .R = L.R});
      }
    }
}

}  // namespace kd::F::padded
