#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "../src/kmeans_internal.hpp"
#include "icp/error.hpp"
#include "icp/kmeans.hpp"
#include "icp/parallel.hpp"
#include "test_bits.hpp"

namespace {

struct Blobs {
  icp::Matrix x;
  std::vector<int> truth;
};

/// Gaussian blobs around `centres` (row-major, `d` columns), `sizes[b]` points each.
Blobs make_blobs(const std::vector<std::vector<double>>& centres, const std::vector<int>& sizes,
                 double sd, std::uint64_t seed, double offset = 0.0) {
  const std::size_t d = centres[0].size();
  std::size_t n = 0;
  for (int s : sizes) n += static_cast<std::size_t>(s);
  Blobs b;
  b.x = icp::Matrix(n, d);
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> noise(0.0, sd);
  std::size_t row = 0;
  for (std::size_t c = 0; c < centres.size(); ++c) {
    for (int i = 0; i < sizes[c]; ++i, ++row) {
      for (std::size_t j = 0; j < d; ++j) {
        b.x(row, j) = static_cast<float>(centres[c][j] + noise(rng) + offset);
      }
      b.truth.push_back(static_cast<int>(c));
    }
  }
  return b;
}

/// Same partition up to a renaming of labels (a bijection between the label sets).
bool same_partition(const std::vector<std::int32_t>& a, const std::vector<int>& b) {
  if (a.size() != b.size()) return false;
  std::map<std::int32_t, int> ab;
  std::map<int, std::int32_t> ba;
  for (std::size_t i = 0; i < a.size(); ++i) {
    auto [it1, new1] = ab.emplace(a[i], b[i]);
    auto [it2, new2] = ba.emplace(b[i], a[i]);
    if (it1->second != b[i] || it2->second != a[i]) return false;
  }
  return true;
}

std::vector<int> as_int(const std::vector<std::int32_t>& v) {
  return {v.begin(), v.end()};
}

double direct_sq(const float* a, const float* b, std::size_t d) {
  double s = 0.0;
  for (std::size_t j = 0; j < d; ++j) {
    const double t = static_cast<double>(a[j]) - static_cast<double>(b[j]);
    s += t * t;
  }
  return s;
}

std::vector<std::vector<double>> grid_centres(int count, int d, double spacing) {
  std::vector<std::vector<double>> c;
  for (int i = 0; i < count; ++i) {
    std::vector<double> v(static_cast<std::size_t>(d), 0.0);
    v[0] = spacing * (i % 4);
    if (d > 1) v[1] = spacing * (i / 4);
    if (d > 2) v[2] = spacing * 0.5 * (i % 3);
    c.push_back(v);
  }
  return c;
}

using icp_test::same_bits;

// --- Kernel -----------------------------------------------------------------------------------

class KMeansKernelShapes : public ::testing::TestWithParam<std::pair<std::size_t, std::size_t>> {};

TEST_P(KMeansKernelShapes, BlockedPredictMatchesScalarReference) {
  // 5000 rows cross a chunk boundary and end in a partial block; odd d and k hit remainder paths.
  const std::size_t n = 5000;
  const auto [d, k] = GetParam();
  std::mt19937_64 rng(3);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  icp::Matrix x(n, d), c(k, d);
  for (float& v : x.storage()) v = u(rng);
  for (float& v : c.storage()) v = u(rng);
  std::vector<std::int32_t> assign(n);
  std::vector<float> dist(n);
  icp::kmeans_predict(x, c, assign, dist);

  std::size_t differing = 0;
  for (std::size_t i = 0; i < n; ++i) {
    std::size_t best = 0;
    double best_d = std::numeric_limits<double>::infinity();
    for (std::size_t j = 0; j < k; ++j) {
      const double dj = direct_sq(x.row(i), c.row(j), d);
      if (dj < best_d) {
        best_d = dj;
        best = j;
      }
    }
    const auto chosen = static_cast<std::size_t>(assign[i]);
    ASSERT_LT(chosen, k);
    const double chosen_d = direct_sq(x.row(i), c.row(chosen), d);
    if (chosen != best) {
      ++differing;
      // Only a float32 near-tie may flip the choice.
      EXPECT_LE(chosen_d - best_d, 1e-5 * best_d + 1e-6) << "row " << i;
    }
    EXPECT_NEAR(dist[i], chosen_d, 1e-5 * chosen_d + 1e-6) << "row " << i;
  }
  EXPECT_LE(differing, n / 1000);
}

INSTANTIATE_TEST_SUITE_P(KMeansKernel, KMeansKernelShapes,
                         ::testing::Values(std::make_pair(std::size_t{13}, std::size_t{37}),
                                           std::make_pair(std::size_t{1}, std::size_t{5}),
                                           std::make_pair(std::size_t{16}, std::size_t{8}),
                                           std::make_pair(std::size_t{40}, std::size_t{64}),
                                           std::make_pair(std::size_t{7}, std::size_t{1})));

TEST(KMeansKernel, InternalAssignTiesGoToLowestIndex) {
  // Row (0, 0); two centres at distance 1 ((1, 0) and (-1, 0)), every other centre far away.
  // The pairs cover ties within one 8-wide lane group, across groups, in the same lane, and in
  // the scalar tail (k = 20), plus k = 3 where only the tail runs.
  const std::vector<std::pair<std::size_t, std::size_t>> pairs = {{1, 2},  {5, 13}, {2, 6},
                                                                  {3, 11}, {9, 17}, {16, 19}};
  for (const auto& [lo, hi] : pairs) {
    icp::Matrix x(1, 2, 0.0f);
    icp::Matrix c(20, 2);
    for (std::size_t j = 0; j < 20; ++j) c(j, 0) = 50.0f + static_cast<float>(j);
    c(lo, 0) = 1.0f;
    c(hi, 0) = -1.0f;
    std::vector<std::int32_t> a(1, -1);
    std::vector<float> dist(1);
    const auto stats = icp::kmeans_detail::assign_rows(x, c, a, dist, true);
    EXPECT_EQ(a[0], static_cast<std::int32_t>(lo)) << lo << " vs " << hi;
    EXPECT_EQ(dist[0], 1.0f);
    EXPECT_EQ(stats.changed, 1);
    EXPECT_DOUBLE_EQ(stats.inertia, 1.0);
  }
  icp::Matrix x(1, 2, 0.0f);
  icp::Matrix c(3, 2);
  c(0, 0) = 5.0f;
  c(1, 0) = -1.0f;
  c(2, 0) = 1.0f;
  std::vector<std::int32_t> a(1, 7);
  std::vector<float> dist(1);
  (void)icp::kmeans_detail::assign_rows(x, c, a, dist, false);
  EXPECT_EQ(a[0], 1);
}

TEST(KMeansKernel, ExactDistanceMatchesScalarSumForManyWidths) {
  std::mt19937_64 rng(5);
  std::uniform_real_distribution<float> u(-3.0f, 3.0f);
  for (std::size_t d : {1u, 3u, 7u, 8u, 9u, 16u, 31u, 64u}) {
    std::vector<float> a(d), b(d);
    for (auto& v : a) v = u(rng);
    for (auto& v : b) v = u(rng);
    const double ref = direct_sq(a.data(), b.data(), d);
    EXPECT_NEAR(icp::kmeans_detail::squared_distance(a.data(), b.data(), d), ref, 1e-12 * ref)
        << "d = " << d;
  }
}

// --- Reproducibility --------------------------------------------------------------------------

TEST(KMeansThreads, OneAndTwoThreadsBitwiseIdentical) {
  // Three full chunks plus a tail, so two threads really split the rows.
  const int per = (3 * static_cast<int>(icp::kReduceChunkRows) + 123) / 7;
  auto blobs = make_blobs(grid_centres(7, 6, 4.0), std::vector<int>(7, per), 1.5, 11);
  for (const auto init : {icp::KMeansInit::kmeanspp, icp::KMeansInit::random}) {
    icp::KMeansOptions o;
    o.k = 7;
    o.seed = 5;
    o.n_init = 2;
    o.init = init;
    o.tol = 0.0;
    o.max_iter = 15;
    icp::set_threads(1);
    const auto r1 = icp::kmeans_fit(blobs.x, o);
    icp::set_threads(2);
    const auto r2 = icp::kmeans_fit(blobs.x, o);
    icp::set_threads(0);
    EXPECT_TRUE(same_bits(r1.centroids.storage(), r2.centroids.storage()));
    EXPECT_TRUE(same_bits(r1.assignment, r2.assignment));
    EXPECT_TRUE(same_bits(r1.distance, r2.distance));
    EXPECT_TRUE(same_bits(r1.inertia, r2.inertia));
    EXPECT_EQ(r1.iterations, r2.iterations);
    ASSERT_EQ(r1.history.size(), r2.history.size());
    for (std::size_t i = 0; i < r1.history.size(); ++i) {
      EXPECT_TRUE(same_bits(r1.history[i].inertia, r2.history[i].inertia));
      EXPECT_TRUE(same_bits(r1.history[i].shift, r2.history[i].shift));
    }
  }
}

TEST(KMeansThreads, SameSeedSameResultDifferentSeedDifferentInit) {
  auto blobs = make_blobs(grid_centres(6, 3, 3.0), std::vector<int>(6, 50), 1.5, 2);
  icp::KMeansOptions o;
  o.k = 6;
  o.max_iter = 1;
  o.seed = 1;
  const auto a = icp::kmeans_fit(blobs.x, o);
  const auto b = icp::kmeans_fit(blobs.x, o);
  EXPECT_TRUE(same_bits(a.centroids.storage(), b.centroids.storage()));
  o.seed = 2;
  const auto c = icp::kmeans_fit(blobs.x, o);
  EXPECT_FALSE(same_bits(a.centroids.storage(), c.centroids.storage()));
}

// --- Quality ----------------------------------------------------------------------------------

TEST(KMeansFit, RecoversPlantedBlobs) {
  auto blobs = make_blobs(grid_centres(5, 4, 50.0), {60, 40, 80, 30, 50}, 1.0, 17);
  icp::KMeansOptions o;
  o.k = 5;
  o.seed = 7;
  const auto r = icp::kmeans_fit(blobs.x, o);
  EXPECT_TRUE(same_partition(r.assignment, blobs.truth));
  EXPECT_TRUE(r.converged);
  std::vector<std::int64_t> sizes = r.sizes;
  std::sort(sizes.begin(), sizes.end());
  EXPECT_EQ(sizes, (std::vector<std::int64_t>{30, 40, 50, 60, 80}));
}

TEST(KMeansFit, SingleDimensionHandComputed) {
  // Three groups of three; the optimum has centres 2, 12, 22 and inertia 3 * (1 + 0 + 1) = 6.
  const std::vector<float> v = {21, 1, 12, 3, 22, 11, 2, 23, 13};
  icp::Matrix x(v.size(), 1);
  for (std::size_t i = 0; i < v.size(); ++i) x(i, 0) = v[i];
  icp::KMeansOptions o;
  o.k = 3;
  o.n_init = 3;
  const auto r = icp::kmeans_fit(x, o);
  std::vector<float> centres = {r.centroids(0, 0), r.centroids(1, 0), r.centroids(2, 0)};
  std::sort(centres.begin(), centres.end());
  EXPECT_NEAR(centres[0], 2.0f, 1e-5);
  EXPECT_NEAR(centres[1], 12.0f, 1e-5);
  EXPECT_NEAR(centres[2], 22.0f, 1e-5);
  EXPECT_NEAR(r.inertia, 6.0, 1e-4);
  EXPECT_TRUE(same_partition(r.assignment, {2, 0, 1, 0, 2, 1, 0, 2, 1}));
}

TEST(KMeansFit, InertiaIsSumOfDistancesAndMatchesDirectRecomputation) {
  auto blobs = make_blobs(grid_centres(6, 5, 3.0), std::vector<int>(6, 300), 1.2, 23);
  icp::KMeansOptions o;
  o.k = 6;
  const auto r = icp::kmeans_fit(blobs.x, o);
  const std::size_t n = blobs.x.rows(), d = blobs.x.cols();
  double sum_reported = 0.0, sum_direct = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    sum_reported += static_cast<double>(r.distance[i]);
    const double di = direct_sq(blobs.x.row(i), r.centroids.row(r.assignment[i]), d);
    sum_direct += di;
    EXPECT_NEAR(r.distance[i], di, 1e-4 * di + 1e-5) << "row " << i;
    for (std::size_t j = 0; j < 6; ++j) {
      EXPECT_LE(di, direct_sq(blobs.x.row(i), r.centroids.row(j), d) * (1 + 1e-5) + 1e-5);
    }
  }
  EXPECT_NEAR(r.inertia, sum_reported, 1e-12 * sum_reported);
  EXPECT_NEAR(r.inertia, sum_direct, 1e-5 * sum_direct);
  std::int64_t total = 0;
  for (auto s : r.sizes) total += s;
  EXPECT_EQ(total, static_cast<std::int64_t>(n));
}

