// kd: the command-line program. Every failure a user can cause ends here as one line on stderr
// ("kd <command>: <what and where>") and a non-zero exit, never a stack dump.
#include <cstdio>
#include <cstring>
#include <new>
#include <string>

#include "cli/commands.h"
#include "core/error.h"
#include "core/kernels/dispatch.h"

namespace {
const char* kUsage =
    "kd: knowledge distillation, pruning and INT8 on CPUs\n\n"
    "usage: kd <command> [flags]      (kd <command> --help for its flags)\n\n"
    "commands:\n"
    "  train     train a model from a JSON config (configs/student.json, configs/teacher.json)\n"
    "  distill   train a student taught by teachers (configs/distill.json)\n"
    "  slim      a slimmable student: widths, latency budget, export a width\n"
    "  pipeline  the main job: teacher, student with and without KD, deployment table\n"
    "  quantize  post-training INT8 quantization of a model file (FP32 vs INT8 accuracy)\n"
    "  qat       quantization-aware training of a model file, then its INT8 model\n"
    "  prune     structured channel pruning with fine-tuning, before/after report\n"
    "  gate      dynamic channel gating of a student: per-image channel choice, FLOPs/accuracy/latency\n"
    "  eval      accuracy, loss and confusion matrix of a model file (FP32 or INT8) on the test set\n"
    "  info      graph, parameters and FLOPs per layer of a model file or config\n"
    "  bench     training throughput, inference latency, kernels (bench train, latency, kernels)\n";
}

int main(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h") || !std::strcmp(argv[1], "help")) {
    std::fputs(kUsage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  const std::string cmd = argv[1];
  // Errors are prefixed with the command as the user typed it; bench's subcommands are part of it
  // ("kd bench train: --config FILE is required"), so no message has to name its command itself.
  std::string name = cmd;
  if (cmd == "bench" && argc > 2)
    for (const char* sub : {"train", "latency", "kernels"})
      if (!std::strcmp(argv[2], sub)) name += std::string(" ") + sub;
  try {
    // Choose the kernels now: a bad KD_KERNELS must fail here, not inside a parallel region.
    kd::kernels::selected_isa();
    if (cmd == "train") return kd::cli::cmd_train(argc, argv);
    if (cmd == "distill") return kd::cli::cmd_distill(argc, argv);
    if (cmd == "pipeline") return kd::cli::cmd_pipeline(argc, argv);
    if (cmd == "slim") return kd::cli::cmd_slim(argc, argv);
    if (cmd == "eval") return kd::cli::cmd_eval(argc, argv);
    if (cmd == "quantize") return kd::cli::cmd_quantize(argc, argv);
    if (cmd == "qat") return kd::cli::cmd_qat(argc, argv);
    if (cmd == "prune") return kd::cli::cmd_prune(argc, argv);
    if (cmd == "gate") return kd::cli::cmd_gate(argc, argv);
    if (cmd == "info") return kd::cli::cmd_info(argc, argv);
    if (cmd == "bench") return kd::cli::cmd_bench(argc, argv);
    std::fprintf(stderr, "kd: unknown command '%s'\n\n%s", cmd.c_str(), kUsage);
    return 2;
  } catch (const kd::Error& e) {
    std::fprintf(stderr, "kd %s: %s\n", name.c_str(), e.what());
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "kd %s: out of memory (try a smaller --batch)\n", name.c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kd %s: %s\n", name.c_str(), e.what());
  }
  return 1;
}
