// Pieces of k-means shared by the fit driver, the tests and the benchmark. Not installed.
// The fit is validate -> centre -> init -> repeat lloyd_step -> finalize; a faster assignment
// policy (Hamerly, Yinyang) replaces assign_rows inside lloyd_step, mini-batch replaces the step.
#pragma once

#include <cstddef>
#include <cstdint>
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

/// Throws icp::Error for k out of range, zero columns or a non-finite value (1-based position).
void validate_data(MatrixView x, int k);
void validate_options(const KMeansOptions& options);

/// Column means in float64 (fixed chunks, chunk-order combine, then reducer.sum).
std::vector<double> column_means(MatrixView x, Reducer& reducer);

/// float32 copy of x with `offset` (one value per column) subtracted in float64.
Matrix centre_rows(MatrixView x, std::span<const double> offset);

/// Exact squared distance sum (a - b)^2 in float64, in a fixed summation order.
double squared_distance(const float* a, const float* b, std::size_t d) noexcept;

struct AssignStats {
  double inertia = 0.0;      ///< sum of the float `distance` values, in float64, chunk order
  std::int64_t changed = 0;  ///< rows whose label differs from the one held on entry
};

/// Nearest centre of every row of xc (same coordinates as `centroids`): Eigen float product per
/// block of kAssignBlockRows, argmin of ||c||^2 - 2 x.c (ties to the lowest index), then the
/// exact float64 distance of the chosen pair. With track_changes the labels held in
/// `assignment` on entry are compared against the new ones. Local to this process.
AssignStats assign_rows(MatrixView xc, MatrixView centroids, std::span<std::int32_t> assignment,
                        std::span<float> distance, bool track_changes);

/// Per-cluster float64 coordinate sums (k x d, row-major) and counts.
struct ClusterSums {
  std::size_t k = 0;
  std::size_t d = 0;
  std::vector<double> sums;
  std::vector<std::int64_t> counts;
};

/// Sums over fixed chunks of kReduceChunkRows rows, folded in chunk order, then reducer.sum.
ClusterSums accumulate_clusters(MatrixView xc, std::span<const std::int32_t> assignment,
                                std::size_t k, Reducer& reducer);

/// Gives every empty cluster the farthest remaining point (distance descending, ties to the
/// lowest row, each row used once, never emptying its donor cluster); updates sums, counts and
/// the moved rows' labels. Returns how many clusters were filled.
std::int64_t relocate_empty(MatrixView xc, std::span<std::int32_t> assignment,
                            std::span<const float> distance, ClusterSums& sums);

/// Means of the clusters; a cluster that is still empty keeps its previous centre.
Matrix centroids_from_sums(const ClusterSums& sums, const Matrix& previous);

/// sum ||new - old||^2 / sum ||old||^2; 0 when nothing moved, +inf when old is all zeros.
double relative_shift(const Matrix& previous, const Matrix& next) noexcept;

/// State carried between Lloyd steps.
struct LloydState {
  Matrix centroids;                      ///< k x d, centred coordinates
  std::vector<std::int32_t> assignment;  ///< -1 before the first step
  std::vector<float> distance;
};

struct StepStats {
  double inertia = 0.0;  ///< of the assignment against the centres the step started from
  std::int64_t changed = 0;
  std::int64_t relocated = 0;
  double shift = 0.0;
};

/// One Lloyd iteration: assign against state.centroids, then replace them by the cluster means.
StepStats lloyd_step(MatrixView xc, LloydState& state, Reducer& reducer);

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

/// k distinct rows drawn uniformly (Floyd's algorithm), in draw order.
Matrix init_random(MatrixView xc, int k, std::uint64_t seed);

/// Greedy k-means++: 2 + floor(ln k) D^2-sampled candidates per centre, keeping the one that
/// lowers the potential most (ties to the first candidate).
Matrix init_kmeanspp(MatrixView xc, int k, std::uint64_t seed);

}  // namespace icp::kmeans_detail