TEST(KMeansFit, CentroidsAreMeansOfTheirClusters) {
  auto blobs = make_blobs(grid_centres(4, 3, 2.0), std::vector<int>(4, 100), 1.0, 31);
  icp::KMeansOptions o;
  o.k = 4;
  o.tol = 0.0;  // run to a fixed point so the returned labels produced the returned centres
  o.max_iter = 300;
  const auto r = icp::kmeans_fit(blobs.x, o);
  ASSERT_TRUE(r.converged);
  for (std::size_t j = 0; j < 4; ++j) {
    for (std::size_t t = 0; t < 3; ++t) {
      double s = 0.0;
      int c = 0;
      for (std::size_t i = 0; i < blobs.x.rows(); ++i) {
        if (r.assignment[i] == static_cast<std::int32_t>(j)) {
          s += blobs.x(i, t);
          ++c;
        }
      }
      ASSERT_GT(c, 0);
      EXPECT_NEAR(r.centroids(j, t), s / c, 1e-5);
    }
  }
}

TEST(KMeansFit, HistoryAndCallbackAgree) {
  auto blobs = make_blobs(grid_centres(4, 2, 6.0), std::vector<int>(4, 80), 1.5, 41);
  icp::KMeansOptions o;
  o.k = 4;
  std::vector<icp::KMeansIteration> seen;
  o.on_iteration = [&](const icp::KMeansIteration& it) { seen.push_back(it); };
  const auto r = icp::kmeans_fit(blobs.x, o);
  ASSERT_EQ(static_cast<int>(r.history.size()), r.iterations);
  ASSERT_EQ(seen.size(), r.history.size());
  EXPECT_EQ(seen[0].changed, static_cast<std::int64_t>(blobs.x.rows()));
  for (std::size_t i = 0; i < seen.size(); ++i) {
    EXPECT_EQ(seen[i].iteration, static_cast<int>(i) + 1);
    EXPECT_EQ(seen[i].inertia, r.history[i].inertia);
    if (i > 0) {
      EXPECT_LE(seen[i].inertia, seen[i - 1].inertia * (1 + 1e-12));  // Lloyd never ascends
    }
  }
  EXPECT_TRUE(r.converged);
  // Converged means the last centre movement is within tol x the mean column variance.
  double variance = 0.0;
  const auto n = static_cast<double>(blobs.x.rows());
  for (std::size_t t = 0; t < blobs.x.cols(); ++t) {
    double sum = 0.0, squares = 0.0;
    for (std::size_t i = 0; i < blobs.x.rows(); ++i) sum += blobs.x(i, t);
    for (std::size_t i = 0; i < blobs.x.rows(); ++i)
      squares += std::pow(blobs.x(i, t) - sum / n, 2);
    variance += squares / n / static_cast<double>(blobs.x.cols());
  }
  EXPECT_LE(r.history.back().shift, o.tol * variance);
  if (r.history.size() > 1) {
    EXPECT_GT(r.history[r.history.size() - 2].shift, o.tol * variance);
  }
  EXPECT_LE(r.inertia, r.history.back().inertia * (1 + 1e-12));
}

