// Exact k nearest seeds by blocked GEMM: ||x - s||^2 = ||x||^2 + ||s||^2 - 2 x.s, and ||x||^2 is
// the same for every seed of a row, so ||s||^2 - 2 x.s ranks the seeds of that row.
#define EIGEN_DONT_PARALLELIZE  // OpenMP parallelizes over row blocks; nested GEMM threads would
                                // oversubscribe the shared budget.
#include <Eigen/Dense>
#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <type_traits>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "icp/error.hpp"
#include "icp/lookalike.hpp"
#include "icp/parallel.hpp"
#include "value_order.hpp"

namespace icp {

namespace {

using RowMatrixF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// Rows of x per task: 256 rows x 32 features is 32 KiB, resident while seed blocks stream past,
// and n / 256 tasks balance well on 2 to dozens of threads.
constexpr std::size_t kKnnRowBlock = 256;
// Seeds per GEMM tile: a 256 x 512 float score tile is 512 KiB, sized for L2.
constexpr std::size_t kKnnSeedBlock = 512;
// Candidates kept beyond k before the exact float64 re-ranking. The float32 GEMM ranking can
// swap seeds whose distances differ by less than its rounding error; the margin lets the true
// k-th neighbour survive such swaps so the final order is the exact one.
constexpr std::size_t kKnnRefineExtra = 8;
// Seeds tested per branch-free group in the candidate scan (one bit each in a 64-bit mask): four
// AVX-512 registers, and a group rarely holds a candidate once the kept set is full.
constexpr std::size_t kKnnScanLanes = 64;

// Bit t set when candidate value norm[t] - 2 score[t] passes `bound` (<, or <= when kInclusive),
// for the `len` <= kKnnScanLanes seeds at norm/score; the values go to `value` when any passes.
// Once a row's kept set is full almost no seed passes, so this is the whole per-seed cost: with
// AVX-512, compares write mask registers that are tested together, one branch per 64 seeds (the
// compiler's version of a plain loop rebuilt each mask from vector lanes with shifts and ORs,
// and branched per 16), and a short group (the nearest-first path's groups hold ~m / 16 seeds)
// takes masked loads instead of a scalar loop. 2 score is exact in float, so fused or not every
// value has one rounding: the same bits on every path.
template <bool kInclusive>
inline std::uint64_t scan_lanes(const float* norm, const float* score, std::size_t len, float bound,
                                float* value) noexcept {
#if defined(__AVX512F__)
  static_assert(kKnnScanLanes == 64, "four AVX-512 registers of floats");
  constexpr int kCmp = kInclusive ? _CMP_LE_OQ : _CMP_LT_OQ;
  const __m512 two = _mm512_set1_ps(2.0f);
  const __m512 b = _mm512_set1_ps(bound);
  __m512 v[4];
  std::uint64_t hits = 0;
  const std::size_t quarters = (len + 15) / 16;
  for (std::size_t q = 0; q < quarters; ++q) {
    const std::size_t lanes = std::min<std::size_t>(16, len - 16 * q);
    // Masked-off lanes are not read (no fault past the row's end) and never pass.
    const auto live = static_cast<__mmask16>((1u << lanes) - 1u);
    v[q] = _mm512_fnmadd_ps(two, _mm512_maskz_loadu_ps(live, score + 16 * q),
                            _mm512_maskz_loadu_ps(live, norm + 16 * q));
    hits |= std::uint64_t{_mm512_mask_cmp_ps_mask(live, v[q], b, kCmp)} << (16 * q);
  }
  if (hits != 0)
    for (std::size_t q = 0; q < quarters; ++q) _mm512_storeu_ps(value + 16 * q, v[q]);
  return hits;
#else
  std::uint64_t hits = 0;
  for (std::size_t t = 0; t < len; ++t) {
    value[t] = norm[t] - 2.0f * score[t];
    const bool pass = kInclusive ? value[t] <= bound : value[t] < bound;
    hits |= std::uint64_t{pass ? 1u : 0u} << t;
  }
  return hits;
#endif
}

// Up to this many kept candidates they are held sorted and a newcomer is inserted by shifting:
// about keep / 2 predictable moves, where a heap's sift-down takes log2(keep) unpredictable
// branches per level (the heap was a third of a 1M-row lookalike stage at keep = 18). Above it
// (neighbors in the hundreds) the heap's log factor wins.
constexpr std::size_t kKnnSortedMax = 64;

// 8 bytes, not 16: the sorted insertion shifts candidates one by one, and at 1,024 seeds those
// moves were the largest part of the knn time outside the GEMM. Seed indices fit 32 bits (the
// function checks the seed count).
struct Candidate {
  float value;
  std::int32_t seed;
};

// The order candidates are kept in, (value, seed index): a total order, so the kept set does not
// depend on the order seeds are visited in. The heap path's max-heap uses it too (its top is the
// worst kept candidate).
bool candidate_less(const Candidate& a, const Candidate& b) noexcept {
  return a.value < b.value || (a.value == b.value && a.seed < b.seed);
}

// Inserts c into kept[0, size), sorted by candidate_less, holding at most `keep`: when full, c
// must beat kept[keep - 1], which falls off. About size / 2 predictable moves.
void insert_sorted(Candidate* kept, std::size_t& size, std::size_t keep, Candidate c) noexcept {
  std::size_t pos = size < keep ? size++ : keep - 1;
  while (pos > 0 && candidate_less(c, kept[pos - 1])) {
    kept[pos] = kept[pos - 1];
    --pos;
  }
  kept[pos] = c;
}

// A kept set in an array sorted by candidate_less (insert_sorted), with VectorKept's interface.
struct ArrayKept {
  Candidate* kept;
  std::size_t keep;
  std::size_t size = 0;
  float bound() const noexcept {
    return size < keep ? std::numeric_limits<float>::infinity() : kept[keep - 1].value;
  }
  // The array holds exactly `keep`, so every newcomer is checked against its worst, and bound()
  // is always current (settle has nothing to do).
  void insert(Candidate c) noexcept {
    if (size == keep && !candidate_less(c, kept[keep - 1])) return;
    insert_sorted(kept, size, keep, c);
  }
  void settle() noexcept {}
};

// One passing lane of a row whose seeds are scanned in increasing index into a sorted kept set
// (`bound` is its worst value once full): skipped when an insertion since the mask was taken has
// tightened the bound below it, or when it is the row's own seed; otherwise it goes in after any
// equal values, since it has the largest index so far. Ties thus go to the lower index.
inline void keep_in_seed_order(Candidate* kept, std::size_t& size, std::size_t keep, float& bound,
                               Candidate c, std::int64_t self) noexcept {
  if (!(c.value < bound) || c.seed == self) return;
  insert_sorted(kept, size, keep, c);
  if (size == keep) bound = kept[keep - 1].value;
}

#if defined(__AVX512F__)
// A kept set of up to 32 candidates held sorted by candidate_less in two pairs of AVX-512
// registers (values, seed indices), lanes past the kept ones padded with (+inf, INT32_MAX).
// Inserting shifts the lanes after the newcomer up by one with a permute and a blend: a dozen
// instructions and no branch, where insert_sorted's loop of compares ended in a mispredicted exit
// on almost every call (the nearest-first path inserts ~46 times per row at 512 seeds; those
// inserts were two thirds of its time outside the GEMM). The kept set is the same.
constexpr std::size_t kKnnVectorKeepMax = 32;

class VectorKept {
 public:
  explicit VectorKept(std::size_t keep) noexcept : keep_(keep) {
    v_[0] = v_[1] = _mm512_set1_ps(std::numeric_limits<float>::infinity());
    s_[0] = s_[1] = _mm512_set1_epi32(std::numeric_limits<std::int32_t>::max());
  }
  /// The value a newcomer must reach (<=) to be tried; +inf until the set is full.
  float bound() const noexcept { return worst_.value; }
  /// Inserts c without comparing it with the worst kept one, and without updating bound():
  /// settle() does that once after a run of inserts. Candidates past `keep` stay in the lanes
  /// after it, in order, and one past all 32 lanes falls off, so the keep smallest are those a
  /// checked insert would keep. Saves each insertion waiting for the previous one's worst to be
  /// read out.
  void insert(Candidate c) noexcept {
    const __m512 cv = _mm512_set1_ps(c.value);
    const __m512i cs = _mm512_set1_epi32(c.seed);
    // Lanes holding a candidate after c: they move up one lane.
    const __mmask16 after0 = static_cast<__mmask16>(
        _mm512_cmp_ps_mask(v_[0], cv, _CMP_GT_OQ) |
        (_mm512_cmp_ps_mask(v_[0], cv, _CMP_EQ_OQ) & _mm512_cmpgt_epi32_mask(s_[0], cs)));
    const __mmask16 after1 = static_cast<__mmask16>(
        _mm512_cmp_ps_mask(v_[1], cv, _CMP_GT_OQ) |
        (_mm512_cmp_ps_mask(v_[1], cv, _CMP_EQ_OQ) & _mm512_cmpgt_epi32_mask(s_[1], cs)));
    // up: lane j <- lane j - 1 across the pair (lane 0 of the pair gets lane 15 of hi: unused).
    const __m512i up =
        _mm512_set_epi32(30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16, 15);
    const __m512i up_lo = _mm512_set_epi32(14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 31);
    const __m512 v_hi = _mm512_permutex2var_ps(v_[0], up, v_[1]);
    const __m512 v_lo = _mm512_permutex2var_ps(v_[0], up_lo, v_[1]);
    const __m512i s_hi = _mm512_permutex2var_epi32(s_[0], up, s_[1]);
    const __m512i s_lo = _mm512_permutex2var_epi32(s_[0], up_lo, s_[1]);
    // The lowest lane after c takes c itself (the lanes are sorted, so it is c's place).
    const std::uint32_t after =
        static_cast<std::uint32_t>(after0) | (static_cast<std::uint32_t>(after1) << 16);
    const std::uint32_t place = after & (0u - after);
    const auto place0 = static_cast<__mmask16>(place);
    const auto place1 = static_cast<__mmask16>(place >> 16);
    v_[0] = _mm512_mask_mov_ps(_mm512_mask_mov_ps(v_[0], after0, v_lo), place0, cv);
    v_[1] = _mm512_mask_mov_ps(_mm512_mask_mov_ps(v_[1], after1, v_hi), place1, cv);
    s_[0] = _mm512_mask_mov_epi32(_mm512_mask_mov_epi32(s_[0], after0, s_lo), place0, cs);
    s_[1] = _mm512_mask_mov_epi32(_mm512_mask_mov_epi32(s_[1], after1, s_hi), place1, cs);
    if (size_ < keep_) ++size_;
  }
  void settle() noexcept {
    if (size_ == keep_) worst_ = at(keep_ - 1);
  }
  /// Starts from `count` <= keep candidates already sorted by candidate_less.
  void assign_sorted(const Candidate* sorted, std::size_t count) noexcept {
    alignas(64) float v[2 * 16];
    alignas(64) std::int32_t s[2 * 16];
    for (std::size_t j = 0; j < 2 * 16; ++j) {
      v[j] = j < count ? sorted[j].value : std::numeric_limits<float>::infinity();
      s[j] = j < count ? sorted[j].seed : std::numeric_limits<std::int32_t>::max();
    }
    v_[0] = _mm512_load_ps(v);
    v_[1] = _mm512_load_ps(v + 16);
    s_[0] = _mm512_load_si512(s);
    s_[1] = _mm512_load_si512(s + 16);
    size_ = count;
    if (size_ == keep_) worst_ = sorted[keep_ - 1];
  }
  std::size_t size() const noexcept { return size_; }
  /// The kept candidates in order into out[0, size()).
  void store(Candidate* out) const noexcept {
    alignas(64) float v[2 * 16];
    alignas(64) std::int32_t s[2 * 16];
    _mm512_store_ps(v, v_[0]);
    _mm512_store_ps(v + 16, v_[1]);
    _mm512_store_si512(s, s_[0]);
    _mm512_store_si512(s + 16, s_[1]);
    for (std::size_t j = 0; j < size_; ++j) out[j] = {v[j], s[j]};
  }

