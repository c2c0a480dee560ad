// Sample weights: a row of weight w must act as w copies of itself, every exact algorithm must
// still give Lloyd's bits, and the result must not depend on threads or processes.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "icp/error.hpp"
#include "icp/hdf5.hpp"
#include "icp/kmeans.hpp"
#include "icp/parallel.hpp"
#include "test_bits.hpp"
#include "test_support.hpp"

namespace {

icp::Matrix cloud(std::size_t n, std::size_t d, unsigned seed) {
  icp::Matrix x(n, d);
  icp_test::Lcg rng{seed};
  auto next = [&] { return rng.next(); };
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < d; ++j)
      x(i, j) =
          static_cast<float>(50.0 + 3.0 * static_cast<double>((i % 5) * (j + 2) % 7) + next());
  return x;
}

std::vector<float> small_integer_weights(std::size_t n) {
  std::vector<float> w(n);
  for (std::size_t i = 0; i < n; ++i) w[i] = static_cast<float>(i % 4);  // 0, 1, 2, 3
  return w;
}

using icp_test::same_bits;

}  // namespace

TEST(KMeansWeights, IntegerWeightsActAsRepeatedRows) {
  const icp::Matrix x = cloud(3000, 4, 5);
  const std::vector<float> w = small_integer_weights(x.rows());
  // The same data with row i repeated w_i times.
  std::vector<float> rows;
  for (std::size_t i = 0; i < x.rows(); ++i)
    for (int c = 0; c < static_cast<int>(w[i]); ++c)
      rows.insert(rows.end(), x.row(i), x.row(i) + 4);
  icp::Matrix repeated(rows.size() / 4, 4);
  repeated.storage().assign(rows.begin(), rows.end());

  icp::KMeansOptions o;
  o.k = 6;
  o.tol = 0.0;
  o.max_iter = 15;
  o.init = icp::KMeansInit::file;  // the same start for both (seeding ignores weights)
  o.initial_centroids = icp::Matrix(6, 4);
  for (std::size_t j = 0; j < 6; ++j) std::copy_n(x.row(j * 7 + 1), 4, o.initial_centroids.row(j));
  const icp::KMeansResult plain = icp::kmeans_fit(repeated.view(), o);
  icp::KMeansOptions weighted = o;
  weighted.sample_weight = w;
  const icp::KMeansResult with = icp::kmeans_fit(x.view(), weighted);

  ASSERT_EQ(with.history.size(), plain.history.size());
  for (std::size_t t = 0; t < plain.centroids.storage().size(); ++t)
    EXPECT_NEAR(with.centroids.storage()[t], plain.centroids.storage()[t], 1e-4) << t;
  EXPECT_NEAR(with.inertia, plain.inertia, 1e-9 * plain.inertia);
  // Labels agree row for row with the repeated copies.
  std::size_t r = 0;
  for (std::size_t i = 0; i < x.rows(); ++i) {
    for (int c = 0; c < static_cast<int>(w[i]); ++c, ++r)
      ASSERT_EQ(with.assignment[i], plain.assignment[r]) << "row " << i;
  }
}

TEST(KMeansWeights, ExactAlgorithmsAndThreadCountsGiveTheSameBits) {
  const icp::Matrix x = cloud(9000, 5, 7);
  icp::KMeansOptions o;
  o.k = 12;
  o.n_init = 2;
  o.sample_weight = small_integer_weights(x.rows());
  for (std::size_t i = 0; i < x.rows(); i += 11) o.sample_weight[i] = 0.37f;  // not only integers
  icp::set_threads(1);
  const icp::KMeansResult lloyd1 = icp::kmeans_fit(x.view(), o);
  icp::set_threads(2);
  const icp::KMeansResult lloyd2 = icp::kmeans_fit(x.view(), o);
  EXPECT_EQ(lloyd1.centroids.storage(), lloyd2.centroids.storage());
  EXPECT_TRUE(same_bits(lloyd1.inertia, lloyd2.inertia));
  for (const auto algorithm : {icp::KMeansAlgorithm::hamerly, icp::KMeansAlgorithm::yinyang}) {
    icp::KMeansOptions a = o;
    a.algorithm = algorithm;
    const icp::KMeansResult r = icp::kmeans_fit(x.view(), a);
    EXPECT_EQ(r.centroids.storage(), lloyd2.centroids.storage()) << icp::to_string(algorithm);
    EXPECT_EQ(r.assignment, lloyd2.assignment) << icp::to_string(algorithm);
    EXPECT_TRUE(same_bits(r.inertia, lloyd2.inertia)) << icp::to_string(algorithm);
    ASSERT_EQ(r.history.size(), lloyd2.history.size());
    for (std::size_t t = 0; t < r.history.size(); ++t)
      EXPECT_TRUE(same_bits(r.history[t].inertia, lloyd2.history[t].inertia)) << t;
  }
  icp::set_threads(0);
  // The weights matter: unweighted centres differ.
  icp::KMeansOptions none = o;
  none.sample_weight.clear();
  EXPECT_NE(icp::kmeans_fit(x.view(), none).centroids.storage(), lloyd2.centroids.storage());
}

