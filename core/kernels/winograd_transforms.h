// The transforms of winograd.h on one value type V: float for the scalar references, an xsimd
// batch for the SIMD variants. `madd(a, b, c)` = a * b + c with one rounding must be declared for
// V before this header (std::fma for float, simd::fused_madd for batches): the same operations in
// the same order give the same bits in every variant.
#pragma once
#include <cmath>

#include "core/kernels/winograd.h"

namespace kd::kernels::winograd_math {

// The 1-D input transform t = B^T d of six values (d, t with strides ds, ts).
template <class V>
inline void input_1d(const V* d, int ds, V* t, int ts) {
  const V four(4.f), m4(-4.f), m5(-5.f), two(2.f), m2(-2.f);
  const V d0 = d[0], d1 = d[ds], d2 = d[2 * ds], d3 = d[3 * ds], d4 = d[4 * ds], d5 = d[5 * ds];
  t[0] = madd(four, d0, madd(m5, d2, d4));       // 4 d0 - 5 d2 + d4
  t[ts] = madd(m4, d1 + d2, d3 + d4);            // -4 (d1 + d2) + (d3 + d4)
  t[2 * ts] = madd(four, d1 - d2, d4 - d3);      // 4 (d1 - d2) + (d4 - d3)
  t[3 * ts] = madd(two, d3 - d1, d4 - d2);       // 2 (d3 - d1) + (d4 - d2)
  t[4 * ts] = madd(m2, d3 - d1, d4 - d2);        // -2 (d3 - d1) + (d4 - d2)
  t[5 * ts] = madd(four, d1, madd(m5, d3, d5));  // 4 d1 - 5 d3 + d5
}

// v = B^T d B for a 6x6 patch read as d(i, j), written as out(i, j, v[i][j]). B^T's rows in pairs
// that share their terms, (0, 5), (1, 2), (3, 4): two rows of B^T d (12 values) are live at a
// time and the patch is re-read for each pair. (All 36 + 36 at once spilled a third of the
// AVX-512 variant's instructions to the stack.) Each value is computed by input_1d's formulas,
// so the order of the pairs does not change a bit. Inlined by force: GCC kept the SIMD form out
// of line, with its two lambdas, and the loads' addresses were recomputed per call.
template <class V, class Load, class Store>
[[gnu::always_inline]] inline void input_tile(Load&& d, Store&& out) {
  const V four(4.f), m4(-4.f), m5(-5.f), two(2.f), m2(-2.f);
  constexpr int kRows[3][2] = {{0, 5}, {1, 2}, {3, 4}};
  for (int pair = 0; pair < 3; ++pair) {
    V r[2][6];
    for (int j = 0; j < 6; ++j) {
      if (pair == 0) {
        r[0][j] = madd(four, d(0, j), madd(m5, d(2, j), d(4, j)));
        r[1][j] = madd(four, d(1, j), madd(m5, d(3, j), d(5, j)));
      } else {
        const V d1 = d(1, j), d2 = d(2, j), d3 = d(3, j), d4 = d(4, j);
        if (pair == 1) {
          r[0][j] = madd(m4, d1 + d2, d3 + d4);
          r[1][j] = madd(four, d1 - d2, d4 - d3);
        } else {
          r[0][j] = madd(two, d3 - d1, d4 - d2);
          r[1][j] = madd(m2, d3 - d1, d4 - d2);
        }
      }
    }
    for (int q = 0; q < 2; ++q) {
      V t[6];
      input_1d(r[q], 1, t, 1);  // (B^T d) B along the row
      for (int j = 0; j < 6; ++j) out(kRows[pair][q], j, t[j]);
    }
  }
}

// The 1-D output transform y = A^T m of six values into four.
template <class V>
inline void output_1d(const V* m, int ms, V* y, int ys) {
  const V two(2.f), four(4.f), eight(8.f);
  const V s12 = m[ms] + m[2 * ms], d12 = m[ms] - m[2 * ms];
  const V s34 = m[3 * ms] + m[4 * ms], d34 = m[3 * ms] - m[4 * ms];
  y[0] = (m[0] + s12) + s34;
  y[ys] = madd(two, d34, d12);
  y[2 * ys] = madd(four, s34, s12);
  y[3 * ys] = madd(eight, d34, d12) + m[5 * ms];
}

// y = A^T m A for a 6x6 m read as m(i, j), each output row a handed over as row(a, y[4]). A^T's
// rows in pairs that share their terms, (0, 2) and (1, 3), as in input_tile; output_1d's
// formulas, so the same bits as all at once.
template <class V, class Load, class Row>
[[gnu::always_inline]] inline void output_tile(Load&& m, Row&& row) {
  const V two(2.f), four(4.f), eight(8.f);
  for (int pair = 0; pair < 2; ++pair) {
    V r[2][6];
    for (int j = 0; j < 6; ++j) {
      const V m1 = m(1, j), m2 = m(2, j), m3 = m(3, j), m4 = m(4, j);
      if (pair == 0) {
        const V s12 = m1 + m2, s34 = m3 + m4;
        r[0][j] = (m(0, j) + s12) + s34;
        r[1][j] = madd(four, s34, s12);
      } else {
        const V d12 = m1 - m2, d34 = m3 - m4;
        r[0][j] = madd(two, d34, d12);
        r[1][j] = madd(eight, d34, d12) + m(5, j);
      }
    }
    for (int q = 0; q < 2; ++q) {
      V y[4];
      output_1d(r[q], 1, y, 1);  // (A^T m) A along the row
      row(pair == 0 ? 2 * q : 2 * q + 1, y);
    }
  }
}

// The 1-D filter transform u = G g of three values into six.
template <class V>
inline void filter_1d(const V* g, int gs, V* u, int us) {
  const V quarter(0.25f), sixth(-1.f / 6.f), one24(1.f / 24.f), two(2.f), four(4.f);
  const V g0 = g[0], g1 = g[gs], g2 = g[2 * gs];
  const V s02 = g0 + g2, q02 = madd(four, g2, g0);  // g0 + g2, g0 + 4 g2
  u[0] = quarter * g0;
  u[us] = sixth * (s02 + g1);
  u[2 * us] = sixth * (s02 - g1);
  u[3 * us] = one24 * madd(two, g1, q02);  // (g0 + 2 g1 + 4 g2) / 24
  u[4 * us] = one24 * madd(-two, g1, q02);
  u[5 * us] = g2;
}

// u = G g G^T, g 3x3 and u 6x6 row-major.
template <class V>
inline void filter_tile(const V* g, V* u) {
  V r[18];
  for (int j = 0; j < 3; ++j) filter_1d(g + j, 3, r + j, 3);  // G g: 6 x 3
  for (int i = 0; i < 6; ++i) filter_1d(r + 3 * i, 1, u + 6 * i, 1);
}

}  // namespace kd::kernels::winograd_math
