// Lookalike scoring: how much every account resembles the seed customers, with a backtest that
// says how far each method can be trusted on this data.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "icp/matrix.hpp"

namespace icp {

class ScratchColumns;

enum class LookalikeMethod {
  knn,       ///< mean exact squared distance to the nearest seeds
  segment,   ///< smoothed seed rate of the account's k-means segment
  model,     ///< positive-unlabeled L2 logistic regression (seeds vs everyone else)
  ensemble,  ///< rank average of the three, weights chosen on the backtest (docs/hdf5-schema.md)
};

/// "knn", "segment", "model" or "ensemble".
const char* to_string(LookalikeMethod method) noexcept;

struct KnnResult {
  std::size_t k = 0;                ///< columns: min(neighbors, seeds), or fewer when asked
  std::vector<std::int64_t> index;  ///< n * k, seed indices, nearest first
  std::vector<float> distance;      ///< n * k, exact squared distances (rounded from float64)
  std::vector<double> mean;         ///< n, mean of the row's valid distances (float64)
};

struct LookalikeOptions {
  int neighbors = 10;  ///< seeds averaged by knn
  /// knn compares every account with at most this many seeds (0 = all): a seeded uniform sample
  /// of the seeds when there are more. Exact knn against all seeds costs n x seeds x d, and seeds
  /// grow with n, so without a cap the stage grows quadratically with the market (48 of the 52 s
  /// of a 1M-row job with 33k seeds). Measured on that job: lookalike 48.3 s (all), 23.3 s
  /// (4096), 15.4 s (1024), 13.3 s (512), with planted-truth AUC 0.979, 0.981, 0.982, 0.984 -
  /// a sample traces the seed density as well as every seed does. Default 512 since stop 12: on
  /// the 1M job again (lookalike 7.5 -> 4.5 s; knn backtest AUC 0.895 -> 0.899, ensemble 0.948
  /// both, planted truth 0.9781 -> 0.9791) and on Crunchbase (knn 0.592 -> 0.590, ensemble 0.732
  /// -> 0.731, within its noise of ~0.02; 256 seeds: 0.585 and 0.728).
  std::int64_t knn_max_seeds = 512;
  double prior_strength = 20.0;  ///< pseudo-counts at the base rate smoothing a segment's rate
  double l2 = 1.0;  ///< model regularization (penalty l2/2 * ||coef||^2, not intercept)
  int bags = 1;     ///< PU bagging over unlabeled half-samples (model); 1 = no bagging
  std::vector<double> tiers = {0.01, 0.05, 0.10, 0.25};  ///< top fractions -> A/B/C/D, rest E
  double holdout = 0.2;  ///< backtest: share of seeds held out (0 = no backtest)
  /// The backtest runs on at most about this many rows (0 = all): above it, on a seeded uniform
  /// sample of the market (every row kept with probability max_rows / n), which it fits and
  /// scores as it would the whole market. Its AUC and recalls are rank statistics, estimated as
  /// well from a million rows as from ten (the standard error is set by the held-out seeds, which
  /// the sample keeps in proportion), and a 45-coefficient model or a 512-seed knn learns the
  /// same from either; fitting and scoring every row twice made the backtest more than a third
  /// of the lookalike stage at 10M rows.
  std::int64_t backtest_max_rows = 1000000;
  std::uint64_t seed = 42;
  LookalikeMethod method = LookalikeMethod::ensemble;
  /// Computes knn_to_seeds(x, seeds, self_seed, neighbors) for every row of x (the nearest seed
  /// column and the mean are all that is read); null = here. The
  /// MPI run plugs in one that splits the rows between processes (same bits: rows are scored
  /// independently, in the same 256-row blocks).
  std::function<KnnResult(MatrixView x, MatrixView seeds, std::span<const std::int64_t> self_seed,
                          int neighbors)>
      knn;
};

/// Quality of one method on seeds it did not see. Population: held-out seeds (positives) and
/// non-seed accounts (negatives); training seeds are left out.
struct BacktestRow {
  std::string method;
  double auc = 0.0;
  double recall_at_1 = 0.0;  ///< share of held-out seeds ranked in the top 1% of the population
  double recall_at_5 = 0.0;
  double recall_at_10 = 0.0;
  double recall_at_25 = 0.0;
  double lift_at_10 = 0.0;   ///< recall_at_10 / 0.10
  double weight = 0.0;       ///< ensemble weight (methods sum to 1; 1 for the ensemble row)
  std::int64_t population = 0;  ///< rows measured: held-out seeds and non-seed accounts
  std::int64_t positives = 0;   ///< held-out seeds among them
  std::vector<double> gain;  ///< kGainPoints: recall at the top 0%, 1%, ..., 100% (gain curve)
};

/// Points of a backtest gain curve: every whole percent of the population, 0 to 100.
inline constexpr std::size_t kGainPoints = 101;

struct LookalikeResult {
  std::vector<float> score;                  ///< n, 0..100 midrank percentile (ties share a score)
  std::vector<float> percentile;             ///< n, 0..100 from `rank` (100 = best, unique)
  std::vector<std::int64_t> rank;            ///< n, 1 = best; a permutation; ties by lower row
  std::vector<std::uint8_t> tier;            ///< n, 'A'..'E'
  std::vector<float> combined;               ///< n, value of the chosen method that is ranked
  std::vector<std::int64_t> nearest_seed;    ///< n, row of the nearest other reference seed
  std::vector<float> nearest_seed_distance;  ///< n, exact squared distance to it
  std::vector<float> knn_similarity;         ///< n, 1 / (1 + mean squared distance to the k seeds)
  std::vector<float> segment_score;          ///< n, segment_rate of the row's segment
  std::vector<float> model_score;            ///< n, logit of the model (intercept + coef . x)
  std::vector<std::array<std::int32_t, 3>> reasons;  ///< n, top-3 features by coef_j * x_ij > 0
  std::vector<double> model_coef;                    ///< d
  double model_intercept = 0.0;
  std::vector<BacktestRow> backtest;      ///< knn, segment, model, ensemble (empty: no holdout)
  std::vector<double> segment_rate;       ///< k, see segment_seed_rates
  std::array<double, 3> method_weight{};  ///< ensemble weights of knn, segment, model (sum 1)
  /// Rows of x knn compared with, ascending: every seed, or the knn_max_seeds sample of them.
  std::vector<std::int64_t> seed_rows;
  Matrix seeds;  ///< seed_rows.size() x d: those rows of x, what knn scores new accounts against
};

/// Scores every row of x (n x d, normalized and centred) against the rows flagged in is_seed.
/// `is_negative` may be empty; a row flagged both seed and negative counts as a seed. Runs the
/// backtest first (holdout seeds treated as unlabeled), then refits on all seeds.
/// Throws icp::Error for fewer than 2 seeds, mismatched sizes, a segment outside 0..k-1, a
/// non-finite value or invalid options. Bitwise identical at any thread count.
LookalikeResult score_lookalike(MatrixView x, std::span<const std::int32_t> segment, int k,
                                std::span<const std::uint8_t> is_seed,
                                std::span<const std::uint8_t> is_negative,
                                const LookalikeOptions& options);

/// Columns of a ScratchColumns that a spilled score_lookalike writes: the per-row vectors of
/// LookalikeResult, each named after the dataset the results file stores it in.
namespace lookalike_columns {
inline constexpr const char* score = "/lookalike/score";                                  // float
inline constexpr const char* percentile = "/lookalike/percentile";                        // float
inline constexpr const char* rank = "/lookalike/rank";                                    // int64
inline constexpr const char* tier = "/lookalike/tier";                                    // uint8
inline constexpr const char* combined = "/lookalike/combined";                            // float
inline constexpr const char* nearest_seed = "/lookalike/nearest_seed";                    // int64
inline constexpr const char* nearest_seed_distance = "/lookalike/nearest_seed_distance";  // float
inline constexpr const char* knn_similarity = "/lookalike/knn_similarity";                // float
inline constexpr const char* segment_score = "/lookalike/segment_score";                  // float
inline constexpr const char* model_score = "/lookalike/model_score";                      // float
inline constexpr const char* reasons = "/lookalike/reasons";  // int32, 3 a row
inline constexpr const char* ensemble_sum = "ensemble_sum";   // float64, the ensemble's working sum
}  // namespace lookalike_columns

/// score_lookalike over rows read a block at a time (a market larger than memory), with the
/// bits of the in-memory call on the same rows. Holds the backtest's sample (at most about
/// backtest_max_rows rows, gathered; every row when the market is no larger) and one block; scans
/// the rows for a finite check, the sample, knn, each Newton step of the model, the logits and
/// the reasons. options.knn must be empty. Without `spill` it holds the per-row results too
/// (about 50 bytes a row, and the methods' float64 midranks while ranking them). With `spill`
/// (x.rows rows) they go to its lookalike_columns instead, the result's per-row vectors stay empty,
/// and the stage holds 4 bytes a row (8 while ranking).
LookalikeResult score_lookalike(const RowBlocks& x, std::span<const std::int32_t> segment, int k,
                                std::span<const std::uint8_t> is_seed,
                                std::span<const std::uint8_t> is_negative,
                                const LookalikeOptions& options, ScratchColumns* spill = nullptr);

/// Scores of new accounts against a fitted result. `seeds` are the seed rows (in the order of
/// `fitted.seed_rows`, e.g. gathered from the training matrix); `segment` the new rows'
/// segments (kmeans_predict). `self_seed[i]` is the seed index (into `seeds`) that new row i
/// is, or -1; it is excluded from the row's neighbours exactly as in the fit (a seed is never
/// its own neighbour). May be empty (no row is a seed). `nearest_seed` is a training row (from
/// `fitted.seed_rows`). `options` must be the fitting options.
///
/// Placement within the fitted population P (sorted, m values): a value v with `below` values
/// of P under it and `equal` equal to it sits at clamp((below + (equal - 1) / 2) / (m - 1), 0, 1),
/// the normalized midrank the fit gives a row of P with value v. The ensemble places each
/// method's raw value this way within the fitted raw values and weights them by
/// `fitted.method_weight`; `score` is 100 x the placement of `combined` within
/// `fitted.combined`. Hence a row of the fitted matrix re-scored with the same segment (and its
/// seed index when it is a seed) gets the same bits for every raw score, `combined` and `score`.
/// `tier` is the best tier whose cut-off value (the `combined` of the fitted row at rank
/// ceil(fraction x m)) the row reaches: the fitted tier, except when the row ties that cut-off
/// value (then the better tier).
struct LookalikeNewScores {
  std::vector<float> score;
  std::vector<float> combined;
  std::vector<std::uint8_t> tier;
  std::vector<std::int64_t> nearest_seed;
  std::vector<float> nearest_seed_distance;
  std::vector<float> knn_similarity, segment_score, model_score;
  std::vector<std::array<std::int32_t, 3>> reasons;
};
LookalikeNewScores score_new_accounts(MatrixView x, std::span<const std::int32_t> segment,
                                      MatrixView seeds, const LookalikeResult& fitted,
                                      const LookalikeOptions& options,
                                      std::span<const std::int64_t> self_seed = {});

/// score_new_accounts for accounts that arrive in blocks (`icp score --memory-limit`): the
/// fitted population is checked and sorted once, not per block. Every row is scored on its own,
/// so blocks of any size give the bits of one call on all rows. Keeps references to `fitted`
/// and `options`, which must outlive it.
class NewAccountScorer {
 public:
  NewAccountScorer(const LookalikeResult& fitted, const LookalikeOptions& options);
  LookalikeNewScores score(MatrixView x, std::span<const std::int32_t> segment, MatrixView seeds,
                           std::span<const std::int64_t> self_seed = {}) const;

