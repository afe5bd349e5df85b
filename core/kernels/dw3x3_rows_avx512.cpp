// Compiled with -mavx512f (CMakeLists.txt). See dw3x3_rows.h.
#include <immintrin.h>

#include <algorithm>

#include "core/kernels/dw3x3_rows.h"

// GCC 12 reports the self-initialised __Y inside its own AVX-512 intrinsics as uninitialised
// when they inline here (a header false positive, see dw_u8_avx512vnni.cpp).
#pragma GCC diagnostic ignored "-Wuninitialized"

namespace kd::kernels::avx512 {

namespace {
__mmask16 lanes(int64_t from, int64_t to) {  // lanes [from, to) of 16, clamped
  from = std::clamp<int64_t>(from, 0, 16), to = std::clamp<int64_t>(to, 0, 16);
  return to > from ? __mmask16(((1u << to) - 1u) & ~((1u << from) - 1u)) : __mmask16(0);
}
// Masks of the three shifted loads of the chunk starting at column c0 (n = its valid columns).
struct ChunkMasks {
  __mmask16 left, centre, right;
};
// Inlined by force: called once per plane and chunk, GCC kept it out of line (1.6% of a batch-64
// student pass), and in the weight gradient the call made it keep its sums in memory.
[[gnu::always_inline]] inline ChunkMasks chunk_masks(int64_t c0, int64_t W) {
  const int64_t n = std::min<int64_t>(16, W - c0);
  return {lanes(c0 == 0 ? 1 : 0, n), lanes(0, n), lanes(0, std::min(n, W - c0 - 1))};
}
}  // namespace

namespace {
// The epilogue in registers, as ChannelEpilogue: fma, then max with lo and min with hi (NaN, the
// second operand, passes).
struct EpilogueRegs {
  __m512 scale, bias, lo, hi;
  explicit EpilogueRegs(const ChannelEpilogue& e)
      : scale(_mm512_set1_ps(e.scale)),
        bias(_mm512_set1_ps(e.bias)),
        lo(_mm512_set1_ps(e.lo)),
        hi(_mm512_set1_ps(e.hi)) {}
};
template <bool EP>
[[gnu::always_inline]] inline __m512 finish(__m512 acc, const EpilogueRegs& e) {
  if constexpr (EP) return _mm512_min_ps(e.hi, _mm512_max_ps(e.lo, _mm512_fmadd_ps(acc, e.scale, e.bias)));
  return acc;
}
}  // namespace

namespace {
// Input row r meets output rows r + 1, r and r - 1 through kernel rows 0, 1 and 2. One pass down
// the rows of a chunk: each input row's three shifted vectors are loaded once (blocks of output
// rows re-loaded the rows on their edges: 66 loads for a 14x14 plane instead of 42) and three
// accumulators roll along, so the nine FMAs of an output row are spread over three iterations
// and the chains of neighbouring rows overlap. Each output row still sums its taps in the
// order (row 0, 1, 2) x (column 0, 1, 2), as the reference does.
template <bool EP>
void chunk_rows(const float* x, const __m512* k, int64_t H, int64_t W, int64_t c0, const ChunkMasks& m, float* out,
                const EpilogueRegs& e) {
  __m512 up = _mm512_setzero_ps(), mid = _mm512_setzero_ps();  // output rows r - 1 and r
  for (int64_t r = 0; r < H; ++r) {
    const float* row = x + r * W + c0;
    const __m512 a = _mm512_maskz_loadu_ps(m.left, row - 1), b = _mm512_maskz_loadu_ps(m.centre, row),
                 c = _mm512_maskz_loadu_ps(m.right, row + 1);
    if (r >= 1) {  // output row r - 1 is complete with its kernel row 2
      up = _mm512_fmadd_ps(a, k[6], up);
      up = _mm512_fmadd_ps(b, k[7], up);
      up = _mm512_fmadd_ps(c, k[8], up);
      _mm512_mask_storeu_ps(out + (r - 1) * W + c0, m.centre, finish<EP>(up, e));
    }
    mid = _mm512_fmadd_ps(a, k[3], mid);
    mid = _mm512_fmadd_ps(b, k[4], mid);
    mid = _mm512_fmadd_ps(c, k[5], mid);
    __m512 down = _mm512_mul_ps(a, k[0]);  // output row r + 1 starts with kernel row 0
    down = _mm512_fmadd_ps(b, k[1], down);
    down = _mm512_fmadd_ps(c, k[2], down);
    up = mid, mid = down;
  }
  _mm512_mask_storeu_ps(out + (H - 1) * W + c0, m.centre, finish<EP>(up, e));  // no row H below
}
}  // namespace

void dw3x3_s1_rows_forward(const float* x, const float* w, int64_t H, int64_t W, float* out,
                           const ChannelEpilogue& ep) {
  __m512 k[9];
  for (int q = 0; q < 9; ++q) k[q] = _mm512_set1_ps(w[q]);
  const EpilogueRegs e(ep);
  for (int64_t c0 = 0; c0 < W; c0 += 16)
    if (ep.active())
      chunk_rows<true>(x, k, H, W, c0, chunk_masks(c0, W), out, e);
    else
      chunk_rows<false>(x, k, H, W, c0, chunk_masks(c0, W), out, e);
}

namespace {
// One input row, deinterleaved for 16 stride-2 outputs from column o0: centre = x[2(o0+k)],
// right = x[2(o0+k) + 1], left = x[2(o0+k) - 1] (the odd columns one lane later: lane 0 is the
// previous chunk's last odd column, or the padding for the first chunk).
struct S2Row {
  __m512 left, centre, right;
};
S2Row s2_row(const float* row, int64_t W, int64_t o0, __m512 prev_odd) {
  const int64_t c = 2 * o0;
  const __m512 v0 = _mm512_maskz_loadu_ps(lanes(0, W - c), row + c);
  const __m512 v1 = _mm512_maskz_loadu_ps(lanes(0, W - c - 16), row + c + 16);
  const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
  const __m512i odd = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
  const __m512 o = _mm512_permutex2var_ps(v0, odd, v1);
  const __m512 left =
      _mm512_castsi512_ps(_mm512_alignr_epi32(_mm512_castps_si512(o), _mm512_castps_si512(prev_odd), 15));
  return {left, _mm512_permutex2var_ps(v0, even, v1), o};
}
// Input row r of the plane x for the chunk of outputs from column o0; zero past the last row.
// Lane 0's left column 2 o0 - 1 is the previous chunk's last odd one: one broadcast load.
S2Row s2_input_row(const float* x, int64_t r, int64_t H, int64_t W, int64_t o0) {
  const __m512 zero = _mm512_setzero_ps();
  if (r >= H) return S2Row{zero, zero, zero};
  const float* row = x + r * W;
  return s2_row(row, W, o0, o0 > 0 ? _mm512_set1_ps(row[2 * o0 - 1]) : zero);
}
}  // namespace

namespace {
template <bool EP>
void s2_rows_forward(const float* x, const float* w, int64_t H, int64_t W, float* out, const EpilogueRegs& e) {
  const int64_t Ho = (H - 1) / 2 + 1, Wo = (W - 1) / 2 + 1;
  __m512 k[9];
  for (int q = 0; q < 9; ++q) k[q] = _mm512_set1_ps(w[q]);
  const __m512 zero = _mm512_setzero_ps();
  // Output row oy reads input rows 2 oy - 1, 2 oy, 2 oy + 1 through kernel rows 0, 1, 2; row
  // 2 oy + 1 is kept in registers for row oy + 1. (Blocks of four output rows with run-time
  // bounds kept their accumulators on the stack: a store after every three FMAs.)
  for (int64_t o0 = 0; o0 < Wo; o0 += 16) {
    const __mmask16 m = lanes(0, Wo - o0);
    S2Row up{zero, zero, zero};  // input row -1: the padding
    for (int64_t oy = 0; oy < Ho; ++oy) {
      const S2Row mid = s2_input_row(x, 2 * oy, H, W, o0), down = s2_input_row(x, 2 * oy + 1, H, W, o0);
      __m512 acc = _mm512_mul_ps(up.left, k[0]);
      acc = _mm512_fmadd_ps(up.centre, k[1], acc);
      acc = _mm512_fmadd_ps(up.right, k[2], acc);
      acc = _mm512_fmadd_ps(mid.left, k[3], acc);
      acc = _mm512_fmadd_ps(mid.centre, k[4], acc);
      acc = _mm512_fmadd_ps(mid.right, k[5], acc);
      acc = _mm512_fmadd_ps(down.left, k[6], acc);
      acc = _mm512_fmadd_ps(down.centre, k[7], acc);
      acc = _mm512_fmadd_ps(down.right, k[8], acc);
      _mm512_mask_storeu_ps(out + oy * Wo + o0, m, finish<EP>(acc, e));
      up = down;
    }
  }
}
}  // namespace

void dw3x3_s2_rows_forward(const float* x, const float* w, int64_t H, int64_t W, float* out,
                           const ChannelEpilogue& ep) {
  if (ep.active())
    s2_rows_forward<true>(x, w, H, W, out, EpilogueRegs(ep));
  else
    s2_rows_forward<false>(x, w, H, W, out, EpilogueRegs(ep));
}

void dw3x3_s2_rows_input(const float* dout, const float* w, int64_t H, int64_t W, float* dx) {
  const int64_t Ho = (H - 1) / 2 + 1, Wo = (W - 1) / 2 + 1;
  // Input column 2m is read by output column m through kernel column 1; column 2m + 1 by output
  // column m through kernel column 2 and by m + 1 through kernel column 0. Input row 2q is read by
  // output row q through kernel row 1; row 2q + 1 by q through row 2 and by q + 1 through row 0.
  // So one pass down the output rows: row q + 1's two loads (its columns m and m + 1) serve input
  // rows 2q + 1 and 2q + 2 (walking the input rows re-loaded each output row up to three times).
  const __m512i lo_idx = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  const __m512i hi_idx = _mm512_set_epi32(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8);
  __m512 k[9];
  for (int q = 0; q < 9; ++q) k[q] = _mm512_set1_ps(w[q]);
  const __m512 zero = _mm512_setzero_ps();
  for (int64_t o0 = 0; o0 < Wo; o0 += 16) {
    const __mmask16 mc = lanes(0, Wo - o0), mn = lanes(0, Wo - o0 - 1);
    const __mmask16 s0 = lanes(0, W - 2 * o0), s1 = lanes(0, W - 2 * o0 - 16);
    auto store = [&](int64_t r, __m512 even, __m512 odd) {
      float* row = dx + r * W + 2 * o0;
      _mm512_mask_storeu_ps(row, s0, _mm512_permutex2var_ps(even, lo_idx, odd));
      _mm512_mask_storeu_ps(row + 16, s1, _mm512_permutex2var_ps(even, hi_idx, odd));
    };
    // Output row q's columns m (dc) and m + 1 (dn).
    __m512 dc = _mm512_maskz_loadu_ps(mc, dout + o0), dn = _mm512_maskz_loadu_ps(mn, dout + o0 + 1);
    for (int64_t q = 0; q < Ho; ++q) {
      // Input row 2q: output row q through kernel row 1.
      __m512 even = _mm512_fmadd_ps(dc, k[4], zero);
      __m512 odd = _mm512_fmadd_ps(dc, k[5], zero);
      odd = _mm512_fmadd_ps(dn, k[3], odd);
      store(2 * q, even, odd);
      if (2 * q + 1 >= H) break;
      // Input row 2q + 1: output row q through kernel row 2, then row q + 1 through kernel row 0.
      even = _mm512_fmadd_ps(dc, k[7], zero);
      odd = _mm512_fmadd_ps(dc, k[8], zero);
      odd = _mm512_fmadd_ps(dn, k[6], odd);
      dc = zero, dn = zero;
      if (q + 1 < Ho) {
        const float* d = dout + (q + 1) * Wo + o0;
        dc = _mm512_maskz_loadu_ps(mc, d), dn = _mm512_maskz_loadu_ps(mn, d + 1);
        even = _mm512_fmadd_ps(dc, k[1], even);
        odd = _mm512_fmadd_ps(dc, k[2], odd);
        odd = _mm512_fmadd_ps(dn, k[0], odd);
      }
      store(2 * q + 1, even, odd);
    }
  }
}

void dw3x3_s2_rows_weight(const float* x, const float* dout, int64_t H, int64_t W, int64_t planes, int64_t x_stride,
                          int64_t d_stride, float* dw) {
  const int64_t Ho = (H - 1) / 2 + 1, Wo = (W - 1) / 2 + 1;
  const __m512 zero = _mm512_setzero_ps();
  __m512 acc[9];
  for (auto& a : acc) a = zero;
  // dw[i][j] += sum dout[oy][ox] x[2 oy - 1 + i][2 ox - 1 + j]: the forward's rolling rows, the
  // nine sums in locals per chunk (in acc[] across the s2_row calls they went to the stack).
  for (int64_t o0 = 0; o0 < Wo; o0 += 16) {  // chunks outside, planes inside, as stride 1
    const __mmask16 m = lanes(0, Wo - o0);
    __m512 l[9];
    for (int q = 0; q < 9; ++q) l[q] = acc[q];
    for (int64_t p = 0; p < planes; ++p) {
      const float *xp = x + p * x_stride, *dp = dout + p * d_stride;
      S2Row up{zero, zero, zero};  // input row -1: the padding
      for (int64_t oy = 0; oy < Ho; ++oy) {
        const __m512 d = _mm512_maskz_loadu_ps(m, dp + oy * Wo + o0);
        const S2Row mid = s2_input_row(xp, 2 * oy, H, W, o0), down = s2_input_row(xp, 2 * oy + 1, H, W, o0);
        l[0] = _mm512_fmadd_ps(d, up.left, l[0]);
        l[1] = _mm512_fmadd_ps(d, up.centre, l[1]);
        l[2] = _mm512_fmadd_ps(d, up.right, l[2]);
        l[3] = _mm512_fmadd_ps(d, mid.left, l[3]);
        l[4] = _mm512_fmadd_ps(d, mid.centre, l[4]);
        l[5] = _mm512_fmadd_ps(d, mid.right, l[5]);
        l[6] = _mm512_fmadd_ps(d, down.left, l[6]);
        l[7] = _mm512_fmadd_ps(d, down.centre, l[7]);
        l[8] = _mm512_fmadd_ps(d, down.right, l[8]);
        up = down;
      }
    }
    for (int q = 0; q < 9; ++q) acc[q] = l[q];
  }
  for (int q = 0; q < 9; ++q) dw[q] += _mm512_reduce_add_ps(acc[q]);
}

void dw3x3_s1_rows_weight(const float* x, const float* dout, int64_t H, int64_t W, int64_t planes, int64_t x_stride,
                          int64_t d_stride, float* dw) {
  const __m512 zero = _mm512_setzero_ps();
  __m512 acc[9];
  for (int q = 0; q < 9; ++q) acc[q] = zero;
  // Chunks outside, planes inside: a 14x14 plane is one chunk of 14 rows, and the masks and the
  // sums' trip through memory per plane cost a third as much as its rows.
  for (int64_t c0 = 0; c0 < W; c0 += 16) {
    const ChunkMasks m = chunk_masks(c0, W);
    // The sums in a copy scoped to this loop: GCC keeps a vector array that outlives nested
    // loops (acc[], reduced below) in memory and stored all nine after every row.
    __m512 l[9];
    for (int q = 0; q < 9; ++q) l[q] = acc[q];
    for (int64_t p = 0; p < planes; ++p) {
      const float *xp = x + p * x_stride, *dp = dout + p * d_stride;
      if (c0 == 0 && p + 1 < planes)  // the planes lie a whole batch row apart: fetch the next one's lines now
        for (int64_t off = 0; off < H * W; off += 16) {
          _mm_prefetch(reinterpret_cast<const char*>(xp + x_stride + off), _MM_HINT_T0);
          _mm_prefetch(reinterpret_cast<const char*>(dp + d_stride + off), _MM_HINT_T0);
        }
      // Input row r meets output rows r + 1, r, r - 1 through kernel rows 0, 1, 2: the three
      // dout rows roll along (one new load per input row), the shifted input rows load once.
      __m512 d_up = zero, d_mid = _mm512_maskz_loadu_ps(m.centre, dp + c0);  // dout rows r - 1, r
      for (int64_t r = 0; r < H; ++r) {
        const __m512 d_down = r + 1 < H ? _mm512_maskz_loadu_ps(m.centre, dp + (r + 1) * W + c0) : zero;
        const float* row = xp + r * W + c0;
        const __m512 a = _mm512_maskz_loadu_ps(m.left, row - 1), b = _mm512_maskz_loadu_ps(m.centre, row),
                     c = _mm512_maskz_loadu_ps(m.right, row + 1);
        // Output row r + 1 reads input row r through kernel row 0, row r through 1, r - 1 through 2.
        l[0] = _mm512_fmadd_ps(d_down, a, l[0]);
        l[1] = _mm512_fmadd_ps(d_down, b, l[1]);
        l[2] = _mm512_fmadd_ps(d_down, c, l[2]);
        l[3] = _mm512_fmadd_ps(d_mid, a, l[3]);
        l[4] = _mm512_fmadd_ps(d_mid, b, l[4]);
        l[5] = _mm512_fmadd_ps(d_mid, c, l[5]);
        l[6] = _mm512_fmadd_ps(d_up, a, l[6]);
        l[7] = _mm512_fmadd_ps(d_up, b, l[7]);
        l[8] = _mm512_fmadd_ps(d_up, c, l[8]);
        d_up = d_mid, d_mid = d_down;
      }
    }
    for (int q = 0; q < 9; ++q) acc[q] = l[q];
  }
  for (int q = 0; q < 9; ++q) dw[q] += _mm512_reduce_add_ps(acc[q]);
}

}  // namespace kd::kernels::avx512