TEST(KMeansFit, MaxIterStopsEarly) {
  auto blobs = make_blobs(grid_centres(8, 2, 1.0), std::vector<int>(8, 50), 1.5, 43);
  icp::KMeansOptions o;
  o.k = 8;
  o.tol = 0.0;
  o.max_iter = 2;
  const auto r = icp::kmeans_fit(blobs.x, o);
  EXPECT_EQ(r.iterations, 2);
  EXPECT_EQ(r.history.size(), 2u);
}

TEST(KMeansFit, MoreRestartsNeverWorse) {
  auto blobs = make_blobs(grid_centres(9, 2, 4.0), {10, 30, 50, 70, 20, 40, 60, 15, 35}, 1.3, 47);
  icp::KMeansOptions o;
  o.k = 9;
  o.init = icp::KMeansInit::random;
  const auto one = icp::kmeans_fit(blobs.x, o);
  o.n_init = 6;
  const auto six = icp::kmeans_fit(blobs.x, o);
  EXPECT_LE(six.inertia, one.inertia);
  // Restart 0 of the six is the single run: same derived seed.
  if (six.history.front().restart == 0) {
    EXPECT_TRUE(same_bits(six.inertia, one.inertia));
  }
}

TEST(KMeansInit, PlusPlusBeatsRandomOnPlantedClusters) {
  auto blobs = make_blobs(grid_centres(12, 2, 10.0),
                          {120, 10, 60, 15, 90, 20, 40, 25, 100, 12, 30, 50}, 1.0, 53);
  double pp_init = 0, rnd_init = 0, pp_final = 0, rnd_final = 0;
  const int seeds = 8;
  for (int s = 0; s < seeds; ++s) {
    icp::KMeansOptions o;
    o.k = 12;
    o.seed = static_cast<std::uint64_t>(s);
    o.init = icp::KMeansInit::kmeanspp;
    const auto pp = icp::kmeans_fit(blobs.x, o);
    o.init = icp::KMeansInit::random;
    const auto rnd = icp::kmeans_fit(blobs.x, o);
    pp_init += pp.history.front().inertia;  // inertia against the initial centres
    rnd_init += rnd.history.front().inertia;
    pp_final += pp.inertia;
    rnd_final += rnd.inertia;
  }
  EXPECT_LT(pp_init, rnd_init);
  EXPECT_LT(pp_final, rnd_final);
}

