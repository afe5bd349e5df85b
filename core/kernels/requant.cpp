#include "core/kernels/requant.h"

#include <cstring>

#include "core/kernels/dispatch.h"

namespace kd::kernels {

void requantize_row_ref(const int32_t* acc, int64_t len, const int32_t* m0, const int32_t* n, int32_t zp_out,
                        int32_t lo, int32_t hi, uint8_t* out) {
  for (int64_t i = 0; i < len; ++i) out[i] = uint8_t(requantize(acc[i], QuantMultiplier{m0[i], n[i]}, zp_out, lo, hi));
}

void requantize_rows_ref(const int32_t* acc, int64_t rows, int64_t cols, const int32_t* m0, const int32_t* n,
                         int32_t zp_out, int32_t lo, int32_t hi, uint8_t* out) {
  for (int64_t r = 0; r < rows; ++r) requantize_row_ref(acc + r * cols, cols, m0, n, zp_out, lo, hi, out + r * cols);
}

static bool avx512_ok() {
#if !defined(KD_SCALAR_ONLY) && defined(__x86_64__)
  return isa_compiled(Isa::avx512) && isa_supported(Isa::avx512);
#else
  return false;
#endif
}

void requantize_row(const int32_t* acc, int64_t len, const int32_t* m0, const int32_t* n, int32_t zp_out, int32_t lo,
                    int32_t hi, uint8_t* out) {
#if !defined(KD_SCALAR_ONLY) && defined(__x86_64__)
  if (selected_isa() == Isa::avx512) return avx512::requantize_row(acc, len, m0, n, zp_out, lo, hi, out);
#endif
  requantize_row_ref(acc, len, m0, n, zp_out, lo, hi, out);
}

bool requantize_row_variant(const char* variant, const int32_t* acc, int64_t len, const int32_t* m0, const int32_t* n,
                            int32_t zp_out, int32_t lo, int32_t hi, uint8_t* out) {
  if (!std::strcmp(variant, "ref")) return requantize_row_ref(acc, len, m0, n, zp_out, lo, hi, out), true;
#if !defined(KD_SCALAR_ONLY) && defined(__x86_64__)
  if (!std::strcmp(variant, "avx512") && avx512_ok()) return avx512::requantize_row(acc, len, m0, n, zp_out, lo, hi, out), true;
#endif
  (void)avx512_ok;
  return false;
}

void requantize_rows(const int32_t* acc, int64_t rows, int64_t cols, const int32_t* m0, const int32_t* n,
                     int32_t zp_out, int32_t lo, int32_t hi, uint8_t* out) {
#if !defined(KD_SCALAR_ONLY) && defined(__x86_64__)
  if (selected_isa() == Isa::avx512) return avx512::requantize_rows(acc, rows, cols, m0, n, zp_out, lo, hi, out);
#endif
  requantize_rows_ref(acc, rows, cols, m0, n, zp_out, lo, hi, out);
}

bool requantize_rows_variant(const char* variant, const int32_t* acc, int64_t rows, int64_t cols, const int32_t* m0,
                             const int32_t* n, int32_t zp_out, int32_t lo, int32_t hi, uint8_t* out) {
  if (!std::strcmp(variant, "ref")) return requantize_rows_ref(acc, rows, cols, m0, n, zp_out, lo, hi, out), true;
#if !defined(KD_SCALAR_ONLY) && defined(__x86_64__)
  if (!std::strcmp(variant, "avx512") && avx512_ok())
    return avx512::requantize_rows(acc, rows, cols, m0, n, zp_out, lo, hi, out), true;
#endif
  return false;
}

}  // namespace kd::kernels
