// Requantization (core/kernels/requant.h): the fixed-point multiplier is the nearest 31-bit one,
// and requantize equals floor(acc * m0 / 2^n + 1/2) computed exactly in 128-bit integers,
// including ties, negative accumulators and the extremes of int32.
#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <vector>
#include <cmath>

#include "core/kernels/requant.h"
#include "core/rng.h"

using namespace kd;
using namespace kd::kernels;

namespace {
// floor((acc * m0 + 2^(n-1)) / 2^n) exactly.
int64_t exact_round(int32_t acc, QuantMultiplier q) {
  const __int128 num = __int128(acc) * q.m0 + (__int128(1) << (q.n - 1));
  __int128 d = __int128(1) << q.n;
  __int128 f = num / d;
  if (num % d != 0 && num < 0) f -= 1;  // C++ division truncates toward 0; floor is wanted
  return int64_t(f);
}
}  // namespace

TEST_CASE("requant: multipliers are the nearest 31-bit fixed point") {
  for (double real : {1e-9, 3.7e-5, 0.001, 0.0123456, 0.25, 0.5, 0.7071, 0.99999999, 1.0, 1.5, 37.0, 1e6}) {
    INFO("real=" << real);
    const QuantMultiplier q = quant_multiplier(real);
    CHECK(q.m0 >= (1 << 30));
    CHECK(int64_t(q.m0) < (int64_t(1) << 31));
    const double back = std::ldexp(double(q.m0), -q.n);
    CHECK(std::fabs(back - real) <= std::ldexp(1.0, -q.n) / 2 * 1.0000001);  // within half an ulp of m0
  }
  CHECK_THROWS_WITH_AS(quant_multiplier(0.0), doctest::Contains("must be positive"), Error);
  CHECK_THROWS_WITH_AS(quant_multiplier(1e-12), doctest::Contains("outside"), Error);
}

TEST_CASE("requant: one rounding, half toward +infinity, clamped") {
  // M = 1/2 exactly: ties everywhere. 3 * 0.5 = 1.5 -> 2; -3 * 0.5 = -1.5 -> -1; -1 -> -0.5 -> 0.
  const QuantMultiplier half = quant_multiplier(0.5);
  CHECK(requantize(3, half, 0, -1000, 1000) == 2);
  CHECK(requantize(-3, half, 0, -1000, 1000) == -1);
  CHECK(requantize(-1, half, 0, -1000, 1000) == 0);
  CHECK(requantize(5, half, 10, 0, 255) == 13);
  CHECK(requantize(-100, half, 10, 0, 255) == 0);    // clamped below
  CHECK(requantize(1000, half, 10, 0, 255) == 255);  // clamped above
  // Random multipliers and accumulators, the int32 extremes included, against 128-bit integers.
  Rng r(5, 1);
  int64_t bad = 0;
  for (int i = 0; i < 200000; ++i) {
    const double real = std::ldexp(0.5 + 0.5 * r.uniform(), -int(r.below(30)));
    const QuantMultiplier q = quant_multiplier(real);
    int32_t acc = int32_t(uint32_t(r.next_u64()));
    if (i % 3 == 0) acc >>= r.below(31);
    if (i == 0) acc = INT32_MIN;
    if (i == 1) acc = INT32_MAX;
    const int64_t want = exact_round(acc, q) + 7;
    const int32_t got = requantize(acc, q, 7, INT32_MIN, INT32_MAX);
    bad += int64_t(got) != std::clamp<int64_t>(want, INT32_MIN, INT32_MAX);
  }
  CHECK(bad == 0);
}

// Multiplier exponents: "wide" keeps every shift >= 33 (multipliers below 1/4, the AVX-512 kernel's
// 32-bit short path; 33 itself included); otherwise shifts from 22 to 61, multipliers above 1
// among them (its 64-bit path).
static int multiplier_exponent(Rng& r, bool wide) { return wide ? int(r.below(29)) - 30 : int(r.below(40)) - 30; }

TEST_CASE("requant: the row kernels equal requantize, lengths around 16, multipliers above 1") {
  Rng r(9, 2);
  for (bool wide : {false, true})
    for (int64_t len : {1, 15, 16, 17, 33, 100}) {
      std::vector<int32_t> acc(static_cast<size_t>(len)), m0(static_cast<size_t>(len)), n(static_cast<size_t>(len));
      for (int64_t i = 0; i < len; ++i) {
        const QuantMultiplier q = quant_multiplier(std::ldexp(0.5 + 0.5 * r.uniform(), multiplier_exponent(r, wide)));
        m0[size_t(i)] = q.m0, n[size_t(i)] = q.n;
        acc[size_t(i)] = i % 7 == 3 ? (i % 2 ? INT32_MAX : INT32_MIN) : int32_t(uint32_t(r.next_u64())) >> r.below(31);
      }
      for (auto [zp, lo, hi] : std::vector<std::array<int32_t, 3>>{{0, 0, 255}, {128, 0, 255}, {3, 3, 200}}) {
        std::vector<uint8_t> want(static_cast<size_t>(len)), got(static_cast<size_t>(len), 7);
        for (int64_t i = 0; i < len; ++i)
          want[size_t(i)] = uint8_t(requantize(acc[size_t(i)], {m0[size_t(i)], n[size_t(i)]}, zp, lo, hi));
        for (const char* v : {"ref", "avx512"}) {
          INFO("variant " << v << " len " << len << " zp " << zp << " wide " << wide);
          std::fill(got.begin(), got.end(), 7);
          if (!requantize_row_variant(v, acc.data(), len, m0.data(), n.data(), zp, lo, hi, got.data())) continue;
          CHECK(got == want);
        }
      }
    }
}

TEST_CASE("requant: the matrix kernels equal requantize per column, widths around 16") {
  Rng r(10, 2);
  for (bool wide : {false, true})
    for (int64_t cols : {1, 15, 16, 17, 40, 128}) {
      const int64_t rows = 7;
      std::vector<int32_t> acc(static_cast<size_t>(rows * cols)), m0(static_cast<size_t>(cols)),
          n(static_cast<size_t>(cols));
      for (int64_t c = 0; c < cols; ++c) {
        const QuantMultiplier q = quant_multiplier(std::ldexp(0.5 + 0.5 * r.uniform(), multiplier_exponent(r, wide)));
        m0[size_t(c)] = q.m0, n[size_t(c)] = q.n;
      }
      for (size_t i = 0; i < acc.size(); ++i)
        acc[i] = i % 7 == 3 ? (i % 2 ? INT32_MAX : INT32_MIN) : int32_t(uint32_t(r.next_u64())) >> r.below(31);
      std::vector<uint8_t> want(acc.size());
      for (int64_t i = 0; i < rows * cols; ++i)
        want[size_t(i)] = uint8_t(requantize(acc[size_t(i)], {m0[size_t(i % cols)], n[size_t(i % cols)]}, 5, 5, 250));
      for (const char* v : {"ref", "avx512"}) {
        INFO("variant " << v << " cols " << cols << " wide " << wide);
        std::vector<uint8_t> got(acc.size() + 16, 0xAB);  // bytes past the end must stay untouched
        if (!requantize_rows_variant(v, acc.data(), rows, cols, m0.data(), n.data(), 5, 5, 250, got.data())) continue;
        CHECK(std::vector<uint8_t>(got.begin(), got.begin() + long(want.size())) == want);
        CHECK(got.back() == 0xAB);
      }
    }
}
