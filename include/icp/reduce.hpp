// The one seam through which every cross-row reduction goes (column statistics, centroid sums
// and counts, metrics). Kernels first combine their per-chunk partials in a fixed order on this
// process, then hand the result to a Reducer, which combines across processes. The local reducer
// is the identity; an MPI reducer plugs in here without touching any kernel.
#pragma once

#include <cstdint>
#include <span>

namespace icp {

class Reducer {
 public:
  virtual ~Reducer() = default;
  /// Element-wise sum across all participants, in place; the same order on every call.
  virtual void sum(std::span<double> values) = 0;
  virtual void sum(std::span<std::int64_t> values) = 0;
  /// Element-wise min / max across all participants, in place.
  virtual void min(std::span<double> values) = 0;
  virtual void max(std::span<double> values) = 0;
  virtual int rank() const noexcept = 0;
  virtual int size() const noexcept = 0;
};

/// Single-process reducer: every operation is the identity.
Reducer& local_reducer() noexcept;

}  // namespace icp
