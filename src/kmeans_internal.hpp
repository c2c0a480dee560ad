// Pieces of k-means shared by the fit driver, the tests and the benchmark. Not installed.
// The fit is validate -> centre -> init -> repeat StepPolicy::step -> finalize. Lloyd's step is
// assign_rows + finish_step; Hamerly and Yinyang replace the assignment half with bounded
// versions that give the same labels (kmeans_relabel.hpp, kmeans_hamerly.cpp, kmeans_yinyang.cpp).
#pragma once

#include <algorithm>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <random>
#include <span>
#include <vector>

#include "icp/kmeans.hpp"
#include "icp/matrix.hpp"
#include "icp/parallel.hpp"
#include "icp/reduce.hpp"

namespace icp::kmeans_detail {

/// Rows per matrix-product block in the assignment kernel. 128 rows x 64 floats (32 KiB) of data
/// plus the 128 x k float dot products (128 KiB at k = 256) stay in L2 next to the k x d centres,
/// while 128 rows are still tall enough for Eigen's GEMM micro-kernel to run at full width.
/// It divides kReduceChunkRows, so blocks never straddle a chunk and the block partition (and
/// with it every float the product produces) does not depend on the thread count.
inline constexpr std::size_t kAssignBlockRows = 128;
static_assert(kReduceChunkRows % kAssignBlockRows == 0);

/// Chunks whose per-chunk centroid partial sums are held at once in the update. Bounds the
/// scratch at 64 * k * d doubles (8 MiB at k = 256, d = 64) instead of one k x d block per chunk
/// of the whole data, while still giving dozens of threads work; chunks are folded in chunk
/// order, so the wave size does not change any bit of the result.
inline constexpr std::size_t kUpdateWaveChunks = 64;

/// Throws icp::Error for k out of range (of all processes' `total_rows`), zero columns or a
/// non-finite value (1-based position).
void validate_data(MatrixView x, int k, std::size_t total_rows);
void validate_options(const KMeansOptions& options);
/// Throws icp::Error unless sample_weight is empty or holds `rows` finite values >= 0, some
/// positive on some process, with an exact algorithm (minibatch takes no weights).
void check_weights(const KMeansOptions& options, std::size_t rows, Reducer& reducer);

/// What a fit needs to know of its rows before it starts, from one pass (fixed chunks, sums
/// combined in global chunk order, maxima over every process), weighted when `weight` is not
/// empty: the centring, the tolerance's scale and the fixed-point scales of the moments.
struct ColumnMoments {
  std::vector<double> mean;         ///< per column, float64
  std::vector<double> mean_square;  ///< per column: sum w x^2 / sum w
  std::vector<double> max_abs;      ///< per column: largest |x|
  double max_norm = 0.0;            ///< largest ||x||^2 of a row
  double max_weight = 0.0;          ///< largest row weight (0 without weights)
};
ColumnMoments column_moments(MatrixView x, Reducer& reducer, std::span<const float> weight = {});
/// column_moments built from blocks of rows in row order (a matrix read a block at a time):
/// each block's chunks (kReduceChunkRows rows from the block's start) are summed as
/// column_moments sums them and folded in order, so blocks that start on a chunk boundary give
/// column_moments' bits.
class ColumnMomentFold {
 public:
  ColumnMomentFold(std::size_t d, bool weighted);
  /// Adds the rows of x (weights `weight`, empty when not weighted).
  void add(MatrixView x, std::span<const float> weight = {});
  /// The moments of every row added (maxima and the row count over every process).
  ColumnMoments finish(Reducer& reducer = local_reducer());

  // The halves column_moments calls with a gather between them.
  std::size_t width() const noexcept { return width_; }
  void chunk_partials(MatrixView x, std::span<const float> weight, std::vector<double>& partial,
                      std::vector<double>& peaks) const;
  void fold(std::span<const double> partial, std::span<const double> peaks);
  void count_rows(std::size_t rows) noexcept { rows_ += static_cast<std::int64_t>(rows); }

