// kd_loss.h's row kernel for any xsimd architecture A (instantiated in kd_loss_<isa>.cpp).
// Lane-wise float sums over blocks, added up in double (the scalar reference sums in double);
// exp is xsimd's (about 1 ulp).
#pragma once
#include <cmath>
#include <xsimd/xsimd.hpp>

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

template <class A>
inline xsimd::batch<float, A> ipow(xsimd::batch<float, A> x, int n) {
  xsimd::batch<float, A> r(1.f);
  for (; n > 0; n >>= 1, x *= x)
    if (n & 1) r *= x;
  return r;
}

template <class A>
float kd_row(const float* s, const float* t, int32_t y, int64_t K, float T, float alpha, float inv_n,
             float* grad_row, float* scratch) {
  using B = xsimd::batch<float, A>;
  constexpr int64_t S = B::size;
  const bool soft = alpha > 0.f, hard = alpha < 1.f;
  float* et = scratch;
  float* es = scratch + K;
  float* eh = scratch + 2 * K;
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
  // Pass 2: exponentials and their sums.
  const float iT = 1.f / T;
  const B bms(ms), bmt(mt), biT(iT);
  B b_last(0.f);
  const int int_T = (T == std::floor(T) && T >= 1.f && T <= 8.f) ? int(T) : 0;
  // A float lane sum of a whole row (38,016 terms a lane for 152,064 logits on 4-lane NEON) drops
  // the small terms once it is large; so each lane sums at most 64 terms, and blocks add in double.
  double zt = 0, zs = 0, zh = 0, dot = 0;
  for (int64_t i0 = 0; i0 < Kv; i0 += 64 * S) {
    B vzt(0.f), vzs(0.f), vzh(0.f), vdot(0.f);
    for (int64_t i = i0; i < std::min(Kv, i0 + 64 * S); i += S) {
      const B sv = B::load_unaligned(s + i);
      if (soft) {
        const B tv = B::load_unaligned(t + i);
        const B a = xsimd::exp((tv - bmt) * biT), b = xsimd::exp((sv - bms) * biT);
        b_last = b;
        a.store_unaligned(et + i);
        b.store_unaligned(es + i);
        vzt += a, vzs += b;
        vdot = xsimd::fma(a, tv - sv, vdot);
      }
      if (hard) {
        // exp(s - max) = exp((s - max)/T)^T: for a small integer T (the usual 2..8) a few
        // multiplications replace the third exponential (a few ulp of extra rounding).
        const B h = soft && int_T ? ipow(b_last, int_T) : xsimd::exp(sv - bms);
        h.store_unaligned(eh + i);
        vzh += h;
      }
    }
    zt += lanes_sum(vzt), zs += lanes_sum(vzs), zh += lanes_sum(vzh), dot += lanes_sum(vdot);
  }
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
      if (soft) g = B::load_unaligned(es + i) * ca - B::load_unaligned(et + i) * cb;
      if (hard) g = xsimd::fma(B::load_unaligned(eh + i), ch, g);
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

}  // namespace kd::kernels::simd
