// k-means|| initialisation, init from given centres (and from an HDF5 results file through a
// job), and mini-batch k-means.

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "../src/kmeans_internal.hpp"
#include "icp/config.hpp"
#include "icp/error.hpp"
#include "icp/hdf5.hpp"
#include "icp/kmeans.hpp"
#include "icp/parallel.hpp"
#include "icp/pipeline.hpp"
#include "test_bits.hpp"

namespace {

namespace fs = std::filesystem;
using icp::kmeans_detail::counter_uniform01;
using icp::kmeans_detail::init_kmeans_parallel;
using icp::kmeans_detail::init_kmeanspp;
using icp::kmeans_detail::init_kmeanspp_weighted;
using icp::kmeans_detail::init_random;

struct Planted {
  icp::Matrix x;
  std::vector<std::vector<double>> centres;
  std::vector<int> truth;
};

/// `clusters` Gaussian blobs (sd 1) with centres drawn uniformly in [-scale, scale]^d; blob c
/// has base + c * 17 % 5 * step points, so sizes differ.
Planted make_planted(int clusters, std::size_t d, int base, double scale, std::uint64_t seed) {
  Planted p;
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> where(-scale, scale);
  std::normal_distribution<double> noise(0.0, 1.0);
  std::vector<int> sizes;
  std::size_t n = 0;
  for (int c = 0; c < clusters; ++c) {
    std::vector<double> centre(d);
    for (auto& v : centre) v = where(rng);
    p.centres.push_back(centre);
    sizes.push_back(base + (c * 17 % 5) * base / 4);
    n += static_cast<std::size_t>(sizes.back());
  }
  p.x = icp::Matrix(n, d);
  std::size_t row = 0;
  for (int c = 0; c < clusters; ++c) {
    for (int i = 0; i < sizes[static_cast<std::size_t>(c)]; ++i, ++row) {
      for (std::size_t j = 0; j < d; ++j) {
        p.x(row, j) = static_cast<float>(p.centres[static_cast<std::size_t>(c)][j] + noise(rng));
      }
      p.truth.push_back(c);
    }
  }
  return p;
}

/// Plain scalar reference: sum over rows of the squared distance to the nearest centre.
double potential(const icp::Matrix& x, const icp::Matrix& c) {
  double total = 0.0;
  for (std::size_t i = 0; i < x.rows(); ++i) {
    double best = INFINITY;
    for (std::size_t j = 0; j < c.rows(); ++j) {
      double s = 0.0;
      for (std::size_t t = 0; t < x.cols(); ++t) {
        const double diff = static_cast<double>(x(i, t)) - static_cast<double>(c(j, t));
        s += diff * diff;
      }
      best = std::min(best, s);
    }
    total += best;
  }
  return total;
}

using icp_test::same_bits;

class ThreadGuard {
 public:
  ~ThreadGuard() { icp::set_threads(0); }
};

// ---------------------------------------------------------------------------------------------
// k-means||

TEST(KMeansInitParallel, CounterUniformIsSplitMix64) {
  // SplitMix64 from state 0 starts 0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4 (Vigna's reference
  // implementation); index i is the (i+1)-th output of the stream keyed by `key`.
  EXPECT_EQ(counter_uniform01(0, 0), static_cast<double>(0xE220A8397B1DCDAFULL >> 11) * 0x1.0p-53);
  EXPECT_EQ(counter_uniform01(0, 1), static_cast<double>(0x6E789E6AA1B965F4ULL >> 11) * 0x1.0p-53);
  double sum = 0.0;
  constexpr int kDraws = 100000;
  for (int i = 0; i < kDraws; ++i) {
    const double u = counter_uniform01(12345, static_cast<std::uint64_t>(i));
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    sum += u;
  }
  // Mean of 1e5 uniforms: sd = 1 / sqrt(12e5) ~ 0.0009; 0.005 is > 5 sd.
  EXPECT_NEAR(sum / kDraws, 0.5, 0.005);
}

TEST(KMeansInitParallel, SameBitsAtOneAndTwoThreads) {
  ThreadGuard guard;
  // Over 4 chunks of kReduceChunkRows, so the passes really split between threads.
  const Planted p = make_planted(12, 6, 1500, 20.0, 7);
  ASSERT_GT(p.x.rows(), 4 * icp::kReduceChunkRows);
  icp::set_threads(1);
  const icp::Matrix one = init_kmeans_parallel(p.x.view(), 24, 99);
  icp::KMeansOptions o;
  o.k = 24;
  o.init = icp::KMeansInit::kmeans_parallel;
  o.seed = 5;
  const icp::KMeansResult fit1 = icp::kmeans_fit(p.x.view(), o);
  icp::set_threads(2);
  const icp::Matrix two = init_kmeans_parallel(p.x.view(), 24, 99);
  const icp::KMeansResult fit2 = icp::kmeans_fit(p.x.view(), o);
  EXPECT_TRUE(same_bits(one, two));
  EXPECT_TRUE(same_bits(fit1.centroids, fit2.centroids));
  EXPECT_EQ(fit1.assignment, fit2.assignment);
  EXPECT_EQ(fit1.inertia, fit2.inertia);
}

TEST(KMeansInitParallel, CentresAreDistinctDataRows) {
  const Planted p = make_planted(5, 3, 200, 10.0, 3);
  const icp::Matrix c = init_kmeans_parallel(p.x.view(), 9, 1);
  ASSERT_EQ(c.rows(), 9u);
  for (std::size_t j = 0; j < c.rows(); ++j) {
    bool found = false;
    for (std::size_t i = 0; i < p.x.rows() && !found; ++i) {
      found = std::memcmp(c.row(j), p.x.row(i), 3 * sizeof(float)) == 0;
    }
    EXPECT_TRUE(found) << "centre " << j << " is not a row of the data";
    for (std::size_t l = 0; l < j; ++l) {
      EXPECT_NE(std::memcmp(c.row(j), c.row(l), 3 * sizeof(float)), 0) << j << " == " << l;
    }
  }
}

TEST(KMeansInitParallel, FewerDistinctPointsThanRounds) {
  // Three distinct points, 60 rows, k = 3: the candidates run out after the first round; every
  // distinct point must still become a centre.
  icp::Matrix x(60, 2);
  for (std::size_t i = 0; i < 60; ++i) {
    x(i, 0) = static_cast<float>(i % 3) * 10.0f;
    x(i, 1) = 1.0f;
  }
  const icp::Matrix c = init_kmeans_parallel(x.view(), 3, 4);
  EXPECT_EQ(potential(x, c), 0.0);
}

TEST(KMeansInitParallel, KEqualsRows) {
  icp::Matrix x(5, 2);
  for (std::size_t i = 0; i < 5; ++i) {
    x(i, 0) = static_cast<float>(i * i);
    x(i, 1) = -static_cast<float>(i);
  }
  for (std::uint64_t seed = 0; seed < 10; ++seed) {
    EXPECT_EQ(potential(x, init_kmeans_parallel(x.view(), 5, seed)), 0.0) << "seed " << seed;
  }
}

TEST(KMeansInitParallel, WeightedPlusPlusNeverPicksZeroWeight) {
  // Two tight groups with weight, two far points without: the two centres must come from the
  // weighted groups, one in each (a centre on each group is the only zero-potential choice the
  // D^2 draw can reach once the first group is covered).
  icp::Matrix pts(6, 1);
  const float v[6] = {0.0f, 0.1f, 10.0f, 10.1f, 1000.0f, -1000.0f};
  for (std::size_t i = 0; i < 6; ++i) pts(i, 0) = v[i];
  const std::vector<double> w = {3, 3, 3, 3, 0, 0};
  for (std::uint64_t seed = 0; seed < 20; ++seed) {
    const icp::Matrix c = init_kmeanspp_weighted(pts.view(), w, 2, seed);
    const float a = std::min(c(0, 0), c(1, 0));
    const float b = std::max(c(0, 0), c(1, 0));
    EXPECT_LE(a, 0.1f) << "seed " << seed;
    EXPECT_GE(b, 10.0f) << "seed " << seed;
    EXPECT_LE(b, 10.1f) << "seed " << seed;
  }
}

TEST(KMeansInitParallel, BeatsRandomAndMatchesPlusPlusOnPlantedClusters) {
  // 20 planted blobs of unequal size: random init leaves blobs uncovered, D^2 seeding should not.
  const Planted p = make_planted(20, 5, 300, 15.0, 11);
  constexpr int kSeeds = 8;
  double init_random_sum = 0.0;
  double init_pp_sum = 0.0;
  double init_par_sum = 0.0;
  double fit_random_sum = 0.0;
  double fit_pp_sum = 0.0;
  double fit_par_sum = 0.0;
  for (std::uint64_t s = 0; s < kSeeds; ++s) {
    init_random_sum += potential(p.x, init_random(p.x.view(), 20, s));
    init_pp_sum += potential(p.x, init_kmeanspp(p.x.view(), 20, s));
    init_par_sum += potential(p.x, init_kmeans_parallel(p.x.view(), 20, s));
    icp::KMeansOptions o;
    o.k = 20;
    o.seed = s;
    o.init = icp::KMeansInit::random;
    fit_random_sum += icp::kmeans_fit(p.x.view(), o).inertia;
    o.init = icp::KMeansInit::kmeanspp;
    fit_pp_sum += icp::kmeans_fit(p.x.view(), o).inertia;
    o.init = icp::KMeansInit::kmeans_parallel;
    fit_par_sum += icp::kmeans_fit(p.x.view(), o).inertia;
  }
  EXPECT_LT(init_par_sum, init_random_sum);
  EXPECT_LT(fit_par_sum, fit_random_sum);
  // The seeding alone may differ more; after Lloyd both D^2 seedings reach the planted optimum.
  EXPECT_LT(fit_par_sum, 1.03 * fit_pp_sum);
  RecordProperty("init_potential_random", std::to_string(init_random_sum / kSeeds));
  RecordProperty("init_potential_kmeanspp", std::to_string(init_pp_sum / kSeeds));
  RecordProperty("init_potential_kmeans_parallel", std::to_string(init_par_sum / kSeeds));
}

// Measurement, not a check (run with --gtest_also_run_disabled_tests; bench/results/kmeans.md):
// seeding time of greedy k-means++ and k-means|| at n = 200k, d = 32, k = 64, and the inertia
// each reaches after a Lloyd fit.
TEST(KMeansInitParallel, DISABLED_TimingAt200k) {
  const Planted p = make_planted(64, 32, 2100, 6.0, 1);  // ~200k rows
  auto seconds = [](auto&& f) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  icp::Matrix a;
  icp::Matrix b;
  const double pp = seconds([&] { a = init_kmeanspp(p.x.view(), 64, 1); });
  const double par = seconds([&] { b = init_kmeans_parallel(p.x.view(), 64, 1); });
  std::printf("rows %zu  kmeans++ %.3f s  kmeans|| %.3f s  ratio %.1fx\n", p.x.rows(), pp, par,
              pp / par);
  for (const auto init :
       {icp::KMeansInit::kmeanspp, icp::KMeansInit::kmeans_parallel, icp::KMeansInit::random}) {
    icp::KMeansOptions o;
    o.k = 64;
    o.init = init;
    double inertia = 0.0;
    int iterations = 0;
    const double fit = seconds([&] {
      const icp::KMeansResult r = icp::kmeans_fit(p.x.view(), o);
      inertia = r.inertia;
      iterations = r.iterations;
    });
    std::printf("fit init=%s: %.3f s, %d iterations, inertia %.6g\n", icp::to_string(init), fit,
                iterations, inertia);
  }
  icp::KMeansOptions o;
  o.k = 64;
  o.init = icp::KMeansInit::kmeans_parallel;
  o.algorithm = icp::KMeansAlgorithm::minibatch;
  double inertia = 0.0;
  int iterations = 0;
  const double fit = seconds([&] {
    const icp::KMeansResult r = icp::kmeans_fit(p.x.view(), o);
    inertia = r.inertia;
    iterations = r.iterations;
  });
  std::printf("fit minibatch (kmeans||): %.3f s, %d steps, inertia %.6g\n", fit, iterations,
              inertia);
}

// ---------------------------------------------------------------------------------------------
// Mini-batch

TEST(KMeansMiniBatch, BatchSizeRule) {
  icp::KMeansOptions o;
  o.k = 8;
  EXPECT_EQ(icp::kmeans_detail::minibatch_rows(o, 1000000), 8192u);
  EXPECT_EQ(icp::kmeans_detail::minibatch_rows(o, 5000), 5000u);
  o.k = 1024;
  EXPECT_EQ(icp::kmeans_detail::minibatch_rows(o, 10000000), std::size_t{1} << 18);
  o.batch_size = 500;
  EXPECT_EQ(icp::kmeans_detail::minibatch_rows(o, 10000000), 500u);
  EXPECT_EQ(icp::kmeans_detail::minibatch_rows(o, 300), 300u);
  o.batch_size = -1;
  o.k = 2;
  const Planted p = make_planted(2, 2, 10, 5.0, 1);
  EXPECT_THROW(icp::kmeans_fit(p.x.view(), o), icp::Error);
}

TEST(KMeansMiniBatch, WithinAFewPercentOfLloyd) {
  const Planted p = make_planted(10, 4, 2000, 12.0, 21);
  double lloyd = 0.0;
  double mini = 0.0;
  for (std::uint64_t s = 0; s < 3; ++s) {
    icp::KMeansOptions o;
    o.k = 10;
    o.seed = s;
    o.algorithm = icp::KMeansAlgorithm::lloyd;
    lloyd += icp::kmeans_fit(p.x.view(), o).inertia;
    o.algorithm = icp::KMeansAlgorithm::minibatch;
    o.batch_size = 1024;  // ~ 1/25 of the data per step, so this is not Lloyd in disguise
    const icp::KMeansResult r = icp::kmeans_fit(p.x.view(), o);
    EXPECT_LE(r.iterations, o.max_iter);
    mini += r.inertia;
  }
  EXPECT_GE(mini, lloyd * (1.0 - 1e-9));  // Lloyd converged to the planted optimum
  EXPECT_LT(mini, lloyd * 1.03);
}

TEST(KMeansMiniBatch, FinalAssignmentIsExact) {
  const Planted p = make_planted(6, 3, 400, 8.0, 5);
  icp::KMeansOptions o;
  o.k = 6;
  o.algorithm = icp::KMeansAlgorithm::minibatch;
  o.batch_size = 256;
  const icp::KMeansResult r = icp::kmeans_fit(p.x.view(), o);
  double total = 0.0;
  std::vector<std::int64_t> sizes(6, 0);
  for (std::size_t i = 0; i < p.x.rows(); ++i) {
    double best = INFINITY;
    std::size_t arg = 0;
    for (std::size_t j = 0; j < 6; ++j) {
      double s = 0.0;
      for (std::size_t t = 0; t < 3; ++t) {
        const double diff = static_cast<double>(p.x(i, t)) - static_cast<double>(r.centroids(j, t));
        s += diff * diff;
      }
      if (s < best) {
        best = s;
        arg = j;
      }
    }
    ASSERT_EQ(r.assignment[i], static_cast<std::int32_t>(arg)) << "row " << i;
    // The fit works in centred coordinates, so allow float rounding of the shift.
    EXPECT_NEAR(r.distance[i], best, 1e-4 * (1.0 + best)) << "row " << i;
    total += best;
    ++sizes[arg];
  }
  EXPECT_NEAR(r.inertia, total, 1e-5 * total);
  EXPECT_EQ(r.sizes, sizes);
}

TEST(KMeansMiniBatch, SingleCentreIsTheRunningMean) {
  // k = 1: every sampled row goes to the one centre, which is then the mean of all samples, an
  // unbiased estimate of the data mean with sd ~ sd_x / sqrt(steps * batch).
  std::mt19937_64 rng(3);
  std::uniform_real_distribution<double> u(0.0, 10.0);
  icp::Matrix x(5000, 2);
  double mean0 = 0.0;
  for (std::size_t i = 0; i < 5000; ++i) {
    x(i, 0) = static_cast<float>(u(rng));
    x(i, 1) = 3.0f;
    mean0 += static_cast<double>(x(i, 0));
  }
  mean0 /= 5000.0;
  icp::KMeansOptions o;
  o.k = 1;
  o.algorithm = icp::KMeansAlgorithm::minibatch;
  o.batch_size = 200;
  o.max_iter = 50;
  const icp::KMeansResult r = icp::kmeans_fit(x.view(), o);
  // sd of the estimate <= 2.9 / sqrt(200 * steps); steps >= kMiniBatchPatience + 1 = 11.
  EXPECT_NEAR(r.centroids(0, 0), mean0, 0.2);
  EXPECT_NEAR(r.centroids(0, 1), 3.0f, 1e-5);
}

TEST(KMeansMiniBatch, StopsAtMaxIterAndReportsEachStep) {
  const Planted p = make_planted(4, 2, 500, 6.0, 9);
  icp::KMeansOptions o;
  o.k = 4;
  o.algorithm = icp::KMeansAlgorithm::minibatch;
  o.batch_size = 64;
  o.max_iter = 3;
  int calls = 0;
  o.on_iteration = [&](const icp::KMeansIteration& it) {
    ++calls;
    EXPECT_EQ(it.iteration, calls);
    EXPECT_GT(it.inertia, 0.0);
  };
  const icp::KMeansResult r = icp::kmeans_fit(p.x.view(), o);
  EXPECT_EQ(r.iterations, 3);
  EXPECT_FALSE(r.converged);
  EXPECT_EQ(calls, 3);
  EXPECT_EQ(r.history.size(), 3u);
}

TEST(KMeansMiniBatch, SameBitsAtOneAndTwoThreads) {
  ThreadGuard guard;
  const Planted p = make_planted(8, 5, 1500, 10.0, 13);
  icp::KMeansOptions o;
  o.k = 8;
  o.algorithm = icp::KMeansAlgorithm::minibatch;
  o.init = icp::KMeansInit::kmeans_parallel;
  o.batch_size = 9000;  // > 2 chunks, so the batch's assignment and sums are split
  o.n_init = 2;
  icp::set_threads(1);
  const icp::KMeansResult a = icp::kmeans_fit(p.x.view(), o);
  icp::set_threads(2);
  const icp::KMeansResult b = icp::kmeans_fit(p.x.view(), o);
  EXPECT_TRUE(same_bits(a.centroids, b.centroids));
  EXPECT_EQ(a.assignment, b.assignment);
  EXPECT_EQ(a.inertia, b.inertia);
  EXPECT_EQ(a.iterations, b.iterations);
}

// ---------------------------------------------------------------------------------------------
// Init from given centres / an HDF5 file

TEST(KMeansFromFile, StartsFromTheGivenCentres) {
  const Planted p = make_planted(5, 3, 300, 10.0, 17);
  icp::KMeansOptions o;
  o.k = 5;
  o.init = icp::KMeansInit::file;
  o.initial_centroids = icp::Matrix(5, 3);
  // Start from the planted centres offset by +0.5: the first step's inertia is that of those
  // exact centres (scalar reference), and the result recovers the planted partition.
  for (std::size_t j = 0; j < 5; ++j) {
    for (std::size_t t = 0; t < 3; ++t) {
      o.initial_centroids(j, t) = static_cast<float>(p.centres[j][t] + 0.5);
    }
  }
  o.algorithm = icp::KMeansAlgorithm::lloyd;
  const icp::KMeansResult r = icp::kmeans_fit(p.x.view(), o);
  ASSERT_FALSE(r.history.empty());
  const double expected = potential(p.x, o.initial_centroids);
  EXPECT_NEAR(r.history[0].inertia, expected, 1e-5 * expected);
  for (std::size_t i = 0; i < p.x.rows(); ++i) {
    ASSERT_EQ(r.assignment[i], p.truth[i]) << "row " << i;  // centre j started on blob j
  }
}

TEST(KMeansFromFile, RejectsWrongShapeAndNonFinite) {
  const Planted p = make_planted(3, 2, 50, 5.0, 1);
  icp::KMeansOptions o;
  o.k = 3;
  o.init = icp::KMeansInit::file;
  EXPECT_THROW(icp::kmeans_fit(p.x.view(), o), icp::Error);  // none given
  o.initial_centroids = icp::Matrix(3, 3);
  EXPECT_THROW(icp::kmeans_fit(p.x.view(), o), icp::Error);  // d mismatch
  o.initial_centroids = icp::Matrix(2, 2);
  EXPECT_THROW(icp::kmeans_fit(p.x.view(), o), icp::Error);  // k mismatch
  o.initial_centroids = icp::Matrix(3, 2);
  o.initial_centroids(1, 1) = NAN;
  try {
    icp::kmeans_fit(p.x.view(), o);
    ADD_FAILURE() << "no error";
  } catch (const icp::Error& e) {
    EXPECT_NE(std::string(e.what()).find("initial centroids"), std::string::npos) << e.what();
  }
}

const char* kJob = R"(
[input]
path = "accounts.csv"
[[features.numeric]]
column = "employees"
[seeds]
rule = "is_customer == 1"
[kmeans]
k = 4
)";

