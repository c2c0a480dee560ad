// k-means driver: validate -> centre -> (init -> Lloyd steps) per restart -> finalize.

#include "icp/kmeans.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "icp/error.hpp"
#include "kmeans_internal.hpp"

namespace icp {

namespace kmeans_detail {

namespace {

/// Rows centred at a time by kmeans_predict: a multiple of kReduceChunkRows (so the kernel's
/// block partition is the same as on the whole matrix) that bounds the centred copy at
/// 64 * 4096 rows (64 MiB at d = 64) whatever the input size.
constexpr std::size_t kPredictSlabRows = 64 * kReduceChunkRows;

void check_finite(MatrixView x, const char* what) {
  const std::optional<std::size_t> found = first_non_finite(x);
  if (!found) return;
  const std::size_t bad = *found;
  throw Error(fmt::format(
      "k-means: non-finite value in {} at row {}, column {}: {} (impute or drop missing values "
      "before clustering)",
      what, bad / x.cols + 1, bad % x.cols + 1, x.data[bad]));
}

}  // namespace

void validate_data(MatrixView x, int k, std::size_t total_rows) {
  if (x.cols == 0) throw Error("k-means: the feature matrix has no columns");
  if (k < 1) throw Error(fmt::format("k-means: k must be at least 1, got {}", k));
  if (static_cast<std::size_t>(k) > total_rows) {
    throw Error(fmt::format("k-means: k = {} exceeds the number of rows ({})", k, total_rows));
  }
  check_finite(x, "the data");
}

void validate_options(const KMeansOptions& options) {
  if (options.max_iter < 1) {
    throw Error(fmt::format("k-means: max_iter must be at least 1, got {}", options.max_iter));
  }
  if (options.n_init < 1) {
    throw Error(fmt::format("k-means: n_init must be at least 1, got {}", options.n_init));
  }
  if (!(options.tol >= 0.0) || !std::isfinite(options.tol)) {
    throw Error(fmt::format("k-means: tol must be a finite value >= 0, got {}", options.tol));
  }
  if (options.batch_size < 0) {
    throw Error(fmt::format("k-means: batch_size must be >= 0 (0 = automatic), got {}",
                            options.batch_size));
  }
}

ColumnMomentFold::ColumnMomentFold(std::size_t d, bool weighted)
    : d_(d),
      weighted_(weighted),
      width_(2 * d + (weighted ? 1 : 0)),
      total_(width_, 0.0),
      top_(d + 2, 0.0) {}

void ColumnMomentFold::chunk_partials(MatrixView x, std::span<const float> weight,
                                      std::vector<double>& partial,
                                      std::vector<double>& peaks) const {
  const std::size_t n = x.rows;
  const std::size_t d = d_;
  const bool weighted_rows = weighted_;
  // Per chunk: d sums, d sums of squares, and with weights the chunk's weight last; then the
  // chunk's peaks: d largest |x_t|, the largest ||x||^2 and the largest weight.
  const std::size_t width = width_;
  const std::size_t peak_width = d + 2;
  const std::size_t chunks = chunk_count(n);
  partial.assign(chunks * width, 0.0);
  peaks.assign(chunks * peak_width, 0.0);
#pragma omp parallel for schedule(static) if (chunks > 1)
  for (std::ptrdiff_t ci = 0; ci < static_cast<std::ptrdiff_t>(chunks); ++ci) {
    double* sums = partial.data() + static_cast<std::size_t>(ci) * width;
    double* squares = sums + d;
    double* peak = peaks.data() + static_cast<std::size_t>(ci) * peak_width;
    const std::size_t begin = static_cast<std::size_t>(ci) * kReduceChunkRows;
    const std::size_t end = std::min(n, begin + kReduceChunkRows);
    for (std::size_t i = begin; i < end; ++i) {
      const float* row = x.row(i);
      const double w = weighted_rows ? static_cast<double>(weight[i]) : 1.0;
      for (std::size_t j = 0; j < d; ++j) {
        const double v = static_cast<double>(row[j]);
        sums[j] += weighted_rows ? w * v : v;
        squares[j] += weighted_rows ? w * v * v : v * v;
        peak[j] = std::max(peak[j], std::fabs(v));
      }
      peak[d] = std::max(peak[d], row_sq_norm(row, d));
      if (weighted_rows) {
        sums[2 * d] += w;
        peak[d + 1] = std::max(peak[d + 1], w);
      }
    }
  }
}

void ColumnMomentFold::fold(std::span<const double> partial, std::span<const double> peaks) {
  for (std::size_t ci = 0; width_ > 0 && ci < partial.size() / width_; ++ci) {
    for (std::size_t j = 0; j < width_; ++j) total_[j] += partial[ci * width_ + j];
  }
  // Maxima combine exactly in any order.
  for (std::size_t ci = 0; ci < peaks.size() / top_.size(); ++ci) {
    for (std::size_t j = 0; j < top_.size(); ++j)
      top_[j] = std::max(top_[j], peaks[ci * top_.size() + j]);
  }
}

void ColumnMomentFold::add(MatrixView x, std::span<const float> weight) {
  std::vector<double> partial, peaks;
  chunk_partials(x, weight, partial, peaks);
  fold(partial, peaks);
  rows_ += static_cast<std::int64_t>(x.rows);
}

ColumnMoments ColumnMomentFold::finish(Reducer& reducer) {
  reducer.max(std::span<double>(top_));
  const std::size_t d = d_;
  ColumnMoments m;
  m.mean.assign(total_.begin(), total_.begin() + static_cast<std::ptrdiff_t>(d));
  m.mean_square.assign(total_.begin() + static_cast<std::ptrdiff_t>(d),
                       total_.begin() + static_cast<std::ptrdiff_t>(2 * d));
  m.max_abs.assign(top_.begin(), top_.begin() + static_cast<std::ptrdiff_t>(d));
  m.max_norm = top_[d];
  m.max_weight = top_[d + 1];
  double denominator = 0.0;
  if (weighted_) {
    denominator = total_[2 * d];
  } else {
    std::int64_t count = rows_;
    reducer.sum(std::span<std::int64_t>(&count, 1));
    denominator = static_cast<double>(count);
  }
  if (denominator > 0.0) {
    for (double& v : m.mean) v /= denominator;
    for (double& v : m.mean_square) v /= denominator;
  }
  return m;
}

ColumnMoments column_moments(MatrixView x, Reducer& reducer, std::span<const float> weight) {
  ColumnMomentFold fold(x.cols, !weight.empty());
  std::vector<double> partial, peaks;
  fold.chunk_partials(x, weight, partial, peaks);
  // Every process's chunks in global chunk order; this process's peaks (maxima go through
  // finish's reducer.max).
  fold.fold(reducer.gather_chunks(std::move(partial), fold.width()), peaks);
  fold.count_rows(x.rows);
  return fold.finish(reducer);
}

std::vector<double> column_means(MatrixView x, Reducer& reducer, std::span<const float> weight) {
  return column_moments(x, reducer, weight).mean;
}

bool centred_enough(const ColumnMoments& m) noexcept {
  for (std::size_t j = 0; j < m.mean.size(); ++j) {
    const double limit = kCentredMeanShare * kCentredMeanShare * m.mean_square[j];
    if (!(m.mean[j] * m.mean[j] <= limit)) return false;
  }
  return true;
}

double mean_feature_variance(const ColumnMoments& m) noexcept {
  if (m.mean_square.empty()) return 0.0;
  double squares = 0.0;
  for (const double v : m.mean_square) squares += v;
  return squares / static_cast<double>(m.mean_square.size());
}

double mean_feature_variance(MatrixView xc, Reducer& reducer, std::span<const float> weight) {
  return mean_feature_variance(column_moments(xc, reducer, weight));
}

Matrix centre_rows(MatrixView x, std::span<const double> offset) {
  Matrix out = Matrix::uninitialized(x.rows, x.cols);  // every element written below
  const std::size_t d = x.cols;
#pragma omp parallel for schedule(static) if (x.rows > kReduceChunkRows)
  for (std::ptrdiff_t i = 0; i < static_cast<std::ptrdiff_t>(x.rows); ++i) {
    const auto r = static_cast<std::size_t>(i);
    const float* src = x.row(r);
    float* dst = out.row(r);
    for (std::size_t j = 0; j < d; ++j) {
      dst[j] = static_cast<float>(static_cast<double>(src[j]) - offset[j]);
    }
  }
  return out;
}

void check_weights(const KMeansOptions& options, std::size_t rows, Reducer& reducer) {
  const std::vector<float>& w = options.sample_weight;
  if (w.empty()) return;
  if (w.size() != rows) {
    throw Error(fmt::format("k-means: sample_weight has {} values for {} rows", w.size(), rows));
  }
  if (options.algorithm == KMeansAlgorithm::minibatch) {
    throw Error("k-means: sample weights are not supported by minibatch (use an exact algorithm)");
  }
  for (std::size_t i = 0; i < w.size(); ++i) {
    if (!std::isfinite(w[i]) || w[i] < 0.0f) {
      throw Error(
          fmt::format("k-means: sample_weight of row {} is {} (weights must be finite "
                      "and >= 0)",
                      i + 1, w[i]));
    }
  }
  // Whether any row carries weight, over every process (a sum of 0/1 flags is exact).
  std::int64_t positive = std::any_of(w.begin(), w.end(), [](float v) { return v > 0.0f; });
  reducer.sum(std::span<std::int64_t>(&positive, 1));
  if (positive == 0) throw Error("k-means: every sample_weight is 0");
}

KMeansAlgorithm resolve_algorithm(KMeansAlgorithm requested, std::size_t d,
                                  std::size_t k) noexcept {
  if (requested != KMeansAlgorithm::automatic) return requested;
  // Measured with bench_kmeans BM_Fit (200k rows, overlapping clusters, fit to tol 1e-4, 2
  // threads; bench/results/kmeans.md, stop 16): Hamerly runs Lloyd's steps until few rows change,
  // then its bounded steps cost one or two exact O(d) distances per row whose bounds fail, where
  // Lloyd's fused kernel scores k centres per row, cheap per FLOP at small d.
  //   d = 16: Lloyd wins at k <= 64 (1.2-1.6x); Hamerly won the 300-iteration k = 256 fit.
  //   d = 32: Hamerly wins at k <= 32 (1.5-2.5x), ties at 64, loses 9% at 256.
  //   d = 48, 64: Hamerly wins everywhere (1.1-5x).
  // Thresholds sit halfway between measured shapes. Yinyang lost to one of the two everywhere
  // (see kmeans_yinyang.cpp for why), so auto never picks it.
  constexpr std::size_t kHamerlyMinCols = 40;      // between 32 and 48
  constexpr std::size_t kHamerlyLowKMinCols = 24;  // between 16 and 32
  constexpr std::size_t kHamerlyLowKMax = 48;      // between 32 and 64
  if (d >= kHamerlyMinCols) return KMeansAlgorithm::hamerly;
  if (d >= kHamerlyLowKMinCols && k <= kHamerlyLowKMax) return KMeansAlgorithm::hamerly;
  return KMeansAlgorithm::lloyd;
}

}  // namespace kmeans_detail

const char* to_string(KMeansAlgorithm algorithm) noexcept {
  switch (algorithm) {
    case KMeansAlgorithm::automatic:
      return "auto";
    case KMeansAlgorithm::lloyd:
      return "lloyd";
    case KMeansAlgorithm::hamerly:
      return "hamerly";
    case KMeansAlgorithm::yinyang:
      return "yinyang";
    case KMeansAlgorithm::minibatch:
      return "minibatch";
  }
  return "auto";
}

const char* to_string(KMeansInit init) noexcept {
  switch (init) {
    case KMeansInit::kmeanspp:
      return "kmeans++";
    case KMeansInit::random:
      return "random";
    case KMeansInit::kmeans_parallel:
      return "kmeans||";
    case KMeansInit::file:
      return "file";
  }
  return "kmeans++";
}

namespace {

using namespace kmeans_detail;  // NOLINT: this file is the driver of those pieces

std::unique_ptr<StepPolicy> make_policy(KMeansAlgorithm algorithm) {
  switch (algorithm) {
    case KMeansAlgorithm::hamerly:
      return make_hamerly_policy();
    case KMeansAlgorithm::yinyang:
      return make_yinyang_policy();
    case KMeansAlgorithm::lloyd:
    case KMeansAlgorithm::automatic:
    case KMeansAlgorithm::minibatch:  // run_restart drives minibatch itself
      break;
  }
  return make_lloyd_policy();
}

/// The state a checkpoint holds: the restart in progress after `iteration` steps, and the best
/// finished restart (if any).
/// Per-row arrays are gathered whole (several processes hold a run of rows each), so every
/// process hands the same complete state to on_checkpoint.
KMeansCheckpoint snapshot(const RestartRun& run, int restart, int iteration, const RestartRun* best,
                          Reducer& reducer) {
  KMeansCheckpoint c;
  c.restart = restart;
  c.iteration = iteration;
  c.centroids = run.state.centroids;
  c.assignment = reducer.gather(std::span<const std::int32_t>(run.state.assignment));
  c.history = run.history;
  if (best != nullptr) {
    c.best_restart = best->restart;
    c.best_centroids = best->state.centroids;
    c.best_assignment = reducer.gather(std::span<const std::int32_t>(best->state.assignment));
    c.best_distance = reducer.gather(std::span<const float>(best->state.distance));
    c.best_inertia = best->inertia;
    c.best_iterations = best->iterations;
    c.best_converged = best->converged;
    c.best_history = best->history;
  }
  return c;
}

RestartRun best_from(const KMeansCheckpoint& c) {
  RestartRun best;
  best.restart = c.best_restart;
  best.state.centroids = c.best_centroids;
  best.state.assignment = c.best_assignment;
  best.state.distance = c.best_distance;
  best.inertia = c.best_inertia;
  best.iterations = c.best_iterations;
  best.converged = c.best_converged;
  best.history = c.best_history;
  return best;
}

/// Whether a checkpoint `from` fits this fit: same k, d and row count.
void check_resume(const KMeansCheckpoint& from, MatrixView xc, const KMeansOptions& options) {
  const auto k = static_cast<std::size_t>(options.k);
  const bool ok = from.centroids.rows() == k && from.centroids.cols() == xc.cols &&
                  from.assignment.size() == xc.rows && from.restart >= 0 &&
                  from.restart < options.n_init && from.iteration >= 0 &&
                  (from.best_restart < 0 ||
                   (from.best_centroids.rows() == k && from.best_assignment.size() == xc.rows &&
                    from.best_distance.size() == xc.rows));
  if (!ok) {
    throw Error(fmt::format(
        "k-means: the checkpoint does not fit this fit (it holds {} x {} centres and {} labels "
        "at restart {}; the fit has k = {}, d = {}, {} rows, n_init = {})",
        from.centroids.rows(), from.centroids.cols(), from.assignment.size(), from.restart,
        options.k, xc.cols, xc.rows, options.n_init));
  }
}

/// The starting centres of one restart, in the centred coordinates of xc.
Matrix initial_centres(MatrixView xc, const KMeansOptions& options, std::span<const double> mean,
                       std::uint64_t seed, Reducer& reducer) {
  switch (options.init) {
    case KMeansInit::random:
      return init_random(xc, options.k, seed, reducer);
    case KMeansInit::kmeans_parallel:
      return init_kmeans_parallel(xc, options.k, seed, reducer);
    case KMeansInit::file:
      return centre_rows(options.initial_centroids.view(), mean);
    case KMeansInit::kmeanspp:
      break;
  }
  return init_kmeanspp(xc, options.k, seed, reducer);
}

/// `converged_at`: the centre movement at or below which a restart has converged (tol x the
/// mean column variance).
RestartRun run_restart(MatrixView xc, const KMeansOptions& options, std::span<const double> mean,
                       const MomentScales& scales, double converged_at, int restart,
                       Reducer& reducer, const RestartRun* best, const KMeansCheckpoint* resume) {
  const std::uint64_t seed = derive_seed(options.seed, static_cast<std::uint64_t>(restart));
  const bool minibatch = options.algorithm == KMeansAlgorithm::minibatch;
  RestartRun run;
  run.restart = restart;
  int first = 1;
  if (resume != nullptr) {
    run.state.centroids = resume->centroids;
    run.state.assignment = resume->assignment;
    run.state.distance.assign(xc.rows, 0.0f);
    run.history = resume->history;
    run.iterations = resume->iteration;
    first = resume->iteration + 1;
  } else if (reducer.size() > 1 && minibatch) {
    // Mini-batch (which samples rows of the whole data) is not split between processes yet:
    // every process runs it, and its seeding, on all the rows, so all get the centres one
    // process would. Costs a copy of the data per process while it runs. The exact algorithms
    // seed on each process's own rows.
    const Matrix all = reducer.gather_rows(xc);
    run.state.centroids = initial_centres(all.view(), options, mean, seed, local_reducer());
    run.state.assignment.assign(all.rows(), -1);
    run.state.distance.assign(all.rows(), 0.0f);
    run.converged =
        minibatch_run(all.view(), run.state, options, restart, seed, local_reducer(), run.history);
    run.iterations = static_cast<int>(run.history.size());
    const AssignStats final_assign = assign_rows(all.view(), run.state.centroids.view(),
                                                 run.state.assignment, run.state.distance, false);
    run.inertia = final_assign.inertia;
    const RowRange mine = chunk_rows_of(all.rows(), reducer.rank(), reducer.size());
    const auto b = static_cast<std::ptrdiff_t>(mine.begin);
    const auto e = static_cast<std::ptrdiff_t>(mine.begin + mine.rows);
    run.state.assignment = {run.state.assignment.begin() + b, run.state.assignment.begin() + e};
    run.state.distance = {run.state.distance.begin() + b, run.state.distance.begin() + e};
    return run;
  } else {
    run.state.centroids = initial_centres(xc, options, mean, seed, reducer);
  }
  if (resume == nullptr) {
    run.state.assignment.assign(xc.rows, -1);
    run.state.distance.assign(xc.rows, 0.0f);
  }
  run.state.weight = options.sample_weight;
  run.state.scales = scales;
  if (minibatch) {
    run.converged = minibatch_run(xc, run.state, options, restart, seed, reducer, run.history);
    run.iterations = static_cast<int>(run.history.size());
  }
  const std::unique_ptr<StepPolicy> policy = make_policy(
      resolve_algorithm(options.algorithm, xc.cols, static_cast<std::size_t>(options.k)));
  for (int it = first; !minibatch && it <= options.max_iter; ++it) {
    const auto start = std::chrono::steady_clock::now();
    const StepStats step = policy->step(xc, run.state, reducer);
    run.history.push_back(record_iteration(step, it, restart, start, options));
    run.iterations = it;
    if (step.shift <= converged_at) {
      run.converged = true;
      break;
    }
    bool stop = options.stop_requested && options.stop_requested();
    if (options.stop_requested && reducer.size() > 1) {
      // A signal may reach one process only, or reach them between iterations at different
      // moments: they agree (any of them asked) so that all stop after the same iteration.
      std::int64_t asked = stop ? 1 : 0;
      reducer.sum(std::span<std::int64_t>(&asked, 1));
      stop = asked > 0;
    }
    const bool scheduled = options.checkpoint_every > 0 && it % options.checkpoint_every == 0;
    if (options.on_checkpoint && (stop || scheduled))
      options.on_checkpoint(snapshot(run, restart, it, best, reducer));
    if (stop) {
      throw Interrupted(fmt::format("k-means stopped on request after iteration {} of restart {}",
                                    it, restart + 1));
    }
  }
  // Report labels and distances against the centres actually returned.
  const AssignStats final_assign = assign_rows(xc, run.state.centroids.view(), run.state.assignment,
                                               run.state.distance, false, options.sample_weight);
  run.inertia = global_stats(final_assign, reducer).inertia;
  return run;
}

}  // namespace

namespace kmeans_detail {

KMeansResult fit_result(RestartRun&& best, std::span<const double> mean, Reducer& reducer) {
  const std::size_t k = best.state.centroids.rows();
  const std::size_t d = best.state.centroids.cols();
  KMeansResult result;
  result.centroids = Matrix(k, d);
  for (std::size_t j = 0; j < k; ++j) {
    for (std::size_t t = 0; t < d; ++t) {
      result.centroids(j, t) =
          static_cast<float>(static_cast<double>(best.state.centroids(j, t)) + mean[t]);
    }
  }
  result.sizes.assign(k, 0);
  for (const std::int32_t label : best.state.assignment) {
    ++result.sizes[static_cast<std::size_t>(label)];
  }
  reducer.sum(std::span<std::int64_t>(result.sizes));
  result.assignment = std::move(best.state.assignment);
  result.distance = std::move(best.state.distance);
  result.inertia = best.inertia;
  result.iterations = best.iterations;
  result.converged = best.converged;
  result.history = std::move(best.history);
  return result;
}

void check_initial_centroids(const KMeansOptions& options, std::size_t d) {
  if (options.init != KMeansInit::file) return;
  const Matrix& c = options.initial_centroids;
  if (c.rows() != static_cast<std::size_t>(options.k) || c.cols() != d) {
    throw Error(
        fmt::format("k-means: init = file needs k x d = {} x {} initial centroids, got {} x {}",
                    options.k, d, c.rows(), c.cols()));
  }
  check_finite(c.view(), "the initial centroids");
}

KMeansIteration record_iteration(const StepStats& step, int it, int restart,
                                 std::chrono::steady_clock::time_point start,
                                 const KMeansOptions& options) {
  KMeansIteration info;
  info.iteration = it;
  info.inertia = step.inertia;
  info.shift = step.shift;
  info.changed = step.changed;
  info.relocated = step.relocated;
  info.restart = restart;
  info.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (options.on_iteration) options.on_iteration(info);
  return info;
}

}  // namespace kmeans_detail

KMeansResult kmeans_fit(MatrixView x, const KMeansOptions& options, Reducer& reducer) {
  validate_options(options);
  std::int64_t total_rows = static_cast<std::int64_t>(x.rows);
  reducer.sum(std::span<std::int64_t>(&total_rows, 1));
  validate_data(x, options.k, static_cast<std::size_t>(total_rows));
  check_initial_centroids(options, x.cols);
  check_weights(options, x.rows, reducer);
  // Centre first, so that ||x||^2 - 2 x.c + ||c||^2 does not cancel when columns share an
  // offset. Data whose column means are already negligible (the normalizer's output is centred
  // by construction) is used as it is: the copy would be as large as the data and change no
  // decision of consequence. One pass of statistics over the rows the fit uses gives the
  // tolerance's scale and the moments' scales too.
  ColumnMoments stats = column_moments(x, reducer, options.sample_weight);
  Matrix centred_copy;
  std::vector<double> mean(x.cols, 0.0);
  if (!centred_enough(stats)) {
    mean = stats.mean;
    centred_copy = centre_rows(x, mean);
    stats = column_moments(centred_copy.view(), reducer, options.sample_weight);
  }
  const MatrixView xc = centred_copy.rows() > 0 ? centred_copy.view() : x;
  const double converged_at = options.tol * mean_feature_variance(stats);
  // Mini-batch keeps float64 running means and never builds exact moments.
  const MomentScales scales = options.algorithm == KMeansAlgorithm::minibatch
                                  ? MomentScales{}
                                  : moment_scales(stats, !options.sample_weight.empty());

  const KMeansCheckpoint* resume = options.resume;
  if ((resume != nullptr || options.on_checkpoint) &&
      options.algorithm == KMeansAlgorithm::minibatch) {
    throw Error("k-means: checkpoints cover the exact algorithms (not minibatch)");
  }
  KMeansCheckpoint mine;  // with several processes: the resumed state cut to this one's rows
  if (resume != nullptr && reducer.size() > 1) {
    mine = *resume;
    const RowRange rows =
        chunk_rows_of(static_cast<std::size_t>(total_rows), reducer.rank(), reducer.size());
    auto cut = [&](auto& v) {
      if (v.size() != static_cast<std::size_t>(total_rows)) return;  // check_resume reports it
      const auto b = static_cast<std::ptrdiff_t>(rows.begin);
      v = {v.begin() + b, v.begin() + b + static_cast<std::ptrdiff_t>(rows.rows)};
    };
    cut(mine.assignment);
    if (mine.best_restart >= 0) {
      cut(mine.best_assignment);
      cut(mine.best_distance);
    }
    resume = &mine;
  }
  if (resume != nullptr) check_resume(*resume, xc, options);
  RestartRun best;
  bool have_best = false;
  if (resume != nullptr && resume->best_restart >= 0) {
    best = best_from(*resume);
    have_best = true;
  }
  for (int restart = resume ? resume->restart : 0; restart < options.n_init; ++restart) {
    const bool resuming = resume != nullptr && restart == resume->restart;
    RestartRun run = run_restart(xc, options, mean, scales, converged_at, restart, reducer,
                                 have_best ? &best : nullptr, resuming ? resume : nullptr);
    if (!have_best || run.inertia < best.inertia) {
      best = std::move(run);
      have_best = true;
    }
  }

  return fit_result(std::move(best), mean, reducer);
}

void kmeans_predict(MatrixView x, MatrixView centroids, std::span<std::int32_t> assignment,
                    std::span<float> distance) {
  if (centroids.rows == 0) throw Error("k-means predict: no centroids");
  if (centroids.cols != x.cols) {
    throw Error(fmt::format("k-means predict: data has {} columns but centroids have {}", x.cols,
                            centroids.cols));
  }
  if (x.cols == 0) throw Error("k-means predict: the feature matrix has no columns");
  if (assignment.size() != x.rows || distance.size() != x.rows) {
    throw Error(
        fmt::format("k-means predict: output sizes ({}, {}) do not match the {} rows of the data",
                    assignment.size(), distance.size(), x.rows));
  }
  check_finite(x, "the data");
  check_finite(centroids, "the centroids");

  // Shift by the centroids' mean: it needs no pass over (or reduction of) the data, and keeps
  // both operands near zero so ||c||^2 - 2 x.c does not cancel when features share a large offset.
  const std::size_t d = x.cols;
  std::vector<double> offset(d, 0.0);
  for (std::size_t j = 0; j < centroids.rows; ++j) {
    for (std::size_t t = 0; t < d; ++t) offset[t] += static_cast<double>(centroids(j, t));
  }
  for (double& o : offset) o /= static_cast<double>(centroids.rows);
  const Matrix cc = centre_rows(centroids, offset);

  for (std::size_t s0 = 0; s0 < x.rows; s0 += kPredictSlabRows) {
    const std::size_t rows = std::min(kPredictSlabRows, x.rows - s0);
    const MatrixView slab{x.row(s0), rows, d};
    const Matrix xc = centre_rows(slab, offset);
    assign_rows(xc.view(), cc.view(), assignment.subspan(s0, rows), distance.subspan(s0, rows),
                false);
  }
}

}  // namespace icp