 private:
  const LookalikeResult& fitted_;
  const LookalikeOptions& options_;
  std::array<std::vector<float>, 3> population_;  ///< fitted knn, segment, model scores, sorted
  std::vector<float> combined_;                   ///< fitted combined, sorted
};

// ---- Building blocks (public so they can be tested and reused) ----

/// Exact k nearest seeds of every row of x. `self_seed[i]` is the seed index that row i must
/// not count (a seed is never its own neighbour), or -1; may be empty (no exclusion).
/// Per row, neighbours are sorted by exact float64 squared distance, ties to the lower seed
/// index; slots beyond the available seeds hold index -1 and distance +inf. `columns` > 0 keeps
/// only the nearest `columns` of them in index and distance (the mean still covers all k):
/// scoring needs the nearest seed and the mean, and at 10M rows x 10 neighbours the full lists
/// were 1.2 GB, allocated and zeroed on one thread.
KnnResult knn_to_seeds(MatrixView x, MatrixView seeds, std::span<const std::int64_t> self_seed,
                       int neighbors, int columns = 0);

/// Per segment c with n_c rows, s_c seeds and g_c negatives (S, G, N totals; p = S/N, q = G/N,
/// a = prior_strength):
///   seed_rate_c = (s_c + a p) / (n_c + a),  neg_rate_c = (g_c + a q) / (n_c + a)
///   rate_c = seed_rate_c - (S / G) (neg_rate_c - q)        (second term only when G > 0)
/// S/G puts the negative excess in seed-rate units: a segment with the base negative rate keeps
/// its seed rate, one with twice the base negative rate loses p. The rate may drop below 0.
/// A row flagged both seed and negative counts only as a seed. An empty segment gets p.
std::vector<double> segment_seed_rates(std::span<const std::int32_t> segment, int k,
                                       std::span<const std::uint8_t> is_seed,
                                       std::span<const std::uint8_t> is_negative,
                                       double prior_strength);

/// PU logistic model: seeds (1) vs every other row (0), classes balanced so each carries half
/// the total weight, confirmed negatives weighted kConfirmedNegativeWeight x an unlabeled row
/// inside class 0. Minimises sum_i w_i logloss_i + l2/2 ||coef||^2 by damped Newton. With
/// bags > 1, each bag keeps a seeded half-sample of class 0 and the coefficients are averaged.
/// Newton starts from `start` (every bag) when given, else from zero: the loss is strictly
/// convex, so the optimum is the same and only the steps to it (and the last bits) differ.
struct LogisticModel {
  std::vector<double> coef;
  double intercept = 0.0;
  int iterations = 0;  ///< Newton steps, summed over bags
};
LogisticModel fit_pu_logistic(MatrixView x, std::span<const std::uint8_t> is_seed,
                              std::span<const std::uint8_t> is_negative, double l2, int bags,
                              std::uint64_t seed, const LogisticModel* start = nullptr);
/// The same over rows read a block at a time (blocks on chunk boundaries give the bits of the
/// in-memory fit): each Newton step scans the rows once or twice; holds the flags, one block and
/// its chunks' Hessians.
LogisticModel fit_pu_logistic(const RowBlocks& x, std::span<const std::uint8_t> is_seed,
                              std::span<const std::uint8_t> is_negative, double l2, int bags,
                              std::uint64_t seed, const LogisticModel* start = nullptr);

/// Area under the ROC curve of `score` for label 1 vs 0 (Mann-Whitney, tied scores count 1/2).
/// Throws icp::Error when a class is empty or sizes differ.
double roc_auc(std::span<const float> score, std::span<const std::uint8_t> label);

/// Share of label-1 rows among the top ceil(fraction * n) rows by score (ties to the lower row).
double recall_at(std::span<const float> score, std::span<const std::uint8_t> label,
                 double fraction);

/// Gain curve: recall_at(score, label, t / (points - 1)) for t = 0 .. points - 1 (one sort).
std::vector<double> gain_curve(std::span<const float> score, std::span<const std::uint8_t> label,
                               std::size_t points = kGainPoints);

/// Top fractions of the population the backtest reports recall at (recall_at_1/5/10/25).
inline constexpr std::array<double, 4> kRecallFractions = {0.01, 0.05, 0.10, 0.25};

/// Every figure of a backtest row (all but method and weight) from one sort: roc_auc, recall_at
/// each of kRecallFractions, lift at 10% and gain_curve, with the same values as those functions.
BacktestRow measure_ranking(std::span<const float> score, std::span<const std::uint8_t> label);

/// Rank of each row, 1 = highest value, ties to the lower row index.
std::vector<std::int64_t> rank_descending(std::span<const float> value);

}  // namespace icp
