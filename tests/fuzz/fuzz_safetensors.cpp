// libFuzzer target: kd::parse_safetensors on arbitrary bytes.
// Invariant: it throws kd::Error or returns a TensorFile; a returned file serializes, parses back
// to the same tensors (names, dtypes, shapes, bytes) and metadata, and serializes to the same
// bytes again; a kd model file among them loads with model_from_file or throws kd::Error.
// See fuzz_checks.h; scripts/fuzz.sh builds and runs it.
#include "tests/fuzz/fuzz_checks.h"

KD_FUZZ_TARGET(kd::fuzz::check_safetensors)
