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

double row_sq_norm(const float* x, std::size_t d) noexcept {
  double s = 0.0;
  for (std::size_t t = 0; t < d; ++t) s += static_cast<double>(x[t]) * x[t];
  return s;
}

class HamerlyPolicy final : public StepPolicy {
 public:
  StepStats step(MatrixView xc, LloydState& state, Reducer& reducer) override {
    const std::size_t n = xc.rows;
    const std::size_t d = xc.cols;
    const std::size_t k = state.centroids.rows();
    if (xnorm_.size() != n) xnorm_ = row_norms(xc);
    const MatrixView c = state.centroids.view();
    const BoundFrame frame = make_bound_frame(c);
    const std::size_t ldo = frame.packed.panels * kPanelWidth;

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

    const std::size_t chunks = chunk_count(n);
    std::vector<double> chunk_inertia(chunks, 0.0);
    std::vector<std::int64_t> chunk_changed(chunks, 0);
    ExceptionCollector errors;
#pragma omp parallel if (chunks > 1)
    {
      std::vector<float> gathered;
      std::vector<float> scores;
      std::vector<std::size_t> todo;
      bool ready = false;
      errors.run([&] {
        gathered.resize(kAssignBlockRows * d);
        scores.resize(kAssignBlockRows * ldo);
        todo.reserve(kAssignBlockRows);
        ready = true;
      });
#pragma omp for schedule(dynamic, 1)
      for (std::ptrdiff_t ci = 0; ci < static_cast<std::ptrdiff_t>(chunks); ++ci) {
        if (!ready) continue;
        const std::size_t begin = static_cast<std::size_t>(ci) * kReduceChunkRows;
        const std::size_t end = std::min(n, begin + kReduceChunkRows);
        std::int64_t changed = 0;
        for (std::size_t b0 = begin; b0 < end; b0 += kAssignBlockRows) {
          const std::size_t b1 = std::min(end, b0 + kAssignBlockRows);
          todo.clear();
          for (std::size_t i = b0; i < b1; ++i) {
            if (full) {
              todo.push_back(i);
              continue;
            }
            const auto a = static_cast<std::size_t>(state.assignment[i]);
            const double dist = squared_distance(xc.row(i), c.row(a), d);
            const double u = round_up(std::sqrt(dist));
            const double l = lower_[i] - (a == argmax1 ? max2 : max1);
            const double low = std::max(l, 2.0 * frame.half[a] - u);
            const double err = score_error(static_cast<double>(xnorm_[i]), frame.cmax, d);
            if (low > u && low * low - u * u > 2.0 * err) {
              lower_[i] = l;
              state.distance[i] = static_cast<float>(dist);
            } else {
              todo.push_back(i);
            }
          }
          for (std::size_t m = 0; m < todo.size(); ++m) {
            std::copy(xc.row(todo[m]), xc.row(todo[m]) + d, gathered.data() + m * d);
          }
          score_rows(gathered.data(), todo.size(), d, frame.packed, scores.data(), ldo);
          for (std::size_t m = 0; m < todo.size(); ++m) {
            const std::size_t i = todo[m];
            const float* s = scores.data() + m * ldo;
            const std::size_t best = argmin_scores(s, k);
            float second = std::numeric_limits<float>::infinity();
            for (std::size_t j = 0; j < k; ++j) {
              if (j != best) second = std::min(second, s[j]);
            }
            const auto label = static_cast<std::int32_t>(best);
            if (state.assignment[i] != label) ++changed;
            state.assignment[i] = label;
            const double dist = squared_distance(xc.row(i), c.row(best), d);
            state.distance[i] = static_cast<float>(dist);
            const double err = score_error(static_cast<double>(xnorm_[i]), frame.cmax, d);
            lower_[i] = k == 1 ? kInf
                               : lower_from_score(static_cast<double>(second),
                                                  row_sq_norm(xc.row(i), d), err);
          }
        }
        // Summed in row order, as assign_rows does, so the inertia has the same bits.
        double inertia = 0.0;
        for (std::size_t i = begin; i < end; ++i)
          inertia += weighted(state.weight, i, state.distance[i]);
        chunk_inertia[static_cast<std::size_t>(ci)] = inertia;
        chunk_changed[static_cast<std::size_t>(ci)] = changed;
      }
    }
    errors.rethrow();

    const AssignStats assigned = combine_chunk_stats(std::move(chunk_inertia), chunk_changed);
    bound_centres_ = state.centroids;
    const StepStats stats = finish_step(xc, state, assigned, reducer);
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
