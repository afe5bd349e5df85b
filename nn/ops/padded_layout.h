// The zero-padded copy that the tap kernels (nn/ops/conv2d_shifted.h) and the Winograd
// convolution (nn/ops/conv2d_winograd.h) read: G images side by side in each padded row, split
// into the row and column phases mod the stride (2, or 4 for Winograd's tiles), so that every
// tap or tile element is one contiguous run.
#pragma once
#include <cstdint>

namespace kd::F::padded {

// Where G images of C channels (each rows x cols_in) sit in the padded copy, and where the
// output columns land. Per channel: s*s sub-planes (the row and column parities at stride 2; one
// plane at stride 1) of Hq rows of R floats. Image g's pixel (h, w) is at padded row h + top and
// combined column g*Ws + lead + w.
//   stride 1: Ws = cols_in + lead, so neighbouring images share their zero columns, and R = G*Ws:
//             the last image's right padding is the next row's start (a 7x7 image with padding
//             1 wastes 1 column in 8 instead of 2 in 9);
//   stride 2: Ws = cols_in + 2*lead rounded up to even, so every image starts on an even column
//             and the parities mean the same in every image.
// Tap (i, j) reads sub-plane (i % s, j % s) from row i / s, column j / s, so output (g, ho, wo)
// is at column ho*R + g*Ws/s + wo of the tap GEMM's result; the columns between are garbage.
struct Layout {
  int64_t s, G, rows, cols_in, top, lead, Ws, Hq, R, pitch, Ho, Wo, cols, total;
  int64_t shift(int64_t i, int64_t j) const { return (((i % s) * s + j % s) * Hq + i / s) * R + j / s; }
  int64_t out_col(int64_t g, int64_t ho) const { return ho * R + g * Ws / s; }
};

// The layout of G images of C channels (rows x cols_in), padded by `top` rows above and below and
// `lead` columns, for a kh x kw kernel at stride s (1 or 2).
Layout make_layout(int64_t C, int64_t rows, int64_t cols_in, int64_t kh, int64_t kw, int64_t s, int64_t top,
                   int64_t lead, int64_t G);

// Winograd's layout (nn/ops/conv2d_winograd.h): tiles of m x m outputs (m = 2 or 4) whose
// patches of m + 2 start every m padded rows and columns, padding 1; the patch element (i, j) of
// consecutive tiles is the run at shift(i, j). Ho x Wo here count the tiles of one image, and
// each image row holds Ws / m tile columns, the last of them garbage.
Layout make_tile_layout(int64_t C, int64_t rows, int64_t cols_in, int64_t m, int64_t G);

// The padded copy of G images (image g at src + g * image_stride, C planes of rows x cols_in).
void build(const float* src, int64_t image_stride, int64_t C, const Layout& L, float* dst);
// Its channels [c0, c1) (and, with c1 == C, the zeros past the last): threads building disjoint
// ranges together build the whole copy. At stride 1 the source planes may be spread out: row h of
// channel c at src + c * channel_pitch + h * row_pitch (0: rows x cols_in packed), as a tap GEMM's
// result leaves them (shifted::forward_pair).
void build(const float* src, int64_t image_stride, int64_t C, const Layout& L, float* dst, int64_t c0, int64_t c1,
           int64_t channel_pitch = 0, int64_t row_pitch = 0);

}  // namespace kd::F::padded
