// One thread budget for OpenMP and oneTBB together, and the fixed chunking that makes results
// independent of the thread count.
#pragma once

#include <atomic>
#include <cstddef>
#include <exception>
#include <mutex>

namespace icp {

/// Sets the thread count used by both OpenMP and oneTBB for the rest of the process
/// (0 = the number of hardware threads). Never oversubscribes: both runtimes get the same cap.
void set_threads(int threads);
/// The thread count in force.
int threads() noexcept;

/// Rows per chunk for row-parallel reductions. Fixed (never derived from the thread count) so
/// that partial sums, combined in chunk order, give the same bits at any thread count; 4096 rows
/// of 32 floats is 512 KiB, which keeps a chunk's rows in L2 while leaving enough chunks
/// (n / 4096) to balance two to dozens of threads.
inline constexpr std::size_t kReduceChunkRows = 4096;

inline std::size_t chunk_count(std::size_t n, std::size_t chunk = kReduceChunkRows) noexcept {
  return (n + chunk - 1) / chunk;
}

/// Captures the first exception thrown inside a parallel region so it can be rethrown after
/// the region ends (exceptions must never cross an OpenMP region boundary).
class ExceptionCollector {
 public:
  template <class F>
  void run(F&& f) noexcept {
    try {
      f();
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!first_) first_ = std::current_exception();
      failed_.store(true, std::memory_order_relaxed);
    }
  }
  /// Whether something was captured: later phases of the same region skip their work.
  bool failed() const noexcept { return failed_.load(std::memory_order_relaxed); }
  void rethrow() const {
    if (first_) std::rethrow_exception(first_);
  }

 private:
  std::mutex mutex_;
  std::exception_ptr first_;
  std::atomic<bool> failed_{false};
};

}  // namespace icp
