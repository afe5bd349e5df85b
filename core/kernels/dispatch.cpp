#include "core/kernels/dispatch.h"

#include <cstdlib>
#include <cstring>

#include "core/error.h"
#include "core/kernels/dw_u8.h"
#include "core/kernels/gemm_u8s8.h"
#include "core/kernels/phase_split.h"
#include "core/kernels/tap_gemm.h"
#include "core/kernels/winograd.h"
#if defined(__aarch64__)
#include <asm/hwcap.h>
#include <sys/auxv.h>
#endif

namespace kd::kernels {

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::ref: return "ref";
    case Isa::avx2: return "avx2";
    case Isa::avx512: return "avx512";
    case Isa::neon: return "neon";
  }
  return "?";
}

bool isa_compiled(Isa isa) {
#if defined(KD_SCALAR_ONLY)
  return isa == Isa::ref;
#elif defined(__x86_64__)
  return isa == Isa::ref || isa == Isa::avx2 || isa == Isa::avx512;
#elif defined(__aarch64__)
  return isa == Isa::ref || isa == Isa::neon;
#else
  return isa == Isa::ref;
#endif
}

bool isa_supported(Isa isa) {
  switch (isa) {
    case Isa::ref: return true;
#if defined(__x86_64__)
    case Isa::avx2: return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case Isa::avx512: return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma");
#endif
#if defined(__aarch64__)
    case Isa::neon: return (getauxval(AT_HWCAP) & HWCAP_ASIMD) != 0;
#endif
    default: return false;
  }
}

bool cpu_has_avx512_vnni() {
#if defined(__x86_64__)
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vnni");
#else
  return false;
#endif
}

bool cpu_has_neon_dotprod() {
#if defined(__aarch64__)
  return (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
#else
  return false;
#endif
}

static Isa choose() {
  const char* e = std::getenv("KD_KERNELS");
  const std::string want = e ? e : "auto";
  if (want == "auto" || want.empty()) {
    for (Isa i : {Isa::avx512, Isa::avx2, Isa::neon})
      if (isa_compiled(i) && isa_supported(i)) return i;
    return Isa::ref;
  }
  for (Isa i : {Isa::ref, Isa::avx2, Isa::avx512, Isa::neon}) {
    if (want != isa_name(i)) continue;
    KD_CHECK(isa_compiled(i), "KD_KERNELS=", want, ": this kd binary was built without the ", want, " kernels");
    KD_CHECK(isa_supported(i), "KD_KERNELS=", want, ": this CPU does not support ", want);
    return i;
  }
  fail("KD_KERNELS='", want, "': allowed: auto, ref, avx2, avx512, neon");
}

Isa selected_isa() {
  static const Isa isa = choose();
  return isa;
}

std::vector<KernelVariant> kernel_variants() {
  DwU8Args dw3x3{};
  dw3x3.kh = dw3x3.kw = 3;
  const std::string isa = isa_name(selected_isa());
  const bool simd = selected_isa() != Isa::ref;
  return {
      {"depthwise 3x3 s1/s2 p1: forward, input grad, weight grad", simd ? isa : "ref",
       selected_isa() == Isa::avx512
           ? "one pass down the rows, masked loads, rolling accumulators; stride 2 deinterleaved in registers "
             "(core/kernels/dw3x3_rows.h)"
       : simd ? "nine-tap stencil on flattened padded planes (core/kernels/dw3x3.cpp)"
              : "direct scalar loops (core/kernels/depthwise.cpp)"},
      {"fused KD loss (softmax/log-softmax, KL*T^2 + CE, gradient)", isa,
       simd ? "three passes per row, exponentials kept (core/kernels/kd_loss.cpp)" : "scalar, sums in double"},
      {"depthwise, other shapes", "ref", "direct scalar loops (core/kernels/depthwise.cpp)"},
      {"dense conv k>1: forward (stride 1, 2), both grads (stride 1)", tap_gemm_variant(),
       "all taps in one register tile over a padded copy, small images side by side (core/kernels/tap_gemm.h, "
       "nn/ops/conv2d_shifted.h), where at most 30% of columns are wasted"},
      {"dense conv 3x3 s1 p1 forward, batches (>= 8 channels)", winograd_selected() ? winograd_selected()->name : "off",
       winograd_selected() ? "Winograd F(4x4,3x3): transforms here, 36 GEMMs on the tap kernel, chunks of 48 tiles "
                             "(core/kernels/winograd.h, nn/ops/conv2d_winograd.h)"
                           : "not used under KD_KERNELS=ref: the direct convolution (tap kernel) instead"},
      {"pointwise 1x1 forward, no gradient, batches, C >= 32", tap_gemm_variant(),
       "the tap kernel with one tap, inputs read in place, folded BN + activation fused into the stores "
       "(nn/ops/conv2d.cpp pointwise_forward)"},
      {"padded copies: phase split of rows (stride 2, Winograd)", phase_split_selected().name,
       std::string(phase_split_selected().name) == "ref" ? "strided scalar loops (core/kernels/phase_split.h)"
                                                         : "permutes of 32/64 floats, all rows in one loop "
                                                           "(core/kernels/phase_split.h)"},
      {"Winograd pairs: tile rows into the next conv's phase planes",
       winograd_selected() ? phase_split_selected().name : "off",
       !winograd_selected() ? "not used: no Winograd here (KD_KERNELS=ref or KD_WINOGRAD=off)"
       : std::string(phase_split_selected().name) == "ref"
           ? "scalar loops (core/kernels/phase_split.h, tile_rows_to_phases)"
           : "vexpandps over 16-lane windows, lane patterns per image (core/kernels/phase_split.h)"},
      {"dense conv, other shapes and gradients", "eigen",
       "Eigen GEMM (vectorized at compile time): 1x1 in place (training, batch 1, < 32 channels), else "
       "im2col / col2im"},
      {"int8 GEMM u8 x s8 -> s32", gemm_s8_name(gemm_s8_selected()),
       "packed 16x4 weight blocks (core/kernels/gemm_u8s8.h); variants: ref avx2 avx512vnni neon neon_dot"},
      {"int8 depthwise 3x3 (u8 NHWC, requantization fused)", dw_u8_selected(dw3x3),
       "16 channels per vector (core/kernels/dw_u8.h); avx512vnni: a kernel row per vpdpbusd; "
       "ARM runs the reference"},
      {"int8 depthwise, other sizes", dw_u8_selected(DwU8Args{}), "as above, one vpmulld per tap"},
      {"int8 requantization row (int32 -> u8)", selected_isa() == Isa::avx512 ? "avx512" : "ref",
       "31-bit multiplier, one rounding (core/kernels/requant.h)"},
      {"INT8 runtime's FP32 first conv -> u8 NHWC", selected_isa() == Isa::avx512 ? "avx512" : "ref",
       "direct conv, 16 output channels per vector, no FMA contraction (core/kernels/conv_f32_u8.h)"},
      {"FMA peak probe (kd bench kernels)", isa, "independent FMA chains (core/kernels/peak.cpp)"},
  };
}

}  // namespace kd::kernels
