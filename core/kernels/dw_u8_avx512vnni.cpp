// Compiled with -mavx512f -mavx512bw -mavx512vl -mavx512vnni -mavx512vbmi (CMakeLists.txt); called
// only where the CPU has all of them, for 3x3 kernels (any stride and padding). One vpdpbusd per kernel row instead of
// three multiplies:
//   1. quads: for every padded input row hp and output column ow, lane c of a 32-bit word holds
//      the four raw input bytes x[hp][ow*stride + j][c], j = 0..3 (columns of the zero-point
//      padded image; the padding bytes are zp_in itself);
//   2. per 16-channel block and output pixel, acc = bias' + sum_i dpbusd(quad[oh*stride + i][ow],
//      (w[i][0], w[i][1], w[i][2], 0)): the u8 x s8 products of a kernel row in one instruction
//      (the fourth byte meets a zero weight), requantized in registers (requant_avx512.h).
// The raw bytes are multiplied, not x - zp_in, so bias' = bias - zp_in * sum_taps w[t][c]:
//   sum_t (x_t - zp) w_t = sum_t x_t w_t - zp sum_t w_t,
// and a padding tap reads x_t = zp, adding zp w_t - zp w_t = 0, exactly the tap that dw_u8_ref
// skips. Integers in any order sum to the same integers: the result is bit-identical to
// dw_u8_ref. (No saturation: vpdpbusd adds its four 16-bit-exact products into 32 bits.)
#include <immintrin.h>

#include <cstring>
#include <vector>

#include "core/kernels/dw_u8.h"
#include "core/kernels/requant_avx512.h"

// GCC 12 reports its own _mm512_undefined_epi32() (the self-initialised __Y inside the shift
// intrinsics) as uninitialised when they inline here; the warning is about the header, not this code.
#pragma GCC diagnostic ignored "-Wuninitialized"

