// k-means|| seeding (Bahmani et al. 2012) and the weighted greedy k-means++ it finishes with.
// Every random choice is a function of (seed, round, row), so the candidates, their weights and
// the centres are the same bits at any thread count.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#include "icp/parallel.hpp"
#include "kmeans_internal.hpp"

namespace icp::kmeans_detail {

namespace {

constexpr std::uint64_t kGolden = 0x9E3779B97F4A7C15ULL;

std::uint64_t mix64(std::uint64_t z) noexcept {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

/// Streams of derive_seed() used here, apart from the restart streams (small integers).
constexpr std::uint64_t kStreamFirstCentre = 0x1000;
constexpr std::uint64_t kStreamRound = 0x2000;  // + round
constexpr std::uint64_t kStreamFinal = 0x3000;

/// Sum of v over fixed chunks of kReduceChunkRows, chunks of every process combined in global
/// chunk order.
double chunked_sum(const std::vector<double>& v, Reducer& reducer) {
  const std::size_t n = v.size();
  const std::size_t chunks = chunk_count(n);
  std::vector<double> part(chunks, 0.0);
#pragma omp parallel for schedule(static) if (chunks > 1)
  for (std::ptrdiff_t ci = 0; ci < static_cast<std::ptrdiff_t>(chunks); ++ci) {
    const std::size_t begin = static_cast<std::size_t>(ci) * kReduceChunkRows;
    const std::size_t end = std::min(n, begin + kReduceChunkRows);
    double s = 0.0;
    for (std::size_t i = begin; i < end; ++i) s += v[i];
    part[static_cast<std::size_t>(ci)] = s;
  }
  double total = 0.0;
  for (const double p : reducer.gather_chunks(std::move(part), 1)) total += p;
  return total;
}

/// For every row: the nearest of `centres` by the score kernel (ties to the lowest index), and
/// d2[i] = min(d2[i], exact distance to it). With `label` set, also stores the index.
void nearest_update(MatrixView xc, const Matrix& centres, std::vector<double>& d2,
                    std::vector<std::int32_t>* label) {
  const std::size_t n = xc.rows;
  const std::size_t d = xc.cols;
  const PackedCentres packed = pack_centres(centres.view());
  const std::size_t chunks = chunk_count(n);
  ExceptionCollector errors;
#pragma omp parallel if (chunks > 1)
  {
    std::vector<std::int32_t> best;
    bool ready = false;
    errors.run([&] {
      best.resize(kAssignBlockRows);
      ready = true;
    });
#pragma omp for schedule(dynamic, 1)
    for (std::ptrdiff_t ci = 0; ci < static_cast<std::ptrdiff_t>(chunks); ++ci) {
      if (!ready) continue;
      const std::size_t begin = static_cast<std::size_t>(ci) * kReduceChunkRows;
      const std::size_t end = std::min(n, begin + kReduceChunkRows);
      for (std::size_t b0 = begin; b0 < end; b0 += kAssignBlockRows) {
        const std::size_t rows = std::min(kAssignBlockRows, end - b0);
        argmin_rows(xc.row(b0), rows, d, packed, best.data());
        for (std::size_t r = 0; r < rows; ++r) {
          const std::size_t i = b0 + r;
          const auto j = static_cast<std::size_t>(best[r]);
          const double dist = squared_distance(xc.row(i), centres.row(j), d);
          if (dist < d2[i]) d2[i] = dist;
          if (label) (*label)[i] = best[r];
        }
      }
    }
  }
  errors.rethrow();
}

}  // namespace

double counter_uniform01(std::uint64_t key, std::uint64_t index) noexcept {
  return static_cast<double>(mix64(key + (index + 1) * kGolden) >> 11) * 0x1.0p-53;
}

Matrix init_kmeanspp_weighted(MatrixView points, std::span<const double> weight, int k,
                              std::uint64_t seed) {
  Rng rng(seed);
  const std::size_t m = points.rows;
  const std::size_t d = points.cols;
  const auto kk = static_cast<std::size_t>(k);
  Matrix out(kk, d);
  std::vector<char> chosen(m, 0);

  // Draws index i with probability w_i / sum(w), scanning in index order; rounding at the end
  // falls back to the last positive weight. Returns m when all weights are zero.
  auto draw = [&](const std::vector<double>& w) {
    double total = 0.0;
    for (const double v : w) total += v;
    if (!(total > 0.0)) return m;
    const double target = rng.uniform01() * total;
    double acc = 0.0;
    std::size_t last = m;
    for (std::size_t i = 0; i < m; ++i) {
      if (w[i] <= 0.0) continue;
      acc += w[i];
      last = i;
      if (acc > target) return i;
    }
    return last;
  };
  auto first_unchosen = [&]() {
    std::size_t r = 0;
    while (r < m && chosen[r]) ++r;
    return r < m ? r : 0;
  };

  std::vector<double> w(weight.begin(), weight.end());
  std::size_t first = draw(w);
  if (first == m) first = 0;
  std::copy(points.row(first), points.row(first) + d, out.row(0));
  chosen[first] = 1;

  std::vector<double> d2(m);
  for (std::size_t i = 0; i < m; ++i) d2[i] = squared_distance(points.row(i), out.row(0), d);
  const std::size_t trials = 2 + static_cast<std::size_t>(std::floor(std::log(k)));
  std::vector<std::size_t> candidate(trials);
  std::vector<double> wd2(m);
  for (std::size_t slot = 1; slot < kk; ++slot) {
    for (std::size_t i = 0; i < m; ++i) wd2[i] = weight[i] * d2[i];
    for (std::size_t t = 0; t < trials; ++t) {
      const std::size_t c = draw(wd2);
      // No weighted potential left (fewer distinct weighted points than k): take unused rows
      // so the centres stay distinct candidates.
      candidate[t] = c == m ? first_unchosen() : c;
    }
    std::size_t best = candidate[0];
    double best_potential = std::numeric_limits<double>::infinity();
    for (std::size_t t = 0; t < trials; ++t) {
      const float* c = points.row(candidate[t]);
      double potential = 0.0;
      for (std::size_t i = 0; i < m; ++i) {
        potential += weight[i] * std::min(d2[i], squared_distance(points.row(i), c, d));
      }
      if (potential < best_potential) {
        best_potential = potential;
        best = candidate[t];
      }
    }
    std::copy(points.row(best), points.row(best) + d, out.row(slot));
    chosen[best] = 1;
    for (std::size_t i = 0; i < m; ++i) {
      d2[i] = std::min(d2[i], squared_distance(points.row(i), out.row(slot), d));
    }
  }
  return out;
}

Matrix init_kmeans_parallel(MatrixView xc, int k, std::uint64_t seed, Reducer& reducer) {
  const std::size_t n = xc.rows;
  const auto kk = static_cast<std::size_t>(k);
  // Oversampling factor l = 2k, as in the paper's experiments: ~2k * rounds candidates.
  const double oversample = 2.0 * static_cast<double>(k);
  // Several processes: rows are numbered globally, every draw is keyed by the global number,
  // and each round's picks are gathered in rank (so row) order, so all processes hold the
  // candidates one process picks, without a copy of the data.
  const RowSlice slice = row_slice(n, reducer);

  std::vector<std::size_t> picked;  // global row numbers
  std::vector<char> is_picked(n, 0);
  {
    Rng rng(derive_seed(seed, kStreamFirstCentre));
    picked.push_back(static_cast<std::size_t>(rng.index(slice.total)));
    if (slice.holds(picked[0], n)) is_picked[picked[0] - slice.offset] = 1;
  }
  const Matrix first_centre = fetch_rows(xc, picked, slice, reducer);
  std::vector<double> d2(n, std::numeric_limits<double>::infinity());
  nearest_update(xc, first_centre, d2, nullptr);

  for (int round = 0; round < kParallelInitRounds; ++round) {
    const double phi = chunked_sum(d2, reducer);
    if (!(phi > 0.0)) break;  // every row sits on a candidate
    const std::uint64_t key = derive_seed(seed, kStreamRound + static_cast<std::uint64_t>(round));
    const double scale = oversample / phi;
    std::vector<double> mine;  // global row numbers (exact in a double below 2^53)
    // Draws are per row, so scanning in row order gives the same picks as any parallel split;
    // the scan is cheap next to the distance pass below.
    for (std::size_t i = 0; i < n; ++i) {
      if (is_picked[i] || d2[i] <= 0.0) continue;
      const std::size_t global = slice.offset + i;
      if (counter_uniform01(key, global) < scale * d2[i]) {
        mine.push_back(static_cast<double>(global));
        is_picked[i] = 1;
      }
    }
    const std::vector<double> all = reducer.gather(std::span<const double>(mine));
    if (all.empty()) continue;
    std::vector<std::size_t> fresh(all.size());
    for (std::size_t j = 0; j < all.size(); ++j) fresh[j] = static_cast<std::size_t>(all[j]);
    picked.insert(picked.end(), fresh.begin(), fresh.end());
    nearest_update(xc, fetch_rows(xc, fresh, slice, reducer), d2, nullptr);
  }

  if (picked.size() < kk) return init_kmeanspp(xc, k, seed, reducer);

  const std::size_t m = picked.size();
  const Matrix candidates = fetch_rows(xc, picked, slice, reducer);
  std::vector<std::int32_t> label(n, 0);
  std::fill(d2.begin(), d2.end(), std::numeric_limits<double>::infinity());
  nearest_update(xc, candidates, d2, &label);
  // Rows nearest to each candidate, over every process: integer counts sum exactly.
  std::vector<std::int64_t> count(m, 0);
  for (const std::int32_t j : label) ++count[static_cast<std::size_t>(j)];
  reducer.sum(std::span<std::int64_t>(count));
  const std::vector<double> weight(count.begin(), count.end());
  return init_kmeanspp_weighted(candidates.view(), weight, k, derive_seed(seed, kStreamFinal));
}

}  // namespace icp::kmeans_detail
