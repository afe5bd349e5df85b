// kd bench kernels: each hand-written kernel timed on the reference models' shapes and on the
// issue's target shapes, beside its scalar reference, with the share of this machine's measured
// FMA peak (and memory bandwidth) it reaches.
#include <omp.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <string>
#include <tuple>
#include <vector>

#include "cli/commands.h"
#include "cli/common.h"
#include "core/kernels/dw3x3.h"
#include "core/kernels/dw_u8.h"
#include "core/kernels/gemm_u8s8.h"
#include "core/kernels/kd_loss.h"
#include "core/kernels/peak.h"
#include "core/kernels/tap_gemm.h"
#include "core/rng.h"
#include "core/threads.h"
#include "nn/builders.h"
#include "nn/functional.h"
#include "nn/ops/conv2d_winograd.h"
#include "nn/ops/eigen_map.h"

namespace kd::cli {

namespace {

using kernels::Isa;

double now_s() {
  using namespace std::chrono;
  return duration<double>(steady_clock::now().time_since_epoch()).count();
}

template <class F>
double median_ms(F&& f, int reps) {
  f();  // warm-up: scratch buffers, caches, page faults
  std::vector<double> ms;
  for (int r = 0; r < reps; ++r) {
    const double t = now_s();
    f();
    ms.push_back(1e3 * (now_s() - t));
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

struct DwCase {
  std::string name;
  int64_t N, C, H, W, stride;
};

// One depthwise 3x3 layer's buffers and passes, parallel over planes as in nn/ops/conv2d.cpp.
struct DwBench {
  DwCase c;
  kernels::ConvGeom g;
  std::vector<float> x, w, y, dy, dx, dw;
  explicit DwBench(const DwCase& cs) : c(cs), g{1, cs.H, cs.W, 3, 3, cs.stride, 1} {
    Rng r(1, 5);
    x.resize(size_t(c.N * c.C * c.H * c.W));
    for (float& v : x) v = r.normal();
    w.resize(size_t(c.C * 9));
    for (float& v : w) v = r.normal();
    y.resize(size_t(c.N * c.C * g.Ho() * g.Wo()));
    dy = y;
    for (float& v : dy) v = r.normal();
    dx.resize(x.size());
    dw.resize(w.size());
  }
  int64_t P() const { return g.Ho() * g.Wo(); }
  double flops() const { return 2.0 * 9 * double(c.N * c.C * P()); }
  void forward(Isa isa) {
    const int64_t HW = c.H * c.W, P = this->P();
#pragma omp parallel for schedule(static)
    for (int64_t nc = 0; nc < c.N * c.C; ++nc)
      kernels::dw3x3_forward(isa, x.data() + nc * HW, w.data() + (nc % c.C) * 9, g, y.data() + nc * P);
  }
  // Both gradients in one parallel region without a barrier between them, as conv2d's backward.
  void backward(Isa isa) {
    const int64_t HW = c.H * c.W, P = this->P();
    std::fill(dw.begin(), dw.end(), 0.f);
#pragma omp parallel
    {
#pragma omp for schedule(static) nowait
      for (int64_t nc = 0; nc < c.N * c.C; ++nc)
        kernels::dw3x3_backward_input(isa, dy.data() + nc * P, w.data() + (nc % c.C) * 9, g, dx.data() + nc * HW);
#pragma omp for schedule(static) nowait
      for (int64_t ch = 0; ch < c.C; ++ch)
        kernels::dw3x3_backward_weight_planes(isa, x.data() + ch * HW, dy.data() + ch * P, g, c.N, c.C * HW, c.C * P,
                                              dw.data() + ch * 9);
    }
  }
};

// The depthwise 3x3 layers of the reference student at batch 128, plus the target shape.
std::vector<DwCase> dw_cases(int64_t batch) {
  std::vector<DwCase> cases{{"target N64 C64 14x14 s1", 64, 64, 14, 14, 1}};
  Graph g = build_model(nlohmann::json{{"family", "dsnet"}}, "bench");
  auto info = g.validate();
  std::vector<std::string> seen;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const auto& n = g.nodes[i];
    if (n.op != "conv2d" || n.attrs.value("groups", 1) == 1) continue;
    // The input's shape is the output shape of the node feeding it.
    Shape in;
    for (size_t j = 0; j < g.nodes.size(); ++j)
      if (g.nodes[j].name == n.inputs[0]) in = info[j].out_shape;
    if (in.empty()) in = g.input_shape;
    const int64_t s = n.attrs.value("stride", 1);
    const std::string key = std::to_string(in[0]) + "x" + std::to_string(in[1]) + "s" + std::to_string(s);
    if (std::find(seen.begin(), seen.end(), key) != seen.end()) continue;
    seen.push_back(key);
    cases.push_back({"student " + n.name + " N" + std::to_string(batch) + " C" + std::to_string(in[0]) + " " +
                         std::to_string(in[1]) + "x" + std::to_string(in[2]) + " s" + std::to_string(s),
                     batch, in[0], in[1], in[2], s});
  }
  return cases;
}

struct DenseCase {
  std::string name;
  int64_t N, C, H, W, O, stride;
};

// The teacher's distinct dense 3x3 convolutions at the given batch, plus DESIGN.md's oneDNN
// comparison shape (64->64, N64 14x14).
std::vector<DenseCase> dense_cases(int64_t batch) {
  std::vector<DenseCase> cases{{"target 64->64 N64 14x14", 64, 64, 14, 14, 64, 1}};
  for (auto [C, H, O, s] : std::vector<std::array<int64_t, 4>>{
           {32, 28, 32, 1}, {32, 28, 64, 2}, {64, 14, 64, 1}, {64, 14, 128, 2}, {128, 7, 128, 1}})
    cases.push_back({"teacher " + std::to_string(C) + "->" + std::to_string(O) + " N" + std::to_string(batch) + " " +
                         std::to_string(H) + "x" + std::to_string(H) + " s" + std::to_string(s),
                     batch, C, H, H, O, s});
  return cases;
}

// One dense 3x3 (padding 1) convolution through nn's conv2d op, forward alone and forward with
// both gradients, as training runs it.
struct DenseBench {
  DenseCase c;
  Var x, w;
  Tensor seed;
  explicit DenseBench(const DenseCase& cs) : c(cs) {
    Rng r(3, 5);
    Tensor xt = Tensor::empty({c.N, c.C, c.H, c.W}), wt = Tensor::empty({c.O, c.C, 3, 3});
    for (int64_t i = 0; i < xt.numel(); ++i) xt.f32()[i] = r.normal();
    for (int64_t i = 0; i < wt.numel(); ++i) wt.f32()[i] = 0.1f * r.normal();
    x = Var(xt, true), w = Var(wt, true);
    const int64_t Ho = (c.H - 1) / c.stride + 1;
    seed = Tensor::empty({c.N, c.O, Ho, Ho});
    for (int64_t i = 0; i < seed.numel(); ++i) seed.f32()[i] = r.normal();
  }
  double flops() const {
    const double Ho = double((c.H - 1) / c.stride + 1);
    return 2.0 * double(c.N * c.O * c.C * 9) * Ho * Ho;
  }
  // The forward without gradients takes Winograd here (nn/ops/conv2d.cpp's rule).
  bool winograd_forward() const {
    return F::winograd::applies(kernels::ConvGeom{c.C, c.H, c.W, 3, 3, c.stride, 1}, c.O) &&
           c.N >= F::winograd::kMinImages;
  }
  void forward() {
    NoGrad ng;
    F::conv2d(x, w, Var(), int(c.stride), 1, 1);
  }
  void forward_backward() {
    x.zero_grad(), w.zero_grad();
    F::conv2d(x, w, Var(), int(c.stride), 1, 1).backward(seed);
  }
};

}  // namespace

int bench_kernels(int argc, char** argv) {
  Args a("bench kernels",
         "Times each hand-written kernel (the variant chosen for this CPU, and the scalar reference)\n"
         "on the issue's target shapes and the reference models' shapes: median of --reps runs,\n"
         "GFLOP/s and the percentage of this machine's FMA peak, measured first by the program\n"
         "itself (independent FMA chains on every thread; memory bandwidth by a STREAM triad).\n"
         "The memory-bound KD loss is given as a percentage of a triad over its own bytes (%tri):\n"
         "a working set that fits in the caches moves faster than the DRAM triad of the first line.\n"
         "Dense 3x3 forwards marked fwd:wino run Winograd F(4x4,3x3) (KD_WINOGRAD=off: the direct\n"
         "convolution); their GFLOP/s count the direct convolution's work (an effective rate).",
         {{"--threads", "N", "OpenMP threads (default: all cores)"},
          {"--reps", "N", "timed runs per kernel (default 21)"},
          {"--batch", "N", "batch of the reference-model shapes (default 128)"},
          {"--json", "", "print JSON"}});
  if (!a.parse(argc, argv, 3)) return 0;
  apply_threads(a);
  const int reps = int(a.integer("--reps", 1, 100000).value_or(21));
  const int64_t batch = a.integer("--batch", 1, 1 << 16).value_or(128);
  const int threads = num_threads();
  const Isa isa = kernels::selected_isa();
  const double peak = kernels::fma_peak_gflops(isa, threads);
  const double bw = kernels::stream_gbps(threads);
  nlohmann::json out = {{"bench", "kernels"}, {"threads", threads}, {"isa", kernels::isa_name(isa)},
                        {"fma_peak_gflops", peak}, {"stream_gbps", bw}, {"kernels", nlohmann::json::array()}};
  const bool json = a.has("--json");
  if (!json)
    std::printf("machine: %d threads, %s FMA peak %.1f GFLOP/s, STREAM triad %.1f GB/s\n\n"
                "%-44s %-9s %9s %8s %7s %9s %8s\n",
                threads, kernels::isa_name(isa), peak, bw, "kernel / shape", "pass", "ms", "GFLOP/s", "% peak",
                "ref ms", "speedup");
  for (const DwCase& c : dw_cases(batch)) {
    DwBench b(c);
    struct Pass {
      const char* name;
      double flops;
      std::function<void(Isa)> run;
    };
    const Pass passes[] = {
        {"fwd", b.flops(), [&](Isa i) { b.forward(i); }},
        {"fwd+bwd", 3 * b.flops(), [&](Isa i) { b.forward(i), b.backward(i); }},
    };
    for (const Pass& p : passes) {
      const double ms = median_ms([&] { p.run(isa); }, reps);
      const double ref = median_ms([&] { p.run(Isa::ref); }, std::max(3, reps / 5));
      const double gf = p.flops / (ms * 1e-3) * 1e-9;
      out["kernels"].push_back({{"kernel", "depthwise3x3"}, {"shape", c.name}, {"pass", p.name}, {"ms", ms},
                                {"gflops", gf}, {"pct_peak", 100 * gf / peak}, {"ref_ms", ref},
                                {"speedup", ref / ms}});
      if (!json)
        std::printf("%-44s %-9s %9.4f %8.2f %6.1f%% %9.3f %7.1fx\n", ("dw3x3 " + c.name).c_str(), p.name, ms, gf,
                    100 * gf / peak, ref, ref / ms);
    }
  }
  // Dense 3x3 convolution (the teacher's layers), whole F::conv2d calls: the padded copies,
  // the tap kernels (core/kernels/tap_gemm.h) or Eigen where they do not apply, the crops; the
  // forward without gradients by Winograd where it applies ("fwd:wino"). GFLOP/s counts the
  // direct convolution's multiply-adds: for Winograd an effective rate, which can pass the peak.
  // The tap kernel against its scalar reference is the tap_gemm line after these.
  bool any_winograd = false;
  for (const DenseCase& c : dense_cases(batch)) {
    DenseBench b(c);
    const bool wino = b.winograd_forward();
    any_winograd |= wino;
    for (auto [name, flops, fn] : std::vector<std::tuple<const char*, double, std::function<void()>>>{
             {wino ? "fwd:wino" : "fwd", b.flops(), [&] { b.forward(); }},
             {"fwd+bwd", 3 * b.flops(), [&] { b.forward_backward(); }}}) {
      const double ms = median_ms(fn, reps);
      const double gf = flops / (ms * 1e-3) * 1e-9;
      out["kernels"].push_back({{"kernel", "conv3x3"},
                                {"shape", c.name},
                                {"pass", name},
                                {"ms", ms},
                                {"gflops", gf},
                                {"pct_peak", 100 * gf / peak},
                                {"algorithm", wino && std::string(name) != "fwd+bwd" ? "winograd" : "direct"}});
      if (!json)
        std::printf("%-44s %-9s %9.4f %8.2f %6.1f%% %9s %8s\n", ("conv3x3 " + c.name).c_str(), name, ms, gf,
                    100 * gf / peak, "-", "-");
    }
  }
  if (any_winograd && !json)
    std::printf("(fwd:wino: Winograd F(4x4,3x3); its GFLOP/s and %% peak count the direct convolution's work)\n");
  // A residual block's two 3x3 stride-1 convolutions with their folded BN and ReLU at inference,
  // as one op (F::conv2d_bn_pair_inference: on Winograd, the first one's output straight into the
  // second one's padded copy, nn/ops/conv2d_winograd.h) against the two ops one after the other
  // (the "ref ms" column here). GFLOP/s: both convolutions' direct multiply-adds, as above.
  for (auto [C, H] : std::vector<std::array<int64_t, 2>>{{32, 28}, {64, 14}, {128, 7}}) {
    Rng r(7, 5);
    auto fill = [&](Shape shape, float mul, float add) {
      Tensor t = Tensor::empty(shape);
      for (int64_t i = 0; i < t.numel(); ++i) t.f32()[i] = add + mul * r.normal();
      return t;
    };
    const Tensor x = fill({batch, C, H, H}, 1.f, 0.f), w1 = fill({C, C, 3, 3}, 0.1f, 0.f),
                 w2 = fill({C, C, 3, 3}, 0.1f, 0.f);
    const Tensor gamma = fill({C}, 0.1f, 1.f), beta = fill({C}, 0.1f, 0.f), mean = fill({C}, 0.1f, 0.f),
                 var = fill({C}, 0.f, 1.f), none;
    const F::ConvBn c1{w1, none, 1, 1, 1, gamma, beta, mean, var, 1e-5f},
        c2{w2, none, 1, 1, 1, gamma, beta, mean, var, 1e-5f};
    NoGrad ng;
    const double ms =
        median_ms([&] { F::conv2d_bn_pair_inference(x, c1, 0.f, INFINITY, c2, none, 0.f, INFINITY); }, reps);
    const double two = median_ms(
        [&] {
          F::conv2d_bn_act_inference(F::conv2d_bn_act_inference(x, c1, none, 0.f, INFINITY), c2, none, 0.f, INFINITY);
        },
        reps);
    const double gf = 2 * 2.0 * double(batch * C * C * 9 * H * H) / (ms * 1e-3) * 1e-9;
    const std::string name = "block pair " + std::to_string(C) + "->" + std::to_string(C) + "->" + std::to_string(C) +
                             " N" + std::to_string(batch) + " " + std::to_string(H) + "x" + std::to_string(H);
    out["kernels"].push_back({{"kernel", "conv3x3_bn_pair"},
                              {"shape", name},
                              {"pass", "fwd"},
                              {"ms", ms},
                              {"gflops", gf},
                              {"pct_peak", 100 * gf / peak},
                              {"two_ops_ms", two},
                              {"speedup", two / ms}});
    if (!json)
      std::printf("%-44s %-9s %9.4f %8.2f %6.1f%% %9.3f %7.2fx\n", name.c_str(), "fwd:pair", ms, gf, 100 * gf / peak,
                  two, two / ms);
  }
  if (!json) std::printf("(block pair: both convolutions as one op; its ref ms is the two ops one after the other)\n");
  // The tap GEMM alone on the target shape's padded planes (64 -> 64 channels, 14x14 padded to
  // 16x16, nine taps), one image, its tiles over the threads: the selected variant against the
  // scalar reference (the same FMA order: the same bits).
  {
    const int64_t C = 64, O = 64, Hp = 16, Wp = 16, Ho = 14;
    Rng r(6, 5);
    std::vector<float> x(size_t(C * Hp * Wp + kernels::kTapGemmSlack + Wp)), w(size_t(O * C * 9)),
        y(size_t(O * Ho * Wp));
    for (float& v : x) v = r.normal();
    for (float& v : w) v = r.normal();
    int64_t shift[9];
    for (int i = 0; i < 9; ++i) shift[i] = (i / 3) * Wp + i % 3;
    const kernels::TapGemmWeights A{
        .w = w.data(), .rows = 1, .sb = C * 9, .so = 0, .sc = 9, .st = 1, .O = O, .C = C, .taps = 9};
    const kernels::TapGemmArgs args{x.data(), Hp * Wp, shift, Ho * Wp, y.data(), Ho * Wp, {}};
    auto timed = [&](const kernels::TapGemmKernel& k, int n) {
      const int64_t tiles = k.tiles(O, args.cols);
      return median_ms([&] { parallel_for_range(tiles, true, [&](int64_t b, int64_t e) { k.run(A, args, b, e); }); },
                       n);
    };
    const std::vector<kernels::TapGemmKernel> ks = kernels::tap_gemm_kernels();
    const kernels::TapGemmKernel& sel = *std::find_if(ks.begin(), ks.end(), [](const kernels::TapGemmKernel& k) {
      return std::string(k.name) == kernels::tap_gemm_variant();
    });
    const double ms = timed(sel, reps), ref = timed(ks.front(), std::max(3, reps / 5));
    const double gf = 2.0 * double(O * C * 9 * Ho * 14) / (ms * 1e-3) * 1e-9;  // useful columns only
    out["kernels"].push_back({{"kernel", std::string("tap_gemm ") + sel.name},
                              {"shape", "64->64 14x14, 1 image"},
                              {"pass", "fwd"},
                              {"ms", ms},
                              {"gflops", gf},
                              {"pct_peak", 100 * gf / peak},
                              {"ref_ms", ref},
                              {"speedup", ref / ms}});
    if (!json)
      std::printf("%-44s %-9s %9.4f %8.2f %6.1f%% %9.3f %7.1fx\n", "tap_gemm 64->64 14x14, 1 image", "fwd", ms, gf,
                  100 * gf / peak, ref, ref / ms);
  }
  // GEMM 512^3: FP32 through Eigen (what kd's float convolutions use) and int8 u8 x s8 -> s32 in
  // each available variant, against the int8 peak of the selected variant's instruction.
  {
    const int64_t M = 512, N = 512, K = 512;
    Rng r(4, 5);
    std::vector<float> fa(size_t(M * K)), fb(size_t(K * N)), fc(size_t(M * N));
    for (float& v : fa) v = r.normal();
    for (float& v : fb) v = r.normal();
    // Rows split over threads as kd's convolutions split images (Eigen itself runs one thread).
    const double fp32_ms = median_ms(
        [&] {
#pragma omp parallel for schedule(static)
          for (int64_t b = 0; b < 8; ++b)
            MatMap(fc.data() + b * 64 * N, 64, N).noalias() = CMatMap(fa.data() + b * 64 * K, 64, K) * CMatMap(fb.data(), K, N);
        },
        reps);
    const double ops = 2.0 * double(M * N * K), fp32_g = ops / (fp32_ms * 1e-3) * 1e-9;
    out["kernels"].push_back({{"kernel", "sgemm_eigen"}, {"shape", "512x512x512"}, {"pass", "fwd"}, {"ms", fp32_ms},
                              {"gflops", fp32_g}, {"pct_peak", 100 * fp32_g / peak}});
    if (!json)
      std::printf("%-44s %-9s %9.4f %8.2f %6.1f%% %9s %8s\n", "sgemm (Eigen) 512x512x512", "fwd", fp32_ms, fp32_g,
                  100 * fp32_g / peak, "-", "-");
    // The FP32 activation layout, measured on the student's pointwise convolutions: NCHW (kd's
    // layout) computes one GEMM per image, Y_n[O, HW] = W[O, C] X_n[C, HW], images over the threads;
    // NHWC would compute one GEMM for the batch, Y[N HW, O] = X[N HW, C] W^T[C, O], row blocks over
    // the threads. Same arithmetic, different matrix shapes and memory order.
    for (int64_t nb : {batch, int64_t(1)})
      for (auto [C, O, HW] : {std::tuple<int64_t, int64_t, int64_t>{16, 32, 28 * 28}, {64, 128, 7 * 7}}) {
        std::vector<float> x(size_t(nb * C * HW)), w(size_t(O * C)), y(size_t(nb * O * HW));
        for (float& v : x) v = r.normal();
        for (float& v : w) v = r.normal();
        const double nchw = median_ms(
            [&] {
              parallel_for(nb, nb > 1, [&](int64_t n) {
                MatMap(y.data() + n * O * HW, O, HW).noalias() =
                    CMatMap(w.data(), O, C) * CMatMap(x.data() + n * C * HW, C, HW);
              });
            },
            reps);
        const int64_t rows = nb * HW, parts = std::min<int64_t>(rows / 16 + 1, 2 * num_threads());
        const double nhwc = median_ms(
            [&] {
              parallel_for(parts, rows >= 4096, [&](int64_t t) {
                const int64_t r0 = rows * t / parts, r1 = rows * (t + 1) / parts;
                MatMap(y.data() + r0 * O, r1 - r0, O).noalias() =
                    CMatMap(x.data() + r0 * C, r1 - r0, C) * CMatMap(w.data(), O, C).transpose();
              });
            },
            reps);
        char shape[96];
        std::snprintf(shape, sizeof shape, "N%lld C%lld->O%lld HW%lld", (long long)nb, (long long)C, (long long)O,
                      (long long)HW);
        const double flops = 2.0 * double(nb * O * C * HW), gf = flops / (nchw * 1e-3) * 1e-9;
        out["kernels"].push_back({{"kernel", "pointwise_layout"},
                                  {"shape", shape},
                                  {"pass", "fwd"},
                                  {"ms", nchw},
                                  {"gflops", gf},
                                  {"pct_peak", 100 * gf / peak},
                                  {"nchw_ms", nchw},
                                  {"nhwc_ms", nhwc},
                                  {"nhwc_gflops", flops / (nhwc * 1e-3) * 1e-9}});
        if (!json)
          std::printf("%-44s %-9s %9.4f %8.2f %6.1f%%  NHWC %.4f ms (NCHW/NHWC %.2fx)\n",
                      ("pointwise layout NCHW " + std::string(shape)).c_str(), "fwd", nchw, gf, 100 * gf / peak, nhwc,
                      nchw / nhwc);
      }
    // The student's pointwise convolutions at inference (folded batch norm + ReLU): F's path (the
    // tap kernel, epilogue fused into its stores) beside the Eigen formulation it replaced (a GEMM
    // per image, which zeroes Y_n first, then the epilogue as a pass of its own).
    for (auto [C, O, HW] : {std::tuple<int64_t, int64_t, int64_t>{16, 32, 784},
                            {32, 64, 196},
                            {64, 64, 196},
                            {64, 128, 49},
                            {128, 128, 49}}) {
      const int64_t side = HW == 784 ? 28 : HW == 196 ? 14 : 7;
      Tensor x = Tensor::empty({batch, C, side, side}), w = Tensor::empty({O, C, 1, 1}), b = Tensor::zeros({O});
      Tensor gamma = Tensor::empty({O}), beta = Tensor::empty({O}), mean = Tensor::zeros({O}), var = Tensor::empty({O});
      for (int64_t i = 0; i < x.numel(); ++i) x.f32()[i] = r.normal();
      for (int64_t i = 0; i < w.numel(); ++i) w.f32()[i] = r.normal();
      for (int64_t o = 0; o < O; ++o)
        gamma.f32()[o] = 1.f + 0.1f * r.normal(), beta.f32()[o] = r.normal(), var.f32()[o] = 1.f;
      const double fused = median_ms(
          [&] {
            NoGrad ng;
            F::conv2d_bn_act_inference(x, w, b, 1, 0, 1, gamma, beta, mean, var, 1e-5f, 0.f, INFINITY);
          },
          reps);
      std::vector<float> y(size_t(batch * O * HW));
      const float *G = gamma.f32(), *Be = beta.f32();
      const double eigen = median_ms(
          [&] {
            parallel_for(batch, batch > 1, [&](int64_t n) {
              float* yn = y.data() + n * O * HW;
              MatMap(yn, O, HW).noalias() = CMatMap(w.f32(), O, C) * CMatMap(x.f32() + n * C * HW, C, HW);
              for (int64_t o = 0; o < O; ++o) {
                const float k = G[o] / std::sqrt(1.f + 1e-5f), sh = Be[o];
                for (int64_t p = 0; p < HW; ++p) yn[o * HW + p] = std::max(0.f, yn[o * HW + p] * k + sh);
              }
            });
          },
          reps);
      char shape[96];
      std::snprintf(shape, sizeof shape, "N%lld C%lld->O%lld HW%lld", (long long)batch, (long long)C, (long long)O,
                    (long long)HW);
      const double gf = 2.0 * double(batch * O * C * HW) / (fused * 1e-3) * 1e-9;
      out["kernels"].push_back({{"kernel", "pointwise_bn_relu"},
                                {"shape", shape},
                                {"pass", "fwd"},
                                {"ms", fused},
                                {"gflops", gf},
                                {"pct_peak", 100 * gf / peak},
                                {"eigen_ms", eigen}});
      if (!json)
        std::printf("%-44s %-9s %9.4f %8.2f %6.1f%%  Eigen+pass %.4f ms (%.2fx)\n",
                    ("pointwise+BN+ReLU " + std::string(shape)).c_str(), "fwd", fused, gf, 100 * gf / peak, eigen,
                    eigen / fused);
    }
    std::vector<uint8_t> A(size_t(M * K));
    std::vector<int8_t> W(size_t(N * K));
    for (auto& v : A) v = uint8_t(r.next_u64());
    for (auto& v : W) v = int8_t(r.next_u64());
    const kernels::PackedS8 P = kernels::pack_s8(W.data(), N, K);
    std::vector<int32_t> C(size_t(M * N));
    const kernels::GemmS8 sel = kernels::gemm_s8_selected();
    const double ipeak = kernels::int8_peak_gops(sel, threads);
    out["int8_peak_gops"] = ipeak;
    out["int8_peak_variant"] = kernels::gemm_s8_name(sel);
    const double ref_ms = median_ms([&] { kernels::gemm_u8s8s32(kernels::GemmS8::ref, A.data(), M, K, P, nullptr, C.data(), N); },
                                    std::max(3, reps / 5));
    for (kernels::GemmS8 v : {kernels::GemmS8::avx512vnni, kernels::GemmS8::avx2, kernels::GemmS8::neon_dot,
                              kernels::GemmS8::neon, kernels::GemmS8::ref}) {
      if (!kernels::gemm_s8_available(v)) continue;
      const double ms = median_ms([&] { kernels::gemm_u8s8s32(v, A.data(), M, K, P, nullptr, C.data(), N); }, reps);
      const double g = ops / (ms * 1e-3) * 1e-9;
      out["kernels"].push_back({{"kernel", std::string("gemm_u8s8s32_") + kernels::gemm_s8_name(v)},
                                {"shape", "512x512x512"}, {"pass", "fwd"}, {"ms", ms}, {"gops", g},
                                {"pct_int8_peak", 100 * g / ipeak}, {"vs_sgemm", fp32_ms / ms}, {"ref_ms", ref_ms},
                                {"speedup", ref_ms / ms}});
      if (!json)
        std::printf("%-44s %-9s %9.4f %7.1fGOP/s %5.1f%%i8pk %9.3f %7.1fx  %.2fx sgemm\n",
                    (std::string("gemm u8s8s32 ") + kernels::gemm_s8_name(v) + " 512^3").c_str(), "fwd", ms, g,
                    100 * g / ipeak, ref_ms, ref_ms / ms, fp32_ms / ms);
    }
    if (!json) std::printf("(int8 peak, %s instruction chains: %.1f GOP/s)\n", kernels::gemm_s8_name(sel), ipeak);
    // INT8 depthwise 3x3 (u8 NHWC, requantization included), DESIGN.md's N64 C64 14x14 shape at
    // stride 1 and 2, images over threads as the INT8 runtime runs them; against the same int8 peak.
    for (int64_t stride : {1, 2}) {
      const int64_t Nimg = 64, Cc = 64, H = 14, Wd = 14, Ho = (H + 2 - 3) / stride + 1, Wo = (Wd + 2 - 3) / stride + 1;
      std::vector<uint8_t> x(size_t(Nimg * H * Wd * Cc)), y(size_t(Nimg * Ho * Wo * Cc));
      for (auto& v : x) v = uint8_t(r.next_u64());
      std::vector<int32_t> w(static_cast<size_t>(9 * Cc)), b(static_cast<size_t>(Cc)), m0(static_cast<size_t>(Cc), 1 << 30),
          sh(static_cast<size_t>(Cc), 40);
      for (auto& v : w) v = int32_t(r.below(255)) - 127;
      for (auto& v : b) v = int32_t(r.below(2001)) - 1000;
      auto pass = [&](bool ref) {
#pragma omp parallel
        {
          std::vector<int32_t> scratch;
#pragma omp for schedule(static)
          for (int64_t n = 0; n < Nimg; ++n) {
            kernels::DwU8Args a{x.data() + n * H * Wd * Cc, H, Wd, Cc, 3, 3, stride, 1, Ho, Wo, 3, w.data(), b.data(),
                                m0.data(), sh.data(), 5, 5, 255, y.data() + n * Ho * Wo * Cc};
            scratch.resize(size_t(kernels::dw_u8_scratch_size(a)));
            a.scratch = scratch.data();
            if (ref)
              kernels::dw_u8_ref(a);
            else
              kernels::dw_u8(a);
          }
        }
      };
      const double ms = median_ms([&] { pass(false); }, reps), dref = median_ms([&] { pass(true); }, std::max(3, reps / 5));
      const double g = 2.0 * double(Nimg * Ho * Wo * Cc * 9) / (ms * 1e-3) * 1e-9;
      const std::string shape = "N64 C64 14x14 s" + std::to_string(stride);
      kernels::DwU8Args probe{};
      probe.kh = probe.kw = 3;
      const char* variant = kernels::dw_u8_selected(probe);
      out["kernels"].push_back({{"kernel", std::string("dw3x3_u8_") + variant}, {"shape", shape}, {"pass", "fwd"},
                                {"ms", ms}, {"gops", g}, {"pct_int8_peak", 100 * g / ipeak}, {"ref_ms", dref},
                                {"speedup", dref / ms}});
      if (!json)
        std::printf("%-44s %-9s %9.4f %7.1fGOP/s %5.1f%%i8pk %9.3f %7.1fx\n",
                    (std::string("int8 depthwise 3x3 ") + variant + " " + shape).c_str(), "fwd", ms, g, 100 * g / ipeak,
                    dref, dref / ms);
    }
  }
  // Fused distillation loss, forward + gradient: 10-class heads and language-model vocabularies.
  // Bytes: what any implementation must move to or from memory, s and t read once and the gradient
  // written once (12 bytes a logit); the scratch rows stay in the core's cache (L2) per row.
  for (auto [N, K] : std::vector<std::pair<int64_t, int64_t>>{{batch, 10}, {32, 32000}, {8, 152064}}) {
    // Tensors (64-byte aligned storage), as F::kd_loss passes them to the kernel.
    Tensor st = Tensor::empty({N, K}), tt = Tensor::empty({N, K}), gt = Tensor::empty({N, K});
    float *const s = st.f32(), *const t = tt.f32(), *const grad = gt.f32();
    Rng r(2, 5);
    for (int64_t i = 0; i < N * K; ++i) s[i] = 4 * r.normal(), t[i] = 4 * r.normal();
    std::vector<int32_t> y(static_cast<size_t>(N));
    for (int64_t n = 0; n < N; ++n) y[size_t(n)] = int32_t(n % K);
    kernels::KdLossArgs args{s, t, y.data(), N, K, 4.f, 0.9f, grad};
    const double ms = median_ms([&] { kernels::kd_loss(isa, args); }, reps);
    const double ref = median_ms([&] { kernels::kd_loss(Isa::ref, args); }, std::max(3, reps / 5));
    const double gbs = 3.0 * 4 * double(N * K) / (ms * 1e-3) * 1e-9;
    // A triad over the same bytes (3 arrays of N*K floats): what the memory level holding this
    // working set delivers, the kernel's own ceiling. 32 x 32,000 logits (12.3 MB) stay in a 32 MB
    // L3, where the triad runs about 3x the DRAM figure above, against which this kernel would
    // show over 100% (pct_bandwidth in the JSON keeps that DRAM ratio).
    // (On one thread where kd_loss stays on one: below kParallelMinWork logits.)
    const double same = kernels::stream_gbps(N * K < kParallelMinWork ? 1 : threads, N * K);
    const std::string shape = "N" + std::to_string(N) + " K" + std::to_string(K) + " T4 a0.9";
    out["kernels"].push_back({{"kernel", "kd_loss"},
                              {"shape", shape},
                              {"pass", "fwd+grad"},
                              {"ms", ms},
                              {"gbps", gbs},
                              {"pct_bandwidth", 100 * gbs / bw},
                              {"same_bytes_triad_gbps", same},
                              {"pct_same_bytes_triad", 100 * gbs / same},
                              {"ref_ms", ref},
                              {"speedup", ref / ms}});
    if (!json)
      std::printf("%-44s %-9s %9.4f %6.1fGB/s %4.0f%%tri %9.3f %7.1fx  (triad over the same bytes %.1f GB/s)\n",
                  ("kd_loss " + shape).c_str(), "fwd+grad", ms, gbs, 100 * gbs / same, ref, ref / ms, same);
  }
  if (json) std::printf("%s\n", out.dump().c_str());
  return 0;
}

}  // namespace kd::cli
