// Compiled with -mavx512f (CMakeLists.txt). Two passes:
//  1. widen: the input, minus zp_in, as int32 into a zero-bordered plane [H+2p][W+2p][Cs]
//     (Cs = C rounded up to 16, the extra lanes 0). Each input byte is converted once instead of
//     once per tap that reads it (9 times for a 3x3 stride-1 layer).
//  2. per 16-channel block: bias, multipliers and the taps' weights loaded once (3x3: nine
//     registers), then for every output pixel acc = bias + sum_taps plane[...] * w_tap (vpmulld
//     with the plane as memory operand, no bounds tests: border taps multiply zeros, adding
//     exactly what dw_u8_ref's skipped taps add), requantized in registers (requant_avx512.h),
//     16 bytes stored (masked for the last partial block).
// Integer sums in any order are the same integers, so the result is bit-identical to dw_u8_ref.
#include <immintrin.h>

#include <cstring>
#include <vector>

#include "core/kernels/dw_u8.h"
#include "core/kernels/requant_avx512.h"

// GCC 12 reports the self-initialised __Y inside its own AVX-512 intrinsics as uninitialised
// when they inline here (a header false positive, see dw_u8_avx512vnni.cpp).
#pragma GCC diagnostic ignored "-Wuninitialized"

namespace kd::kernels::avx512 {

namespace {

void widen(const DwU8Args& a, int64_t Cs, int32_t* plane) {
  const int64_t Wp = a.W + 2 * a.pad, C = a.C;
  const __m512i zp = _mm512_set1_epi32(a.zp_in);
  const __mmask16 tail = C % 16 ? __mmask16((1u << (C % 16)) - 1u) : __mmask16(0xFFFF);
  for (int64_t hp = 0; hp < a.H + 2 * a.pad; ++hp) {
    int32_t* row = plane + hp * Wp * Cs;
    const int64_t h = hp - a.pad;
    if (h < 0 || h >= a.H) {
      std::memset(row, 0, size_t(Wp * Cs) * sizeof(int32_t));
      continue;
    }
    std::memset(row, 0, size_t(a.pad * Cs) * sizeof(int32_t));
    std::memset(row + (a.pad + a.W) * Cs, 0, size_t(a.pad * Cs) * sizeof(int32_t));
    for (int64_t w = 0; w < a.W; ++w) {
      const uint8_t* xp = a.x + (h * a.W + w) * C;
      int32_t* out = row + (a.pad + w) * Cs;
      for (int64_t c = 0; c < Cs; c += 16) {
        const __mmask16 m = c + 16 <= C ? __mmask16(0xFFFF) : tail;
        // Lanes past C: (0 - zp) masked back to 0.
        const __m512i v = _mm512_maskz_sub_epi32(m, _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, xp + c)), zp);
        _mm512_storeu_si512(out + c, v);
      }
    }
  }
}

// One 16-channel block; TAPS = kh*kw when it is known at compile time (weights in registers),
// 0 for the general loop.
template <int TAPS>
void block(const DwU8Args& a, int64_t Cs, const int32_t* plane, int64_t c) {
  const int64_t C = a.C, kh = a.kh, kw = a.kw, stride = a.stride, Wo = a.Wo, Ho = a.Ho;
  const int64_t Wp = a.W + 2 * a.pad, taps = kh * kw;
  const __mmask16 m = C - c >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (C - c)) - 1u);
  const Requant16 rq(a.zp_out, a.lo, a.hi);
  const __m512i bias = _mm512_maskz_loadu_epi32(m, a.bias + c);
  const Requant16::Channels ch(_mm512_maskz_loadu_epi32(m, a.m0 + c), _mm512_maskz_loadu_epi32(m, a.shift + c));
  // Tap t = i*kw + j sits at plane offset (i*Wp + j)*Cs from the window's corner.
  constexpr int kRegs = TAPS > 0 ? TAPS : 1;
  __m512i wr[kRegs];
  int64_t off[kRegs];
  if constexpr (TAPS > 0)
    for (int t = 0; t < TAPS; ++t)
      wr[t] = _mm512_maskz_loadu_epi32(m, a.w + t * C + c), off[t] = ((t / kw) * Wp + (t % kw)) * Cs;
  uint8_t* const y = a.y;
  for (int64_t oh = 0; oh < Ho; ++oh)
    for (int64_t ow = 0; ow < Wo; ++ow) {
      const int32_t* corner = plane + ((oh * stride) * Wp + ow * stride) * Cs + c;
      __m512i acc = bias;
      if constexpr (TAPS > 0) {
        for (int t = 0; t < TAPS; ++t)
          acc = _mm512_add_epi32(acc, _mm512_mullo_epi32(_mm512_loadu_si512(corner + off[t]), wr[t]));
      } else {
        for (int64_t i = 0; i < kh; ++i)
          for (int64_t j = 0; j < kw; ++j)
            acc = _mm512_add_epi32(acc, _mm512_mullo_epi32(_mm512_loadu_si512(corner + (i * Wp + j) * Cs),
                                                            _mm512_maskz_loadu_epi32(m, a.w + (i * kw + j) * C + c)));
      }
      store_u8x16(y + (oh * Wo + ow) * C + c, m, rq(acc, ch));
    }
  (void)taps;
}

}  // namespace

void dw_u8(const DwU8Args& a) {
  const int64_t Cs = (a.C + 15) / 16 * 16;
  std::vector<int32_t> own;
  int32_t* plane = a.scratch;
  if (!plane) {
    own.resize(size_t(dw_u8_scratch_size(a)));
    plane = own.data();
  }
  widen(a, Cs, plane);
  for (int64_t c = 0; c < a.C; c += 16) {
    if (a.kh == 3 && a.kw == 3)
      block<9>(a, Cs, plane, c);
    else
      block<0>(a, Cs, plane, c);
  }
}

}  // namespace kd::kernels::avx512
