// The int8 GEMM: every variant available here against a plain int64 loop over the unpacked
// weights, across sizes below, at and above the tiles (rows 1-25, columns around 16 and 32,
// inputs around 4 and 64), padded pitches, extreme values (no saturation), and a bias.
#include <doctest/doctest.h>

#include <vector>

#include "core/kernels/gemm_u8s8.h"
#include "core/error.h"
#include "core/rng.h"

using namespace kd;
using namespace kd::kernels;

namespace {

std::vector<GemmS8> available() {
  std::vector<GemmS8> v;
  for (GemmS8 g : {GemmS8::ref, GemmS8::avx2, GemmS8::avx512vnni, GemmS8::neon, GemmS8::neon_dot})
    if (gemm_s8_available(g)) v.push_back(g);
  return v;
}

// extreme: A all 255 and W all -128/127 alternating, the largest magnitudes of the types.
void check_case(GemmS8 v, int64_t M, int64_t N, int64_t K, bool extreme, bool with_bias, uint64_t seed) {
  INFO(gemm_s8_name(v) << " M=" << M << " N=" << N << " K=" << K << " extreme=" << extreme << " bias=" << with_bias);
  Rng r(seed, 17);
  const int64_t lda = K + 3, ldc = N + 2;
  std::vector<uint8_t> A(size_t(M * lda), 0xEE);  // padding bytes must not be read into sums
  std::vector<int8_t> W(size_t(N * K));
  for (int64_t m = 0; m < M; ++m)
    for (int64_t k = 0; k < K; ++k) A[size_t(m * lda + k)] = extreme ? 255 : uint8_t(r.next_u64() & 0xFF);
  for (int64_t i = 0; i < N * K; ++i) W[size_t(i)] = extreme ? (i % 2 ? 127 : -128) : int8_t(r.next_u64() & 0xFF);
  std::vector<int32_t> bias(static_cast<size_t>(N));
  for (auto& b : bias) b = int32_t(r.next_u64() % 200001) - 100000;
  const PackedS8 P = pack_s8(W.data(), N, K);
  std::vector<int32_t> C(size_t(M * ldc), 12345);
  gemm_u8s8s32(v, A.data(), M, lda, P, with_bias ? bias.data() : nullptr, C.data(), ldc);
  int64_t bad = 0;
  for (int64_t m = 0; m < M; ++m) {
    for (int64_t n = 0; n < N; ++n) {
      int64_t want = with_bias ? bias[size_t(n)] : 0;
      for (int64_t k = 0; k < K; ++k) want += int64_t(A[size_t(m * lda + k)]) * W[size_t(n * K + k)];
      bad += C[size_t(m * ldc + n)] != int32_t(want);
    }
    for (int64_t n = N; n < ldc; ++n) bad += C[size_t(m * ldc + n)] != 12345;  // nothing written past N
  }
  CHECK(bad == 0);
}

}  // namespace

TEST_CASE("gemm_u8s8s32: every variant equals the exact product") {
  const std::vector<GemmS8> vs = available();
#if !defined(KD_SCALAR_ONLY) && (defined(__x86_64__) || defined(__aarch64__))
  CHECK(vs.size() >= 2);  // the reference and at least one SIMD variant on x86 and ARM
#endif
  for (GemmS8 v : vs) MESSAGE("int8 GEMM variant tested: " << std::string(gemm_s8_name(v)));
  uint64_t seed = 1;
  for (GemmS8 v : vs)
    for (int64_t M : {1, 2, 3, 4, 5, 8, 9, 17, 25})
      for (int64_t N : {1, 15, 16, 17, 32, 33, 50})
        for (int64_t K : {1, 3, 4, 5, 8, 63, 64, 67}) check_case(v, M, N, K, false, (M + N + K) % 2 == 0, seed++);
  for (GemmS8 v : vs) {
    check_case(v, 9, 33, 1000, true, false, 0);  // |sum| ~ 1000 * 255 * 128: no 16-bit saturation
    check_case(v, 50, 64, 300, false, true, 99);  // enough rows for several threads' chunks
  }
}

TEST_CASE("gemm_u8s8s32: packing and argument errors") {
  const std::vector<int8_t> W = {1, -2, 3, 4, 5, -6};
  const PackedS8 P = pack_s8(W.data(), 2, 3);
  CHECK(P.Kg == 1);
  CHECK(P.Nb == 1);
  CHECK(P.colsum == std::vector<int32_t>{2, 3});
  std::vector<uint8_t> A(3, 1);
  std::vector<int32_t> C(2);
  CHECK_THROWS_WITH_AS(gemm_u8s8s32(GemmS8::ref, A.data(), 1, 2, P, nullptr, C.data(), 2), doctest::Contains("lda 2"),
                       Error);
  CHECK_THROWS_WITH_AS(pack_s8(W.data(), 0, 3), doctest::Contains("empty"), Error);
  for (GemmS8 v : {GemmS8::ref, GemmS8::avx2, GemmS8::avx512vnni, GemmS8::neon, GemmS8::neon_dot})
    if (!gemm_s8_available(v))
      CHECK_THROWS_WITH_AS(gemm_u8s8s32(v, A.data(), 1, 3, P, nullptr, C.data(), 2), doctest::Contains("not available"),
                           Error);
}
