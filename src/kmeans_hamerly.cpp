// Hamerly's algorithm: one lower bound (distance to every other centre) per row; the upper bound
// is the exact distance to the assigned centre, computed every step anyway for `distance`. A row is
// rescored only when its bounds cannot prove that the assigned centre still has the strictly
// smallest score; rescoring uses the same kernel as Lloyd, so the assignments (and every bit after
// them) equal Lloyd's.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <utility>
#include <vector>

#include "kmeans_internal.hpp"

namespace icp::kmeans_detail {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

class HamerlyPolicy final : public StepPolicy {
 public:
  StepStats step(MatrixView xc, LloydState& state, Reducer& reducer) override {
    const std::size_t n = xc.rows;
    const std::size_t d = xc.cols;
    const std::size_t k = state.centroids.rows();
    if (xnorm_.size() != n) xnorm_ = row_norms(xc);
    const MatrixView c = state.centroids.view();
    const BoundFrame frame = make_bound_frame(c);

    const bool full = !valid_;
    std::vector<double> moves(k, 0.0);
    double max1 = 0.0;
    double max2 = 0.0;
    std::size_t argmax1 = k;
    if (full) {
      lower_.assign(n, 0.0);
    } else {
      moves = centre_moves(bound_centres_, state.centroids);
      for (std::size_t j = 0; j < k; ++j) {
        if (moves[j] > max1) {
          max2 = max1;
          max1 = moves[j];
          argmax1 = j;
        } else if (moves[j] > max2) {
          max2 = moves[j];
        }
      }
    }

    ClusterAccumulator summed(n, k, d, state.weight, reducer.size() > 1);
    const AssignStats assigned = bounded_assign(
        xc, state, frame.packed, full, 0,
        [&](std::size_t i, std::span<double>) {
          const auto a = static_cast<std::size_t>(state.assignment[i]);
          const double dist = squared_distance(xc.row(i), c.row(a), d);
          const double u = round_up(std::sqrt(dist));
          const double l = lower_[i] - (a == argmax1 ? max2 : max1);
          const double low = std::max(l, 2.0 * frame.half[a] - u);
          const double err = score_error(static_cast<double>(xnorm_[i]), frame.cmax, d);
          if (!(low > u && low * low - u * u > 2.0 * err)) return false;
          lower_[i] = l;
          state.distance[i] = static_cast<float>(dist);
          return true;
        },
        [&](std::size_t i, const float* s, std::size_t best) {
          float second = std::numeric_limits<float>::infinity();
          for (std::size_t j = 0; j < k; ++j) {
            if (j != best) second = std::min(second, s[j]);
          }
          const double err = score_error(static_cast<double>(xnorm_[i]), frame.cmax, d);
          lower_[i] = k == 1 ? kInf
                             : lower_from_score(static_cast<double>(second),
                                                row_sq_norm(xc.row(i), d), err);
        },
        summed);
    bound_centres_ = state.centroids;
    const StepStats stats = finish_step(xc, state, assigned, reducer, &summed);
    // Relocated rows changed label without their bounds following: start over next step.
    valid_ = stats.relocated == 0;
    return stats;
  }

 private:
  std::vector<double> lower_;
  std::vector<float> xnorm_;
  Matrix bound_centres_;
  bool valid_ = false;
};

}  // namespace

std::unique_ptr<StepPolicy> make_hamerly_policy() {
  return std::make_unique<HamerlyPolicy>();
}

}  // namespace icp::kmeans_detail
