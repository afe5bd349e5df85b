// A scalar that changes over training (distillation temperature T, mixing weight alpha).
// With progress u = step / total_steps in [0, 1):
//   constant: start
//   linear:   start + (end - start) u
//   cosine:   end + (start - end) (1 + cos(pi u)) / 2     (starts at `start`, eases into `end`)
// Config form: a number (constant), or {"schedule": "linear" | "cosine" | "constant",
// "start": x, "end": y}.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

namespace kd::distill {

struct ValueSchedule {
  std::string type = "constant";
  double start = 0, end = 0;

  double at(int64_t step, int64_t total_steps) const;
  // where: "FILE: key" for errors; [lo, hi] the allowed range of start and end.
  static ValueSchedule from_json(const nlohmann::json& j, const std::string& where, double lo, double hi);
  nlohmann::json to_json() const;
  std::string describe() const;  // "4" or "linear 0.9 -> 0.5", for tables and logs
};

}  // namespace kd::distill
