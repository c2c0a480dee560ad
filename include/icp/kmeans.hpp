// K-means segmentation: options, result, fit and predict.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "icp/error.hpp"
#include "icp/matrix.hpp"
#include "icp/reduce.hpp"

namespace icp {

enum class KMeansInit {
  kmeanspp,  ///< greedy k-means++ (2 + ln k candidates per step)
  random,    ///< k distinct rows drawn uniformly
  /// k-means|| (Bahmani et al. 2012): ~5 rounds oversampling 2k rows each by D^2, candidates
  /// weighted by the rows closest to them, then weighted greedy k-means++ on the candidates.
  /// Far fewer passes over the data than greedy k-means++ at large k.
  kmeans_parallel,
  file,  ///< KMeansOptions::initial_centroids (every restart starts from them)
};

/// Name used in job files and output ("kmeans++", "random", "kmeans||", "file").
const char* to_string(KMeansInit init) noexcept;

/// How each iteration is computed. lloyd, hamerly and yinyang are exact and give bit-identical
/// results from the same init (same scores, same ties); they differ in speed and memory.
enum class KMeansAlgorithm {
  automatic,  ///< picks one of the exact algorithms by k and d (rule in kmeans.cpp)
  lloyd,      ///< every row scored against every centre each step; no per-row state
  hamerly,    ///< + bounds on each row's centre, runner-up and the rest: skips rows they prove
  yinyang,    ///< + 1 float lower bound per row and centre group (k / 10 groups)
  /// Approximate (Sculley 2010): each step assigns a random batch and moves every centre to the
  /// running mean of the points it has been given; stops after max_iter steps or when a
  /// smoothed batch inertia has not improved for kMiniBatchPatience steps (tol is not used).
  /// The labels, distances and inertia come from a last exact assignment of every row. History
  /// entries are per step: batch inertia and centre shift (changed = 0). Centres no batch row
  /// ever reaches keep their initial position (no relocation).
  minibatch,
};

/// Name used in job files and output ("auto", "lloyd", ...).
const char* to_string(KMeansAlgorithm algorithm) noexcept;

/// minibatch stops when the smoothed batch inertia has not reached a new low for this many steps
/// (scikit-learn's max_no_improvement default).
inline constexpr int kMiniBatchPatience = 10;
/// Cap of the default batch: 2^18 rows already estimate the centre means to well under the
/// spread between clusters, and more rows per step only make minibatch a slower Lloyd.
inline constexpr std::int64_t kMiniBatchMaxDefault = std::int64_t{1} << 18;

/// Statistics of one Lloyd iteration, reported through KMeansOptions::on_iteration.
struct KMeansIteration {
  int iteration = 0;         ///< 1-based
  double inertia = 0.0;      ///< sum of exact squared distances (minibatch: over the batch)
  double shift = 0.0;        ///< squared centre movement: sum_j ||c_new_j - c_old_j||^2
  std::int64_t changed = 0;  ///< points whose assignment changed
  double seconds = 0.0;
  int restart = 0;             ///< 0-based restart (n_init) this iteration belongs to
  std::int64_t relocated = 0;  ///< empty clusters re-seeded with far points after this update
};

/// Where a fit stands after an iteration: everything needed to continue it and end with the
/// bits of a fit that was never stopped. Draws are keyed by (seed, restart, step), so the RNG
/// "state" is the (restart, iteration) pair. Held in the fit's centred coordinates (the column
/// means, and whether the data needed centring, are recomputed with the same bits from the same
/// data on resume).
struct KMeansCheckpoint {
  int restart = 0;                       ///< restart in progress (0-based)
  int iteration = 0;                     ///< iterations that restart has done
  Matrix centroids;                      ///< k x d centres after `iteration` iterations (centred)
  std::vector<std::int32_t> assignment;  ///< labels of the last assignment (for `changed`)
  std::vector<KMeansIteration> history;  ///< of the restart in progress
  /// The best finished restart so far (n_init > 1); `best_restart` < 0 when there is none.
  int best_restart = -1;
  Matrix best_centroids;
  std::vector<std::int32_t> best_assignment;
  std::vector<float> best_distance;
  double best_inertia = 0.0;
  int best_iterations = 0;
  bool best_converged = false;
  std::vector<KMeansIteration> best_history;
};

/// Thrown by kmeans_fit (and run_job) when KMeansOptions::stop_requested said so: the state was
/// handed to on_checkpoint first.
class Interrupted : public Error {
 public:
  using Error::Error;
};

struct KMeansOptions {
  int k = 8;           ///< number of segments, 1 <= k <= n
  int max_iter = 100;  ///< Lloyd iterations at most
  /// Stop when the squared centre movement is <= tol x the mean column variance of the data
  /// (scikit-learn's rule, so the same tol means the same thing in both); 0 = until no change.
  double tol = 1e-4;
  std::uint64_t seed = 42;  ///< all randomness derives from this
  KMeansInit init = KMeansInit::kmeanspp;
  KMeansAlgorithm algorithm = KMeansAlgorithm::automatic;
  int n_init = 1;  ///< restarts; the lowest inertia wins (ties: first)
  /// With init = file: k x d starting centres in the input's coordinates.
  Matrix initial_centroids;
  /// minibatch: rows per step; 0 = min(rows, 1024 * k, kMiniBatchMaxDefault).
  std::int64_t batch_size = 0;
  /// One weight per row (finite, >= 0; empty = all 1), e.g. how many accounts a row stands for:
  /// centres are weighted means, inertia a weighted sum, and the data is centred by its weighted
  /// mean. A row of weight w gives the result w copies of it would (up to float rounding).
  /// Seeding ignores weights (as scikit-learn 1.2 does); minibatch does not take them. With
  /// several processes: this process's rows.
  std::vector<float> sample_weight;
  std::function<void(const KMeansIteration&)> on_iteration;  ///< optional progress callback
  /// Exact algorithms (not minibatch): on_checkpoint gets the state every `checkpoint_every`
  /// iterations (0 = never on a schedule) and whenever stop_requested() returns true after an
  /// iteration, after which the fit throws icp::Interrupted. With several processes every one
  /// must set the same hooks: they agree on stopping (any process asking is enough) and each
  /// gets the whole state (labels gathered), so one of them can write it.
  int checkpoint_every = 0;
  std::function<void(const KMeansCheckpoint&)> on_checkpoint;
  std::function<bool()> stop_requested;
  /// Continue from this state instead of starting afresh (same data, options and seed). With
  /// several processes every one passes the whole state; each keeps its own rows of it.
  const KMeansCheckpoint* resume = nullptr;
};

struct KMeansResult {
  Matrix centroids;                      ///< k x d, in the input's coordinates
  std::vector<std::int32_t> assignment;  ///< n, segment of each row (ties to the lowest index)
  std::vector<float> distance;           ///< n, exact squared distance to the assigned centroid
  std::vector<std::int64_t> sizes;       ///< k
  double inertia = 0.0;                  ///< sum of `distance`, accumulated in float64
  int iterations = 0;
  bool converged = false;
  std::vector<KMeansIteration> history;  ///< of the winning restart
};

/// Fits k-means to the rows of x. Throws icp::Error for k < 1, k > rows, cols == 0, a non-finite
/// value (naming its 1-based row and column), max_iter < 1, n_init < 1, a negative tol, a
/// negative batch_size, or init = file with initial_centroids that are not k x d and finite.
/// Bitwise identical results for a given seed at any thread count.
/// Works on data centred by its column means (summed through `reducer`), so a large common
/// offset does not cancel in float32. Data already centred (every column mean within 2^-10 of
/// the column's RMS, as the normalizer's output is) is used as it is, without a centred copy
/// (n x d x 4 bytes). Each Lloyd iteration assigns with the current centres,
/// then updates them; a last assignment against the final centres gives `assignment`,
/// `distance`, `sizes` and `inertia`. Empty clusters take the points farthest from their centres.
/// Several processes: x is this process's run of rows (reducer.scatter_rows / chunk_rows_of);
/// means, sums, counts, inertia and `changed` go through `reducer` chunk by chunk, so the
/// centroids, inertia and history have the bits of a one-process fit, and `assignment` and
/// `distance` hold this process's rows. Seeding, mini-batch and empty-cluster relocation gather
/// the rows they need (a copy of the data per process while they run).
KMeansResult kmeans_fit(MatrixView x, const KMeansOptions& options,
                        Reducer& reducer = local_reducer());

/// kmeans_fit over rows read a block at a time, with kmeans_fit's bits for the exact algorithms
/// (Lloyd, Hamerly and Yinyang give the same result; this runs Lloyd's steps, which need no
/// per-row bounds). Holds per row the label and distance (8 bytes; twice that with n_init > 1),
/// a float64 D^2 while k-means++ seeds, `options.sample_weight` when given (all rows), and one
/// block. Scans the rows once for the column moments (twice when they need centring: blocks are
/// then centred as they arrive), 2k - 1 times to seed with k-means++, once per iteration and
/// once for the final labels. Takes init = kmeans++, random or file; minibatch, kmeans|| and
/// checkpoints (on_checkpoint, resume) throw icp::Error. stop_requested makes it throw
/// icp::Interrupted after an iteration, without a checkpoint. `scans` (optional) receives the
/// number of scans.
KMeansResult kmeans_fit_streamed(const RowBlocks& x, const KMeansOptions& options,
                                 int* scans = nullptr);

/// Nearest centroid of each row of x (ties to the lowest index) and the exact squared distance.
/// Both x and the centroids are shifted by the centroids' mean first, so large offsets do not
/// cancel. Throws icp::Error for mismatched shapes or a non-finite value.
void kmeans_predict(MatrixView x, MatrixView centroids, std::span<std::int32_t> assignment,
                    std::span<float> distance);

}  // namespace icp
