// Requantization: an int32 accumulator, whose real value is acc * s_in * s_w, becomes the u8 code
// of the output (scale s_out, zero point zp_out):
//   q = clamp(zp_out + round(acc * M), lo, hi),   M = s_in * s_w / s_out.
// M is a fixed-point multiplier m0 * 2^-n with m0 in [2^30, 2^31) (31 significant bits), and the
// rounding is ONE rounding of the exact product, half toward +infinity:
//   round(acc * M) := (acc * m0 + 2^(n-1)) >> n        (64-bit product, arithmetic shift)
// The product fits: |acc| < 2^31 and m0 < 2^31, and n <= 62 keeps the rounding term in range.
// Every kernel and the integer simulation use exactly this, so they agree bit for bit (unlike
// gemmlowp's two roundings, a rounding doubling high multiply and then a rounding shift, which
// are hard to reproduce exactly in other instruction sets).
#pragma once
#include <cmath>
#include <cstdint>

#include "core/error.h"

namespace kd::kernels {

struct QuantMultiplier {
  int32_t m0 = 1 << 30;  // in [2^30, 2^31)
  int32_t n = 31;        // right shift, in [1, 62]
};

// The multiplier nearest to real (> 0): m0 = round(f * 2^31) for real = f * 2^e, f in [0.5, 1).
inline QuantMultiplier quant_multiplier(double real) {
  KD_CHECK(real > 0 && std::isfinite(real), "quant_multiplier: scale ratio ", real, " must be positive and finite");
  int e = 0;
  const double f = std::frexp(real, &e);
  int64_t m = std::llround(f * double(int64_t(1) << 31));
  if (m == (int64_t(1) << 31)) m /= 2, ++e;
  QuantMultiplier q{int32_t(m), 31 - e};
  KD_CHECK(q.n >= 1 && q.n <= 62, "quant_multiplier: scale ratio ", real,
           " is outside what a 31-bit multiplier with a 1-62 bit shift represents (2^-31 .. 2^30)");
  return q;
}

inline int32_t requantize(int32_t acc, QuantMultiplier q, int32_t zp_out, int32_t lo, int32_t hi) {
  const int64_t v = (int64_t(acc) * q.m0 + (int64_t(1) << (q.n - 1))) >> q.n;
  const int64_t r = v + zp_out;
  return int32_t(r < lo ? lo : (r > hi ? hi : r));
}

// A row of accumulators with per-element multipliers (m0[i], n[i]) to u8, exactly requantize's
// arithmetic: the scalar reference and, where dispatch selects it, an AVX-512 variant (64-bit
// products of even and odd lanes, variable arithmetic shifts; requant_row_avx512.cpp).
void requantize_row_ref(const int32_t* acc, int64_t len, const int32_t* m0, const int32_t* n, int32_t zp_out,
                        int32_t lo, int32_t hi, uint8_t* out);
namespace avx512 {
void requantize_row(const int32_t* acc, int64_t len, const int32_t* m0, const int32_t* n, int32_t zp_out, int32_t lo,
                    int32_t hi, uint8_t* out);
}
// The selected variant (KD_KERNELS=ref forces the reference).
void requantize_row(const int32_t* acc, int64_t len, const int32_t* m0, const int32_t* n, int32_t zp_out, int32_t lo,
                    int32_t hi, uint8_t* out);
// A rows x cols matrix of accumulators (row pitch cols), multipliers per column, to u8 with the
// same pitch: the int8 GEMM's output. The AVX-512 variant keeps each 16-column block's
// multipliers in registers while it walks down the rows.
void requantize_rows_ref(const int32_t* acc, int64_t rows, int64_t cols, const int32_t* m0, const int32_t* n,
                         int32_t zp_out, int32_t lo, int32_t hi, uint8_t* out);
namespace avx512 {
void requantize_rows(const int32_t* acc, int64_t rows, int64_t cols, const int32_t* m0, const int32_t* n,
                     int32_t zp_out, int32_t lo, int32_t hi, uint8_t* out);
}
void requantize_rows(const int32_t* acc, int64_t rows, int64_t cols, const int32_t* m0, const int32_t* n,
                     int32_t zp_out, int32_t lo, int32_t hi, uint8_t* out);
bool requantize_rows_variant(const char* variant, const int32_t* acc, int64_t rows, int64_t cols, const int32_t* m0,
                             const int32_t* n, int32_t zp_out, int32_t lo, int32_t hi, uint8_t* out);
// Variant by name, for tests: "ref" or "avx512" (false if not available here).
bool requantize_row_variant(const char* variant, const int32_t* acc, int64_t len, const int32_t* m0, const int32_t* n,
                            int32_t zp_out, int32_t lo, int32_t hi, uint8_t* out);

}  // namespace kd::kernels
