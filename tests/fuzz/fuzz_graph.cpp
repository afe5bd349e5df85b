// libFuzzer target: kd::Graph::from_json on arbitrary JSON (a model file's graph), or
// kd::build_model on the "model" section of a JSON object that has one (a config).
// Invariant: rejection is a kd::Error; an accepted graph is valid: validate() passes again, no
// dangling inputs or cycles, unique names, sizes within kMaxGraph* (nn/graph.h), unchanged by a
// JSON round trip; and when small, Model::create and one forward pass (batch 1, eval, NoGrad)
// run and produce at every node the shape validation inferred. See fuzz_checks.h.
#include "tests/fuzz/fuzz_checks.h"

KD_FUZZ_TARGET(kd::fuzz::check_graph)
