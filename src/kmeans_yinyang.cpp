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
    std::vector<double> drift(G, 0.0);
    if (full) {
      lower_.assign(n * G, 0.0f);
    } else {
      const std::vector<double> moves = centre_moves(bound_centres_, state.centroids);
      for (std::size_t j = 0; j < k; ++j) drift[group_[j]] = std::max(drift[group_[j]], moves[j]);
    }

    // Rows whose bounds fail are rescored against every centre (on overlapping clusters most
    // groups fail together, where per-group scoring loses).
    ClusterAccumulator summed(n, k, d, state.weight, ensure_scales(xc, state, reducer));
    const AssignStats assigned = bounded_assign(
        xc, state, frame.packed, full, G,
        [&](std::size_t i, std::span<double> nl) {
          const auto a = static_cast<std::size_t>(state.assignment[i]);
          const double dist_a = squared_distance(xc.row(i), c.row(a), d);
          const double u = round_up(std::sqrt(dist_a));
          const double err = score_error(static_cast<double>(xnorm_[i]), frame.cmax, d);
          float* lb = lower_.data() + i * G;
          double low = kInf;
          for (std::size_t g = 0; g < G; ++g) {
            nl[g] = static_cast<double>(lb[g]) - drift[g];
            low = std::min(low, nl[g]);
          }
          low = std::max(low, 2.0 * frame.half[a] - u);
          if (!(low > u && low * low - u * u > 2.0 * err)) return false;
          for (std::size_t g = 0; g < G; ++g) lb[g] = float_down(nl[g]);
          state.distance[i] = static_cast<float>(dist_a);
          return true;
        },
        [&](std::size_t i, const float* sc, std::size_t best) {
          const double xx = row_sq_norm(xc.row(i), d);
          const double err = score_error(static_cast<double>(xnorm_[i]), frame.cmax, d);
          float* lb = lower_.data() + i * G;
          // The bound is monotone in the score: take each group's smallest score first, so
          // there is one square root per group rather than per centre.
          for (std::size_t g = 0; g < G; ++g) lb[g] = std::numeric_limits<float>::infinity();
          for (std::size_t j = 0; j < k; ++j) {
            if (j != best) lb[group_[j]] = std::min(lb[group_[j]], sc[j]);
          }
          for (std::size_t g = 0; g < G; ++g) {
            lb[g] = std::isinf(lb[g])
                        ? lb[g]
                        : float_down(lower_from_score(static_cast<double>(lb[g]), xx, err));
          }
        },
        summed);
    bound_centres_ = state.centroids;
    const StepStats stats =
        finish_step(xc, state, assigned.changed, summed.finish(reducer), reducer);
    // Relocated rows changed label without their bounds following: start over next step.
    valid_ = stats.relocated == 0;
    return stats;
  }

 private:
  std::size_t groups_ = 0;
  std::vector<std::size_t> group_;
  std::vector<float> lower_;
  std::vector<float> xnorm_;
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
