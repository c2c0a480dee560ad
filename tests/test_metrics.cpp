#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "icp/error.hpp"
#include "icp/metrics.hpp"
#include "icp/parallel.hpp"
#include "test_bits.hpp"

namespace {

using icp::Matrix;

Matrix random_matrix(std::size_t n, std::size_t d, std::uint64_t seed, double offset = 0.0) {
  Matrix x(n, d);
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> g(0.0, 1.0);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < d; ++j) x(i, j) = static_cast<float>(g(rng) + offset);
  return x;
}

std::vector<std::int32_t> random_labels(std::size_t n, int k, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::int32_t> l(n);
  for (auto& v : l) v = static_cast<std::int32_t>(rng() % static_cast<std::uint64_t>(k));
  return l;
}

Matrix from_rows(const std::vector<std::vector<float>>& rows) {
  Matrix x(rows.size(), rows[0].size());
  for (std::size_t i = 0; i < rows.size(); ++i)
    for (std::size_t j = 0; j < rows[i].size(); ++j) x(i, j) = rows[i][j];
  return x;
}

// ---- plain scalar references, written from the textbook definitions ----

double dist(const Matrix& x, std::size_t a, std::size_t b) {
  double s = 0.0;
  for (std::size_t j = 0; j < x.cols(); ++j) {
    const double t = static_cast<double>(x(a, j)) - static_cast<double>(x(b, j));
    s += t * t;
  }
  return std::sqrt(s);
}

struct RefQuality {
  double ch, db;
};

RefQuality reference_quality(const Matrix& x, const std::vector<std::int32_t>& l) {
  const std::size_t n = x.rows(), d = x.cols();
  std::map<int, std::vector<std::size_t>> members;
  for (std::size_t i = 0; i < n; ++i) members[l[i]].push_back(i);
  std::vector<double> grand(d, 0.0);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < d; ++j) grand[j] += x(i, j);
  for (auto& g : grand) g /= static_cast<double>(n);
  std::vector<std::vector<double>> mu;
  std::vector<double> s;
  double w = 0.0, b = 0.0;
  for (const auto& [label, rows] : members) {
    std::vector<double> m(d, 0.0);
    for (auto i : rows)
      for (std::size_t j = 0; j < d; ++j) m[j] += x(i, j);
    for (auto& v : m) v /= static_cast<double>(rows.size());
    double spread = 0.0;
    for (auto i : rows) {
      double q = 0.0;
      for (std::size_t j = 0; j < d; ++j) q += (x(i, j) - m[j]) * (x(i, j) - m[j]);
      w += q;
      spread += std::sqrt(q);
    }
    double gb = 0.0;
    for (std::size_t j = 0; j < d; ++j) gb += (m[j] - grand[j]) * (m[j] - grand[j]);
    b += static_cast<double>(rows.size()) * gb;
    mu.push_back(m);
    s.push_back(spread / static_cast<double>(rows.size()));
  }
  const double c = static_cast<double>(mu.size());
  RefQuality r;
  r.ch = (b / (c - 1.0)) / (w / (static_cast<double>(n) - c));
  double db = 0.0;
  for (std::size_t a = 0; a < mu.size(); ++a) {
    double worst = 0.0;
    for (std::size_t o = 0; o < mu.size(); ++o) {
      if (o == a) continue;
      double cd = 0.0;
      for (std::size_t j = 0; j < d; ++j) cd += (mu[a][j] - mu[o][j]) * (mu[a][j] - mu[o][j]);
      worst = std::max(worst, (s[a] + s[o]) / std::sqrt(cd));
    }
    db += worst;
  }
  r.db = db / c;
  return r;
}

double reference_silhouette(const Matrix& x, const std::vector<std::int32_t>& l,
                            const std::vector<std::int64_t>& rows) {
  double total = 0.0;
  for (auto i : rows) {
    std::map<int, std::pair<double, int>> by;  // cluster -> (distance sum, count) excluding i
    for (auto j : rows) {
      if (j == i) continue;
      auto& e = by[l[static_cast<std::size_t>(j)]];
      e.first += dist(x, static_cast<std::size_t>(i), static_cast<std::size_t>(j));
      e.second += 1;
    }
    const int own = l[static_cast<std::size_t>(i)];
    if (by.find(own) == by.end()) continue;  // singleton: 0
    const double a = by[own].first / by[own].second;
    double b = std::numeric_limits<double>::infinity();
    for (const auto& [c, e] : by)
      if (c != own) b = std::min(b, e.first / e.second);
    total += (b - a) / std::max(a, b);
  }
  return total / static_cast<double>(rows.size());
}

