// Hamerly's algorithm: per row an upper bound on the distance to its centre and a lower bound on
// the distance to every other centre, both carried from step to step as the centres move. A row
// whose bounds prove that its centre still has the strictly smallest score is not read at all;
// for the others the upper bound is first tightened to the exact distance, and rows still not
// proven are rescored with Lloyd's kernel, so the labels (and every bit after them) equal Lloyd's.
// The cluster moments are exact integers, so a step updates them from the relabelled rows alone.
//
// The bounds are stored relative to cumulative drifts, so that a proven row is read but never
// written: D_j sums centre j's moves and O_j the largest move among the other centres of each
// step (both rounded up), and a row of centre a stores u - D_a and l + O_a from when its bounds
// were last set (its label only changes when they are reset). Its current bounds are then
// stored + D_a and stored - O_a.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <vector>

#include "kmeans_internal.hpp"
#include "kmeans_relabel.hpp"

namespace icp::kmeans_detail {

namespace {

class HamerlyPolicy final : public StepPolicy {
 public:
  StepStats step(MatrixView xc, LloydState& state, Reducer& reducer) override {
    const std::size_t n = xc.rows;
    const std::size_t d = xc.cols;
    const std::size_t k = state.centroids.rows();
    ensure_scales(xc, state, reducer);
    if (xnorm_.size() != n) xnorm_ = row_norms(xc);
    const MatrixView c = state.centroids.view();
    const BoundFrame frame = make_bound_frame(c);
    const bool full = !valid_;
    if (full) {
      upper_.assign(n, 0.0f);
      lower_.assign(n, 0.0f);
      drift_.assign(k, 0.0);
      other_drift_.assign(k, 0.0);
      moments_ = ClusterMoments(k, d, !state.weight.empty());
    } else {
      const std::vector<double> moves = centre_moves(bound_centres_, state.centroids);
      for (std::size_t j = 0; j < k; ++j) drift_[j] = bound_up(drift_[j] + moves[j]);
      // The largest move among the centres other than j: the largest, or for the centre that
      // made it, the second largest.
      std::size_t top = 0;
      for (std::size_t j = 1; j < k; ++j) {
        if (moves[j] > moves[top]) top = j;
      }
      double second = 0.0;
      for (std::size_t j = 0; j < k; ++j) {
        if (j != top) second = std::max(second, moves[j]);
      }
      for (std::size_t j = 0; j < k; ++j) {
        other_drift_[j] = bound_up(other_drift_[j] + (j == top ? second : moves[top]));
      }
    }
    // score_error(xnorm, cmax, d) doubled, as a quadratic in xnorm: e0 + e1 xnorm + e2 xnorm^2.
    const double e0 = 2.0 * score_error(0.0, frame.cmax, d);
    const double e2 = 2.0 * score_error(1.0, 0.0, d);
    const double e1 = 2.0 * score_error(1.0, frame.cmax, d) - e0 - e2;
    std::vector<double> twice_half(k);
    for (std::size_t j = 0; j < k; ++j) twice_half[j] = 2.0 * frame.half[j];

    auto proven = [&](double u, double l, std::size_t a, float xnorm) {
      const double low = std::max(l, twice_half[a] - u);
      const double x = static_cast<double>(xnorm);
      const double err2 = e0 + x * (e1 + x * e2);
      return low > u && (low - u) * (low + u) > err2;
    };
    // Per block: the rows the carried bounds cannot prove. Reads 16 bytes per row, writes none.
    auto screen = [&](std::size_t b0, std::size_t b1, std::vector<std::size_t>& check) {
      const std::int32_t* label = state.assignment.data();
      const float* up = upper_.data();
      const float* lo = lower_.data();
      const float* xn = xnorm_.data();
      const double* dr = drift_.data();
      const double* od = other_drift_.data();
      for (std::size_t i = b0; i < b1; ++i) {
        const auto a = static_cast<std::size_t>(label[i]);
        const double u = bound_up(static_cast<double>(up[i]) + dr[a]);
        const double l = bound_down(static_cast<double>(lo[i]) - od[a]);
        if (!proven(u, l, a, xn[i])) check.push_back(i);
      }
    };
    auto tight = [&](std::size_t i) {
      const auto a = static_cast<std::size_t>(state.assignment[i]);
      const double u = distance_up(xc.row(i), c.row(a), d);
      const double l = bound_down(static_cast<double>(lower_[i]) - other_drift_[a]);
      if (!proven(u, l, a, xnorm_[i])) return false;
      upper_[i] = float_up(bound_up(u - drift_[a]));
      return true;
    };
    auto rescored = [&](std::size_t i, const float* row, const float* s, std::size_t best) {
      float second = std::numeric_limits<float>::infinity();
      for (std::size_t j = 0; j < k; ++j) {
        if (j != best) second = std::min(second, s[j]);
      }
      const double err = score_error(static_cast<double>(xnorm_[i]), frame.cmax, d);
      lower_[i] = k == 1 ? std::numeric_limits<float>::infinity()
                         : float_down(bound_down(lower_from_score(static_cast<double>(second),
                                                                  row_sq_norm(row, d), err) +
                                                 other_drift_[best]));
      upper_[i] = float_up(bound_up(distance_up(row, c.row(best), d) - drift_[best]));
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
  std::vector<float> upper_;  // + drift_[label] >= distance to the assigned centre
  std::vector<float> lower_;  // - other_drift_[label] <= distance to every other centre
  std::vector<double> drift_;
  std::vector<double> other_drift_;
  std::vector<float> xnorm_;
  ClusterMoments moments_;  // of this process's rows under the current labels
  Matrix bound_centres_;
  bool valid_ = false;
};

}  // namespace

std::unique_ptr<StepPolicy> make_hamerly_policy() {
  return std::make_unique<HamerlyPolicy>();
}

}  // namespace icp::kmeans_detail