double potential(const icp::Matrix& x, const icp::Matrix& c) {
  double total = 0.0;
  for (std::size_t i = 0; i < x.rows(); ++i) {
    double best = std::numeric_limits<double>::infinity();
    for (std::size_t j = 0; j < c.rows(); ++j) {
      best = std::min(best, direct_sq(x.row(i), c.row(j), x.cols()));
    }
    total += best;
  }
  return total;
}

/// Plain (one candidate per step) k-means++ as the baseline the greedy variant must beat.
icp::Matrix plain_kmeanspp(const icp::Matrix& x, std::size_t k, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  icp::Matrix c(k, x.cols());
  std::vector<double> d2(x.rows(), std::numeric_limits<double>::infinity());
  std::size_t pick = std::uniform_int_distribution<std::size_t>(0, x.rows() - 1)(rng);
  for (std::size_t j = 0; j < k; ++j) {
    std::copy(x.row(pick), x.row(pick) + x.cols(), c.row(j));
    for (std::size_t i = 0; i < x.rows(); ++i) {
      d2[i] = std::min(d2[i], direct_sq(x.row(i), c.row(j), x.cols()));
    }
    pick = std::discrete_distribution<std::size_t>(d2.begin(), d2.end())(rng);
  }
  return c;
}

TEST(KMeansInit, GreedyPlusPlusBeatsPlainPlusPlus) {
  auto blobs = make_blobs(grid_centres(12, 2, 6.0),
                          {120, 10, 60, 15, 90, 20, 40, 25, 100, 12, 30, 50}, 1.5, 59);
  // Centred like the fit does, so the init sees the same coordinates.
  const auto xc = icp::kmeans_detail::centre_rows(
      blobs.x, icp::kmeans_detail::column_means(blobs.x, icp::local_reducer()));
  double greedy = 0.0, plain = 0.0;
  for (std::uint64_t s = 0; s < 20; ++s) {
    greedy += potential(xc, icp::kmeans_detail::init_kmeanspp(xc, 12, s));
    plain += potential(xc, plain_kmeanspp(xc, 12, s + 1000));
  }
  EXPECT_LT(greedy, plain);
}

TEST(KMeansInit, RandomPicksDistinctRows) {
  icp::Matrix x(10, 1);
  for (std::size_t i = 0; i < 10; ++i) x(i, 0) = static_cast<float>(i);
  for (std::uint64_t seed = 0; seed < 20; ++seed) {
    const auto c = icp::kmeans_detail::init_random(x, 10, seed);
    std::vector<float> v(c.storage().begin(), c.storage().end());
    std::sort(v.begin(), v.end());
    for (std::size_t i = 0; i < 10; ++i) EXPECT_EQ(v[i], static_cast<float>(i));
  }
}

TEST(KMeansInit, PlusPlusPicksDistinctRowsOnDistinctData) {
  // With k == n and all points distinct, D^2 sampling must never pick a row twice.
  icp::Matrix x(8, 2);
  for (std::size_t i = 0; i < 8; ++i) {
    x(i, 0) = static_cast<float>(i * i);
    x(i, 1) = static_cast<float>(i % 3);
  }
  const auto c = icp::kmeans_detail::init_kmeanspp(x, 8, 9);
  std::vector<std::pair<float, float>> rows;
  for (std::size_t j = 0; j < 8; ++j) rows.emplace_back(c(j, 0), c(j, 1));
  std::sort(rows.begin(), rows.end());
  EXPECT_EQ(std::unique(rows.begin(), rows.end()), rows.end());
}

// --- Update and relocation --------------------------------------------------------------------

TEST(KMeansUpdate, RelocatesFarthestPointTiesToLowestRow) {
  icp::Matrix x(6, 1);
  const float v[] = {0, 1, 2, 10, 11, 30};
  for (std::size_t i = 0; i < 6; ++i) x(i, 0) = v[i];
  std::vector<std::int32_t> a = {0, 0, 0, 1, 1, 1};
  const std::vector<float> dist = {0.5f, 0.1f, 0.9f, 3.0f, 0.2f, 3.0f};
  auto sums = icp::kmeans_detail::accumulate_clusters(x, a, 3, icp::local_reducer());
  EXPECT_EQ(sums.counts, (std::vector<std::int64_t>{3, 3, 0}));
  EXPECT_EQ(sums.sums, (std::vector<double>{3, 51, 0}));
  EXPECT_EQ(icp::kmeans_detail::relocate_empty(x, a, dist, sums), 1);
  // Rows 3 and 5 tie at distance 3: row 3 (value 10) moves.
  EXPECT_EQ(a, (std::vector<std::int32_t>{0, 0, 0, 2, 1, 1}));
  EXPECT_EQ(sums.counts, (std::vector<std::int64_t>{3, 2, 1}));
  EXPECT_EQ(sums.sums, (std::vector<double>{3, 41, 10}));
}

TEST(KMeansUpdate, RelocationNeverEmptiesTheDonor) {
  icp::Matrix x(6, 1);
  for (std::size_t i = 0; i < 6; ++i) x(i, 0) = static_cast<float>(i);
  std::vector<std::int32_t> a = {0, 0, 0, 0, 0, 1};
  const std::vector<float> dist = {1, 1, 1, 1, 1, 9};
  auto sums = icp::kmeans_detail::accumulate_clusters(x, a, 4, icp::local_reducer());
  EXPECT_EQ(icp::kmeans_detail::relocate_empty(x, a, dist, sums), 2);
  // Row 5 is farthest but the only member of cluster 1; rows 0 and 1 fill clusters 2 and 3.
  EXPECT_EQ(a, (std::vector<std::int32_t>{2, 3, 0, 0, 0, 1}));
  EXPECT_EQ(sums.counts, (std::vector<std::int64_t>{3, 1, 1, 1}));
  EXPECT_EQ(sums.sums, (std::vector<double>{9, 5, 0, 1}));
}