double choose2(double v) {
  return v * (v - 1.0) / 2.0;
}

/// Hubert & Arabie's formula with binomial coefficients (a different route than the code's).
double reference_ari(const std::vector<std::int32_t>& a, const std::vector<std::int32_t>& b) {
  std::map<std::pair<int, int>, double> cell;
  std::map<int, double> ra, rb;
  for (std::size_t i = 0; i < a.size(); ++i) {
    cell[{a[i], b[i]}] += 1;
    ra[a[i]] += 1;
    rb[b[i]] += 1;
  }
  double index = 0.0, sa = 0.0, sb = 0.0;
  for (const auto& [k, v] : cell) index += choose2(v);
  for (const auto& [k, v] : ra) sa += choose2(v);
  for (const auto& [k, v] : rb) sb += choose2(v);
  const double expected = sa * sb / choose2(static_cast<double>(a.size()));
  const double max_index = (sa + sb) / 2.0;
  return (index - expected) / (max_index - expected);
}

std::vector<std::int64_t> all_rows(std::size_t n) {
  std::vector<std::int64_t> r(n);
  for (std::size_t i = 0; i < n; ++i) r[i] = static_cast<std::int64_t>(i);
  return r;
}

using icp_test::same_bits;

class MetricsTest : public ::testing::Test {
 protected:
  void TearDown() override { icp::set_threads(0); }
};

TEST_F(MetricsTest, HandComputedTwoClusters) {
  // 1-D: {0, 2} and {10, 12}; means 1 and 11, grand mean 6.
  // W = 4 * 1 = 4, B = 2 * 25 + 2 * 25 = 100, CH = (100 / 1) / (4 / 2) = 50.
  // s_0 = s_1 = 1, centre distance 10: DB = (1 + 1) / 10 = 0.2.
  const Matrix x = from_rows({{0}, {2}, {10}, {12}});
  const std::vector<std::int32_t> l = {0, 0, 1, 1};
  const auto q = icp::cluster_quality(x, l, 2);
  EXPECT_EQ(q.clusters, 2);
  EXPECT_DOUBLE_EQ(q.within, 4.0);
  EXPECT_DOUBLE_EQ(q.between, 100.0);
  EXPECT_DOUBLE_EQ(q.calinski_harabasz, 50.0);
  EXPECT_DOUBLE_EQ(q.davies_bouldin, 0.2);
}

TEST_F(MetricsTest, HandComputedSilhouette) {
  // 1-D: {0, 1} and {4, 5}. Row 0: a = 1, b = (4 + 5) / 2 = 4.5 -> 3.5 / 4.5.
  // Row 1: a = 1, b = (3 + 4) / 2 = 3.5 -> 2.5 / 3.5. Rows 2, 3 mirror rows 1, 0.
  const Matrix x = from_rows({{0}, {1}, {4}, {5}});
  const std::vector<std::int32_t> l = {0, 0, 1, 1};
  const auto v = icp::silhouette_values(x, l, 2, all_rows(4));
  ASSERT_EQ(v.size(), 4u);
  EXPECT_DOUBLE_EQ(v[0], 3.5 / 4.5);
  EXPECT_DOUBLE_EQ(v[1], 2.5 / 3.5);
  EXPECT_DOUBLE_EQ(v[2], 2.5 / 3.5);
  EXPECT_DOUBLE_EQ(v[3], 3.5 / 4.5);
  const auto e = icp::silhouette(x, l, 2, all_rows(4));
  const double mean = (3.5 / 4.5 + 2.5 / 3.5) / 2.0;
  EXPECT_DOUBLE_EQ(e.mean, mean);
  const double dev = 3.5 / 4.5 - mean;  // all four deviations have this magnitude
  EXPECT_NEAR(e.standard_error, std::sqrt(4.0 * dev * dev / 3.0) / 2.0, 1e-15);
  EXPECT_EQ(e.sample, 4);
}

TEST_F(MetricsTest, ClusterQualityMatchesReferenceAcrossChunksWithEmptyCluster) {
  // 9000 rows span three reduction chunks; label 3 of 0..5 is never used.
  const std::size_t n = 9000;
  const Matrix x = random_matrix(n, 5, 11, 100.0);
  auto l = random_labels(n, 5, 12);
  for (auto& v : l)
    if (v == 3) v = 5;
  Matrix y = x;
  for (std::size_t i = 0; i < n; ++i) y(i, 0) += static_cast<float>(l[i]);  // some structure
  const auto q = icp::cluster_quality(y, l, 6);
  const auto r = reference_quality(y, l);
  EXPECT_EQ(q.clusters, 5);
  EXPECT_NEAR(q.calinski_harabasz, r.ch, 1e-9 * r.ch);
  EXPECT_NEAR(q.davies_bouldin, r.db, 1e-9 * r.db);
}

