#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <random>
#include <utility>
#include <vector>

#include "../src/value_order.hpp"
#include "icp/error.hpp"
#include "icp/lookalike.hpp"
#include "icp/matrix.hpp"
#include "icp/parallel.hpp"
#include "icp/scratch.hpp"
#include "test_bits.hpp"
#include "test_tables.hpp"

namespace {

icp::Matrix random_matrix(std::size_t rows, std::size_t cols, std::uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  icp::Matrix m(rows, cols);
  for (float& v : m.storage()) v = normal(gen);
  return m;
}

// Plain scalar reference: all seeds, exact float64 distance, sorted by (distance, index).
std::vector<std::pair<double, std::int64_t>> brute_force(const icp::Matrix& x, std::size_t i,
                                                         const icp::Matrix& seeds,
                                                         std::int64_t self) {
  std::vector<std::pair<double, std::int64_t>> all;
  for (std::size_t s = 0; s < seeds.rows(); ++s) {
    if (static_cast<std::int64_t>(s) == self) continue;
    double d = 0.0;
    for (std::size_t j = 0; j < x.cols(); ++j) {
      const double diff = static_cast<double>(x(i, j)) - static_cast<double>(seeds(s, j));
      d += diff * diff;
    }
    all.emplace_back(d, static_cast<std::int64_t>(s));
  }
  std::sort(all.begin(), all.end());
  return all;
}

void expect_matches_brute_force(const icp::Matrix& x, const icp::Matrix& seeds,
                                const std::vector<std::int64_t>& self, int k) {
  const icp::KnnResult r = icp::knn_to_seeds(x.view(), seeds.view(), self, k);
  ASSERT_EQ(r.k, std::min<std::size_t>(static_cast<std::size_t>(k), seeds.rows()));
  for (std::size_t i = 0; i < x.rows(); ++i) {
    const auto ref = brute_force(x, i, seeds, self.empty() ? -1 : self[i]);
    double sum = 0.0;
    std::size_t valid = 0;
    for (std::size_t c = 0; c < r.k; ++c) {
      if (c < ref.size()) {
        ASSERT_EQ(r.index[i * r.k + c], ref[c].second) << "row " << i << " slot " << c;
        ASSERT_EQ(r.distance[i * r.k + c], static_cast<float>(ref[c].first));
        sum += ref[c].first;
        ++valid;
      } else {
        ASSERT_EQ(r.index[i * r.k + c], -1);
        ASSERT_TRUE(std::isinf(r.distance[i * r.k + c]));
      }
    }
    ASSERT_NEAR(r.mean[i], sum / static_cast<double>(valid), 1e-12 * (1.0 + sum));
  }
  // Keeping only the nearest columns changes nothing else: the same first columns, the same mean.
  for (const int columns : {1, 2}) {
    const icp::KnnResult c = icp::knn_to_seeds(x.view(), seeds.view(), self, k, columns);
    ASSERT_EQ(c.k, std::min<std::size_t>(static_cast<std::size_t>(columns), r.k));
    ASSERT_TRUE(icp_test::same_bits(c.mean, r.mean)) << columns << " columns";
    for (std::size_t i = 0; i < x.rows(); ++i)
      for (std::size_t t = 0; t < c.k; ++t) {
        ASSERT_EQ(c.index[i * c.k + t], r.index[i * r.k + t]) << "row " << i;
        ASSERT_TRUE(icp_test::same_bits(c.distance[i * c.k + t], r.distance[i * r.k + t]));
      }
  }
}

TEST(LookalikeKnn, MatchesBruteForceOnRandomData) {
  const icp::Matrix x = random_matrix(300, 7, 1);
  const icp::Matrix seeds = random_matrix(40, 7, 2);
  expect_matches_brute_force(x, seeds, {}, 5);
}

TEST(LookalikeKnn, MatchesBruteForceWithManyNeighbours) {
  // neighbors + the refinement margin above kKnnSortedMax: candidates live in a heap, not in
  // the sorted array the usual k uses; both must keep the same seeds.
  const icp::Matrix x = random_matrix(150, 5, 5);
  const icp::Matrix seeds = random_matrix(1300, 5, 6);
  std::vector<std::int64_t> self(150, -1);
  for (std::size_t i = 0; i < 150; i += 3) self[i] = static_cast<std::int64_t>(i * 7);
  expect_matches_brute_force(x, seeds, self, 70);
  expect_matches_brute_force(x, seeds, self, 12);
}

TEST(LookalikeKnn, MatchesBruteForceAcrossSeveralSeedBlocks) {
  // More seeds than one GEMM tile holds, so the heap carries across tiles.
  const icp::Matrix x = random_matrix(120, 4, 3);
  const icp::Matrix seeds = random_matrix(1100, 4, 4);
  expect_matches_brute_force(x, seeds, {}, 10);
}

TEST(LookalikeKnn, TiesGoToTheLowerSeedIndex) {
  // Small integers: every distance is exact in float32, so ties are exact ties.
  std::mt19937 gen(5);
  std::uniform_int_distribution<int> v(-1, 1);
  icp::Matrix x(200, 3);
  icp::Matrix seeds(30, 3);
  for (float& f : x.storage()) f = static_cast<float>(v(gen));
  for (float& f : seeds.storage()) f = static_cast<float>(v(gen));
  for (std::size_t j = 0; j < 3; ++j) seeds(7, j) = seeds(3, j);  // a duplicated seed
  expect_matches_brute_force(x, seeds, {}, 6);
  // Row equal to seed 3 (and 7): both at distance 0, 3 first.
  icp::Matrix probe(1, 3);
  for (std::size_t j = 0; j < 3; ++j) probe(0, j) = seeds(3, j);
  const icp::KnnResult r = icp::knn_to_seeds(probe.view(), seeds.view(), {}, 2);
  EXPECT_EQ(r.index[0], 3);
  EXPECT_EQ(r.index[1], 7);
  EXPECT_EQ(r.distance[0], 0.0f);
  EXPECT_EQ(r.distance[1], 0.0f);
}

// Tie-heavy data: m seeds and n rows of d small integers (many distances tie exactly), seeds from
// m / 2 on every `dup_step`-th a copy of one m / 2 earlier (in another group or panel), and every
// `self_step`-th row equal to a seed that excludes itself. The kept seeds must be the brute
// force's (lower index first on ties).
void expect_ties_and_self_exclusion(std::size_t m, std::size_t n, std::size_t d,
                                    std::size_t dup_step, std::size_t self_step,
                                    std::size_t self_mul, unsigned seed, int k_without_self) {
  std::mt19937 gen(seed);
  std::uniform_int_distribution<int> v(-2, 2);
  icp::Matrix seeds(m, d);
  for (float& f : seeds.storage()) f = static_cast<float>(v(gen));
  const std::size_t half = m / 2;
  for (std::size_t s = half; s < m; s += dup_step)
    for (std::size_t j = 0; j < d; ++j) seeds(s, j) = seeds(s - half, j);
  icp::Matrix x(n, d);
  for (float& f : x.storage()) f = static_cast<float>(v(gen));
  std::vector<std::int64_t> self(n, -1);
  for (std::size_t i = 0; i < n; i += self_step) {
    const std::size_t s = (i * self_mul) % m;
    for (std::size_t j = 0; j < d; ++j) x(i, j) = seeds(s, j);
    self[i] = static_cast<std::int64_t>(s);
  }
  expect_matches_brute_force(x, seeds, self, 10);
  expect_matches_brute_force(x, seeds, {}, k_without_self);
}

TEST(LookalikeKnn, NearestFirstOrderKeepsTiesAndSelfExclusion) {
  // 32 to 4,096 seeds take the path that visits seed groups nearest first: duplicated seeds sit
  // in different groups.
  expect_ties_and_self_exclusion(300, 400, 4, 7, 5, 3, 11, 1);
}

TEST(LookalikeKnn, NearestFirstOrderAtTheLargestKeptSetAndPartialPanels) {
  // 24 neighbours + the margin fill the 32-lane kept set, into which a scan group's passing
  // seeds go unchecked (one past all 32 lanes falls off); 203 rows and 517 seeds leave a
  // partial group of rows and a partial panel of seeds for the score micro-kernel, and 11
  // features a partial register for the exact distances.
  const icp::Matrix x = random_matrix(203, 11, 31);
  const icp::Matrix seeds = random_matrix(517, 11, 32);
  std::vector<std::int64_t> self(203, -1);
  for (std::size_t i = 0; i < 203; i += 5) self[i] = static_cast<std::int64_t>((i * 13) % 517);
  for (const int k : {24, 10, 1}) expect_matches_brute_force(x, seeds, self, k);
}

TEST(LookalikeKnn, NearTiesWithinFloatErrorAreRankedByTheExactDistances) {
  // 12 seeds on a sphere around each row whose radii differ by about an ulp, so their float32
  // values tie or swap, and 44 far seeds: the exact re-ranking must order the near ones, and
  // none may be skipped as provably too far (finish_row's bound on the float32 error). Rows
  // with large and small norms, so the bound's own scale varies.
  const std::size_t d = 9;
  for (const float offset : {0.0f, 30.0f}) {
    icp::Matrix x(8, d);
    std::mt19937 gen(77);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (float& v : x.storage()) v = offset + normal(gen);
    for (std::size_t i = 1; i < x.rows(); ++i)
      for (std::size_t j = 0; j < d; ++j) x(i, j) = x(0, j);  // every row at the same point
    icp::Matrix seeds(56, d);
    for (std::size_t s = 0; s < 12; ++s) {
      for (std::size_t j = 0; j < d; ++j) seeds(s, j) = x(0, j);
      const float r = 4.0f + static_cast<float>(s % 4) * 4.8e-7f;  // an ulp of 4 apart
      seeds(s, s % d) += (s % 2 == 0 ? r : -r);
    }
    for (std::size_t s = 12; s < seeds.rows(); ++s)
      for (std::size_t j = 0; j < d; ++j) seeds(s, j) = x(0, j) + 10.0f + normal(gen);
    // At k = 1 and 3 the 12 near ties do not fit in the k + 8 candidates kept for re-ranking,
    // and the float32 ranking alone would decide which of them are re-ranked (it returned seed
    // 0 for seed 8 at k = 1): the row must be searched in full.
    for (const int k : {1, 3, 5, 10}) expect_matches_brute_force(x, seeds, {}, k);
  }
}

TEST(LookalikeKnn, MoreNearTiesThanTheMarginOnEveryPath) {
  // `ties` seeds within float32 rounding of each other's distance to every row (some exact
  // duplicates), far more than the k + 8 candidates kept, among seed counts that take each
  // search path: the plain tiles (20), nearest first (300), distances in registers (4,500), and
  // the heap (k = 60 keeps 68). Each must find the exact k nearest, whichever the rounded
  // values would have kept.
  const std::size_t d = 9;
  struct Case {
    std::size_t seeds, ties;
    int k;
  };
  for (const Case c : {Case{20, 14, 2}, Case{300, 40, 1}, Case{300, 40, 20}, Case{4500, 40, 3},
                       Case{300, 90, 60}}) {
    icp::Matrix x(17, d);
    std::mt19937 gen(static_cast<unsigned>(c.seeds + c.ties));
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (std::size_t j = 0; j < d; ++j) x(0, j) = 5.0f + normal(gen);
    for (std::size_t i = 1; i < x.rows(); ++i)
      for (std::size_t j = 0; j < d; ++j) x(i, j) = x(0, j);
    icp::Matrix seeds(c.seeds, d);
    for (std::size_t s = 0; s < c.seeds; ++s) {
      const bool tie = s % (c.seeds / c.ties) == 0 && s / (c.seeds / c.ties) < c.ties;
      for (std::size_t j = 0; j < d; ++j)
        seeds(s, j) = tie ? x(0, j) : x(0, j) + 10.0f + normal(gen);
      if (tie) {
        const float r = 4.0f + static_cast<float>((s / 7) % 4) * 4.8e-7f;
        seeds(s, s % d) += (s % 2 == 0 ? r : -r);
      }
    }
    expect_matches_brute_force(x, seeds, {}, c.k);
  }
}

TEST(LookalikeKnn, ManySeedsUseTheStoredOrder) {
  // Beyond 4,096 seeds the all-seed score block would not stay in cache: tiles in stored order.
  const icp::Matrix x = random_matrix(40, 6, 12);
  const icp::Matrix seeds = random_matrix(5000, 6, 13);
  expect_matches_brute_force(x, seeds, {}, 10);
}

TEST(LookalikeKnn, ManySeedsKeepTiesAndSelfExclusion) {
  // Beyond 4,096 seeds with a sorted kept set, AVX-512 builds compare distances in registers,
  // 8 rows x 32 seeds at a time: 203 rows and 4,133 seeds leave partial groups and panels, and
  // duplicated seeds sit in different panels.
  expect_ties_and_self_exclusion(4133, 203, 5, 11, 4, 19, 17, 3);
  // Real-valued data as well, where no two values tie.
  expect_matches_brute_force(random_matrix(77, 9, 21), random_matrix(4500, 9, 22), {}, 10);
}

TEST(LookalikeKnn, KLargerThanTheSeedCount) {
  const icp::Matrix x = random_matrix(50, 5, 6);
  const icp::Matrix seeds = random_matrix(3, 5, 7);
  expect_matches_brute_force(x, seeds, {}, 10);
  // With self-exclusion a seed row has only 2 other seeds: the third slot stays empty.
  std::vector<std::int64_t> self(50, -1);
  self[4] = 1;
  expect_matches_brute_force(x, seeds, self, 10);
}

TEST(LookalikeKnn, SeedIsNeverItsOwnNearest) {
  icp::Matrix x = random_matrix(100, 4, 8);
  for (std::size_t j = 0; j < 4; ++j) x(11, j) = x(10, j);  // two identical seed rows
  const std::vector<std::size_t> seed_rows = {3, 10, 11, 50, 77};
  icp::Matrix seeds(seed_rows.size(), 4);
  std::vector<std::int64_t> self(100, -1);
  for (std::size_t s = 0; s < seed_rows.size(); ++s) {
    for (std::size_t j = 0; j < 4; ++j) seeds(s, j) = x(seed_rows[s], j);
    self[seed_rows[s]] = static_cast<std::int64_t>(s);
  }
  const icp::KnnResult r = icp::knn_to_seeds(x.view(), seeds.view(), self, 3);
  for (std::size_t s = 0; s < seed_rows.size(); ++s) {
    const std::size_t i = seed_rows[s];
    for (std::size_t c = 0; c < r.k; ++c) EXPECT_NE(r.index[i * r.k + c], self[i]);
    if (i != 10 && i != 11) {
      EXPECT_GT(r.distance[i * r.k], 0.0f) << "seed row " << i;
    }
  }
  // The duplicate pair: each one's nearest is the other, at distance 0.
  EXPECT_EQ(r.index[10 * r.k], 2);
  EXPECT_EQ(r.index[11 * r.k], 1);
  EXPECT_EQ(r.distance[10 * r.k], 0.0f);
  expect_matches_brute_force(x, seeds, self, 3);
}

TEST(LookalikeAuc, HandWorkedExampleWithTies) {
  // Positives 0.35, 0.8, 0.4; negatives 0.1, 0.4. Pairs won: 0.35>0.1, 0.8>0.1, 0.8>0.4,
  // 0.4>0.1, plus 0.4=0.4 counts 1/2: 4.5 of 6.
  const std::vector<float> s = {0.1f, 0.4f, 0.35f, 0.8f, 0.4f};
  const std::vector<std::uint8_t> y = {0, 0, 1, 1, 1};
  EXPECT_DOUBLE_EQ(icp::roc_auc(s, y), 0.75);
  const std::vector<float> flat = {1.0f, 1.0f, 1.0f, 1.0f};
  const std::vector<std::uint8_t> y2 = {1, 0, 0, 1};
  EXPECT_DOUBLE_EQ(icp::roc_auc(flat, y2), 0.5);
  const std::vector<float> perfect = {0.9f, 0.1f, 0.2f, 0.8f};
  EXPECT_DOUBLE_EQ(icp::roc_auc(perfect, y2), 1.0);
  const std::vector<std::uint8_t> one_class = {1, 1, 1, 1};
  EXPECT_THROW(icp::roc_auc(perfect, one_class), icp::Error);
}

TEST(LookalikeAuc, OneSortGivesTheFiguresOfTheSeparateFunctions) {
  // Scores on a coarse grid so that ties are common; the AUC is checked against pair counting.
  std::mt19937 rng(5);
  std::uniform_int_distribution<int> level(0, 40);
  std::vector<float> s(3000);
  std::vector<std::uint8_t> y(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    y[i] = rng() % 7 == 0 ? 1 : 0;
    s[i] = static_cast<float>(level(rng) + (y[i] != 0 ? 6 : 0)) * 0.25f;
  }
  double won = 0.0, pairs = 0.0;
  for (std::size_t a = 0; a < s.size(); ++a) {
    if (y[a] == 0) continue;
    for (std::size_t b = 0; b < s.size(); ++b) {
      if (y[b] != 0) continue;
      won += s[a] > s[b] ? 1.0 : s[a] == s[b] ? 0.5 : 0.0;
      pairs += 1.0;
    }
  }
  const icp::BacktestRow r = icp::measure_ranking(s, y);
  EXPECT_NEAR(r.auc, won / pairs, 1e-12);
  EXPECT_TRUE(icp_test::same_bits(r.auc, icp::roc_auc(s, y)));
  EXPECT_TRUE(icp_test::same_bits(r.recall_at_1, icp::recall_at(s, y, 0.01)));
  EXPECT_TRUE(icp_test::same_bits(r.recall_at_5, icp::recall_at(s, y, 0.05)));
  EXPECT_TRUE(icp_test::same_bits(r.recall_at_10, icp::recall_at(s, y, 0.10)));
  EXPECT_TRUE(icp_test::same_bits(r.recall_at_25, icp::recall_at(s, y, 0.25)));
  EXPECT_DOUBLE_EQ(r.lift_at_10, r.recall_at_10 / 0.10);
  EXPECT_TRUE(icp_test::same_bits(r.gain, icp::gain_curve(s, y)));
  EXPECT_EQ(r.population, 3000);
  EXPECT_EQ(r.positives, std::count(y.begin(), y.end(), std::uint8_t{1}));
}

TEST(LookalikeAuc, RecallAtTopFraction) {
  // 10 rows, top 20% = rows with scores 10 and 9 (rows 0 and 1); positives at rows 1, 5, 9.
  const std::vector<float> s = {10, 9, 8, 7, 6, 5, 4, 3, 2, 1};
  const std::vector<std::uint8_t> y = {0, 1, 0, 0, 0, 1, 0, 0, 0, 1};
  EXPECT_DOUBLE_EQ(icp::recall_at(s, y, 0.2), 1.0 / 3.0);
  EXPECT_DOUBLE_EQ(icp::recall_at(s, y, 0.6), 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(icp::recall_at(s, y, 1.0), 1.0);
  // Ties go to the lower row: of the tied rows 0 and 1 only row 0 makes the top 1.
  const std::vector<float> tied = {5, 5, 1};
  const std::vector<std::uint8_t> y3 = {0, 1, 0};
  EXPECT_DOUBLE_EQ(icp::recall_at(tied, y3, 0.3), 0.0);
  const std::vector<std::int64_t> rank = icp::rank_descending(tied);
  EXPECT_EQ(rank, (std::vector<std::int64_t>{1, 2, 3}));
}

TEST(LookalikeSegment, RatesByHand) {
  // Segment 0: rows 0-3, seeds at 0 and 1. Segment 1: rows 4-9, negatives at 4 and 5.
  // N = 10, S = 2, G = 2, p = q = 0.2, a = 2.
  const std::vector<std::int32_t> seg = {0, 0, 0, 0, 1, 1, 1, 1, 1, 1};
  const std::vector<std::uint8_t> seed = {1, 1, 0, 0, 0, 0, 0, 0, 0, 0};
  const std::vector<std::uint8_t> neg = {0, 0, 0, 0, 1, 1, 0, 0, 0, 0};
  // Without negatives: (2 + 0.4) / 6 = 0.4 and (0 + 0.4) / 8 = 0.05.
  const auto plain = icp::segment_seed_rates(seg, 2, seed, {}, 2.0);
  ASSERT_EQ(plain.size(), 2u);
  EXPECT_NEAR(plain[0], 0.4, 1e-15);
  EXPECT_NEAR(plain[1], 0.05, 1e-15);
  // Negative rates: 0.4 / 6 and 2.4 / 8 = 0.3; S/G = 1.
  // rate0 = 0.4 - (0.4/6 - 0.2) = 0.5333..., rate1 = 0.05 - (0.3 - 0.2) = -0.05.
  const auto with_neg = icp::segment_seed_rates(seg, 2, seed, neg, 2.0);
  EXPECT_NEAR(with_neg[0], 0.4 - (0.4 / 6.0 - 0.2), 1e-15);
  EXPECT_NEAR(with_neg[1], -0.05, 1e-15);
  // A row flagged seed and negative counts as a seed only: G drops to 1 (q = 0.1, S/G = 2).
  std::vector<std::uint8_t> neg2 = neg;
  neg2[0] = 1;
  neg2[5] = 0;
  // Segment 1 now has 1 negative: neg_rate1 = (1 + 0.2) / 8 = 0.15, rate1 = 0.05 - 2 * 0.05.
  const auto both = icp::segment_seed_rates(seg, 2, seed, neg2, 2.0);
  EXPECT_NEAR(both[1], 0.05 - 2.0 * (0.15 - 0.1), 1e-15);
  // An empty segment gets the base rate.
  const auto empty = icp::segment_seed_rates(seg, 3, seed, {}, 2.0);
  EXPECT_NEAR(empty[2], 0.2, 1e-15);
  const std::vector<std::int32_t> bad = {0, 0, 0, 0, 1, 1, 1, 1, 1, 2};
  EXPECT_THROW(icp::segment_seed_rates(bad, 2, seed, {}, 2.0), icp::Error);
}

TEST(LookalikeModel, GradientOfTheDocumentedObjectiveVanishes) {
  // Independent check of the fit: with the documented weights (classes at n/2 each, negatives
  // twice an unlabeled row) the gradient of the penalized loss must be ~0 at the returned point.
  const std::size_t n = 400;
  const std::size_t d = 5;
  const icp::Matrix x = random_matrix(n, d, 9);
  std::vector<std::uint8_t> seed(n, 0), neg(n, 0);
  for (std::size_t i = 0; i < n; ++i) {
    if (x(i, 0) + 0.5 * x(i, 1) > 0.8) {
      seed[i] = 1;
    } else if (i % 7 == 0) {
      neg[i] = 1;
    }
  }
  const double l2 = 1.0;
  const icp::LogisticModel m = icp::fit_pu_logistic(x.view(), seed, neg, l2, 1, 1);
  double seeds = 0.0, other = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    if (seed[i]) {
      seeds += 1.0;
    } else {
      other += neg[i] ? 2.0 : 1.0;
    }
  }
  std::vector<double> grad(d + 1, 0.0);
  for (std::size_t i = 0; i < n; ++i) {
    double z = m.intercept;
    for (std::size_t j = 0; j < d; ++j) z += m.coef[j] * x(i, j);
    const double p = 1.0 / (1.0 + std::exp(-z));
    const double w = seed[i] ? (n / 2.0) / seeds : (neg[i] ? 2.0 : 1.0) * (n / 2.0) / other;
    const double r = w * (p - (seed[i] ? 1.0 : 0.0));
    grad[0] += r;
    for (std::size_t j = 0; j < d; ++j) grad[j + 1] += r * x(i, j);
  }
  for (std::size_t j = 0; j < d; ++j) grad[j + 1] += l2 * m.coef[j];
  for (std::size_t j = 0; j <= d; ++j) EXPECT_NEAR(grad[j], 0.0, 1e-6) << "component " << j;
  // The planted direction dominates.
  EXPECT_GT(m.coef[0], 0.0);
  EXPECT_GT(m.coef[0], std::abs(m.coef[2]));
}

TEST(LookalikeModel, AWarmStartReachesTheSameOptimumInFewerSteps) {
  const std::size_t n = 3000;
  const std::size_t d = 6;
  const icp::Matrix x = random_matrix(n, d, 12);
  std::vector<std::uint8_t> seed(n, 0), fewer(n, 0);
  for (std::size_t i = 0; i < n; ++i) {
    seed[i] = x(i, 0) - 0.7 * x(i, 3) > 1.0 ? 1 : 0;
    fewer[i] = seed[i] != 0 && i % 5 != 0 ? 1 : 0;  // as the backtest: a fifth held out
  }
  const icp::LogisticModel cold = icp::fit_pu_logistic(x.view(), seed, {}, 1.0, 1, 1);
  const icp::LogisticModel near = icp::fit_pu_logistic(x.view(), fewer, {}, 1.0, 1, 1);
  const icp::LogisticModel warm = icp::fit_pu_logistic(x.view(), seed, {}, 1.0, 1, 1, &near);
  for (std::size_t j = 0; j < d; ++j)
    EXPECT_NEAR(warm.coef[j], cold.coef[j], 1e-8 * (1.0 + std::abs(cold.coef[j]))) << j;
  EXPECT_NEAR(warm.intercept, cold.intercept, 1e-8 * (1.0 + std::abs(cold.intercept)));
  EXPECT_LT(warm.iterations, cold.iterations);
  icp::LogisticModel wrong = near;
  wrong.coef.pop_back();
  EXPECT_THROW(icp::fit_pu_logistic(x.view(), seed, {}, 1.0, 1, 1, &wrong), icp::Error);
}

TEST(LookalikeModel, RowsReadInBlocksGiveTheSameBits) {
  // fit_pu_logistic over a RowBlocks scan (a market read from disk) against the matrix itself:
  // the chunk sums fold in the same order, so every bit of the model must agree.
  const std::size_t n = 3 * icp::kReduceChunkRows + 777;
  const std::size_t d = 5;
  const icp::Matrix x = random_matrix(n, d, 31);
  std::vector<std::uint8_t> seed(n, 0), neg(n, 0);
  for (std::size_t i = 0; i < n; ++i) {
    seed[i] = x(i, 1) - 0.4 * x(i, 4) > 0.9 ? 1 : 0;
    neg[i] = seed[i] == 0 && i % 9 == 0 ? 1 : 0;
  }
  int scans = 0;
  const icp::RowBlocks blocks = icp_test::row_blocks_of(x, icp::kReduceChunkRows, &scans);
  for (const int bags : {1, 3}) {
    const icp::LogisticModel whole = icp::fit_pu_logistic(x.view(), seed, neg, 1.0, bags, 7);
    scans = 0;
    const icp::LogisticModel streamed = icp::fit_pu_logistic(blocks, seed, neg, 1.0, bags, 7);
    EXPECT_TRUE(icp_test::same_bits(whole.coef, streamed.coef)) << bags;
    EXPECT_TRUE(icp_test::same_bits(whole.intercept, streamed.intercept)) << bags;
    EXPECT_EQ(whole.iterations, streamed.iterations);
    EXPECT_GE(scans, whole.iterations);  // a scan per Newton step at least
    // A warm start too (the final fit starts from the backtest's model).
    const icp::LogisticModel warm = icp::fit_pu_logistic(x.view(), seed, {}, 1.0, bags, 7, &whole);
    const icp::LogisticModel warm_streamed =
        icp::fit_pu_logistic(blocks, seed, {}, 1.0, bags, 7, &whole);
    EXPECT_TRUE(icp_test::same_bits(warm.coef, warm_streamed.coef)) << bags;
  }
}

struct Planted {
  icp::Matrix x;
  std::vector<std::int32_t> segment;
  std::vector<std::uint8_t> seed;
  std::vector<std::uint8_t> negative;
};

// Blob A (every 10th row, around +2 on every axis) holds all seeds (every 20th row); blob B
// (around -0.5) holds the negatives. Segments are the blobs, as k-means would find them.
Planted planted(std::size_t n = 2000, std::size_t d = 8) {
  Planted p;
  p.x = random_matrix(n, d, 11);
  p.segment.assign(n, 1);
  p.seed.assign(n, 0);
  p.negative.assign(n, 0);
  for (std::size_t i = 0; i < n; ++i) {
    const bool a = i % 10 == 3;  // interleaved so blob A is not a row prefix
    for (std::size_t j = 0; j < d; ++j) p.x(i, j) += a ? 2.0f : -0.5f;
    if (a) {
      p.segment[i] = 0;
      if (i % 20 == 3) p.seed[i] = 1;
    } else if (i % 13 == 0) {
      p.negative[i] = 1;
    }
  }
  return p;
}

// score_lookalike at 1 and then 2 threads (the thread count restored to the default after).
std::pair<icp::LookalikeResult, icp::LookalikeResult> at_one_and_two_threads(
    const Planted& p, const icp::LookalikeOptions& o) {
  icp::set_threads(1);
  icp::LookalikeResult one = icp::score_lookalike(p.x.view(), p.segment, 2, p.seed, p.negative, o);
  icp::set_threads(2);
  icp::LookalikeResult two = icp::score_lookalike(p.x.view(), p.segment, 2, p.seed, p.negative, o);
  icp::set_threads(0);
  return {std::move(one), std::move(two)};
}

TEST(LookalikePlanted, EveryMethodFindsHeldOutSeeds) {
  const Planted p = planted();
  icp::LookalikeOptions o;
  const icp::LookalikeResult r =
      icp::score_lookalike(p.x.view(), p.segment, 2, p.seed, p.negative, o);
  ASSERT_EQ(r.backtest.size(), 4u);
  const char* names[] = {"knn", "segment", "model", "ensemble"};
  double weight_sum = 0.0;
  for (std::size_t m = 0; m < 4; ++m) {
    EXPECT_EQ(r.backtest[m].method, names[m]);
    EXPECT_GT(r.backtest[m].auc, 0.9) << names[m];
    // n = 2000: blob A is 200 rows with 100 seeds. Held-out seeds are 20 of 1920 rows; blob A's 100
    // non-seeds compete with them for the top 10% (192 rows), which still holds all of blob A.
    EXPECT_GT(r.backtest[m].recall_at_10, 0.9) << names[m];
    EXPECT_DOUBLE_EQ(r.backtest[m].lift_at_10, r.backtest[m].recall_at_10 / 0.1);
    EXPECT_LE(r.backtest[m].recall_at_1, r.backtest[m].recall_at_5);
    EXPECT_LE(r.backtest[m].recall_at_5, r.backtest[m].recall_at_10);
    EXPECT_LE(r.backtest[m].recall_at_10, r.backtest[m].recall_at_25);
    if (m < 3) weight_sum += r.backtest[m].weight;
    // Every method better than chance keeps at least one grid step of the ensemble.
    if (m < 3) {
      EXPECT_GE(r.backtest[m].weight, 0.1 - 1e-12) << names[m];
    }
  }
  EXPECT_NEAR(weight_sum, 1.0, 1e-12);
  // Segment rates: blob A has 100 seeds in 200 rows, far above the base rate of 0.05.
  ASSERT_EQ(r.segment_rate.size(), 2u);
  EXPECT_GT(r.segment_rate[0], 0.3);
  EXPECT_LT(r.segment_rate[1], 0.05);
  // Final scores: seeds sit in the top quarter.
  for (std::size_t i = 0; i < p.seed.size(); ++i) {
    if (p.seed[i]) {
      EXPECT_GT(r.score[i], 75.0f) << "seed row " << i;
    }
  }
}

TEST(LookalikePlanted, RowsReadInBlocksGiveTheSameResult) {
  // score_lookalike over a RowBlocks scan against the matrix: every per-row vector, the model, the
  // backtest and the reference seeds, with the backtest on the whole market and on a sample,
  // and with a capped reference seed set.
  const Planted p = planted(5 * icp::kReduceChunkRows + 123, 6);
  int scans = 0;
  const icp::RowBlocks blocks = icp_test::row_blocks_of(p.x, 2 * icp::kReduceChunkRows, &scans);
  for (const std::int64_t sample : {std::int64_t{0}, std::int64_t{9000}}) {
    for (const std::int64_t cap : {std::int64_t{0}, std::int64_t{300}}) {
      icp::LookalikeOptions o;
      o.backtest_max_rows = sample;
      o.knn_max_seeds = cap;
      const std::string what = "sample " + std::to_string(sample) + ", cap " + std::to_string(cap);
      const icp::LookalikeResult a =
          icp::score_lookalike(p.x.view(), p.segment, 2, p.seed, p.negative, o);
      scans = 0;
      const icp::LookalikeResult b =
          icp::score_lookalike(blocks, p.segment, 2, p.seed, p.negative, o);
      EXPECT_GT(scans, 4) << what;
      using icp_test::same_bits;
      EXPECT_TRUE(same_bits(a.score, b.score)) << what;
      EXPECT_TRUE(same_bits(a.percentile, b.percentile)) << what;
      EXPECT_EQ(a.rank, b.rank) << what;
      EXPECT_EQ(a.tier, b.tier) << what;
      EXPECT_TRUE(same_bits(a.combined, b.combined)) << what;
      EXPECT_EQ(a.nearest_seed, b.nearest_seed) << what;
      EXPECT_TRUE(same_bits(a.nearest_seed_distance, b.nearest_seed_distance)) << what;
      EXPECT_TRUE(same_bits(a.knn_similarity, b.knn_similarity)) << what;
      EXPECT_TRUE(same_bits(a.segment_score, b.segment_score)) << what;
      EXPECT_TRUE(same_bits(a.model_score, b.model_score)) << what;
      EXPECT_EQ(a.reasons, b.reasons) << what;
      EXPECT_TRUE(same_bits(a.model_coef, b.model_coef)) << what;
      EXPECT_TRUE(same_bits(a.model_intercept, b.model_intercept)) << what;
      EXPECT_EQ(a.seed_rows, b.seed_rows) << what;
      EXPECT_TRUE(same_bits(a.seeds, b.seeds)) << what;
      ASSERT_EQ(a.backtest.size(), b.backtest.size()) << what;
      for (std::size_t m = 0; m < a.backtest.size(); ++m) {
        EXPECT_TRUE(same_bits(a.backtest[m].auc, b.backtest[m].auc)) << what;
        EXPECT_TRUE(same_bits(a.backtest[m].weight, b.backtest[m].weight)) << what;
        EXPECT_EQ(a.backtest[m].population, b.backtest[m].population) << what;
        EXPECT_TRUE(same_bits(a.backtest[m].gain, b.backtest[m].gain)) << what;
      }
    }
  }
  icp::LookalikeOptions hooked;
  hooked.knn = [](icp::MatrixView, icp::MatrixView, std::span<const std::int64_t>, int) {
    return icp::KnnResult{};
  };
  EXPECT_THROW((void)icp::score_lookalike(blocks, p.segment, 2, p.seed, p.negative, hooked),
               icp::Error);
}

TEST(LookalikePlanted, SpilledPerRowResultsEqualTheHeldOnes) {
  // score_lookalike over blocks with a scratch file for its per-row results: each column equals
  // the in-memory result's vector bit for bit, for every method, with the backtest on the whole
  // market and on a sample; the result itself holds no per-row vector.
  const Planted p = planted(5 * icp::kReduceChunkRows + 123, 6);
  int scans = 0;
  const icp::RowBlocks blocks = icp_test::row_blocks_of(p.x, 2 * icp::kReduceChunkRows, &scans);
  const std::size_t n = p.x.rows();
  namespace col = icp::lookalike_columns;
  using icp_test::same_bits;
  for (const auto method : {icp::LookalikeMethod::ensemble, icp::LookalikeMethod::knn,
                            icp::LookalikeMethod::segment, icp::LookalikeMethod::model}) {
    for (const std::int64_t sample : {std::int64_t{0}, std::int64_t{9000}}) {
      if (method != icp::LookalikeMethod::ensemble && sample != 0) continue;
      icp::LookalikeOptions o;
      o.method = method;
      o.backtest_max_rows = sample;
      o.knn_max_seeds = 300;
      const std::string what =
          std::string(icp::to_string(method)) + ", sample " + std::to_string(sample);
      const icp::LookalikeResult a =
          icp::score_lookalike(p.x.view(), p.segment, 2, p.seed, p.negative, o);
      icp::ScratchColumns spill("", n, "test");
      const icp::LookalikeResult b =
          icp::score_lookalike(blocks, p.segment, 2, p.seed, p.negative, o, &spill);
      EXPECT_TRUE(b.score.empty() && b.rank.empty() && b.combined.empty() && b.reasons.empty())
          << what;
      auto column = [&](const char* name, auto held) {
        decltype(held) got;
        spill.read(name, 0, n, got);
        return got;
      };
      EXPECT_TRUE(same_bits(a.score, column(col::score, a.score))) << what;
      EXPECT_TRUE(same_bits(a.percentile, column(col::percentile, a.percentile))) << what;
      EXPECT_EQ(a.rank, column(col::rank, a.rank)) << what;
      EXPECT_EQ(a.tier, column(col::tier, a.tier)) << what;
      EXPECT_TRUE(same_bits(a.combined, column(col::combined, a.combined))) << what;
      EXPECT_EQ(a.nearest_seed, column(col::nearest_seed, a.nearest_seed)) << what;
      EXPECT_TRUE(same_bits(a.nearest_seed_distance,
                            column(col::nearest_seed_distance, a.nearest_seed_distance)))
          << what;
      EXPECT_TRUE(same_bits(a.knn_similarity, column(col::knn_similarity, a.knn_similarity)))
          << what;
      EXPECT_TRUE(same_bits(a.segment_score, column(col::segment_score, a.segment_score))) << what;
      EXPECT_TRUE(same_bits(a.model_score, column(col::model_score, a.model_score))) << what;
      std::vector<std::int32_t> reasons;
      spill.read(col::reasons, 0, n, reasons, 3);
      std::vector<std::int32_t> held_reasons;
      for (const auto& r : a.reasons) held_reasons.insert(held_reasons.end(), r.begin(), r.end());
      EXPECT_EQ(reasons, held_reasons) << what;
      EXPECT_TRUE(same_bits(a.model_coef, b.model_coef)) << what;
      EXPECT_TRUE(same_bits(a.model_intercept, b.model_intercept)) << what;
      EXPECT_TRUE(same_bits(a.segment_rate, b.segment_rate)) << what;
      EXPECT_EQ(a.seed_rows, b.seed_rows) << what;
      EXPECT_TRUE(same_bits(a.seeds, b.seeds)) << what;
      ASSERT_EQ(a.backtest.size(), b.backtest.size()) << what;
      for (std::size_t m = 0; m < a.backtest.size(); ++m)
        EXPECT_TRUE(same_bits(a.backtest[m].auc, b.backtest[m].auc)) << what;
    }
  }
  icp::ScratchColumns short_spill("", n - 1, "test");
  EXPECT_THROW(
      (void)icp::score_lookalike(blocks, p.segment, 2, p.seed, p.negative, {}, &short_spill),
      icp::Error);
}

TEST(LookalikePlanted, AMethodAtChanceGetsNoEnsembleWeight) {
  // One segment for every row: the segment score is the same for all, so its AUC is 0.5 and no
  // weighting's ranking depends on its share; the weights stay at the AUC-gain prior's 0 for it.
  Planted p = planted();
  std::fill(p.segment.begin(), p.segment.end(), 0);
  icp::LookalikeOptions o;
  const icp::LookalikeResult r =
      icp::score_lookalike(p.x.view(), p.segment, 1, p.seed, p.negative, o);
  ASSERT_EQ(r.backtest.size(), 4u);
  EXPECT_DOUBLE_EQ(r.backtest[1].auc, 0.5);
  EXPECT_EQ(r.method_weight[1], 0.0);
  EXPECT_NEAR(r.method_weight[0] + r.method_weight[2], 1.0, 1e-12);
  // The two informative methods separate the blob; the ensemble keeps that.
  EXPECT_GT(r.backtest[3].auc, 0.9);
}

TEST(LookalikePlanted, AWeakButInformativeMethodKeepsAShare) {
  // Segments barely related to the seeds (blob A rows in segment 0 a little more often than the
  // rest): the segment method is better than chance but adds nothing the others lack, so the
  // best weightings give it nothing. It still keeps one grid step.
  Planted p = planted();
  for (std::size_t i = 0; i < p.segment.size(); ++i) {
    const bool a = i % 10 == 3;
    const std::uint64_t h = (static_cast<std::uint64_t>(i) * 2654435761u >> 16) % 100;
    p.segment[i] = h < (a ? 60u : 50u) ? 0 : 1;
  }
  icp::LookalikeOptions o;
  const icp::LookalikeResult r =
      icp::score_lookalike(p.x.view(), p.segment, 2, p.seed, p.negative, o);
  ASSERT_EQ(r.backtest.size(), 4u);
  EXPECT_GT(r.backtest[1].auc, 0.5);
  EXPECT_LT(r.backtest[1].auc, 0.7);
  EXPECT_GE(r.method_weight[1], 0.1 - 1e-12);
  EXPECT_NEAR(r.method_weight[0] + r.method_weight[1] + r.method_weight[2], 1.0, 1e-12);
}

TEST(LookalikeScore, RanksTiersAndPercentiles) {
  const Planted p = planted();
  icp::LookalikeOptions o;
  const icp::LookalikeResult r =
      icp::score_lookalike(p.x.view(), p.segment, 2, p.seed, p.negative, o);
  const std::size_t n = p.seed.size();
  ASSERT_EQ(r.rank.size(), n);
  EXPECT_EQ(r.rank, icp::rank_descending(r.combined));
  // The segment method alone: two values for 2000 rows, ties everywhere.
  o.method = icp::LookalikeMethod::segment;
  const icp::LookalikeResult tied =
      icp::score_lookalike(p.x.view(), p.segment, 2, p.seed, p.negative, o);
  EXPECT_EQ(tied.rank, icp::rank_descending(tied.combined));
  std::vector<std::int64_t> sorted = r.rank;
  std::sort(sorted.begin(), sorted.end());
  for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(sorted[i], static_cast<std::int64_t>(i + 1));
  // Rank order agrees with the combined value, ties to the lower row.
  std::vector<std::size_t> by_rank(n);
  for (std::size_t i = 0; i < n; ++i) by_rank[static_cast<std::size_t>(r.rank[i] - 1)] = i;
  for (std::size_t t = 1; t < n; ++t) {
    const std::size_t a = by_rank[t - 1], b = by_rank[t];
    ASSERT_TRUE(r.combined[a] > r.combined[b] || (r.combined[a] == r.combined[b] && a < b));
    ASSERT_GE(r.score[a], r.score[b]);
    ASSERT_GT(r.percentile[a], r.percentile[b]);
  }
  EXPECT_FLOAT_EQ(r.percentile[by_rank[0]], 100.0f);
  EXPECT_FLOAT_EQ(r.percentile[by_rank[n - 1]], 0.0f);
  // n = 2000: tiers A/B/C/D end at ranks 20, 100, 200, 500.
  std::array<int, 5> count{};
  for (std::size_t i = 0; i < n; ++i) {
    const int t = r.tier[i] - 'A';
    ASSERT_GE(t, 0);
    ASSERT_LE(t, 4);
    ++count[static_cast<std::size_t>(t)];
    const std::int64_t rk = r.rank[i];
    const int expected = rk <= 20 ? 0 : rk <= 100 ? 1 : rk <= 200 ? 2 : rk <= 500 ? 3 : 4;
    ASSERT_EQ(t, expected) << "rank " << rk;
  }
  EXPECT_EQ(count, (std::array<int, 5>{20, 80, 100, 300, 1500}));
  for (std::size_t i = 0; i < n; ++i) {
    ASSERT_GE(r.score[i], 0.0f);
    ASSERT_LE(r.score[i], 100.0f);
    ASSERT_NE(r.nearest_seed[i], static_cast<std::int64_t>(i));
    ASSERT_EQ(p.seed[static_cast<std::size_t>(r.nearest_seed[i])], 1);
  }
}

TEST(LookalikeScore, ReasonsAreTheLargestPositiveContributions) {
  const Planted p = planted(400, 6);
  icp::LookalikeOptions o;
  o.method = icp::LookalikeMethod::model;
  const icp::LookalikeResult r = icp::score_lookalike(p.x.view(), p.segment, 2, p.seed, {}, o);
  for (std::size_t i = 0; i < p.seed.size(); ++i) {
    std::vector<std::pair<double, int>> c;
    for (std::size_t j = 0; j < 6; ++j) {
      const double v = r.model_coef[j] * static_cast<double>(p.x(i, j));
      if (v > 0.0) c.emplace_back(-v, static_cast<int>(j));
    }
    std::sort(c.begin(), c.end());
    for (std::size_t s = 0; s < 3; ++s) {
      ASSERT_EQ(r.reasons[i][s], s < c.size() ? c[s].second : -1) << "row " << i;
    }
  }
}

// The fitted rows re-scored as "new" rows (each seed told which seed it is) must come back with
// the same bits: that is what makes `icp score` reproduce a run.
void expect_rescoring_reproduces(icp::LookalikeMethod method, std::int64_t knn_max_seeds = 1024) {
  const Planted p = planted(400, 6);
  icp::LookalikeOptions o;
  o.method = method;
  o.knn_max_seeds = knn_max_seeds;
  const icp::LookalikeResult r =
      icp::score_lookalike(p.x.view(), p.segment, 2, p.seed, p.negative, o);
  std::vector<std::int64_t> self(p.seed.size(), -1);
  for (std::size_t s = 0; s < r.seed_rows.size(); ++s)
    self[static_cast<std::size_t>(r.seed_rows[s])] = static_cast<std::int64_t>(s);
  const icp::LookalikeNewScores fresh =
      icp::score_new_accounts(p.x.view(), p.segment, r.seeds.view(), r, o, self);
  // Tier cut-off values, by hand from the fitted ranks (n = 400: ranks 4, 20, 40, 100).
  std::vector<float> cut;
  for (const std::int64_t end : {4, 20, 40, 100})
    for (std::size_t i = 0; i < p.seed.size(); ++i)
      if (r.rank[i] == end) cut.push_back(r.combined[i]);
  ASSERT_EQ(cut.size(), 4u);
  for (std::size_t i = 0; i < p.seed.size(); ++i) {
    ASSERT_EQ(fresh.model_score[i], r.model_score[i]) << "row " << i;
    ASSERT_EQ(fresh.segment_score[i], r.segment_score[i]) << "row " << i;
    ASSERT_EQ(fresh.knn_similarity[i], r.knn_similarity[i]) << "row " << i;
    ASSERT_EQ(fresh.nearest_seed[i], r.nearest_seed[i]) << "row " << i;
    ASSERT_EQ(fresh.nearest_seed_distance[i], r.nearest_seed_distance[i]) << "row " << i;
    ASSERT_EQ(fresh.reasons[i], r.reasons[i]) << "row " << i;
    ASSERT_EQ(fresh.combined[i], r.combined[i]) << "row " << i;
    ASSERT_EQ(fresh.score[i], r.score[i]) << "row " << i;
    if (std::find(cut.begin(), cut.end(), r.combined[i]) == cut.end()) {
      ASSERT_EQ(fresh.tier[i], r.tier[i]) << "row " << i;
    } else {
      ASSERT_LE(fresh.tier[i], r.tier[i]) << "row " << i;  // a tie at a cut-off: the better tier
    }
  }
}

TEST(LookalikeScore, RescoringTheFittedRowsGivesTheSameBitsEnsemble) {
  expect_rescoring_reproduces(icp::LookalikeMethod::ensemble);
}

TEST(LookalikeScore, RescoringTheFittedRowsGivesTheSameBitsKnn) {
  expect_rescoring_reproduces(icp::LookalikeMethod::knn);
}

TEST(LookalikeScore, RescoringReproducesWithASampleOfReferenceSeeds) {
  expect_rescoring_reproduces(icp::LookalikeMethod::ensemble, 7);
}

TEST(LookalikeKnnCap, ComparesWithASeededSampleOfTheSeeds) {
  const Planted p = planted();  // 100 seeds
  icp::LookalikeOptions o;
  o.knn_max_seeds = 30;
  const icp::LookalikeResult r =
      icp::score_lookalike(p.x.view(), p.segment, 2, p.seed, p.negative, o);
  ASSERT_EQ(r.seed_rows.size(), 30u);
  EXPECT_TRUE(std::is_sorted(r.seed_rows.begin(), r.seed_rows.end()));
  for (const std::int64_t row : r.seed_rows) EXPECT_EQ(p.seed[static_cast<std::size_t>(row)], 1);
  // knn against the sample, by brute force: the mean exact squared distance to the 10 nearest
  // reference seeds other than the row itself.
  for (std::size_t i = 0; i < p.seed.size(); i += 37) {
    std::vector<std::pair<double, std::int64_t>> d;
    for (const std::int64_t row : r.seed_rows) {
      if (static_cast<std::size_t>(row) == i) continue;
      double sum = 0.0;
      for (std::size_t j = 0; j < p.x.cols(); ++j) {
        const double t = static_cast<double>(p.x(i, j)) -
                         static_cast<double>(p.x(static_cast<std::size_t>(row), j));
        sum += t * t;
      }
      d.emplace_back(sum, row);
    }
    std::sort(d.begin(), d.end());
    double mean = 0.0;
    for (std::size_t t = 0; t < 10; ++t) mean += d[t].first;
    mean /= 10.0;
    EXPECT_EQ(r.nearest_seed[i], d[0].second) << "row " << i;
    EXPECT_NEAR(r.knn_similarity[i], 1.0 / (1.0 + mean), 1e-5) << "row " << i;
  }
  // The same seed picks the same sample; another seed another one; a cap above the seed count
  // keeps every seed.
  const icp::LookalikeResult again =
      icp::score_lookalike(p.x.view(), p.segment, 2, p.seed, p.negative, o);
  EXPECT_EQ(again.seed_rows, r.seed_rows);
  icp::LookalikeOptions other = o;
  other.seed = 43;
  EXPECT_NE(icp::score_lookalike(p.x.view(), p.segment, 2, p.seed, p.negative, other).seed_rows,
            r.seed_rows);
  icp::LookalikeOptions all = o;
  all.knn_max_seeds = 100;
  EXPECT_EQ(
      icp::score_lookalike(p.x.view(), p.segment, 2, p.seed, p.negative, all).seed_rows.size(),
      100u);
  // The sample still finds held-out seeds.
  EXPECT_GT(r.backtest[0].auc, 0.9);
}

TEST(LookalikeScore, NewRowsArePlacedByMidrankAmongTheFittedPopulation) {
  const Planted p = planted(400, 6);
  icp::LookalikeOptions o;
  o.method = icp::LookalikeMethod::model;
  const icp::LookalikeResult r =
      icp::score_lookalike(p.x.view(), p.segment, 2, p.seed, p.negative, o);
  const icp::Matrix fresh_x = random_matrix(50, 6, 99);
  const std::vector<std::int32_t> seg(50, 1);
  const icp::LookalikeNewScores fresh =
      icp::score_new_accounts(fresh_x.view(), seg, r.seeds.view(), r, o);
  const double m = static_cast<double>(r.combined.size());
  for (std::size_t i = 0; i < 50; ++i) {
    // Plain count: a value between fitted values lands halfway between their midranks.
    double below = 0.0, equal = 0.0;
    for (const float v : r.combined) {
      below += v < fresh.combined[i] ? 1.0 : 0.0;
      equal += v == fresh.combined[i] ? 1.0 : 0.0;
    }
    const double expected = std::clamp(
        below + equal == 0.0 ? 0.0 : (below + (equal - 1.0) / 2.0) / (m - 1.0), 0.0, 1.0);
    ASSERT_NEAR(fresh.score[i], 100.0 * expected, 1e-4) << "row " << i;
    // model: combined is the raw logit of the documented model
    double z = r.model_intercept;
    for (std::size_t j = 0; j < 6; ++j) z += r.model_coef[j] * static_cast<double>(fresh_x(i, j));
    ASSERT_NEAR(fresh.combined[i], z, 1e-5 * (1.0 + std::fabs(z)));
    // No self-exclusion for a new row: the nearest seed is the brute-force nearest.
    const auto ref = brute_force(fresh_x, i, r.seeds, -1);
    ASSERT_EQ(fresh.nearest_seed[i], r.seed_rows[static_cast<std::size_t>(ref[0].second)]);
  }
}

TEST(LookalikeThreads, OneAndTwoThreadsGiveIdenticalBits) {
  // Over two reduction chunks, several knn row blocks and two PU bags.
  const Planted p = planted(9000, 6);
  icp::LookalikeOptions o;
  o.bags = 2;
  const auto [a, b] = at_one_and_two_threads(p, o);
  auto same = [](const auto& u, const auto& v) {
    return u.size() == v.size() && std::memcmp(u.data(), v.data(), u.size() * sizeof(u[0])) == 0;
  };
  EXPECT_TRUE(same(a.score, b.score));
  EXPECT_TRUE(same(a.combined, b.combined));
  EXPECT_TRUE(same(a.rank, b.rank));
  EXPECT_TRUE(same(a.tier, b.tier));
  EXPECT_TRUE(same(a.knn_similarity, b.knn_similarity));
  EXPECT_TRUE(same(a.model_score, b.model_score));
  EXPECT_TRUE(same(a.model_coef, b.model_coef));
  EXPECT_TRUE(same(a.nearest_seed, b.nearest_seed));
  EXPECT_TRUE(same(a.nearest_seed_distance, b.nearest_seed_distance));
  EXPECT_EQ(std::memcmp(&a.model_intercept, &b.model_intercept, sizeof(double)), 0);
  ASSERT_EQ(a.backtest.size(), b.backtest.size());
  for (std::size_t m = 0; m < a.backtest.size(); ++m) {
    EXPECT_EQ(std::memcmp(&a.backtest[m].auc, &b.backtest[m].auc, sizeof(double)), 0);
    EXPECT_EQ(std::memcmp(&a.backtest[m].weight, &b.backtest[m].weight, sizeof(double)), 0);
  }
}

TEST(LookalikeBacktest, ASampleOfTheMarketEstimatesTheFullBacktest) {
  // 20,000 rows, 1,000 seeds, 200 held out; 800 training seeds leave 19,200 rows measured.
  const Planted p = planted(20000, 6);
  icp::LookalikeOptions o;
  o.method = icp::LookalikeMethod::model;  // final scores then do not depend on the weights
  o.backtest_max_rows = 0;
  const icp::LookalikeResult full =
      icp::score_lookalike(p.x.view(), p.segment, 2, p.seed, p.negative, o);
  ASSERT_EQ(full.backtest.size(), 4u);
  for (std::size_t m = 0; m < 3; ++m) {
    EXPECT_EQ(full.backtest[m].population, 19200);
    EXPECT_EQ(full.backtest[m].positives, 200);
  }
  EXPECT_EQ(full.backtest[3].positives, 100);  // the half that measures the ensemble

  o.backtest_max_rows = 5000;  // each row kept with probability 1/4
  const auto [one, two] = at_one_and_two_threads(p, o);
  ASSERT_EQ(one.backtest.size(), 4u);
  for (std::size_t m = 0; m < 4; ++m) {
    const icp::BacktestRow& b = one.backtest[m];
    // Binomial(19200, 1/4) and (200, 1/4), checked at about 5 standard deviations.
    if (m < 3) {
      EXPECT_NEAR(static_cast<double>(b.population), 4800.0, 300.0) << b.method;
      EXPECT_NEAR(static_cast<double>(b.positives), 50.0, 30.0) << b.method;
    }
    EXPECT_NEAR(b.auc, full.backtest[m].auc, 0.03) << b.method;
    EXPECT_EQ(b.population, two.backtest[m].population);
    EXPECT_TRUE(icp_test::same_bits(b.auc, two.backtest[m].auc)) << b.method;
  }
  // The final model is fitted on every row either way; only its Newton start (the backtest's
  // model) differs, so it reaches the same optimum.
  ASSERT_EQ(one.model_coef.size(), full.model_coef.size());
  for (std::size_t j = 0; j < full.model_coef.size(); ++j)
    EXPECT_NEAR(one.model_coef[j], full.model_coef[j], 1e-7 * (1.0 + std::abs(full.model_coef[j])));
  EXPECT_NEAR(one.model_intercept, full.model_intercept,
              1e-7 * (1.0 + std::abs(full.model_intercept)));

  // A sample too small to hold two held-out seeds measures every row instead.
  o.backtest_max_rows = 10;
  const icp::LookalikeResult tiny =
      icp::score_lookalike(p.x.view(), p.segment, 2, p.seed, p.negative, o);
  EXPECT_EQ(tiny.backtest[0].population, 19200);
  EXPECT_TRUE(icp_test::same_bits(tiny.backtest[0].auc, full.backtest[0].auc));
}

TEST(LookalikeErrors, NonFiniteFeatureNamesTheFirstOneAtAnyThreadCount) {
  // The check runs per chunk in parallel; the message must name the value a row-order scan meets
  // first, even when a later chunk's thread finds its own first.
  const std::size_t chunk = icp::kReduceChunkRows;
  Planted p = planted(3 * chunk, 3);
  p.x(2 * chunk + 5, 1) = std::numeric_limits<float>::quiet_NaN();
  p.x(chunk + 7, 2) = std::numeric_limits<float>::infinity();
  p.x(chunk + 7, 0) = -std::numeric_limits<float>::infinity();
  icp::LookalikeOptions o;
  for (const int threads : {1, 2}) {
    icp::set_threads(threads);
    try {
      (void)icp::score_lookalike(p.x.view(), p.segment, 2, p.seed, {}, o);
      ADD_FAILURE() << "no error at " << threads << " threads";
    } catch (const icp::Error& e) {
      EXPECT_NE(std::string(e.what()).find("row " + std::to_string(chunk + 7) + ", feature 0"),
                std::string::npos)
          << e.what();
    }
  }
  icp::set_threads(0);
}

TEST(LookalikeErrors, RejectsBadInput) {
  Planted p = planted(100, 3);
  icp::LookalikeOptions o;
  std::vector<std::uint8_t> one(100, 0);
  one[3] = 1;
  EXPECT_THROW(icp::score_lookalike(p.x.view(), p.segment, 2, one, {}, o), icp::Error);
  const std::vector<std::uint8_t> none(100, 0);
  EXPECT_THROW(icp::score_lookalike(p.x.view(), p.segment, 2, none, {}, o), icp::Error);
  // Two seeds are enough.
  one[7] = 1;
  EXPECT_NO_THROW(icp::score_lookalike(p.x.view(), p.segment, 2, one, {}, o));
  icp::LookalikeOptions bad_tiers = o;
  bad_tiers.tiers = {0.1, 0.05};
  EXPECT_THROW(icp::score_lookalike(p.x.view(), p.segment, 2, p.seed, {}, bad_tiers), icp::Error);
  EXPECT_THROW(icp::score_lookalike(p.x.view(), p.segment, 1, p.seed, {}, o), icp::Error);
  p.x(5, 1) = std::numeric_limits<float>::quiet_NaN();
  EXPECT_THROW(icp::score_lookalike(p.x.view(), p.segment, 2, p.seed, {}, o), icp::Error);
}

}  // namespace

