// Hamerly's algorithm with the runner-up kept apart: per row an upper bound on the distance to
// its centre a, a lower bound on the distance to its runner-up b (the second-nearest centre when
// the bounds were last reset), and a lower bound on the distance to every other centre, all
// carried from step to step as the centres move. A row whose bounds prove that its centre still
// has the strictly smallest score is not read at all; for the others the distances to a and b
// are computed exactly and the proof retried, and rows still not proven are rescored with
// Lloyd's kernel, so the labels (and every bit after them) equal Lloyd's.
// Why the runner-up: on overlapping segments most rows that fail Hamerly's single lower bound sit
// on the boundary with one neighbouring centre. One bound for all other centres loses the
// largest move of any of them each step; the runner-up's own bound loses only its own move, and
// the bound for the rest is far from the row, so a boundary row is settled by two exact
// distances (a and b) instead of a rescoring against every centre (10M generated rows, k = 10:
// rescored rows per late step 0.85-2.1M -> see bench/results/kmeans.md).
// The cluster moments are exact integers, so a step updates them from the relabelled rows alone.
//
// The bounds are stored relative to cumulative drifts, so that a proven row is read but never
// written: D_j sums centre j's moves, and P_ab the largest move among the centres other than a
// and b of each step (all rounded up). A row stores u - D_a, l_b + D_b and l + P_ab from when
// they were last set (its label and runner-up change only when they are reset). Its current
// bounds are then stored + D_a, stored - D_b and stored - P_ab.

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#if defined(__AVX512BW__)
#include <immintrin.h>
#endif

#include "icp/allocator.hpp"
#include "kmeans_internal.hpp"
#include "kmeans_relabel.hpp"
#include "value_order.hpp"