TEST_F(MetricsTest, SilhouetteMatchesReference) {
  const std::size_t n = 300;
  Matrix x = random_matrix(n, 3, 21);
  const auto l = random_labels(n, 4, 22);
  for (std::size_t i = 0; i < n; ++i) x(i, 1) += 2.0f * static_cast<float>(l[i]);
  const auto rows = icp::sample_rows(static_cast<std::int64_t>(n), 120, 5);
  const auto e = icp::silhouette(x, l, 4, rows);
  EXPECT_NEAR(e.mean, reference_silhouette(x, l, rows), 1e-12);
  EXPECT_EQ(e.sample, 120);
  const auto full = icp::silhouette(x, l, 4, all_rows(n));
  EXPECT_NEAR(full.mean, reference_silhouette(x, l, all_rows(n)), 1e-12);
  const auto sampled = icp::silhouette_sampled(x, l, 4, 120, 5);
  EXPECT_TRUE(same_bits(sampled.mean, e.mean));
}

TEST_F(MetricsTest, SampleRowsDistinctSeededAndComplete) {
  const auto a = icp::sample_rows(1000, 100, 3);
  const auto b = icp::sample_rows(1000, 100, 3);
  const auto c = icp::sample_rows(1000, 100, 4);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  ASSERT_EQ(a.size(), 100u);
  std::set<std::int64_t> s(a.begin(), a.end());
  EXPECT_EQ(s.size(), 100u);
  EXPECT_GE(*s.begin(), 0);
  EXPECT_LT(*s.rbegin(), 1000);
  EXPECT_EQ(icp::sample_rows(5, 10, 1), (std::vector<std::int64_t>{0, 1, 2, 3, 4}));
}

TEST_F(MetricsTest, SameBitsAtAnyThreadCount) {
  const std::size_t n = 10000;
  Matrix x = random_matrix(n, 4, 31, 3.0);
  const auto l = random_labels(n, 7, 32);
  for (std::size_t i = 0; i < n; ++i) x(i, 2) += static_cast<float>(l[i]);
  icp::set_threads(1);
  const auto q1 = icp::cluster_quality(x, l, 7);
  const auto s1 = icp::silhouette_sampled(x, l, 7, 500, 9);
  icp::set_threads(2);
  const auto q2 = icp::cluster_quality(x, l, 7);
  const auto s2 = icp::silhouette_sampled(x, l, 7, 500, 9);
  EXPECT_TRUE(same_bits(q1.calinski_harabasz, q2.calinski_harabasz));
  EXPECT_TRUE(same_bits(q1.davies_bouldin, q2.davies_bouldin));
  EXPECT_TRUE(same_bits(q1.within, q2.within));
  EXPECT_TRUE(same_bits(s1.mean, s2.mean));
  EXPECT_TRUE(same_bits(s1.standard_error, s2.standard_error));
}

TEST_F(MetricsTest, UndefinedCasesAndErrors) {
  const Matrix x = from_rows({{0}, {1}, {2}});
  const std::vector<std::int32_t> one = {0, 0, 0};
  const auto q = icp::cluster_quality(x, one, 2);
  EXPECT_TRUE(std::isnan(q.calinski_harabasz));
  EXPECT_TRUE(std::isnan(q.davies_bouldin));
  EXPECT_THROW(icp::silhouette_values(x, one, 1, all_rows(3)), icp::Error);
  EXPECT_TRUE(std::isnan(icp::silhouette(x, one, 1, all_rows(3)).mean));
  const std::vector<std::int32_t> each = {0, 1, 2};  // n clusters: undefined too
  EXPECT_TRUE(std::isnan(icp::cluster_quality(x, each, 3).calinski_harabasz));
  EXPECT_TRUE(std::isnan(icp::silhouette(x, each, 3, all_rows(3)).mean));
  const std::vector<std::int32_t> bad = {0, 1, 2};
  EXPECT_THROW(icp::cluster_quality(x, bad, 2), icp::Error);
  EXPECT_THROW(icp::cluster_quality(x, std::vector<std::int32_t>{0, 1}, 2), icp::Error);
  EXPECT_THROW(icp::silhouette_values(x, std::vector<std::int32_t>{0, 1, 1}, 2,
                                      std::vector<std::int64_t>{0, 3}),
               icp::Error);
  EXPECT_THROW(
      icp::adjusted_rand_index(std::vector<std::int32_t>{0, 1}, std::vector<std::int32_t>{0}),
      icp::Error);
  EXPECT_THROW(
      icp::adjusted_rand_index(std::vector<std::int32_t>{0, -1}, std::vector<std::int32_t>{0, 1}),
      icp::Error);
}

