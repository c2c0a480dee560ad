// Positive-unlabeled logistic model: seeds against everyone else. Unlabeled accounts contain
// future seeds, so the model learns "seed-like" rather than "non-seed", and its logit ranks
// accounts by resemblance. Reductions run over fixed row chunks combined in chunk order, so the
// fit is the same bits at any thread count.
#define EIGEN_DONT_PARALLELIZE  // chunks are parallelized with OpenMP; no nested GEMM threads
#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include "icp/error.hpp"
#include "icp/lookalike.hpp"
#include "icp/parallel.hpp"

namespace icp {

namespace {

// Confirmed negatives (e.g. churned) are surely not seed-like while an unlabeled account may be,
// so within class 0 a negative counts as this many unlabeled accounts.
constexpr double kConfirmedNegativeWeight = 2.0;
// Share of class-0 rows each PU bag keeps: half-samples decorrelate bags as much as a bootstrap
// while keeping every bag's fit well conditioned.
constexpr double kBagFraction = 0.5;
// Newton converges quadratically near the optimum; 100 steps is far beyond what a strictly convex
// (l2 > 0) logistic loss in 10-60 dimensions needs, and bounds the work on degenerate input.
constexpr int kMaxNewtonIterations = 100;
constexpr int kMaxLineSearchHalvings = 40;
// Step small relative to the coefficients: further steps change no float32 score.
constexpr double kStepTolerance = 1e-10;
// Relative step above which the next point computes a fresh Hessian; below it the last one is
// kept. At 1e-2 a kept Hessian is off by about 1% near the optimum, so each chord step gains about
// two digits and the 1e-10 tolerance is 4-5 cheap steps away.
constexpr double kFreshHessianStep = 1e-2;

std::uint64_t splitmix64(std::uint64_t z) {
  z += 0x9E3779B97F4A7C15ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// Uniform in [0, 1) from (seed, bag, row): independent of evaluation order and thread count.
double bag_uniform(std::uint64_t seed, int bag, std::size_t row) {
  const std::uint64_t h =
      splitmix64(splitmix64(seed ^ (0xA24BAED4963EE407ULL * static_cast<std::uint64_t>(bag + 1))) ^
                 static_cast<std::uint64_t>(row));
  return static_cast<double>(h >> 11) * 0x1.0p-53;
}

/// The weighted problem of one bag. Row weights and targets are computed as rows are read
/// rather than stored: two float64 arrays per row were 160 MB at 10M rows, and a market read in
/// blocks has no room for them.
struct Problem {
  std::span<const std::uint8_t> is_seed;
  std::span<const std::uint8_t> is_negative;
  std::vector<std::uint8_t> in_bag;  // per row, with bags > 1: the row's class-0 draw kept it
  double seed_weight = 0.0;          // each seed's weight
  double other_scale = 0.0;          // multiplies a class-0 row's base weight
  double l2 = 1.0;
  /// Weight of a class-0 row before scaling: 0 outside the bag, confirmed negatives weigh more.
  double base_weight(std::size_t i) const noexcept {
    if (is_seed[i] != 0 || (!in_bag.empty() && in_bag[i] == 0)) return 0.0;
    return !is_negative.empty() && is_negative[i] != 0 ? kConfirmedNegativeWeight : 1.0;
  }
  double weight(std::size_t i) const noexcept {
    return is_seed[i] != 0 ? seed_weight : base_weight(i) * other_scale;
  }
  double target(std::size_t i) const noexcept { return is_seed[i] != 0 ? 1.0 : 0.0; }
};

struct Objective {
  double loss = 0.0;
  Eigen::VectorXd gradient;  // (d + 1): intercept first
  Eigen::MatrixXd hessian;
};

// log(1 + exp(z)) without overflow, from e = exp(-|z|).
double softplus(double z, double e) {
  return std::max(z, 0.0) + std::log1p(e);
}

// 1 / (1 + exp(-z)) from the same e: exp(-z) for z >= 0 and exp(z) below are both exp(-|z|), so
// one exp serves the loss and the derivatives.
double sigmoid(double z, double e) {
  return z >= 0.0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
}

// What a pass over the rows computes: the loss always, then the gradient, then the Hessian.
enum class Need { loss, gradient, hessian };

/// The objective over every row of `scan`'s blocks: each block's chunks in parallel, then folded
/// in chunk order as the block ends (the order of one pass over all rows, so any blocks that
/// start on chunk boundaries give the same bits, and only one block's chunk Hessians are held).
template <class Scan>
Objective evaluate(const Problem& problem, std::size_t d, Scan&& scan, const Eigen::VectorXd& theta,
                   Need need) {
  const bool derivatives = need != Need::loss;
  const bool hessian = need == Need::hessian;
  const auto p = static_cast<Eigen::Index>(d + 1);
  Objective out;
  out.gradient = Eigen::VectorXd::Zero(derivatives ? p : 0);
  out.hessian = Eigen::MatrixXd::Zero(hessian ? p : 0, hessian ? p : 0);
  std::vector<double> chunk_loss;
  std::vector<Eigen::VectorXd> chunk_gradient;
  std::vector<Eigen::MatrixXd> chunk_hessian;
  scan([&](std::size_t first, MatrixView x) {
    const std::size_t n = x.rows;
    const std::size_t chunks = chunk_count(n);
    chunk_loss.assign(chunks, 0.0);
    chunk_gradient.resize(derivatives ? chunks : 0);
    chunk_hessian.resize(hessian ? chunks : 0);
    ExceptionCollector errors;
#pragma omp parallel
    {
      // Per-thread buffers, allocated once: the chunk's rows widened to float64 with a leading 1
      // (the intercept), their logits, and the per-row gradient and curvature weights.
      Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> design;
      Eigen::VectorXd z;
      Eigen::VectorXd residual;
      Eigen::VectorXd curvature;
#pragma omp for schedule(dynamic, 1)
      for (std::size_t c = 0; c < chunks; ++c) {
        errors.run([&] {
          const std::size_t r0 = c * kReduceChunkRows;
          const std::size_t rows = std::min(kReduceChunkRows, n - r0);
          const auto rr = static_cast<Eigen::Index>(rows);
          design.resize(rr, p);
          for (std::size_t r = 0; r < rows; ++r) {
            double* row = design.row(static_cast<Eigen::Index>(r)).data();
            const float* xi = x.row(r0 + r);
            row[0] = 1.0;
            for (std::size_t j = 0; j < d; ++j) row[j + 1] = static_cast<double>(xi[j]);
          }
          // One matrix-vector product: its dot products run on several accumulators, where a
          // per-row loop was one latency-bound chain of d dependent adds per row.
          z.noalias() = design * theta;
          if (derivatives) residual.resize(rr);
          if (hessian) curvature.resize(rr);
          double loss = 0.0;
          for (std::size_t r = 0; r < rows; ++r) {
            const std::size_t i = first + r0 + r;
            const auto e = static_cast<Eigen::Index>(r);
            const double w = problem.weight(i);
            const double y = problem.target(i);
            const double ez = std::exp(-std::abs(z[e]));
            loss += w * (softplus(z[e], ez) - y * z[e]);
            if (derivatives) {
              const double s = sigmoid(z[e], ez);
              residual[e] = w * (s - y);
              if (hessian) curvature[e] = std::sqrt(w * s * (1.0 - s));
            }
          }
          chunk_loss[c] = loss;
          if (derivatives) chunk_gradient[c].noalias() = design.transpose() * residual;
          if (hessian) {
            // H = D^T diag(w s (1 - s)) D as a rank update of the lower triangle with the rows
            // scaled by sqrt(curvature): half the FLOPs of the full product.
            design.array().colwise() *= curvature.array();
            Eigen::MatrixXd& h = chunk_hessian[c];
            h.setZero(p, p);
            h.selfadjointView<Eigen::Lower>().rankUpdate(design.transpose());
          }
        });
      }
    }
    errors.rethrow();
    for (std::size_t c = 0; c < chunks; ++c) {  // fixed order: the thread count cannot show
      out.loss += chunk_loss[c];
      if (derivatives) out.gradient += chunk_gradient[c];
      if (hessian) out.hessian += chunk_hessian[c];
    }
  });
  if (hessian) {
    Eigen::MatrixXd full = out.hessian.selfadjointView<Eigen::Lower>();  // upper from lower
    out.hessian = std::move(full);
  }
  const Eigen::VectorXd coef = theta.tail(p - 1);
  out.loss += 0.5 * problem.l2 * coef.squaredNorm();
  if (derivatives) out.gradient.tail(p - 1) += problem.l2 * coef;
  if (hessian) out.hessian.diagonal().tail(p - 1).array() += problem.l2;
  return out;
}

// Damped Newton from `theta` (zero for a fresh fit: the balanced classes make logit 0 the right
// starting prior). The full step is taken at almost every iteration, so its trial point is
// evaluated with derivatives at once: those are what the next iteration needs, and a separate
// loss pass per iteration is saved. Once steps are small the Hessian of the last point that
// computed one is kept (a chord step): near the optimum it changes about as much as the point
// does, so each step still gains digits, and a pass without the Hessian's rank update costs about
// half as much. Steps stay descent directions (the kept Hessian is positive definite).
template <class Scan>
Eigen::VectorXd newton(const Problem& problem, std::size_t d, Scan&& scan, Eigen::VectorXd theta,
                       int& iterations) {
  auto evaluate_at = [&](const Eigen::VectorXd& at, Need need) {
    return evaluate(problem, d, scan, at, need);
  };
  Objective obj = evaluate_at(theta, Need::hessian);
  Eigen::LDLT<Eigen::MatrixXd> factor(obj.hessian);
  Need next_need = Need::hessian;
  for (int it = 0; it < kMaxNewtonIterations; ++it) {
    if (obj.gradient.size() == 0) {  // after a halved step, whose trial computed the loss only
      obj = evaluate_at(theta, next_need);
      if (next_need == Need::hessian) factor.compute(obj.hessian);
    }
    const Eigen::VectorXd step = factor.solve(-obj.gradient);
    if (!step.allFinite()) break;
    const double slope = obj.gradient.dot(step);
    if (slope >= 0.0) break;  // no descent left: at the optimum up to rounding
    const double scale = 1.0 + theta.cwiseAbs().maxCoeff();
    next_need =
        step.cwiseAbs().maxCoeff() > kFreshHessianStep * scale ? Need::hessian : Need::gradient;
    double t = 1.0;
    bool accepted = false;
    for (int h = 0; h < kMaxLineSearchHalvings; ++h) {
      const Eigen::VectorXd trial = theta + t * step;
      Objective next = evaluate_at(trial, h == 0 ? next_need : Need::loss);
      if (next.loss <= obj.loss + 1e-4 * t * slope) {  // Armijo sufficient decrease
        theta = trial;
        obj = std::move(next);
        if (obj.hessian.size() != 0) factor.compute(obj.hessian);
        accepted = true;
        break;
      }
      t *= 0.5;
    }
    ++iterations;
    if (!accepted) break;
    if ((t * step).cwiseAbs().maxCoeff() <= kStepTolerance * (1.0 + theta.cwiseAbs().maxCoeff())) {
      break;
    }
  }
  return theta;
}

/// fit_pu_logistic over `n` rows of `d` features seen through `scan` (visit(first row, block)).
template <class Scan>
LogisticModel fit_pu(std::size_t n, std::size_t d, Scan&& scan,
                     std::span<const std::uint8_t> is_seed,
                     std::span<const std::uint8_t> is_negative, double l2, int bags,
                     std::uint64_t seed, const LogisticModel* start) {
  if (is_seed.size() != n) throw Error("lookalike: is_seed size differs from rows");
  if (!is_negative.empty() && is_negative.size() != n) {
    throw Error("lookalike: is_negative size differs from rows");
  }
  if (!(l2 > 0.0) || !std::isfinite(l2)) throw Error("lookalike: l2 must be > 0");
  if (bags < 1) throw Error("lookalike: bags must be >= 1");
  if (start != nullptr && start->coef.size() != d)
    throw Error("lookalike: the model's starting point has a different feature count");
  std::int64_t seeds = 0;
  for (const std::uint8_t s : is_seed) seeds += s != 0 ? 1 : 0;
  if (seeds == 0 || seeds == static_cast<std::int64_t>(n)) {
    throw Error("lookalike: the model needs both seeds and other accounts");
  }

  Problem problem;
  problem.is_seed = is_seed;
  problem.is_negative = is_negative;
  problem.l2 = l2;
  // Each class carries half of a total weight of n, so l2 means the same at any class balance
  // and in every bag.
  const double half = 0.5 * static_cast<double>(n);
  problem.seed_weight = half / static_cast<double>(seeds);
  Eigen::VectorXd theta_sum = Eigen::VectorXd::Zero(static_cast<Eigen::Index>(d + 1));
  Eigen::VectorXd theta0 = Eigen::VectorXd::Zero(theta_sum.size());
  if (start != nullptr) {
    theta0[0] = start->intercept;
    for (std::size_t j = 0; j < d; ++j) theta0[static_cast<Eigen::Index>(j + 1)] = start->coef[j];
  }
  LogisticModel model;
  int fitted_bags = 0;
  for (int bag = 0; bag < bags; ++bag) {
    if (bags > 1) {
      problem.in_bag.resize(n);
      for (std::size_t i = 0; i < n; ++i)
        problem.in_bag[i] = bag_uniform(seed, bag, i) < kBagFraction ? 1 : 0;
    }
    double other_total = 0.0;
    for (std::size_t i = 0; i < n; ++i) other_total += problem.base_weight(i);
    if (other_total == 0.0) continue;  // a bag that drew no class-0 row has nothing to learn
    problem.other_scale = half / other_total;
    theta_sum += newton(problem, d, scan, theta0, model.iterations);
    ++fitted_bags;
  }
  if (fitted_bags == 0) throw Error("lookalike: no PU bag drew an unlabeled account");
  // Averaged coefficients keep the bagged model a single linear scorer (re-scoring and reasons
  // stay one dot product).
  theta_sum /= static_cast<double>(fitted_bags);
  model.intercept = theta_sum[0];
  model.coef.assign(theta_sum.data() + 1, theta_sum.data() + theta_sum.size());
  return model;
}

}  // namespace

LogisticModel fit_pu_logistic(MatrixView x, std::span<const std::uint8_t> is_seed,
                              std::span<const std::uint8_t> is_negative, double l2, int bags,
                              std::uint64_t seed, const LogisticModel* start) {
  return fit_pu(
      x.rows, x.cols, [&](auto&& visit) { visit(std::size_t{0}, x); }, is_seed, is_negative, l2,
      bags, seed, start);
}

LogisticModel fit_pu_logistic(const RowBlocks& x, std::span<const std::uint8_t> is_seed,
                              std::span<const std::uint8_t> is_negative, double l2, int bags,
                              std::uint64_t seed, const LogisticModel* start) {
  return fit_pu(x.rows, x.cols, x.scan, is_seed, is_negative, l2, bags, seed, start);
}

}  // namespace icp