namespace icp::kmeans_detail {

namespace {

/// Up to this many centres P_ab is a k x k table (512 KiB at 256, updated in O(k^2) per step);
/// above it P_ab is replaced by the largest move among the centres other than a, which bounds it.
constexpr std::size_t kPairTableMaxCentres = 256;

/// Bounded steps start once at most 1 row in this many changed label in a Lloyd step: on 10M
/// generated rows a bounded step beat Lloyd's from ~2.5% changed on (see the policy's step).
constexpr std::int64_t kBoundedAfterChangedShare = 32;

constexpr float kFloatInf = std::numeric_limits<float>::infinity();

/// Rows whose screening flags are kept at once: 256 bytes on the stack, a multiple of any
/// vector width.
constexpr std::size_t kScreenBatch = 256;

/// Up to this many centres the runner-up and the third come from one branch-free pass
/// (two_smallest_except); above it from argmin_scores, vectorized, run twice.
constexpr std::size_t kTwoSmallestScanMax = 32;

/// (score, index) as one integer whose unsigned order is the scores' order with ties to the lower
/// index (-0 and +0 share a key, as they compare equal).
inline std::uint64_t score_key(float v, std::size_t j) noexcept {
  return (std::uint64_t{float_order_key_inline(v)} << 32) | static_cast<std::uint32_t>(j);
}

/// Indices of the smallest and second-smallest of s[0, k) other than s[skip] (ties to the lower
/// index; the second is meaningless when k < 3): what taking s[skip] out and running
/// argmin_scores twice gives, for finite scores. Min/max of keys compile to conditional moves,
/// where argmin_scores ended each call in a lane reduction whose branches mispredicted: three
/// calls per rescored row were a tenth of a 10M-row fit at k = 10.
inline std::array<std::size_t, 2> two_smallest_except(const float* s, std::size_t k,
                                                      std::size_t skip) noexcept {
  std::uint64_t first = ~std::uint64_t{0};
  std::uint64_t second = ~std::uint64_t{0};
  for (std::size_t j = 0; j < k; ++j) {
    const std::uint64_t key = j == skip ? ~std::uint64_t{0} : score_key(s[j], j);
    second = std::min(second, std::max(first, key));
    first = std::min(first, key);
  }
  return {static_cast<std::size_t>(first & 0xFFFFFFFFu),
          static_cast<std::size_t>(second & 0xFFFFFFFFu)};
}

/// Indices of the three largest moves (k < 3: the missing ones are k, matching no centre).
std::array<std::size_t, 3> top_movers(const std::vector<double>& moves) {
  std::array<std::size_t, 3> top{moves.size(), moves.size(), moves.size()};
  for (std::size_t j = 0; j < moves.size(); ++j) {
    std::size_t pos = 3;
    while (pos > 0 && (top[pos - 1] == moves.size() || moves[j] > moves[top[pos - 1]])) --pos;
    if (pos == 3) continue;
    for (std::size_t q = 2; q > pos; --q) top[q] = top[q - 1];
    top[pos] = j;
  }
  return top;
}

class HamerlyPolicy final : public StepPolicy {
 public:
  StepStats step(MatrixView xc, LloydState& state, Reducer& reducer) override {
    if (!bounded_) {
      // Early in a fit most rows' bounds fail, and a bounded step then costs more than Lloyd's
      // fused pass (10M generated rows, k = 10: 0.4-1.0 s against 0.36 s while more than ~3% of
      // the rows change label, plus the first step that builds the bounds). Lloyd's steps give
      // the same bits, so the switch only moves time. `changed` is summed over the processes,
      // so all of them switch together.
      if (total_rows_ == 0) total_rows_ = row_slice(xc.rows, reducer).total;
      const StepStats stats = lloyd_step(xc, state, reducer);
      if (stats.changed * kBoundedAfterChangedShare <= static_cast<std::int64_t>(total_rows_)) {
        bounded_ = true;
      }
      return stats;
    }
    const std::size_t n = xc.rows;
    const std::size_t d = xc.cols;
    const std::size_t k = state.centroids.rows();
    ensure_scales(xc, state, reducer);
    const MatrixView c = state.centroids.view();
    const BoundFrame frame = make_bound_frame(c);
    const std::vector<double> wide = widen_rows(c);  // the centres for the exact distances
    const bool full = !valid_;
    const bool pairs = k <= kPairTableMaxCentres;
    if (full) {
      // Not zeroed: the full step sets every row's bounds and norm, and its threads first
      // touch the pages in parallel (zeroing 200 MB here took 0.28 s at 10M rows).
      upper_.resize(n);
      second_.resize(n);
      lower_.resize(n);
      runner_.resize(n);
      xnorm_.resize(n);
      drift_.assign(k, 0.0);
      pair_drift_.assign(pairs ? k * k : k, 0.0);
      moments_ = ClusterMoments(k, d, !state.weight.empty());
    } else {
      advance_drifts(centre_moves(bound_centres_, state.centroids), pairs);
    }
    const std::size_t pair_stride = pairs ? k : 0;
    // score_error(xnorm, cmax, d) doubled, as a quadratic in xnorm: e0 + e1 xnorm + e2 xnorm^2.
    const double e0 = 2.0 * score_error(0.0, frame.cmax, d);
    const double e2 = 2.0 * score_error(1.0, 0.0, d);
    const double e1 = 2.0 * score_error(1.0, frame.cmax, d) - e0 - e2;
    std::vector<double> twice_half(k);
    for (std::size_t j = 0; j < k; ++j) twice_half[j] = 2.0 * frame.half[j];

    // Whether a row (centre a, upper bound u, lower bounds lb on its runner-up and lr on the
    // rest) provably keeps a: Lloyd's float scores then differ by more than their error bound.
    // Ternaries and & rather than std::min/max and &&: no branch, so the screen's loop over it
    // vectorizes.
    // Centre indices as int64, the offsets the screen's vectorized gathers take.
    const double* th = twice_half.data();
    auto proven = [=](double u, double lb, double lr, std::int64_t a, float xnorm) {
      const double rest = lb < lr ? lb : lr;
      const double sep = th[a] - u;
      const double low = rest > sep ? rest : sep;
      const double x = static_cast<double>(xnorm);
      const double err2 = e0 + x * (e1 + x * e2);
      return (low > u) & ((low - u) * (low + u) > err2);
    };
    const double* pd = pair_drift_.data();
    const auto stride = static_cast<std::int64_t>(pair_stride);
    auto rest_bound = [=](float stored, std::int64_t a, std::int64_t b) {
      return bound_down(static_cast<double>(stored) - pd[a * stride + b]);
    };
    // Per chunk: the rows the carried bounds cannot prove. Reads 20 bytes per row, writes none.
    // The test runs over a batch into flags and the failures are gathered after, so that the
    // test's loop has no branch and vectorizes (gathers of the drifts by label): it runs on every
    // row in every step, where the rows it lets through are only a few percent late in a fit.
    auto screen = [&](std::size_t b0, std::size_t b1, RowList& check) {
      const std::int32_t* label = state.assignment.data();
      const std::int32_t* runner = runner_.data();
      const float* up = upper_.data();
      const float* sec = second_.data();
      const float* lo = lower_.data();
      const float* xn = xnorm_.data();
      const double* dr = drift_.data();
      // Local copies of the two closures: their captures then stay in registers, where reached
      // through this lambda's references they were reloaded every row (10% slower).
      const auto prove = proven;
      const auto rest = rest_bound;
      std::uint8_t fail[kScreenBatch];
      // Every row gets a slot and only a failing one is counted: a branch on the flag
      // mispredicted on the few percent of rows that fail, and cost more than the test itself.
      std::size_t count = check.size();
      check.resize(count + (b1 - b0));
      std::size_t* out = check.data();
      for (std::size_t s0 = b0; s0 < b1; s0 += kScreenBatch) {
        const std::size_t len = std::min(kScreenBatch, b1 - s0);
        for (std::size_t t = 0; t < len; ++t) {
          const std::size_t i = s0 + t;
          const std::int64_t a = label[i];
          const std::int64_t b = runner[i];
          const double u = bound_up(static_cast<double>(up[i]) + dr[a]);
          const double lb = bound_down(static_cast<double>(sec[i]) - dr[b]);
          fail[t] = static_cast<std::uint8_t>(!prove(u, lb, rest(lo[i], a, b), a, xn[i]));
        }
        std::size_t t = 0;
#if defined(__AVX512BW__)
        // Eight rows per step: their flags as a mask, the failing rows' indices compressed to
        // the front of a register and stored whole (the slots past `count` are overwritten by
        // the next step, and stay inside the block's b1 - b0 slots). One store per row and its
        // dependent count were a tenth of a bounded step.
        const __m512i lane = _mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0);
        for (; t + 64 <= len; t += 64) {
          const __m512i flags = _mm512_loadu_si512(fail + t);
          const std::uint64_t bits = _mm512_test_epi8_mask(flags, flags);
          for (std::size_t g = 0; g < 64; g += 8) {
            const auto m = static_cast<__mmask8>(bits >> g);
            const __m512i rows =
                _mm512_add_epi64(_mm512_set1_epi64(static_cast<long long>(s0 + t + g)), lane);
            _mm512_storeu_si512(out + count, _mm512_maskz_compress_epi64(m, rows));
            count += static_cast<std::size_t>(std::popcount(static_cast<unsigned>(m)));
          }
        }
#endif
        for (; t < len; ++t) {
          out[count] = s0 + t;
          count += fail[t];
        }
      }
      check.resize(count);
    };
    // The row is read: exact distances to its centre and runner-up, then the same proof.
    auto tight = [&](std::size_t i) {
      const auto a = static_cast<std::size_t>(state.assignment[i]);
      const auto b = static_cast<std::size_t>(runner_[i]);
      double sq[2];
      squared_distance_pair(xc.row(i), wide.data() + a * d, wide.data() + b * d, d, sq);
      const double u = bound_up(std::sqrt(sq[0]));
      const double lb = k > 1 ? bound_down(std::sqrt(sq[1])) : kInfinity;
      if (!proven(u, lb, rest_bound(lower_[i], a, b), a, xnorm_[i])) return false;
      upper_[i] = float_up(bound_up(u - drift_[a]));
      if (k > 1) second_[i] = float_down(bound_down(lb + drift_[b]));
      return true;
    };
    // Every bound comes from the scores Lloyd's kernel just gave (no exact distance: the score's
    // error bound widens them by ~1e-6 relative, where a distance would read the row again).
    auto rescored = [&](std::size_t i, const float* row, float* s, std::size_t best) {
      const double xx = row_sq_norm(row, d);
      // The norm the screen needs comes with the full step's rescoring, not a pass of its own.
      if (full) xnorm_[i] = float_up(bound_up(std::sqrt(xx)));
      const double err = score_error(static_cast<double>(xnorm_[i]), frame.cmax, d);
      upper_[i] = float_up(
          bound_up(upper_from_score(static_cast<double>(s[best]), xx, err) - drift_[best]));
      runner_[i] = static_cast<std::int32_t>(best);
      second_[i] = kFloatInf;
      lower_[i] = kFloatInf;
      if (k == 1) return;
      // Runner-up: the smallest score after best's (ties to the lower index, as argmin_scores
      // takes them); then the smallest of the rest.
      std::size_t b = 0;
      float second = kFloatInf;
      float rest = kFloatInf;
      if (k <= kTwoSmallestScanMax) {
        const std::array<std::size_t, 2> two = two_smallest_except(s, k, best);
        b = two[0];
        second = s[b];
        if (k > 2) rest = s[two[1]];
      } else {
        // The row's scores are scratch, so each is taken out in turn and the vectorized argmin
        // rerun: two scalar passes over k scores were most of a step at k = 256.
        s[best] = kFloatInf;
        b = argmin_scores(s, k);
        second = s[b];
        s[b] = kFloatInf;
        if (k > 2) rest = s[argmin_scores(s, k)];
      }
      runner_[i] = static_cast<std::int32_t>(b);
      second_[i] = float_down(
          bound_down(lower_from_score(static_cast<double>(second), xx, err) + drift_[b]));
      if (k > 2) {
        lower_[i] = float_down(bound_down(lower_from_score(static_cast<double>(rest), xx, err) +
                                          pair_drift_[best * pair_stride + b]));
      }
    };
    const std::int64_t changed =
        bounded_relabel(xc, state, frame.packed, full, moments_, screen, tight, rescored);
    bound_centres_ = state.centroids;
    const StepStats stats = finish_bounded_step(xc, state, changed, moments_, reducer);
    // Relocated rows changed label without their bounds or moments following: start over.
    valid_ = stats.relocated == 0;
    return stats;
  }

