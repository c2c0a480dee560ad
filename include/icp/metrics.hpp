// Clustering quality metrics for benchmarking segmentation runs: exact Calinski-Harabasz and
// Davies-Bouldin (from per-cluster sums), silhouette on a seeded sample, adjusted Rand index.
// Every definition follows scikit-learn's (sklearn.metrics, 1.2) so numbers can be compared.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "icp/matrix.hpp"
#include "icp/reduce.hpp"

namespace icp {

/// Exact scores of one labelling. Only non-empty clusters count (as in scikit-learn, which sees
/// only the labels present), and each cluster's centre is the mean of its rows, recomputed here
/// in float64 (not the k-means centroids, which may lag one update behind the labels).
struct ClusterQuality {
  int clusters = 0;      ///< non-empty clusters
  double within = 0.0;   ///< W = sum_i ||x_i - mu(l_i)||^2
  double between = 0.0;  ///< B = sum_c n_c ||mu_c - mu||^2
  /// (B / (c - 1)) / (W / (n - c)); 1 when W == 0 (scikit-learn's convention). NaN when the
  /// score is undefined (fewer than 2 or more than n - 1 non-empty clusters).
  double calinski_harabasz = 0.0;
  /// mean over clusters c of max_{c' != c} (s_c + s_c') / ||mu_c - mu_c'||, where s_c is the mean
  /// (unsquared) distance of c's rows to mu_c; pairs of coincident centres are skipped; 0 when
  /// every s_c or every centre distance is 0. NaN when fewer than 2 or more than n - 1 clusters.
  double davies_bouldin = 0.0;
};

/// Two passes over x in fixed chunks of kReduceChunkRows (per-cluster sums and counts, then
/// distances to the means), partials combined in chunk order and then through `reducer`: the
/// same bits at any thread count. Throws icp::Error for k < 1, a length mismatch or a label
/// outside 0..k-1.
ClusterQuality cluster_quality(MatrixView x, std::span<const std::int32_t> labels, int k,
                               Reducer& reducer = local_reducer());

/// Silhouette of a sample of rows, computed within the sample (scikit-learn's definition of
/// silhouette_score with sample_size: a(i) and b(i) are mean Euclidean distances to the other
/// sampled rows, not to the whole data). With the whole data as the sample it is the exact score.
struct SilhouetteEstimate {
  double mean = 0.0;  ///< mean per-row silhouette over the sample (NaN if undefined)
  /// Standard error of `mean`: sample standard deviation / sqrt(m). It treats the m per-row
  /// values as independent draws, which they are only approximately (they share the sample),
  /// so read it as the scale of the sampling noise, not as an exact confidence bound.
  double standard_error = 0.0;
  std::int64_t sample = 0;  ///< m, rows in the sample
};

/// Per-row silhouette (b - a) / max(a, b) of the rows `rows` of x, computed among those rows only;
/// 0 for a row alone in its cluster within the sample. Distances are Euclidean in float64 from
/// ||a||^2 + ||b||^2 - 2 a.b on the mean-centred sample (as scikit-learn computes them; about
/// 1e-13 relative error), in fixed row blocks, so the result does not depend on the thread count.
/// Throws icp::Error when fewer than 2 or more than m - 1 clusters occur among the rows, for an
/// index out of range, a label outside 0..k-1 or a length mismatch. O(m^2 d).
std::vector<double> silhouette_values(MatrixView x, std::span<const std::int32_t> labels, int k,
                                      std::span<const std::int64_t> rows);

/// Mean and standard error of silhouette_values over `rows`. NaN mean (and standard error) when
/// fewer than 2 or more than m - 1 clusters occur in the sample instead of throwing, so a sweep
/// row can still be reported.
SilhouetteEstimate silhouette(MatrixView x, std::span<const std::int32_t> labels, int k,
                              std::span<const std::int64_t> rows);

/// `m` distinct rows of 0..n-1 drawn uniformly from `seed` (partial Fisher-Yates on
/// std::mt19937_64), in draw order; all n rows in order 0..n-1 when m >= n.
std::vector<std::int64_t> sample_rows(std::int64_t n, std::int64_t m, std::uint64_t seed);

/// Sampled silhouette: silhouette() over sample_rows(n, sample_size, seed).
SilhouetteEstimate silhouette_sampled(MatrixView x, std::span<const std::int32_t> labels, int k,
                                      std::int64_t sample_size, std::uint64_t seed);

/// Adjusted Rand index of two labellings of the same rows (labels >= 0, any range): pair
/// counting as in scikit-learn's adjusted_rand_score, 1 for identical partitions (up to
/// renaming), about 0 for independent ones. 1 when both put every row in one cluster or every
/// row alone. Throws icp::Error for a length mismatch or a negative label.
double adjusted_rand_index(std::span<const std::int32_t> a, std::span<const std::int32_t> b);

}  // namespace icp
