#include "nn/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/error.h"

namespace kd {
namespace {

[[noreturn]] void sys_fail(const char* what, const std::string& path, int err) {
  fail(what, " '", path, "': ", std::strerror(err));
}

std::string parent_dir(const std::string& path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

// Makes the rename itself durable.
void fsync_dir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) sys_fail("cannot open directory", dir, errno);
  int rc = ::fsync(fd), err = errno;
  ::close(fd);
  if (rc != 0) sys_fail("cannot fsync directory", dir, err);
}

}  // namespace

void write_file_atomic(const std::string& path, const std::function<void(std::FILE*)>& write) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) sys_fail("cannot create temp file for", path, errno);
  auto discard = [&] {
    if (f) std::fclose(f);
    std::remove(tmp.c_str());
  };
  // err is captured by the caller before discard() can clobber errno.
  auto abandon = [&](const char* what, int err) {
    discard();
    sys_fail(what, path, err);
  };
  try {
    errno = 0;
    write(f);
  } catch (...) {
    discard();
    throw;
  }
  if (std::fflush(f) != 0 || std::ferror(f)) abandon("cannot write", errno ? errno : EIO);
  if (::fsync(::fileno(f)) != 0) abandon("cannot fsync", errno);
  int rc = std::fclose(f);
  f = nullptr;
  if (rc != 0) abandon("cannot write", errno);
  if (std::rename(tmp.c_str(), path.c_str()) != 0) abandon("cannot rename temp file onto", errno);
  fsync_dir(parent_dir(path));
}

void write_file_atomic(const std::string& path, const std::string& bytes) {
  write_file_atomic(path, [&](std::FILE* f) { std::fwrite(bytes.data(), 1, bytes.size(), f); });
}

std::string read_file(const std::string& path, size_t max_bytes) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) sys_fail("cannot open", path, errno);
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) sys_fail("cannot stat", path, errno);
  if (!S_ISREG(st.st_mode)) fail("'", path, "' is not a regular file");
  if (static_cast<uint64_t>(st.st_size) > max_bytes)
    fail("'", path, "' is ", st.st_size, " bytes, more than the limit of ", max_bytes);
  std::string out(static_cast<size_t>(st.st_size), '\0');
  for (size_t got = 0; got < out.size();) {
    ssize_t r = ::read(fd, out.data() + got, out.size() - got);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) sys_fail("cannot read", path, errno);
    if (r == 0) fail("'", path, "' shrank while being read");
    got += static_cast<size_t>(r);
  }
  return out;
}

}  // namespace kd
