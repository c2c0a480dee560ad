// Initial centres: greedy k-means++ and uniform random rows, reproducible at any thread count.

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstddef>
#include <limits>
#include <unordered_set>
#include <vector>

#include "kmeans_internal.hpp"

namespace icp::kmeans_detail {

namespace {

/// Candidates per k-means++ step are 2 + floor(ln k) (scikit-learn's rule), at most 45.
constexpr std::size_t kMaxTrials = 48;
/// Rows whose candidate distances are held before they are summed: 64 x 48 doubles is 24 KB of
/// stack, inside L1 with the rows themselves.
constexpr std::size_t kPotentialBlockRows = 64;

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

/// Where the D^2 prefix reaches `target` (0 <= target < total), over the chunk sums of every
/// process in global chunk order: the chunk, and the prefix before it. When rounding leaves the
/// target past the end, the last chunk with positive weight (and the whole total as prefix).
std::pair<std::size_t, double> sample_chunk(const std::vector<double>& sums, double target) {
  double before = 0.0;
  for (std::size_t ci = 0; ci < sums.size(); ++ci) {
    if (sums[ci] > 0.0 && before + sums[ci] > target) return {ci, before};
    before += sums[ci];
  }
  // The scan of that chunk then starts from the whole total, so it takes its first positive row.
  for (std::size_t ci = sums.size(); ci-- > 0;) {
    if (sums[ci] > 0.0) return {ci, before};
  }
  return {sums.size(), before};
}

/// The local row of chunk `chunk` (local chunk number) whose D^2 prefix interval contains
/// `target`, the prefix running in row order from `before`; the chunk's last row with positive
/// weight when rounding leaves the target past its end.
std::size_t sample_in_chunk(std::span<const double> d2, std::size_t chunk, double before,
                            double target) {
  const std::size_t begin = chunk * kReduceChunkRows;
  const std::size_t end = std::min(d2.size(), begin + kReduceChunkRows);
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

RowSlice row_slice(std::size_t rows, Reducer& reducer) {
  RowSlice slice;
  std::int64_t total = static_cast<std::int64_t>(rows);
  reducer.sum(std::span<std::int64_t>(&total, 1));
  slice.total = static_cast<std::size_t>(total);
  slice.offset = chunk_rows_of(slice.total, reducer.rank(), reducer.size()).begin;
  return slice;
}

Matrix fetch_rows(MatrixView xc, std::span<const std::size_t> global, const RowSlice& slice,
                  Reducer& reducer) {
  const std::size_t d = xc.cols;
  Matrix out(global.size(), d);
  if (reducer.size() == 1) {
    for (std::size_t m = 0; m < global.size(); ++m) copy_row(xc, global[m], out, m);
    return out;
  }
  std::vector<std::int64_t> bits(global.size() * d, 0);
  for (std::size_t m = 0; m < global.size(); ++m) {
    if (!slice.holds(global[m], xc.rows)) continue;
    const float* row = xc.row(global[m] - slice.offset);
    for (std::size_t t = 0; t < d; ++t) bits[m * d + t] = std::bit_cast<std::uint32_t>(row[t]);
  }
  reducer.sum(std::span<std::int64_t>(bits));
  for (std::size_t m = 0; m < global.size(); ++m) {
    for (std::size_t t = 0; t < d; ++t) {
      out(m, t) = std::bit_cast<float>(static_cast<std::uint32_t>(bits[m * d + t]));
    }
  }
  return out;
}

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

namespace {

/// k distinct rows of `total` drawn uniformly (Floyd's algorithm: k draws, no O(n) shuffle), in
/// draw order.
std::vector<std::size_t> random_rows(std::size_t total, int k, std::uint64_t seed) {
  Rng rng(seed);
  const auto n = static_cast<std::uint64_t>(total);
  const auto kk = static_cast<std::uint64_t>(k);
  std::unordered_set<std::uint64_t> taken;
  std::vector<std::size_t> picks;
  for (std::uint64_t j = n - kk; j < n; ++j) {
    const std::uint64_t t = rng.index(j + 1);
    const std::uint64_t pick = taken.count(t) ? j : t;
    taken.insert(pick);
    picks.push_back(static_cast<std::size_t>(pick));
  }
  return picks;
}

/// Greedy k-means++ over `n` local rows seen through `scan` (visit(first local row, block) for
/// blocks in row order, each starting on a chunk boundary) and `fetch` (rows by global number).
/// The in-memory fit scans one block, the whole matrix; a streamed fit scans blocks read from
/// disk. Same loops per block, so the same bits either way.
template <class Scan, class Fetch>
Matrix kmeanspp(std::size_t n, std::size_t d, int k, std::uint64_t seed, Reducer& reducer,
                Scan&& scan, Fetch&& fetch) {
  Rng rng(seed);
  const auto kk = static_cast<std::size_t>(k);
  const RowSlice slice = row_slice(n, reducer);
  // Processes hold whole chunks (chunk_rows_of), so local chunk ci is global chunk first + ci.
  const std::size_t first_chunk = slice.offset / kReduceChunkRows;
  Matrix out(kk, d);
  std::vector<char> chosen(n, 0);
  auto choose = [&](std::size_t global) {
    if (slice.holds(global, n)) chosen[global - slice.offset] = 1;
  };

  const std::size_t first = static_cast<std::size_t>(rng.index(slice.total));
  {
    const Matrix row = fetch(std::span<const std::size_t>(&first, 1));
    std::copy(row.row(0), row.row(0) + d, out.row(0));
    choose(first);
  }

  const std::size_t chunks = chunk_count(n);
  std::vector<double> d2(n);
  // Centres and candidates are widened to float64 once per pass (squared_distance's overloads
  // for them give the same bits).
  const std::vector<double> centre = widen_rows(MatrixView{out.row(0), 1, d});
  scan([&](std::size_t f, MatrixView x) {
  // A single chunk runs on the calling thread: a parallel region would only add its barrier.
#pragma omp parallel for schedule(static) if (x.rows > kReduceChunkRows)
    for (std::ptrdiff_t i = 0; i < static_cast<std::ptrdiff_t>(x.rows); ++i) {
      const auto r = static_cast<std::size_t>(i);
      d2[f + r] = squared_distance(x.row(r), centre.data(), d);
    }
  });

  const std::size_t trials = 2 + static_cast<std::size_t>(std::floor(std::log(k)));
  static_assert(kMaxTrials >= 2 + 44, "2 + ln k for any k below 2^63");
  std::vector<double> sums(chunks);
  std::vector<std::size_t> candidate(trials);
  for (std::size_t slot = 1; slot < kk; ++slot) {
    chunk_sums(d2, sums);
    const std::vector<double> all_sums = reducer.gather_chunks(sums, 1);
    double total = 0.0;
    for (const double s : all_sums) total += s;
    for (std::size_t t = 0; t < trials; ++t) {
      // `total` is the same on every process, so all take the same branch.
      if (total > 0.0) {
        // The holder of the drawn chunk finds the row; the others add 0 to its number.
        const double target = rng.uniform01() * total;
        const auto [chunk, before] = sample_chunk(all_sums, target);
        std::int64_t row = 0;
        if (chunk >= first_chunk && chunk < first_chunk + chunks) {
          row = static_cast<std::int64_t>(slice.offset +
                                          sample_in_chunk(d2, chunk - first_chunk, before, target));
        }
        reducer.sum(std::span<std::int64_t>(&row, 1));
        candidate[t] = static_cast<std::size_t>(row);
      } else {
        // Every row sits on a chosen centre (fewer distinct points than k): take the first
        // row not used yet, so centres stay distinct rows.
        std::size_t r = 0;
        while (r < n && chosen[r]) ++r;
        double lowest =
            r < n ? static_cast<double>(slice.offset + r) : std::numeric_limits<double>::infinity();
        reducer.min(std::span<double>(&lowest, 1));
        candidate[t] = std::isinf(lowest) ? 0 : static_cast<std::size_t>(lowest);
      }
    }
    const Matrix rows = fetch(std::span<const std::size_t>(candidate));
    const std::vector<double> wide = widen_rows(rows.view());
    std::vector<const double*> candidate_rows(trials);
    for (std::size_t t = 0; t < trials; ++t) candidate_rows[t] = wide.data() + t * d;
    // One pass over the data scores every candidate; potentials are per chunk, chunk order.
    std::vector<double> chunk_potential(chunks * trials);
    scan([&](std::size_t f, MatrixView x) {
      const std::size_t c0 = f / kReduceChunkRows;
      const std::size_t block_chunks = chunk_count(x.rows);
#pragma omp parallel for schedule(dynamic, 1) if (block_chunks > 1)
      for (std::ptrdiff_t ci = 0; ci < static_cast<std::ptrdiff_t>(block_chunks); ++ci) {
        const std::size_t begin = static_cast<std::size_t>(ci) * kReduceChunkRows;
        const std::size_t end = std::min(x.rows, begin + kReduceChunkRows);
        double* pot = chunk_potential.data() + (c0 + static_cast<std::size_t>(ci)) * trials;
        // Every candidate's distance from one read of the row; each candidate's potential still
        // sums its rows in order, so the bits are those of one pass per candidate. Distances are
        // taken a block of rows at a time and then summed one candidate at a time: summing
        // straight after each row chained every row through a store and reload of the
        // potentials.
        std::array<double, kPotentialBlockRows * kMaxTrials> e;  // stack: nothing to throw here
        for (std::size_t t = 0; t < trials; ++t) pot[t] = 0.0;
        for (std::size_t b0 = begin; b0 < end; b0 += kPotentialBlockRows) {
          const std::size_t block = std::min(kPotentialBlockRows, end - b0);
          for (std::size_t m = 0; m < block; ++m)
            squared_distances(x.row(b0 + m), candidate_rows.data(), trials, d,
                              e.data() + m * trials);
          for (std::size_t t = 0; t < trials; ++t) {
            double p = pot[t];
            for (std::size_t m = 0; m < block; ++m)
              p += std::min(d2[f + b0 + m], e[m * trials + t]);
            pot[t] = p;
          }
        }
      }
    });
    const std::vector<double> all_potential =
        reducer.gather_chunks(std::move(chunk_potential), trials);
    const std::size_t all_chunks = all_potential.size() / trials;
    std::size_t best = 0;
    double best_potential = std::numeric_limits<double>::infinity();
    for (std::size_t t = 0; t < trials; ++t) {
      double potential = 0.0;
      for (std::size_t ci = 0; ci < all_chunks; ++ci) potential += all_potential[ci * trials + t];
      if (potential < best_potential) {
        best_potential = potential;
        best = t;
      }
    }
    std::copy(rows.row(best), rows.row(best) + d, out.row(slot));
    choose(candidate[best]);
    const double* c = wide.data() + best * d;
    scan([&](std::size_t f, MatrixView x) {
#pragma omp parallel for schedule(static) if (x.rows > kReduceChunkRows)
      for (std::ptrdiff_t i = 0; i < static_cast<std::ptrdiff_t>(x.rows); ++i) {
        const auto r = static_cast<std::size_t>(i);
        d2[f + r] = std::min(d2[f + r], squared_distance(x.row(r), c, d));
      }
    });
  }
  return out;
}

}  // namespace

Matrix init_random(MatrixView xc, int k, std::uint64_t seed, Reducer& reducer) {
  const RowSlice slice = row_slice(xc.rows, reducer);
  return fetch_rows(xc, random_rows(slice.total, k, seed), slice, reducer);
}

Matrix init_random(const RowBlocks& xc, int k, std::uint64_t seed) {
  return xc.fetch(random_rows(xc.rows, k, seed));
}

Matrix init_kmeanspp(MatrixView xc, int k, std::uint64_t seed, Reducer& reducer) {
  const RowSlice slice = row_slice(xc.rows, reducer);
  return kmeanspp(
      xc.rows, xc.cols, k, seed, reducer, [&](auto&& visit) { visit(std::size_t{0}, xc); },
      [&](std::span<const std::size_t> rows) { return fetch_rows(xc, rows, slice, reducer); });
}

Matrix init_kmeanspp(const RowBlocks& xc, int k, std::uint64_t seed) {
  return kmeanspp(xc.rows, xc.cols, k, seed, local_reducer(), xc.scan, xc.fetch);
}

}  // namespace icp::kmeans_detail
