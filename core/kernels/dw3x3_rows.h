// Depthwise 3x3, stride 1, padding 1, vectorized along rows with masked loads (AVX-512): no
// padded copy of the plane, no compaction of the result. Output row oy, columns [c0, c0+16):
//   out = sum_i sum_j w[i][j] * x[oy-1+i][c0-1+j .. c0+15+j)
// where each shifted row is one masked load whose out-of-plane lanes (column -1, column W, the
// lanes past the row's end) read as zero, and rows -1 and H are skipped. AVX-512 masked loads
// do not fault on masked-off lanes, so the loads may point one element outside the plane.
// The per-call copies of the taps formulation (dw3x3.cpp: a zeroed padded plane, then the
// result compacted row by row) cost more than the arithmetic on 14x14 planes.
// Every kernel walks down the rows once: an input row's three shifted vectors are loaded once
// and feed the (up to) three output rows that read it, whose accumulators roll along in
// registers (dw3x3_rows_avx512.cpp says where GCC had to be kept from spilling them).
//   input gradient (stride 1) = the forward of dout with the kernel flipped;
//   weight gradient: dw[i][j] += sum over rows and columns of dout * the same shifted rows,
//   nine vector accumulators reduced once per channel (all the batch's planes of it).
// The reference is depthwise.h's dw_plane_* loops (tests/test_kernels.cpp compares them).
#pragma once
#include <cstdint>

#include "core/kernels/epilogue.h"

namespace kd::kernels::avx512 {

// The forwards apply ep (core/kernels/epilogue.h) as they store, when it is active.
void dw3x3_s1_rows_forward(const float* x, const float* w, int64_t H, int64_t W, float* out, const ChannelEpilogue& ep);
// Stride 2 (forward only): each input row is loaded as two vectors of 32 columns and
// deinterleaved in registers (even columns: the centre taps; odd: the right taps, and one lane
// later the left taps), instead of dw3x3.cpp's four parity planes copied per call and compacted.
void dw3x3_s2_rows_forward(const float* x, const float* w, int64_t H, int64_t W, float* out, const ChannelEpilogue& ep);
// Stride 2, input gradient (dx overwritten): per input row the even and odd columns are summed
// separately from the one or two output rows that read it, then interleaved in registers.
void dw3x3_s2_rows_input(const float* dout, const float* w, int64_t H, int64_t W, float* dx);
// Stride 2, weight gradient summed over `planes` planes of one channel (as the stride-1 one).
void dw3x3_s2_rows_weight(const float* x, const float* dout, int64_t H, int64_t W, int64_t planes, int64_t x_stride,
                          int64_t d_stride, float* dw);
// Summed over `planes` planes of one channel (x + p * x_stride, dout + p * d_stride), reduced once.
void dw3x3_s1_rows_weight(const float* x, const float* dout, int64_t H, int64_t W, int64_t planes, int64_t x_stride,
                          int64_t d_stride, float* dw);

}  // namespace kd::kernels::avx512