 private:
  static constexpr double kInfinity = std::numeric_limits<double>::infinity();

  /// Adds this step's centre moves to D_j and to P_ab (the largest move among the centres other
  /// than a and b: the first of the three largest that is neither), or without the table to
  /// P_a (the largest move among the centres other than a).
  void advance_drifts(const std::vector<double>& moves, bool pairs) {
    const std::size_t k = moves.size();
    for (std::size_t j = 0; j < k; ++j) drift_[j] = bound_up(drift_[j] + moves[j]);
    const std::array<std::size_t, 3> top = top_movers(moves);
    auto largest_except = [&](std::size_t a, std::size_t b) {
      for (const std::size_t t : top) {
        if (t != a && t != b) return t < k ? moves[t] : 0.0;
      }
      return 0.0;
    };
    if (!pairs) {
      for (std::size_t a = 0; a < k; ++a) {
        pair_drift_[a] = bound_up(pair_drift_[a] + largest_except(a, a));
      }
      return;
    }
    for (std::size_t a = 0; a < k; ++a) {
      for (std::size_t b = 0; b < k; ++b) {
        double& p = pair_drift_[a * k + b];
        p = bound_up(p + largest_except(a, b));
      }
    }
  }

  bool bounded_ = false;        // false: Lloyd's steps until few rows change label
  std::size_t total_rows_ = 0;  // over every process
  template <class T>
  using PerRow = std::vector<T, DefaultInitAllocator<T>>;
  PerRow<float> upper_;          // + drift_[label] >= distance to the assigned centre
  PerRow<float> second_;         // - drift_[runner] <= distance to the runner-up
  PerRow<float> lower_;          // - P(label, runner) <= distance to every other centre
  PerRow<std::int32_t> runner_;  // the runner-up centre when the bounds were last reset
  std::vector<double> drift_;
  std::vector<double> pair_drift_;  // k x k (P_ab), or k (P_a) above kPairTableMaxCentres
  PerRow<float> xnorm_;             // ||x_i||, rounded up
  ClusterMoments moments_;  // of this process's rows under the current labels
  Matrix bound_centres_;
  bool valid_ = false;
};

}  // namespace

std::unique_ptr<StepPolicy> make_hamerly_policy() {
  return std::make_unique<HamerlyPolicy>();
}

}  // namespace icp::kmeans_detail
