// Clustering quality metrics. Definitions follow scikit-learn 1.2 (sklearn.metrics) so that the
// numbers can be checked against it; the computation is ours: fixed chunks, float64 partials
// combined in chunk order, so every score has the same bits at any thread count.
#include "icp/metrics.hpp"

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>
#include <random>
#include <string>
#include <utility>

#include "icp/error.hpp"
#include "icp/parallel.hpp"

namespace icp {

namespace {

/// Chunks whose per-cluster partial sums (k x d doubles each) are held at once. Bounds scratch
/// memory at 64 k d doubles (8 MiB at k = 256, d = 64) instead of one block per chunk of the
/// whole data, yet leaves dozens of chunks per wave to balance threads; waves are folded in
/// chunk order, so the wave size changes no bit of the result.
constexpr std::size_t kWaveChunks = 64;

/// Largest dense contingency table (cells) for the adjusted Rand index; label ranges beyond it
/// (sparse or huge label values) fall back to an ordered map of the occupied cells.
constexpr std::size_t kDenseContingencyCells = std::size_t{1} << 22;

/// scikit-learn tests "all zero" with np.allclose(v, 0), i.e. |v| <= 1e-8.
constexpr double kAllCloseAtol = 1e-8;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

using RowMatrixD = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// Sample rows per distance block of the silhouette: 64 x 10,000 float64 products (5 MiB at the
/// default sample) per thread, tall enough for Eigen's GEMM micro-kernel, and m / 64 blocks
/// (157 at the default) to balance threads. Fixed, so the blocks never depend on the threads.
constexpr std::size_t kSilhouetteBlockRows = 64;

void check_labels(std::span<const std::int32_t> labels, std::size_t n, int k, const char* what) {
  if (k < 1) throw Error(std::string(what) + ": k must be at least 1, found " + std::to_string(k));
  if (labels.size() != n)
    throw Error(std::string(what) + ": " + std::to_string(labels.size()) + " labels for " +
                std::to_string(n) + " rows");
  for (std::size_t i = 0; i < n; ++i) {
    if (labels[i] < 0 || labels[i] >= k)
      throw Error(std::string(what) + ": label " + std::to_string(labels[i]) + " of row " +
                  std::to_string(i) + " is outside 0.." + std::to_string(k - 1));
  }
}

/// Uniform integer in [0, range) by rejection (draws below 2^64 mod range are redrawn, so every
/// residue is equally likely): portable, unlike std::uniform_int_distribution, whose algorithm
/// differs between standard libraries.
std::uint64_t below(std::mt19937_64& rng, std::uint64_t range) {
  const std::uint64_t reject_below = (0 - range) % range;
  for (;;) {
    const std::uint64_t r = rng();
    if (r >= reject_below) return r % range;
  }
}

}  // namespace

ClusterQuality cluster_quality(MatrixView x, std::span<const std::int32_t> labels, int k,
                               Reducer& reducer) {
  const std::size_t n = x.rows, d = x.cols;
  check_labels(labels, n, k, "cluster_quality");
  const auto ku = static_cast<std::size_t>(k);
  const std::size_t chunks = chunk_count(n);

  // Pass 1: per-cluster coordinate sums and counts.
  std::vector<double> sums(ku * d, 0.0);
  std::vector<std::int64_t> counts(ku, 0);
  {
    const std::size_t block = ku * d;
    std::vector<double> part(std::min(chunks, kWaveChunks) * block);
    std::vector<std::int64_t> part_n(std::min(chunks, kWaveChunks) * ku);
    for (std::size_t w0 = 0; w0 < chunks; w0 += kWaveChunks) {
      const std::size_t w1 = std::min(chunks, w0 + kWaveChunks);
      const auto wave = static_cast<std::int64_t>(w1 - w0);
#pragma omp parallel for schedule(dynamic)
      for (std::int64_t cw = 0; cw < wave; ++cw) {
        const auto c = static_cast<std::size_t>(cw);
        double* s = part.data() + c * block;
        std::int64_t* cnt = part_n.data() + c * ku;
        std::fill(s, s + block, 0.0);
        std::fill(cnt, cnt + ku, 0);
        const std::size_t r0 = (w0 + c) * kReduceChunkRows;
        const std::size_t r1 = std::min(n, r0 + kReduceChunkRows);
        for (std::size_t i = r0; i < r1; ++i) {
          const auto l = static_cast<std::size_t>(labels[i]);
          const float* xi = x.row(i);
          double* sl = s + l * d;
          for (std::size_t j = 0; j < d; ++j) sl[j] += static_cast<double>(xi[j]);
          ++cnt[l];
        }
      }
      for (std::size_t c = 0; c < w1 - w0; ++c) {
        for (std::size_t e = 0; e < block; ++e) sums[e] += part[c * block + e];
        for (std::size_t l = 0; l < ku; ++l) counts[l] += part_n[c * ku + l];
      }
    }
  }
  reducer.sum(sums);
  reducer.sum(counts);

  std::int64_t total = 0;
  int clusters = 0;
  for (auto c : counts) {
    total += c;
    clusters += c > 0 ? 1 : 0;
  }
  std::vector<double> means(ku * d, 0.0), grand(d, 0.0);
  for (std::size_t l = 0; l < ku; ++l) {
    for (std::size_t j = 0; j < d; ++j) {
      grand[j] += sums[l * d + j];
      if (counts[l] > 0) means[l * d + j] = sums[l * d + j] / static_cast<double>(counts[l]);
    }
  }
  for (std::size_t j = 0; j < d; ++j)
    grand[j] = total > 0 ? grand[j] / static_cast<double>(total) : 0.0;

  // Pass 2: squared and unsquared distances of every row to its cluster mean.
  std::vector<double> sq(ku, 0.0), dist(ku, 0.0);
  {
    std::vector<double> part(chunks * 2 * ku, 0.0);
#pragma omp parallel for schedule(dynamic)
    for (std::int64_t cc = 0; cc < static_cast<std::int64_t>(chunks); ++cc) {
      const auto c = static_cast<std::size_t>(cc);
      double* psq = part.data() + c * 2 * ku;
      double* pd = psq + ku;
      const std::size_t r0 = c * kReduceChunkRows;
      const std::size_t r1 = std::min(n, r0 + kReduceChunkRows);
      for (std::size_t i = r0; i < r1; ++i) {
        const auto l = static_cast<std::size_t>(labels[i]);
        const float* xi = x.row(i);
        const double* m = means.data() + l * d;
        double s = 0.0;
        for (std::size_t j = 0; j < d; ++j) {
          const double t = static_cast<double>(xi[j]) - m[j];
          s += t * t;
        }
        psq[l] += s;
        pd[l] += std::sqrt(s);
      }
    }
    for (std::size_t c = 0; c < chunks; ++c) {
      for (std::size_t l = 0; l < ku; ++l) {
        sq[l] += part[c * 2 * ku + l];
        dist[l] += part[c * 2 * ku + ku + l];
      }
    }
  }
  reducer.sum(sq);
  reducer.sum(dist);

  ClusterQuality q;
  q.clusters = clusters;
  for (std::size_t l = 0; l < ku; ++l) {
    q.within += sq[l];
    if (counts[l] == 0) continue;
    double b = 0.0;
    for (std::size_t j = 0; j < d; ++j) {
      const double t = means[l * d + j] - grand[j];
      b += t * t;
    }
    q.between += static_cast<double>(counts[l]) * b;
  }
  if (clusters < 2 || clusters > total - 1) {
    q.calinski_harabasz = kNaN;
    q.davies_bouldin = kNaN;
    return q;
  }
  const auto c = static_cast<double>(clusters);
  q.calinski_harabasz =
      q.within == 0.0 ? 1.0 : q.between * (static_cast<double>(total) - c) / (q.within * (c - 1.0));

  std::vector<std::size_t> present;
  std::vector<double> spread;
  for (std::size_t l = 0; l < ku; ++l) {
    if (counts[l] == 0) continue;
    present.push_back(l);
    spread.push_back(dist[l] / static_cast<double>(counts[l]));
  }
  const std::size_t p = present.size();
  std::vector<double> centre_dist(p * p, 0.0);
  bool any_spread = false, any_dist = false;
  for (double s : spread) any_spread = any_spread || std::abs(s) > kAllCloseAtol;
  for (std::size_t a = 0; a < p; ++a) {
    for (std::size_t b = 0; b < p; ++b) {
      double s = 0.0;
      for (std::size_t j = 0; j < d; ++j) {
        const double t = means[present[a] * d + j] - means[present[b] * d + j];
        s += t * t;
      }
      centre_dist[a * p + b] = std::sqrt(s);
      any_dist = any_dist || centre_dist[a * p + b] > kAllCloseAtol;
    }
  }
  if (!any_spread || !any_dist) {
    q.davies_bouldin = 0.0;
    return q;
  }
  double db = 0.0;
  for (std::size_t a = 0; a < p; ++a) {
    double worst = 0.0;
    for (std::size_t b = 0; b < p; ++b) {
      const double cd = centre_dist[a * p + b];
      if (b == a || cd == 0.0) continue;  // scikit-learn sets zero centre distances to inf
      worst = std::max(worst, (spread[a] + spread[b]) / cd);
    }
    db += worst;
  }
  q.davies_bouldin = db / static_cast<double>(p);
  return q;
}

std::vector<double> silhouette_values(MatrixView x, std::span<const std::int32_t> labels, int k,
                                      std::span<const std::int64_t> rows) {
  const std::size_t n = x.rows, d = x.cols, m = rows.size();
  if (k < 1) throw Error("silhouette: k must be at least 1, found " + std::to_string(k));
  if (labels.size() != n)
    throw Error("silhouette: " + std::to_string(labels.size()) + " labels for " +
                std::to_string(n) + " rows");
  const auto ku = static_cast<std::size_t>(k);
  const auto mi = static_cast<Eigen::Index>(m), di = static_cast<Eigen::Index>(d);
  RowMatrixD s(mi, di);
  std::vector<std::int32_t> lab(m);
  std::vector<std::int64_t> count(ku, 0);
  for (std::size_t j = 0; j < m; ++j) {
    if (rows[j] < 0 || static_cast<std::size_t>(rows[j]) >= n)
      throw Error("silhouette: sample row " + std::to_string(rows[j]) + " is outside 0.." +
                  std::to_string(static_cast<std::int64_t>(n) - 1));
    const auto r = static_cast<std::size_t>(rows[j]);
    if (labels[r] < 0 || labels[r] >= k)
      throw Error("silhouette: label " + std::to_string(labels[r]) + " of row " +
                  std::to_string(r) + " is outside 0.." + std::to_string(k - 1));
    lab[j] = labels[r];
    ++count[static_cast<std::size_t>(lab[j])];
    for (std::size_t c = 0; c < d; ++c)
      s(static_cast<Eigen::Index>(j), static_cast<Eigen::Index>(c)) = static_cast<double>(x(r, c));
  }
  const auto present = std::count_if(count.begin(), count.end(), [](auto c) { return c > 0; });
  if (present < 2 || present > static_cast<std::int64_t>(m) - 1)
    throw Error("silhouette: needs 2 to m - 1 clusters among the m = " + std::to_string(m) +
                " sampled rows, found " + std::to_string(present));

  // Distances as ||a||^2 + ||b||^2 - 2 a.b in float64 (as scikit-learn computes them), one
  // matrix product per block of rows. Centring the sample first keeps the norms small next to
  // the distances, so the cancellation costs about 1e-13 relative instead of digits.
  const Eigen::RowVectorXd centre = s.colwise().mean();
  s.rowwise() -= centre;
  const Eigen::VectorXd norm = s.rowwise().squaredNorm();

  std::vector<double> out(m, 0.0);
  const std::size_t blocks = (m + kSilhouetteBlockRows - 1) / kSilhouetteBlockRows;
  ExceptionCollector errors;
#pragma omp parallel
  {
    RowMatrixD g;
    std::vector<double> csum(ku);
#pragma omp for schedule(dynamic)
    for (std::int64_t bb = 0; bb < static_cast<std::int64_t>(blocks); ++bb) {
      errors.run([&] {
        const std::size_t r0 = static_cast<std::size_t>(bb) * kSilhouetteBlockRows;
        const std::size_t rb = std::min(kSilhouetteBlockRows, m - r0);
        const auto r0i = static_cast<Eigen::Index>(r0), rbi = static_cast<Eigen::Index>(rb);
        // Inside a parallel region Eigen runs the product on this thread only, and the block
        // partition is fixed, so every product has the same bits at any thread count.
        g.noalias() = s.middleRows(r0i, rbi) * s.transpose();
        for (std::size_t bi = 0; bi < rb; ++bi) {
          const std::size_t i = r0 + bi;
          std::fill(csum.begin(), csum.end(), 0.0);
          const double ni = norm(static_cast<Eigen::Index>(i));
          const double* gi = g.data() + bi * m;
          for (std::size_t j = 0; j < m; ++j) {
            if (j == i) continue;
            const double d2 = ni + norm(static_cast<Eigen::Index>(j)) - 2.0 * gi[j];
            csum[static_cast<std::size_t>(lab[j])] += std::sqrt(std::max(d2, 0.0));
          }
          const auto own = static_cast<std::size_t>(lab[i]);
          if (count[own] < 2) continue;  // alone in its cluster: 0 by definition
          const double a = csum[own] / static_cast<double>(count[own] - 1);
          double b = std::numeric_limits<double>::infinity();
          for (std::size_t c = 0; c < ku; ++c) {
            if (c == own || count[c] == 0) continue;
            b = std::min(b, csum[c] / static_cast<double>(count[c]));
          }
          const double denom = std::max(a, b);
          out[i] = denom > 0.0 ? (b - a) / denom : 0.0;
        }
      });
    }
  }
  errors.rethrow();
  return out;
}

SilhouetteEstimate silhouette(MatrixView x, std::span<const std::int32_t> labels, int k,
                              std::span<const std::int64_t> rows) {
  SilhouetteEstimate e;
  e.sample = static_cast<std::int64_t>(rows.size());
  // Undefined cases become NaN here (a sweep row stays reportable); bad inputs still throw.
  std::vector<std::int64_t> count(static_cast<std::size_t>(std::max(k, 1)), 0);
  for (auto r : rows) {
    if (r < 0 || static_cast<std::size_t>(r) >= labels.size()) continue;
    const std::int32_t l = labels[static_cast<std::size_t>(r)];
    if (l >= 0 && l < k) ++count[static_cast<std::size_t>(l)];
  }
  const auto present = std::count_if(count.begin(), count.end(), [](auto c) { return c > 0; });
  if (k >= 1 && labels.size() == x.rows && (present < 2 || present > e.sample - 1)) {
    e.mean = kNaN;
    e.standard_error = kNaN;
    return e;
  }
  const std::vector<double> s = silhouette_values(x, labels, k, rows);
  const auto m = static_cast<double>(s.size());
  double sum = 0.0;
  for (double v : s) sum += v;
  e.mean = sum / m;
  double ss = 0.0;
  for (double v : s) ss += (v - e.mean) * (v - e.mean);
  e.standard_error = s.size() > 1 ? std::sqrt(ss / (m - 1.0)) / std::sqrt(m) : kNaN;
  return e;
}

std::vector<std::int64_t> sample_rows(std::int64_t n, std::int64_t m, std::uint64_t seed) {
  if (n < 0 || m < 0) throw Error("sample_rows: negative size");
  std::vector<std::int64_t> idx(static_cast<std::size_t>(n));
  std::iota(idx.begin(), idx.end(), std::int64_t{0});
  if (m >= n) return idx;
  std::mt19937_64 rng(seed);
  for (std::int64_t i = 0; i < m; ++i) {
    const auto j = i + static_cast<std::int64_t>(below(rng, static_cast<std::uint64_t>(n - i)));
    std::swap(idx[static_cast<std::size_t>(i)], idx[static_cast<std::size_t>(j)]);
  }
  idx.resize(static_cast<std::size_t>(m));
  return idx;
}

SilhouetteEstimate silhouette_sampled(MatrixView x, std::span<const std::int32_t> labels, int k,
                                      std::int64_t sample_size, std::uint64_t seed) {
  const auto rows = sample_rows(static_cast<std::int64_t>(x.rows), sample_size, seed);
  return silhouette(x, labels, k, rows);
}

double adjusted_rand_index(std::span<const std::int32_t> a, std::span<const std::int32_t> b) {
  if (a.size() != b.size())
    throw Error("adjusted_rand_index: labellings of " + std::to_string(a.size()) + " and " +
                std::to_string(b.size()) + " rows");
  const std::size_t n = a.size();
  std::int64_t ka = 0, kb = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (a[i] < 0 || b[i] < 0)
      throw Error("adjusted_rand_index: negative label at row " + std::to_string(i));
    ka = std::max<std::int64_t>(ka, a[i] + 1);
    kb = std::max<std::int64_t>(kb, b[i] + 1);
  }
  // Pair counts stay exact in int64 up to n ~ 3e9 (they are at most n^2).
  std::vector<std::int64_t> row_sum(static_cast<std::size_t>(ka), 0),
      col_sum(static_cast<std::size_t>(kb), 0);
  std::int64_t sum_sq = 0;
  if (static_cast<std::size_t>(ka) * static_cast<std::size_t>(kb) <= kDenseContingencyCells) {
    std::vector<std::int64_t> cell(static_cast<std::size_t>(ka * kb), 0);
    for (std::size_t i = 0; i < n; ++i) ++cell[static_cast<std::size_t>(a[i] * kb + b[i])];
    for (auto v : cell) sum_sq += v * v;
  } else {
    std::map<std::pair<std::int32_t, std::int32_t>, std::int64_t> cell;
    for (std::size_t i = 0; i < n; ++i) ++cell[{a[i], b[i]}];
    for (const auto& [key, v] : cell) sum_sq += v * v;
  }
  for (std::size_t i = 0; i < n; ++i) {
    ++row_sum[static_cast<std::size_t>(a[i])];
    ++col_sum[static_cast<std::size_t>(b[i])];
  }
  std::int64_t rows_sq = 0, cols_sq = 0;
  for (auto v : row_sum) rows_sq += v * v;
  for (auto v : col_sum) cols_sq += v * v;
  const auto nn = static_cast<std::int64_t>(n);
  // scikit-learn's pair confusion matrix (ordered pairs).
  const std::int64_t tp = sum_sq - nn;
  const std::int64_t fp = cols_sq - sum_sq;
  const std::int64_t fn = rows_sq - sum_sq;
  const std::int64_t tn = nn * nn - fp - fn - sum_sq;
  if (fn == 0 && fp == 0) return 1.0;
  const long double num = 2.0L * (static_cast<long double>(tp) * static_cast<long double>(tn) -
                                  static_cast<long double>(fn) * static_cast<long double>(fp));
  const long double den = static_cast<long double>(tp + fn) * static_cast<long double>(fn + tn) +
                          static_cast<long double>(tp + fp) * static_cast<long double>(fp + tn);
  return static_cast<double>(num / den);
}

}  // namespace icp