 private:
  std::size_t d_;
  bool weighted_;
  std::size_t width_;
  std::vector<double> total_;
  std::vector<double> top_;
  std::int64_t rows_ = 0;
};
/// column_moments(...).mean.
std::vector<double> column_means(MatrixView x, Reducer& reducer,
                                 std::span<const float> weight = {});

/// Largest |column mean| / RMS of the column at which k-means uses the data without a centred
/// copy. Against the spread of the values such an offset moves ||x||^2 by at most 2^-20
/// relative, so the nearest-centre trick loses nothing measurable; the normalizer's output
/// (centred by its offsets, then rounded to float32) sits near 2^-24.
inline constexpr double kCentredMeanShare = 0x1p-10;

/// Whether every column's mean is within kCentredMeanShare of its RMS (a column of zeros is).
bool centred_enough(const ColumnMoments& m) noexcept;

/// float32 copy of x with `offset` (one value per column) subtracted in float64.
Matrix centre_rows(MatrixView x, std::span<const double> offset);

/// Float lanes of the score kernel's vector type, fixed at build time by the instruction set.
#if defined(__AVX512F__)
inline constexpr std::size_t kScoreLanes = 16;
#else
inline constexpr std::size_t kScoreLanes = 8;
#endif
/// Centres per packed panel: two vectors, so each broadcast of x feeds two FMAs.
inline constexpr std::size_t kPanelWidth = 2 * kScoreLanes;

/// Centres packed for the score kernel: panel p holds centres [p*W, p*W + W) t-major
/// (d rows of W floats); padding centres are zero with norm +inf, so they never win.
struct PackedCentres {
  std::size_t k = 0;
  std::size_t d = 0;
  std::size_t panels = 0;
  std::vector<float> data;  ///< panels * d * kPanelWidth
  std::vector<float> norm;  ///< panels * kPanelWidth
};

/// ||c||^2 summed in float64, rounded once to float.
float centre_norm(const float* c, std::size_t d) noexcept;
PackedCentres pack_centres(MatrixView centroids);

/// out[r * ldo + j] = norm_j - 2 * dot(x_r, c_j) for r < rows and j < k rounded up to a whole
/// vector (kScoreLanes), where dot is the float32 FMA chain over t = 0 .. d-1: bit-identical to
/// score_one. Slots past that in the last panel are not written.
void score_rows(const float* x, std::size_t rows, std::size_t ldx, const PackedCentres& c,
                float* out, std::size_t ldo) noexcept;

/// out[r] = index of the smallest score of row r (ties to the lowest index), computed in the
/// kernel's registers without storing the scores: the same choice as argmin_scores on score_rows.
void argmin_rows(const float* x, std::size_t rows, std::size_t ldx, const PackedCentres& c,
                 std::int32_t* out) noexcept;

/// The scalar definition of one score (std::fma chain); the blocked kernel matches it bitwise.
float score_one(const float* x, const float* c, float norm, std::size_t d) noexcept;

/// Index of the smallest of scores[0, k), ties to the lowest index.
std::size_t argmin_scores(const float* scores, std::size_t k) noexcept;

/// Exact squared distance sum (a - b)^2 in float64, in a fixed summation order.
double squared_distance(const float* a, const float* b, std::size_t d) noexcept;
/// The same with b already widened to float64 (widen_rows): the same bits, and a row's pass
/// converts only the row. Loops that measure many rows against a few fixed centres widen them
/// once: converting every centre for every row kept the conversion port busier than the FMAs.
double squared_distance(const float* a, const double* b, std::size_t d) noexcept;
/// out[q] = squared_distance(x, centres[q], d) for q < count, with the same bits, in one pass
/// over x (k-means++ scores its candidates with it).
void squared_distances(const float* x, const double* const* centres, std::size_t count,
                       std::size_t d, double* out) noexcept;
/// Squared distances of x to a and to b in one pass over x, each summed as squared_distance sums
/// (same bits; Hamerly retries a row's centre and runner-up with it).
void squared_distance_pair(const float* x, const double* a, const double* b, std::size_t d,
                           double out[2]) noexcept;
/// The rows of m converted to float64 (exact), row-major.
std::vector<double> widen_rows(MatrixView m);

struct AssignStats {
  double inertia = 0.0;      ///< sum of the float `distance` values, in float64, chunk order
  std::int64_t changed = 0;  ///< rows whose label differs from the one held on entry
  std::vector<double> chunk_inertia;  ///< per chunk of this process, for global_stats
};

/// Per-chunk inertia and change counts combined in chunk order (the order that makes the sum
/// the same at any thread count). Every assignment step ends with this.
AssignStats combine_chunk_stats(std::vector<double> chunk_inertia,
                                std::span<const std::int64_t> chunk_changed);

/// The stats over every process: chunk inertias gathered and folded in global chunk order (the
/// bits one process gets), change counts summed. The identity on one process.
AssignStats global_stats(const AssignStats& local, Reducer& reducer);

/// Nearest centre of every row of xc (same coordinates as `centroids`): score kernel per
/// block of kAssignBlockRows, argmin of ||c||^2 - 2 x.c (ties to the lowest index), then the
/// exact float64 distance of the chosen pair. With track_changes the labels held in
/// `assignment` on entry are compared against the new ones. With `summed`, each chunk is also
/// added to the cluster sums right after its labels are set. Local to this process.
class ClusterAccumulator;
AssignStats assign_rows(MatrixView xc, MatrixView centroids, std::span<std::int32_t> assignment,
                        std::span<float> distance, bool track_changes,
                        std::span<const float> weight = {}, ClusterAccumulator* summed = nullptr);

/// Per-cluster float64 coordinate sums (k x d, row-major) and counts.
struct ClusterSums {
  std::size_t k = 0;
  std::size_t d = 0;
  std::vector<double> sums;          ///< weighted when there are weights
  std::vector<std::int64_t> counts;  ///< rows (weights aside: a cluster is empty without rows)
  std::vector<double> weight_sums;   ///< k, sum of the members' weights; empty without weights
};

/// Fixed-point scales of the cluster moments: each summed value v is stored as the integer
/// nearest to v * scale, with scale a power of two chosen so that the largest |v| of the fit maps
/// below 2^50. That keeps 4096 rows' worth in an int64 and any number of rows in an int128, and
/// each value's error (2^-51 of the column's largest value) at the size of a float64 sum's own
/// rounding, whatever the magnitudes of the other columns.
struct MomentScales {
  std::vector<double> coord;  ///< per column, for w * x_t
  double norm = 1.0;          ///< for w * ||x||^2
  double weight = 1.0;        ///< for w (weighted fits)
  bool ready() const noexcept { return !coord.empty(); }
};

/// The scales for rows whose column_moments are `m` (from the largest magnitudes over every
/// process, so all of them quantize a row to the same integers); `weighted`: the rows carry
/// weights.
MomentScales moment_scales(const ColumnMoments& m, bool weighted);
/// The same from the rows xc with weights `weight` (empty = 1).
MomentScales moment_scales(MatrixView xc, std::span<const float> weight, Reducer& reducer);

/// Row order does not matter to an integer sum: rows can be added per chunk, per thread or per
/// process, and removed again when they change cluster, and the totals are the same bits as a
/// fresh sum. That lets a bounded step touch only the rows whose label changed.
#if defined(__SIZEOF_INT128__)
__extension__ typedef __int128 MomentInt;
__extension__ typedef unsigned __int128 MomentUint;
#else
#error "k-means moments need a 128-bit integer type (GCC or Clang)"
#endif

/// One chunk's moments (at most kReduceChunkRows rows) in int64: the wide sums are only
/// touched once per chunk.
struct ChunkMoments {
  std::vector<std::int64_t> coord;   ///< k x d
  std::vector<std::int64_t> norm;    ///< k
  std::vector<std::int64_t> weight;  ///< k (weighted fits)
  std::vector<std::int64_t> counts;  ///< k
  /// Zeroes the sums and adds rows [begin, end) of xc (end - begin <= kReduceChunkRows).
  /// `row_norm` (optional): quantized_norms of xc, used instead of recomputing each row's.
  void assign(MatrixView xc, std::span<const std::int32_t> labels, std::span<const float> w,
              std::size_t begin, std::size_t end, std::size_t k, const MomentScales& scales,
              std::span<const std::int64_t> row_norm = {});
};

/// Each row's integer for the moments' norm sum (w ||x||^2 in fixed point), as a chunk pass
/// adds it: the same for the whole fit, so the steps read it instead of recomputing a row's
/// float64 norm every step.
std::vector<std::int64_t> quantized_norms(MatrixView xc, std::span<const float> w,
                                          const MomentScales& scales);

/// Per-cluster sums of w x (k x d), w ||x||^2 and w, and member counts, in fixed point.
class ClusterMoments {
 public:
  ClusterMoments() = default;
  ClusterMoments(std::size_t k, std::size_t d, bool weighted);
  /// Adds (sign = +1) or removes (sign = -1) one row of cluster `label`.
  void add_row(std::size_t label, const float* x, float w, const MomentScales& scales, int sign);
  void add(const ChunkMoments& chunk);
  ClusterMoments& operator+=(const ClusterMoments& other);
  /// Sums over every process (exact, so in any order).
  void reduce(Reducer& reducer);
  /// The sums as float64 (each integer rounded once).
  ClusterSums sums(const MomentScales& scales) const;
  /// sum_j sum_(i in j) w_i ||x_i - c_j||^2 from the moments: Q_j - 2 c_j.S_j + W_j ||c_j||^2
  /// per cluster in 64-bit-mantissa (long double) arithmetic on the exact integer sums, clamped
  /// at 0. Unlike the per-row ||x||^2 - 2 x.c + ||c||^2 in float32, the operands are exact to
  /// 2^-51 of their largest value, so the cancellation costs log2(Q_j / inertia_j) of 64 bits.
  double inertia(MatrixView centres, const MomentScales& scales) const;

