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

void phase_split_scalar(const PhaseSplitArgs& a);
namespace avx512 {
void phase_split(const PhaseSplitArgs& a);
}

struct PhaseSplitKernel {
  const char* name;
  void (*run)(const PhaseSplitArgs&);
};
// The selected variant (AVX-512 where selected; every other instruction set runs the scalar loops).
const PhaseSplitKernel& phase_split_selected();
// Every variant this CPU runs, the scalar reference first (for the tests).
std::vector<PhaseSplitKernel> phase_split_kernels();

}  // namespace kd::kernels
