// Initial centres: greedy k-means++ and uniform random rows, reproducible at any thread count.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <unordered_set>
#include <vector>

#include "kmeans_internal.hpp"

namespace icp::kmeans_detail {

namespace {

std::uint64_t splitmix64(std::uint64_t x) noexcept {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

void copy_row(MatrixView x, std::size_t row, Matrix& out, std::size_t slot) {
  std::copy(x.row(row), x.row(row) + x.cols, out.row(slot));
}

/// Per-chunk sums of d2 (each chunk summed in row order) for the D^2 sampling.
void chunk_sums(std::span<const double> d2, std::vector<double>& sums) {
  const std::size_t n = d2.size();
#pragma omp parallel for schedule(static) if (sums.size() > 1)
  for (std::ptrdiff_t ci = 0; ci < static_cast<std::ptrdiff_t>(sums.size()); ++ci) {
    const std::size_t begin = static_cast<std::size_t>(ci) * kReduceChunkRows;
    const std::size_t end = std::min(n, begin + kReduceChunkRows);
    double s = 0.0;
    for (std::size_t i = begin; i < end; ++i) s += d2[i];
    sums[static_cast<std::size_t>(ci)] = s;
  }
}

/// The row whose D^2 prefix interval contains `target` (0 <= target < total). Prefix sums run in
/// chunk order, then row order inside the chunk, matching how `total` was formed; rounding at
/// the very end falls back to the last row with positive weight.
std::size_t sample_row(std::span<const double> d2, const std::vector<double>& sums, double target) {
  const std::size_t n = d2.size();
  std::size_t chunk = sums.size();
  double before = 0.0;
  for (std::size_t ci = 0; ci < sums.size(); ++ci) {
    if (sums[ci] > 0.0 && before + sums[ci] > target) {
      chunk = ci;
      break;
    }
    before += sums[ci];
  }
  if (chunk == sums.size()) {
    for (std::size_t ci = sums.size(); ci-- > 0;) {
      if (sums[ci] > 0.0) {
        chunk = ci;
        break;
      }
    }
  }
  const std::size_t begin = chunk * kReduceChunkRows;
  const std::size_t end = std::min(n, begin + kReduceChunkRows);
  double acc = before;
  std::size_t last_positive = begin;
  for (std::size_t i = begin; i < end; ++i) {
    if (d2[i] <= 0.0) continue;
    acc += d2[i];
    last_positive = i;
    if (acc > target) return i;
  }
  return last_positive;
}

}  // namespace

std::uint64_t derive_seed(std::uint64_t seed, std::uint64_t stream) noexcept {
  return splitmix64(seed ^ splitmix64(stream + 0x6A09E667F3BCC909ULL));
}

std::uint64_t Rng::index(std::uint64_t n) {
  // Rejection of the top partial block keeps the draw exactly uniform.
  const std::uint64_t limit =
      std::numeric_limits<std::uint64_t>::max() - std::numeric_limits<std::uint64_t>::max() % n;
  std::uint64_t r = engine_();
  while (r >= limit) r = engine_();
  return r % n;
}

double Rng::uniform01() {
  return static_cast<double>(engine_() >> 11) * 0x1.0p-53;
}

Matrix init_random(MatrixView xc, int k, std::uint64_t seed) {
  Rng rng(seed);
  const auto n = static_cast<std::uint64_t>(xc.rows);
  const auto kk = static_cast<std::uint64_t>(k);
  Matrix out(static_cast<std::size_t>(k), xc.cols);
  std::unordered_set<std::uint64_t> taken;
  std::size_t slot = 0;
  // Floyd's algorithm: k distinct indices from k draws, no O(n) shuffle.
  for (std::uint64_t j = n - kk; j < n; ++j) {
    const std::uint64_t t = rng.index(j + 1);
    const std::uint64_t pick = taken.count(t) ? j : t;
    taken.insert(pick);
    copy_row(xc, static_cast<std::size_t>(pick), out, slot++);
  }
  return out;
}

Matrix init_kmeanspp(MatrixView xc, int k, std::uint64_t seed) {
  Rng rng(seed);
  const std::size_t n = xc.rows;
  const std::size_t d = xc.cols;
  const auto kk = static_cast<std::size_t>(k);
  Matrix out(kk, d);
  std::vector<char> chosen(n, 0);

  std::size_t first = static_cast<std::size_t>(rng.index(n));
  copy_row(xc, first, out, 0);
  chosen[first] = 1;

  // A single chunk runs on the calling thread: a parallel region would only add its barrier.
  const std::size_t chunks = chunk_count(n);
  std::vector<double> d2(n);
#pragma omp parallel for schedule(static) if (chunks > 1)
  for (std::ptrdiff_t i = 0; i < static_cast<std::ptrdiff_t>(n); ++i) {
    const auto r = static_cast<std::size_t>(i);
    d2[r] = squared_distance(xc.row(r), out.row(0), d);
  }

  const std::size_t trials = 2 + static_cast<std::size_t>(std::floor(std::log(k)));
  std::vector<double> sums(chunks);
  std::vector<std::size_t> candidate(trials);
  std::vector<double> chunk_potential(chunks * trials);
  for (std::size_t slot = 1; slot < kk; ++slot) {
    chunk_sums(d2, sums);
    double total = 0.0;
    for (const double s : sums) total += s;
    for (std::size_t t = 0; t < trials; ++t) {
      if (total > 0.0) {
        candidate[t] = sample_row(d2, sums, rng.uniform01() * total);
      } else {
        // Every row sits on a chosen centre (fewer distinct points than k): take the first
        // row not used yet, so centres stay distinct rows.
        std::size_t r = 0;
        while (r < n && chosen[r]) ++r;
        candidate[t] = r < n ? r : 0;
      }
    }
    // One pass over the data scores every candidate; potentials are per chunk, chunk order.
#pragma omp parallel for schedule(dynamic, 1) if (chunks > 1)
    for (std::ptrdiff_t ci = 0; ci < static_cast<std::ptrdiff_t>(chunks); ++ci) {
      const std::size_t begin = static_cast<std::size_t>(ci) * kReduceChunkRows;
      const std::size_t end = std::min(n, begin + kReduceChunkRows);
      double* pot = chunk_potential.data() + static_cast<std::size_t>(ci) * trials;
      for (std::size_t t = 0; t < trials; ++t) {
        const float* c = xc.row(candidate[t]);
        double s = 0.0;
        for (std::size_t i = begin; i < end; ++i) {
          s += std::min(d2[i], squared_distance(xc.row(i), c, d));
        }
        pot[t] = s;
      }
    }
    std::size_t best = 0;
    double best_potential = std::numeric_limits<double>::infinity();
    for (std::size_t t = 0; t < trials; ++t) {
      double potential = 0.0;
      for (std::size_t ci = 0; ci < chunks; ++ci) potential += chunk_potential[ci * trials + t];
      if (potential < best_potential) {
        best_potential = potential;
        best = t;
      }
    }
    const std::size_t pick = candidate[best];
    copy_row(xc, pick, out, slot);
    chosen[pick] = 1;
    const float* c = out.row(slot);
#pragma omp parallel for schedule(static) if (chunks > 1)
    for (std::ptrdiff_t i = 0; i < static_cast<std::ptrdiff_t>(n); ++i) {
      const auto r = static_cast<std::size_t>(i);
      d2[r] = std::min(d2[r], squared_distance(xc.row(r), c, d));
    }
  }
  return out;
}

}  // namespace icp::kmeans_detail