 private:
  /// Element-wise sums of another set of moments (int64 chunk sums or int128 totals).
  template <class Sums>
  void add_sums(const Sums& coord, const Sums& norm, const Sums& weight,
                const std::vector<std::int64_t>& counts);

  std::size_t k_ = 0;
  std::size_t d_ = 0;
  bool weighted_ = false;
  std::vector<MomentInt> coord_;
  std::vector<MomentInt> norm_;
  std::vector<MomentInt> weight_;
  std::vector<std::int64_t> counts_;
};

/// Cluster moments built chunk by chunk, so an assignment pass can add each chunk while its rows
/// are still in cache (one read of the data per step instead of two). Chunks are added in waves
/// of kUpdateWaveChunks: add_chunk for distinct chunks of one wave may run concurrently, then
/// fold_wave adds the wave on one thread. finish() sums over the processes.
class ClusterAccumulator {
 public:
  ClusterAccumulator(std::size_t n, std::size_t k, std::size_t d, std::span<const float> weight,
                     const MomentScales& scales, std::span<const std::int64_t> row_norm = {});
  std::size_t chunks() const noexcept { return chunks_; }
  void add_chunk(std::size_t ci, MatrixView xc, std::span<const std::int32_t> assignment);
  void fold_wave(std::size_t w0, std::size_t w1);
  const ClusterMoments& finish(Reducer& reducer);

