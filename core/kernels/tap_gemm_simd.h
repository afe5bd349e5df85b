// The xsimd micro-kernel of tap_gemm.h, written once for any architecture A; each
// tap_gemm_<isa>.cpp instantiates it with a tile that fits that ISA's registers.
//
// Tile: MR output rows x NV vectors of columns, MR * NV accumulators held in registers for the
// whole K = C * taps. Per K step: NV unaligned loads of B (one padded plane seen from the tap's
// shift), MR broadcasts of A (one from each row's stream), MR * NV FMAs. With AVX-512's 32
// registers, 8 x 3 leaves 8 for the B vectors and a broadcast: 11 loads per 24 FMAs, under the
// two loads a cycle that keep both FMA pipes busy.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstring>
#include <xsimd/xsimd.hpp>

#include "core/kernels/simd_fma.h"
#include "core/kernels/tap_gemm.h"

namespace kd::kernels::simd {

// One tile: rows [ob*MR, +MR) x columns [p0, p0 + ncols), ncols <= NV * S. PACKED: A packed for
// this MR (tap_gemm_pack), its K steps' MR values adjacent: one pointer walks them (the general
// form below, one pointer per row, ran ~5% slower at batch 128).
template <class A, int MR, int NV, bool PACKED>
void tile(const TapGemmWeights& w, const TapGemmArgs& a, int64_t ob, int64_t p0, int64_t ncols) {
  using B = xsimd::batch<float, A>;
  constexpr int64_t S = B::size;
  const int64_t C = w.C, pitch = a.x_pitch;
  B acc[MR][NV];
  for (int m = 0; m < MR; ++m)
    for (int v = 0; v < NV; ++v) acc[m][v] = B(0.f);
  const int taps = w.taps;
  const float* xc = a.x + p0;
  // acc[m][:] += A[t, row m, c] * (plane c from tap t's shift), a[m] being A[t, row m, c].
  auto step = [&](const float* xp, auto&& a_row) {
    B b[NV];
    for (int v = 0; v < NV; ++v) b[v] = B::load_unaligned(xp + v * S);
    for (int m = 0; m < MR; ++m) {
      const B am(a_row(m));
      for (int v = 0; v < NV; ++v) acc[m][v] = fused_madd(am, b[v], acc[m][v]);
    }
  };
  if constexpr (PACKED) {
    const float* ap = w.w + ob * w.sb;
    for (int64_t c = 0; c < C; ++c, xc += pitch)
      for (int t = 0; t < taps; ++t, ap += MR) step(xc + a.shift[t], [&](int m) { return ap[m]; });
  } else {
    // Row m of A; rows past O repeat the last (their results are not stored).
    const float* ar[MR];
    for (int m = 0; m < MR; ++m) {
      const int64_t o = std::min<int64_t>(ob * MR + m, w.O - 1);
      ar[m] = w.w + (o / w.rows) * w.sb + (o % w.rows) * w.so;
    }
    const int64_t sc = w.sc, st = w.st;
    for (int64_t c = 0, ac = 0; c < C; ++c, xc += pitch, ac += sc)
      for (int64_t t = 0, k = ac; t < taps; ++t, k += st) step(xc + a.shift[t], [&](int m) { return ar[m][k]; });
  }
  // Store the rows and columns that exist, through the epilogue if any (the reference's operations:
  // max with lo, then min with hi, so NaN passes); a partial last vector goes through a buffer.
  const int64_t rows = std::min<int64_t>(MR, w.O - ob * MR);
  const TapGemmEpilogue& ep = a.ep;
  for (int m = 0; m < rows; ++m) {
    const int64_t o = ob * MR + m;
    float* yr = a.y + o * a.y_pitch + p0;
    if (ep.active()) {
      const B k(ep.scale ? ep.scale[o] : 1.f), b(ep.bias ? ep.bias[o] : 0.f), lo(ep.lo), hi(ep.hi);
      for (int v = 0; v < NV; ++v) acc[m][v] = xsimd::min(hi, xsimd::max(lo, fused_madd(acc[m][v], k, b)));
    }
    for (int v = 0; v < NV; ++v) {
      const int64_t n = std::min<int64_t>(S, ncols - v * S);
      if (n == S) {
        acc[m][v].store_unaligned(yr + v * S);
      } else if (n > 0) {
        alignas(64) float buf[S];
        acc[m][v].store_aligned(buf);
        std::memcpy(yr + v * S, buf, sizeof(float) * size_t(n));
      }
    }
  }
}

// The last column tile: only the vectors it needs (a 7x7 image's 63 columns would otherwise cost
// two 48-column tiles).
template <class A, int MR, int NV, bool PACKED>
void partial_tile(const TapGemmWeights& w, const TapGemmArgs& a, int64_t ob, int64_t p0, int64_t ncols, int64_t need) {
  if constexpr (NV > 1)
    if (need < NV) return partial_tile<A, MR, NV - 1, PACKED>(w, a, ob, p0, ncols, need);
  tile<A, MR, NV, PACKED>(w, a, ob, p0, ncols);
}

// Columns [p0, p0 + n) of row blocks [ob0, ob1), one column at a time, for a few columns past the
// last whole vector: as a vector tile they would cost MR FMAs a K step for n useful lanes of S (a
// 7x7 image's 49th column: a quarter of a pointwise convolution's FMAs for 1/49 of its outputs).
// Here a block's MR sums sit side by side in vectors of the column architecture CA (lanes dividing
// MR: AVX-512's 8 rows in one AVX2 vector), the column's input broadcast, A packed (a row block's
// MR values of a K step adjacent). Each block's sums are one chain of dependent FMAs, so
// kColumnBlocks blocks go side by side (one block at a time ran at the FMA latency). Same order of
// FMAs per output as tile() and the epilogue's operations, so the same bits.
inline constexpr int kColumnBlocks = 4;
template <class CA, int MR>
requires(MR % int(xsimd::batch<float, CA>::size) == 0) void columns(const TapGemmWeights& w, const TapGemmArgs& a,
                                                                    int64_t ob0, int64_t ob1, int64_t p0, int64_t n) {
  using V = xsimd::batch<float, CA>;
  constexpr int L = int(V::size), NVR = MR / L;
  const int64_t C = w.C, pitch = a.x_pitch;
  const int taps = w.taps;
  for (int64_t j = 0; j < n; ++j)
    for (int64_t g0 = ob0; g0 < ob1; g0 += kColumnBlocks) {
      // Blocks past ob1 repeat the last (their sums are not stored).
      const float* ap[kColumnBlocks];
      for (int g = 0; g < kColumnBlocks; ++g) ap[g] = w.w + std::min(g0 + g, ob1 - 1) * w.sb;
      V acc[kColumnBlocks][NVR];
      for (int g = 0; g < kColumnBlocks; ++g)
        for (int r = 0; r < NVR; ++r) acc[g][r] = V(0.f);
      const float* xc = a.x + p0 + j;
      for (int64_t c = 0, k = 0; c < C; ++c, xc += pitch)
        for (int t = 0; t < taps; ++t, k += MR) {
          const V xv(xc[a.shift[t]]);
          for (int g = 0; g < kColumnBlocks; ++g)
            for (int r = 0; r < NVR; ++r) acc[g][r] = fused_madd(V::load_unaligned(ap[g] + k + r * L), xv, acc[g][r]);
        }
      for (int g = 0; g < kColumnBlocks && g0 + g < ob1; ++g) {
        alignas(64) float sums[MR];
        for (int r = 0; r < NVR; ++r) acc[g][r].store_aligned(sums + r * L);
        for (int m = 0; m < MR && (g0 + g) * MR + m < w.O; ++m) {
          const int64_t o = (g0 + g) * MR + m;
          a.y[o * a.y_pitch + p0 + j] = a.ep.active() ? a.ep.channel(o)(sums[m]) : sums[m];
        }
      }
    }
}

// Columns left past the last whole vector that columns() takes instead of a vector tile (A packed
// only): fewer than half a vector (AVX-512: 1-7 of 16 lanes).
template <class A>
constexpr int64_t kColumnsMax = int64_t(xsimd::batch<float, A>::size) / 2 - 1;
// Whether a variant takes columns(): A packed, and CA's lanes dividing MR (not AVX2's 4 rows: 4-lane
// FMA vectors would need xsimd's fma3<sse4_2>, which an AVX2 build does not offer).
template <class A, int MR, bool PACKED, class CA>
constexpr bool kColumns = PACKED && (MR % int(xsimd::batch<float, CA>::size) == 0);

// Whether a variant takes a last few columns (up to CA's lanes, fewer than A's) in one vector of
// CA (tile<CA, MR, 1>): AVX-512's last 8 columns in an AVX2 vector, whose FMAs cost half a
// 512-bit one on CPUs that split those in two (AMD Zen 4), and no more elsewhere. (A 7x7 image's
// 56 columns are 48 + 8: the 8 took a quarter of the layer's FMAs in a 16-lane tile.)
template <class A, class CA>
constexpr bool kHalfVector = xsimd::batch<float, CA>::size < xsimd::batch<float, A>::size;

template <class A, int MR, int NV, bool PACKED, class CA>
void tiles(const TapGemmWeights& w, const TapGemmArgs& a, int64_t tile_begin, int64_t tile_end) {
  constexpr int64_t S = xsimd::batch<float, A>::size, NR = NV * S;
  const int64_t blocks = (w.O + MR - 1) / MR;
  for (int64_t t = tile_begin; t < tile_end;) {
    const int64_t ob = t % blocks, p0 = (t / blocks) * NR, ncols = std::min(NR, a.cols - p0);
    const int64_t whole = ncols / S * S, rest = ncols - whole;
    if (ncols == NR) {
      tile<A, MR, NV, PACKED>(w, a, ob, p0, ncols);
      ++t;
    } else if (kColumns<A, MR, PACKED, CA> && rest > 0 && rest <= kColumnsMax<A>) {
      // This and the range's next tiles of the same (last) column tile: the following row blocks.
      const int64_t t1 = std::min(tile_end, t - ob + blocks);
      if (whole > 0)
        for (int64_t u = t; u < t1; ++u) partial_tile<A, MR, NV, PACKED>(w, a, u % blocks, p0, whole, whole / S);
      if constexpr (kColumns<A, MR, PACKED, CA>) columns<CA, MR>(w, a, ob, ob + (t1 - t), p0 + whole, rest);
      t = t1;
    } else if (kHalfVector<A, CA> && rest > 0 && rest <= int64_t(xsimd::batch<float, CA>::size)) {
      if (whole > 0) partial_tile<A, MR, NV, PACKED>(w, a, ob, p0, whole, whole / S);
      if constexpr (kHalfVector<A, CA>) tile<CA, MR, 1, PACKED>(w, a, ob, p0 + whole, rest);
      ++t;
    } else {
      partial_tile<A, MR, NV, PACKED>(w, a, ob, p0, ncols, (ncols + S - 1) / S);
      ++t;
    }
  }
}

// CA: the architecture of columns()' vectors over the rows (its lanes divide MR).
template <class A, int MR, int NV, class CA = A>
void tap_gemm(const TapGemmWeights& w, const TapGemmArgs& a, int64_t tile_begin, int64_t tile_end) {
  if (w.rows == MR && w.so == 1 && w.st == MR && w.sc == int64_t(w.taps) * MR)
    tiles<A, MR, NV, true, CA>(w, a, tile_begin, tile_end);
  else
    tiles<A, MR, NV, false, CA>(w, a, tile_begin, tile_end);
}

// out[i] = the sum of acc[i]'s lanes, i < 16: portable (xsimd 8's haddp needs AVX-512DQ and
// returns the sums in a permuted order there). ISA files may pass a faster one.
template <class A>
struct LaneSums16 {
  static void run(const xsimd::batch<float, A>* acc, float* out) {
    constexpr int64_t S = xsimd::batch<float, A>::size;
    alignas(64) float lanes[S];
    for (int i = 0; i < 16; ++i) {
      acc[i].store_aligned(lanes);
      float s = 0.f;
      for (int64_t l = 0; l < S; ++l) s += lanes[l];
      out[i] = s;
    }
  }
};

// Keeps a loaded vector in a register: GCC 12 otherwise folds the load into each of the four FMAs
// that use it (a memory operand each), doubling the loads of the weight-gradient loop, which then
// ran at half Eigen's speed. An empty asm that "modifies" the register forbids re-reading memory.
template <class V>
inline void in_register(V& a, V& b) {
#if defined(__GNUC__) && defined(__x86_64__)
  asm("" : "+v"(a.data), "+v"(b.data));
#elif defined(__GNUC__) && defined(__aarch64__)
  asm("" : "+w"(a.data), "+w"(b.data));
#else
  (void)a, (void)b;
#endif
}

// Weight gradient (tap_gemm.h): 4 x 4 blocks of (o, c); each of the 16 sums is a vector along p,
// so K = cols needs no transposed copy. Taps innermost: the block's 4 rows of D and 4 planes of X
// are read from L2 once and then from L1 for every tap (with the taps outermost, every K step
// fetched four unaligned X vectors from L2, and the kernel ran at a third of Eigen's speed). Rows
// past O or C repeat the last one (their sums are dropped), so every block is whole.
template <class A, class Sums = LaneSums16<A>>
void tap_gemm_grad(const TapGemmGradArgs& a) {
  using B = xsimd::batch<float, A>;
  constexpr int64_t S = B::size;
  static_assert(kTapGemmGradColumns % S == 0, "D's zero tail covers whole batches");
  const int64_t steps = (a.cols + S - 1) / S;
  for (int64_t o0 = 0; o0 < a.O; o0 += 4)
    for (int64_t c0 = 0; c0 < a.C; c0 += 4) {
      const float* d[4];
      const float* xc[4];
      for (int i = 0; i < 4; ++i) {
        d[i] = a.d + std::min(o0 + i, a.O - 1) * a.d_pitch;
        xc[i] = a.x + std::min(c0 + i, a.C - 1) * a.x_pitch;
      }
      for (int t = 0; t < a.taps; ++t) {
        const float* x[4];
        for (int i = 0; i < 4; ++i) x[i] = xc[i] + a.shift[t];
        B acc[16];
        for (int i = 0; i < 16; ++i) acc[i] = B(0.f);
        for (int64_t k = 0; k < steps; ++k) {
          const int64_t p = k * S;
          B dv[4], xv[4];
          for (int i = 0; i < 4; ++i) dv[i] = B::load_unaligned(d[i] + p);
          for (int i = 0; i < 4; ++i) xv[i] = B::load_unaligned(x[i] + p);
          for (int i = 0; i < 4; ++i) in_register(dv[i], xv[i]);
          for (int i = 0; i < 4; ++i)
            for (int j = 0; j < 4; ++j) acc[i * 4 + j] = fused_madd(dv[i], xv[j], acc[i * 4 + j]);
        }
        alignas(64) float sums[16];
        Sums::run(acc, sums);
        for (int i = 0; i < 4 && o0 + i < a.O; ++i)
          for (int j = 0; j < 4 && c0 + j < a.C; ++j) a.dA[(t * a.O + o0 + i) * a.C + c0 + j] += sums[i * 4 + j];
      }
    }
}

}  // namespace kd::kernels::simd
