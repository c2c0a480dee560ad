// Assignment kernel: blocked float32 matrix product for the argmin, float64 for the reported
// distance.

// Rows are already split across OpenMP threads; a nested parallel GEMM would oversubscribe and
// make the block results depend on the thread count.
#define EIGEN_DONT_PARALLELIZE

#include <Eigen/Core>
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "kmeans_internal.hpp"

namespace icp::kmeans_detail {

namespace {

using RowMatrixF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// GCC/Clang vector types: the lane layout (and so the summation order) is written in the source,
// where auto-vectorisation of these loops is either refused (index-tracking min) or would be free
// to change the order between compiler versions.
typedef float V8f __attribute__((vector_size(32)));
typedef std::int32_t V8i __attribute__((vector_size(32)));
typedef float V4f __attribute__((vector_size(16)));
typedef double V4d __attribute__((vector_size(32)));
constexpr std::size_t kLanes = 8;

/// Index of the smallest ||c_j||^2 - 2 x.c_j, ties to the lowest j (what a strict-< scan gives:
/// each lane keeps its first minimum, then lanes compare by value and then index). Overwrites
/// `dot` with the scores.
std::size_t argmin_score(float* dot, const float* norm, std::size_t k) noexcept {
  for (std::size_t j = 0; j < k; ++j) dot[j] = norm[j] - 2.0f * dot[j];
  const float inf = std::numeric_limits<float>::infinity();
  V8f best_val = {inf, inf, inf, inf, inf, inf, inf, inf};
  V8i best_idx = {0, 1, 2, 3, 4, 5, 6, 7};
  V8i idx = best_idx;
  const V8i step = {8, 8, 8, 8, 8, 8, 8, 8};
  std::size_t j = 0;
  for (; j + kLanes <= k; j += kLanes) {
    V8f v;
    std::memcpy(&v, dot + j, sizeof v);
    const V8i less = v < best_val;
    best_val = less ? v : best_val;
    best_idx = less ? idx : best_idx;
    idx += step;
  }
  std::size_t best = 0;
  float low = inf;
  bool found = false;
  if (j > 0) {  // at least one full vector was scanned, so every lane holds a candidate
    for (std::size_t l = 0; l < kLanes; ++l) {
      const auto li = static_cast<std::size_t>(best_idx[l]);
      const float lv = best_val[l];
      if (!found || lv < low || (lv == low && li < best)) {
        low = lv;
        best = li;
        found = true;
      }
    }
  }
  // Tail indices exceed every lane index, so strict < keeps ties at the lowest index.
  for (; j < k; ++j) {
    if (!found || dot[j] < low) {
      low = dot[j];
      best = j;
      found = true;
    }
  }
  return best;
}

}  // namespace

double squared_distance(const float* a, const float* b, std::size_t d) noexcept {
  // Eight fixed float64 lanes in two vectors; lanes are combined in a fixed order at the end.
  V4d acc0 = {0.0, 0.0, 0.0, 0.0};
  V4d acc1 = {0.0, 0.0, 0.0, 0.0};
  std::size_t j = 0;
  for (; j + 8 <= d; j += 8) {
    V4f a0, a1, b0, b1;
    std::memcpy(&a0, a + j, sizeof a0);
    std::memcpy(&a1, a + j + 4, sizeof a1);
    std::memcpy(&b0, b + j, sizeof b0);
    std::memcpy(&b1, b + j + 4, sizeof b1);
    const V4d t0 = __builtin_convertvector(a0, V4d) - __builtin_convertvector(b0, V4d);
    const V4d t1 = __builtin_convertvector(a1, V4d) - __builtin_convertvector(b1, V4d);
    acc0 += t0 * t0;
    acc1 += t1 * t1;
  }
  double tail = 0.0;
  for (; j < d; ++j) {
    const double t = static_cast<double>(a[j]) - static_cast<double>(b[j]);
    tail += t * t;
  }
  const V4d acc = acc0 + acc1;
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + tail;
}

AssignStats assign_rows(MatrixView xc, MatrixView centroids, std::span<std::int32_t> assignment,
                        std::span<float> distance, bool track_changes) {
  const std::size_t n = xc.rows;
  const std::size_t d = xc.cols;
  const std::size_t k = centroids.rows;
  // Eigen-aligned copies: Eigen's vectorised paths may peel to an aligned address, so the same
  // row at a differently aligned address could be summed in another order. Copying the centres
  // and each block into aligned storage makes every product a function of the values only.
  RowMatrixF c(static_cast<Eigen::Index>(k), static_cast<Eigen::Index>(d));
  std::copy(centroids.data, centroids.data + k * d, c.data());
  std::vector<float> norm(k);
  for (std::size_t j = 0; j < k; ++j) {
    const float* cj = centroids.row(j);
    double s = 0.0;
    for (std::size_t t = 0; t < d; ++t) s += static_cast<double>(cj[t]) * cj[t];
    norm[j] = static_cast<float>(s);
  }

  const std::size_t chunks = chunk_count(n);
  std::vector<double> chunk_inertia(chunks, 0.0);
  std::vector<std::int64_t> chunk_changed(chunks, 0);
  ExceptionCollector errors;
#pragma omp parallel if (chunks > 1)
  {
    RowMatrixF block;
    RowMatrixF dots;
    bool ready = false;
    errors.run([&] {
      block.resize(static_cast<Eigen::Index>(kAssignBlockRows), static_cast<Eigen::Index>(d));
      dots.resize(static_cast<Eigen::Index>(kAssignBlockRows), static_cast<Eigen::Index>(k));
      ready = true;
    });
#pragma omp for schedule(dynamic, 1)
    for (std::ptrdiff_t ci = 0; ci < static_cast<std::ptrdiff_t>(chunks); ++ci) {
      // A thread that could not allocate skips its chunks; the collected error is rethrown.
      if (!ready) continue;
      const std::size_t begin = static_cast<std::size_t>(ci) * kReduceChunkRows;
      const std::size_t end = std::min(n, begin + kReduceChunkRows);
      double inertia = 0.0;
      std::int64_t changed = 0;
      for (std::size_t b0 = begin; b0 < end; b0 += kAssignBlockRows) {
        const std::size_t rows = std::min(kAssignBlockRows, end - b0);
        const auto r = static_cast<Eigen::Index>(rows);
        std::copy(xc.row(b0), xc.row(b0) + rows * d, block.data());
        dots.topRows(r).noalias() = block.topRows(r) * c.transpose();
        for (std::size_t i = 0; i < rows; ++i) {
          const std::size_t best = argmin_score(dots.data() + i * k, norm.data(), k);
          const std::size_t row = b0 + i;
          const auto dist =
              static_cast<float>(squared_distance(xc.row(row), centroids.row(best), d));
          const auto label = static_cast<std::int32_t>(best);
          if (track_changes && assignment[row] != label) ++changed;
          assignment[row] = label;
          distance[row] = dist;
          inertia += static_cast<double>(dist);
        }
      }
      chunk_inertia[static_cast<std::size_t>(ci)] = inertia;
      chunk_changed[static_cast<std::size_t>(ci)] = changed;
    }
  }
  errors.rethrow();

  AssignStats stats;
  for (std::size_t ci = 0; ci < chunks; ++ci) {
    stats.inertia += chunk_inertia[ci];
    stats.changed += chunk_changed[ci];
  }
  return stats;
}

}  // namespace icp::kmeans_detail
