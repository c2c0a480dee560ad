// Yinyang k-means (Ding et al. 2015): centres are clustered once into groups; each row keeps
// one lower bound per group. A bound drifts only by its own group's largest centre move, so it
// stays tight when a few centres move. A row that fails the test is rescored against every
// centre with Lloyd's blocked kernel, so the assignments (and every bit after them) equal
// Lloyd's. The paper's per-group local filter (score only the groups whose bound fails) is left
// out on purpose: a score outside the blocked kernel is score_one's chain of d dependent FMAs
// (latency-bound, ~4 cycles each), which costs more than a whole kPanelWidth-centre panel in the
// pipelined kernel, so scoring a few groups one centre at a time cannot beat scoring all k
// centres at the k of a segmentation (tens to hundreds). Packing centres by group into their
// own panels would avoid that, at the price of padding every group to a panel.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <utility>
#include <vector>

#include "kmeans_internal.hpp"
#include "kmeans_relabel.hpp"

namespace icp::kmeans_detail {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
/// Lloyd iterations that cluster the centres into groups (the paper's choice): the grouping
/// only steers which bounds are shared, never the result.
constexpr int kGroupingIterations = 5;
/// Fixed seed of the grouping's k-means++: the grouping is a function of the centres alone.
constexpr std::uint64_t kGroupingSeed = 0x59696E79616E67ULL;

/// Group of each centre: a few Lloyd steps on the centres from a k-means++ start.
std::vector<std::size_t> group_centres(const Matrix& centroids, std::size_t groups) {
  const std::size_t k = centroids.rows();
  std::vector<std::size_t> group(k, 0);
  if (groups <= 1) return group;
  LloydState s;
  s.centroids = init_kmeanspp(centroids.view(), static_cast<int>(groups), kGroupingSeed);
  s.assignment.assign(k, -1);
  s.distance.assign(k, 0.0f);
  for (int it = 0; it < kGroupingIterations; ++it)
    (void)lloyd_step(centroids.view(), s, local_reducer());
  (void)assign_rows(centroids.view(), s.centroids.view(), s.assignment, s.distance, false);
  for (std::size_t j = 0; j < k; ++j) group[j] = static_cast<std::size_t>(s.assignment[j]);
  return group;
}

class YinyangPolicy final : public StepPolicy {
 public:
  StepStats step(MatrixView xc, LloydState& state, Reducer& reducer) override {
    const std::size_t n = xc.rows;
    const std::size_t d = xc.cols;
    const std::size_t k = state.centroids.rows();
    if (xnorm_.size() != n) xnorm_ = row_norms(xc);
    if (group_.size() != k) {
      groups_ = yinyang_groups(k);
      group_ = group_centres(state.centroids, groups_);
    }
    const std::size_t G = groups_;
    const MatrixView c = state.centroids.view();
    const BoundFrame frame = make_bound_frame(c);

    const bool full = !valid_;
    ensure_scales(xc, state, reducer);
    if (full) {
      upper_.assign(n, 0.0f);
      lower_.assign(n * G, 0.0f);
      drift_.assign(k, 0.0);
      group_drift_.assign(G, 0.0);
      moments_ = ClusterMoments(k, d, !state.weight.empty());
    } else {
      const std::vector<double> moves = centre_moves(bound_centres_, state.centroids);
      std::vector<double> largest(G, 0.0);
      for (std::size_t j = 0; j < k; ++j) {
        drift_[j] = bound_up(drift_[j] + moves[j]);
        largest[group_[j]] = std::max(largest[group_[j]], moves[j]);
      }
      for (std::size_t g = 0; g < G; ++g) group_drift_[g] = bound_up(group_drift_[g] + largest[g]);
    }

    // Whether row i (centre a, upper bound u) provably keeps its centre. Bounds are stored
    // against cumulative drifts (as in kmeans_hamerly.cpp): a proven row is read, not written.
    auto proven = [&](std::size_t i, std::size_t a, double u) {
      const double err = score_error(static_cast<double>(xnorm_[i]), frame.cmax, d);
      const float* lb = lower_.data() + i * G;
      double low = kInf;
      for (std::size_t g = 0; g < G; ++g) {
        low = std::min(low, bound_down(static_cast<double>(lb[g]) - group_drift_[g]));
      }
      low = std::max(low, 2.0 * frame.half[a] - u);
      return low > u && low * low - u * u > 2.0 * err;
    };
    auto screen = [&](std::size_t b0, std::size_t b1, RowList& check) {
      for (std::size_t i = b0; i < b1; ++i) {
        const auto a = static_cast<std::size_t>(state.assignment[i]);
        if (!proven(i, a, bound_up(static_cast<double>(upper_[i]) + drift_[a]))) {
          check.push_back(i);
        }
      }
    };
    auto tight = [&](std::size_t i) {
      const auto a = static_cast<std::size_t>(state.assignment[i]);
      const double u = distance_up(xc.row(i), c.row(a), d);
      if (!proven(i, a, u)) return false;
      upper_[i] = float_up(bound_up(u - drift_[a]));
      return true;
    };
    // Rows whose bounds fail are rescored against every centre (on overlapping clusters most
    // groups fail together, where per-group scoring loses).
    auto rescored = [&](std::size_t i, const float* row, const float* sc, std::size_t best) {
      const double xx = row_sq_norm(row, d);
      const double err = score_error(static_cast<double>(xnorm_[i]), frame.cmax, d);
      float* lb = lower_.data() + i * G;
      // The bound is monotone in the score: take each group's smallest score first, so
      // there is one square root per group rather than per centre.
      for (std::size_t g = 0; g < G; ++g) lb[g] = std::numeric_limits<float>::infinity();
      for (std::size_t j = 0; j < k; ++j) {
        if (j != best) lb[group_[j]] = std::min(lb[group_[j]], sc[j]);
      }
      for (std::size_t g = 0; g < G; ++g) {
        if (std::isinf(lb[g])) continue;
        const double l = lower_from_score(static_cast<double>(lb[g]), xx, err);
        lb[g] = float_down(bound_down(l + group_drift_[g]));
      }
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
  std::size_t groups_ = 0;
  std::vector<std::size_t> group_;
  std::vector<float> upper_;  // + drift_[label] >= distance to the assigned centre
  std::vector<float> lower_;  // n x groups; - group_drift_[g] <= distance to group g's centres
  std::vector<double> drift_;
  std::vector<double> group_drift_;
  std::vector<float> xnorm_;
  ClusterMoments moments_;  // of this process's rows under the current labels
  Matrix bound_centres_;
  bool valid_ = false;
};

}  // namespace

std::size_t yinyang_groups(std::size_t k) noexcept {
  return std::max<std::size_t>(1, k / 10);
}

std::unique_ptr<StepPolicy> make_yinyang_policy() {
  return std::make_unique<YinyangPolicy>();
}

}  // namespace icp::kmeans_detail
