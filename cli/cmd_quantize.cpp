// kd quantize: post-training quantization of a model file into an INT8 model file, with the
// FP32 and INT8 test accuracy side by side (the drift users must be able to see).
#include <sys/stat.h>

#include <cstdio>

#include "cli/commands.h"
#include "cli/common.h"
#include "data/normalize.h"
#include "nn/model_io.h"
#include "nn/trainer.h"
#include "quant/int8_model.h"

namespace kd::cli {

namespace {
int64_t file_bytes(const std::string& path) {
  struct stat st{};
  return stat(path.c_str(), &st) == 0 ? int64_t(st.st_size) : 0;
}
}  // namespace

int cmd_quantize(int argc, char** argv) {
  Args a("quantize",
         "Post-training quantization (PTQ): folds batch norm into the convolutions, calibrates every\n"
         "activation's range on the first N training images (no augmentation), quantizes weights per\n"
         "output channel (s8, symmetric) and activations per tensor (u8, affine), and writes an INT8\n"
         "model file (quant/int8_model.h) that kd eval runs on integer kernels. The first conv and the\n"
         "final linear layer stay FP32. Prints FP32 and INT8 test accuracy and the file sizes.",
         {{"--model", "FILE", "FP32 model file (required)"},
          {"--calib", "N", "calibration images (default 1024)"},
          {"--observer", "NAME", "minmax (default), moving_average, percentile or mse"},
          {"--int8-first", "", "quantize the first conv too (default: keep it FP32)"},
          {"--out", "FILE", "output file (default: the model's name with .int8.safetensors)"},
          {"--data", "DIR", "directory with the IDX files (default /usr/share/datasets/fashion-mnist)"},
          {"--limit", "N", "evaluate on the first N test images only"},
          {"--threads", "N", "OpenMP threads"}});
  if (!a.parse(argc, argv, 2)) return 0;
  KD_CHECK(a.has("--model"), "--model FILE is required");
  apply_threads(a);
  const std::string in = *a.str("--model");
  std::string out = a.str_or("--out", "");
  if (out.empty()) {
    const std::string ext = ".safetensors";
    out = (in.size() > ext.size() && in.compare(in.size() - ext.size(), ext.size(), ext) == 0
               ? in.substr(0, in.size() - ext.size())
               : in) +
          ".int8.safetensors";
  }
  const int64_t n_calib = a.integer("--calib", 1, 60000).value_or(1024);
  quant::ConvertOptions opt;
  opt.observer = quant::observer_kind(a.str_or("--observer", "minmax"));
  opt.first_fp32 = !a.has("--int8-first");
  KD_CHECK(!quant::is_int8_file(in), in, " is already an INT8 model (kd quantize takes an FP32 model)");
  Model m = load_model(in);
  const std::string dir = a.str_or("--data", kFashionMnistDir);
  const Tensor calib = normalize(take_first(load_mnist_like(dir, true), n_calib).images);
  const quant::Int8Model q = quant::convert_ptq(m, calib, opt);
  quant::save_int8(out, q);
  Dataset test = load_mnist_like(dir, false);
  if (auto n = a.integer("--limit", 1, int64_t(1) << 40)) test = take_first(test, *n);
  const EvalResult fp = evaluate(m, test);
  const EvalResult iq = evaluate_logits([&](const Tensor& x) { return q.forward(x); }, q.classes, test);
  std::printf("calibrated on %lld training images (observer %s); INT8 model written to %s\n", (long long)calib.size(0),
              quant::observer_name(opt.observer), out.c_str());
  std::printf("test accuracy (%lld images): FP32 %.2f%%  INT8 %.2f%%  (difference %+.2f points)\n", (long long)test.size(),
              fp.accuracy(), iq.accuracy(), iq.accuracy() - fp.accuracy());
  const int64_t fb = file_bytes(in), ib = file_bytes(out);
  std::printf("file size: FP32 %lld bytes, INT8 %lld bytes (%.1f%%)\n", (long long)fb, (long long)ib,
              fb ? 100.0 * double(ib) / double(fb) : 0.0);
  return 0;
}

}  // namespace kd::cli