TEST_F(MetricsTest, AdjustedRandIndex) {
  const std::vector<std::int32_t> a = {0, 0, 1, 1, 2, 2};
  EXPECT_DOUBLE_EQ(icp::adjusted_rand_index(a, a), 1.0);
  EXPECT_DOUBLE_EQ(icp::adjusted_rand_index(a, std::vector<std::int32_t>{7, 7, 3, 3, 9, 9}), 1.0);
  // Hand count: a = {0,0,1,1}, b = {0,1,0,1}: no pair together in both; sum C(n_ij,2) = 0,
  // sum C(a,2) = sum C(b,2) = 2, expected = 2 * 2 / 6 = 2/3, max = 2:
  // ARI = (0 - 2/3) / (2 - 2/3) = -0.5.
  EXPECT_DOUBLE_EQ(icp::adjusted_rand_index(std::vector<std::int32_t>{0, 0, 1, 1},
                                            std::vector<std::int32_t>{0, 1, 0, 1}),
                   -0.5);
  for (std::uint64_t seed = 1; seed <= 3; ++seed) {
    const auto x = random_labels(500, 5, seed);
    auto y = random_labels(500, 3, seed + 100);
    for (std::size_t i = 0; i < 300; ++i) y[i] = x[i] % 3;
    EXPECT_NEAR(icp::adjusted_rand_index(x, y), reference_ari(x, y), 1e-12);
    EXPECT_NEAR(icp::adjusted_rand_index(y, x), reference_ari(x, y), 1e-12);
  }
  // Sparse, huge label values take the map path and must agree with the dense one.
  std::vector<std::int32_t> big = {0, 0, 1, 1, 2, 2};
  for (auto& v : big) v = v * 1000000 + 5;
  EXPECT_DOUBLE_EQ(icp::adjusted_rand_index(big, std::vector<std::int32_t>{0, 0, 0, 1, 1, 1}),
                   icp::adjusted_rand_index(a, std::vector<std::int32_t>{0, 0, 0, 1, 1, 1}));
}

// ---- scikit-learn's numbers, stored by tests/data/sklearn_metrics.py ----

nlohmann::json load_sklearn() {
  std::ifstream in(std::string(ICP_SOURCE_DIR) + "/tests/data/sklearn_metrics.json");
  if (!in) throw std::runtime_error("tests/data/sklearn_metrics.json is missing");
  return nlohmann::json::parse(in);
}

TEST_F(MetricsTest, MatchesScikitLearnStoredValues) {
  const auto doc = load_sklearn();
  ASSERT_EQ(doc["cases"].size(), 3u);
  for (const auto& c : doc["cases"]) {
    SCOPED_TRACE(c["name"].get<std::string>());
    const auto n = c["rows"].get<std::size_t>(), d = c["cols"].get<std::size_t>();
    Matrix x(n, d);
    const auto values = c["x"].get<std::vector<double>>();
    for (std::size_t e = 0; e < n * d; ++e) x.storage()[e] = static_cast<float>(values[e]);
    const auto l = c["labels"].get<std::vector<std::int32_t>>();
    const int k = c["k"].get<int>();
    const auto q = icp::cluster_quality(x, l, k);
    const double ch = c["calinski_harabasz"], db = c["davies_bouldin"];
    EXPECT_NEAR(q.calinski_harabasz, ch, 1e-10 * ch);
    EXPECT_NEAR(q.davies_bouldin, db, 1e-10 * db);
    EXPECT_NEAR(icp::silhouette(x, l, k, all_rows(n)).mean, c["silhouette"].get<double>(), 1e-10);
    const auto rows = c["sample_rows"].get<std::vector<std::int64_t>>();
    EXPECT_NEAR(icp::silhouette(x, l, k, rows).mean, c["silhouette_sampled"].get<double>(), 1e-10);
  }
  for (const auto& p : doc["ari"]) {
    const auto a = p["a"].get<std::vector<std::int32_t>>();
    const auto b = p["b"].get<std::vector<std::int32_t>>();
    EXPECT_NEAR(icp::adjusted_rand_index(a, b), p["ari"].get<double>(), 1e-12);
  }
}

}  // namespace