 private:
  // One lane read out by a permute: a store and a 4-byte reload of it stalled on forwarding.
  // The register is picked by a select, not by indexing the pair with lane / 16: a variable
  // index kept the whole kept set in memory, so every insertion loaded and stored it.
  Candidate at(std::size_t lane) const noexcept {
    const __m512i idx = _mm512_set1_epi32(static_cast<int>(lane % 16));
    const bool high = lane >= 16;
    const float v = _mm512_cvtss_f32(_mm512_permutexvar_ps(idx, high ? v_[1] : v_[0]));
    const int s = _mm_cvtsi128_si32(
        _mm512_castsi512_si128(_mm512_permutexvar_epi32(idx, high ? s_[1] : s_[0])));
    return {v, s};
  }
  __m512 v_[2];
  __m512i s_[2];
  std::size_t keep_;
  std::size_t size_ = 0;
  Candidate worst_{std::numeric_limits<float>::infinity(),
                   std::numeric_limits<std::int32_t>::max()};
};
#endif

#if defined(__AVX512F__)
// Seeds of a row sorted at once before its kept set takes over (VectorKept holds up to 32).
constexpr std::size_t kKnnPrefill = 32;

// Sorts 32 integers ascending in four AVX-512 registers with a bitonic network: 15 stages of
// compare-exchanges (partners 8 lanes or more apart sit in another register, nearer ones in the
// same register after a permute), no branch that depends on the data.
// GCC 12's min/max/permute intrinsics start from an undefined vector and trip -Wuninitialized
// (the same family of false positives as GCC PR 105593).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
void sort_packed_32(std::uint64_t* data) noexcept {
  __m512i v[4];
  for (std::size_t r = 0; r < 4; ++r) v[r] = _mm512_load_si512(data + 8 * r);
  for (unsigned k = 2; k <= 32; k <<= 1) {
    for (unsigned j = k >> 1; j > 0; j >>= 1) {
      if (j >= 8) {
        const unsigned rj = j / 8;
        for (unsigned r = 0; r < 4; ++r) {
          const unsigned q = r ^ rj;
          if (q < r) continue;
          const bool ascending = ((r * 8) & k) == 0;
          const __m512i lo = _mm512_min_epu64(v[r], v[q]);
          const __m512i hi = _mm512_max_epu64(v[r], v[q]);
          v[r] = ascending ? lo : hi;
          v[q] = ascending ? hi : lo;
        }
        continue;
      }
      const __m512i partner = _mm512_set_epi64(7 ^ j, 6 ^ j, 5 ^ j, 4 ^ j, 3 ^ j, 2 ^ j, 1 ^ j, j);
      for (unsigned r = 0; r < 4; ++r) {
        const __m512i other = _mm512_permutexvar_epi64(partner, v[r]);
        // Lane l keeps the larger value when it is the lower of its pair in a descending run or
        // the upper one in an ascending run.
        unsigned take_max = 0;
        for (unsigned l = 0; l < 8; ++l) {
          const bool ascending = ((r * 8 + l) & k) == 0;
          const bool lower = (l & j) == 0;
          if (lower != ascending) take_max |= 1u << l;
        }
        v[r] =
            _mm512_mask_blend_epi64(static_cast<__mmask8>(take_max), _mm512_min_epu64(v[r], other),
                                    _mm512_max_epu64(v[r], other));
      }
    }
  }
  for (std::size_t r = 0; r < 4; ++r) _mm512_store_si512(data + 8 * r, v[r]);
}
#pragma GCC diagnostic pop
#endif

// Lanes of the exact re-ranking sum: one float64 chain of d dependent adds per candidate was a
// tenth of the knn time (4-cycle add latency); 8 independent partial sums fill an AVX-512
// register, and the fixed lane order keeps the result the same on every run and thread count.
constexpr std::size_t kExactLanes = 8;

#if defined(__AVX512F__)
// One zmm of lanes, the last columns by a masked load (zeros in the masked-off lanes add +0 to
// their partial sums, which changes no bit): the compiler's version went through a ymm loop, then
// xmm and scalar epilogues for the d % 8 last columns with the lanes stored and reloaded between
// them, and the re-ranking calls it keep (18) times per account.
double exact_distance(const float* a, const float* b, std::size_t d) {
  static_assert(kExactLanes == 8, "one AVX-512 register of doubles");
  __m512d part = _mm512_setzero_pd();
  for (std::size_t j = 0; j < d; j += kExactLanes) {
    const auto lanes = static_cast<unsigned>(std::min(kExactLanes, d - j));
    const auto live = static_cast<__mmask8>((1u << lanes) - 1u);
    const __m512d diff = _mm512_sub_pd(_mm512_cvtps_pd(_mm256_maskz_loadu_ps(live, a + j)),
                                       _mm512_cvtps_pd(_mm256_maskz_loadu_ps(live, b + j)));
    part = _mm512_fmadd_pd(diff, diff, part);
  }
  alignas(64) std::array<double, kExactLanes> lane;
  _mm512_store_pd(lane.data(), part);
  double sum = 0.0;
  for (const double p : lane) sum += p;
  return sum;
}
#else
double exact_distance(const float* a, const float* b, std::size_t d) {
  std::array<double, kExactLanes> part{};
  std::size_t j = 0;
  for (; j + kExactLanes <= d; j += kExactLanes) {
    for (std::size_t t = 0; t < kExactLanes; ++t) {
      const double diff = static_cast<double>(a[j + t]) - static_cast<double>(b[j + t]);
      part[t] += diff * diff;
    }
  }
  for (std::size_t t = 0; j < d; ++j, ++t) {
    const double diff = static_cast<double>(a[j]) - static_cast<double>(b[j]);
    part[t] += diff * diff;
  }
  double sum = 0.0;
  for (const double p : part) sum += p;
  return sum;
}
#endif

// A bound on how far a candidate's float32 value (||s||^2 - 2 x.s, whatever order its sums ran
// in) can lie from the exact one, for a row of norm `xnorm`, seeds of norm at most `smax`, d
// features: each float32 sum of d products is within d u / (1 - d u) of the sum of their
// magnitudes, the final subtraction adds u of its result (u = 2^-24). Doubled, with ||x||^2
// added, so that the float64 distances' own rounding (~1e-15 relative) is covered too.
inline double value_error(double xnorm, double smax, std::size_t d) noexcept {
  constexpr double kUnit = 0x1.0p-24;
  const double gamma = static_cast<double>(d + 2) * kUnit;
  return 2.0 * gamma * (smax * smax + 2.0 * xnorm * smax + xnorm * xnorm);
}

// The largest seed norm, rounded well up (the squared norms are float32 sums themselves).
double largest_seed_norm(const Eigen::VectorXf& squared_norm) {
  double top = 0.0;
  for (Eigen::Index s = 0; s < squared_norm.size(); ++s)
    top = std::max(top, static_cast<double>(squared_norm[s]));
  return std::sqrt(top * (1.0 + 0x1.0p-10));
}

using ExactList = std::vector<std::pair<double, std::int64_t>>;

// Appends (exact distance from row xi, seed) to `exact` at position `count`, growing it when
// full; returns the new count.
std::size_t append_exact(ExactList& exact, std::size_t count, const float* xi, MatrixView seeds,
                         std::int64_t seed) {
  if (count == exact.size()) exact.resize(2 * count + 1);
  exact[count] = {exact_distance(xi, seeds.row(static_cast<std::size_t>(seed)), seeds.cols), seed};
  return count + 1;
}

// A wider search for finish_row that knows no candidate values: every seed but `self`.
auto every_seed(MatrixView x, MatrixView seeds, std::size_t i, std::int64_t self) {
  return [=](double /*limit*/, ExactList& exact) {
    std::size_t count = 0;
    for (std::size_t s = 0; s < seeds.rows; ++s) {
      if (static_cast<std::int64_t>(s) == self) continue;
      count = append_exact(exact, count, x.row(i), seeds, static_cast<std::int64_t>(s));
    }
    return count;
  };
}

// The kept candidates of row i, sorted by candidate_less, re-ranked by exact float64 distance
// (ties to the lower seed index), the k best written to `result`.
// A seed among the k nearest has a float32 value within twice value_error of the k-th smallest
// value (each of the k smallest is nearer than that value plus the error). So kept candidates
// past that limit are skipped (at 512 seeds most of the margin's 8 were, and their exact
// distances were a sixth of the search); and when even the last kept one is within it, seeds
// the kept set dropped (each valued at least as much as that last one) may belong too:
// widen(limit, exact) then lists (exact distance, seed) for every seed but `self` whose value is
// within the limit (or simply every seed) and returns how many. That takes more than
// kKnnRefineExtra seeds within float32 rounding of the k-th (duplicated or nearly duplicated
// seeds), which the margin alone would have ranked by their rounded values.
template <class Widen>
void finish_row(MatrixView x, MatrixView seeds, std::size_t i, std::int64_t self,
                const Candidate* kept, std::size_t size, std::size_t k, double smax,
                ExactList& exact, KnnResult& result, Widen&& widen) {
  const std::size_t cols = result.k;  // <= k: the nearest ones kept
  const std::size_t eligible =
      seeds.rows - (self >= 0 && static_cast<std::size_t>(self) < seeds.rows ? 1 : 0);
  bool widened = false;
  if (size > k) {
    const float* xi = x.row(i);
    double xx = 0.0;
    for (std::size_t j = 0; j < x.cols; ++j) xx += static_cast<double>(xi[j]) * xi[j];
    const double limit =
        static_cast<double>(kept[k - 1].value) + 2.0 * value_error(std::sqrt(xx), smax, x.cols);
    if (size < eligible && static_cast<double>(kept[size - 1].value) <= limit) {
      size = widen(limit, exact);
      const std::size_t top = std::min(k, size);
      std::partial_sort(exact.begin(), exact.begin() + static_cast<std::ptrdiff_t>(top),
                        exact.begin() + static_cast<std::ptrdiff_t>(size));
      size = top;
      widened = true;
    } else {
      while (size > k && static_cast<double>(kept[size - 1].value) > limit) --size;
    }
  }
  if (!widened) {
    for (std::size_t c = 0; c < size; ++c) {
      exact[c] = {
          exact_distance(x.row(i), seeds.row(static_cast<std::size_t>(kept[c].seed)), x.cols),
          kept[c].seed};
    }
    // The candidates come ordered by their float32 values, which the exact distances mostly
    // keep: an insertion sort moves the few swapped ones, where std::sort partitioned 18 of them
    // every row. The same order (distance, then seed index; no two share a seed).
    for (std::size_t c = 1; c < size; ++c) {
      const std::pair<double, std::int64_t> v = exact[c];
      std::size_t at = c;
      for (; at > 0 && v < exact[at - 1]; --at) exact[at] = exact[at - 1];
      exact[at] = v;
    }
  }
  const std::size_t valid = std::min(k, size);
  double sum = 0.0;
  for (std::size_t c = 0; c < valid; ++c) {
    if (c < cols) {
      result.index[i * cols + c] = exact[c].second;
      result.distance[i * cols + c] = static_cast<float>(exact[c].first);
    }
    sum += exact[c].first;
  }
  if (valid > 0) result.mean[i] = sum / static_cast<double>(valid);
}

// Blocks of `rows` rows of an n-row matrix split over the threads. Each thread first builds its
// buffers with make() (guarded on its own: every thread must reach the worksharing loop, and one
// whose buffers failed skips its blocks), then runs block(buffers, first_row, rows) per block.
// Exceptions are collected and rethrown after the parallel region.
template <class Make, class Block>
void for_each_row_block(std::size_t n, std::size_t rows, Make&& make, Block&& block) {
  const std::size_t blocks = chunk_count(n, rows);
  ExceptionCollector errors;
#pragma omp parallel
  {
    std::optional<decltype(make())> buffers;
    errors.run([&] { buffers.emplace(make()); });
#pragma omp for schedule(dynamic, 1)
    for (std::size_t b = 0; b < blocks; ++b) {
      if (!buffers) continue;
      errors.run([&] {
        const std::size_t r0 = b * rows;
        block(*buffers, r0, std::min(rows, n - r0));
      });
    }
  }
  errors.rethrow();
}

#if defined(__AVX512F__)
// ---- Seed panels: the micro-kernel of both AVX-512 paths ----
//
// kFusedRows accounts x kFusedSeeds seeds in 16 accumulators, d FMAs each, with the seeds laid
// out once as [feature][seed] panels. Eigen's GEMM repacked both operands on every tile (the
// seeds for every block of 256 accounts) and reached about half of this CPU's FMA peak at
// d = 44 (too short an inner dimension for its blocking).
constexpr std::size_t kFusedRows = 8;
constexpr std::size_t kFusedSeeds = 32;  // two AVX-512 registers

struct SeedPanels {
  std::vector<float> data;  // panel p: d x kFusedSeeds floats, feature-major
  std::vector<float> norm;  // padded seeds: +inf, so they never pass a bound
  std::size_t panels = 0;
};

SeedPanels make_panels(MatrixView seeds, const float* norm) {
  const std::size_t m = seeds.rows, d = seeds.cols;
  SeedPanels p;
  p.panels = (m + kFusedSeeds - 1) / kFusedSeeds;
  p.data.assign(p.panels * d * kFusedSeeds, 0.0f);
  p.norm.assign(p.panels * kFusedSeeds, std::numeric_limits<float>::infinity());
  for (std::size_t s = 0; s < m; ++s) {
    float* panel = p.data.data() + (s / kFusedSeeds) * d * kFusedSeeds;
    for (std::size_t j = 0; j < d; ++j) panel[j * kFusedSeeds + s % kFusedSeeds] = seeds(s, j);
    p.norm[s] = norm[s];
  }
  return p;
}

// Dot products of kFusedRows rows (xg: row-major, d columns) with one panel's seeds: row r's
// in acc[r][0] (seeds 0-15) and acc[r][1] (16-31).
inline void panel_dots(const float* xg, std::size_t d, const float* panel,
                       __m512 (&acc)[kFusedRows][2]) noexcept {
  for (auto& a : acc) a[0] = a[1] = _mm512_setzero_ps();
  for (std::size_t j = 0; j < d; ++j) {
    const __m512 s0 = _mm512_loadu_ps(panel + j * kFusedSeeds);
    const __m512 s1 = _mm512_loadu_ps(panel + j * kFusedSeeds + 16);
    for (std::size_t r = 0; r < kFusedRows; ++r) {
      const __m512 xr = _mm512_set1_ps(xg[r * d + j]);
      acc[r][0] = _mm512_fmadd_ps(xr, s0, acc[r][0]);
      acc[r][1] = _mm512_fmadd_ps(xr, s1, acc[r][1]);
    }
  }
}

// One row's candidate values norm - 2 x.s against one panel's seeds, into v[0, kFusedSeeds):
// panel_dots for a single row (a knn row's wider search, where seven padding rows would be
// wasted work).
inline void panel_values(const float* xi, std::size_t d, const float* panel, const float* norm,
                         float* v) noexcept {
  __m512 a0 = _mm512_setzero_ps();
  __m512 a1 = _mm512_setzero_ps();
  for (std::size_t j = 0; j < d; ++j) {
    const __m512 xr = _mm512_set1_ps(xi[j]);
    a0 = _mm512_fmadd_ps(xr, _mm512_loadu_ps(panel + j * kFusedSeeds), a0);
    a1 = _mm512_fmadd_ps(xr, _mm512_loadu_ps(panel + j * kFusedSeeds + 16), a1);
  }
  const __m512 two = _mm512_set1_ps(2.0f);
  _mm512_storeu_ps(v, _mm512_fnmadd_ps(two, a0, _mm512_loadu_ps(norm)));
  _mm512_storeu_ps(v + 16, _mm512_fnmadd_ps(two, a1, _mm512_loadu_ps(norm + 16)));
}

// panel_dots stored: row r's into out[r * ldo, r * ldo + kFusedSeeds).
inline void panel_scores(const float* xg, std::size_t d, const float* panel, float* out,
                         std::size_t ldo) noexcept {
  __m512 acc[kFusedRows][2];
  panel_dots(xg, d, panel, acc);
  for (std::size_t r = 0; r < kFusedRows; ++r) {
    _mm512_storeu_ps(out + r * ldo, acc[r][0]);
    _mm512_storeu_ps(out + r * ldo + 16, acc[r][1]);
  }
}
#endif

// ---- Seeds visited nearest first ----
//
// With seeds in their stored order, a row meets its near seeds at random places, so its kept
// array is beaten ~keep (1 + ln(m / keep)) times (~90 at 1,024 seeds) and each time shifted: the
// largest part of the knn time outside the GEMM. Here the seeds are grouped around kKnnPivots of
// them, and each row visits the groups in order of their pivot's distance from its own nearest
// pivot, so the kept array fills with near seeds first and few later seeds beat it. The kept
// set is the same (the keep smallest by (value, seed index), a total order, whatever the visiting
// order), so the result is too. Needs the row block's scores for all seeds at once.
constexpr std::size_t kKnnPivots = 16;
// Above this many seeds the all-seed score block would leave the cache; the stored order is used.
constexpr std::size_t kKnnOrderedMaxSeeds = 4096;
// Score block per thread: rows x seeds floats, at most 512 KiB (L2-sized, as the plain tile).
constexpr std::size_t kKnnOrderedBlockFloats = std::size_t{1} << 17;

struct SeedOrder {
  Matrix seeds;                       // seeds regrouped by pivot
  std::vector<float> norm;            // their squared norms
  std::vector<std::int32_t> index;    // stored index of each regrouped seed
  std::vector<std::size_t> pivot_at;  // regrouped position of each pivot
  std::vector<std::size_t> begin;     // group g: regrouped seeds [begin[g], begin[g + 1])
  std::vector<std::uint8_t> visit;    // visit[p * P + t]: t-th group for a row nearest pivot p
  std::size_t pivots = 0;
};

// `stored_norm`: the seeds' squared norms as the stored order computed them, so candidate values
// have the plain path's bits.
SeedOrder order_seeds(MatrixView seeds, const Eigen::VectorXf& stored_norm) {
  const std::size_t m = seeds.rows, d = seeds.cols;
  SeedOrder o;
  o.pivots = std::min(kKnnPivots, m);
  const std::size_t p = o.pivots;
  std::vector<std::size_t> pivot(p);
  for (std::size_t t = 0; t < p; ++t) pivot[t] = t * m / p;
  std::vector<std::uint8_t> group(m);
  std::vector<std::size_t> count(p + 1, 0);
  for (std::size_t s = 0; s < m; ++s) {
    std::size_t best = 0;
    double best_gap = std::numeric_limits<double>::infinity();
    for (std::size_t t = 0; t < p; ++t) {
      const double gap = exact_distance(seeds.row(s), seeds.row(pivot[t]), d);
      if (gap < best_gap) best_gap = gap, best = t;
    }
    group[s] = static_cast<std::uint8_t>(best);
    ++count[best + 1];
  }
  o.begin.assign(p + 1, 0);
  for (std::size_t t = 0; t < p; ++t) o.begin[t + 1] = o.begin[t] + count[t + 1];
  std::vector<std::size_t> next(o.begin.begin(), o.begin.end() - 1);
  o.seeds = Matrix(m, d);
  o.norm.resize(m);
  o.index.resize(m);
  o.pivot_at.resize(p);
  for (std::size_t s = 0; s < m; ++s) {
    const std::size_t at = next[group[s]]++;
    std::copy_n(seeds.row(s), d, o.seeds.row(at));
    o.norm[at] = stored_norm[static_cast<Eigen::Index>(s)];
    o.index[at] = static_cast<std::int32_t>(s);
    for (std::size_t t = 0; t < p; ++t)
      if (pivot[t] == s) o.pivot_at[t] = at;
  }
  o.visit.resize(p * p);
  for (std::size_t a = 0; a < p; ++a) {
    std::vector<std::pair<double, std::size_t>> by_gap(p);
    for (std::size_t b = 0; b < p; ++b)
      by_gap[b] = {exact_distance(seeds.row(pivot[a]), seeds.row(pivot[b]), d), b};
    std::sort(by_gap.begin(), by_gap.end());
    for (std::size_t t = 0; t < p; ++t)
      o.visit[a * p + t] = static_cast<std::uint8_t>(by_gap[t].second);
  }
  return o;
}

void knn_ordered(MatrixView x, MatrixView seeds, std::span<const std::int64_t> self_seed,
                 std::size_t k, std::size_t keep, KnnResult& result,
                 const Eigen::VectorXf& stored_norm, double smax) {
  const std::size_t n = x.rows, d = x.cols, m = seeds.rows;
  const SeedOrder order = order_seeds(seeds, stored_norm);
  const std::size_t p = order.pivots;
  const std::size_t row_block =
      std::clamp<std::size_t>(kKnnOrderedBlockFloats / m, 16, kKnnRowBlock);
#if defined(__AVX512F__)
  const SeedPanels panels = make_panels(order.seeds.view(), order.norm.data());
  const std::size_t ldt = panels.panels * kFusedSeeds;  // tile row: every seed, padded
#else
  Eigen::Map<const RowMatrixF> seed_matrix(order.seeds.data(), static_cast<Eigen::Index>(m),
                                           static_cast<Eigen::Index>(d));
  const std::size_t ldt = m;
#endif
  struct Buffers {
    std::vector<float> tile;  // row_block x ldt scores
    std::vector<float> tail;  // a last group of fewer than kFusedRows rows, padded with zeros
    std::vector<Candidate> kept_all;
    ExactList exact;
  };
  auto make = [&] {
    Buffers f;
    f.tile.resize(row_block * ldt);
    f.kept_all.resize(keep);
    f.exact.resize(keep);
    return f;
  };
  for_each_row_block(n, row_block, make, [&](Buffers& f, std::size_t r0, std::size_t rb) {
    ExactList& exact = f.exact;
#if defined(__AVX512F__)
    // Panel-outer: a panel (32 seeds, 5.5 KiB at d = 44) stays in L1 while the block's rows
    // pass it.
    const std::size_t whole = rb - rb % kFusedRows;
    if (whole < rb) {
      f.tail.assign(kFusedRows * d, 0.0f);
      std::copy_n(x.row(r0 + whole), (rb - whole) * d, f.tail.data());
    }
    alignas(64) float spill[kFusedRows * kFusedSeeds];
    for (std::size_t pi = 0; pi < panels.panels; ++pi) {
      const float* panel = panels.data.data() + pi * d * kFusedSeeds;
      float* out = f.tile.data() + pi * kFusedSeeds;
      for (std::size_t g0 = 0; g0 < whole; g0 += kFusedRows)
        panel_scores(x.row(r0 + g0), d, panel, out + g0 * ldt, ldt);
      if (whole < rb) {
        panel_scores(f.tail.data(), d, panel, spill, kFusedSeeds);
        for (std::size_t r = whole; r < rb; ++r)
          std::copy_n(spill + (r - whole) * kFusedSeeds, kFusedSeeds, out + r * ldt);
      }
    }
#else
    Eigen::Map<RowMatrixF> tile(f.tile.data(), static_cast<Eigen::Index>(row_block),
                                static_cast<Eigen::Index>(ldt));
    Eigen::Map<const RowMatrixF> xb(x.row(r0), static_cast<Eigen::Index>(rb),
                                    static_cast<Eigen::Index>(d));
    for (std::size_t s0 = 0; s0 < m; s0 += kKnnSeedBlock) {
      const std::size_t sb = std::min(kKnnSeedBlock, m - s0);
      tile.block(0, static_cast<Eigen::Index>(s0), static_cast<Eigen::Index>(rb),
                 static_cast<Eigen::Index>(sb))
          .noalias() =
          xb * seed_matrix.middleRows(static_cast<Eigen::Index>(s0), static_cast<Eigen::Index>(sb))
                   .transpose();
    }
#endif
    for (std::size_t r = 0; r < rb; ++r) {
      const std::int64_t self = self_seed.empty() ? -1 : self_seed[r0 + r];
      const float* score = f.tile.data() + r * ldt;
      const float* norm = order.norm.data();
      std::size_t nearest = 0;
      float nearest_value = std::numeric_limits<float>::infinity();
      for (std::size_t t = 0; t < p; ++t) {
        const std::size_t at = order.pivot_at[t];
        const float v = norm[at] - 2.0f * score[at];
        if (v < nearest_value) nearest_value = v, nearest = t;
      }
      // Groups nearest the row's pivot first; `kept` has bound(), insert(c) and settle() (ArrayKept
      // or VectorKept: the same set either way). Into a VectorKept, the first kKnnPrefill seeds in
      // that order are sorted at once by a branch-free network and their best `keep` taken: nearly
      // all of them would have been inserted one at a time (about two thirds of a row's ~46 inserts
      // at 512 seeds), each a chain of dependent permutes and an unpredictable branch. The kept set
      // is the keep smallest by candidate_less either way.
      auto group_begin = [&](std::size_t t) { return order.begin[order.visit[nearest * p + t]]; };
      auto group_end = [&](std::size_t t) { return order.begin[order.visit[nearest * p + t] + 1]; };
      auto visit = [&](auto& kept) {
        std::size_t t = 0;
        std::size_t j = p > 0 ? group_begin(0) : 0;
#if defined(__AVX512F__)
        if constexpr (std::is_same_v<std::decay_t<decltype(kept)>, VectorKept>) {
          alignas(64) std::array<std::uint64_t, kKnnPrefill> packed;
          packed.fill(~std::uint64_t{0});  // past every real (value key, seed)
          std::size_t held = 0;
          while (t < p && held < kKnnPrefill) {
            const std::size_t g1 = group_end(t);
            for (; j < g1 && held < kKnnPrefill; ++j) {
              const std::int32_t seed = order.index[j];
              if (seed == self) continue;
              // norm - 2 score with one rounding (2 score is exact), as scan_lanes computes it.
              const float value = norm[j] - 2.0f * score[j];
              packed[held++] =
                  (std::uint64_t{float_order_key(value)} << 32) | static_cast<std::uint32_t>(seed);
            }
            if (j == g1 && ++t < p) j = group_begin(t);
          }
          // (value key, seed) as one integer: its order is candidate_less's.
          sort_packed_32(packed.data());
          const std::size_t first = std::min(held, keep);
          std::array<Candidate, kKnnPrefill> best;
          for (std::size_t c = 0; c < first; ++c) {
            best[c] = {float_of_order_key(static_cast<std::uint32_t>(packed[c] >> 32)),
                       static_cast<std::int32_t>(packed[c] & 0xFFFFFFFFu)};
          }
          kept.assign_sorted(best.data(), first);
        }
#endif
        while (t < p) {
          const std::size_t g1 = group_end(t);
          for (std::size_t j0 = j; j0 < g1; j0 += kKnnScanLanes) {
            const std::size_t len = std::min(kKnnScanLanes, g1 - j0);
            alignas(64) std::array<float, kKnnScanLanes> value;
            std::uint64_t hits =
                scan_lanes<true>(norm + j0, score + j0, len, kept.bound(), value.data());
            // The group's passing lanes go in without rechecking the bound, which tightens only
            // once the group is in (see VectorKept::insert).
            while (hits != 0) {
              const auto u = static_cast<std::size_t>(std::countr_zero(hits));
              hits &= hits - 1;
              const Candidate c{value[u], order.index[j0 + u]};
              if (c.seed != self) kept.insert(c);
            }
            kept.settle();
          }
          if (++t < p) j = group_begin(t);
        }
      };
      Candidate* kept = f.kept_all.data();
      std::size_t size = 0;
#if defined(__AVX512F__)
      if (keep <= kKnnVectorKeepMax) {
        VectorKept vk(keep);
        visit(vk);
        size = vk.size();
        vk.store(kept);
      } else
#endif
      {
        ArrayKept ak{kept, keep};
        visit(ak);
        size = ak.size;
      }
      // A wider search reads the row's values from the score block, which holds every seed's,
      // so only the seeds within the limit get an exact distance.
      auto within = [&](double limit, ExactList& out) {
        std::size_t count = 0;
        for (std::size_t j = 0; j < m; ++j) {
          const float value = norm[j] - 2.0f * score[j];
          const std::int32_t seed = order.index[j];
          if (!(static_cast<double>(value) <= limit) || seed == self) continue;
          count = append_exact(out, count, x.row(r0 + r), seeds, seed);
        }
        return count;
      };
      finish_row(x, seeds, r0 + r, self, kept, size, k, smax, exact, result, within);
    }
  });
}

#if defined(__AVX512F__)
// ---- Many seeds: distances compared in registers ----
//
// Above kKnnOrderedMaxSeeds the GEMM path writes every score tile out, zeroes it first, repacks
// the account block for every tile and reads the tile back to scan it: together a third of an
// all-seed search (the GEMM itself ran near this CPU's peak). Here a micro-kernel computes
// kFusedRows accounts x kFusedSeeds seeds in 16 accumulators (d FMAs each, seeds laid out as
// [feature][seed] panels), turns them into candidate values and compares them with each row's
// bound in registers; only a row with a passing seed stores its values. Seeds are visited in
// increasing index per row, as on the plain path, so the kept set follows the same rules; the
// float32 values differ from the GEMM's by summation order only, and the final ranking is the
// exact float64 one of finish_row either way.
// Seeds per chunk that a row group walks: 512 x 44 floats is 88 KiB, resident in L2 while the
// rows of a block pass over it (the panels of one micro-kernel call, 5.5 KiB, stay in L1).
constexpr std::size_t kFusedSeedChunk = 512;

// Candidate values of kFusedRows rows (xg: row-major, d columns) against one panel; bit t of
// hits[r] set when seed t passes bound[r] (strictly below), values of such rows into value[r].
inline void fused_panel(const float* xg, std::size_t d, const float* panel, const float* norm,
                        const float* bound, std::uint32_t* hits, float (*value)[kFusedSeeds]) {
  __m512 acc[kFusedRows][2];
  panel_dots(xg, d, panel, acc);
  const __m512 two = _mm512_set1_ps(2.0f);
  const __m512 n0 = _mm512_loadu_ps(norm);
  const __m512 n1 = _mm512_loadu_ps(norm + 16);
  for (std::size_t r = 0; r < kFusedRows; ++r) {
    const __m512 v0 = _mm512_fnmadd_ps(two, acc[r][0], n0);
    const __m512 v1 = _mm512_fnmadd_ps(two, acc[r][1], n1);
    const __m512 b = _mm512_set1_ps(bound[r]);
    const std::uint32_t h = std::uint32_t{_mm512_cmp_ps_mask(v0, b, _CMP_LT_OQ)} |
                            (std::uint32_t{_mm512_cmp_ps_mask(v1, b, _CMP_LT_OQ)} << 16);
    hits[r] = h;
    if (h != 0) {
      _mm512_storeu_ps(value[r], v0);
      _mm512_storeu_ps(value[r] + 16, v1);
    }
  }
}

void knn_fused(MatrixView x, MatrixView seeds, std::span<const std::int64_t> self_seed,
               std::size_t k, std::size_t keep, KnnResult& result,
               const Eigen::VectorXf& stored_norm, double smax) {
  const std::size_t n = x.rows, d = x.cols;
  const SeedPanels panels = make_panels(seeds, stored_norm.data());
  const std::size_t chunk_panels = kFusedSeedChunk / kFusedSeeds;
  struct Buffers {
    std::vector<float> xg;  // the block's rows, padded to whole groups with zero rows
    std::vector<Candidate> kept;
    std::vector<std::size_t> size;
    std::vector<float> bound;
    ExactList exact;
  };
  auto make = [&] {
    Buffers f;
    f.xg.resize(kKnnRowBlock * d);
    f.kept.resize(kKnnRowBlock * keep);
    f.size.resize(kKnnRowBlock);
    f.bound.resize(kKnnRowBlock);
    f.exact.resize(keep);
    return f;
  };
  for_each_row_block(n, kKnnRowBlock, make, [&](Buffers& f, std::size_t r0, std::size_t rb) {
    const std::size_t groups = (rb + kFusedRows - 1) / kFusedRows;
    std::copy_n(x.row(r0), rb * d, f.xg.data());
    std::fill(f.xg.begin() + static_cast<std::ptrdiff_t>(rb * d), f.xg.end(), 0.0f);
    std::fill(f.size.begin(), f.size.end(), std::size_t{0});
    std::fill(f.bound.begin(), f.bound.end(), std::numeric_limits<float>::infinity());
    std::uint32_t hits[kFusedRows];
    float value[kFusedRows][kFusedSeeds];
    for (std::size_t c0 = 0; c0 < panels.panels; c0 += chunk_panels) {
      const std::size_t c1 = std::min(panels.panels, c0 + chunk_panels);
      for (std::size_t g = 0; g < groups; ++g) {
        const std::size_t g0 = g * kFusedRows;
        for (std::size_t pi = c0; pi < c1; ++pi) {
          fused_panel(f.xg.data() + g0 * d, d, panels.data.data() + pi * d * kFusedSeeds,
                      panels.norm.data() + pi * kFusedSeeds, f.bound.data() + g0, hits, value);
          for (std::size_t r = 0; r < kFusedRows && g0 + r < rb; ++r) {
            std::uint32_t h = hits[r];
            if (h == 0) continue;
            const std::size_t row = g0 + r;
            const std::int64_t self = self_seed.empty() ? -1 : self_seed[r0 + row];
            Candidate* kept = f.kept.data() + row * keep;
            std::size_t& size = f.size[row];
            float& bound = f.bound[row];
            while (h != 0) {
              const auto t = static_cast<std::size_t>(std::countr_zero(h));
              h &= h - 1;
              const Candidate c{value[r][t], static_cast<std::int32_t>(pi * kFusedSeeds + t)};
              keep_in_seed_order(kept, size, keep, bound, c, self);
            }
          }
        }
      }
    }
    for (std::size_t r = 0; r < rb; ++r) {
      const std::int64_t self = self_seed.empty() ? -1 : self_seed[r0 + r];
      // A wider search recomputes the row's values one panel at a time (2 d FMAs per 32 seeds)
      // and takes exact distances only for the seeds within the limit: at 33k seeds an exact
      // distance to every seed cost about ten times as much.
      auto within = [&](double limit, ExactList& out) {
        const float* xi = x.row(r0 + r);
        std::size_t count = 0;
        for (std::size_t pi = 0; pi < panels.panels; ++pi) {
          alignas(64) float v[kFusedSeeds];
          panel_values(xi, d, panels.data.data() + pi * d * kFusedSeeds,
                       panels.norm.data() + pi * kFusedSeeds, v);
          // Padded seeds hold +inf and never pass.
          for (std::size_t t = 0; t < kFusedSeeds; ++t) {
            const auto seed = static_cast<std::int64_t>(pi * kFusedSeeds + t);
            if (!(static_cast<double>(v[t]) <= limit) || seed == self) continue;
            count = append_exact(out, count, xi, seeds, seed);
          }
        }
        return count;
      };
      finish_row(x, seeds, r0 + r, self, f.kept.data() + r * keep, f.size[r], k, smax, f.exact,
                 result, within);
    }
  });
}
#endif

}  // namespace

KnnResult knn_to_seeds(MatrixView x, MatrixView seeds, std::span<const std::int64_t> self_seed,
                       int neighbors, int columns) {
  if (neighbors < 1) throw Error("lookalike: neighbors must be >= 1");
  if (columns < 0) throw Error("lookalike: knn columns must be >= 0 (0 = all neighbours)");
  if (seeds.rows == 0) throw Error("lookalike: no seeds");
  if (seeds.cols != x.cols) throw Error("lookalike: seed and account feature counts differ");
  if (!self_seed.empty() && self_seed.size() != x.rows) {
    throw Error("lookalike: self_seed size differs from the number of rows");
  }
  const std::size_t n = x.rows;
  const std::size_t d = x.cols;
  const std::size_t m = seeds.rows;
  if (m > static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max()))
    throw Error("lookalike: more than 2^31 - 1 reference seeds");
  const std::size_t k = std::min(static_cast<std::size_t>(neighbors), m);
  const std::size_t keep = std::min(k + kKnnRefineExtra, m);
  const bool sorted = keep <= kKnnSortedMax;

