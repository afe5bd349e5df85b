#include "core/threads.h"

#include <omp.h>

#include "core/error.h"

namespace kd {
void set_threads(int n) {
  KD_CHECK(n >= 1 && n <= 1024, "--threads: expected 1..1024, got ", n);
  omp_set_num_threads(n);
}
int num_threads() { return omp_get_max_threads(); }
}  // namespace kd
