// Score kernel against its scalar definition, and the bounded algorithms against Lloyd.

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "../src/kmeans_internal.hpp"
#include "icp/kmeans.hpp"
#include "icp/parallel.hpp"
#include "test_bits.hpp"
#include "test_blobs.hpp"

namespace {

namespace kd = icp::kmeans_detail;

using icp_test::same_bits;

icp::Matrix uniform(std::size_t n, std::size_t d, std::uint64_t seed, float lo = -1.0f,
                    float hi = 1.0f) {
  icp::Matrix m(n, d);
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> u(lo, hi);
  for (float& v : m.storage()) v = u(rng);
  return m;
}

using icp_test::blobs;

// --- Score kernel -----------------------------------------------------------------------------

TEST(KMeansScoreKernel, BlockedScoresEqualScalarFmaChainBitwise) {
  // Row counts that are not multiples of any tile height; k around the panel width and around
  // one vector of the last panel (a last panel with <= kScoreLanes live centres skips a vector).
  const std::size_t widths[] = {1, 3, 16, 33, 64};
  const std::size_t ks[] = {1,
                            7,
                            kd::kScoreLanes,
                            kd::kScoreLanes + 1,
                            kd::kPanelWidth,
                            kd::kPanelWidth + 1,
                            kd::kPanelWidth + kd::kScoreLanes,
                            70};
  for (const std::size_t d : widths) {
    for (const std::size_t k : ks) {
      const std::size_t rows = 29;
      const icp::Matrix x = uniform(rows, d, 100 + d, -3.0f, 3.0f);
      const icp::Matrix c = uniform(k, d, 200 + k, -3.0f, 3.0f);
      const kd::PackedCentres p = kd::pack_centres(c);
      const std::size_t ldo = p.panels * kd::kPanelWidth;
      const float untouched = 12345.0f;
      std::vector<float> out(rows * ldo, untouched);
      kd::score_rows(x.data(), rows, d, p, out.data(), ldo);
      const std::size_t written = (k + kd::kScoreLanes - 1) / kd::kScoreLanes * kd::kScoreLanes;
      for (std::size_t i = 0; i < rows; ++i) {
        for (std::size_t j = 0; j < k; ++j) {
          // Scalar definition written out here: sequential fma from zero, norm - 2 dot.
          float dot = 0.0f;
          for (std::size_t t = 0; t < d; ++t) dot = std::fma(x(i, t), c(j, t), dot);
          double norm = 0.0;
          for (std::size_t t = 0; t < d; ++t) norm += static_cast<double>(c(j, t)) * c(j, t);
          const float want = static_cast<float>(norm) - 2.0f * dot;
          const float got = out[i * ldo + j];
          ASSERT_EQ(std::memcmp(&got, &want, sizeof got), 0)
              << "d=" << d << " k=" << k << " i=" << i << " j=" << j << " " << got << " vs "
              << want;
        }
        for (std::size_t j = k; j < written; ++j) EXPECT_TRUE(std::isinf(out[i * ldo + j]));
        for (std::size_t j = written; j < ldo; ++j) EXPECT_EQ(out[i * ldo + j], untouched);
      }
    }
  }
}

TEST(KMeansScoreKernel, ScoreOfAGatheredRowDoesNotDependOnItsBlock) {
  const std::size_t d = 13;
  const std::size_t k = 41;
  const icp::Matrix x = uniform(50, d, 7);
  const icp::Matrix c = uniform(k, d, 8);
  const kd::PackedCentres p = kd::pack_centres(c);
  const std::size_t ldo = p.panels * kd::kPanelWidth;
  std::vector<float> all(50 * ldo);
  std::vector<float> one(ldo);
  kd::score_rows(x.data(), 50, d, p, all.data(), ldo);
  for (std::size_t i = 0; i < 50; ++i) {
    kd::score_rows(x.row(i), 1, d, p, one.data(), ldo);
    ASSERT_EQ(std::memcmp(one.data(), all.data() + i * ldo, ldo * sizeof(float)), 0) << i;
    for (std::size_t j = 0; j < k; ++j) {
      const float s = kd::score_one(x.row(i), c.row(j), p.norm[j], d);
      ASSERT_EQ(std::memcmp(&s, &one[j], sizeof s), 0) << i << " " << j;
    }
  }
}

TEST(KMeansScoreKernel, FusedArgminTiesGoToLowestIndexAcrossPanels) {
  // Row 0 at the origin; centres lo and hi both at distance 1, the rest far away. Pairs put the
  // tie in the same lane of different panels, in different halves and in the same vector.
  const std::size_t k = 3 * kd::kPanelWidth + 5;
  const std::size_t w = kd::kPanelWidth;
  const std::vector<std::pair<std::size_t, std::size_t>> pairs = {
      {3, 3 + w}, {1, 2}, {0, k - 1}, {w - 1, w}, {kd::kScoreLanes, 2 * w + 1}, {w + 2, 2 * w + 2}};
  for (const auto& [lo, hi] : pairs) {
    icp::Matrix x(9, 2, 0.0f);  // 9 identical rows: a full tile plus single-row tails
    icp::Matrix c(k, 2);
    for (std::size_t j = 0; j < k; ++j) c(j, 1) = 40.0f + static_cast<float>(j);
    c(lo, 1) = 0.0f;
    c(lo, 0) = 1.0f;
    c(hi, 1) = 0.0f;
    c(hi, 0) = -1.0f;
    const kd::PackedCentres p = kd::pack_centres(c);
    std::vector<std::int32_t> out(9, -1);
    kd::argmin_rows(x.data(), 9, 2, p, out.data());
    for (const std::int32_t o : out) EXPECT_EQ(o, static_cast<std::int32_t>(lo)) << lo << " " << hi;
  }
}

TEST(KMeansScoreKernel, FusedArgminEqualsScanOfScores) {
  for (const std::size_t k : {std::size_t{1}, std::size_t{9}, std::size_t{64}, std::size_t{100}}) {
    const std::size_t d = 6;
    // Values on a coarse grid make exact score ties common.
    icp::Matrix x(37, d);
    icp::Matrix c(k, d);
    std::mt19937_64 rng(k);
    std::uniform_int_distribution<int> g(-2, 2);
    for (float& v : x.storage()) v = static_cast<float>(g(rng));
    for (float& v : c.storage()) v = static_cast<float>(g(rng));
    const kd::PackedCentres p = kd::pack_centres(c);
    std::vector<std::int32_t> fused(37);
    kd::argmin_rows(x.data(), 37, d, p, fused.data());
    for (std::size_t i = 0; i < 37; ++i) {
      std::size_t best = 0;
      float low = kd::score_one(x.row(i), c.row(0), p.norm[0], d);
      for (std::size_t j = 1; j < k; ++j) {
        const float s = kd::score_one(x.row(i), c.row(j), p.norm[j], d);
        if (s < low) {
          low = s;
          best = j;
        }
      }
      EXPECT_EQ(fused[i], static_cast<std::int32_t>(best)) << "k=" << k << " row " << i;
    }
  }
}

// --- Exact algorithms equal Lloyd -------------------------------------------------------------

struct Case {
  const char* name;
  icp::Matrix x;
  int k;
};

std::vector<Case> cases() {
  std::vector<Case> out;
  out.push_back({"blobs k=25", blobs(3000, 8, 25, 10.0, 1.0, 1), 25});
  out.push_back({"uniform k=40 (many changes)", uniform(2500, 5, 2), 40});
  out.push_back({"blobs k=70 d=32", blobs(6000, 32, 70, 4.0, 1.0, 3), 70});
  out.push_back({"d=1 k=12", uniform(900, 1, 4), 12});
  out.push_back({"offset 1e6", blobs(1500, 4, 15, 5.0, 1.0, 5, 1e6), 15});
  icp::Matrix dup(400, 3);
  for (std::size_t i = 0; i < 400; ++i) {
    for (std::size_t t = 0; t < 3; ++t) dup(i, t) = static_cast<float>((i % 9) * (t + 1));
  }
  out.push_back({"9 distinct points, k=12", dup, 12});
  out.push_back({"n == k", uniform(30, 4, 6), 30});
  // Hamerly keeps a runner-up: k = 2 has no third centre, k = 3 exactly one; above 256 centres
  // the pair drifts are replaced by per-centre ones.
  out.push_back({"blobs k=2", blobs(2000, 6, 4, 3.0, 1.0, 7), 2});
  out.push_back({"blobs k=3", blobs(2000, 6, 5, 3.0, 1.0, 8), 3});
  out.push_back({"blobs k=300 d=8", blobs(12000, 8, 300, 6.0, 1.0, 9), 300});
  return out;
}

void expect_same_fit(const icp::KMeansResult& a, const icp::KMeansResult& b, const char* what) {
  EXPECT_TRUE(same_bits(a.assignment, b.assignment)) << what;
  EXPECT_TRUE(same_bits(a.centroids.storage(), b.centroids.storage())) << what;
  EXPECT_TRUE(same_bits(a.distance, b.distance)) << what;
  EXPECT_TRUE(same_bits(a.inertia, b.inertia)) << what;
  EXPECT_EQ(a.iterations, b.iterations) << what;
  ASSERT_EQ(a.history.size(), b.history.size()) << what;
  for (std::size_t i = 0; i < a.history.size(); ++i) {
    EXPECT_TRUE(same_bits(a.history[i].inertia, b.history[i].inertia)) << what << " it " << i;
    EXPECT_TRUE(same_bits(a.history[i].shift, b.history[i].shift)) << what << " it " << i;
    EXPECT_EQ(a.history[i].changed, b.history[i].changed) << what << " it " << i;
    EXPECT_EQ(a.history[i].relocated, b.history[i].relocated) << what << " it " << i;
  }
}

TEST(KMeansAlgorithms, HamerlyAndYinyangEqualLloydBitwise) {
  for (const Case& c : cases()) {
    for (const auto init : {icp::KMeansInit::kmeanspp, icp::KMeansInit::random}) {
      icp::KMeansOptions o;
      o.k = c.k;
      o.seed = 9;
      o.init = init;
      o.tol = 0.0;
      o.max_iter = 40;
      o.algorithm = icp::KMeansAlgorithm::lloyd;
      const auto lloyd = icp::kmeans_fit(c.x, o);
      o.algorithm = icp::KMeansAlgorithm::hamerly;
      const auto hamerly = icp::kmeans_fit(c.x, o);
      o.algorithm = icp::KMeansAlgorithm::yinyang;
      const auto yinyang = icp::kmeans_fit(c.x, o);
      SCOPED_TRACE(c.name);
      expect_same_fit(lloyd, hamerly, "hamerly");
      expect_same_fit(lloyd, yinyang, "yinyang");
    }
  }
}

TEST(KMeansAlgorithms, RelocationRestartsBoundsAndStillEqualsLloyd) {
  // Random init on heavily duplicated data leaves clusters empty, so relocation runs.
  icp::Matrix x(600, 2);
  for (std::size_t i = 0; i < 600; ++i) {
    x(i, 0) = static_cast<float>(i % 5 == 0 ? 100.0 : static_cast<double>(i % 3));
    x(i, 1) = static_cast<float>(i % 7 == 0 ? -50.0 : 0.0);
  }
  icp::KMeansOptions o;
  o.k = 11;
  o.seed = 3;
  o.init = icp::KMeansInit::random;
  o.tol = 0.0;
  o.max_iter = 10;
  o.algorithm = icp::KMeansAlgorithm::lloyd;
  const auto lloyd = icp::kmeans_fit(x, o);
  std::int64_t relocated = 0;
  for (const auto& h : lloyd.history) relocated += h.relocated;
  EXPECT_GT(relocated, 0);
  for (const auto alg : {icp::KMeansAlgorithm::hamerly, icp::KMeansAlgorithm::yinyang}) {
    o.algorithm = alg;
    expect_same_fit(lloyd, icp::kmeans_fit(x, o), icp::to_string(alg));
  }
}

TEST(KMeansAlgorithms, BoundedOneAndTwoThreadsBitwiseIdentical) {
  const icp::Matrix x = blobs(3 * icp::kReduceChunkRows + 77, 6, 30, 6.0, 1.0, 12);
  for (const auto alg : {icp::KMeansAlgorithm::hamerly, icp::KMeansAlgorithm::yinyang}) {
    icp::KMeansOptions o;
    o.k = 30;
    o.seed = 4;
    o.tol = 0.0;
    o.max_iter = 12;
    o.algorithm = alg;
    icp::set_threads(1);
    const auto r1 = icp::kmeans_fit(x, o);
    icp::set_threads(2);
    const auto r2 = icp::kmeans_fit(x, o);
    icp::set_threads(0);
    expect_same_fit(r1, r2, icp::to_string(alg));
  }
}

TEST(KMeansAlgorithms, AutoPicksByKAndNames) {
  using A = icp::KMeansAlgorithm;
  // An explicit choice is kept whatever the shape.
  EXPECT_EQ(kd::resolve_algorithm(A::hamerly, 16, 256), A::hamerly);
  EXPECT_EQ(kd::resolve_algorithm(A::yinyang, 32, 4), A::yinyang);
  EXPECT_EQ(kd::resolve_algorithm(A::lloyd, 64, 64), A::lloyd);
  // The measured grid of bench_kmeans BM_Fit (stop 16), shape by shape: the faster of each
  // measured pair, except d = 16, k = 256 (a 300-iteration fit Hamerly won), which the rule gives
  // to Lloyd, and d = 32, k = 64, a tie.
  for (const std::size_t k : {8, 16, 32, 64, 256}) {
    EXPECT_EQ(kd::resolve_algorithm(A::automatic, 16, k), A::lloyd) << "d 16 k " << k;
  }
  EXPECT_EQ(kd::resolve_algorithm(A::automatic, 32, 8), A::hamerly);
  EXPECT_EQ(kd::resolve_algorithm(A::automatic, 32, 16), A::hamerly);
  EXPECT_EQ(kd::resolve_algorithm(A::automatic, 32, 32), A::hamerly);
  EXPECT_EQ(kd::resolve_algorithm(A::automatic, 32, 64), A::lloyd);
  EXPECT_EQ(kd::resolve_algorithm(A::automatic, 32, 256), A::lloyd);
  for (const std::size_t d : {48, 64}) {
    for (const std::size_t k : {8, 16, 32, 64, 256}) {
      EXPECT_EQ(kd::resolve_algorithm(A::automatic, d, k), A::hamerly) << "d " << d << " k " << k;
    }
  }
  // Yinyang is never the automatic choice.
  for (std::size_t d = 1; d <= 128; d *= 2) {
    for (std::size_t k = 1; k <= 1024; k *= 2) {
      EXPECT_NE(kd::resolve_algorithm(A::automatic, d, k), A::yinyang);
      EXPECT_NE(kd::resolve_algorithm(A::automatic, d, k), A::automatic);
    }
  }
  EXPECT_STREQ(icp::to_string(icp::KMeansAlgorithm::automatic), "auto");
  EXPECT_STREQ(icp::to_string(icp::KMeansAlgorithm::yinyang), "yinyang");
}

TEST(KMeansAlgorithms, YinyangGroupsFollowTenCentresPerGroup) {
  EXPECT_EQ(kd::yinyang_groups(5), 1u);
  EXPECT_EQ(kd::yinyang_groups(64), 6u);
  EXPECT_EQ(kd::yinyang_groups(256), 25u);
}

}  // namespace