TEST(LookalikeOrder, PackedKeySortMatchesTheComparatorSort) {
  // Ties, both zeros, negatives, a denormal and the extremes of float.
  std::vector<float> v = {0.5f,  -0.0f,  0.0f, -3.0f, 0.5f, 1e-42f, -1e-42f,
                          3e38f, -3e38f, 7.0f, -3.0f, 0.0f, 2.5f,   0.5f};
  std::uint32_t s = 99;
  for (int i = 0; i < 5000; ++i) {
    s = s * 1664525u + 1013904223u;
    v.push_back(static_cast<float>(static_cast<int>(s >> 20) % 97 - 48) * 0.25f);
  }
  for (const bool descending : {false, true}) {
    std::vector<std::size_t> ref(v.size());
    std::iota(ref.begin(), ref.end(), std::size_t{0});
    std::sort(ref.begin(), ref.end(), [&](std::size_t a, std::size_t b) {
      if (v[a] != v[b]) return descending ? v[a] > v[b] : v[a] < v[b];
      return a < b;
    });
    for (const int threads : {1, 2}) {
      icp::set_threads(threads);
      EXPECT_EQ(icp::order_by_value(v, descending), ref)
          << (descending ? "descending" : "ascending") << " at " << threads << " threads";
    }
  }
  icp::set_threads(0);
}

