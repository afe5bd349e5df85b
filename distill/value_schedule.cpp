#include "distill/value_schedule.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numbers>

#include "core/error.h"

namespace kd::distill {

double ValueSchedule::at(int64_t step, int64_t total_steps) const {
  if (type == "constant" || total_steps <= 0) return start;
  const double u = std::clamp(double(step) / double(total_steps), 0.0, 1.0);
  if (type == "linear") return start + (end - start) * u;
  return end + (start - end) * 0.5 * (1.0 + std::cos(std::numbers::pi * u));
}

ValueSchedule ValueSchedule::from_json(const nlohmann::json& j, const std::string& where, double lo, double hi) {
  auto number = [&](const nlohmann::json& v, const std::string& key) {
    KD_CHECK(v.is_number(), where, key, " must be a number in [", lo, ", ", hi, "], got ", v.dump());
    const double x = v.get<double>();
    KD_CHECK(x >= lo && x <= hi, where, key, " is ", x, ", allowed [", lo, ", ", hi, "]");
    return x;
  };
  ValueSchedule s;
  if (j.is_number()) {
    s.start = s.end = number(j, "");
    return s;
  }
  KD_CHECK(j.is_object(), where, " must be a number or {\"schedule\": \"constant\"|\"linear\"|\"cosine\", \"start\": x, "
                                 "\"end\": y}, got ", j.dump());
  for (auto& [k, v] : j.items())
    KD_CHECK(k == "schedule" || k == "start" || k == "end", where, ": unknown key '", k,
             "' (allowed: schedule, start, end)");
  s.type = j.value("schedule", "constant");
  KD_CHECK(s.type == "constant" || s.type == "linear" || s.type == "cosine", where, ".schedule is '", s.type,
           "', allowed: constant, linear, cosine");
  KD_CHECK(j.contains("start"), where, ".start is required");
  s.start = number(j["start"], ".start");
  s.end = j.contains("end") ? number(j["end"], ".end") : s.start;
  KD_CHECK(s.type == "constant" || j.contains("end"), where, ".end is required for a ", s.type, " schedule");
  return s;
}

nlohmann::json ValueSchedule::to_json() const {
  if (type == "constant") return start;
  return {{"schedule", type}, {"start", start}, {"end", end}};
}

std::string ValueSchedule::describe() const {
  auto num = [](double v) {
    char b[32];
    std::snprintf(b, sizeof b, "%g", v);
    return std::string(b);
  };
  return type == "constant" ? num(start) : type + " " + num(start) + " -> " + num(end);
}

}  // namespace kd::distill
