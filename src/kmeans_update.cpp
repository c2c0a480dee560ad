// Update: cluster sums from exact moments, empty-cluster relocation, new centres and their shift.

#include <algorithm>
#include <cstddef>
#include <numeric>
#include <vector>

#include "kmeans_internal.hpp"

namespace icp::kmeans_detail {

ClusterAccumulator::ClusterAccumulator(std::size_t n, std::size_t k, std::size_t d,
                                       std::span<const float> weight, const MomentScales& scales,
                                       std::span<const std::int64_t> row_norm)
    : k_(k),
      chunks_(chunk_count(n)),
      weight_(weight),
      scales_(scales),
      row_norm_(row_norm),
      total_(k, d, !weight.empty()),
      parts_(std::min(kUpdateWaveChunks, chunks_)) {}

void ClusterAccumulator::add_chunk(std::size_t ci, MatrixView xc,
                                   std::span<const std::int32_t> assignment) {
  const std::size_t begin = ci * kReduceChunkRows;
  const std::size_t end = std::min(xc.rows, begin + kReduceChunkRows);
  parts_[ci % kUpdateWaveChunks].assign(xc, assignment, weight_, begin, end, k_, scales_,
                                        row_norm_);
}

void ClusterAccumulator::fold_wave(std::size_t w0, std::size_t w1) {
  for (std::size_t ci = w0; ci < w1; ++ci) total_.add(parts_[ci % kUpdateWaveChunks]);
}

const ClusterMoments& ClusterAccumulator::finish(Reducer& reducer) {
  total_.reduce(reducer);
  return total_;
}

ClusterSums accumulate_clusters(MatrixView xc, std::span<const std::int32_t> assignment,
                                std::size_t k, Reducer& reducer, std::span<const float> weight) {
  const MomentScales scales = moment_scales(xc, weight, reducer);
  ClusterAccumulator acc(xc.rows, k, xc.cols, weight, scales);
  const std::size_t chunks = acc.chunks();
  ExceptionCollector errors;
#pragma omp parallel if (chunks > 1)
  chunk_waves(chunks, &acc, errors, [&](std::size_t ci) { acc.add_chunk(ci, xc, assignment); });
  errors.rethrow();
  return acc.finish(reducer).sums(scales);
}

std::int64_t relocate_empty(MatrixView xc, std::span<std::int32_t> assignment,
                            std::span<const float> distance, ClusterSums& sums,
                            std::span<const float> weight) {
  const std::size_t k = sums.k;
  const std::size_t d = sums.d;
  std::vector<std::size_t> empty;
  for (std::size_t j = 0; j < k; ++j) {
    if (sums.counts[j] == 0) empty.push_back(j);
  }
  if (empty.empty()) return 0;

  // Empty clusters are rare, so a full sort of the rows is affordable and keeps the order total:
  // farthest first, ties to the lowest row.
  std::vector<std::size_t> order(xc.rows);
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    if (distance[a] != distance[b]) return distance[a] > distance[b];
    return a < b;
  });

  std::int64_t relocated = 0;
  std::size_t pos = 0;
  for (const std::size_t j : empty) {
    while (pos < order.size()) {
      const std::size_t row = order[pos++];
      const auto from = static_cast<std::size_t>(assignment[row]);
      if (sums.counts[from] <= 1) continue;  // taking its only point would just move the hole
      // A weightless row would give the cluster a member but no mean: take the next one.
      if (!weight.empty() && !(weight[row] > 0.0f)) continue;
      const float* x = xc.row(row);
      const double w = weight.empty() ? 1.0 : static_cast<double>(weight[row]);
      for (std::size_t t = 0; t < d; ++t) {
        sums.sums[from * d + t] -= w * static_cast<double>(x[t]);
        sums.sums[j * d + t] = w * static_cast<double>(x[t]);
      }
      if (!weight.empty()) {
        sums.weight_sums[from] -= w;
        sums.weight_sums[j] = w;
      }
      --sums.counts[from];
      sums.counts[j] = 1;
      assignment[row] = static_cast<std::int32_t>(j);
      ++relocated;
      break;
    }
  }
  return relocated;
}