TEST(KMeansKernels, MultiCentreDistancesEqualSquaredDistanceBitwise) {
  // k-means++ scores its candidates with squared_distances and Hamerly checks a row's centre and
  // runner-up with squared_distance_pair: both must give squared_distance's bits, at every width
  // (full 8-column steps, a tail, both) and group size (4 at a time plus 0-3 left over). They
  // take centres widened to float64 (widen_rows), as does squared_distance's second overload.
  for (const std::size_t d : {1, 3, 7, 8, 9, 16, 44, 45, 70}) {
    const icp::Matrix x = uniform(5, d, 300 + d, -50.0f, 50.0f);
    const icp::Matrix c = uniform(11, d, 400 + d, -50.0f, 50.0f);
    const std::vector<double> wide = kd::widen_rows(c.view());
    std::vector<const double*> rows;
    for (std::size_t q = 0; q < c.rows(); ++q) rows.push_back(wide.data() + q * d);
    for (std::size_t i = 0; i < x.rows(); ++i) {
      for (std::size_t q = 0; q < c.rows(); ++q) {
        ASSERT_TRUE(same_bits(kd::squared_distance(x.row(i), rows[q], d),
                              kd::squared_distance(x.row(i), c.row(q), d)))
            << "d " << d << " q " << q;
      }
      for (std::size_t count = 1; count <= rows.size(); ++count) {
        std::vector<double> got(count);
        kd::squared_distances(x.row(i), rows.data(), count, d, got.data());
        for (std::size_t q = 0; q < count; ++q) {
          ASSERT_TRUE(same_bits(got[q], kd::squared_distance(x.row(i), c.row(q), d)))
              << "d " << d << " count " << count << " q " << q;
        }
      }
      double pair[2];
      kd::squared_distance_pair(x.row(i), rows[2], rows[7], d, pair);
      ASSERT_TRUE(same_bits(pair[0], kd::squared_distance(x.row(i), c.row(2), d))) << "d " << d;
      ASSERT_TRUE(same_bits(pair[1], kd::squared_distance(x.row(i), c.row(7), d))) << "d " << d;
    }
  }
}
