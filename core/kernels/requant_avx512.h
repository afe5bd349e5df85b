// requantize() (core/kernels/requant.h) for 16 int32 lanes at once, for the AVX-512 kernels.
// Include only from files compiled with -mavx512f. _mm512_mul_epi32 multiplies the low 32 bits
// of each 64-bit lane as signed: even lanes go in as they are, odd lanes shifted down by 32; each
// 64-bit product gets its rounding term 2^(n-1) and an arithmetic shift by its own n (vpsravq),
// is clamped to [lo - zp, hi - zp] while still 64-bit (a multiplier above 1 can take it past 32
// bits), and the low halves are recombined. Where every shift is >= 33 (multipliers below 1/4,
// the usual case) a shorter path rounds and shifts the high halves in 32 bits (same integers).
#pragma once
#include <immintrin.h>

#include <cstdint>

namespace kd::kernels::avx512 {

struct Requant16 {
  __m512i zp, lo64, hi64, lo32, hi32;
  Requant16(int32_t zp_out, int32_t lo, int32_t hi)
      : zp(_mm512_set1_epi32(zp_out)),
        lo64(_mm512_set1_epi64(int64_t(lo) - zp_out)),
        hi64(_mm512_set1_epi64(int64_t(hi) - zp_out)),
        lo32(_mm512_set1_epi32(lo - zp_out)),
        hi32(_mm512_set1_epi32(hi - zp_out)) {}
  // What depends only on the 16 channels' multipliers m and shifts s, split into even and odd
  // lanes: made once per channel block, then used for every pixel.
  struct Channels {
    __m512i m, m_odd, s_even, s_odd, round_even, round_odd, s_minus32, round_high;
    bool wide_shifts;  // every lane has s >= 33 (or m = 0, a masked-off lane): operator()'s short path
    Channels(__m512i m_, __m512i s) : m(m_), m_odd(_mm512_srli_epi64(m_, 32)) {
      const __m512i one = _mm512_set1_epi64(1);
      s_even = _mm512_and_si512(s, _mm512_set1_epi64(0xFFFFFFFF)), s_odd = _mm512_srli_epi64(s, 32);
      // 2^(s-1); a shift of 0 (masked-off lanes) gives a count of -1, which vpsllvq turns into 0.
      round_even = _mm512_sllv_epi64(one, _mm512_sub_epi64(s_even, one));
      round_odd = _mm512_sllv_epi64(one, _mm512_sub_epi64(s_odd, one));
      s_minus32 = _mm512_sub_epi32(s, _mm512_set1_epi32(32));
      // 2^(s-1) = 2^32 * 2^(s-33): for s >= 33 the rounding term only adds 2^(s-33) to the high half.
      round_high = _mm512_sllv_epi32(_mm512_set1_epi32(1), _mm512_sub_epi32(s, _mm512_set1_epi32(33)));
      wide_shifts = __mmask16(_mm512_cmpge_epi32_mask(s, _mm512_set1_epi32(33)) |
                              _mm512_cmpeq_epi32_mask(m, _mm512_setzero_si512())) == __mmask16(0xFFFF);
    }
  };
  // 16 accumulators -> 16 int32 results in [lo, hi].
  __m512i operator()(__m512i a, const Channels& c) const {
    __m512i even = _mm512_mul_epi32(a, c.m);
    __m512i odd = _mm512_mul_epi32(_mm512_srli_epi64(a, 32), c.m_odd);
    if (c.wide_shifts) {
      // (X + 2^(s-1)) >> s = (hi(X) + 2^(s-33)) >> (s - 32) for s >= 33: floors compose, and adding
      // a multiple of 2^32 to X adds to its high half only. hi(X), the high half of each 64-bit
      // product, is an int32 (|X| < 2^62), with room for the term: even lanes' moved down, odd
      // lanes' already in place. The result is exact in 32 bits, so it is clamped there.
      const __m512i high = _mm512_mask_blend_epi32(__mmask16(0xAAAA), _mm512_srli_epi64(even, 32), odd);
      const __m512i r = _mm512_srav_epi32(_mm512_add_epi32(high, c.round_high), c.s_minus32);
      return _mm512_add_epi32(_mm512_min_epi32(_mm512_max_epi32(r, lo32), hi32), zp);
    }
    even = _mm512_add_epi64(even, c.round_even);
    odd = _mm512_add_epi64(odd, c.round_odd);
    even = _mm512_srav_epi64(even, c.s_even);
    odd = _mm512_srav_epi64(odd, c.s_odd);
    even = _mm512_min_epi64(_mm512_max_epi64(even, lo64), hi64);
    odd = _mm512_min_epi64(_mm512_max_epi64(odd, lo64), hi64);
    const __m512i r = _mm512_mask_blend_epi32(__mmask16(0xAAAA), even, _mm512_slli_epi64(odd, 32));
    return _mm512_add_epi32(r, zp);
  }
  __m512i operator()(__m512i a, __m512i m, __m512i s) const { return (*this)(a, Channels(m, s)); }
};

// 16 int32 lanes in [0, 255] stored as 16 bytes, lanes outside m not written. A full mask gets a
// plain 16-byte store of the narrowed register: the empty asm keeps GCC from folding the narrowing
// into the store (vpmovdb to memory), which perf showed as half of requantize_rows' time on Zen 5.
inline void store_u8x16(uint8_t* p, __mmask16 m, __m512i v) {
  if (m == __mmask16(0xFFFF)) {
    __m128i b = _mm512_cvtepi32_epi8(v);
    asm("" : "+v"(b));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(p), b);
  } else {
    _mm512_mask_cvtepi32_storeu_epi8(p, m, v);
  }
}

}  // namespace kd::kernels::avx512
