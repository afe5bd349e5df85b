#include "distill/distill_config.h"

#include <algorithm>

#include "nn/config_check.h"

namespace kd::distill {

using nlohmann::json;

namespace {

std::vector<FeaturePair> feature_pairs(const json& top, const std::string& key, const std::string& file) {
  std::vector<FeaturePair> out;
  if (!top.contains(key)) return out;
  const json& list = top[key];
  KD_CHECK(list.is_array(), file, ": '", key, "' must be a list of {\"student\": node, \"teacher\": node, \"weight\": w}");
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string where = key + "[" + std::to_string(i) + "]";
    KD_CHECK(list[i].is_object(), file, ": '", where, "' must be an object");
    ConfigReader r(list[i], file, where);
    FeaturePair p;
    p.student = r.any_str("student", "");
    p.teacher = r.any_str("teacher", "");
    r.require(!p.student.empty() && !p.teacher.empty(), "'student' and 'teacher' (node names) are required");
    p.weight = r.number("weight", 1, 0, 1e9);
    r.done();
    out.push_back(p);
  }
  return out;
}

}  // namespace

DistillConfig DistillConfig::from_json(const json& j, const std::string& file) {
  ConfigReader top(j, file, "");
  DistillConfig c;
  KD_CHECK(top.has("student"), file, ": 'student' is required (a training config file such as "
                                    "configs/student.json, or the config inline)");
  const json& st = top.raw("student");
  if (st.is_string())
    c.student = TrainConfig::load(st.get<std::string>());
  else if (st.is_object())
    c.student = TrainConfig::from_json(st, file + " (student)");
  else
    fail(file, ": 'student' must be a file name or an object, got ", st.dump());

  KD_CHECK(top.has("teachers"), file, ": 'teachers' is required: [{\"model\": FILE, \"weight\": 1.0}, ...]");
  const json& ts = top.raw("teachers");
  KD_CHECK(ts.is_array() && !ts.empty(), file, ": 'teachers' must be a non-empty list of {\"model\": FILE, \"weight\": w}");
  for (size_t i = 0; i < ts.size(); ++i) {
    const std::string where = "teachers[" + std::to_string(i) + "]";
    KD_CHECK(ts[i].is_object(), file, ": '", where, "' must be an object");
    ConfigReader r(ts[i], file, where);
    TeacherRef t;
    t.model = r.any_str("model", "");
    r.require(!t.model.empty(), "'model' (a kd model file) is required");
    t.weight = r.number("weight", 1, 1e-9, 1e9);
    r.done();
    c.teachers.push_back(t);
  }
  if (top.has("temperature"))
    c.temperature = ValueSchedule::from_json(top.raw("temperature"), file + ": temperature", 1e-3, 1e3);
  if (top.has("alpha")) c.alpha = ValueSchedule::from_json(top.raw("alpha"), file + ": alpha", 0, 1);
  c.hints = feature_pairs(j, "hints", file);
  c.attention = feature_pairs(j, "attention", file);
  for (const char* k : {"hints", "attention"}) top.raw(k);  // read above from j; known keys for done()
  c.cache_teacher = top.boolean("cache_teacher", true);
  if (top.has("slimmable")) {
    ConfigReader r = top.object("slimmable");
    SlimmableOptions o;
    o.widths = r.num_list("widths", o.widths, 0.01, 16);
    o.random_widths = r.integer("random_widths", o.random_widths, 0, 16);
    r.require(!o.widths.empty() && std::is_sorted(o.widths.rbegin(), o.widths.rend()) &&
                  std::adjacent_find(o.widths.begin(), o.widths.end()) == o.widths.end(),
              "'widths' must be distinct and in descending order (the largest first)");
    r.require(c.student.model.value("family", "") == "dsnet", "a slimmable student must be of the dsnet family");
    r.done();
    c.slimmable = o;
  }
  top.done();
  return c;
}

DistillConfig DistillConfig::load(const std::string& path) { return from_json(read_json_file(path), path); }

json DistillConfig::to_json() const {
  json ts = json::array(), hs = json::array(), as = json::array();
  for (auto& t : teachers) ts.push_back({{"model", t.model}, {"weight", t.weight}});
  for (auto& p : hints) hs.push_back({{"student", p.student}, {"teacher", p.teacher}, {"weight", p.weight}});
  for (auto& p : attention) as.push_back({{"student", p.student}, {"teacher", p.teacher}, {"weight", p.weight}});
  json j = {{"student", student.to_json()}, {"teachers", ts},          {"temperature", temperature.to_json()},
            {"alpha", alpha.to_json()},     {"hints", hs},             {"attention", as},
            {"cache_teacher", cache_teacher}};
  if (slimmable) j["slimmable"] = {{"widths", slimmable->widths}, {"random_widths", slimmable->random_widths}};
  return j;
}

}  // namespace kd::distill
