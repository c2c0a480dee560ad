// The one seam through which every cross-process step goes: reductions (column statistics,
// centroid sums and counts, inertia), gathers and the split of rows between processes. The local
// reducer is the identity; the MPI one (src/mpi/, linked only into the icp program) plugs in
// here without any kernel knowing about MPI.
//
// Reproducibility across process counts: every process owns a run of whole reduction chunks
// (chunk_rows_of), so each chunk's partial sum has the same bits whoever computes it. Sums
// that must not depend on the process count go through gather_chunks and are folded in global
// chunk order, exactly as one process folds them; integer counts may use sum() (exact).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "icp/matrix.hpp"

namespace icp {

class Reducer {
 public:
  virtual ~Reducer() = default;
  /// Element-wise sum across all participants, in place. Exact for integers; for doubles the
  /// bits depend on the process count, so process-count-independent results use gather_chunks.
  virtual void sum(std::span<double> values) = 0;
  virtual void sum(std::span<std::int64_t> values) = 0;
  /// Element-wise min / max across all participants, in place.
  virtual void min(std::span<double> values) = 0;
  virtual void max(std::span<double> values) = 0;
  /// Every process's per-chunk partials in global chunk order, on every process. `local` holds
  /// this process's chunks, `width` doubles each; processes own consecutive chunk runs in rank
  /// order. The local reducer returns `local` unchanged.
  virtual std::vector<double> gather_chunks(std::vector<double> local, std::size_t width) = 0;
  /// Every process's rows concatenated in rank order, on every process.
  virtual Matrix gather_rows(MatrixView local) = 0;
  virtual std::vector<float> gather(std::span<const float> local) = 0;
  virtual std::vector<double> gather(std::span<const double> local) = 0;
  virtual std::vector<std::int32_t> gather(std::span<const std::int32_t> local) = 0;
  /// Rows of `all` (significant on rank 0 only; `total_rows` x `cols` everywhere) split into
  /// the chunk-aligned runs of chunk_rows_of; each process gets its own run.
  virtual Matrix scatter_rows(MatrixView all, std::size_t total_rows, std::size_t cols) = 0;
  /// Values of rank 0 copied to every process.
  virtual void broadcast(std::span<std::int64_t> values) = 0;
  virtual void broadcast(std::span<float> values) = 0;
  virtual int rank() const noexcept = 0;
  virtual int size() const noexcept = 0;
};

/// Single-process reducer: every operation is the identity.
Reducer& local_reducer() noexcept;

/// First row and row count of process `rank` of `size` over `total` rows: a run of whole chunks
/// of kReduceChunkRows (the last chunk may be short), runs in rank order differing by at most one
/// chunk. A fixed rule, so every process computes every other's range without asking.
struct RowRange {
  std::size_t begin = 0;
  std::size_t rows = 0;
};
RowRange chunk_rows_of(std::size_t total, int rank, int size) noexcept;

}  // namespace icp
