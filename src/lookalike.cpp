// Lookalike orchestration: backtest on held-out seeds, ensemble weights from that backtest, the
// final refit on all seeds, and the mapping of the chosen method to scores, ranks and tiers.
#include "icp/lookalike.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <optional>
#include <string>
#include <vector>

#include "icp/error.hpp"
#include "icp/parallel.hpp"
#include "icp/scratch.hpp"
#include "value_order.hpp"

namespace icp {

namespace {

constexpr std::size_t kMethods = 3;   // knn, segment, model (the ensemble combines them)
constexpr std::size_t kMaxTiers = 4;  // A..D; every remaining row is E

struct MethodScores {
  std::array<std::vector<float>, kMethods> raw;  // knn similarity, segment rate, model logit
  std::vector<std::int64_t> nearest;    // per row: the nearest other reference seed (a row), or -1
  std::vector<float> nearest_distance;  // its exact squared distance
  std::vector<std::size_t> knn_rows;  // the reference seeds knn compared with (rows of x)
  Matrix seeds;                       // those rows
  std::vector<double> segment_rate;
  LogisticModel model;
};

std::uint64_t splitmix64(std::uint64_t z) {
  z += 0x9E3779B97F4A7C15ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// 1 / (1 + mean distance): monotone, in (0, 1], and 0 for a row without any other seed.
float similarity(double mean) noexcept {
  return std::isfinite(mean) ? static_cast<float>(1.0 / (1.0 + mean)) : 0.0f;
}

std::vector<float> similarities(const KnnResult& knn) {
  std::vector<float> out(knn.mean.size());
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = similarity(knn.mean[i]);
  return out;
}

/// The seeds knn compares with: all of them, or a seeded uniform sample of `cap` (partial
/// Fisher-Yates on splitmix64 draws, then back in row order, so the choice depends only on the
/// seed rows and the seed).
std::vector<std::size_t> reference_seeds(std::vector<std::size_t> seed_rows, std::int64_t cap,
                                         std::uint64_t seed) {
  const auto m = static_cast<std::size_t>(cap);
  if (cap <= 0 || seed_rows.size() <= m) return seed_rows;
  std::uint64_t state = seed ^ 0x6B6E6E5F73656564ULL;  // "knn_seed": a stream apart from holdout
  for (std::size_t t = 0; t < m; ++t) {
    state = splitmix64(state);
    const std::size_t pick = t + static_cast<std::size_t>(state % (seed_rows.size() - t));
    std::swap(seed_rows[t], seed_rows[pick]);
  }
  seed_rows.resize(m);
  std::sort(seed_rows.begin(), seed_rows.end());
  return seed_rows;
}

/// reference_seeds of the flagged rows.
std::vector<std::size_t> reference_rows(std::span<const std::uint8_t> is_seed,
                                        const LookalikeOptions& options) {
  std::vector<std::size_t> all;
  for (std::size_t i = 0; i < is_seed.size(); ++i)
    if (is_seed[i] != 0) all.push_back(i);
  return reference_seeds(std::move(all), options.knn_max_seeds, options.seed);
}

// The rows a backtest runs on: every row (threshold 0), or a seeded Bernoulli sample (row i kept
// when a hash of (seed, i) falls below max_rows / n), so the choice depends only on n, the cap and
// the seed, never on the thread count.
struct BacktestSample {
  std::uint64_t threshold = 0;  // 0: every row
  std::uint64_t base = 0;
  bool contains(std::size_t i) const noexcept {
    return threshold == 0 || splitmix64(base + static_cast<std::uint64_t>(i)) < threshold;
  }
};

BacktestSample backtest_sample(std::size_t n, std::int64_t cap, std::uint64_t seed) {
  BacktestSample s;
  if (cap <= 0 || n <= static_cast<std::size_t>(cap)) return s;
  const double p = static_cast<double>(cap) / static_cast<double>(n);  // in (0, 1)
  s.threshold = std::max<std::uint64_t>(1, static_cast<std::uint64_t>(std::ldexp(p, 64)));
  s.base = seed ^ 0x6261636B74657374ULL;  // "backtest": a stream apart from holdout and knn
  return s;
}

/// The rows a lookalike fit reads: a matrix held whole (`whole`, one block), or a market read a
/// block at a time (`whole` empty), through the same scan and fetch. Every per-row computation
/// runs per block, so both give the same bits.
struct Market {
  RowBlocks rows;
  MatrixView whole;                 // data == nullptr when the rows are streamed
  ScratchColumns* spill = nullptr;  // where the final per-row results go, when not held
};

Market held(MatrixView x) {
  Market m;
  m.whole = x;
  m.rows.rows = x.rows;
  m.rows.cols = x.cols;
  m.rows.scan = [x](const RowBlocks::Visit& visit) { visit(0, x); };
  m.rows.fetch = [x](std::span<const std::size_t> rows) {
    Matrix out(rows.size(), x.cols);
    for (std::size_t r = 0; r < rows.size(); ++r) std::copy_n(x.row(rows[r]), x.cols, out.row(r));
    return out;
  };
  return m;
}

/// knn of one block of rows (the first at row `first`) against `seeds`; `seed_rows[s]` is the row
/// seed s is (ascending), and is never its own neighbour. Rows are scored independently, so the
/// blocks do not change any bit.
KnnResult knn_of_block(std::size_t first, MatrixView block, const Matrix& seeds,
                       std::span<const std::size_t> seed_rows, const LookalikeOptions& options) {
  std::vector<std::int64_t> self_seed(block.rows, -1);
  // seed_rows ascend: the block's seeds are a run of them.
  auto s = std::lower_bound(seed_rows.begin(), seed_rows.end(), first);
  for (; s != seed_rows.end() && *s < first + block.rows; ++s)
    self_seed[*s - first] = static_cast<std::int64_t>(s - seed_rows.begin());
  return knn_to_seeds(block, seeds.view(), self_seed, options.neighbors, 1);
}

/// What scoring reads of a knn result, per row: the similarity, the nearest seed as a row of x
/// (or -1) and its distance.
void keep_knn(const KnnResult& part, std::span<const std::size_t> seed_rows, float* sim,
              std::int64_t* nearest, float* nearest_distance) {
  for (std::size_t r = 0; r < part.mean.size(); ++r) {
    const std::int64_t idx = part.k > 0 ? part.index[r * part.k] : -1;
    nearest[r] =
        idx >= 0 ? static_cast<std::int64_t>(seed_rows[static_cast<std::size_t>(idx)]) : -1;
    nearest_distance[r] =
        part.k > 0 ? part.distance[r * part.k] : std::numeric_limits<float>::infinity();
    sim[r] = similarity(part.mean[r]);
  }
}

/// knn of every row against `seeds`, block by block. Keeps per row what scoring reads, not the
/// mean and index lists: 8 bytes a row less while the stage holds everything else.
void knn_blocks(const Market& x, const Matrix& seeds, std::span<const std::size_t> seed_rows,
                const LookalikeOptions& options, MethodScores& out) {
  const std::size_t n = x.rows.rows;
  out.raw[0].resize(n);
  out.nearest.resize(n);
  out.nearest_distance.resize(n);
  auto keep = [&](std::size_t first, const KnnResult& part) {
    keep_knn(part, seed_rows, out.raw[0].data() + first, out.nearest.data() + first,
             out.nearest_distance.data() + first);
  };
  if (options.knn && x.whole.data != nullptr) {
    std::vector<std::int64_t> self_seed(n, -1);
    for (std::size_t s = 0; s < seed_rows.size(); ++s)
      self_seed[seed_rows[s]] = static_cast<std::int64_t>(s);
    keep(0, options.knn(x.whole, seeds.view(), self_seed, options.neighbors));
    return;
  }
  x.rows.scan([&](std::size_t first, MatrixView block) {
    keep(first, knn_of_block(first, block, seeds, seed_rows, options));
  });
}

/// The model's logit of every row of a block.
void logits_of_block(MatrixView block, const LogisticModel& model, float* out) {
  const auto n = static_cast<std::int64_t>(block.rows);
#pragma omp parallel for schedule(static)
  for (std::int64_t i = 0; i < n; ++i) {
    const float* xi = block.row(static_cast<std::size_t>(i));
    double z = model.intercept;
    for (std::size_t j = 0; j < block.cols; ++j) z += model.coef[j] * static_cast<double>(xi[j]);
    out[i] = static_cast<float>(z);
  }
}

std::vector<float> logits(const Market& x, const LogisticModel& model) {
  std::vector<float> out(x.rows.rows);
  x.rows.scan([&](std::size_t first, MatrixView block) {
    logits_of_block(block, model, out.data() + first);
  });
  return out;
}

/// Each row's segment score: the seed rate of its segment.
void segment_scores(std::span<const double> rate, std::span<const std::int32_t> segment,
                    float* out) {
  for (std::size_t i = 0; i < segment.size(); ++i)
    out[i] = static_cast<float>(rate[static_cast<std::size_t>(segment[i])]);
}

MethodScores run_methods(const Market& x, std::span<const std::int32_t> segment, int k,
                         std::span<const std::uint8_t> is_seed,
                         std::span<const std::uint8_t> is_negative, const LookalikeOptions& options,
                         const LogisticModel* model_start = nullptr) {
  const std::size_t n = x.rows.rows;
  const std::vector<std::size_t> seed_rows = reference_rows(is_seed, options);
  MethodScores out;
  out.seeds = x.rows.fetch(seed_rows);
  knn_blocks(x, out.seeds, seed_rows, options, out);
  out.knn_rows = seed_rows;
  out.segment_rate = segment_seed_rates(segment, k, is_seed, is_negative, options.prior_strength);
  out.raw[1].resize(n);
  segment_scores(out.segment_rate, segment, out.raw[1].data());
  out.model = fit_pu_logistic(x.rows, is_seed, is_negative, options.l2, options.bags, options.seed,
                              model_start);
  out.raw[2] = logits(x, out.model);
  return out;
}

// The backtest's market: a seeded sample's rows gathered (x, segment, training seeds, negatives,
// folds), so the backtest fits and scores it exactly as it would the whole market.
struct SampledMarket {
  Matrix x;
  std::vector<std::int32_t> segment;
  std::vector<std::uint8_t> train, negative, fold;
};

SampledMarket gather_sample(const Market& x, std::span<const std::int32_t> segment,
                            std::span<const std::uint8_t> train,
                            std::span<const std::uint8_t> is_negative,
                            std::span<const std::uint8_t> fold, const BacktestSample& sample) {
  std::vector<std::size_t> rows;
  for (std::size_t i = 0; i < x.rows.rows; ++i)
    if (sample.contains(i)) rows.push_back(i);
  SampledMarket out;
  out.x = Matrix::uninitialized(rows.size(), x.rows.cols);  // every row copied below
  x.rows.scan([&](std::size_t first, MatrixView block) {
    // The sample's rows in this block: a run of `rows`, copied to the same places.
    const auto b =
        static_cast<std::int64_t>(std::lower_bound(rows.begin(), rows.end(), first) - rows.begin());
    const auto e = static_cast<std::int64_t>(
        std::lower_bound(rows.begin(), rows.end(), first + block.rows) - rows.begin());
#pragma omp parallel for schedule(static)
    for (std::int64_t t = b; t < e; ++t)
      std::copy_n(block.row(rows[static_cast<std::size_t>(t)] - first), block.cols,
                  out.x.row(static_cast<std::size_t>(t)));
  });
  auto pick = [&](auto src, auto& dst) {
    if (src.empty()) return;
    dst.resize(rows.size());
    for (std::size_t t = 0; t < rows.size(); ++t) dst[t] = src[rows[t]];
  };
  pick(segment, out.segment);
  pick(train, out.train);
  pick(is_negative, out.negative);
  pick(fold, out.fold);
  return out;
}

// The normalized midranks of the methods whose `wanted` flag is set (the others stay empty), side
// by side: each sort runs on one thread, so two of them share the two cores. Each method's
// result is its own, so the bits do not depend on which ends first.
std::array<std::vector<double>, kMethods> method_midranks(
    const std::array<std::vector<float>, kMethods>& raw, const std::array<bool, kMethods>& wanted) {
  std::array<std::vector<double>, kMethods> r;
  ExceptionCollector errors;
#pragma omp parallel for schedule(dynamic, 1) if (raw[0].size() > kReduceChunkRows)
  for (std::ptrdiff_t m = 0; m < static_cast<std::ptrdiff_t>(kMethods); ++m) {
    const auto mm = static_cast<std::size_t>(m);
    if (wanted[mm]) errors.run([&] { r[mm] = normalized_midrank(raw[mm]); });
  }
  errors.rethrow();
  return r;
}

// Weighted mean of the methods' normalized midranks. Rank averaging puts the knn similarity, a
// segment rate and a logit on one scale without assuming anything about their distributions.
// (A market whose results are spilled takes the same sums one method at a time: refit_spilled.)
std::vector<float> rank_average(const std::array<std::vector<float>, kMethods>& raw,
                                const std::array<double, kMethods>& weight) {
  const std::size_t n = raw[0].size();
  std::array<bool, kMethods> wanted{};
  for (std::size_t m = 0; m < kMethods; ++m) wanted[m] = weight[m] != 0.0;
  const std::array<std::vector<double>, kMethods> r = method_midranks(raw, wanted);
  std::vector<double> sum(n, 0.0);
  for (std::size_t m = 0; m < kMethods; ++m) {
    if (weight[m] == 0.0) continue;
    for (std::size_t i = 0; i < n; ++i) sum[i] += weight[m] * r[m][i];
  }
  std::vector<float> out(n);
  for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<float>(sum[i]);
  return out;
}

// Weights proportional to max(0, AUC - 0.5): a method at chance gets nothing, and the gain over
// chance (not AUC itself) sets the share. All at chance -> equal weights.
std::array<double, kMethods> weights_from_auc(const std::array<double, kMethods>& auc) {
  std::array<double, kMethods> w{};
  double total = 0.0;
  for (std::size_t m = 0; m < kMethods; ++m) {
    w[m] = std::max(0.0, auc[m] - 0.5);
    total += w[m];
  }
  for (std::size_t m = 0; m < kMethods; ++m) {
    w[m] = total > 0.0 ? w[m] / total : 1.0 / static_cast<double>(kMethods);
  }
  return w;
}

// Ensemble weights from the backtest, by search over a simplex grid (steps of 1/kWeightSteps: 66
// weightings of knn, segment, model). The rule before, weights proportional to each method's AUC
// gain, gave near-equal weights whenever the AUCs were close, which let two weaker methods pull
// the ensemble below the best one (1M generated rows: ensemble 0.936, model 0.952). The plain
// argmax goes to the other extreme (model alone on those rows) and the ranking loses what the
// other methods see: its planted-truth AUC fell from 0.986 to 0.959. So the one-standard-error
// rule of model selection, around the old rule as the prior: among the weightings whose AUC is
// within one standard error (Hanley-McNeil) of the best one's, the one nearest the AUC-gain
// weights. Differences smaller than the noise of one holdout do not move the weights, and a
// method that costs nothing keeps its share. (Nearest the even weighting instead was tried: on
// Crunchbase's ~200 choosing seeds the standard error is ~0.02 and it gave near-even weights.)
constexpr int kWeightSteps = 10;
// Unlabeled rows the weight search ranks the choosing seeds among (every k-th of the population):
// the AUC of 66 weightings on all 10M rows would cost more than the rest of the backtest, and at
// 100k rows the AUC's standard error (~0.003 at 3% seeds) is below the differences that matter.
constexpr std::size_t kWeightSearchRows = 100000;

// Hanley & McNeil (1982) standard error of an AUC from `pos` positives and `neg` negatives.
double auc_standard_error(double auc, double pos, double neg) {
  if (pos < 1.0 || neg < 1.0) return 0.0;
  const double q1 = auc / (2.0 - auc);
  const double q2 = 2.0 * auc * auc / (1.0 + auc);
  const double var =
      (auc * (1.0 - auc) + (pos - 1.0) * (q1 - auc * auc) + (neg - 1.0) * (q2 - auc * auc)) /
      (pos * neg);
  return std::sqrt(std::max(0.0, var));
}

double squared_distance(const std::array<double, kMethods>& a,
                        const std::array<double, kMethods>& b) {
  double d = 0.0;
  for (std::size_t m = 0; m < kMethods; ++m) d += (a[m] - b[m]) * (a[m] - b[m]);
  return d;
}

// `choose[t]`: 1 = held-out seed that chooses, 2 = held-out seed kept for measuring (skipped),
// 0 = unlabeled row of the population.
std::array<double, kMethods> search_weights(const std::array<std::vector<float>, kMethods>& raw,
                                            std::span<const std::size_t> population,
                                            std::span<const std::uint8_t> choose) {
  // The search ranks rows by sum_m w_m midrank_m, as rank_average does, over a sample of rows:
  // every choosing seed and every k-th other row of the population.
  std::size_t negatives = 0;
  for (const std::uint8_t c : choose) negatives += c == 0 ? 1 : 0;
  const std::size_t stride = std::max<std::size_t>(1, negatives / kWeightSearchRows);
  std::vector<std::size_t> rows;
  std::vector<std::uint8_t> label;
  std::size_t seen = 0;
  double pos = 0.0, neg = 0.0;
  for (std::size_t t = 0; t < population.size(); ++t) {
    if (choose[t] == 2) continue;
    if (choose[t] == 0 && seen++ % stride != 0) continue;
    rows.push_back(population[t]);
    label.push_back(choose[t] == 1 ? 1 : 0);
    (choose[t] == 1 ? pos : neg) += 1.0;
  }
  std::array<bool, kMethods> every{};
  every.fill(true);
  const std::array<std::vector<double>, kMethods> whole = method_midranks(raw, every);
  std::array<std::vector<double>, kMethods> midrank;
  for (std::size_t m = 0; m < kMethods; ++m) {
    const std::vector<double>& all = whole[m];
    midrank[m].resize(rows.size());
    for (std::size_t t = 0; t < rows.size(); ++t) midrank[m][t] = all[rows[t]];
  }
  std::vector<std::array<double, kMethods>> grid;
  std::vector<double> auc;
  std::vector<float> combined(rows.size());
  for (int a = kWeightSteps; a >= 0; --a) {
    for (int b = kWeightSteps - a; b >= 0; --b) {
      const std::array<double, kMethods> w = {
          a / static_cast<double>(kWeightSteps), b / static_cast<double>(kWeightSteps),
          (kWeightSteps - a - b) / static_cast<double>(kWeightSteps)};
      for (std::size_t t = 0; t < rows.size(); ++t) {
        double sum = 0.0;
        for (std::size_t m = 0; m < kMethods; ++m) sum += w[m] * midrank[m][t];
        combined[t] = static_cast<float>(sum);
      }
      grid.push_back(w);
      auc.push_back(roc_auc(combined, label));
    }
  }
  // The corners of the grid are the single methods: their AUCs give the prior.
  std::array<double, kMethods> single{};
  for (std::size_t g = 0; g < grid.size(); ++g)
    for (std::size_t m = 0; m < kMethods; ++m)
      if (grid[g][m] == 1.0) single[m] = auc[g];
  const std::array<double, kMethods> prior = weights_from_auc(single);
  // Every method better than chance keeps at least one grid step (0.1). On 10M generated rows
  // the search otherwise dropped the segment method (0.1/0/0.9): its share barely moves the
  // backtest, which scores single seeds, but it carries the segment structure the planted
  // ICP is made of (planted-truth AUC 0.9665 without the floor, 0.9740 with it).
  auto allowed = [&](std::size_t g) {
    for (std::size_t m = 0; m < kMethods; ++m)
      if (single[m] > 0.5 && grid[g][m] == 0.0) return false;
    return true;
  };
  double best = -1.0;
  for (std::size_t g = 0; g < grid.size(); ++g)
    if (allowed(g)) best = std::max(best, auc[g]);
  const double floor = best - auc_standard_error(best, pos, neg);
  std::size_t pick = grid.size();
  for (std::size_t g = 0; g < grid.size(); ++g) {
    if (!allowed(g) || auc[g] < floor) continue;
    // Strictly nearer: a tie keeps the weighting met first in grid order.
    if (pick == grid.size() ||
        squared_distance(grid[g], prior) < squared_distance(grid[pick], prior) - 1e-12)
      pick = g;
  }
  return grid[pick];
}

BacktestRow evaluate(const std::string& name, std::span<const float> all_scores,
                     std::span<const std::size_t> population, std::span<const std::uint8_t> label) {
  std::vector<float> s(population.size());
  for (std::size_t t = 0; t < population.size(); ++t) s[t] = all_scores[population[t]];
  BacktestRow row = measure_ranking(s, label);
  row.method = name;
  return row;
}

std::array<std::int32_t, 3> top_reasons(const float* xi, std::span<const double> coef) {
  // The three largest positive contributions, ties to the lower feature index (strict >): a
  // branch-free insertion into three slots (empty slots hold 0, which no contribution that counts
  // beats by >), where a branch on the sign of each contribution mispredicted about every other
  // feature on real rows.
  double v0 = 0.0, v1 = 0.0, v2 = 0.0;
  std::int32_t b0 = -1, b1 = -1, b2 = -1;
  for (std::size_t j = 0; j < coef.size(); ++j) {
    const double c = coef[j] * static_cast<double>(xi[j]);
    const auto jj = static_cast<std::int32_t>(j);
    const bool g0 = c > v0, g1 = c > v1, g2 = c > v2;
    v2 = g1 ? v1 : (g2 ? c : v2);
    b2 = g1 ? b1 : (g2 ? jj : b2);
    v1 = g0 ? v0 : (g1 ? c : v1);
    b1 = g0 ? b0 : (g1 ? jj : b1);
    v0 = g0 ? c : v0;
    b0 = g0 ? jj : b0;
  }
  return {b0, b1, b2};
}

// Each row's reasons read only that row: in parallel.
void reasons_of_block(MatrixView block, std::span<const double> coef,
                      std::array<std::int32_t, 3>* out) {
#pragma omp parallel for schedule(static) if (block.rows > kReduceChunkRows)
  for (std::ptrdiff_t i = 0; i < static_cast<std::ptrdiff_t>(block.rows); ++i) {
    const auto r = static_cast<std::size_t>(i);
    out[r] = top_reasons(block.row(r), coef);
  }
}

void check_finite(MatrixView x) {
  const std::optional<std::size_t> t = first_non_finite(x);
  if (!t) return;
  throw Error("lookalike: non-finite value at row " + std::to_string(*t / x.cols) + ", feature " +
              std::to_string(*t % x.cols));
}

void validate_options(const LookalikeOptions& o) {
  if (o.neighbors < 1) throw Error("lookalike: neighbors must be >= 1");
  if (o.knn_max_seeds < 0) throw Error("lookalike: knn_max_seeds must be >= 0 (0 = all seeds)");
  if (o.backtest_max_rows < 0)
    throw Error("lookalike: backtest_max_rows must be >= 0 (0 = all rows)");
  if (!(o.prior_strength >= 0.0) || !std::isfinite(o.prior_strength)) {
    throw Error("lookalike: prior_strength must be finite and >= 0");
  }
  if (!(o.l2 > 0.0) || !std::isfinite(o.l2)) throw Error("lookalike: l2 must be > 0");
  if (o.bags < 1) throw Error("lookalike: bags must be >= 1");
  if (!(o.holdout >= 0.0 && o.holdout < 1.0)) throw Error("lookalike: holdout must be in [0, 1)");
  if (o.tiers.size() > kMaxTiers) throw Error("lookalike: at most 4 tier cut-offs (A-D)");
  double previous = 0.0;
  for (const double t : o.tiers) {
    if (!(t > previous && t <= 1.0)) {
      throw Error("lookalike: tier cut-offs must increase within (0, 1]");
    }
    previous = t;
  }
}

// Normalized midrank v would have in `population_sorted` (see score_new_accounts): for a member
// of the population this is, bit for bit, what normalized_midrank gave it, and a value between
// two members lands halfway between their midranks.
double position_in(std::span<const float> population_sorted, float v) {
  const std::size_t m = population_sorted.size();
  if (m < 2) return midrank_of_place(0, 0, m);
  const auto lo = std::lower_bound(population_sorted.begin(), population_sorted.end(), v);
  // Most values (continuous scores) equal no member: the second search only when lo is v.
  const auto hi = lo != population_sorted.end() && *lo == v
                      ? std::upper_bound(lo, population_sorted.end(), v)
                      : lo;
  return midrank_of_place(static_cast<std::size_t>(lo - population_sorted.begin()),
                          static_cast<std::size_t>(hi - lo), m);
}

// ceil(fraction * n) per tier cut-off; the epsilon keeps 0.1 * 1000 from rounding up to 101.
std::array<std::int64_t, kMaxTiers> tier_ends(std::span<const double> tiers, std::size_t n) {
  std::array<std::int64_t, kMaxTiers> end{};
  for (std::size_t t = 0; t < kMaxTiers; ++t) {
    end[t] = t < tiers.size()
                 ? static_cast<std::int64_t>(std::ceil(tiers[t] * static_cast<double>(n) - 1e-9))
                 : 0;
  }
  return end;
}

// 100 for rank 1 down to 0 for rank n, evenly (100 when n is 1).
float percentile_of(std::int64_t rank, std::size_t n) noexcept {
  return n > 1
             ? static_cast<float>(100.0 * static_cast<double>(static_cast<std::int64_t>(n) - rank) /
                                  static_cast<double>(n - 1))
             : 100.0f;
}

// 'A' + the first tier whose end the rank is within, else 'E'.
std::uint8_t tier_of(std::int64_t rank, const std::array<std::int64_t, kMaxTiers>& tier_end,
                     std::size_t tiers) noexcept {
  for (std::size_t t = 0; t < tiers; ++t)
    if (rank <= tier_end[t]) return static_cast<std::uint8_t>('A' + t);
  return 'E';
}

}  // namespace

const char* to_string(LookalikeMethod method) noexcept {
  switch (method) {
    case LookalikeMethod::knn:
      return "knn";
    case LookalikeMethod::segment:
      return "segment";
    case LookalikeMethod::model:
      return "model";
    case LookalikeMethod::ensemble:
      return "ensemble";
  }
  return "unknown";
}

namespace {

/// Rows a pass over the spilled columns reads at a time: 256 KiB of floats per column, where a
/// read per row would cost a system call per row.
constexpr std::size_t kSpillBlockRows = std::size_t{1} << 16;

/// Calls visit(first, count) on consecutive row ranges of kSpillBlockRows covering n rows.
template <class Visit>
void spill_blocks(std::size_t n, Visit&& visit) {
  for (std::size_t first = 0; first < n; first += kSpillBlockRows)
    visit(first, std::min(kSpillBlockRows, n - first));
}

/// The sorted order keys of a spilled float column.
SortedKeys sorted_column(const ScratchColumns& spill, const char* column) {
  std::vector<std::uint32_t> keys(spill.rows());
  std::vector<float> v;
  spill_blocks(spill.rows(), [&](std::size_t first, std::size_t count) {
    spill.read(column, first, count, v);
    for (std::size_t i = 0; i < count; ++i) keys[first + i] = float_order_key(v[i]);
  });
  return SortedKeys(std::move(keys));
}

/// The final fit of score_market with its per-row results written to x.spill's columns
/// (lookalike_columns) instead of held: the model first (it reads the rows and flags only), then
/// one scan for what each row gets on its own (knn, segment rate, logit, reasons), then the
/// ensemble's midranks one method at a time (a float64 sum per row in the scratch file) and the
/// ranks from sorted keys. Holds 4 bytes a row (8 in the rank pass) beyond the caller's; the bits
/// of the in-memory fit.
void refit_spilled(const Market& x, std::span<const std::int32_t> segment, int k,
                   std::span<const std::uint8_t> is_seed, std::span<const std::uint8_t> is_negative,
                   const LookalikeOptions& options, const LogisticModel* start,
                   LookalikeResult& result) {
  namespace col = lookalike_columns;
  ScratchColumns& spill = *x.spill;
  const std::size_t n = x.rows.rows;
  if (spill.rows() != n) throw Error("lookalike: the spill file's rows differ from the market's");
  const std::vector<std::size_t> seed_rows = reference_rows(is_seed, options);
  result.seeds = x.rows.fetch(seed_rows);
  result.seed_rows.assign(seed_rows.begin(), seed_rows.end());
  result.segment_rate =
      segment_seed_rates(segment, k, is_seed, is_negative, options.prior_strength);
  const LogisticModel model =
      fit_pu_logistic(x.rows, is_seed, is_negative, options.l2, options.bags, options.seed, start);
  result.model_coef = model.coef;
  result.model_intercept = model.intercept;

  std::vector<float> sim, seg, logit, nearest_distance;
  std::vector<std::int64_t> nearest;
  std::vector<std::array<std::int32_t, 3>> reasons;
  x.rows.scan([&](std::size_t first, MatrixView block) {
    const std::size_t b = block.rows;
    sim.resize(b);
    seg.resize(b);
    logit.resize(b);
    nearest_distance.resize(b);
    nearest.resize(b);
    reasons.resize(b);
    keep_knn(knn_of_block(first, block, result.seeds, seed_rows, options), seed_rows, sim.data(),
             nearest.data(), nearest_distance.data());
    segment_scores(result.segment_rate, segment.subspan(first, b), seg.data());
    logits_of_block(block, model, logit.data());
    reasons_of_block(block, model.coef, reasons.data());
    spill.write<float>(col::knn_similarity, first, sim);
    spill.write<float>(col::segment_score, first, seg);
    spill.write<float>(col::model_score, first, logit);
    spill.write<float>(col::nearest_seed_distance, first, nearest_distance);
    spill.write<std::int64_t>(col::nearest_seed, first, nearest);
    spill.write<std::int32_t>(col::reasons, first,
                              std::span<const std::int32_t>(reasons.data()->data(), 3 * b), 3);
  });

  // The ranked value: one method's score, or rank_average's weighted midranks, the methods added
  // in the same order to the same float64 sums (kept in the scratch file between methods).
  const std::array<const char*, kMethods> raw = {col::knn_similarity, col::segment_score,
                                                 col::model_score};
  std::vector<float> v;
  std::vector<double> sum;
  if (options.method == LookalikeMethod::ensemble) {
    bool added = false;
    for (std::size_t m = 0; m < kMethods; ++m) {
      const double w = result.method_weight[m];
      if (w == 0.0) continue;
      const SortedKeys sorted = sorted_column(spill, raw[m]);
      spill_blocks(n, [&](std::size_t first, std::size_t count) {
        spill.read(raw[m], first, count, v);
        if (added)
          spill.read(col::ensemble_sum, first, count, sum);
        else
          sum.assign(count, 0.0);
#pragma omp parallel for schedule(static)
        for (std::ptrdiff_t t = 0; t < static_cast<std::ptrdiff_t>(count); ++t) {
          const auto i = static_cast<std::size_t>(t);
          sum[i] += w * sorted.midrank(v[i]);
        }
        spill.write<double>(col::ensemble_sum, first, sum);
      });
      added = true;
    }
    spill_blocks(n, [&](std::size_t first, std::size_t count) {
      if (added)
        spill.read(col::ensemble_sum, first, count, sum);
      else
        sum.assign(count, 0.0);
      v.resize(count);
      for (std::size_t i = 0; i < count; ++i) v[i] = static_cast<float>(sum[i]);
      spill.write<float>(col::combined, first, v);
    });
  } else {
    const char* chosen = raw[options.method == LookalikeMethod::knn       ? 0
                             : options.method == LookalikeMethod::segment ? 1
                                                                          : 2];
    spill_blocks(n, [&](std::size_t first, std::size_t count) {
      spill.read(chosen, first, count, v);
      spill.write<float>(col::combined, first, v);
    });
  }

  // Ranks, midrank scores, percentiles and tiers of the ranked value.
  const SortedKeys sorted = sorted_column(spill, col::combined);
  StreamedRanks ranks(sorted);
  const std::array<std::int64_t, kMaxTiers> tier_end = tier_ends(options.tiers, n);
  std::vector<std::int64_t> rank;
  std::vector<float> score, percentile;
  std::vector<std::uint8_t> tier;
  spill_blocks(n, [&](std::size_t first, std::size_t count) {
    spill.read(col::combined, first, count, v);
    rank.resize(count);
    score.resize(count);
    percentile.resize(count);
    tier.resize(count);
    ranks.next(v, rank);
#pragma omp parallel for schedule(static)
    for (std::ptrdiff_t t = 0; t < static_cast<std::ptrdiff_t>(count); ++t) {
      const auto i = static_cast<std::size_t>(t);
      score[i] = static_cast<float>(100.0 * sorted.midrank(v[i]));
      percentile[i] = percentile_of(rank[i], n);
      tier[i] = tier_of(rank[i], tier_end, options.tiers.size());
    }
    spill.write<std::int64_t>(col::rank, first, rank);
    spill.write<float>(col::score, first, score);
    spill.write<float>(col::percentile, first, percentile);
    spill.write<std::uint8_t>(col::tier, first, tier);
  });
}

LookalikeResult score_market(const Market& x, std::span<const std::int32_t> segment, int k,
                             std::span<const std::uint8_t> is_seed,
                             std::span<const std::uint8_t> is_negative,
                             const LookalikeOptions& options) {
  validate_options(options);
  const std::size_t n = x.rows.rows;
  if (x.rows.cols == 0) throw Error("lookalike: no features");
  if (segment.size() != n || is_seed.size() != n) {
    throw Error("lookalike: segment and seed flags must have one entry per row");
  }
  if (!is_negative.empty() && is_negative.size() != n) {
    throw Error("lookalike: negative flags must have one entry per row");
  }
  std::vector<std::size_t> seed_rows;
  for (std::size_t i = 0; i < n; ++i) {
    if (is_seed[i] != 0) seed_rows.push_back(i);
  }
  if (seed_rows.size() < 2) {
    throw Error("lookalike: needs at least 2 seeds, got " + std::to_string(seed_rows.size()));
  }
  if (seed_rows.size() == n) throw Error("lookalike: every account is a seed");

  LookalikeResult result;
  result.method_weight.fill(1.0 / static_cast<double>(kMethods));
  static constexpr std::array<const char*, kMethods> kNames = {"knn", "segment", "model"};

  // Backtest: a seeded shuffle picks the held-out seeds; they become unlabeled for the fit.
  const auto holdout = static_cast<std::size_t>(
      std::llround(options.holdout * static_cast<double>(seed_rows.size())));
  LogisticModel backtest_model;
  if (options.holdout > 0.0) {
    const std::size_t h = std::clamp<std::size_t>(holdout, 1, seed_rows.size() - 1);
    std::vector<std::size_t> shuffled = seed_rows;
    std::uint64_t state = options.seed;
    for (std::size_t t = shuffled.size() - 1; t > 0; --t) {
      state = splitmix64(state);
      std::swap(shuffled[t], shuffled[state % (t + 1)]);  // modulo bias is < 2^-40 here
    }
    std::vector<std::uint8_t> train(is_seed.begin(), is_seed.end());
    for (std::size_t t = 0; t < h; ++t) train[shuffled[t]] = 0;
    // A large market is backtested on a seeded uniform sample of its rows; one that would hold
    // fewer than two held-out or two training seeds (a tiny seed set in a large market) is not
    // sampled.
    BacktestSample sample = backtest_sample(n, options.backtest_max_rows, options.seed);
    if (sample.threshold != 0) {
      std::size_t held_in = 0, train_in = 0;
      for (std::size_t t = 0; t < shuffled.size(); ++t)
        if (sample.contains(shuffled[t])) ++(t < h ? held_in : train_in);
      if (held_in < 2 || train_in < 2) sample = BacktestSample{};
    }
    // Held-out seeds that are measured, in shuffle order, alternate between choosing the ensemble
    // weights (fold 1) and measuring the ensemble (fold 2), so its figures are not those of its
    // own choice. (With a single held-out seed it does both.)
    std::vector<std::uint8_t> fold(n, 0);
    for (std::size_t t = 0, j = 0; t < h; ++t) {
      if (!sample.contains(shuffled[t])) continue;
      fold[shuffled[t]] = h > 1 && j++ % 2 == 1 ? 2 : 1;
    }
    SampledMarket market;
    MethodScores fit;
    if (sample.threshold != 0) {
      market = gather_sample(x, segment, train, is_negative, fold, sample);
      LookalikeOptions local = options;
      local.knn = nullptr;  // the MPI hook splits the whole matrix, not a sample of it
      fit = run_methods(held(market.x.view()), market.segment, k, market.train, market.negative,
                        local);
    } else {
      fit = run_methods(x, segment, k, train, is_negative, options);
    }
    const std::span<const std::uint8_t> fit_train =
        sample.threshold != 0 ? std::span<const std::uint8_t>(market.train) : train;
    const std::span<const std::uint8_t> fit_fold =
        sample.threshold != 0 ? std::span<const std::uint8_t>(market.fold) : fold;
    // Rows of the fitted market outside the training seeds, with their folds.
    std::vector<std::size_t> population, measured;
    std::vector<std::uint8_t> label, choose, measured_label;
    for (std::size_t i = 0; i < fit_train.size(); ++i) {
      if (fit_train[i] != 0) continue;
      const std::uint8_t f = fit_fold[i];
      population.push_back(i);
      label.push_back(f != 0 ? 1 : 0);
      choose.push_back(f);
      if (f == 1 && h > 1) continue;
      measured.push_back(i);
      measured_label.push_back(f != 0 ? 1 : 0);
    }
    for (std::size_t m = 0; m < kMethods; ++m)
      result.backtest.push_back(evaluate(kNames[m], fit.raw[m], population, label));
    result.method_weight = search_weights(fit.raw, population, choose);
    for (std::size_t m = 0; m < kMethods; ++m) result.backtest[m].weight = result.method_weight[m];
    result.backtest.push_back(evaluate("ensemble", rank_average(fit.raw, result.method_weight),
                                       measured, measured_label));
    result.backtest.back().weight = 1.0;
    backtest_model = std::move(fit.model);
  }

  // The final model starts from the backtest's: the same problem with a fifth more seeds, so
  // Newton needs about half the passes over the rows that it needs from zero.
  if (x.spill != nullptr) {
    refit_spilled(x, segment, k, is_seed, is_negative, options,
                  backtest_model.coef.empty() ? nullptr : &backtest_model, result);
    return result;
  }
  MethodScores fit = run_methods(x, segment, k, is_seed, is_negative, options,
                                 backtest_model.coef.empty() ? nullptr : &backtest_model);
  switch (options.method) {
    case LookalikeMethod::knn:
      result.combined = fit.raw[0];
      break;
    case LookalikeMethod::segment:
      result.combined = fit.raw[1];
      break;
    case LookalikeMethod::model:
      result.combined = fit.raw[2];
      break;
    case LookalikeMethod::ensemble:
      result.combined = rank_average(fit.raw, result.method_weight);
      break;
  }

  const std::vector<double> midrank = normalized_midrank(result.combined, &result.rank);
  result.score.resize(n);
  for (std::size_t i = 0; i < n; ++i) result.score[i] = static_cast<float>(100.0 * midrank[i]);
  result.percentile.resize(n);
  result.tier.resize(n);
  const std::array<std::int64_t, kMaxTiers> tier_end = tier_ends(options.tiers, n);
  for (std::size_t i = 0; i < n; ++i) {
    result.percentile[i] = percentile_of(result.rank[i], n);
    result.tier[i] = tier_of(result.rank[i], tier_end, options.tiers.size());
  }

  result.nearest_seed = std::move(fit.nearest);
  result.nearest_seed_distance = std::move(fit.nearest_distance);
  result.knn_similarity = std::move(fit.raw[0]);
  result.segment_score = std::move(fit.raw[1]);
  result.model_score = std::move(fit.raw[2]);
  result.model_coef = fit.model.coef;
  result.model_intercept = fit.model.intercept;
  result.reasons.resize(n);
  x.rows.scan([&](std::size_t first, MatrixView block) {
    reasons_of_block(block, result.model_coef, result.reasons.data() + first);
  });
  result.segment_rate = std::move(fit.segment_rate);
  // What icp score needs to repeat knn: the reference seeds, not every seed.
  result.seed_rows.assign(fit.knn_rows.begin(), fit.knn_rows.end());
  result.seeds = std::move(fit.seeds);
  return result;
}

}  // namespace

LookalikeResult score_lookalike(MatrixView x, std::span<const std::int32_t> segment, int k,
                                std::span<const std::uint8_t> is_seed,
                                std::span<const std::uint8_t> is_negative,
                                const LookalikeOptions& options) {
  validate_options(options);
  if (x.cols == 0) throw Error("lookalike: no features");
  check_finite(x);
  return score_market(held(x), segment, k, is_seed, is_negative, options);
}

LookalikeResult score_lookalike(const RowBlocks& x, std::span<const std::int32_t> segment, int k,
                                std::span<const std::uint8_t> is_seed,
                                std::span<const std::uint8_t> is_negative,
                                const LookalikeOptions& options, ScratchColumns* spill) {
  validate_options(options);
  if (x.cols == 0) throw Error("lookalike: no features");
  if (options.knn) throw Error("lookalike: a knn hook needs the matrix held, not streamed");
  x.scan([](std::size_t first, MatrixView block) {
    if (const std::optional<std::size_t> t = first_non_finite(block)) {
      throw Error("lookalike: non-finite value at row " + std::to_string(first + *t / block.cols) +
                  ", feature " + std::to_string(*t % block.cols));
    }
  });
  Market m;
  m.rows = x;
  m.spill = spill;
  return score_market(m, segment, k, is_seed, is_negative, options);
}

LookalikeNewScores score_new_accounts(MatrixView x, std::span<const std::int32_t> segment,
                                      MatrixView seeds, const LookalikeResult& fitted,
                                      const LookalikeOptions& options,
                                      std::span<const std::int64_t> self_seed) {
  return NewAccountScorer(fitted, options).score(x, segment, seeds, self_seed);
}

NewAccountScorer::NewAccountScorer(const LookalikeResult& fitted, const LookalikeOptions& options)
    : fitted_(fitted), options_(options) {
  validate_options(options);
  const std::size_t fitted_n = fitted.combined.size();
  if (fitted_n == 0) throw Error("lookalike: the fitted result is empty");
  if (fitted.knn_similarity.size() != fitted_n || fitted.segment_score.size() != fitted_n ||
      fitted.model_score.size() != fitted_n) {
    throw Error("lookalike: the fitted raw scores differ in length from the fitted combined");
  }
  auto sorted = [](std::vector<float> v) {
    std::sort(v.begin(), v.end());
    return v;
  };
  if (options.method == LookalikeMethod::ensemble) {
    const std::array<const std::vector<float>*, kMethods> fitted_raw = {
        &fitted.knn_similarity, &fitted.segment_score, &fitted.model_score};
    for (std::size_t m = 0; m < kMethods; ++m)
      if (fitted.method_weight[m] != 0.0) population_[m] = sorted(*fitted_raw[m]);
  }
  combined_ = sorted(fitted.combined);
}

LookalikeNewScores NewAccountScorer::score(MatrixView x, std::span<const std::int32_t> segment,
                                           MatrixView seeds,
                                           std::span<const std::int64_t> self_seed) const {
  const LookalikeResult& fitted = fitted_;
  const LookalikeOptions& options = options_;
  const std::size_t n = x.rows;
  if (segment.size() != n) throw Error("lookalike: segment must have one entry per row");
  if (seeds.rows != fitted.seed_rows.size()) {
    throw Error("lookalike: seed matrix rows differ from the fitted seed count");
  }
  if (x.cols != fitted.model_coef.size() || seeds.cols != x.cols) {
    throw Error("lookalike: feature count differs from the fitted model");
  }
  const std::size_t fitted_n = fitted.combined.size();
  if (!self_seed.empty()) {
    if (self_seed.size() != n) throw Error("lookalike: self_seed must have one entry per row");
    for (const std::int64_t s : self_seed) {
      if (s < -1 || s >= static_cast<std::int64_t>(seeds.rows)) {
        throw Error("lookalike: self_seed holds an index outside the seeds");
      }
    }
  }
  check_finite(x);

  LookalikeNewScores out;
  const KnnResult knn = knn_to_seeds(x, seeds, self_seed, options.neighbors, 1);
  out.knn_similarity = similarities(knn);
  out.nearest_seed.resize(n);
  out.nearest_seed_distance.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    const std::int64_t s = knn.index[i * knn.k];  // -1 only for a seed with no other seed
    out.nearest_seed[i] = s >= 0 ? fitted.seed_rows[static_cast<std::size_t>(s)] : -1;
    out.nearest_seed_distance[i] = knn.distance[i * knn.k];
  }
  out.segment_score.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    const std::int32_t c = segment[i];
    if (c < 0 || static_cast<std::size_t>(c) >= fitted.segment_rate.size()) {
      throw Error("lookalike: row " + std::to_string(i) + " has an unknown segment " +
                  std::to_string(c));
    }
    out.segment_score[i] = static_cast<float>(fitted.segment_rate[static_cast<std::size_t>(c)]);
  }
  LogisticModel model;
  model.coef = fitted.model_coef;
  model.intercept = fitted.model_intercept;
  out.model_score = logits(held(x), model);
  out.reasons.resize(n);
  // Rows are independent from here on: each loop is split over the threads (every row's result
  // is computed as on one thread, so the bits do not depend on the split).
  const auto rows = static_cast<std::ptrdiff_t>(n);
#pragma omp parallel for schedule(static)
  for (std::ptrdiff_t si = 0; si < rows; ++si) {
    const auto i = static_cast<std::size_t>(si);
    out.reasons[i] = top_reasons(x.row(i), fitted.model_coef);
  }

