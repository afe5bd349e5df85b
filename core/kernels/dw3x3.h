// Depthwise 3x3 convolution, stride 1 or 2, padding 1: the student's hot path (about half of
// its training step with the general loops of depthwise.h). One channel plane per call, NCHW.
//
// Each pass is rewritten as the nine-tap stencil of taps.h on zero-padded copies of its
// operands, so the SIMD code has no edge cases:
//   forward, stride 1:   P = pad1(x);                     out = taps(P, shifts i*Wp + j)
//   forward, stride 2:   P split by (row, column) parity into four planes; tap (i, j) reads
//                        plane (i%2, j%2) shifted by (i/2) rows and (j/2) columns
//   input grad:          dx = full correlation of dout with the flipped kernel: stride 1 pads
//                        dout by one; stride 2 first spreads dout to odd positions of a zero
//                        plane (dout[ho][wo] -> Z[2ho+1][2wo+1]), then both are stride-1 taps
//   weight grad:         dw[i][j] += sum dout[ho][wo] * P[s*ho+i][s*wo+j], the same planes
//                        and shifts as the forward, with dout laid out at the planes' row stride
//                        and zero in the padding columns.
// The general loops in depthwise.h are the reference these are tested against.
#pragma once
#include "core/kernels/dispatch.h"
#include "core/kernels/epilogue.h"
#include "core/kernels/im2col.h"

namespace kd::kernels {

// True when the dedicated kernels handle this geometry (3x3, padding 1, stride 1 or 2).
bool dw3x3_applies(const ConvGeom& g);

// With the instruction set chosen by dispatch.h. The forward applies ep to its outputs (inference:
// the folded batch norm and activation; AVX-512 as it stores them, the others in a pass over the
// plane, the same bits).
void dw3x3_forward(const float* x, const float* w, const ConvGeom& g, float* out,
                   const ChannelEpilogue& ep = {});                                          // out =
void dw3x3_backward_input(const float* dout, const float* w, const ConvGeom& g, float* dx);  // dx =
void dw3x3_backward_weight(const float* x, const float* dout, const ConvGeom& g, float* dw);  // dw +=
// The same summed over n planes of one channel: x + i * x_stride, dout + i * d_stride (i < n).
void dw3x3_backward_weight_planes(const float* x, const float* dout, const ConvGeom& g, int64_t n, int64_t x_stride,
                                  int64_t d_stride, float* dw);

// A given variant (tests compare every compiled and supported one with Isa::ref).
void dw3x3_forward(Isa isa, const float* x, const float* w, const ConvGeom& g, float* out,
                   const ChannelEpilogue& ep = {});
void dw3x3_backward_input(Isa isa, const float* dout, const float* w, const ConvGeom& g, float* dx);
void dw3x3_backward_weight(Isa isa, const float* x, const float* dout, const ConvGeom& g, float* dw);
void dw3x3_backward_weight_planes(Isa isa, const float* x, const float* dout, const ConvGeom& g, int64_t n,
                                  int64_t x_stride, int64_t d_stride, float* dw);

}  // namespace kd::kernels
