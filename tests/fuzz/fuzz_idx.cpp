// libFuzzer target: kd::parse_idx (the IDX reader behind read_idx) on arbitrary bytes, plain or gzip.
// Invariant: it throws kd::Error or returns a u8 tensor of rank 1 or 3 holding exactly the
// decompressed data (plain input equals the tensor's IDX encoding), which parses back unchanged.
// See fuzz_checks.h; scripts/fuzz.sh builds and runs it.
#include "tests/fuzz/fuzz_checks.h"

KD_FUZZ_TARGET(kd::fuzz::check_idx)