TEST(KMeansUpdate, LloydStepRelocatesEmptyCluster) {
  // Centre 100 attracts no point. Distances to the assigned centres are 1,0,1,1,0,1: the
  // farthest, lowest row is row 0, so the step moves it to cluster 2. Hand-computed result:
  // centres (1+2)/2 = 1.5, (10+11+12)/3 = 11, 0.
  icp::Matrix x(6, 1);
  const float v[] = {0, 1, 2, 10, 11, 12};
  for (std::size_t i = 0; i < 6; ++i) x(i, 0) = v[i];
  icp::kmeans_detail::LloydState s;
  s.centroids = icp::Matrix(3, 1);
  s.centroids(0, 0) = 1;
  s.centroids(1, 0) = 11;
  s.centroids(2, 0) = 100;
  s.assignment.assign(6, -1);
  s.distance.assign(6, 0.0f);
  const auto step = icp::kmeans_detail::lloyd_step(x, s, icp::local_reducer());
  EXPECT_EQ(step.relocated, 1);
  EXPECT_EQ(step.changed, 6);
  EXPECT_DOUBLE_EQ(step.inertia, 4.0);
  EXPECT_EQ(s.centroids(0, 0), 1.5f);
  EXPECT_EQ(s.centroids(1, 0), 11.0f);
  EXPECT_EQ(s.centroids(2, 0), 0.0f);
  EXPECT_EQ(s.assignment, (std::vector<std::int32_t>{2, 0, 0, 1, 1, 1}));
  // sum ||new - old||^2 = 0.25 + 0 + 10000
  EXPECT_DOUBLE_EQ(step.shift, 10000.25);
}

TEST(KMeansUpdate, CentreShift) {
  icp::Matrix a(2, 2, 0.0f), b(2, 2, 0.0f);
  a(0, 0) = 1;
  a(1, 1) = 2;
  b(0, 0) = 2;   // moved by 1
  b(1, 1) = -1;  // moved by 3
  EXPECT_DOUBLE_EQ(icp::kmeans_detail::centre_shift(a, b), 1.0 + 9.0);
  EXPECT_EQ(icp::kmeans_detail::centre_shift(a, a), 0.0);
}

// --- Exact cluster moments --------------------------------------------------------------------

namespace kd = icp::kmeans_detail;

/// Rows whose columns span 12 orders of magnitude (and a column of zeros), weights in [0, 3).
icp::Matrix mixed_rows(std::size_t n, std::uint64_t seed, std::vector<float>* weight = nullptr) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> z(0.0, 1.0);
  std::uniform_real_distribution<double> w(0.0, 3.0);
  const double scale[] = {1e-6, 1.0, 1e6, 0.0, 37.5};
  icp::Matrix x(n, 5);
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t t = 0; t < 5; ++t) x(i, t) = static_cast<float>(scale[t] * (z(rng) + 2.0));
    if (weight != nullptr) weight->push_back(static_cast<float>(w(rng)));
  }
  return x;
}

TEST(KMeansMoments, AddingAndRemovingRowsGivesTheBitsOfAFreshSum) {
  // A bounded step moves only the relabelled rows between clusters: after any sequence of moves
  // the moments must equal (bit for bit) those summed afresh under the final labels.
  for (const bool weighted : {false, true}) {
    std::vector<float> w;
    const icp::Matrix x = mixed_rows(3 * icp::kReduceChunkRows + 11, 5, weighted ? &w : nullptr);
    const std::size_t n = x.rows();
    const std::size_t k = 7;
    std::vector<std::int32_t> label(n);
    for (std::size_t i = 0; i < n; ++i) label[i] = static_cast<std::int32_t>(i % k);
    const kd::MomentScales scales = kd::moment_scales(x, w, icp::local_reducer());
    auto fresh = [&] {
      kd::ClusterAccumulator acc(n, k, x.cols(), w, scales);
      for (std::size_t ci = 0; ci < acc.chunks(); ++ci) {
        acc.add_chunk(ci, x, label);
        acc.fold_wave(ci, ci + 1);
      }
      return acc.finish(icp::local_reducer());
    };
    kd::ClusterMoments moving = fresh();
    std::mt19937_64 rng(9);
    for (int step = 0; step < 3000; ++step) {
      const std::size_t i = rng() % n;
      const auto to = static_cast<std::int32_t>(rng() % k);
      const float wi = weighted ? w[i] : 1.0f;
      moving.add_row(static_cast<std::size_t>(label[i]), x.row(i), wi, scales, -1);
      moving.add_row(static_cast<std::size_t>(to), x.row(i), wi, scales, +1);
      label[i] = to;
    }
    const kd::ClusterMoments again = fresh();
    const kd::ClusterSums a = moving.sums(scales);
    const kd::ClusterSums b = again.sums(scales);
    EXPECT_EQ(a.counts, b.counts);
    EXPECT_TRUE(same_bits(a.sums, b.sums));
    EXPECT_TRUE(same_bits(a.weight_sums, b.weight_sums));
    icp::Matrix centres(k, x.cols(), 0.5f);
    EXPECT_TRUE(same_bits(moving.inertia(centres, scales), again.inertia(centres, scales)));
  }
}

