// Compiled with -mavx512f -mavx512vl -mfma (CMakeLists.txt); selected at run time only on CPUs that have them.
#include <immintrin.h>

#include <algorithm>

#include "core/kernels/phase_split.h"

namespace kd::kernels::avx512 {

namespace {
__mmask16 first(int64_t count) {  // the first `count` lanes of 16, clamped
  count = std::clamp<int64_t>(count, 0, 16);
  return __mmask16((1u << count) - 1u);
}

// The low N floats of v where mask m says, with a store N floats wide.
template <int N>
inline void store(float* dst, __mmask16 m, __m512 v) {
  if constexpr (N == 4)
    _mm_mask_storeu_ps(dst, __mmask8(m), _mm512_castps512_ps128(v));
  else if constexpr (N == 8)
    _mm256_mask_storeu_ps(dst, __mmask8(m), _mm512_castps512_ps256(v));
  else
    _mm512_mask_storeu_ps(dst, m, v);
}

// Phase p of S (lanes p, p + S, p + 2S, ... of the 16 * NV loaded floats) gathered into the low
// lanes of out[p]. NV = 1 or 2: one permute per phase (permutexvar, permutex2var); NV = 4 (S = 4
// only): even/odd lanes of the pairs (v0, v1) and (v2, v3), then even/odd lanes of those. Short
// rows (the teacher's 7 and 14 columns) take NV = 1: the masked loads of empty vectors and the
// second round of permutes were most of this copy's time.
template <int S, int NV>
struct Split {
  __m512i idx[S];
  Split() {
    alignas(64) int32_t v[S][16];
    for (int p = 0; p < S; ++p)
      for (int l = 0; l < 16; ++l) v[p][l] = NV == 4 ? (2 * l + p) % 32 : (S * l + p) % (16 * NV);
    for (int p = 0; p < S; ++p) idx[p] = _mm512_load_si512(v[p]);
  }
  // Columns [0, 16 NV) of `row`, `in` the loads' masks, m[p] the phase's count.
  void run(const float* row, const __mmask16* in, const __mmask16* m, float* const* out) const {
    // A phase of 16 NV / S floats is stored with a store that wide (a 512-bit store of 4 floats
    // took as long as a full one).
    if constexpr (NV == 1) {
      const __m512 v0 = _mm512_maskz_loadu_ps(in[0], row);
      for (int p = 0; p < S; ++p) store<16 / S>(out[p], m[p], _mm512_permutexvar_ps(idx[p], v0));
    } else if constexpr (NV == 2) {
      const __m512 v0 = _mm512_maskz_loadu_ps(in[0], row), v1 = _mm512_maskz_loadu_ps(in[1], row + 16);
      for (int p = 0; p < S; ++p) store<32 / S>(out[p], m[p], _mm512_permutex2var_ps(v0, idx[p], v1));
    } else {
      static_assert(S == 4);
      const __m512 v0 = _mm512_maskz_loadu_ps(in[0], row), v1 = _mm512_maskz_loadu_ps(in[1], row + 16);
      const __m512 v2 = _mm512_maskz_loadu_ps(in[2], row + 32), v3 = _mm512_maskz_loadu_ps(in[3], row + 48);
      // idx[0] / idx[1]: lanes 2l / 2l + 1 of a pair (the first two rows of the table above).
      const __m512 e01 = _mm512_permutex2var_ps(v0, idx[0], v1), o01 = _mm512_permutex2var_ps(v0, idx[1], v1);
      const __m512 e23 = _mm512_permutex2var_ps(v2, idx[0], v3), o23 = _mm512_permutex2var_ps(v2, idx[1], v3);
      _mm512_mask_storeu_ps(out[0], m[0], _mm512_permutex2var_ps(e01, idx[0], e23));
      _mm512_mask_storeu_ps(out[1], m[1], _mm512_permutex2var_ps(o01, idx[0], o23));
      _mm512_mask_storeu_ps(out[2], m[2], _mm512_permutex2var_ps(e01, idx[1], e23));
      _mm512_mask_storeu_ps(out[3], m[3], _mm512_permutex2var_ps(o01, idx[1], o23));
    }
  }
};

// Every row's columns [c, c + 16 NV), the rows in one loop.
template <int S, int NV>
void split_chunk_rows(const PhaseSplitArgs& a, int64_t c) {
  static const Split<S, NV> split;
  const int64_t left = a.cols - c;
  __mmask16 in[NV], m[S];
  for (int i = 0; i < NV; ++i) in[i] = first(left - 16 * i);
  for (int p = 0; p < S; ++p) m[p] = first((left - p + S - 1) / S);
  // Source phase p (column c + p + S k) is combined column q = col0 + c + p + S k: plane column
  // phase (col0 + p) % S (c is a multiple of S), index (col0 + c + p) / S + k.
  int64_t col_offset[S];
  for (int p = 0; p < S; ++p) col_offset[p] = (a.col0 + p) % S * a.plane + (a.col0 + c + p) / S;
  const int64_t pitch = a.src_pitch ? a.src_pitch : a.cols;
  for (int64_t h = 0; h < a.rows; ++h) {
    const int64_t r = h + a.top;
    float* base = a.dst + (r % S) * S * a.plane + (r / S) * a.R;
    float* out[S];
    for (int p = 0; p < S; ++p) out[p] = base + col_offset[p];
    split.run(a.src + h * pitch + c, in, m, out);
  }
}

template <int S>
void split_rows(const PhaseSplitArgs& a) {
  constexpr int64_t kWide = S == 4 ? 64 : 32;  // source columns of the widest step
  int64_t c = 0;
  for (; a.cols - c > 32 && S == 4; c += kWide) split_chunk_rows<S, S == 4 ? 4 : 2>(a, c);
  for (; a.cols - c > 16; c += 32) split_chunk_rows<S, 2>(a, c);
  if (c < a.cols) split_chunk_rows<S, 1>(a, c);
}
}  // namespace

void phase_split(const PhaseSplitArgs& a) {
  if (a.s == 4)
    split_rows<4>(a);
  else
    split_rows<2>(a);
}

// Each (a, b) run as 16-lane windows: a window's lanes that take a tile's output are filled from
// the source in order (vexpandps), the others zeroed. Which lanes those are repeats with the
// period p = tiles + 1 (one image); the patterns for 64 columns, built once per call by
// multiplication, shifted to each window's phase. Rows of periods above 48 (images over 188
// columns wide) and sources with each image's garbage tile kept take the scalar reference.
void tile_rows_to_phases(const TileRowArgs& a) {
  const int64_t p = a.tiles + 1, len = a.images * p;
  if (p > 48 || (a.src_image && a.src_image != a.tiles)) return tile_rows_to_phases_scalar(a);
  uint64_t every = 0;  // bit k p for each image start within 64 columns
  for (int64_t k = 0; k < 64; k += p) every |= uint64_t(1) << k;
  for (int64_t b = 0; b < 4; ++b) {
    const int64_t off = (b + 1) / 4, valid = std::min<int64_t>(a.tiles, std::max<int64_t>(0, (a.cols - b + 3) / 4));
    // Within an image's p columns: the tiles at q = off .. off + tiles - 1 are read from the
    // source (taken), the first `valid` of them kept, the rest (past the right edge) zeroed.
    const uint64_t taken = ((uint64_t(1) << a.tiles) - 1) << off, kept = ((uint64_t(1) << valid) - 1) << off;
    const uint64_t taken64 = taken * every, kept64 = kept * every;  // no carries: the patterns are < 2^p
    for (int64_t r = 0; r < a.rows; ++r) {
      const float* src = a.src + (r * 4 + b) * a.src_pitch;
      float* dst = a.dst + ((r + 1) % 4 * 4 + (b + 1) % 4) * a.plane + (r + 1) / 4 * a.R;
      int64_t phase = 0;  // the window's first column mod p
      for (int64_t j = 0; j < len; j += 16) {
        const __mmask16 take = __mmask16(taken64 >> phase), keep = __mmask16(kept64 >> phase);
        const __m512 v = _mm512_maskz_expand_ps(take, _mm512_loadu_ps(src));
        _mm512_mask_storeu_ps(dst + j, first(len - j), _mm512_maskz_mov_ps(keep, v));
        src += __builtin_popcount(take);
        phase = (phase + 16) % p;
      }
    }
  }
}

}  // namespace kd::kernels::avx512
