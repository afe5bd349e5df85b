// Helpers shared by the subcommands.
#pragma once
#include <string>

#include "cli/args.h"
#include "nn/model.h"

namespace kd::cli {

// Applies --threads if given (else keeps OpenMP's default).
void apply_threads(const Args& a);
// A model from --model FILE, or a freshly initialised one from --config FILE (its "model" section).
Model model_from_args(const Args& a, const std::string& command);
// 0.123 -> "0.123"; large counts with thousands separators for tables.
std::string with_commas(int64_t v);

}  // namespace kd::cli
