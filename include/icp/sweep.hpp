// Benchmarking segmentation runs: k-means over a grid of k, algorithms, inits and repeats on one
// normalized matrix, each run scored (inertia, sampled silhouette, Calinski-Harabasz,
// Davies-Bouldin, bootstrap stability) and timed; and the rule behind `kmeans.k = "auto"`.
// The library never prints: progress goes through SweepOptions::on_progress.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "icp/config.hpp"
#include "icp/hdf5.hpp"
#include "icp/kmeans.hpp"
#include "icp/matrix.hpp"

namespace icp {

/// One combination about to run (`done` = false) or just finished (`done` = true).
struct SweepProgress {
  std::size_t index = 0;  ///< 0-based position in the run order
  std::size_t total = 0;  ///< combinations in the sweep
  int k = 0;
  std::string algorithm;
  std::string init;
  int repeat = 0;
  bool done = false;
  double elapsed = 0.0;  ///< seconds since the sweep started
  /// Seconds left, extrapolated from the finished runs weighted by k (a run's cost grows about
  /// linearly in k); 0 before the first run finishes.
  double eta = 0.0;
};

struct SweepOptions {
  std::vector<int> ks;                              ///< values of k, run in this order
  std::vector<std::string> algorithms = {"lloyd"};  ///< names as in kmeans.algorithm
  std::vector<KMeansInit> inits = {KMeansInit::kmeanspp};
  int repeats = 1;  ///< runs per (k, algorithm, init), seeds seed + r
  std::uint64_t seed = 42;
  int max_iter = 100;
  double tol = 1e-4;
  int n_init = 1;
  /// Rows in the silhouette sample (sampled with seed + r, so every k of a repeat scores the
  /// same rows); 0 = skip the silhouette (NaN).
  std::int64_t silhouette_sample = 10000;
  /// Bootstrap fits per run for the stability score; < 2 = skip (NaN).
  int stability_runs = 3;
  /// Rows per bootstrap draw and rows of the shared evaluation sample (capped at n).
  std::int64_t stability_sample = 20000;
  std::function<void(const SweepProgress&)> on_progress;
};

/// One run of the sweep.
struct SweepRow {
  int k = 0;
  std::string algorithm;
  std::string init;  ///< "kmeans++" | "random"
  int repeat = 0;
  std::uint64_t seed = 0;  ///< k-means seed of this run (SweepOptions::seed + repeat)
  int iterations = 0;
  bool converged = false;
  double seconds = 0.0;  ///< the k-means fit alone
  double inertia = 0.0;
  double silhouette = 0.0;  ///< sampled, within the sample (see icp::silhouette)
  double silhouette_se = 0.0;
  std::int64_t silhouette_sample = 0;
  double calinski_harabasz = 0.0;
  double davies_bouldin = 0.0;
  /// Mean adjusted Rand index over the pairs of `stability_runs` k-means fits, each on its own
  /// bootstrap draw (with replacement) of `stability_sample` rows, whose centroids then label
  /// one shared evaluation sample. 1 = the same segments whatever the draw.
  double stability = 0.0;
  double metric_seconds = 0.0;  ///< silhouette + CH/DB + stability
};

/// "4:40:4" (start:stop:step, stop included), "4:12" (step 1), "10" or "4,8,16". Throws
/// ConfigError naming `what` (e.g. "--k") for anything else, k < 1 or an empty range.
std::vector<int> parse_k_list(const std::string& text, const std::string& what);

/// A k-means algorithm name ("lloyd", "hamerly", "yinyang", "auto") as its enum. Throws
/// ConfigError naming `what` and listing the known names otherwise.
KMeansAlgorithm parse_kmeans_algorithm(const std::string& name, const std::string& what);

/// Runs every (k, algorithm, init, repeat) on x, in that nesting order (k outermost). Throws
/// icp::Error for an empty grid, k > rows, unknown algorithm names and bad options, before any
/// fit. Each row's numbers are identical at any thread count (except `seconds`).
std::vector<SweepRow> run_sweep(MatrixView x, const SweepOptions& options);

/// The rule behind `kmeans.k = "auto"`, over rows of a sweep: for each k, average the sampled
/// silhouette over its runs; take the best average; among the ks whose average is within one
/// standard error (the best k's mean silhouette_se) of it, choose the smallest k. Rows with a
/// NaN silhouette are ignored. Throws icp::Error when no row has a silhouette.
int choose_k(const std::vector<SweepRow>& rows);

/// Silhouette sample of the `kmeans.k = "auto"` sweep: its standard error is about 0.003 at
/// 10,000 rows, below the silhouette gaps between a right and a wrong k on separable data, and
/// the O(m^2 d) sample costs about a second per k at d = 32 on one core.
inline constexpr std::int64_t kKAutoSilhouetteSample = 10000;

/// The sweep behind `kmeans.k = "auto"`: k = k_min..min(k_max, rows - 1), the job's algorithm,
/// init, n_init, max_iter, tol and seed, one repeat, the silhouette on kKAutoSilhouetteSample
/// rows and no stability fits (the rule does not use them). Throws ConfigError when k_min is
/// above rows - 1 (a silhouette needs two clusters and a row left over).
SweepOptions k_auto_options(const JobConfig& config, std::size_t rows);

/// The sweep as the compound dataset `/sweep` (one record per run, docs/hdf5-schema.md) with
/// its settings as attributes. The caller commits.
void write_sweep(const std::vector<SweepRow>& rows, const SweepOptions& options, h5::Writer& out);

/// The sweep as CSV (header row, one line per run, full precision, NaN as empty).
std::string sweep_csv(const std::vector<SweepRow>& rows);

/// The sweep as an aligned text table for people.
std::string sweep_table(const std::vector<SweepRow>& rows);

}  // namespace icp
