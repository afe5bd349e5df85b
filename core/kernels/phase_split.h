// The phase split of the stride-2 and Winograd padded copies (nn/ops/padded_layout.h): one image
// channel of rows x cols floats written into the s x s phase planes of its padded copy (s = 2 for
// the tap kernels at stride 2, 4 for Winograd's tiles). Pixel (h, w) is at padded row r = h + top
// and combined column q = col0 + w; it goes to plane (r % s, q % s), row r / s, column q / s:
//   dst[((r % s) * s + q % s) * plane + (r / s) * R + q / s] = src[h * src_pitch + w]
// (src_pitch 0: cols, the rows packed).
// Row by row, as strided loops or one kernel call per row, this copy took 8-11% of a batch-64
// teacher pass (rows of 7 to 28 floats: the per-row overhead was the cost); the AVX-512 variant
// splits each row with masked loads, permutes and masked stores in one loop over the rows.
// Pure data movement: every variant gives the same bits.
#pragma once
#include <cstdint>
#include <vector>

namespace kd::kernels {

struct PhaseSplitArgs {
  const float* src = nullptr;
  int64_t rows = 0, cols = 0;
  int64_t src_pitch = 0;  // floats from one source row to the next; 0: cols
  int64_t s = 2;  // 2 or 4
  int64_t top = 0, col0 = 0;
  float* dst = nullptr;
  int64_t plane = 0, R = 0;
};

// A Winograd tile row of one output channel, for a run of images, into the 16 phase planes of the
// next 3x3 convolution's padded copy (nn/ops/padded_layout.h, make_tile_layout: padding 1, each
// image's padded row Ws = 4 (tiles + 1) wide), from winograd_output_planar's layout (element (a, b)
// of the images' consecutive tiles in row a * 4 + b). Output (4 th + a, 4 t + b) of image i sits at
// padded row 4 th + a + 1 and column i Ws + 4 t + b + 1, i.e. in plane ((a + 1) % 4, (b + 1) % 4),
// row th + (a + 1) / 4, column i (tiles + 1) + t + (b + 1) / 4: one run per (a, b), with one
// padding column per image. For a < rows, b < 4 and every column j = i (tiles + 1) + q of the run
// (i < images, q <= tiles), t = q - (b + 1) / 4:
//   dst[((a+1) % 4 * 4 + (b+1) % 4) * plane + (a+1) / 4 * R + j] =
//       0 <= t < tiles && 4 t + b < cols ? src[(a * 4 + b) * src_pitch + i * src_image + t] : 0
// (dst: plane (0, 0), row th of the channel's copy; the zeros fall on padding: each image's left
// and right padding columns and the outputs past its right edge, which its last tile computes
// when cols is not a multiple of 4). Rows a >= rows (past the image's bottom) are not written.
// src_image: tiles (0), or more where the transforms kept each image's garbage last tile column.
// Room: the AVX-512 variant reads each src row up to 16 floats past its last tile.
struct TileRowArgs {
  const float* src = nullptr;
  int64_t src_pitch = 0, src_image = 0;
  int64_t rows = 4, images = 0, tiles = 0, cols = 0;
  float* dst = nullptr;
  int64_t plane = 0, R = 0;
};

void phase_split_scalar(const PhaseSplitArgs& a);
void tile_rows_to_phases_scalar(const TileRowArgs& a);
namespace avx512 {
void phase_split(const PhaseSplitArgs& a);
void tile_rows_to_phases(const TileRowArgs& a);
}  // namespace avx512

struct PhaseSplitKernel {
  const char* name;
  void (*run)(const PhaseSplitArgs&);
  void (*tile_rows)(const TileRowArgs&);
};
// The selected variant (AVX-512 where selected; every other instruction set runs the scalar loops).
const PhaseSplitKernel& phase_split_selected();
// Every variant this CPU runs, the scalar reference first (for the tests).
std::vector<PhaseSplitKernel> phase_split_kernels();

}  // namespace kd::kernels
