// Streamed k-means: kmeans_fit over rows read a block at a time (RowBlocks), for markets larger
// than memory. validate -> moments -> per restart (init -> Lloyd steps -> final labels) ->
// finalize, every pass a scan of the blocks, with the pieces (and so the bits) of kmeans_fit.

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <queue>
#include <utility>
#include <vector>

#include "icp/error.hpp"
#include "icp/kmeans.hpp"
#include "kmeans_internal.hpp"

namespace icp {

namespace {

using namespace kmeans_detail;  // NOLINT: this file drives those pieces, as kmeans.cpp does

/// The rows as the fit sees them: blocks checked to start on chunk boundaries and to cover the
/// rows once, centred by `mean` as they arrive when the data needs it (no centred copy is ever
/// held), and every scan counted.
RowBlocks fit_view(const RowBlocks& x, const std::vector<double>& mean, int& scans) {
  RowBlocks v;
  v.rows = x.rows;
  v.cols = x.cols;
  v.scan = [&x, &mean, &scans](const RowBlocks::Visit& visit) {
    ++scans;
    std::size_t next = 0;
    x.scan([&](std::size_t first, MatrixView block) {
      if (first != next || first % kReduceChunkRows != 0 || block.cols != x.cols ||
          first + block.rows > x.rows) {
        throw Error(fmt::format(
            "k-means (streamed): a block of {} x {} rows at row {} does not continue the scan "
            "at row {} of {} x {} on a multiple of {} rows",
            block.rows, block.cols, first, next, x.rows, x.cols, kReduceChunkRows));
      }
      next += block.rows;
      if (mean.empty()) {
        visit(first, block);
      } else {
        const Matrix centred = centre_rows(block, mean);
        visit(first, centred.view());
      }
    });
    if (next != x.rows)
      throw Error(fmt::format("k-means (streamed): a scan ended at row {} of {}", next, x.rows));
  };
  v.fetch = [&x, &mean](std::span<const std::size_t> rows) {
    Matrix m = x.fetch(rows);
    if (m.rows() != rows.size() || m.cols() != x.cols)
      throw Error("k-means (streamed): fetch returned the wrong shape");
    return mean.empty() ? m : centre_rows(m.view(), mean);
  };
  return v;
}

std::span<const float> weights_of(std::span<const float> weight, std::size_t first,
                                  std::size_t rows) {
  return weight.empty() ? weight : weight.subspan(first, rows);
}

/// The moments of every row, checking each block for non-finite values on the way.
ColumnMoments streamed_moments(const RowBlocks& x, std::span<const float> weight) {
  ColumnMomentFold fold(x.cols, !weight.empty());
  x.scan([&](std::size_t first, MatrixView block) {
    if (const auto bad = first_non_finite(block)) {
      throw Error(fmt::format(
          "k-means: non-finite value in the data at row {}, column {}: {} (impute or drop "
          "missing values before clustering)",
          first + *bad / block.cols + 1, *bad % block.cols + 1, block.data[*bad]));
    }
    fold.add(block, weights_of(weight, first, block.rows));
  });
  return fold.finish();
}

/// The `count` rows farthest from their centres, ties to the lowest row, in row order.
std::vector<std::size_t> farthest_rows(std::span<const float> distance, std::size_t count) {
  // Min-heap on (distance, -row): its top is the row that drops out first.
  auto worse = [&](std::size_t a, std::size_t b) {
    if (distance[a] != distance[b]) return distance[a] > distance[b];
    return a < b;
  };
  std::priority_queue<std::size_t, std::vector<std::size_t>, decltype(worse)> heap(worse);
  for (std::size_t i = 0; i < distance.size(); ++i) {
    if (heap.size() < count) {
      heap.push(i);
    } else if (worse(i, heap.top())) {
      heap.pop();
      heap.push(i);
    }
  }
  std::vector<std::size_t> rows;
  rows.reserve(heap.size());
  for (; !heap.empty(); heap.pop()) rows.push_back(heap.top());
  std::sort(rows.begin(), rows.end());
  return rows;
}

/// relocate_empty over rows that are not held: it walks the rows farthest first, so it runs on
/// the farthest few, fetched, and on more only when those run out before every empty cluster
/// has a row (each walk reads a prefix of the same order, so the choice is the one the walk over
/// every row makes).
std::int64_t relocate_streamed(const RowBlocks& xc, std::span<std::int32_t> assignment,
                               std::span<const float> distance, ClusterSums& sums,
                               std::span<const float> weight) {
  const auto empty =
      static_cast<std::size_t>(std::count(sums.counts.begin(), sums.counts.end(), std::int64_t{0}));
  if (empty == 0) return 0;
  const std::size_t n = assignment.size();
  for (std::size_t want = std::min(n, 4 * empty + 64);; want = std::min(n, want * 8)) {
    const std::vector<std::size_t> rows = farthest_rows(distance, want);
    const Matrix x = xc.fetch(rows);
    std::vector<std::int32_t> labels(rows.size());
    std::vector<float> dist(rows.size()), w;
    for (std::size_t m = 0; m < rows.size(); ++m) {
      labels[m] = assignment[rows[m]];
      dist[m] = distance[rows[m]];
      if (!weight.empty()) w.push_back(weight[rows[m]]);
    }
    ClusterSums trial = sums;
    const std::int64_t moved = relocate_empty(x.view(), labels, dist, trial, w);
    if (static_cast<std::size_t>(moved) == empty || want == n) {
      sums = std::move(trial);
      for (std::size_t m = 0; m < rows.size(); ++m) assignment[rows[m]] = labels[m];
      return moved;
    }
  }
}

/// One Lloyd step over the blocks: assignment with the cluster moments added chunk by chunk,
/// then finish_step's update (inertia from the moments, relocation, means, shift).
StepStats streamed_step(const RowBlocks& xc, RestartRun& run, std::span<const float> weight,
                        const MomentScales& scales) {
  const std::size_t k = run.state.centroids.rows();
  ClusterMoments total(k, xc.cols, !weight.empty());
  std::int64_t changed = 0;
  xc.scan([&](std::size_t first, MatrixView block) {
    const auto w = weights_of(weight, first, block.rows);
    ClusterAccumulator summed(block.rows, k, block.cols, w, scales);
    const AssignStats a =
        assign_rows(block, run.state.centroids.view(),
                    std::span(run.state.assignment).subspan(first, block.rows),
                    std::span(run.state.distance).subspan(first, block.rows), true, w, &summed);
    total += summed.finish(local_reducer());
    changed += a.changed;
  });
  StepStats stats;
  stats.changed = changed;
  stats.inertia = total.inertia(run.state.centroids.view(), scales);
  ClusterSums sums = total.sums(scales);
  stats.relocated = relocate_streamed(xc, run.state.assignment, run.state.distance, sums, weight);
  Matrix next = centroids_from_sums(sums, run.state.centroids);
  stats.shift = centre_shift(run.state.centroids, next);
  run.state.centroids = std::move(next);
  return stats;
}

RestartRun run_restart(const RowBlocks& xc, const KMeansOptions& options,
                       const std::vector<double>& mean, const MomentScales& scales,
                       double converged_at, int restart) {
  const std::uint64_t seed = derive_seed(options.seed, static_cast<std::uint64_t>(restart));
  RestartRun run;
  run.restart = restart;
  switch (options.init) {
    case KMeansInit::random:
      run.state.centroids = init_random(xc, options.k, seed);
      break;
    case KMeansInit::file:
      run.state.centroids = centre_rows(options.initial_centroids.view(), mean);
      break;
    default:
      run.state.centroids = init_kmeanspp(xc, options.k, seed);
      break;
  }
  run.state.assignment.assign(xc.rows, -1);
  run.state.distance.assign(xc.rows, 0.0f);
  const std::span<const float> weight(options.sample_weight);
  for (int it = 1; it <= options.max_iter; ++it) {
    const auto start = std::chrono::steady_clock::now();
    const StepStats step = streamed_step(xc, run, weight, scales);
    run.history.push_back(record_iteration(step, it, restart, start, options));
    run.iterations = it;
    if (step.shift <= converged_at) {
      run.converged = true;
      break;
    }
    if (options.stop_requested && options.stop_requested()) {
      throw Interrupted(fmt::format("k-means stopped on request after iteration {} of restart {}",
                                    it, restart + 1));
    }
  }
  // Labels and distances against the centres returned; the inertia folds the chunks in order.
  std::vector<double> chunk_inertia;
  xc.scan([&](std::size_t first, MatrixView block) {
    const AssignStats a = assign_rows(block, run.state.centroids.view(),
                                      std::span(run.state.assignment).subspan(first, block.rows),
                                      std::span(run.state.distance).subspan(first, block.rows),
                                      false, weights_of(weight, first, block.rows));
    chunk_inertia.insert(chunk_inertia.end(), a.chunk_inertia.begin(), a.chunk_inertia.end());
  });
  const std::vector<std::int64_t> unchanged(chunk_inertia.size(), 0);
  run.inertia = combine_chunk_stats(std::move(chunk_inertia), unchanged).inertia;
  return run;
}

}  // namespace

KMeansResult kmeans_fit_streamed(const RowBlocks& x, const KMeansOptions& options, int* scans) {
  validate_options(options);
  if (options.algorithm == KMeansAlgorithm::minibatch ||
      options.init == KMeansInit::kmeans_parallel) {
    throw Error(fmt::format(
        "k-means (streamed): algorithm = {} with init = {} is not streamed; use an exact "
        "algorithm with init = kmeans++, random or file",
        to_string(options.algorithm), to_string(options.init)));
  }
  if (options.on_checkpoint || options.resume != nullptr)
    throw Error("k-means (streamed): checkpoints are not taken in a streamed fit");
  if (x.cols == 0) throw Error("k-means: the feature matrix has no columns");
  if (static_cast<std::size_t>(options.k) > x.rows) {
    throw Error(fmt::format("k-means: k = {} exceeds the number of rows ({})", options.k, x.rows));
  }
  if (!x.scan || !x.fetch) throw Error("k-means (streamed): the row source has no scan or fetch");
  check_initial_centroids(options, x.cols);
  check_weights(options, x.rows, local_reducer());
  const std::span<const float> weight(options.sample_weight);

  int scanned = 0;
  std::vector<double> mean;  // empty: the rows are used as they are
  RowBlocks xc = fit_view(x, mean, scanned);
  ColumnMoments stats = streamed_moments(xc, weight);
  if (!centred_enough(stats)) {
    mean = stats.mean;  // fit_view reads `mean` on each scan: from now on blocks are centred
    stats = streamed_moments(xc, weight);
  }
  const double converged_at = options.tol * mean_feature_variance(stats);
  const MomentScales scales = moment_scales(stats, !weight.empty());
  const std::vector<double> offset = mean.empty() ? std::vector<double>(x.cols, 0.0) : mean;

  RestartRun best;
  bool have_best = false;
  for (int restart = 0; restart < options.n_init; ++restart) {
    RestartRun run = run_restart(xc, options, offset, scales, converged_at, restart);
    if (!have_best || run.inertia < best.inertia) {
      best = std::move(run);
      have_best = true;
    }
  }

  KMeansResult result = fit_result(std::move(best), offset, local_reducer());
  if (scans != nullptr) *scans = scanned;
  return result;
}

}  // namespace icp
