#include "core/kernels/deinterleave.h"

#include "core/kernels/dispatch.h"

namespace kd::kernels {

namespace {
template <int Q>
void deinterleave_ref(const float* src, int64_t n, float* const* out) {
  for (int q = 0; q < Q; ++q)
    for (int64_t k = 0; Q * k + q < n; ++k) out[q][k] = src[Q * k + q];
}
const DeinterleaveKernel kRef{"ref", deinterleave_ref<2>, deinterleave_ref<4>};
#if !defined(KD_SCALAR_ONLY) && defined(__x86_64__)
const DeinterleaveKernel kAvx512{"avx512", avx512::deinterleave2, avx512::deinterleave4};
#endif
}  // namespace

void deinterleave2_scalar(const float* src, int64_t n, float* const* out) { deinterleave_ref<2>(src, n, out); }
void deinterleave4_scalar(const float* src, int64_t n, float* const* out) { deinterleave_ref<4>(src, n, out); }

const DeinterleaveKernel& deinterleave_selected() {
#if !defined(KD_SCALAR_ONLY) && defined(__x86_64__)
  static const DeinterleaveKernel& k = selected_isa() == Isa::avx512 ? kAvx512 : kRef;
  return k;
#else
  return kRef;
#endif
}

std::vector<DeinterleaveKernel> deinterleave_kernels() {
  std::vector<DeinterleaveKernel> v{kRef};
#if !defined(KD_SCALAR_ONLY) && defined(__x86_64__)
  if (isa_compiled(Isa::avx512) && isa_supported(Isa::avx512)) v.push_back(kAvx512);
#endif
  return v;
}

}  // namespace kd::kernels
