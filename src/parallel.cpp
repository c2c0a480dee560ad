#include "icp/parallel.hpp"

#include <omp.h>

#include <memory>
#include <oneapi/tbb/global_control.h>
#include <oneapi/tbb/info.h>
#include <thread>

namespace icp {

namespace {
std::unique_ptr<tbb::global_control> g_tbb_limit;  // NOLINT: process-wide by design
int g_threads = 0;
}  // namespace

void set_threads(int n) {
  if (n <= 0) n = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  omp_set_num_threads(n);
  // Only one runtime runs at a time in this engine (stages never nest OpenMP inside TBB), so a
  // cap of n on each keeps the process at n busy threads.
  g_tbb_limit = std::make_unique<tbb::global_control>(tbb::global_control::max_allowed_parallelism,
                                                      static_cast<std::size_t>(n));
  g_threads = n;
}

int threads() noexcept { return g_threads > 0 ? g_threads : omp_get_max_threads(); }

}  // namespace icp
