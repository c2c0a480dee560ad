// kmeans_fit_streamed against kmeans_fit on the same rows: every bit of the result, for any
// block size, init, weights, centring and empty-cluster relocation.

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "icp/error.hpp"
#include "icp/kmeans.hpp"
#include "icp/parallel.hpp"
#include "test_bits.hpp"
#include "test_blobs.hpp"
#include "test_tables.hpp"

namespace {

using icp_test::same_bits;

using icp_test::blobs;

/// `m` read in blocks of `block` rows; counts scans and fetched rows.
struct Blocks {
  const icp::Matrix& m;
  std::size_t block;
  int scans = 0;
  std::size_t fetched = 0;
  icp::RowBlocks view() { return icp_test::row_blocks_of(m, block, &scans, &fetched); }
};

void expect_same_fit(const icp::KMeansResult& a, const icp::KMeansResult& b,
                     const std::string& what) {
  EXPECT_TRUE(same_bits(a.centroids, b.centroids)) << what;
  EXPECT_TRUE(same_bits(a.assignment, b.assignment)) << what;
  EXPECT_TRUE(same_bits(a.distance, b.distance)) << what;
  EXPECT_EQ(a.sizes, b.sizes) << what;
  EXPECT_TRUE(same_bits(a.inertia, b.inertia)) << what << ": " << a.inertia << " " << b.inertia;
  EXPECT_EQ(a.iterations, b.iterations) << what;
  EXPECT_EQ(a.converged, b.converged) << what;
  ASSERT_EQ(a.history.size(), b.history.size()) << what;
  for (std::size_t i = 0; i < a.history.size(); ++i) {
    EXPECT_TRUE(same_bits(a.history[i].inertia, b.history[i].inertia)) << what << " step " << i;
    EXPECT_TRUE(same_bits(a.history[i].shift, b.history[i].shift)) << what << " step " << i;
    EXPECT_EQ(a.history[i].changed, b.history[i].changed) << what << " step " << i;
    EXPECT_EQ(a.history[i].relocated, b.history[i].relocated) << what << " step " << i;
    EXPECT_EQ(a.history[i].restart, b.history[i].restart) << what << " step " << i;
  }
}

constexpr std::size_t kChunk = icp::kReduceChunkRows;

TEST(KMeansStreamed, SameBitsAsInMemoryForAnyBlockSize) {
  const icp::Matrix x = blobs(30001, 7, 9, 5.0, 1.0, 3);
  for (const auto init : {icp::KMeansInit::kmeanspp, icp::KMeansInit::random}) {
    icp::KMeansOptions o;
    o.k = 8;
    o.seed = 11;
    o.init = init;
    o.n_init = 2;
    const icp::KMeansResult whole = icp::kmeans_fit(x.view(), o);  // automatic: Hamerly here
    ASSERT_GT(whole.iterations, 2);
    for (const std::size_t block : {kChunk, 3 * kChunk, 8 * kChunk}) {
      Blocks src{x, block};
      int scans = 0;
      const icp::KMeansResult streamed = icp::kmeans_fit_streamed(src.view(), o, &scans);
      expect_same_fit(whole, streamed,
                      std::string(icp::to_string(init)) + ", blocks of " + std::to_string(block));
      EXPECT_EQ(scans, src.scans);
      // Moments, then per restart: seeding, one scan per step, the final labels.
      int expected = 1;
      for (int r = 0; r < o.n_init; ++r) {
        const int seeding = init == icp::KMeansInit::kmeanspp ? 2 * o.k - 1 : 0;
        (void)r;
        expected += seeding + 1;
      }
      EXPECT_GE(scans, expected + whole.iterations);
    }
  }
}

TEST(KMeansStreamed, CentresOffsetDataAndTakesWeights) {
  // Columns far from zero: the blocks are centred as they arrive, as kmeans_fit centres a copy.
  const icp::Matrix x = blobs(20000, 5, 6, 3.0, 0.7, 8, 1.0e4);
  std::vector<float> w(x.rows());
  for (std::size_t i = 0; i < w.size(); ++i) w[i] = static_cast<float>(1 + i % 5) * 0.5f;
  icp::KMeansOptions o;
  o.k = 6;
  o.seed = 5;
  for (const bool weighted : {false, true}) {
    o.sample_weight = weighted ? w : std::vector<float>{};
    const icp::KMeansResult whole = icp::kmeans_fit(x.view(), o);
    Blocks src{x, 2 * kChunk};
    int scans = 0;
    const icp::KMeansResult streamed = icp::kmeans_fit_streamed(src.view(), o, &scans);
    expect_same_fit(whole, streamed, weighted ? "offset, weighted" : "offset");
  }
}

TEST(KMeansStreamed, RelocatesEmptyClustersAsTheWholeFitDoes) {
  // init = file with three centres far from every row: they empty on the first step and take the
  // farthest rows. The farthest 300 rows weigh nothing, so the first rows fetched cannot fill
  // them and the search has to widen.
  icp::Matrix x = blobs(12000, 4, 3, 2.0, 0.5, 21);
  std::vector<float> w(x.rows(), 1.0f);
  for (std::size_t i = 0; i < 300; ++i) {
    for (std::size_t t = 0; t < x.cols(); ++t) x(i * 37, t) += 40.0f + static_cast<float>(i % 7);
    w[i * 37] = 0.0f;
  }
  icp::KMeansOptions o;
  o.k = 6;
  o.init = icp::KMeansInit::file;
  o.initial_centroids = icp::Matrix(6, 4);
  for (std::size_t j = 0; j < 6; ++j)
    for (std::size_t t = 0; t < 4; ++t)
      o.initial_centroids(j, t) = j < 3 ? x(j, t) : 1000.0f * static_cast<float>(j);
  for (const bool weighted : {false, true}) {
    o.sample_weight = weighted ? w : std::vector<float>{};
    const icp::KMeansResult whole = icp::kmeans_fit(x.view(), o);
    ASSERT_GE(whole.history.front().relocated, 3) << "the test needs empty clusters";
    Blocks src{x, kChunk};
    const icp::KMeansResult streamed = icp::kmeans_fit_streamed(src.view(), o);
    expect_same_fit(whole, streamed, weighted ? "relocation past weightless rows" : "relocation");
    if (weighted) {
      EXPECT_GT(src.fetched, 4u * 3u + 64u + 300u);  // it widened
    }
  }
}

TEST(KMeansStreamed, RejectsBadBlocksAndUnstreamedOptions) {
  const icp::Matrix x = blobs(9000, 3, 3, 2.0, 0.5, 4);
  icp::KMeansOptions o;
  o.k = 3;
  Blocks odd{x, 1000};  // not a multiple of kReduceChunkRows
  EXPECT_THROW((void)icp::kmeans_fit_streamed(odd.view(), o), icp::Error);
  Blocks ok{x, kChunk};
  icp::KMeansOptions mb = o;
  mb.algorithm = icp::KMeansAlgorithm::minibatch;
  EXPECT_THROW((void)icp::kmeans_fit_streamed(ok.view(), mb), icp::Error);
  icp::KMeansOptions par = o;
  par.init = icp::KMeansInit::kmeans_parallel;
  EXPECT_THROW((void)icp::kmeans_fit_streamed(ok.view(), par), icp::Error);
  icp::Matrix bad = x;
  bad(5000, 1) = std::nanf("");
  Blocks nan_rows{bad, kChunk};
  try {
    (void)icp::kmeans_fit_streamed(nan_rows.view(), o);
    ADD_FAILURE() << "a NaN must throw";
  } catch (const icp::Error& e) {
    EXPECT_NE(std::string(e.what()).find("row 5001, column 2"), std::string::npos) << e.what();
  }
}

}  // namespace
