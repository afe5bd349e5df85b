#include "nn/ops/conv2d_winograd.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "core/kernels/phase_split.h"
#include "core/kernels/winograd.h"
#include "nn/ops/padded_layout.h"

namespace kd::F::winograd {

namespace {

using kernels::ConvGeom;
constexpr int kM = kernels::kWinogradTile, kP = kernels::kWinogradPatch, kXi = kernels::kWinogradPoints;

padded::Layout tile_layout(const ConvGeom& g, int64_t G) { return padded::make_tile_layout(g.C, g.H, g.W, kM, G); }

// Real tiles per chunk (at most; more if one image's tile row has more): the transforms and GEMMs
// of a call run chunk by chunk, so that a chunk's V and M (36 planes each) stay in the caches
// between the passes; a multiple of the tap GEMM's column tile (48 on AVX-512).
constexpr int64_t kChunk = 48;
// Tile columns per call: the padded copy's size (it too should stay in the caches; 384 and 96
// were slower for the teacher's layers, bench/RESULTS.md).
constexpr int64_t kCallColumns = 192;
// The most a call's padded copy may take, and a pair's two (pair_images_per_call): a core's L2 on
// the Zen 4 this was measured on (1 MiB), and a little more for the pair (bench/RESULTS.md).
constexpr int64_t kMaxCopyBytes = int64_t(1) << 20, kMaxPairCopiesBytes = int64_t(5) << 18;
// Floats past a channel's output rows that tile_rows_to_phases may read (core/kernels/phase_split.h).
constexpr int64_t kRowsReadSlack = 16;

const kernels::WinogradKernel& transforms() {
  const kernels::WinogradKernel* selected = kernels::winograd_selected();
  return selected ? *selected : kernels::winograd_reference();
}

}  // namespace

// U [36][O][C], each xi's matrix written straight into the tap GEMM's packed layout.
Weights forward_weights(const float* w, int64_t O, int64_t C) {
  const kernels::TapGemmWeights shape{.O = O, .C = C, .taps = 1};
  const int mr = kernels::tap_gemm_mr();
  const int64_t per = kernels::tap_gemm_packed_floats(shape);
  Weights u;
  u.buffer = Tensor::empty({kXi * per});
  transforms().filter(w, O, C, mr, u.buffer.f32(), per);
  for (int e = 0; e < kXi; ++e) u.u[size_t(e)] = kernels::tap_gemm_packed_view(shape, mr, u.buffer.f32() + e * per);
  return u;
}

bool applies(const ConvGeom& g, int64_t O) {
  return kernels::winograd_selected() != nullptr && g.kh == 3 && g.kw == 3 && g.stride == 1 && g.pad == 1 && g.C >= 8 &&
         O >= 8 && g.H >= 4 && g.W >= 4;
}

namespace {
// The largest n <= G for which fits(n) holds; 0 where not even one image fits.
template <class Fits>
int64_t largest_fitting(int64_t G, Fits&& fits) {
  while (G > 0 && !fits(G)) --G;
  return G;
}
}  // namespace

int64_t images_per_call(const ConvGeom& g, int64_t N, int threads) {
  if (N < threads) return 1;
  // ~192 tile columns: 4 images of 28x28 (56 columns each), 10 of 14x14 (20), 32 of 7x7 (6);
  // at least one call per thread.
  const int64_t per_image = std::max<int64_t>(1, tile_layout(g, 1).cols);
  const int64_t want = std::max<int64_t>(1, (kCallColumns + per_image - 1) / per_image);
  const int64_t per_thread = std::max<int64_t>(1, N / (int64_t(threads) * want));
  const int64_t G = (N + threads * per_thread - 1) / (threads * per_thread);
  // And a padded copy that stays in a core's L2 while the chunks read it.
  return std::max<int64_t>(1, largest_fitting(G, [&](int64_t n) {
                             return int64_t(sizeof(float)) * tile_layout(g, n).total <= kMaxCopyBytes;
                           }));
}

CallSplit split_calls(int64_t N, int64_t G, int threads) {
  int64_t calls = (N + G - 1) / G;
  if (N >= threads) calls = std::min(N, (calls + threads - 1) / threads * threads);
  return {calls, N};
}

namespace {
// How a call walks its tiles: chunks of whole image tile rows (Ws / 4 tile columns each, of which
// the first `kept` are real; every one of them kept where the transforms cannot drop tiles fast),
// `per_chunk` of them, at most `cap` kept tiles per chunk. V's rows leave 16 floats of room for
// the input transform's last stores.
struct Chunking {
  int64_t period, kept, per_chunk, cap, v_pitch, row_pitch;
};
Chunking chunking(const padded::Layout& L) {
  Chunking ch{};
  ch.period = L.Ws / kM;
  ch.kept = transforms().drops_fast ? L.Wo : ch.period;
  ch.per_chunk = std::max<int64_t>(1, kChunk / ch.kept);
  ch.cap = ch.per_chunk * ch.kept;
  ch.v_pitch = ch.cap + 16;
  ch.row_pitch = kM * ((ch.cap + 15) / 16 * 16);  // the output transform writes whole vectors
  return ch;
}
}  // namespace

size_t scratch_floats(const ConvGeom& g, int64_t O, int64_t G) {
  const padded::Layout L = tile_layout(g, G);
  const Chunking ch = chunking(L);
  return size_t(L.total + kXi * g.C * ch.v_pitch + kernels::kTapGemmSlack + kXi * O * ch.cap + kM * ch.row_pitch +
                kRowsReadSlack + ch.per_chunk * ch.period);
}

namespace {
// A run of images' outputs of one output channel and tile row, as the output transform left them:
// images [n0, n1) of tile row th, output rows 4 th .. 4 th + rows - 1; image n's part at src +
// (n - n0) * image. Interleaved (winograd_output): output row a at + a * pitch, g.W floats.
// Planar (winograd_output_planar): element (a, b) of the image's tiles at + (a * 4 + b) * pitch.
struct TileRun {
  int64_t o, th, n0, n1;
  const float* src;
  int64_t rows, pitch, image;
};

// Passes 2-4 (conv2d_winograd.h) over a built padded copy xp of G images (layout L), with `work`
// as the rest of the scratch (scratch_floats - L.total floats); each output channel's tile rows
// go to emit(TileRun) in chunk order.
template <bool Planar, class Emit>
void tile_passes(const float* xp, const padded::Layout& L, int64_t G, const Weights& w, const ConvGeom& g, float* work,
                 const Epilogue& ep, Emit&& emit) {
  const kernels::WinogradKernel& k = transforms();
  const int64_t O = w.u[0].O, C = g.C, H = g.H;
  const Chunking ch = chunking(L);
  // A chunk's transformed input and GEMM results, channel-major: each channel's 36 planes are one
  // block, which the transforms write and read as a whole (36 planes C or O channels apart, as
  // xi-major planes would be, were 36 streams that defeated the prefetchers).
  float* V = work;                                               // [C][36][v_pitch], then the GEMM's slack
  float* M = V + kXi * C * ch.v_pitch + kernels::kTapGemmSlack;  // [O][36][cap]
  // One channel's outputs: [4][row_pitch] interleaved or [16][row_pitch / 4] planar (and M's read
  // slack), then the planar rows' read slack.
  float* rows = M + kXi * O * ch.cap;
  uint8_t* keep = reinterpret_cast<uint8_t*>(rows + kM * ch.row_pitch + kRowsReadSlack);  // per tile column of a chunk
  for (int64_t t = 0; t < ch.per_chunk * ch.period; ++t) keep[t] = t % ch.period < ch.kept;
  int64_t shift[kXi];
  for (int i = 0; i < kP; ++i)
    for (int j = 0; j < kP; ++j) shift[i * kP + j] = L.shift(i, j);
  const int64_t zero = 0, span = ch.per_chunk * ch.period;  // tile columns per chunk
  const int64_t planar_pitch = ch.row_pitch / kM;
  struct Run {
    int64_t th, n0, n1, k0;  // k0: the first image's first kept tile in the chunk
  };
  std::vector<Run> runs;
  runs.reserve(size_t(ch.per_chunk + 1));
  for (int64_t t0 = 0; t0 < L.cols; t0 += span) {
    const int64_t np = std::min(span, L.cols - t0);  // a whole number of image tile rows
    int64_t nb = 0;                                  // the chunk's kept tiles
    for (int64_t c = 0; c < C; ++c)
      nb = k.input(xp + c * L.pitch + t0, shift, np, keep, V + c * kXi * ch.v_pitch, ch.v_pitch);
    for (int e = 0; e < kXi; ++e) {
      const kernels::TapGemmArgs a{V + e * ch.v_pitch, kXi * ch.v_pitch, &zero, nb, M + e * ch.cap, kXi * ch.cap, {}};
      kernels::tap_gemm(w.u[size_t(e)], a, 0, kernels::tap_gemm_tiles(w.u[size_t(e)], nb));
    }
    // The chunk's runs of images per tile row: image n's tile row th starts at tile column th*R +
    // n*period, in this chunk at kept tile (column - t0) / period * kept; the images of a tile row
    // in the chunk are consecutive. The same for every output channel.
    runs.clear();
    for (int64_t th = t0 / L.R; th * L.R < t0 + np; ++th) {
      int64_t n0 = 0, n1 = G;
      while (n0 < G && L.out_col(n0, th) < t0) ++n0;
      while (n1 > n0 && L.out_col(n1 - 1, th) >= t0 + np) --n1;
      if (n0 < n1) runs.push_back({th, n0, n1, (L.out_col(n0, th) - t0) / ch.period * ch.kept});
    }
    for (int64_t o = 0; o < O; ++o) {
      if constexpr (Planar)
        k.output_planar(M + o * kXi * ch.cap, ch.cap, nb, ep.channel(o), rows, planar_pitch);
      else
        k.output(M + o * kXi * ch.cap, ch.cap, nb, ep.channel(o), rows, ch.row_pitch);
      for (const Run& r : runs)
        emit(TileRun{.o = o,
                     .th = r.th,
                     .n0 = r.n0,
                     .n1 = r.n1,
                     .src = rows + (Planar ? r.k0 : kM * r.k0),
                     .rows = std::min<int64_t>(kM, H - kM * r.th),
                     .pitch = Planar ? planar_pitch : ch.row_pitch,
                     .image = Planar ? ch.kept : kM * ch.kept});
    }
  }
}

// The emit of a call whose result goes to y (image n's channel o at y + n * y_image + o * H * W).
auto rows_into(float* y, int64_t y_image, const ConvGeom& g) {
  return [=](const TileRun& r) {
    for (int64_t n = r.n0; n < r.n1; ++n) {
      const float* src = r.src + (n - r.n0) * r.image;
      float* dst = y + n * y_image + (r.o * g.H + kM * r.th) * g.W;
      for (int64_t a = 0; a < r.rows; ++a) std::memcpy(dst + a * g.W, src + a * r.pitch, sizeof(float) * size_t(g.W));
    }
  };
}
}  // namespace

void forward(const float* x, int64_t x_image, int64_t G, const Weights& w, const ConvGeom& g, float* scratch, float* y,
             int64_t y_image, const Epilogue& ep) {
  const padded::Layout L = tile_layout(g, G);
  padded::build(x, x_image, g.C, L, scratch);
  tile_passes<false>(scratch, L, G, w, g, scratch + L.total, ep, rows_into(y, y_image, g));
}

int64_t pair_images_per_call(const ConvGeom& g1, const ConvGeom& g2, int64_t N, int threads) {
  return largest_fitting(images_per_call(g1, N, threads), [&](int64_t n) {
    return int64_t(sizeof(float)) * (tile_layout(g1, n).total + tile_layout(g2, n).total) <= kMaxPairCopiesBytes;
  });
}

size_t pair_scratch_floats(const ConvGeom& g1, int64_t O1, const ConvGeom& g2, int64_t O2, int64_t G) {
  const int64_t t1 = tile_layout(g1, G).total, t2 = tile_layout(g2, G).total;
  const size_t work1 = scratch_floats(g1, O1, G) - size_t(t1), work2 = scratch_floats(g2, O2, G) - size_t(t2);
  return size_t(t1 + t2) + std::max(work1, work2);
}

void forward_pair(const float* x, int64_t x_image, int64_t G, const Weights& w1, const ConvGeom& g1,
                  const Epilogue& ep1, const Weights& w2, const ConvGeom& g2, const Epilogue& ep2, float* scratch,
                  float* y, int64_t y_image) {
  KD_CHECK(g2.C == w1.u[0].O && g2.H == g1.H && g2.W == g1.W, "winograd pair: the second convolution's input (", g2.C,
           " x ", g2.H, " x ", g2.W, ") is not the first one's output (", w1.u[0].O, " x ", g1.H, " x ", g1.W, ")");
  const padded::Layout L1 = tile_layout(g1, G), L2 = tile_layout(g2, G);
  float* xp1 = scratch;
  float* xp2 = xp1 + L1.total;
  float* work = xp2 + L2.total;
  padded::build(x, x_image, g1.C, L1, xp1);
  // The first convolution's outputs by element (winograd_output_planar), each element's run into
  // its phase plane of the second one's padded copy (tile_rows_to_phases): what padded::build
  // would make of its output, without the output, and without interleaving the tiles' columns
  // only to split them again. The zeros first (padding rows, the tail); the runs write their
  // padding columns themselves.
  std::fill(xp2, xp2 + L2.total, 0.f);
  const kernels::PhaseSplitKernel& split = kernels::phase_split_selected();
  tile_passes<true>(xp1, L1, G, w1, g1, work, ep1, [&](const TileRun& r) {
    split.tile_rows(kernels::TileRowArgs{.src = r.src,
                                         .src_pitch = r.pitch,
                                         .src_image = r.image,
                                         .rows = r.rows,
                                         .images = r.n1 - r.n0,
                                         .tiles = L1.Wo,
                                         .cols = g1.W,
                                         .dst = xp2 + r.o * L2.pitch + r.th * L2.R + r.n0 * (L2.Ws / kM),
                                         .plane = L2.Hq * L2.R,
                                         .R = L2.R});
  });
  tile_passes<false>(xp2, L2, G, w2, g2, work, ep2, rows_into(y, y_image, g2));
}

}  // namespace kd::F::winograd
