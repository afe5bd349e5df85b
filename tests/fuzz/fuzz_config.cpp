// libFuzzer target: kd::TrainConfig::from_json on arbitrary JSON (the bytes of a config file).
// Invariant: text that is not JSON is a parse error; JSON is rejected with kd::Error or accepted,
// and an accepted config's to_json() reads back to the same config. Any other exception, a
// crash, a hang or a huge allocation is a finding. See fuzz_checks.h; scripts/fuzz.sh runs it.
#include "tests/fuzz/fuzz_checks.h"

KD_FUZZ_TARGET(kd::fuzz::check_config)
