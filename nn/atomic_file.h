// Whole-file reads and crash-safe writes.
//
// write_file_atomic writes to "<path>.tmp.<pid>" in the same directory, flushes and fsyncs it,
// renames it over path and fsyncs the directory, so a reader (or a crash) sees either the old
// file or the complete new one, never a partial write. On failure the temp file is removed and a
// kd::Error names the path and the system error.
#pragma once
#include <cstddef>
#include <cstdio>
#include <functional>
#include <string>

namespace kd {

// `write` fills the open temp file; it may throw (the temp file is then removed).
void write_file_atomic(const std::string& path, const std::function<void(std::FILE*)>& write);
void write_file_atomic(const std::string& path, const std::string& bytes);

// The whole file; throws if it cannot be read, is not a regular file or exceeds max_bytes.
std::string read_file(const std::string& path, size_t max_bytes);

}  // namespace kd
