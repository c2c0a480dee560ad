// The pass shared by the bounded policies that carry their bounds from step to step (Hamerly,
// Yinyang). Not installed.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "icp/allocator.hpp"
#include "kmeans_internal.hpp"

namespace icp::kmeans_detail {

/// Rows a screen could not prove. Not zeroed on resize: a screen sizes it for a whole block and
/// writes each slot before it counts it.
using RowList = std::vector<std::size_t, DefaultInitAllocator<std::size_t>>;

/// Rows fetched ahead of the exact distances: 6 rows of 45 floats are 17 cache lines, about the
/// misses one core keeps in flight (10-12 line fill buffers on current x86 cores), without
/// evicting lines still to be used.
inline constexpr std::size_t kPrefetchRows = 6;

inline void prefetch_row(const float* row, std::size_t d) noexcept {
  constexpr std::size_t kLineFloats = 64 / sizeof(float);
  for (std::size_t t = 0; t < d; t += kLineFloats) __builtin_prefetch(row + t);
  __builtin_prefetch(row + d - 1);
}

/// Relabels the rows of xc against state.centroids. Per block of kAssignBlockRows rows:
/// `screen(b0, b1, check)` tries to prove from the carried bounds alone (without reading the
/// rows) that rows [b0, b1) keep their labels, and appends those it cannot prove to `check`;
/// these are fetched a few ahead and `tight(i)` retries with
/// the exact distance to the row's centre; the rest are rescored with Lloyd's kernel and
/// `rescored(i, row, scores, best)` resets their bounds (and may overwrite the row's scores). With
/// `full` every row is rescored. Labels end as assign_rows sets them. `moments` (this process's
/// rows under the labels held on entry; empty when `full`) is brought up to the new labels: only
/// relabelled rows are read for it, since integer moments do not depend on the order rows are added
/// or removed in. Returns how many of this process's rows changed label.
template <class Screen, class Tight, class Rescored>
std::int64_t bounded_relabel(MatrixView xc, LloydState& state, const PackedCentres& packed,
                             bool full, ClusterMoments& moments, Screen screen, Tight tight,
                             Rescored rescored) {
  const std::size_t n = xc.rows;
  const std::size_t d = xc.cols;
  const std::size_t k = state.centroids.rows();
  const bool weighted = !state.weight.empty();
  const MomentScales& scales = state.scales;
  const std::size_t ldo = packed.panels * kPanelWidth;
  const std::size_t chunks = chunk_count(n);
  std::int64_t changed = 0;
  ExceptionCollector errors;
#pragma omp parallel if (chunks > 1) reduction(+ : changed)
  {
    std::vector<float> gathered;
    std::vector<float> scores;
    std::vector<std::size_t> todo;
    RowList check;
    ClusterMoments mine;  // this thread's relabelled rows (a full pass: all its rows)
    ChunkMoments part;
    bool ready = false;
    errors.run([&] {
      gathered.resize(kAssignBlockRows * d);
      scores.resize(kAssignBlockRows * ldo);
      todo.reserve(kAssignBlockRows);
      check.reserve(kReduceChunkRows);
      mine = ClusterMoments(k, d, weighted);
      ready = true;
    });
#pragma omp for schedule(dynamic, 1)
    for (std::ptrdiff_t cj = 0; cj < static_cast<std::ptrdiff_t>(chunks); ++cj) {
      // A thread that could not allocate skips its chunks; the collected error is rethrown.
      if (!ready) continue;
      errors.run([&] {
        const std::size_t begin = static_cast<std::size_t>(cj) * kReduceChunkRows;
        const std::size_t end = std::min(n, begin + kReduceChunkRows);
        // Rescores rows `rows[0..count)`, whose data starts at `x` with stride d (the rows
        // themselves when contiguous, else their copies in `gathered`).
        auto rescore = [&](const std::size_t* rows, std::size_t count, const float* x) {
          score_rows(x, count, d, packed, scores.data(), ldo);
          for (std::size_t m = 0; m < count; ++m) {
            const std::size_t i = rows[m];
            const float* row = x + m * d;
            float* s = scores.data() + m * ldo;  // scratch: rescored may overwrite it
            const std::size_t best = argmin_scores(s, k);
            rescored(i, row, s, best);
            const auto label = static_cast<std::int32_t>(best);
            const std::int32_t old = state.assignment[i];
            state.assignment[i] = label;
            if (old == label) continue;
            ++changed;
            if (full) continue;  // the chunk's moments are added whole below
            const float w = weighted ? state.weight[i] : 1.0f;
            mine.add_row(static_cast<std::size_t>(old), row, w, scales, -1);
            mine.add_row(best, row, w, scales, +1);
          }
        };
        // Rows to rescore, in batches of kAssignBlockRows for Lloyd's kernel. A row queued here
        // was just read by tight, so the batch is still in cache when it is gathered.
        auto flush = [&] {
          if (todo.empty()) return;
          for (std::size_t m = 0; m < todo.size(); ++m)
            std::copy(xc.row(todo[m]), xc.row(todo[m]) + d, gathered.data() + m * d);
          rescore(todo.data(), todo.size(), gathered.data());
          todo.clear();
        };
        todo.clear();
        if (full) {
          for (std::size_t b0 = begin; b0 < end; b0 += kAssignBlockRows) {
            const std::size_t b1 = std::min(end, b0 + kAssignBlockRows);
            for (std::size_t i = b0; i < b1; ++i) todo.push_back(i);
            rescore(todo.data(), todo.size(), xc.row(b0));
            todo.clear();
          }
        } else {
          // The whole chunk is screened first, so the fetches of the rows left to read run
          // ahead across the chunk instead of starting cold in every block: they are scattered
          // (a row in 5-10 late in a fit), and a few in flight hide most of each miss.
          check.clear();
          screen(begin, end, check);
          for (std::size_t m = 0; m < check.size(); ++m) {
            if (m + kPrefetchRows < check.size()) {
              prefetch_row(xc.row(check[m + kPrefetchRows]), d);
            }
            if (!tight(check[m])) {
              todo.push_back(check[m]);
              if (todo.size() == kAssignBlockRows) flush();
            }
          }
        }
        flush();
        if (full) {
          part.assign(xc, state.assignment, state.weight, begin, end, k, scales, state.row_norm);
          mine.add(part);
        }
      });
    }
    // Integer sums: the order threads arrive in does not change a bit.
#pragma omp critical(icp_bounded_relabel_moments)
    if (ready) moments += mine;
  }
  errors.rethrow();
  return changed;
}

/// A row's distance to a centre, rounded up: the upper bound a bounded step resets a row to.
inline double distance_up(const float* row, const float* centre, std::size_t d) noexcept {
  return bound_up(std::sqrt(squared_distance(row, centre, d)));
}

/// The update that ends a bounded step: `mine` (this process's moments, which bounded_relabel
/// kept current) summed over the processes, then finish_step, which computes per-row distances
/// only in the rare step that relocates.
inline StepStats finish_bounded_step(MatrixView xc, LloydState& state, std::int64_t changed,
                                     const ClusterMoments& mine, Reducer& reducer) {
  ClusterMoments all = mine;
  all.reduce(reducer);
  return finish_step(xc, state, changed, all, reducer, false);
}

}  // namespace icp::kmeans_detail