std::string with_kmeans(const std::string& extra) {
  return std::string(kJob) + extra;
}

std::string config_error(const std::string& text) {
  try {
    (void)icp::parse_config(text, "/jobs/job.toml");
  } catch (const icp::ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(KMeansFromFileConfig, KeysParseResolveAndRoundTrip) {
  const auto c = icp::parse_config(with_kmeans("init = \"file\"\ninit_file = \"prev/results.h5\"\n"
                                               "algorithm = \"minibatch\"\nbatch_size = 4096\n"),
                                   "/jobs/job.toml");
  EXPECT_EQ(c.kmeans.init, icp::KMeansInit::file);
  EXPECT_EQ(c.kmeans_init_file, "/jobs/prev/results.h5");
  EXPECT_EQ(c.kmeans_init_dataset, "/segments/centroids");
  EXPECT_EQ(c.kmeans.algorithm, icp::KMeansAlgorithm::minibatch);
  EXPECT_EQ(c.kmeans.batch_size, 4096);
  const auto again = icp::parse_config(icp::to_toml(c), "/elsewhere/job.toml");
  EXPECT_EQ(again.kmeans.init, icp::KMeansInit::file);
  EXPECT_EQ(again.kmeans_init_file, "/jobs/prev/results.h5");
  EXPECT_EQ(again.kmeans.algorithm, icp::KMeansAlgorithm::minibatch);
  EXPECT_EQ(again.kmeans.batch_size, 4096);
  const auto par = icp::parse_config(with_kmeans("init = \"kmeans||\"\n"), "/jobs/job.toml");
  EXPECT_EQ(par.kmeans.init, icp::KMeansInit::kmeans_parallel);
  EXPECT_EQ(icp::parse_config(icp::to_toml(par), "/j/job.toml").kmeans.init,
            icp::KMeansInit::kmeans_parallel);
}

TEST(KMeansFromFileConfig, RejectsInconsistentKeys) {
  EXPECT_NE(config_error(with_kmeans("init = \"file\"\n")).find("init_file"), std::string::npos);
  EXPECT_NE(config_error(with_kmeans("init_file = \"a.h5\"\n")).find("init_file"),
            std::string::npos);
  const std::string k_auto =
      std::string(kJob).replace(std::string(kJob).find("k = 4"), 5, "k = \"auto\"");
  EXPECT_NE(config_error(k_auto + "init = \"file\"\ninit_file = \"a.h5\"\n").find("auto"),
            std::string::npos);
  EXPECT_NE(config_error(with_kmeans("batch_size = -3\n")).find("batch_size"), std::string::npos);
}

TEST(KMeansFromFilePipeline, RestartsFromAnEarlierRunsCentroids) {
  const fs::path dir = fs::path(ICP_SOURCE_DIR) / "datasets" / "demo";
  icp::JobConfig job = icp::load_config((dir / "job.toml").string());
  job.csv.quarantine_path.clear();
  const icp::RunResult first = icp::run_job(job);
  ASSERT_TRUE(first.kmeans.converged);
  const std::size_t k = first.kmeans.centroids.rows();
  const std::size_t d = first.kmeans.centroids.cols();

  const fs::path tmp = fs::temp_directory_path() / ("icp_kmeans3_" + std::to_string(::getpid()));
  fs::create_directories(tmp);
  const std::string file = (tmp / "prev.h5").string();
  {
    icp::h5::Writer w(file);
    const icp::Matrix& c = first.kmeans.centroids;
    w.write("/segments/centroids", std::span<const float>(c.data(), k * d), {k, d});
    w.commit();
  }
  job.kmeans.init = icp::KMeansInit::file;
  job.kmeans_init_file = file;
  const icp::RunResult again = icp::run_job(job);
  // The first step assigns against the first run's final centres, so its inertia is that run's
  // (up to the float round trip through the centred coordinates); Lloyd never raises it after.
  ASSERT_FALSE(again.kmeans.history.empty());
  EXPECT_NEAR(again.kmeans.history[0].inertia, first.kmeans.inertia, 1e-5 * first.kmeans.inertia);
  // Started at a converged solution, it converges again in fewer iterations than from scratch.
  EXPECT_TRUE(again.kmeans.converged);
  EXPECT_LT(again.kmeans.iterations, first.kmeans.iterations);
  EXPECT_LE(again.kmeans.inertia, first.kmeans.inertia * (1.0 + 1e-6));

  job.kmeans.k = static_cast<int>(k) + 1;
  try {
    (void)icp::run_job(job);
    ADD_FAILURE() << "no error for a k mismatch";
  } catch (const icp::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("must be k x d"), std::string::npos) << e.what();
  }
  job.kmeans.k = static_cast<int>(k);
  job.kmeans_init_dataset = "/nope";
  EXPECT_THROW((void)icp::run_job(job), icp::ConfigError);
  fs::remove_all(tmp);
}

}  // namespace
