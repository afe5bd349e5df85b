// The kd subcommands; each parses its own flags and returns the process exit code.
#pragma once

namespace kd::cli {
int cmd_train(int argc, char** argv);
int cmd_distill(int argc, char** argv);
int cmd_pipeline(int argc, char** argv);
int cmd_slim(int argc, char** argv);
int cmd_eval(int argc, char** argv);
int cmd_quantize(int argc, char** argv);
int cmd_qat(int argc, char** argv);
int cmd_prune(int argc, char** argv);
int cmd_gate(int argc, char** argv);
int cmd_info(int argc, char** argv);
int cmd_bench(int argc, char** argv);
int bench_kernels(int argc, char** argv);  // kd bench kernels (cli/bench_kernels.cpp)
}  // namespace kd::cli
