// The distillation config (JSON): which student to train, on what, and taught by whom.
//   {"student": "configs/student.json"            (a training config file, or the config inline),
//    "teachers": [{"model": "runs/teacher/model.safetensors", "weight": 1.0}, ...],
//    "temperature": 4,        (T; a number or {"schedule": "linear"|"cosine", "start": x, "end": y})
//    "alpha": 0.9,            (weight of the soft term, 1 - alpha on the hard-label cross-entropy)
//    "hints":     [{"student": "features.3", "teacher": "layers.3", "weight": 1.0}],   (FitNets)
//    "attention": [{"student": "features.5", "teacher": "layers.5", "weight": 1000}], (attention transfer)
//    "cache_teacher": true,   (keep the teachers' logits per image when nothing changes them)
//    "slimmable": {"widths": [1.0, 0.75, 0.5, 0.25], "random_widths": 1}}
//                             (optional: train a slimmable student, see slimmable_training.h;
//                              the teachers teach the largest width, which teaches the others)
// The loss is  alpha T^2 KL(p_teachers^T || p_student^T) + (1 - alpha) CE(student, y)
//              + sum_hints w MSE(adapter(s), t) + sum_attention w AT(s, t),
// where p_teachers is the weighted mean of the teachers' softened distributions. Hints and
// attention pairs name graph nodes (`kd info --model FILE` lists them) of the student and of the
// first teacher; the two maps must have the same spatial size. Paths are relative to the
// directory kd runs in. Unknown keys and bad values are errors naming the file and the key.
#pragma once
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "distill/slimmable_training.h"
#include "distill/value_schedule.h"
#include "nn/train_config.h"

namespace kd::distill {

struct TeacherRef {
  std::string model;  // a kd model file
  double weight = 1;
};

struct FeaturePair {
  std::string student, teacher;  // node names
  double weight = 1;
};

struct DistillConfig {
  TrainConfig student;
  std::vector<TeacherRef> teachers;
  ValueSchedule temperature{"constant", 4, 4};
  ValueSchedule alpha{"constant", 0.9, 0.9};
  std::vector<FeaturePair> hints, attention;
  bool cache_teacher = true;
  std::optional<SlimmableOptions> slimmable;

  static DistillConfig from_json(const nlohmann::json& j, const std::string& file);
  static DistillConfig load(const std::string& path);
  nlohmann::json to_json() const;  // resolved: the student's config inline
};

}  // namespace kd::distill
