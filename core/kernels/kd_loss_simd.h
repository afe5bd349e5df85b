// kd_loss.h's row kernel for any xsimd architecture A (instantiated in kd_loss_<isa>.cpp).
// Lane-wise float sums over blocks, added up in double (the scalar reference sums in double);
// exp is exp2_nonpositive below (a few ulp).
#pragma once
#include <cmath>
#include <xsimd/xsimd.hpp>

#include "core/kernels/simd_fma.h"
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace kd::kernels::simd {

template <class A>
inline float lanes_max(const xsimd::batch<float, A>& v) {
  alignas(64) float l[xsimd::batch<float, A>::size];
  v.store_aligned(l);
  float m = l[0];
  for (size_t i = 1; i < xsimd::batch<float, A>::size; ++i) m = std::max(m, l[i]);
  return m;
}
template <class A>
inline float lanes_sum(const xsimd::batch<float, A>& v) {
  alignas(64) float l[xsimd::batch<float, A>::size];
  v.store_aligned(l);
  float m = 0;
  for (size_t i = 0; i < xsimd::batch<float, A>::size; ++i) m += l[i];
  return m;
}

// 2^y for y <= 0, the only range the loss needs (the row maxima are subtracted first).
//   2^y = 2^n * 2^f,  n = round(y),  f = y - n in [-1/2, 1/2],
//   2^f = sum_k (f ln 2)^k / k!, to k = 6: truncation error < (ln 2 / 2)^7 / 7! = 1.2e-7 absolute,
//   8.4e-8 relative at f = 1/2, below float's half-ulp; the 6 Horner FMAs add a few ulp.
// f is exact (y and n are floats within a factor 2 of each other, Sterbenz), so the only error
// beyond the polynomial's is y's own rounding, as in any exp(x) of a rounded x.
// Half of xsimd::exp's instructions (no overflow or NaN lanes to select; those cannot occur here).
// AVX-512: vscalefps forms p * 2^n in one instruction and flushes n < -149 to 0 by itself.
// Elsewhere y is clamped at -126 so that n + 127 stays a normal exponent field: terms below
// 2^-126 (1.2e-38) come out as about 1e-38 instead of 0, far below any sum's rounding.
template <class B>
inline B exp2_taylor6(const B& f) {  // 2^f = sum_{k <= 6} (f ln 2)^k / k!, Horner
  B p = fused_madd(f, B(1.5403530393381609e-4f), B(1.3333558146428443e-3f));
  p = fused_madd(f, p, B(9.6181291076284772e-3f));
  p = fused_madd(f, p, B(5.5504108664821580e-2f));
  p = fused_madd(f, p, B(2.4022650695910071e-1f));
  p = fused_madd(f, p, B(6.9314718055994531e-1f));
  p = fused_madd(f, p, B(1.f));
  return p;
}

template <class A>
inline xsimd::batch<float, A> exp2_nonpositive(xsimd::batch<float, A> y) {
  using B = xsimd::batch<float, A>;
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<A, xsimd::avx512f>) {
    const __m512 n = _mm512_roundscale_ps(y, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const B f = y - B(n);
    const B p = exp2_taylor6(f);
    return B(_mm512_scalef_ps(p, n));
  }
#endif
  y = xsimd::max(y, B(-126.f));
  const B n = xsimd::nearbyint(y);
  const B f = y - n;
  const B p = exp2_taylor6(f);
  using I = xsimd::batch<int32_t, A>;
  const I e = (xsimd::to_int(n) + I(127)) << 23;
  return p * xsimd::bitwise_cast<B>(e);
}

// x^P for a compile-time P (P >= 1): unrolled squarings, no loop or branch in the caller's loop.
template <int P, class Bt>
inline Bt ipow(const Bt& x) {
  if constexpr (P == 1) {
    return x;
  } else {
    const Bt h = ipow<P / 2>(x);
    if constexpr (P % 2)
      return h * h * x;
    else
      return h * h;
  }
}

struct ExpSums {
  double zt = 0, zs = 0, zh = 0, dot = 0;
};

// Pass 2 over the whole vectors of a row: et, es, eh and their sums. P > 0: eh = es^P (T == P, a
// small integer); P == 0: eh = exp(s - max s). P is a template argument because a run-time power
// left a loop with a branch inside this loop (12% of the time at K = 32,000).
template <class A, int P>
ExpSums exp_pass(const float* s, const float* t, int64_t Kv, uintptr_t pf, float ms, float mt, float iT, bool soft,
                 bool hard, float* et, float* es, float* eh) {
  using B = xsimd::batch<float, A>;
  constexpr int64_t S = B::size;
  // exp(x) = 2^(x log2 e): the temperature and log2 e fold into one multiplier.
  constexpr float log2e = 1.4426950408889634f;
  const B bms(ms), bmt(mt), bc(iT * log2e), bl2e(log2e);
  ExpSums r;
  // A float lane sum of a whole row (38,016 terms a lane for 152,064 logits on 4-lane NEON) drops
  // the small terms once it is large; so each lane sums at most 64 terms, and blocks add in double.
  for (int64_t i0 = 0; i0 < Kv; i0 += 64 * S) {
    B vzt(0.f), vzs(0.f), vzh(0.f), vdot(0.f);
    for (int64_t i = i0; i < std::min(Kv, i0 + 64 * S); i += S) {
      const B sv = B::load_unaligned(s + i);
      // The next row's logits (pf bytes on: kd_loss's rows are contiguous), fetched while this
      // row's exponentials keep the core busy; pass 1 of the next row then reads from cache
      // (0.31 -> 0.28 ms at 32 x 32,000). A prefetch never faults, so the last row's is harmless.
      __builtin_prefetch(reinterpret_cast<const char*>(uintptr_t(s + i) + pf));
      if (soft) __builtin_prefetch(reinterpret_cast<const char*>(uintptr_t(t + i) + pf));
      B b(0.f);
      if (soft) {
        const B tv = B::load_unaligned(t + i);
        const B a = exp2_nonpositive((tv - bmt) * bc);
        b = exp2_nonpositive((sv - bms) * bc);
        a.store_unaligned(et + i);
        b.store_unaligned(es + i);
        vzt += a, vzs += b;
        vdot = fused_madd(a, tv - sv, vdot);
      }
      if (hard) {
        // exp(s - max) = exp((s - max)/T)^T: for a small integer T (the usual 2..8) a few
        // multiplications replace the third exponential (a few ulp of extra rounding).
        B h;
        if constexpr (P > 0)
          h = ipow<P>(b);
        else
          h = exp2_nonpositive((sv - bms) * bl2e);
        if constexpr (P == 0) h.store_unaligned(eh + i);  // else pass 3 forms es^P again
        vzh += h;
      }
    }
    r.zt += lanes_sum(vzt), r.zs += lanes_sum(vzs), r.zh += lanes_sum(vzh), r.dot += lanes_sum(vdot);
  }
  return r;
}

// Passes 2 and 3 and the loss, after the maxima ms and mt; P as in exp_pass.
template <class A, int P>
float kd_row_after_max(const float* s, const float* t, int32_t y, int64_t K, float T, float alpha, float inv_n,
                       float* grad_row, float* scratch, float ms, float mt) {
  using B = xsimd::batch<float, A>;
  constexpr int64_t S = B::size;
  const bool soft = alpha > 0.f, hard = alpha < 1.f;
  float* et = scratch;
  float* es = scratch + (K + 15) / 16 * 16;  // rows of kd_row_scratch_floats
  float* eh = es + (K + 15) / 16 * 16;
  const int64_t Kv = K / S * S;
  // Pass 2: exponentials and their sums.
  const float iT = 1.f / T;
  const ExpSums sums = exp_pass<A, P>(s, t, Kv, uintptr_t(K) * 4, ms, mt, iT, soft, hard, et, es, eh);
  double zt = sums.zt, zs = sums.zs, zh = sums.zh, dot = sums.dot;
  for (int64_t i = Kv; i < K; ++i) {
    if (soft) {
      et[i] = std::exp((t[i] - mt) * iT);
      es[i] = std::exp((s[i] - ms) * iT);
      zt += et[i], zs += es[i];
      dot += double(et[i]) * double(t[i] - s[i]);
    }
    if (hard) {
      eh[i] = std::exp(s[i] - ms);
      zh += eh[i];
    }
  }
  double loss = 0;
  if (soft) loss += double(alpha) * T * T * (dot / (zt * T) + double(ms - mt) / T + std::log(zs) - std::log(zt));
  if (hard) loss += double(1.f - alpha) * (std::log(zh) + ms - s[y]);
  // Pass 3: the gradient.
  if (grad_row) {
    const float a = soft ? alpha * T * inv_n : 0.f, b = (1.f - alpha) * inv_n;
    const float fa_zs = soft ? float(a / zs) : 0.f, fa_zt = soft ? float(a / zt) : 0.f, fb_zh = hard ? float(b / zh) : 0.f;
    const B ca(fa_zs), cb(fa_zt), ch(fb_zh);
    int64_t i = 0;
    for (; i < Kv; i += S) {
      B g(0.f);
      if (soft) {
        const B e = B::load_unaligned(es + i);
        g = e * ca - B::load_unaligned(et + i) * cb;
        if constexpr (P > 0)
          if (hard) g = fused_madd(ipow<P>(e), ch, g);
      }
      if constexpr (P == 0)
        if (hard) g = fused_madd(B::load_unaligned(eh + i), ch, g);
      g.store_unaligned(grad_row + i);
    }
    for (; i < K; ++i) {
      float g = 0.f;
      if (soft) g = es[i] * fa_zs - et[i] * fa_zt;
      if (hard) g = std::fma(eh[i], fb_zh, g);
      grad_row[i] = g;
    }
    if (hard) grad_row[y] -= b;
  }
  return float(loss);
}

// f.operator()<P>() for a run-time P in [0, Pmax] (0 for any other value).
template <int Pmax, class F>
float with_power(int P, const F& f) {
  if constexpr (Pmax == 0)
    return f.template operator()<0>();
  else
    return P == Pmax ? f.template operator()<Pmax>() : with_power<Pmax - 1>(P, f);
}

template <class A>
float kd_row(const float* s, const float* t, int32_t y, int64_t K, float T, float alpha, float inv_n, float* grad_row,
             float* scratch) {
  using B = xsimd::batch<float, A>;
  constexpr int64_t S = B::size;
  const bool soft = alpha > 0.f;
  const int64_t Kv = K / S * S;
  // Pass 1: maxima.
  B vms(-INFINITY), vmt(-INFINITY);
  for (int64_t i = 0; i < Kv; i += S) {
    vms = xsimd::max(vms, B::load_unaligned(s + i));
    if (soft) vmt = xsimd::max(vmt, B::load_unaligned(t + i));
  }
  float ms = lanes_max(vms), mt = soft ? lanes_max(vmt) : 0.f;
  for (int64_t i = Kv; i < K; ++i) {
    ms = std::max(ms, s[i]);
    if (soft) mt = std::max(mt, t[i]);
  }
  // The power P of exp_pass, a template argument: one instantiation per small integer T.
  const int P = (soft && T == std::floor(T) && T >= 1.f && T <= 8.f) ? int(T) : 0;
  const auto rest = [&]<int Pc>() {
    return kd_row_after_max<A, Pc>(s, t, y, K, T, alpha, inv_n, grad_row, scratch, ms, mt);
  };
  return with_power<8>(P, rest);
}

}  // namespace kd::kernels::simd