TEST(LookalikeOrder, MidranksByCountingEqualTheSortedOnes) {
  // The same values ranked with `rank` (always sorted) and without (counted when they take at
  // most 64 distinct values), against midranks worked out by comparison: few levels with both
  // zeros, 64 and 65 levels (either side of the switch), and one value.
  auto reference = [](const std::vector<float>& v) {
    std::vector<double> out(v.size(), 1.0);
    if (v.size() < 2) return out;
    for (std::size_t i = 0; i < v.size(); ++i) {
      std::size_t below = 0, equal = 0;
      for (const float w : v) {
        below += w < v[i] ? 1 : 0;
        equal += w == v[i] ? 1 : 0;
      }
      out[i] =
          0.5 * static_cast<double>(below + below + equal - 1) / static_cast<double>(v.size() - 1);
    }
    return out;
  };
  std::vector<std::vector<float>> cases;
  std::uint32_t s = 7;
  for (const int levels : {3, 64, 65}) {
    std::vector<float> v;
    for (int i = 0; i < 3000; ++i) {
      s = s * 1664525u + 1013904223u;
      v.push_back(static_cast<float>(static_cast<int>(s >> 16) % levels) * 0.125f - 2.0f);
    }
    v.push_back(-0.0f);
    v.push_back(0.0f);
    cases.push_back(v);
  }
  cases.push_back({4.5f});
  for (const std::vector<float>& v : cases) {
    const std::vector<double> want = reference(v);
    std::vector<std::int64_t> rank;
    const std::vector<double> sorted = icp::normalized_midrank(v, &rank);
    const std::vector<double> counted = icp::normalized_midrank(v);
    ASSERT_EQ(sorted.size(), want.size());
    for (std::size_t i = 0; i < v.size(); ++i) {
      ASSERT_EQ(std::memcmp(&sorted[i], &want[i], sizeof(double)), 0) << "row " << i;
      ASSERT_EQ(std::memcmp(&counted[i], &want[i], sizeof(double)), 0) << "row " << i;
    }
  }
}
