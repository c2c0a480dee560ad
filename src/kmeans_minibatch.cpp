// Mini-batch k-means (Sculley 2010), reproducible at any thread count: batches are drawn by a
// counter-based generator from (seed, step, slot), assigned by the exact kernel, and the centre
// update folds fixed-chunk float64 sums in chunk order.

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <vector>

#include "kmeans_internal.hpp"

namespace icp::kmeans_detail {

namespace {

/// Streams of derive_seed() for the batches; far from the restart and init streams.
constexpr std::uint64_t kStreamBatch = 0x4000'0000;

/// Per-cluster float64 sums and counts of the batch, per fixed chunk and folded in chunk order.
/// The running means need nothing exact beyond reproducibility, so the batch is not converted
/// to the fixed-point moments an exact step uses (which took a third of a step).
ClusterSums batch_sums(MatrixView batch, std::span<const std::int32_t> label, std::size_t k) {
  const std::size_t d = batch.cols;
  const std::size_t chunks = chunk_count(batch.rows);
  std::vector<double> part(chunks * k * d, 0.0);
  std::vector<std::int64_t> part_counts(chunks * k, 0);
#pragma omp parallel for schedule(static) if (chunks > 1)
  for (std::ptrdiff_t ci = 0; ci < static_cast<std::ptrdiff_t>(chunks); ++ci) {
    const auto c = static_cast<std::size_t>(ci);
    double* sums = part.data() + c * k * d;
    std::int64_t* counts = part_counts.data() + c * k;
    const std::size_t end = std::min(batch.rows, (c + 1) * kReduceChunkRows);
    for (std::size_t i = c * kReduceChunkRows; i < end; ++i) {
      const auto j = static_cast<std::size_t>(label[i]);
      const float* x = batch.row(i);
      for (std::size_t t = 0; t < d; ++t) sums[j * d + t] += static_cast<double>(x[t]);
      ++counts[j];
    }
  }
  ClusterSums out;
  out.k = k;
  out.d = d;
  out.sums.assign(k * d, 0.0);
  out.counts.assign(k, 0);
  for (std::size_t c = 0; c < chunks; ++c) {
    for (std::size_t t = 0; t < k * d; ++t) out.sums[t] += part[c * k * d + t];
    for (std::size_t j = 0; j < k; ++j) out.counts[j] += part_counts[c * k + j];
  }
  return out;
}

}  // namespace

std::size_t minibatch_rows(const KMeansOptions& options, std::size_t n) noexcept {
  if (options.batch_size > 0) return std::min(n, static_cast<std::size_t>(options.batch_size));
  const std::size_t rule = std::min(static_cast<std::size_t>(kMiniBatchMaxDefault),
                                    1024 * static_cast<std::size_t>(options.k));
  return std::min(n, rule);
}

bool minibatch_run(MatrixView xc, LloydState& state, const KMeansOptions& options, int restart,
                   std::uint64_t seed, Reducer& reducer, std::vector<KMeansIteration>& history) {
  const std::size_t n = xc.rows;
  const std::size_t d = xc.cols;
  const auto k = static_cast<std::size_t>(options.k);
  const std::size_t b = minibatch_rows(options, n);

  // Centres are accumulated in float64 (the float copy is what the kernel scores against).
  std::vector<double> centre(k * d);
  for (std::size_t j = 0; j < k; ++j) {
    for (std::size_t t = 0; t < d; ++t) {
      centre[j * d + t] = static_cast<double>(state.centroids(j, t));
    }
  }
  std::vector<std::int64_t> seen(k, 0);  // points each centre has been given so far
  Matrix batch(b, d);
  std::vector<std::int32_t> label(b, -1);
  std::vector<float> dist(b, 0.0f);

  // Smoothing weight of the batch inertia per step (scikit-learn's rule): a batch is about
  // b / n of the data, so the average spans about half an epoch.
  const double alpha = std::min(1.0, 2.0 * static_cast<double>(b) / (static_cast<double>(n) + 1.0));
  double smoothed = 0.0;
  double best = std::numeric_limits<double>::infinity();
  int since_best = 0;

  for (int step = 1; step <= options.max_iter; ++step) {
    const auto start = std::chrono::steady_clock::now();
    const std::uint64_t key = derive_seed(seed, kStreamBatch + static_cast<std::uint64_t>(step));
#pragma omp parallel for schedule(static) if (b > kReduceChunkRows)
    for (std::ptrdiff_t s = 0; s < static_cast<std::ptrdiff_t>(b); ++s) {
      const auto slot = static_cast<std::size_t>(s);
      auto row = static_cast<std::size_t>(counter_uniform01(key, slot) * static_cast<double>(n));
      row = std::min(row, n - 1);
      std::copy(xc.row(row), xc.row(row) + d, batch.row(slot));
    }
    const AssignStats assigned =
        assign_rows(batch.view(), state.centroids.view(), label, dist, false);
    // (Not reached with several processes today: mini-batch runs on a gathered copy.)
    const ClusterSums sums = reducer.size() == 1
                                 ? batch_sums(batch.view(), label, k)
                                 : accumulate_clusters(batch.view(), label, k, reducer);
    double batch_inertia = assigned.inertia;
    reducer.sum(std::span<double>(&batch_inertia, 1));

    // Point-by-point, c <- c + (x - c) / seen_c is the running mean of every point the centre
    // was given; folding a batch's points at once gives that mean directly.
    const Matrix previous = state.centroids;
    for (std::size_t j = 0; j < k; ++j) {
      const std::int64_t add = sums.counts[j];
      if (add == 0) continue;
      const auto old_n = static_cast<double>(seen[j]);
      const double new_n = old_n + static_cast<double>(add);
      for (std::size_t t = 0; t < d; ++t) {
        double& c = centre[j * d + t];
        c = (c * old_n + sums.sums[j * d + t]) / new_n;
        state.centroids(j, t) = static_cast<float>(c);
      }
      seen[j] += add;
    }

    KMeansIteration info;
    info.iteration = step;
    info.inertia = batch_inertia;
    info.shift = centre_shift(previous, state.centroids);
    info.restart = restart;
    info.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    history.push_back(info);
    if (options.on_iteration) options.on_iteration(info);

    const double per_row = batch_inertia / static_cast<double>(b);
    smoothed = step == 1 ? per_row : (1.0 - alpha) * smoothed + alpha * per_row;
    if (smoothed < best) {
      best = smoothed;
      since_best = 0;
    } else if (++since_best >= kMiniBatchPatience) {
      return true;
    }
  }
  return false;
}

}  // namespace icp::kmeans_detail
