// Splitting a row into its phases: the padded copies of nn/ops/padded_layout.h store each input
// row as 2 (stride 2, the tap kernels) or 4 (Winograd's tiles) phase planes. As strided loops,
// element by element, those copies took 8-11% of a batch-64 teacher pass (rows of 7 to 28
// floats: the loop overhead is the cost); the AVX-512 variants move 32 or 64 floats per group of
// masked loads, permutes and masked stores.
//   deinterleave2: out[q][k] = src[2k + q], q < 2, for 2k + q < n
//   deinterleave4: out[q][k] = src[4k + q], q < 4, for 4k + q < n
// Pure data movement: every variant gives the same bits.
#pragma once
#include <cstdint>
#include <vector>

namespace kd::kernels {

struct DeinterleaveKernel {
  const char* name;
  void (*two)(const float* src, int64_t n, float* const* out);
  void (*four)(const float* src, int64_t n, float* const* out);
};

void deinterleave2_scalar(const float* src, int64_t n, float* const* out);
void deinterleave4_scalar(const float* src, int64_t n, float* const* out);
namespace avx512 {
void deinterleave2(const float* src, int64_t n, float* const* out);
void deinterleave4(const float* src, int64_t n, float* const* out);
}  // namespace avx512

// The selected variant (AVX-512 where selected; every other instruction set runs the scalar loops).
const DeinterleaveKernel& deinterleave_selected();
// Every variant this CPU runs, the scalar reference first (for the tests).
std::vector<DeinterleaveKernel> deinterleave_kernels();

}  // namespace kd::kernels