TEST(KMeansWeights, ZeroWeightRowsDoNotMoveTheCentres) {
  // Far outliers of weight 0: the weighted fit equals the fit without them.
  const icp::Matrix core = cloud(2000, 3, 9);
  icp::Matrix x(2100, 3);
  std::copy(core.storage().begin(), core.storage().end(), x.storage().begin());
  for (std::size_t i = 2000; i < 2100; ++i)
    for (std::size_t j = 0; j < 3; ++j) x(i, j) = 1e4f + static_cast<float>(i + j);
  icp::KMeansOptions o;
  o.k = 5;
  o.init = icp::KMeansInit::file;
  o.initial_centroids = icp::Matrix(5, 3);
  for (std::size_t j = 0; j < 5; ++j) std::copy_n(core.row(j * 3), 3, o.initial_centroids.row(j));
  const icp::KMeansResult without = icp::kmeans_fit(core.view(), o);
  icp::KMeansOptions weighted = o;
  weighted.sample_weight.assign(2100, 1.0f);
  std::fill(weighted.sample_weight.begin() + 2000, weighted.sample_weight.end(), 0.0f);
  const icp::KMeansResult with = icp::kmeans_fit(x.view(), weighted);
  for (std::size_t t = 0; t < without.centroids.storage().size(); ++t)
    EXPECT_NEAR(with.centroids.storage()[t], without.centroids.storage()[t], 1e-3) << t;
  EXPECT_NEAR(with.inertia, without.inertia, 1e-6 * without.inertia);
}

TEST(KMeansWeights, BadWeightsAreRejected) {
  const icp::Matrix x = cloud(100, 2, 1);
  icp::KMeansOptions o;
  o.k = 3;
  auto message = [&](std::vector<float> w, icp::KMeansAlgorithm a = icp::KMeansAlgorithm::lloyd) {
    icp::KMeansOptions bad = o;
    bad.sample_weight = std::move(w);
    bad.algorithm = a;
    try {
      (void)icp::kmeans_fit(x.view(), bad);
    } catch (const icp::Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message(std::vector<float>(99, 1.0f)).find("99 values for 100 rows"),
            std::string::npos);
  std::vector<float> negative(100, 1.0f);
  negative[41] = -1.0f;
  EXPECT_NE(message(negative).find("row 42 is -1"), std::string::npos) << message(negative);
  std::vector<float> nan(100, 1.0f);
  nan[3] = std::nanf("");
  EXPECT_NE(message(nan).find("row 4"), std::string::npos);
  EXPECT_NE(message(std::vector<float>(100, 0.0f)).find("every sample_weight is 0"),
            std::string::npos);
  EXPECT_NE(
      message(std::vector<float>(100, 1.0f), icp::KMeansAlgorithm::minibatch).find("minibatch"),
      std::string::npos);
}

// ---- The job file: [kmeans] weight_column -------------------------------------------------------

TEST(KMeansWeights, WeightColumnChangesTheSegmentsAndBadCellsNameTheirLine) {
  const std::filesystem::path dir = icp_test::fresh_dir("weights_cli");
  const std::string icp = ICP_BINARY;
  const auto plain_job = icp_test::write_demo_job(dir);
  icp_test::ShellResult r = icp_test::shell(icp + " run -q -c " + plain_job.string() +
                                            " --output " + (dir / "plain.h5").string());
  ASSERT_EQ(r.code, 0) << r.out;
  const auto weighted_job = icp_test::write_demo_job(
      dir, {{"n_init = 1", "n_init = 1\nweight_column = \"product_signups_90d\""}});
  r = icp_test::shell(icp + " run -q -c " + weighted_job.string() + " --output " +
                      (dir / "weighted.h5").string());
  ASSERT_EQ(r.code, 0) << r.out;
  const icp::h5::Reader plain((dir / "plain.h5").string());
  const icp::h5::Reader weighted((dir / "weighted.h5").string());
  EXPECT_NE(plain.read<float>("/segments/centroids"), weighted.read<float>("/segments/centroids"));
  EXPECT_NE(weighted.attr_string("/", "config").find("weight_column = \"product_signups_90d\""),
            std::string::npos);

  // employees has empty cells: the first one is named by its line.
  const auto missing_job =
      icp_test::write_demo_job(dir, {{"n_init = 1", "n_init = 1\nweight_column = \"employees\""}});
  r = icp_test::shell(icp + " run -q -c " + missing_job.string() + " --output " +
                      (dir / "never.h5").string());
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("accounts.csv:"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("employees"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("missing weight"), std::string::npos) << r.out;
  EXPECT_FALSE(std::filesystem::exists(dir / "never.h5"));
  std::filesystem::remove_all(dir);
}