TEST(KMeansMoments, SumsAndInertiaMatchALongDoubleReference) {
  // Columns of 1e-6 and 1e6 side by side: each column keeps its own relative precision, and the
  // inertia from the moments matches the plain sum of squared distances.
  for (const bool weighted : {false, true}) {
    std::vector<float> w;
    const icp::Matrix x = mixed_rows(20000, 8, weighted ? &w : nullptr);
    const std::size_t n = x.rows();
    const std::size_t d = x.cols();
    const std::size_t k = 3;
    std::vector<std::int32_t> label(n);
    for (std::size_t i = 0; i < n; ++i) label[i] = static_cast<std::int32_t>((i * 7) % k);
    const kd::ClusterSums got = kd::accumulate_clusters(x, label, k, icp::local_reducer(), w);
    std::vector<long double> sum(k * d, 0.0L);
    for (std::size_t i = 0; i < n; ++i) {
      const long double wi = weighted ? w[i] : 1.0L;
      for (std::size_t t = 0; t < d; ++t) sum[label[i] * d + t] += wi * x(i, t);
    }
    for (std::size_t j = 0; j < k; ++j) {
      for (std::size_t t = 0; t < d; ++t) {
        const long double want = sum[j * d + t];
        EXPECT_NEAR(static_cast<double>(got.sums[j * d + t]), static_cast<double>(want),
                    static_cast<double>(std::fabs(want)) * 1e-13)
            << "cluster " << j << " column " << t;
      }
    }
    // Centres near, but not at, the cluster means (as the centres of a step are).
    const kd::MomentScales scales = kd::moment_scales(x, w, icp::local_reducer());
    kd::ClusterAccumulator acc(n, k, d, w, scales);
    for (std::size_t ci = 0; ci < acc.chunks(); ++ci) {
      acc.add_chunk(ci, x, label);
      acc.fold_wave(ci, ci + 1);
    }
    const kd::ClusterMoments& moments = acc.finish(icp::local_reducer());
    icp::Matrix c(k, d);
    for (std::size_t j = 0; j < k; ++j) {
      const double count = weighted ? got.weight_sums[j] : static_cast<double>(got.counts[j]);
      for (std::size_t t = 0; t < d; ++t) {
        c(j, t) = static_cast<float>(got.sums[j * d + t] / count * 1.001 + 1e-7);
      }
    }
    long double direct = 0.0L;
    for (std::size_t i = 0; i < n; ++i) {
      long double dist = 0.0L;
      for (std::size_t t = 0; t < d; ++t) {
        const long double diff =
            static_cast<long double>(x(i, t)) - static_cast<long double>(c(label[i], t));
        dist += diff * diff;
      }
      direct += (weighted ? w[i] : 1.0L) * dist;
    }
    EXPECT_NEAR(moments.inertia(c, scales), static_cast<double>(direct),
                static_cast<double>(direct) * 1e-12);
  }
}

TEST(KMeansMoments, HugeOffsetKeepsTheInertiaExactEnough) {
  // Rows at 1e6 with unit spread: ||x||^2 is 1e12 times the inertia per row, the cancellation
  // the moments' extended precision has to absorb.
  icp::Matrix x(4000, 3);
  std::mt19937_64 rng(4);
  std::normal_distribution<double> z(0.0, 1.0);
  for (std::size_t i = 0; i < x.rows(); ++i) {
    for (std::size_t t = 0; t < 3; ++t) x(i, t) = static_cast<float>(1e6 + z(rng));
  }
  const std::vector<std::int32_t> label(x.rows(), 0);
  const kd::MomentScales scales = kd::moment_scales(x, {}, icp::local_reducer());
  kd::ClusterAccumulator acc(x.rows(), 1, 3, {}, scales);
  acc.add_chunk(0, x, label);
  acc.fold_wave(0, 1);
  const kd::ClusterMoments& m = acc.finish(icp::local_reducer());
  icp::Matrix c(1, 3, 1e6f);
  long double direct = 0.0L;
  for (std::size_t i = 0; i < x.rows(); ++i) {
    for (std::size_t t = 0; t < 3; ++t) {
      const long double diff = static_cast<long double>(x(i, t)) - 1e6L;
      direct += diff * diff;
    }
  }
  EXPECT_NEAR(m.inertia(c, scales), static_cast<double>(direct),
              static_cast<double>(direct) * 1e-6);
}

TEST(KMeansUpdate, MeanFeatureVarianceOfCentredRows) {
  // Centred rows (1,2), (-1,-2), (3,0), (-3,0): squares 5, 5, 9, 9 over 4 rows and 2 columns.
  icp::Matrix x(4, 2);
  const float v[] = {1, 2, -1, -2, 3, 0, -3, 0};
  std::copy(v, v + 8, x.data());
  EXPECT_DOUBLE_EQ(icp::kmeans_detail::mean_feature_variance(x.view(), icp::local_reducer(), {}),
                   28.0 / 4 / 2);
  // Weights 3, 1, 0, 0: (3 * 5 + 1 * 5) / 4 / 2.
  const std::vector<float> w = {3, 1, 0, 0};
  EXPECT_DOUBLE_EQ(icp::kmeans_detail::mean_feature_variance(x.view(), icp::local_reducer(), w),
                   20.0 / 4 / 2);
}

// --- Degenerate inputs ------------------------------------------------------------------------

TEST(KMeansDegenerate, NEqualsK) {
  icp::Matrix x(6, 2);
  for (std::size_t i = 0; i < 6; ++i) {
    x(i, 0) = static_cast<float>(i) * 1.5f;
    x(i, 1) = static_cast<float>(i % 2);
  }
  icp::KMeansOptions o;
  o.k = 6;
  const auto r = icp::kmeans_fit(x, o);
  EXPECT_EQ(r.inertia, 0.0);
  EXPECT_EQ(r.sizes, std::vector<std::int64_t>(6, 1));
  for (std::size_t i = 0; i < 6; ++i) {
    EXPECT_EQ(r.distance[i], 0.0f);
    EXPECT_NEAR(r.centroids(r.assignment[i], 0), x(i, 0), 1e-5);
    EXPECT_NEAR(r.centroids(r.assignment[i], 1), x(i, 1), 1e-5);
  }
}

TEST(KMeansDegenerate, DuplicatePoints) {
  const float pts[3][2] = {{0, 0}, {4, 1}, {-3, 7}};
  icp::Matrix x(30, 2);
  std::vector<int> truth;
  for (std::size_t i = 0; i < 30; ++i) {
    x(i, 0) = pts[i % 3][0];
    x(i, 1) = pts[i % 3][1];
    truth.push_back(static_cast<int>(i % 3));
  }
  icp::KMeansOptions o;
  o.k = 3;
  const auto r = icp::kmeans_fit(x, o);
  EXPECT_TRUE(same_partition(r.assignment, truth));
  EXPECT_EQ(r.inertia, 0.0);
  EXPECT_EQ(r.sizes, std::vector<std::int64_t>(3, 10));
}