 private:
  std::size_t k_;
  std::size_t chunks_;
  std::span<const float> weight_;
  const MomentScales& scales_;
  std::span<const std::int64_t> row_norm_;
  ClusterMoments total_;
  std::vector<ChunkMoments> parts_;  // one wave of chunk partials
};

/// The chunk loop of a pass that builds cluster sums, called by every thread of an OpenMP
/// parallel region: `chunk(ci)` once per chunk (dynamic schedule), in waves of
/// kUpdateWaveChunks; after each wave one thread folds it into `summed` (when given), so the
/// sums fold in chunk order whichever thread added which chunk. `chunk` adds its own chunk to
/// `summed` once its labels are final. A fold that throws is collected in `errors`.
template <class Chunk>
void chunk_waves(std::size_t chunks, ClusterAccumulator* summed, ExceptionCollector& errors,
                 Chunk chunk) {
  for (std::size_t w0 = 0; w0 < chunks; w0 += kUpdateWaveChunks) {
    const std::size_t w1 = std::min(chunks, w0 + kUpdateWaveChunks);
#pragma omp for schedule(dynamic, 1)
    for (std::ptrdiff_t ci = static_cast<std::ptrdiff_t>(w0); ci < static_cast<std::ptrdiff_t>(w1);
         ++ci) {
      chunk(static_cast<std::size_t>(ci));
    }
    if (summed != nullptr) {
#pragma omp single
      errors.run([&] { summed->fold_wave(w0, w1); });
    }
  }
}

/// Cluster sums of xc's rows (moments at scales taken from xc itself), over every process.
ClusterSums accumulate_clusters(MatrixView xc, std::span<const std::int32_t> assignment,
                                std::size_t k, Reducer& reducer,
                                std::span<const float> weight = {});

/// Gives every empty cluster the farthest remaining point (distance descending, ties to the
/// lowest row, each row used once, never emptying its donor cluster); updates sums, counts and
/// the moved rows' labels. Returns how many clusters were filled.
std::int64_t relocate_empty(MatrixView xc, std::span<std::int32_t> assignment,
                            std::span<const float> distance, ClusterSums& sums,
                            std::span<const float> weight = {});
/// relocate_empty over the rows of every process (gathered only when a cluster is empty, which
/// is rare), so the choice is the one a single process makes; updates this process's labels.
std::int64_t relocate_empty(MatrixView xc, std::span<std::int32_t> assignment,
                            std::span<const float> distance, ClusterSums& sums, Reducer& reducer,
                            std::span<const float> weight);

/// Means of the clusters; a cluster that is still empty keeps its previous centre.
Matrix centroids_from_sums(const ClusterSums& sums, const Matrix& previous);

/// sum_j ||new_j - old_j||^2, in float64 (0 exactly when nothing moved).
double centre_shift(const Matrix& previous, const Matrix& next) noexcept;

/// Mean over the columns of the (weighted) column variance of centred rows: the scale that
/// makes KMeansOptions::tol unit-free, as scikit-learn's _tolerance does. From the rows'
/// column_moments (the rows are centred, so the mean square is the variance).
double mean_feature_variance(const ColumnMoments& m) noexcept;
/// The same from the rows xc themselves.
double mean_feature_variance(MatrixView xc, Reducer& reducer, std::span<const float> weight);

/// State carried between Lloyd steps.
struct LloydState {
  Matrix centroids;                      ///< k x d, centred coordinates
  std::vector<std::int32_t> assignment;  ///< -1 before the first step
  std::vector<float> distance;
  std::span<const float> weight;  ///< per row (KMeansOptions::sample_weight); empty = 1
  MomentScales scales;            ///< of the fit; a step computes them when not ready()
  std::vector<std::int64_t> row_norm;  ///< quantized_norms under `scales` (ensure_scales)
};

/// state.scales, computed from xc on first use (kmeans_fit sets them once per fit), and
/// state.row_norm under them, computed on first use.
const MomentScales& ensure_scales(MatrixView xc, LloydState& state, Reducer& reducer);

/// Row i's contribution to the inertia: its distance, times its weight when there are weights.
/// One expression for every policy, so they all sum the same bits.
inline double weighted(std::span<const float> weight, std::size_t i, float dist) noexcept {
  return weight.empty() ? static_cast<double>(dist)
                        : static_cast<double>(weight[i]) * static_cast<double>(dist);
}

struct StepStats {
  double inertia = 0.0;  ///< of the assignment against the centres the step started from
  std::int64_t changed = 0;
  std::int64_t relocated = 0;
  double shift = 0.0;
};

/// One Lloyd iteration: assign against state.centroids, then replace them by the cluster means.
StepStats lloyd_step(MatrixView xc, LloydState& state, Reducer& reducer);

/// The update half of a step, from the moments of state.assignment over every process: the
/// inertia against the step's centres, empty-cluster relocation, new centres and their shift.
/// `changed` counts this process's relabelled rows. Relocation needs state.distance of every
/// row: a policy that does not keep it passes distances_current = false, and the rare step that
/// relocates computes them first.
StepStats finish_step(MatrixView xc, LloydState& state, std::int64_t changed,
                      const ClusterMoments& moments, Reducer& reducer,
                      bool distances_current = true);

/// One restart's fit: its Lloyd state at the end, the inertia of its final assignment and its
/// history. In memory and streamed fits alike.
struct RestartRun {
  LloydState state;
  double inertia = 0.0;
  int iterations = 0;
  bool converged = false;
  std::vector<KMeansIteration> history;
  int restart = 0;
};

/// The fit's result from its winning restart: centres moved back by the column means the fit
/// took off (`mean`), sizes counted over every process.
KMeansResult fit_result(RestartRun&& best, std::span<const double> mean, Reducer& reducer);

/// With init = file: Error unless options.initial_centroids are k x d and finite.
void check_initial_centroids(const KMeansOptions& options, std::size_t d);

/// The history entry of iteration `it` of `restart` from its step (seconds since `start`),
/// handed to options.on_iteration: the one record every fit's loop keeps.
KMeansIteration record_iteration(const StepStats& step, int it, int restart,
                                 std::chrono::steady_clock::time_point start,
                                 const KMeansOptions& options);

/// How one iteration is computed. Exact policies give the assignments assign_rows gives (the same
/// scores, ties to the lowest index), so every result bit equals Lloyd's; they differ in the
/// work they skip and in the per-row state (bounds) they carry between steps.
class StepPolicy {
 public:
  virtual ~StepPolicy() = default;
  virtual StepStats step(MatrixView xc, LloydState& state, Reducer& reducer) = 0;
};

std::unique_ptr<StepPolicy> make_lloyd_policy();
/// Bounds on the distances to a row's centre, its runner-up and the rest, the runner-up and the
/// row norm (20 bytes per row); Lloyd's steps until few rows change label.
std::unique_ptr<StepPolicy> make_hamerly_policy();
/// One float upper bound per row, one float lower bound per row and centre group
/// (4 * groups bytes) and the row norm; groups from clustering the initial centres.
std::unique_ptr<StepPolicy> make_yinyang_policy();
/// Centre groups Yinyang uses for k centres (k / 10, at least 1, as in Ding et al. 2015).
std::size_t yinyang_groups(std::size_t k) noexcept;

/// Bound on |score_j - (||x - c_j||^2 - ||x||^2)| for a row of norm `xnorm` and centres of norm
/// at most `cmax` (FMA chain of d terms, norm rounded to float, final subtraction), with a
/// factor 2 of slack. Bounded policies only skip a centre whose squared distance exceeds the
/// assigned one's by more than twice this, so the skipped centre's score is strictly larger.
inline double score_error(double xnorm, double cmax, std::size_t d) noexcept {
  constexpr double kUnit = 0x1.0p-24;
  return 2.0 * (static_cast<double>(d) + 4.0) * kUnit * (cmax * cmax + 2.0 * xnorm * cmax) +
         0x1.0p-50 * xnorm * xnorm;
}

/// Helpers shared by the bounded policies (kmeans_bounds.cpp). Bounds are on true Euclidean
/// distances in float64; each helper rounds in the safe direction.
struct BoundFrame {
  PackedCentres packed;
  double cmax = 0.0;         ///< max ||c_j||, rounded up
  std::vector<double> half;  ///< 0.5 * min over other centres of ||c_j - c_j'||, rounded down
};
BoundFrame make_bound_frame(MatrixView centroids);
/// ||next_j - prev_j|| per centre, rounded up.
std::vector<double> centre_moves(const Matrix& prev, const Matrix& next);
/// ||x_i|| per row, rounded up to float.
std::vector<float> row_norms(MatrixView xc);
/// ||x||^2 of one row in float64 (turns a row's scores back into squared distances).
double row_sq_norm(const float* x, std::size_t d) noexcept;

/// v rounded away from the value it bounds: up(v) >= the exact result of the float64 operation
/// that produced v (|error| <= 2^-52 |v|), of either sign; down(v) likewise <=.
inline double bound_up(double v) noexcept {
  return v + std::fabs(v) * 0x1.0p-40;
}
inline double bound_down(double v) noexcept {
  return v - std::fabs(v) * 0x1.0p-40;
}
/// Smallest float >= v and largest float <= v: bounds stored as floats stay bounds.
/// Called per row by the bounded steps, where half the roundings need the correction: it steps
/// the bit pattern instead of calling nextafter (finite values; 0 and +-inf never need it).
inline float float_up(double v) noexcept {
  const auto f = static_cast<float>(v);
  if (!(static_cast<double>(f) < v)) return f;
  auto bits = std::bit_cast<std::uint32_t>(f);
  bits = f > 0.0f ? bits + 1 : (f < 0.0f ? bits - 1 : 1u);  // -0 and +0: smallest subnormal
  return std::bit_cast<float>(bits);
}
inline float float_down(double v) noexcept {
  return -float_up(-v);
}
/// Upper bound on the distance to a centre of score s, for a row of squared norm xx.
inline double upper_from_score(double s, double xx, double err) noexcept {
  const double v = s + xx + err;
  return v > 0.0 ? bound_up(std::sqrt(v)) : 0.0;
}
/// Lower bound on the distance to a centre of score s, for a row of squared norm xx.
inline double lower_from_score(double s, double xx, double err) noexcept {
  const double v = s + xx - err;
  return v > 0.0 ? bound_down(std::sqrt(v)) : 0.0;
}

/// The rule behind KMeansAlgorithm::automatic (measured with bench_kmeans's BM_Fit and
/// scripts/bench-peers; see bench/results/kmeans.md).
KMeansAlgorithm resolve_algorithm(KMeansAlgorithm requested, std::size_t d, std::size_t k) noexcept;

/// Seed for restart `stream`: independent streams from one user seed (SplitMix64 mixing).
std::uint64_t derive_seed(std::uint64_t seed, std::uint64_t stream) noexcept;

/// The engine's only random source: mt19937_64 with our own bounded/uniform draws, because the
/// std distributions are not specified bit-for-bit across standard libraries.
class Rng {
 public:
  explicit Rng(std::uint64_t seed) : engine_(seed) {}
  /// Uniform in [0, n), n >= 1.
  std::uint64_t index(std::uint64_t n);
  /// Uniform in [0, 1) with 53 random bits.
  double uniform01();

