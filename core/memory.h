// Process memory as the OS sees it, for `kd bench` reports.
// Peak: getrusage's ru_maxrss (the high-water mark of resident pages since the process began).
// Current: resident pages from /proc/self/statm (0 where /proc is missing).
// Freed tensors stay in the block cache (core/tensor.cpp), so resident memory never falls back
// during a run: the peak is what a machine must provide.
#pragma once
#include <cstdint>

namespace kd {

int64_t peak_rss_bytes();
int64_t current_rss_bytes();

}  // namespace kd
