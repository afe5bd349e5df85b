// Dumps batches 0, 5 and 467 of epochs 0 and 7 of kd's training loader (crop+flip, batch 128), as
// `kd train --seed SEED` sees them: per batch its 128 dataset rows (int64) and its augmented,
// normalised images (float32, 128 x 28 x 28). For checking scripts/kd_data_stream.py, the Python
// copy of kd's data stream, against kd itself:
//   g++ -std=c++20 -O2 -I. scripts/dump_kd_batches.cpp build/libkd_data.a build/libkd_core.a -lz -fopenmp \
//     -o /tmp/dump_kd_batches
//   /tmp/dump_kd_batches /usr/share/datasets/fashion-mnist 3 /tmp/kd3.bin
//   /usr/bin/python3 scripts/kd_data_stream.py check /tmp/kd3.bin 3
#include <cstdio>
#include <string>

#include "data/dataset.h"
#include "data/loader.h"

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s FASHION_MNIST_DIR SEED OUT.bin\n", argv[0]);
    return 2;
  }
  kd::LoaderOptions lo;  // kd train's: batch 128, drop_last, shuffled
  lo.seed = std::stoull(argv[2]);
  lo.augment = kd::Augment::crop_flip;
  kd::Loader loader(kd::load_mnist_like(argv[1], true), lo);
  FILE* f = std::fopen(argv[3], "wb");
  if (!f) {
    std::perror(argv[3]);
    return 1;
  }
  for (int epoch : {0, 7}) {
    loader.start_epoch(epoch);
    kd::Batch b;
    for (int i = 0; loader.next(b); ++i)
      if (i == 0 || i == 5 || i == 467) {
        std::fwrite(b.rows.data(), sizeof(int64_t), b.rows.size(), f);
        std::fwrite(b.x.f32(), sizeof(float), size_t(b.x.numel()), f);
      }
  }
  return std::fclose(f) == 0 ? 0 : 1;
}