  KnnResult result;
  result.k = columns > 0 ? std::min(k, static_cast<std::size_t>(columns)) : k;
  result.index.assign(n * result.k, -1);
  result.distance.assign(n * result.k, std::numeric_limits<float>::infinity());
  result.mean.assign(n, std::numeric_limits<double>::infinity());
  if (n == 0) return result;

  Eigen::Map<const RowMatrixF> seed_matrix(seeds.data, static_cast<Eigen::Index>(m),
                                           static_cast<Eigen::Index>(d));
  const Eigen::VectorXf seed_norm = seed_matrix.rowwise().squaredNorm();
  const double smax = largest_seed_norm(seed_norm);
  if (sorted && m >= 2 * kKnnPivots && m <= kKnnOrderedMaxSeeds) {
    knn_ordered(x, seeds, self_seed, k, keep, result, seed_norm, smax);
    return result;
  }
#if defined(__AVX512F__)
  if (sorted && m > kKnnOrderedMaxSeeds) {
    knn_fused(x, seeds, self_seed, k, keep, result, seed_norm, smax);
    return result;
  }
#endif

  struct Buffers {
    RowMatrixF tile;
    std::vector<Candidate> heaps;
    std::vector<std::size_t> heap_size;
    ExactList exact;
  };
  auto make = [&] {
    Buffers f;
    f.tile.resize(static_cast<Eigen::Index>(kKnnRowBlock),
                  static_cast<Eigen::Index>(std::min(kKnnSeedBlock, m)));
    f.heaps.resize(kKnnRowBlock * keep);
    f.heap_size.resize(kKnnRowBlock);
    f.exact.resize(keep);
    return f;
  };
  for_each_row_block(n, kKnnRowBlock, make, [&](Buffers& f, std::size_t r0, std::size_t rb) {
    RowMatrixF& tile = f.tile;
    std::vector<Candidate>& heaps = f.heaps;
    std::vector<std::size_t>& heap_size = f.heap_size;
    Eigen::Map<const RowMatrixF> xb(x.row(r0), static_cast<Eigen::Index>(rb),
                                    static_cast<Eigen::Index>(d));
    std::fill(heap_size.begin(), heap_size.end(), std::size_t{0});
    for (std::size_t s0 = 0; s0 < m; s0 += kKnnSeedBlock) {
      const std::size_t sb = std::min(kKnnSeedBlock, m - s0);
      auto g = tile.topLeftCorner(static_cast<Eigen::Index>(rb), static_cast<Eigen::Index>(sb));
      g.noalias() =
          xb * seed_matrix.middleRows(static_cast<Eigen::Index>(s0), static_cast<Eigen::Index>(sb))
                   .transpose();
      for (std::size_t r = 0; r < rb; ++r) {
        const std::int64_t self = self_seed.empty() ? -1 : self_seed[r0 + r];
        Candidate* heap = heaps.data() + r * keep;
        std::size_t& size = heap_size[r];
        const float* score_row = tile.data() + r * static_cast<std::size_t>(tile.cols());
        const float* norm = seed_norm.data() + s0;
        // Once the heap is full almost no seed beats its worst candidate, so each group of
        // lanes is first tested branch-free (vectorized) into a bit mask and only its set
        // bits are visited. Same comparisons as a plain loop: same candidates.
        float bound = size < keep ? std::numeric_limits<float>::infinity()
                                  : heap[sorted ? keep - 1 : 0].value;
        for (std::size_t j0 = 0; j0 < sb; j0 += kKnnScanLanes) {
          const std::size_t len = std::min(kKnnScanLanes, sb - j0);
          alignas(64) std::array<float, kKnnScanLanes> value;
          std::uint64_t hits =
              scan_lanes<false>(norm + j0, score_row + j0, len, bound, value.data());
          // Visit only the lanes that passed, in seed order.
          while (hits != 0) {
            const auto t = static_cast<std::size_t>(std::countr_zero(hits));
            hits &= hits - 1;
            const auto seed = static_cast<std::int32_t>(s0 + j0 + t);
            if (sorted) {
              keep_in_seed_order(heap, size, keep, bound, Candidate{value[t], seed}, self);
              continue;
            }
            // An insertion below may have tightened the bound since the mask was taken.
            if (!(value[t] < bound) || seed == self) continue;
            if (size < keep) {
              heap[size++] = Candidate{value[t], seed};
              std::push_heap(heap, heap + size, candidate_less);
            } else {
              // Seeds arrive in increasing index order and only a strictly smaller value
              // displaces a kept seed: ties go to the lower index.
              std::pop_heap(heap, heap + size, candidate_less);
              heap[size - 1] = Candidate{value[t], seed};
              std::push_heap(heap, heap + size, candidate_less);
            }
            if (size == keep) bound = heap[0].value;
          }
        }
      }
    }
    for (std::size_t r = 0; r < rb; ++r) {
      const std::int64_t self = self_seed.empty() ? -1 : self_seed[r0 + r];
      Candidate* heap = heaps.data() + r * keep;
      // finish_row takes the kept set in candidate_less order (a max-heap sorts into it).
      if (!sorted) std::sort_heap(heap, heap + heap_size[r], candidate_less);
      finish_row(x, seeds, r0 + r, self, heap, heap_size[r], k, smax, f.exact, result,
                 every_seed(x, seeds, r0 + r, self));
    }
  });
  return result;
}

}  // namespace icp