namespace kd::kernels::avx512vnni {

namespace {

// quads[hp][ow][Cs] (int32 words) for hp in [0, H + 2 pad). row: a buffer of Cs * (W + 2 pad + 4)
// bytes holding one zero-point-padded input row channel-group-major, [Cs/16][W + 2 pad + 4][16]:
// the four columns of a quad are then 64 contiguous bytes, and one vpermb (AVX512-VBMI) moves byte
// 16 j + c (column j, channel c) to 4 c + j, the quad of channel c in lane c.
void build_quads(const DwU8Args& a, int64_t Cs, uint8_t* row, int32_t* quads) {
  // Locals, not a.*: the byte stores below may alias any object, so the compiler would reload
  // every field of a after each of them.
  const int64_t H = a.H, W = a.W, pad = a.pad, Wo = a.Wo, stride = a.stride, C = a.C;
  const uint8_t* const x = a.x;
  const int64_t Hp = H + 2 * pad, Wr = W + 2 * pad + 4, G = Cs / 16;
  const uint8_t zp = uint8_t(a.zp_in);
  const __m512i zq = _mm512_set1_epi32(int32_t(0x01010101u * zp));
  alignas(64) uint8_t order[64];
  for (int c = 0; c < 16; ++c)
    for (int j = 0; j < 4; ++j) order[4 * c + j] = uint8_t(16 * j + c);
  const __m512i idx = _mm512_load_si512(order);
  // The padding columns are the same for every row: written once.
  for (int64_t g = 0; g < G; ++g) {
    std::memset(row + g * Wr * 16, zp, size_t(pad * 16));
    std::memset(row + (g * Wr + pad + W) * 16, zp, size_t((Wr - pad - W) * 16));
  }
  const __mmask16 tail = C % 16 ? __mmask16((1u << (C % 16)) - 1u) : __mmask16(0xFFFF);
  for (int64_t hp = 0; hp < Hp; ++hp) {
    int32_t* q = quads + hp * Wo * Cs;
    const int64_t h = hp - pad;
    if (h < 0 || h >= H) {
      for (int64_t i = 0; i < Wo * Cs; i += 16) _mm512_storeu_si512(q + i, zq);
      continue;
    }
    // Lanes past C read as 0 (masked load; no read past the image) and meet zero weights.
    for (int64_t w = 0; w < W; ++w) {
      const uint8_t* xp = x + (h * W + w) * C;
      for (int64_t g = 0; g < G; ++g)
        _mm_storeu_si128(reinterpret_cast<__m128i*>(row + (g * Wr + pad + w) * 16),
                         _mm_maskz_loadu_epi8(g + 1 < G ? __mmask16(0xFFFF) : tail, xp + 16 * g));
    }
    for (int64_t g = 0; g < G; ++g) {
      const uint8_t* rg = row + g * Wr * 16;
      for (int64_t ow = 0; ow < Wo; ++ow)
        _mm512_storeu_si512(q + ow * Cs + 16 * g,
                            _mm512_permutexvar_epi8(idx, _mm512_loadu_si512(rg + ow * stride * 16)));
    }
  }
}

// acc += the four u8 x s8 products of each lane (inline asm: see gemm_u8s8_avx512vnni.cpp).
#define KD_DPBUSD(acc, a, b) asm("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(a), "v"(b))

void block(const DwU8Args& a, int64_t Cs, const int32_t* quads, int64_t c) {
  const int64_t C = a.C, Wo = a.Wo, Ho = a.Ho, stride = a.stride;
  const __mmask16 m = C - c >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (C - c)) - 1u);
  const avx512::Requant16 rq(a.zp_out, a.lo, a.hi);
  const avx512::Requant16::Channels ch(_mm512_maskz_loadu_epi32(m, a.m0 + c), _mm512_maskz_loadu_epi32(m, a.shift + c));
  // Weights of kernel row i as bytes (w[i][0], w[i][1], w[i][2], 0) per lane; bias' as above.
  __m512i wq[3], wsum = _mm512_setzero_si512();
  for (int i = 0; i < 3; ++i) {
    const __m512i w0 = _mm512_maskz_loadu_epi32(m, a.w + (3 * i) * C + c);
    const __m512i w1 = _mm512_maskz_loadu_epi32(m, a.w + (3 * i + 1) * C + c);
    const __m512i w2 = _mm512_maskz_loadu_epi32(m, a.w + (3 * i + 2) * C + c);
    const __m512i byte = _mm512_set1_epi32(0xFF);
    wq[i] =
        _mm512_or_si512(_mm512_and_si512(w0, byte), _mm512_or_si512(_mm512_slli_epi32(_mm512_and_si512(w1, byte), 8),
                                                                    _mm512_slli_epi32(_mm512_and_si512(w2, byte), 16)));
    wsum = _mm512_add_epi32(wsum, _mm512_add_epi32(w0, _mm512_add_epi32(w1, w2)));
  }
  const __m512i bias =
      _mm512_sub_epi32(_mm512_maskz_loadu_epi32(m, a.bias + c), _mm512_mullo_epi32(wsum, _mm512_set1_epi32(a.zp_in)));
  const int64_t row_words = Wo * Cs;
  for (int64_t oh = 0; oh < Ho; ++oh) {
    const int32_t* q0 = quads + (oh * stride) * row_words + c;
    const int32_t *q1 = q0 + row_words, *q2 = q1 + row_words;
    uint8_t* y = a.y + oh * Wo * C + c;
    for (int64_t ow = 0; ow < Wo; ++ow) {
      __m512i acc = bias;
      KD_DPBUSD(acc, _mm512_loadu_si512(q0 + ow * Cs), wq[0]);
      KD_DPBUSD(acc, _mm512_loadu_si512(q1 + ow * Cs), wq[1]);
      KD_DPBUSD(acc, _mm512_loadu_si512(q2 + ow * Cs), wq[2]);
      avx512::store_u8x16(y + ow * C, m, rq(acc, ch));
    }
  }
}
#undef KD_DPBUSD

}  // namespace

void dw3x3_u8(const DwU8Args& a) {
  const int64_t Cs = (a.C + 15) / 16 * 16;
  std::vector<int32_t> own;
  int32_t* quads = a.scratch;
  if (!quads) {
    own.resize(size_t(dw_u8_scratch_size(a)));
    quads = own.data();
  }
  uint8_t* row = reinterpret_cast<uint8_t*>(quads + (a.H + 2 * a.pad) * a.Wo * Cs);
  build_quads(a, Cs, row, quads);
  for (int64_t c = 0; c < a.C; c += 16) block(a, Cs, quads, c);
}

}  // namespace kd::kernels::avx512vnni
