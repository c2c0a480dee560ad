// Assignment pass: blocked float32 scores (kmeans_kernel.cpp) for the argmin, float64 for the
// reported distance.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <utility>
#include <vector>

#include "kmeans_internal.hpp"

namespace icp::kmeans_detail {

namespace {

// GCC/Clang vector types: the lane layout (and so the summation order) is written in the source,
// where auto-vectorisation of these loops is either refused (index-tracking min) or would be free
// to change the order between compiler versions.
typedef float V8f __attribute__((vector_size(32)));
typedef std::int32_t V8i __attribute__((vector_size(32)));
typedef float V4f __attribute__((vector_size(16)));
typedef double V4d __attribute__((vector_size(32)));
constexpr std::size_t kLanes = 8;

}  // namespace

/// Ties to the lowest j (what a strict-< scan gives: each lane keeps its first minimum, then
/// lanes compare by value and then index).
std::size_t argmin_scores(const float* dot, std::size_t k) noexcept {
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

void squared_distance_pair(const float* x, const float* a, const float* b, std::size_t d,
                           double out[2]) noexcept {
  // Two independent chains per vector step: the row is loaded and converted once, and each
  // FMA's 4-cycle latency is hidden by the other distance's.
  V4d a0 = {0.0, 0.0, 0.0, 0.0}, a1 = a0, b0 = a0, b1 = a0;
  std::size_t j = 0;
  for (; j + 8 <= d; j += 8) {
    V4f x0, x1, p0, p1, q0, q1;
    std::memcpy(&x0, x + j, sizeof x0);
    std::memcpy(&x1, x + j + 4, sizeof x1);
    std::memcpy(&p0, a + j, sizeof p0);
    std::memcpy(&p1, a + j + 4, sizeof p1);
    std::memcpy(&q0, b + j, sizeof q0);
    std::memcpy(&q1, b + j + 4, sizeof q1);
    const V4d y0 = __builtin_convertvector(x0, V4d);
    const V4d y1 = __builtin_convertvector(x1, V4d);
    const V4d s0 = y0 - __builtin_convertvector(p0, V4d);
    const V4d s1 = y1 - __builtin_convertvector(p1, V4d);
    const V4d t0 = y0 - __builtin_convertvector(q0, V4d);
    const V4d t1 = y1 - __builtin_convertvector(q1, V4d);
    a0 += s0 * s0;
    a1 += s1 * s1;
    b0 += t0 * t0;
    b1 += t1 * t1;
  }
  double ta = 0.0;
  double tb = 0.0;
  for (; j < d; ++j) {
    const double y = static_cast<double>(x[j]);
    const double s = y - static_cast<double>(a[j]);
    const double t = y - static_cast<double>(b[j]);
    ta += s * s;
    tb += t * t;
  }
  const V4d sa = a0 + a1;
  const V4d sb = b0 + b1;
  out[0] = ((sa[0] + sa[1]) + (sa[2] + sa[3])) + ta;
  out[1] = ((sb[0] + sb[1]) + (sb[2] + sb[3])) + tb;
}

AssignStats assign_rows(MatrixView xc, MatrixView centroids, std::span<std::int32_t> assignment,
                        std::span<float> distance, bool track_changes,
                        std::span<const float> weight, ClusterAccumulator* summed) {
  const std::size_t n = xc.rows;
  const std::size_t d = xc.cols;
  const PackedCentres packed = pack_centres(centroids);

  const std::size_t chunks = chunk_count(n);
  std::vector<double> chunk_inertia(chunks, 0.0);
  std::vector<std::int64_t> chunk_changed(chunks, 0);
  ExceptionCollector errors;
#pragma omp parallel if (chunks > 1)
  {
    std::vector<std::int32_t> labels;
    bool ready = false;
    errors.run([&] {
      labels.resize(kAssignBlockRows);
      ready = true;
    });
    // Without `summed` the waves only add a barrier every kUpdateWaveChunks chunks.
    chunk_waves(chunks, summed, errors, [&](std::size_t ci) {
      // A thread that could not allocate skips its chunks; the collected error is rethrown.
      if (!ready) return;
      const std::size_t begin = ci * kReduceChunkRows;
      const std::size_t end = std::min(n, begin + kReduceChunkRows);
      double inertia = 0.0;
      std::int64_t changed = 0;
      for (std::size_t b0 = begin; b0 < end; b0 += kAssignBlockRows) {
        const std::size_t rows = std::min(kAssignBlockRows, end - b0);
        argmin_rows(xc.row(b0), rows, d, packed, labels.data());
        for (std::size_t i = 0; i < rows; ++i) {
          const auto best = static_cast<std::size_t>(labels[i]);
          const std::size_t row = b0 + i;
          const auto dist =
              static_cast<float>(squared_distance(xc.row(row), centroids.row(best), d));
          const auto label = static_cast<std::int32_t>(best);
          if (track_changes && assignment[row] != label) ++changed;
          assignment[row] = label;
          distance[row] = dist;
          inertia += weighted(weight, row, dist);
        }
      }
      chunk_inertia[ci] = inertia;
      chunk_changed[ci] = changed;
      // Added while the chunk's rows are still in cache.
      if (summed != nullptr) errors.run([&] { summed->add_chunk(ci, xc, assignment); });
    });
  }
  errors.rethrow();

  return combine_chunk_stats(std::move(chunk_inertia), chunk_changed);
}

AssignStats combine_chunk_stats(std::vector<double> chunk_inertia,
                                std::span<const std::int64_t> chunk_changed) {
  AssignStats stats;
  for (std::size_t ci = 0; ci < chunk_inertia.size(); ++ci) {
    stats.inertia += chunk_inertia[ci];
    stats.changed += chunk_changed[ci];
  }
  stats.chunk_inertia = std::move(chunk_inertia);
  return stats;
}

AssignStats global_stats(const AssignStats& local, Reducer& reducer) {
  if (reducer.size() == 1) return local;
  AssignStats out;
  const std::vector<double> all = reducer.gather_chunks(local.chunk_inertia, 1);
  for (const double v : all) out.inertia += v;
  out.changed = local.changed;
  reducer.sum(std::span<std::int64_t>(&out.changed, 1));
  return out;
}

}  // namespace icp::kmeans_detail
