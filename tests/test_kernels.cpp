// Every SIMD kernel variant against its scalar reference, on sizes below, at, above and off the
// vector widths (4, 8, 16 lanes), both strides, odd sizes; run for each variant that this
// binary has and this CPU supports (under qemu-aarch64: NEON).
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "core/kernels/depthwise.h"
#include "core/kernels/dispatch.h"
#include "core/kernels/dw3x3.h"
#include "core/kernels/taps.h"
#include "core/rng.h"

using namespace kd;
using namespace kd::kernels;

namespace {

std::vector<Isa> simd_variants() {
  std::vector<Isa> v;
  for (Isa i : {Isa::avx2, Isa::avx512, Isa::neon})
    if (isa_compiled(i) && isa_supported(i)) v.push_back(i);
  return v;
}

std::vector<float> randn(size_t n, uint64_t seed) {
  Rng r(seed, 99);
  std::vector<float> v(n);
  for (float& x : v) x = r.normal();
  return v;
}

// |a - b| <= atol + rtol * scale, scale = the sum of |terms| a value is made of (passed in).
void check_close(const std::vector<float>& a, const std::vector<float>& b, float tol, const char* what) {
  REQUIRE(a.size() == b.size());
  float worst = 0;
  size_t at = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const float e = std::fabs(a[i] - b[i]) / (1.f + std::fabs(b[i]));
    if (!(e <= worst)) worst = e, at = i;  // NaN-safe: a NaN becomes the worst
  }
  INFO(what, ": worst relative error ", worst, " at ", at, " (", a[at], " vs ", b[at], ")");
  CHECK(worst <= tol);
}

}  // namespace

TEST_CASE("dispatch: a variant is selected and listed") {
  const Isa s = selected_isa();
  CHECK(isa_compiled(s));
  CHECK(isa_supported(s));
  CHECK(!kernel_variants().empty());
  MESSAGE("selected kernels: ", std::string(isa_name(s)), "; SIMD variants tested here: ", simd_variants().size());
}

TEST_CASE("taps primitives: SIMD equals scalar") {
  for (Isa isa : simd_variants()) {
    for (int64_t n : {1, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 33, 100, 257}) {
      INFO(std::string(isa_name(isa)), " n=", n);
      auto buf = randn(size_t(n + 3 * 17 + kTapsSlack), uint64_t(n));
      Taps t;
      for (int q = 0; q < 9; ++q) t.src[q] = buf.data(), t.shift[q] = (q / 3) * 17 + q % 3;
      auto w = randn(9, 1000 + n), d = randn(size_t(n), 2000 + n);
      std::vector<float> ref(static_cast<size_t>(n)), got(static_cast<size_t>(n)), dref(9, 0.5f), dgot(9, 0.5f);
      taps_forward_scalar(t, w.data(), n, ref.data());
      taps_weight_scalar(t, d.data(), n, dref.data());
      switch (isa) {
#if defined(__x86_64__) && !defined(KD_SCALAR_ONLY)
        case Isa::avx2:
          avx2::taps_forward(t, w.data(), n, got.data()), avx2::taps_weight(t, d.data(), n, dgot.data());
          break;
        case Isa::avx512:
          avx512::taps_forward(t, w.data(), n, got.data()), avx512::taps_weight(t, d.data(), n, dgot.data());
          break;
#endif
#if defined(__aarch64__) && !defined(KD_SCALAR_ONLY)
        case Isa::neon:
          neon::taps_forward(t, w.data(), n, got.data()), neon::taps_weight(t, d.data(), n, dgot.data());
          break;
#endif
        default: FAIL("variant ", isa_name(isa), " is listed but not callable");
      }
      check_close(got, ref, 2e-6f, "taps_forward");
      check_close(dgot, dref, 2e-5f, "taps_weight");
    }
  }
}

TEST_CASE("depthwise 3x3: every variant equals the general reference loops") {
  std::vector<Isa> isas = simd_variants();
  isas.push_back(Isa::ref);
  for (Isa isa : isas)
    for (int64_t stride : {1, 2})
      for (auto [H, W] : std::vector<std::pair<int64_t, int64_t>>{
               {1, 1}, {2, 3}, {3, 3}, {4, 4}, {5, 7}, {7, 7}, {8, 8}, {9, 15}, {14, 14}, {16, 16}, {17, 17}, {28, 28}, {3, 33}}) {
        INFO(std::string(isa_name(isa)), " stride ", stride, " ", H, "x", W);
        ConvGeom g{1, H, W, 3, 3, stride, 1};
        REQUIRE(dw3x3_applies(g));
        const int64_t P = g.Ho() * g.Wo();
        auto x = randn(size_t(H * W), uint64_t(H * 100 + W)), w = randn(9, 7), dout = randn(size_t(P), 8);
        std::vector<float> y_ref(static_cast<size_t>(P)), y(static_cast<size_t>(P));
        dw_plane_forward(x.data(), w.data(), g, y_ref.data());
        dw3x3_forward(isa, x.data(), w.data(), g, y.data());
        check_close(y, y_ref, 2e-6f, "forward");
        // With an epilogue (a folded batch norm and ReLU6; AVX-512 fuses it into its stores): the
        // bits of ChannelEpilogue applied to the plain sums, NaN passing (one input NaN).
        for (const ChannelEpilogue& ep :
             {ChannelEpilogue{0.75f, -0.125f, 0.f, 6.f}, ChannelEpilogue{1.f, 0.f, -1.f, 1.f}}) {
          auto xn = x;
          xn[size_t(H * W / 2)] = NAN;
          std::vector<float> plain(static_cast<size_t>(P)), fused(static_cast<size_t>(P), 99.f);
          dw3x3_forward(isa, xn.data(), w.data(), g, plain.data());
          dw3x3_forward(isa, xn.data(), w.data(), g, fused.data(), ep);
          int nans = 0;
          for (int64_t i = 0; i < P; ++i) {
            if (std::isnan(plain[size_t(i)])) {
              CHECK(std::isnan(fused[size_t(i)]));
              ++nans;
            } else {
              CHECK(fused[size_t(i)] == ep(plain[size_t(i)]));
            }
          }
          CHECK(nans > 0);
        }

        std::vector<float> dx_ref(size_t(H * W), 0.f), dx(size_t(H * W), 123.f);  // dx is overwritten
        dw_plane_backward_input(dout.data(), w.data(), g, dx_ref.data());
        dw3x3_backward_input(isa, dout.data(), w.data(), g, dx.data());
        check_close(dx, dx_ref, 2e-6f, "input gradient");

        std::vector<float> dw_ref(9, 0.25f), dw(9, 0.25f);  // dw is accumulated into
        dw_plane_backward_weight(x.data(), dout.data(), g, dw_ref.data());
        dw3x3_backward_weight(isa, x.data(), dout.data(), g, dw.data());
        check_close(dw, dw_ref, 2e-5f, "weight gradient");

        // Summed over three planes of one channel laid out as in a batch of two channels.
        auto xs = randn(size_t(6 * H * W), 11), ds = randn(size_t(6 * P), 12);
        std::vector<float> dwn_ref(9, -0.5f), dwn(9, -0.5f);
        for (int64_t n = 0; n < 3; ++n)
          dw_plane_backward_weight(xs.data() + n * 2 * H * W, ds.data() + n * 2 * P, g, dwn_ref.data());
        dw3x3_backward_weight_planes(isa, xs.data(), ds.data(), g, 3, 2 * H * W, 2 * P, dwn.data());
        check_close(dwn, dwn_ref, 5e-5f, "weight gradient over planes");
      }
}
