// Assignment pass: blocked float32 scores (kmeans_kernel.cpp) for the argmin, float64 for the
// reported distance.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>
#include <utility>
#include <vector>

#if defined(__FMA__) || defined(__AVX512F__)
#include <immintrin.h>
#endif

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
typedef double V8d __attribute__((vector_size(64)));
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

namespace {

// A float64 sum of squares, fused where the CPU has FMA: written out rather than left to the
// compiler, which fused some of these loops and not others (a centre at a time or several
// interleaved), so that one distance got different bits from different callers. Without FMA
// instructions there is nothing to fuse.
// By reference: a 32-byte vector passed by value warns of an ABI change where AVX is off.
#if defined(__FMA__)
inline void add_squares(V4d& acc, const V4d& t) noexcept {
  acc = _mm256_fmadd_pd(t, t, acc);
}
inline double add_square(double acc, double t) noexcept {
  return std::fma(t, t, acc);
}
#else
inline void add_squares(V4d& acc, const V4d& t) noexcept {
  acc = acc + t * t;
}
inline double add_square(double acc, double t) noexcept {
  return acc + t * t;
}
#endif

// Squared distances of x to C centres in float64: eight fixed lanes (lane l takes the columns j
// with j % 8 == l) and a tail, combined in a fixed order, so a centre's distance has the same
// bits whatever C; the row's loads and conversions are shared and C (AVX-512) or 2 C independent
// chains are in flight. Lanes 0-3 and 4-7 are one zmm or two ymm registers: the same sums either
// way, and one zmm halves the instructions of this loop, which k-means++ spends most of its time
// in.
#if defined(__AVX512F__)
// Eight consecutive values from p as float64 (converted when they are floats).
template <class T>
[[gnu::always_inline]] inline V8d load_wide8(const T* p) noexcept {
  if constexpr (std::is_same_v<T, double>) {
    V8d v;
    std::memcpy(&v, p, sizeof v);
    return v;
  } else {
    V8f f;
    std::memcpy(&f, p, sizeof f);
    return __builtin_convertvector(f, V8d);
  }
}
#endif
// Through a reference: a 32-byte vector returned by value warns of an ABI change where AVX is
// off (as add_squares).
template <class T>
[[gnu::always_inline]] inline void load_wide4(const T* p, V4d& out) noexcept {
  if constexpr (std::is_same_v<T, double>) {
    std::memcpy(&out, p, sizeof out);
  } else {
    V4f f;
    std::memcpy(&f, p, sizeof f);
    out = __builtin_convertvector(f, V4d);
  }
}

template <std::size_t C, class T>
[[gnu::always_inline]] inline void distances_group(const float* x, const T* const* c, std::size_t d,
                                                   double* out) noexcept {
#if defined(__AVX512F__)
  // Vector extensions for the conversions: GCC 12's _mm512_cvtps_pd trips -Wuninitialized.
  V8d acc[C];
  for (std::size_t q = 0; q < C; ++q) acc[q] = V8d{};
  std::size_t j = 0;
  for (; j + 8 <= d; j += 8) {
    const V8d y = load_wide8(x + j);
    for (std::size_t q = 0; q < C; ++q) {
      const V8d t = y - load_wide8(c[q] + j);
      acc[q] = _mm512_fmadd_pd(t, t, acc[q]);
    }
  }
  for (std::size_t q = 0; q < C; ++q) {
    double tail = 0.0;
    for (std::size_t t = j; t < d; ++t) {
      tail = add_square(tail, static_cast<double>(x[t]) - static_cast<double>(c[q][t]));
    }
    const V8d& a = acc[q];
    out[q] = (((a[0] + a[4]) + (a[1] + a[5])) + ((a[2] + a[6]) + (a[3] + a[7]))) + tail;
  }
#else
  V4d acc0[C];
  V4d acc1[C];
  for (std::size_t q = 0; q < C; ++q) acc0[q] = acc1[q] = V4d{0.0, 0.0, 0.0, 0.0};
  std::size_t j = 0;
  for (; j + 8 <= d; j += 8) {
    V4d y0, y1;
    load_wide4(x + j, y0);
    load_wide4(x + j + 4, y1);
    for (std::size_t q = 0; q < C; ++q) {
      V4d b0, b1;
      load_wide4(c[q] + j, b0);
      load_wide4(c[q] + j + 4, b1);
      add_squares(acc0[q], y0 - b0);
      add_squares(acc1[q], y1 - b1);
    }
  }
  for (std::size_t q = 0; q < C; ++q) {
    double tail = 0.0;
    for (std::size_t t = j; t < d; ++t) {
      tail = add_square(tail, static_cast<double>(x[t]) - static_cast<double>(c[q][t]));
    }
    const V4d acc = acc0[q] + acc1[q];
    out[q] = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + tail;
  }
#endif
}

}  // namespace

double squared_distance(const float* a, const float* b, std::size_t d) noexcept {
  double out = 0.0;
  distances_group<1>(a, &b, d, &out);
  return out;
}

void squared_distances(const float* x, const double* const* centres, std::size_t count,
                       std::size_t d, double* out) noexcept {
  // Four centres at a time: 32 accumulator lanes, eight AVX2 registers, no spills.
  std::size_t q = 0;
  for (; q + 4 <= count; q += 4) distances_group<4>(x, centres + q, d, out + q);
  switch (count - q) {
    case 3:
      distances_group<3>(x, centres + q, d, out + q);
      break;
    case 2:
      distances_group<2>(x, centres + q, d, out + q);
      break;
    case 1:
      distances_group<1>(x, centres + q, d, out + q);
      break;
    default:
      break;
  }
}

double squared_distance(const float* a, const double* b, std::size_t d) noexcept {
  double out = 0.0;
  distances_group<1>(a, &b, d, &out);
  return out;
}

void squared_distance_pair(const float* x, const double* a, const double* b, std::size_t d,
                           double out[2]) noexcept {
  const double* const c[2] = {a, b};
  distances_group<2>(x, c, d, out);
}

std::vector<double> widen_rows(MatrixView m) {
  std::vector<double> out(m.rows * m.cols);
  for (std::size_t i = 0; i < m.rows * m.cols; ++i) out[i] = static_cast<double>(m.data[i]);
  return out;
}

AssignStats assign_rows(MatrixView xc, MatrixView centroids, std::span<std::int32_t> assignment,
                        std::span<float> distance, bool track_changes,
                        std::span<const float> weight, ClusterAccumulator* summed) {
  const std::size_t n = xc.rows;
  const std::size_t d = xc.cols;
  const PackedCentres packed = pack_centres(centroids);
  const std::vector<double> wide = widen_rows(centroids);

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
              static_cast<float>(squared_distance(xc.row(row), wide.data() + best * d, d));
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
