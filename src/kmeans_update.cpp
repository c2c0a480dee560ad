// Update: cluster sums in fixed chunks, empty-cluster relocation, new centres and their shift.

#include <algorithm>
#include <cstddef>
#include <numeric>
#include <vector>

#include "kmeans_internal.hpp"

namespace icp::kmeans_detail {

ClusterSums accumulate_clusters(MatrixView xc, std::span<const std::int32_t> assignment,
                                std::size_t k, Reducer& reducer, std::span<const float> weight) {
  const std::size_t n = xc.rows;
  const std::size_t d = xc.cols;
  const bool weighted_rows = !weight.empty();
  // Per chunk: k x d coordinate sums, then (with weights) the k clusters' weight sums, so one
  // gather and one fold in chunk order cover both.
  const std::size_t width = k * d + (weighted_rows ? k : 0);
  ClusterSums out;
  out.k = k;
  out.d = d;
  out.counts.assign(k, 0);
  std::vector<double> total(width, 0.0);

  const std::size_t chunks = chunk_count(n);
  const std::size_t wave = std::min(kUpdateWaveChunks, chunks);
  std::vector<double> part_sums(wave * width);
  std::vector<std::int64_t> part_counts(wave * k);
  const bool distributed = reducer.size() > 1;
  std::vector<double> mine;  // this process's chunk partials, when there are several processes
  for (std::size_t w0 = 0; w0 < chunks; w0 += kUpdateWaveChunks) {
    const std::size_t w1 = std::min(chunks, w0 + kUpdateWaveChunks);
#pragma omp parallel for schedule(dynamic, 1) if (w1 - w0 > 1)
    for (std::ptrdiff_t ci = static_cast<std::ptrdiff_t>(w0); ci < static_cast<std::ptrdiff_t>(w1);
         ++ci) {
      const std::size_t slot = static_cast<std::size_t>(ci) - w0;
      double* sums = part_sums.data() + slot * width;
      std::int64_t* counts = part_counts.data() + slot * k;
      std::fill(sums, sums + width, 0.0);
      std::fill(counts, counts + k, std::int64_t{0});
      const std::size_t begin = static_cast<std::size_t>(ci) * kReduceChunkRows;
      const std::size_t end = std::min(n, begin + kReduceChunkRows);
      for (std::size_t i = begin; i < end; ++i) {
        const auto label = static_cast<std::size_t>(assignment[i]);
        double* dst = sums + label * d;
        const float* src = xc.row(i);
        if (weighted_rows) {
          const double w = static_cast<double>(weight[i]);
          for (std::size_t j = 0; j < d; ++j) dst[j] += w * static_cast<double>(src[j]);
          sums[k * d + label] += w;
        } else {
          for (std::size_t j = 0; j < d; ++j) dst[j] += static_cast<double>(src[j]);
        }
        ++counts[label];
      }
    }
    for (std::size_t slot = 0; slot < w1 - w0; ++slot) {
      const std::int64_t* counts = part_counts.data() + slot * k;
      for (std::size_t t = 0; t < k; ++t) out.counts[t] += counts[t];
    }
    if (distributed) {
      // Kept whole until every process's chunks are in hand: the fold below must see the
      // chunks of all processes in global chunk order.
      mine.insert(mine.end(), part_sums.begin(),
                  part_sums.begin() + static_cast<std::ptrdiff_t>((w1 - w0) * width));
      continue;
    }
    for (std::size_t ci = w0; ci < w1; ++ci) {
      const double* sums = part_sums.data() + (ci - w0) * width;
      for (std::size_t t = 0; t < width; ++t) total[t] += sums[t];
    }
  }
  if (distributed) {
    const std::vector<double> all = reducer.gather_chunks(std::move(mine), width);
    const std::size_t all_chunks = all.size() / std::max<std::size_t>(width, 1);
    for (std::size_t ci = 0; ci < all_chunks; ++ci) {
      const double* sums = all.data() + ci * width;
      for (std::size_t t = 0; t < width; ++t) total[t] += sums[t];
    }
  }
  out.sums.assign(total.begin(), total.begin() + static_cast<std::ptrdiff_t>(k * d));
  if (weighted_rows)
    out.weight_sums.assign(total.begin() + static_cast<std::ptrdiff_t>(k * d), total.end());
  // Counts are integers: their sum is exact in any order.
  reducer.sum(std::span<std::int64_t>(out.counts));
  return out;
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

StepStats finish_step(MatrixView xc, LloydState& state, const AssignStats& assigned,
                      Reducer& reducer) {
  StepStats stats;
  const AssignStats all = global_stats(assigned, reducer);
  const double inertia = all.inertia;
  const std::int64_t changed = all.changed;
  ClusterSums sums =
      accumulate_clusters(xc, state.assignment, state.centroids.rows(), reducer, state.weight);
  stats.relocated =
      relocate_empty(xc, state.assignment, state.distance, sums, reducer, state.weight);
  Matrix next = centroids_from_sums(sums, state.centroids);
  stats.shift = centre_shift(state.centroids, next);
  state.centroids = std::move(next);
  stats.inertia = inertia;
  stats.changed = changed;
  return stats;
}

StepStats lloyd_step(MatrixView xc, LloydState& state, Reducer& reducer) {
  const AssignStats assigned =
      assign_rows(xc, state.centroids.view(), state.assignment, state.distance, true, state.weight);
  return finish_step(xc, state, assigned, reducer);
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