TEST(KMeansDegenerate, FewerDistinctPointsThanK) {
  icp::Matrix x(20, 2);
  for (std::size_t i = 0; i < 20; ++i) {
    x(i, 0) = i < 10 ? 0.0f : 5.0f;
    x(i, 1) = i < 10 ? 0.0f : 5.0f;
  }
  for (const auto init : {icp::KMeansInit::kmeanspp, icp::KMeansInit::random}) {
    icp::KMeansOptions o;
    o.k = 5;
    o.init = init;
    const auto r = icp::kmeans_fit(x, o);
    std::int64_t total = 0;
    for (auto s : r.sizes) total += s;
    EXPECT_EQ(total, 20);
    EXPECT_EQ(r.inertia, 0.0);
    for (auto a : r.assignment) {
      EXPECT_GE(a, 0);
      EXPECT_LT(a, 5);
    }
    for (std::size_t i = 1; i < 20; ++i) {
      EXPECT_EQ(r.assignment[i] == r.assignment[0], i < 10) << "row " << i;
    }
  }
}

TEST(KMeansDegenerate, AllRowsIdentical) {
  icp::Matrix x(7, 3, 2.5f);
  icp::KMeansOptions o;
  o.k = 3;
  const auto r = icp::kmeans_fit(x, o);
  EXPECT_EQ(r.inertia, 0.0);
  EXPECT_EQ(r.sizes[0] + r.sizes[1] + r.sizes[2], 7);
  for (float v : r.centroids.storage()) EXPECT_EQ(v, 2.5f);
}

TEST(KMeansDegenerate, ConstantColumnIsHarmless) {
  auto blobs = make_blobs(grid_centres(3, 2, 20.0), {40, 50, 60}, 1.0, 61);
  icp::Matrix x(blobs.x.rows(), 3);
  for (std::size_t i = 0; i < x.rows(); ++i) {
    x(i, 0) = blobs.x(i, 0);
    x(i, 1) = 7.0f;
    x(i, 2) = blobs.x(i, 1);
  }
  icp::KMeansOptions o;
  o.k = 3;
  const auto r = icp::kmeans_fit(x, o);
  EXPECT_TRUE(same_partition(r.assignment, blobs.truth));
  for (std::size_t j = 0; j < 3; ++j) EXPECT_EQ(r.centroids(j, 1), 7.0f);
}

TEST(KMeansDegenerate, SingleCluster) {
  auto blobs = make_blobs(grid_centres(1, 2, 1.0), {50}, 2.0, 67);
  icp::KMeansOptions o;
  o.k = 1;
  const auto r = icp::kmeans_fit(blobs.x, o);
  double m0 = 0, m1 = 0;
  for (std::size_t i = 0; i < 50; ++i) {
    m0 += blobs.x(i, 0);
    m1 += blobs.x(i, 1);
  }
  EXPECT_NEAR(r.centroids(0, 0), m0 / 50, 1e-5);
  EXPECT_NEAR(r.centroids(0, 1), m1 / 50, 1e-5);
  EXPECT_TRUE(r.converged);
  EXPECT_EQ(r.sizes[0], 50);
}

TEST(KMeansDegenerate, OffsetBy1e6GivesSamePartition) {
  const auto centres = grid_centres(4, 3, 20.0);
  const std::vector<int> sizes = {50, 70, 40, 60};
  auto plain = make_blobs(centres, sizes, 1.0, 71);
  auto shifted = make_blobs(centres, sizes, 1.0, 71, 1e6);
  icp::KMeansOptions o;
  o.k = 4;
  const auto a = icp::kmeans_fit(plain.x, o);
  const auto b = icp::kmeans_fit(shifted.x, o);
  EXPECT_TRUE(same_partition(a.assignment, plain.truth));
  EXPECT_TRUE(same_partition(b.assignment, as_int(a.assignment)));
  // float32 spacing at 1e6 is 0.0625, so the shifted centres agree to about that.
  for (std::size_t i = 0; i < plain.x.rows(); ++i) {
    for (std::size_t t = 0; t < 3; ++t) {
      EXPECT_NEAR(b.centroids(b.assignment[i], t) - 1e6, a.centroids(a.assignment[i], t), 0.1);
    }
  }
  // predict on shifted data with the shifted centres agrees with the fit.
  std::vector<std::int32_t> p(shifted.x.rows());
  std::vector<float> pd(shifted.x.rows());
  icp::kmeans_predict(shifted.x, b.centroids, p, pd);
  EXPECT_EQ(p, b.assignment);
}

// --- Validation -------------------------------------------------------------------------------

std::string fit_error(const icp::Matrix& x, int k) {
  icp::KMeansOptions o;
  o.k = k;
  try {
    (void)icp::kmeans_fit(x, o);
  } catch (const icp::Error& e) {
    return e.what();
  }
  return "";
}

TEST(KMeansCentring, RuleComparesEachColumnMeanWithItsRms) {
  namespace kd = icp::kmeans_detail;
  kd::ColumnMoments m;
  m.mean = {0.0, 0x1p-11, -0x1p-11};
  m.mean_square = {0.0, 1.0, 1.0};  // a column of zeros, then means of 2^-11 of the RMS
  EXPECT_TRUE(kd::centred_enough(m));
  m.mean[1] = 0x1p-9;  // beyond 2^-10 of the RMS: centred copy
  EXPECT_FALSE(kd::centred_enough(m));
  m.mean = {5.0};  // a constant column: the offset the copy exists for
  m.mean_square = {25.0};
  EXPECT_FALSE(kd::centred_enough(m));
}