  switch (options.method) {
    case LookalikeMethod::knn:
      out.combined = out.knn_similarity;
      break;
    case LookalikeMethod::segment:
      out.combined = out.segment_score;
      break;
    case LookalikeMethod::model:
      out.combined = out.model_score;
      break;
    case LookalikeMethod::ensemble: {
      const std::array<const std::vector<float>*, kMethods> new_raw = {
          &out.knn_similarity, &out.segment_score, &out.model_score};
      out.combined.resize(n);
#pragma omp parallel for schedule(static)
      for (std::ptrdiff_t si = 0; si < rows; ++si) {
        const auto i = static_cast<std::size_t>(si);
        double sum = 0.0;  // methods added in the same order as before: same bits
        for (std::size_t m = 0; m < kMethods; ++m) {
          if (fitted.method_weight[m] == 0.0) continue;
          sum += fitted.method_weight[m] * position_in(population_[m], (*new_raw[m])[i]);
        }
        out.combined[i] = static_cast<float>(sum);
      }
      break;
    }
  }
  const std::vector<float>& population = combined_;
  out.score.resize(n);
  // Cut-off value of tier t: the combined of the fitted row ranked tier_end[t] (1-based), i.e.
  // population[m - tier_end[t]] in ascending order.
  const std::array<std::int64_t, kMaxTiers> tier_end = tier_ends(options.tiers, fitted_n);
  out.tier.assign(n, 'E');
#pragma omp parallel for schedule(static)
  for (std::ptrdiff_t si = 0; si < rows; ++si) {
    const auto i = static_cast<std::size_t>(si);
    out.score[i] = static_cast<float>(100.0 * position_in(combined_, out.combined[i]));
    for (std::size_t t = 0; t < options.tiers.size(); ++t) {
      const auto end = static_cast<std::size_t>(
          std::clamp<std::int64_t>(tier_end[t], 1, static_cast<std::int64_t>(fitted_n)));
      if (out.combined[i] >= population[fitted_n - end]) {
        out.tier[i] = static_cast<std::uint8_t>('A' + t);
        break;
      }
    }
  }
  return out;
}

}  // namespace icp