std::int64_t relocate_empty(MatrixView xc, std::span<std::int32_t> assignment,
                            std::span<const float> distance, ClusterSums& sums, Reducer& reducer,
                            std::span<const float> weight) {
  if (reducer.size() == 1) return relocate_empty(xc, assignment, distance, sums, weight);
  // Every process has the same counts (summed above), so all agree on whether to gather.
  if (std::find(sums.counts.begin(), sums.counts.end(), 0) == sums.counts.end()) return 0;
  const Matrix all_x = reducer.gather_rows(xc);
  std::vector<std::int32_t> all_labels = reducer.gather(std::span<const std::int32_t>(assignment));
  const std::vector<float> all_distance = reducer.gather(distance);
  std::vector<float> all_weight;
  if (!weight.empty()) all_weight = reducer.gather(weight);
  const std::int64_t moved =
      relocate_empty(all_x.view(), all_labels, all_distance, sums, all_weight);
  // This process's rows sit at the same offset in the gathered arrays on every process.
  std::int64_t offset = static_cast<std::int64_t>(xc.rows);
  std::vector<std::int64_t> before(static_cast<std::size_t>(reducer.size()), 0);
  before[static_cast<std::size_t>(reducer.rank())] = offset;
  reducer.sum(std::span<std::int64_t>(before));
  offset = 0;
  for (int r = 0; r < reducer.rank(); ++r) offset += before[static_cast<std::size_t>(r)];
  std::copy_n(all_labels.begin() + offset, assignment.size(), assignment.begin());
  return moved;
}

Matrix centroids_from_sums(const ClusterSums& sums, const Matrix& previous) {
  Matrix next(sums.k, sums.d);
  for (std::size_t j = 0; j < sums.k; ++j) {
    if (sums.counts[j] == 0) {
      std::copy(previous.row(j), previous.row(j) + sums.d, next.row(j));
      continue;
    }
    const double count =
        sums.weight_sums.empty() ? static_cast<double>(sums.counts[j]) : sums.weight_sums[j];
    if (!(count > 0.0)) {  // members that all weigh nothing: the centre stays where it was
      std::copy(previous.row(j), previous.row(j) + sums.d, next.row(j));
      continue;
    }
    for (std::size_t t = 0; t < sums.d; ++t) {
      next(j, t) = static_cast<float>(sums.sums[j * sums.d + t] / count);
    }
  }
  return next;
}

double centre_shift(const Matrix& previous, const Matrix& next) noexcept {
  double moved = 0.0;
  const auto& a = previous.storage();
  const auto& b = next.storage();
  for (std::size_t t = 0; t < a.size(); ++t) {
    const double diff = static_cast<double>(b[t]) - static_cast<double>(a[t]);
    moved += diff * diff;
  }
  return moved;
}

namespace {

/// state.distance of every row against the step's centres, as assign_rows computes it.
void refresh_distances(MatrixView xc, LloydState& state) {
  const MatrixView c = state.centroids.view();
#pragma omp parallel for schedule(static) if (xc.rows > kReduceChunkRows)
  for (std::ptrdiff_t i = 0; i < static_cast<std::ptrdiff_t>(xc.rows); ++i) {
    const auto r = static_cast<std::size_t>(i);
    const auto a = static_cast<std::size_t>(state.assignment[r]);
    state.distance[r] = static_cast<float>(squared_distance(xc.row(r), c.row(a), xc.cols));
  }
}

}  // namespace

StepStats finish_step(MatrixView xc, LloydState& state, std::int64_t changed,
                      const ClusterMoments& moments, Reducer& reducer, bool distances_current) {
  StepStats stats;
  reducer.sum(std::span<std::int64_t>(&changed, 1));
  stats.changed = changed;
  stats.inertia = moments.inertia(state.centroids.view(), state.scales);
  ClusterSums sums = moments.sums(state.scales);
  // Every process holds the same counts, so all agree on whether distances are needed.
  const bool empty = std::find(sums.counts.begin(), sums.counts.end(), 0) != sums.counts.end();
  if (empty && !distances_current) refresh_distances(xc, state);
  stats.relocated =
      relocate_empty(xc, state.assignment, state.distance, sums, reducer, state.weight);
  Matrix next = centroids_from_sums(sums, state.centroids);
  stats.shift = centre_shift(state.centroids, next);
  state.centroids = std::move(next);
  return stats;
}

StepStats lloyd_step(MatrixView xc, LloydState& state, Reducer& reducer) {
  const MomentScales& scales = ensure_scales(xc, state, reducer);
  ClusterAccumulator summed(xc.rows, state.centroids.rows(), xc.cols, state.weight, scales,
                            state.row_norm);
  const AssignStats assigned = assign_rows(xc, state.centroids.view(), state.assignment,
                                           state.distance, true, state.weight, &summed);
  return finish_step(xc, state, assigned.changed, summed.finish(reducer), reducer);
}

namespace {

class LloydPolicy final : public StepPolicy {
 public:
  StepStats step(MatrixView xc, LloydState& state, Reducer& reducer) override {
    return lloyd_step(xc, state, reducer);
  }
};

}  // namespace

std::unique_ptr<StepPolicy> make_lloyd_policy() {
  return std::make_unique<LloydPolicy>();
}

}  // namespace icp::kmeans_detail