 private:
  std::mt19937_64 engine_;
};

/// This process's rows in global numbering: [offset, offset + rows) of `total`.
struct RowSlice {
  std::size_t offset = 0;
  std::size_t total = 0;  ///< rows over every process
  bool holds(std::size_t row, std::size_t rows) const noexcept {
    return row >= offset && row < offset + rows;
  }
};
/// The slice of a process holding `rows` rows (chunk_rows_of over every process's rows).
RowSlice row_slice(std::size_t rows, Reducer& reducer);

/// Rows `global` (global numbers) of the data split between the processes, on every process: the
/// holder contributes the float bits, the others zeros, and an integer sum hands everyone the
/// same bits (a float sum would turn -0 into +0).
Matrix fetch_rows(MatrixView xc, std::span<const std::size_t> global, const RowSlice& slice,
                  Reducer& reducer);

/// k distinct rows drawn uniformly (Floyd's algorithm), in draw order. Several processes: drawn
/// from every process's rows, each process holding its run (chunk_rows_of).
Matrix init_random(MatrixView xc, int k, std::uint64_t seed, Reducer& reducer = local_reducer());

/// Greedy k-means++: 2 + floor(ln k) D^2-sampled candidates per centre, keeping the one that
/// lowers the potential most (ties to the first candidate).
/// Several processes: xc is this process's run of rows (chunk_rows_of); chunk sums and
/// potentials go through `reducer` in global chunk order and the drawn rows are shared, so every
/// process gets the centres one process picks from all the rows, without a copy of the data.
Matrix init_kmeanspp(MatrixView xc, int k, std::uint64_t seed, Reducer& reducer = local_reducer());

/// init_random and init_kmeanspp over rows read a block at a time (kmeans_fit_streamed), with
/// the bits of the in-memory versions on the same rows: k-means++ holds a float64 D^2 per row
/// and scans the rows twice per centre.
Matrix init_random(const RowBlocks& xc, int k, std::uint64_t seed);
Matrix init_kmeanspp(const RowBlocks& xc, int k, std::uint64_t seed);

/// Uniform in [0, 1) (53 bits) that depends only on (key, index): the SplitMix64 output at
/// position `index` of the stream keyed by `key`. Rows draw their own numbers, so the draws do
/// not depend on which thread visits which row.
double counter_uniform01(std::uint64_t key, std::uint64_t index) noexcept;

/// Rounds of k-means|| oversampling: Bahmani et al. report that 5 rounds of 2k samples already
/// match k-means++ seeding quality, and each round is one pass over the data.
inline constexpr int kParallelInitRounds = 5;

/// k-means|| (KMeansInit::kmeans_parallel): first centre uniform, then kParallelInitRounds rounds
/// keeping row i with probability min(1, 2k d2_i / phi) (counter-based uniform per row and
/// round), candidates weighted by the rows nearest to them, then weighted greedy k-means++ on
/// the candidates. Falls back to init_kmeanspp when fewer than k candidates come out.
Matrix init_kmeans_parallel(MatrixView xc, int k, std::uint64_t seed,
                            Reducer& reducer = local_reducer());

/// Greedy k-means++ on weighted points (serial: meant for the few thousand k-means|| candidates).
/// The first centre is drawn with probability proportional to weight, later ones by w * D^2.
Matrix init_kmeanspp_weighted(MatrixView points, std::span<const double> weight, int k,
                              std::uint64_t seed);

/// Rows per minibatch step for the options (0 = the default rule in KMeansOptions).
std::size_t minibatch_rows(const KMeansOptions& options, std::size_t n) noexcept;

/// Mini-batch k-means from state.centroids: steps of `minibatch_rows` rows drawn with
/// replacement (counter-based from `seed` and the step), assignment through assign_rows, then
/// every centre moves to the running mean of all points it was given (the per-centre-count
/// update of Sculley 2010 applied per centre in one go, which equals the point-by-point form).
/// Appends one KMeansIteration per step to `history`; returns whether it stopped on the
/// no-improvement rule. state.assignment/distance are left for the caller's final assignment.
bool minibatch_run(MatrixView xc, LloydState& state, const KMeansOptions& options, int restart,
                   std::uint64_t seed, Reducer& reducer, std::vector<KMeansIteration>& history);

}  // namespace icp::kmeans_detail
