// Measures what this machine can do, so kernel benchmarks can say how close they come:
//   fma_peak_gflops: independent FMA chains in the widest selected vectors, on every thread;
//                    12 accumulators hide the FMA latency (4 cycles x 2 ports on current x86);
//   stream_gbps:     a[i] = b[i] + s * c[i] over arrays far larger than the caches
//                    (3 x 4 bytes moved per element; write-allocate traffic not counted, as STREAM).
#pragma once
#include <cstdint>

#include "core/kernels/dispatch.h"

namespace kd::kernels {

double fma_peak_gflops(Isa isa, int threads);
double stream_gbps(int threads, int64_t elements = int64_t(1) << 24);

// One thread's FMA loop: returns the FLOPs done (2 per lane per FMA). Per-ISA variants.
double fma_loop_scalar(int64_t iters);
#define KD_DECLARE_PEAK(ns) \
  namespace ns {            \
  double fma_loop(int64_t iters); \
  }
KD_DECLARE_PEAK(avx2)
KD_DECLARE_PEAK(avx512)
KD_DECLARE_PEAK(neon)
#undef KD_DECLARE_PEAK

}  // namespace kd::kernels