TEST(KMeansCentring, MomentsAreTheColumnMeanAndMeanSquare) {
  icp::Matrix x(3, 2);
  const float v[3][2] = {{1, -2}, {2, 0}, {6, 5}};
  for (std::size_t i = 0; i < 3; ++i)
    for (std::size_t t = 0; t < 2; ++t) x(i, t) = v[i][t];
  const auto m = icp::kmeans_detail::column_moments(x, icp::local_reducer());
  EXPECT_DOUBLE_EQ(m.mean[0], 3.0);
  EXPECT_DOUBLE_EQ(m.mean[1], 1.0);
  EXPECT_DOUBLE_EQ(m.mean_square[0], 41.0 / 3.0);
  EXPECT_DOUBLE_EQ(m.mean_square[1], 29.0 / 3.0);
  const std::vector<float> w = {1, 0, 3};
  const auto mw = icp::kmeans_detail::column_moments(x, icp::local_reducer(), w);
  EXPECT_DOUBLE_EQ(mw.mean[0], (1.0 + 18.0) / 4.0);
  EXPECT_DOUBLE_EQ(mw.mean_square[1], (4.0 + 75.0) / 4.0);
}

TEST(KMeansCentring, NearlyCentredDataGivesTheFitOfItsCentredCopy) {
  // Blobs around the origin with a small shift (well inside 2^-10 of the spread): the fit uses
  // the rows as they are. Fitting the exactly centred copy must give the same partition, and
  // centres equal once the shift is added back.
  auto blobs = make_blobs({{-8, 0, 3}, {8, 1, -3}, {0, -9, 0}}, {300, 200, 250}, 1.0, 17);
  const auto mean = icp::kmeans_detail::column_means(blobs.x, icp::local_reducer());
  std::vector<double> shift = mean;
  for (double& s : shift) s -= 1e-3;  // data now centred on (1e-3, 1e-3, 1e-3)
  icp::Matrix near = icp::kmeans_detail::centre_rows(blobs.x, shift);
  const auto moments = icp::kmeans_detail::column_moments(near, icp::local_reducer());
  ASSERT_TRUE(icp::kmeans_detail::centred_enough(moments));
  const icp::Matrix exact = icp::kmeans_detail::centre_rows(near, moments.mean);
  icp::KMeansOptions o;
  o.k = 3;
  const auto a = icp::kmeans_fit(near, o);
  const auto b = icp::kmeans_fit(exact, o);
  EXPECT_TRUE(same_partition(a.assignment, blobs.truth));
  EXPECT_EQ(a.assignment, b.assignment);
  for (std::size_t j = 0; j < 3; ++j)
    for (std::size_t t = 0; t < 3; ++t)
      EXPECT_NEAR(a.centroids(j, t), b.centroids(j, t) + moments.mean[t], 1e-5);
  // The copy rounds each value once more (float32), which moves the inertia by about 2^-24.
  EXPECT_NEAR(a.inertia, b.inertia, 1e-7 * b.inertia);
}

TEST(KMeansValidation, RejectsNonFiniteWithPosition) {
  icp::Matrix x(5, 3, 1.0f);
  x(2, 1) = std::numeric_limits<float>::quiet_NaN();
  x(4, 0) = std::numeric_limits<float>::infinity();
  const std::string msg = fit_error(x, 2);
  EXPECT_NE(msg.find("row 3, column 2"), std::string::npos) << msg;
  EXPECT_NE(msg.find("nan"), std::string::npos) << msg;
  x(2, 1) = 0.0f;
  const std::string msg2 = fit_error(x, 2);
  EXPECT_NE(msg2.find("row 5, column 1"), std::string::npos) << msg2;
  EXPECT_NE(msg2.find("inf"), std::string::npos) << msg2;
}

TEST(KMeansValidation, RejectsNonFiniteBeyondTheFirstChunk) {
  icp::Matrix x(icp::kReduceChunkRows * 2 + 5, 2, 1.0f);
  x(icp::kReduceChunkRows + 9, 1) = -std::numeric_limits<float>::infinity();
  x(icp::kReduceChunkRows * 2 + 1, 0) = std::numeric_limits<float>::quiet_NaN();
  const std::string msg = fit_error(x, 2);
  EXPECT_NE(msg.find("row " + std::to_string(icp::kReduceChunkRows + 10) + ", column 2"),
            std::string::npos)
      << msg;
}

TEST(KMeansValidation, RejectsBadKAndShapes) {
  icp::Matrix x(5, 2, 1.0f);
  EXPECT_NE(fit_error(x, 0).find("k must be at least 1"), std::string::npos);
  EXPECT_NE(fit_error(x, 6).find("exceeds the number of rows (5)"), std::string::npos);
  icp::Matrix empty_cols(5, 0);
  EXPECT_NE(fit_error(empty_cols, 1).find("no columns"), std::string::npos);
  icp::KMeansOptions o;
  o.k = 2;
  o.max_iter = 0;
  EXPECT_THROW((void)icp::kmeans_fit(x, o), icp::Error);
  o.max_iter = 10;
  o.n_init = 0;
  EXPECT_THROW((void)icp::kmeans_fit(x, o), icp::Error);
  o.n_init = 1;
  o.tol = -1.0;
  EXPECT_THROW((void)icp::kmeans_fit(x, o), icp::Error);
}

TEST(KMeansValidation, PredictRejectsMismatchedShapes) {
  icp::Matrix x(4, 2, 0.0f), c(2, 3, 0.0f);
  std::vector<std::int32_t> a(4);
  std::vector<float> d(4);
  EXPECT_THROW(icp::kmeans_predict(x, c, a, d), icp::Error);
  icp::Matrix c2(2, 2, 0.0f);
  std::vector<float> short_d(3);
  EXPECT_THROW(icp::kmeans_predict(x, c2, a, short_d), icp::Error);
}

TEST(KMeansPredict, MatchesFitOnTrainingRows) {
  auto blobs = make_blobs(grid_centres(5, 3, 8.0), std::vector<int>(5, 70), 1.0, 79);
  icp::KMeansOptions o;
  o.k = 5;
  const auto r = icp::kmeans_fit(blobs.x, o);
  std::vector<std::int32_t> a(blobs.x.rows());
  std::vector<float> d(blobs.x.rows());
  icp::kmeans_predict(blobs.x, r.centroids, a, d);
  EXPECT_EQ(a, r.assignment);
  for (std::size_t i = 0; i < d.size(); ++i) {
    EXPECT_NEAR(d[i], r.distance[i], 1e-4 * r.distance[i] + 1e-5);
  }
}

}  // namespace
