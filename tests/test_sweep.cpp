#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "icp/config.hpp"
#include "icp/error.hpp"
#include "icp/hdf5.hpp"
#include "icp/metrics.hpp"
#include "icp/output.hpp"
#include "icp/parallel.hpp"
#include "icp/pipeline.hpp"
#include "icp/sweep.hpp"
#include "test_bits.hpp"
#include "test_support.hpp"

namespace fs = std::filesystem;

namespace {

struct Blobs {
  icp::Matrix x;
  std::vector<std::int32_t> truth;
};

/// `k` Gaussian blobs (sd 1) centred at 6 e_c (so 8.5 apart) in d >= k dimensions, of uneven
/// sizes (100..299 rows each, drawn from the seed).
Blobs blobs(int k, std::size_t d, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::size_t> sizes;
  std::size_t n = 0;
  for (int c = 0; c < k; ++c) {
    sizes.push_back(100 + rng() % 200);
    n += sizes.back();
  }
  Blobs b;
  b.x = icp::Matrix(n, d);
  std::normal_distribution<double> g(0.0, 1.0);
  std::size_t row = 0;
  for (int c = 0; c < k; ++c) {
    for (std::size_t i = 0; i < sizes[static_cast<std::size_t>(c)]; ++i, ++row) {
      for (std::size_t j = 0; j < d; ++j)
        b.x(row, j) = static_cast<float>(g(rng) + (j == static_cast<std::size_t>(c) ? 6.0 : 0.0));
      b.truth.push_back(c);
    }
  }
  return b;
}

using icp_test::same_bits;

fs::path temp_dir(const std::string& name) {
  const fs::path p =
      fs::temp_directory_path() / ("icp_sweep_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

class SweepTest : public ::testing::Test {
 protected:
  void TearDown() override { icp::set_threads(0); }
};

TEST_F(SweepTest, ParsesKLists) {
  EXPECT_EQ(icp::parse_k_list("4:40:4", "--k"),
            (std::vector<int>{4, 8, 12, 16, 20, 24, 28, 32, 36, 40}));
  EXPECT_EQ(icp::parse_k_list("4:7", "--k"), (std::vector<int>{4, 5, 6, 7}));
  EXPECT_EQ(icp::parse_k_list("3:10:4", "--k"), (std::vector<int>{3, 7}));
  EXPECT_EQ(icp::parse_k_list("10", "--k"), (std::vector<int>{10}));
  EXPECT_EQ(icp::parse_k_list("4,8,16", "--k"), (std::vector<int>{4, 8, 16}));
  for (const char* bad : {"", "0:4", "a", "8:4", "4:8:0", "4:8:2:1", "4,,x", "5x"}) {
    EXPECT_THROW(icp::parse_k_list(bad, "--k"), icp::ConfigError) << bad;
  }
  try {
    icp::parse_k_list("8:4", "--k");
  } catch (const icp::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("--k"), std::string::npos);
  }
}

TEST_F(SweepTest, ParsesAlgorithmNames) {
  EXPECT_EQ(icp::parse_kmeans_algorithm("lloyd", "--algorithms"), icp::KMeansAlgorithm::lloyd);
  try {
    icp::parse_kmeans_algorithm("elkan", "--algorithms");
    FAIL() << "elkan accepted";
  } catch (const icp::ConfigError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("--algorithms"), std::string::npos) << m;
    EXPECT_NE(m.find("elkan"), std::string::npos) << m;
    EXPECT_NE(m.find("lloyd"), std::string::npos) << m;
  }
}

TEST_F(SweepTest, RunsTheGridInOrderAndMatchesDirectFits) {
  const Blobs b = blobs(3, 4, 5);
  icp::SweepOptions o;
  o.ks = {2, 3};
  o.inits = {icp::KMeansInit::kmeanspp, icp::KMeansInit::random};
  o.repeats = 2;
  o.seed = 100;
  o.silhouette_sample = 200;
  o.stability_runs = 2;
  o.stability_sample = 300;
  std::vector<icp::SweepProgress> seen;
  o.on_progress = [&](const icp::SweepProgress& p) { seen.push_back(p); };
  const auto rows = icp::run_sweep(b.x, o);
  ASSERT_EQ(rows.size(), 8u);
  ASSERT_EQ(seen.size(), 16u);  // a start and an end per run
  std::size_t i = 0;
  for (int k : {2, 3}) {
    for (const char* init : {"kmeans++", "random"}) {
      for (int rep = 0; rep < 2; ++rep, ++i) {
        const auto& r = rows[i];
        EXPECT_EQ(r.k, k);
        EXPECT_EQ(r.init, init);
        EXPECT_EQ(r.algorithm, "lloyd");
        EXPECT_EQ(r.repeat, rep);
        EXPECT_EQ(r.seed, 100u + static_cast<std::uint64_t>(rep));
        // The same fit done directly gives the same inertia and the same CH / DB.
        icp::KMeansOptions ko;
        ko.k = k;
        ko.seed = r.seed;
        ko.init =
            std::string(init) == "random" ? icp::KMeansInit::random : icp::KMeansInit::kmeanspp;
        ko.algorithm = icp::KMeansAlgorithm::lloyd;
        const auto fit = icp::kmeans_fit(b.x, ko);
        EXPECT_TRUE(same_bits(r.inertia, fit.inertia));
        EXPECT_EQ(r.iterations, fit.iterations);
        const auto q = icp::cluster_quality(b.x, fit.assignment, k);
        EXPECT_TRUE(same_bits(r.calinski_harabasz, q.calinski_harabasz));
        EXPECT_TRUE(same_bits(r.davies_bouldin, q.davies_bouldin));
        EXPECT_EQ(r.silhouette_sample, 200);
        EXPECT_GT(r.silhouette, -1.0);
        EXPECT_LT(r.silhouette, 1.0);
        EXPECT_GT(r.silhouette_se, 0.0);
        EXPECT_GE(r.stability, -1.0);
        EXPECT_LE(r.stability, 1.0);
        EXPECT_GE(r.seconds, 0.0);
        // Progress: a start then an end for this run, numbered in order.
        EXPECT_FALSE(seen[2 * i].done);
        EXPECT_TRUE(seen[2 * i + 1].done);
        EXPECT_EQ(seen[2 * i].index, i);
        EXPECT_EQ(seen[2 * i + 1].index, i);
        EXPECT_EQ(seen[2 * i + 1].total, 8u);
        EXPECT_EQ(seen[2 * i + 1].k, k);
      }
    }
  }
  EXPECT_EQ(seen.back().eta, 0.0);
  EXPECT_GE(seen.back().elapsed, seen.front().elapsed);
}

TEST_F(SweepTest, StabilityIsHighOnSeparatedBlobsAndLowerOnNoise) {
  const Blobs b = blobs(4, 4, 9);
  icp::SweepOptions o;
  o.ks = {4};
  o.silhouette_sample = 0;
  o.stability_runs = 3;
  o.stability_sample = 600;
  const auto on_blobs = icp::run_sweep(b.x, o);
  EXPECT_GT(on_blobs[0].stability, 0.99);
  EXPECT_TRUE(std::isnan(on_blobs[0].silhouette));
  // Uniform noise has no cluster to find: the boundaries move with each bootstrap draw.
  icp::Matrix noise(800, 4);
  std::mt19937_64 rng(3);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  for (auto& v : noise.storage()) v = static_cast<float>(u(rng));
  o.ks = {7};
  const auto on_noise = icp::run_sweep(noise, o);
  EXPECT_LT(on_noise[0].stability, 0.95);
}

TEST_F(SweepTest, SameNumbersAtAnyThreadCount) {
  const Blobs b = blobs(3, 3, 13);
  icp::SweepOptions o;
  o.ks = {3, 5};
  o.silhouette_sample = 300;
  o.stability_runs = 2;
  o.stability_sample = 400;
  icp::set_threads(1);
  const auto a = icp::run_sweep(b.x, o);
  icp::set_threads(2);
  const auto c = icp::run_sweep(b.x, o);
  ASSERT_EQ(a.size(), c.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    EXPECT_TRUE(same_bits(a[i].inertia, c[i].inertia));
    EXPECT_TRUE(same_bits(a[i].silhouette, c[i].silhouette));
    EXPECT_TRUE(same_bits(a[i].silhouette_se, c[i].silhouette_se));
    EXPECT_TRUE(same_bits(a[i].calinski_harabasz, c[i].calinski_harabasz));
    EXPECT_TRUE(same_bits(a[i].davies_bouldin, c[i].davies_bouldin));
    EXPECT_TRUE(same_bits(a[i].stability, c[i].stability));
  }
}

TEST_F(SweepTest, RejectsBadGridsBeforeAnyFit) {
  const Blobs b = blobs(2, 2, 1);
  icp::SweepOptions o;
  o.ks = {2, 100000};
  int calls = 0;
  o.on_progress = [&](const icp::SweepProgress&) { ++calls; };
  EXPECT_THROW(icp::run_sweep(b.x, o), icp::Error);
  o.ks = {2};
  o.algorithms = {"lloyd", "nope"};
  EXPECT_THROW(icp::run_sweep(b.x, o), icp::ConfigError);
  o.algorithms = {};
  EXPECT_THROW(icp::run_sweep(b.x, o), icp::Error);
  EXPECT_EQ(calls, 0);
}

icp::SweepRow row(int k, double sil, double se) {
  icp::SweepRow r;
  r.k = k;
  r.silhouette = sil;
  r.silhouette_se = se;
  return r;
}

TEST_F(SweepTest, ChooseKRule) {
  // Best mean 0.60 at k = 3 (se 0.02): k = 2 (0.50) is not within 0.58, so 3.
  EXPECT_EQ(icp::choose_k({row(2, 0.50, 0.01), row(3, 0.60, 0.02), row(4, 0.59, 0.01)}), 3);
  // k = 2 at 0.59 is within one se of the best (k = 5, 0.60): the smaller k wins.
  EXPECT_EQ(icp::choose_k({row(5, 0.60, 0.02), row(2, 0.59, 0.01), row(8, 0.10, 0.01)}), 2);
  // Repeats are averaged per k: k = 3 averages 0.55, k = 4 averages 0.70.
  EXPECT_EQ(
      icp::choose_k({row(3, 0.9, 0.01), row(3, 0.2, 0.01), row(4, 0.7, 0.01), row(4, 0.7, 0.01)}),
      4);
  // NaN rows are ignored; none left is an error.
  const double nan = std::nan("");
  EXPECT_EQ(icp::choose_k({row(2, nan, nan), row(6, 0.3, 0.01)}), 6);
  EXPECT_THROW(icp::choose_k({row(2, nan, nan)}), icp::Error);
}

TEST_F(SweepTest, AutoRecoversPlantedKOnSeparatedBlobs) {
  int recovered = 0;
  std::string got;
  for (std::uint64_t seed = 1; seed <= 5; ++seed) {
    const int k_true = 3 + static_cast<int>(seed);  // 4..8
    const Blobs b = blobs(k_true, 8, seed * 101);
    icp::JobConfig job;
    job.k_auto = true;
    job.k_min = 2;
    job.k_max = 10;
    job.seed = seed;
    job.kmeans.algorithm = icp::KMeansAlgorithm::lloyd;
    const int k = icp::choose_k(icp::run_sweep(b.x, icp::k_auto_options(job, b.x.rows())));
    recovered += k == k_true ? 1 : 0;
    got += std::to_string(k_true) + "->" + std::to_string(k) + " ";
  }
  RecordProperty("planted_to_chosen", got);
  EXPECT_GE(recovered, 4) << got;
}

TEST_F(SweepTest, KAutoOptionsFollowTheJob) {
  icp::JobConfig job;
  job.k_auto = true;
  job.k_min = 3;
  job.k_max = 50;
  job.seed = 77;
  job.kmeans.init = icp::KMeansInit::random;
  job.kmeans.max_iter = 33;
  const auto o = icp::k_auto_options(job, 10);  // k at most rows - 1 = 9
  EXPECT_EQ(o.ks, (std::vector<int>{3, 4, 5, 6, 7, 8, 9}));
  EXPECT_EQ(o.seed, 77u);
  EXPECT_EQ(o.max_iter, 33);
  ASSERT_EQ(o.inits.size(), 1u);
  EXPECT_EQ(o.inits[0], icp::KMeansInit::random);
  EXPECT_EQ(o.repeats, 1);
  EXPECT_EQ(o.stability_runs, 0);
  EXPECT_THROW(icp::k_auto_options(job, 3), icp::ConfigError);
}

TEST_F(SweepTest, ConfigAcceptsKAuto) {
  const std::string base =
      "[input]\npath = \"a.csv\"\n[[features.numeric]]\ncolumn = \"x\"\n"
      "[seeds]\nrule = \"y == 1\"\n[kmeans]\n";
  const auto c = icp::parse_config(base + "k = \"auto\"\nk_min = 3\nk_max = 9\n", "/j/job.toml");
  EXPECT_TRUE(c.k_auto);
  EXPECT_EQ(c.k_min, 3);
  EXPECT_EQ(c.k_max, 9);
  EXPECT_NE(c.config_text.find("k = \"auto\""), std::string::npos);
  const auto again = icp::parse_config(c.config_text, "/j/job.toml");
  EXPECT_TRUE(again.k_auto);
  EXPECT_EQ(again.k_max, 9);
  EXPECT_FALSE(icp::parse_config(base + "k = 5\n", "/j/job.toml").k_auto);
  EXPECT_THROW(icp::parse_config(base + "k = \"ten\"\n", "/j/job.toml"), icp::ConfigError);
  EXPECT_THROW(icp::parse_config(base + "k = \"auto\"\nk_min = 9\nk_max = 3\n", "/j/job.toml"),
               icp::ConfigError);
  EXPECT_THROW(icp::parse_config(base + "k = \"auto\"\nk_min = 1\n", "/j/job.toml"),
               icp::ConfigError);
}

/// Blobs as an account CSV (id, 4 features, every 5th row a customer) and a job using them.
fs::path write_blob_job(const fs::path& dir, int k_true, const std::string& k_line) {
  const Blobs b = blobs(k_true, 4, 2024);
  std::ostringstream csv;
  csv << "account_id,f0,f1,f2,f3,is_customer\n";
  for (std::size_t i = 0; i < b.x.rows(); ++i) {
    csv << "a" << i;
    for (std::size_t j = 0; j < 4; ++j) csv << "," << b.x(i, j);
    csv << "," << (i % 5 == 0 ? 1 : 0) << "\n";
  }
  std::ofstream(dir / "accounts.csv") << csv.str();
  std::ostringstream job;
  job << "[input]\npath = \"accounts.csv\"\nid_column = \"account_id\"\n";
  for (int j = 0; j < 4; ++j)
    job << "[[features.numeric]]\ncolumn = \"f" << j << "\"\nscaling = \"none\"\n";
  job << "[seeds]\nrule = \"is_customer == 1\"\nmin_count = 5\n[kmeans]\n"
      << k_line << "\n[output]\npath = \"out.h5\"\n";
  std::ofstream(dir / "job.toml") << job.str();
  return dir / "job.toml";
}

TEST_F(SweepTest, RunJobWithKAutoUsesTheChosenK) {
  const fs::path dir = temp_dir("runjob");
  const auto job = icp::load_config(write_blob_job(dir, 4, "k = \"auto\"\nk_max = 8").string());
  const auto r = icp::run_job(job);
  EXPECT_EQ(r.kmeans.sizes.size(), 4u);
  EXPECT_EQ(r.config.kmeans.k, 4);
  EXPECT_EQ(r.summary.segments.size(), 4u);
  bool staged = false;
  for (const auto& s : r.stages) staged = staged || s.name == "k-auto";
  EXPECT_TRUE(staged);
  // The results file keeps the sweep the choice came from: one run per k of k_min..k_max.
  const fs::path out = dir / "auto.h5";
  {
    icp::h5::Writer w(out.string());
    icp::write_results(r, w);
    w.commit();
  }
  const icp::h5::Reader rd(out.string());
  ASSERT_TRUE(rd.is_dataset("/sweep"));
  EXPECT_EQ(rd.attr_int("/sweep", "chosen_k"), 4);
  const icp::h5::Table t = rd.read_table("/sweep");
  std::vector<std::int64_t> ks;
  for (const auto& f : t.fields)
    if (f.name == "k") ks = std::get<std::vector<std::int64_t>>(f.values);
  EXPECT_EQ(ks, (std::vector<std::int64_t>{2, 3, 4, 5, 6, 7, 8}));
  EXPECT_EQ(choose_k(r.k_auto), 4);
  fs::remove_all(dir);
}

using Cli = icp_test::ShellResult;

Cli run_cli(const std::string& args) {
  return icp_test::shell(std::string(ICP_BINARY) + " " + args);
}

TEST_F(SweepTest, CommandWritesTableCsvAndHdf5) {
  const fs::path dir = temp_dir("cli");
  const fs::path job = write_blob_job(dir, 3, "k = 3");
  const auto r = run_cli("sweep --config " + job.string() +
                         " --k 2:4 --repeats 2 --init "
                         "kmeans++,random --csv " +
                         (dir / "s.csv").string() + " --output " + (dir / "s.h5").string() +
                         " --silhouette-sample 300 --stability-runs 2"
                         " --stability-sample 300 --threads 1");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("[12/12] k=4"), std::string::npos) << r.out;  // progress on stderr
  EXPECT_NE(r.out.find("eta"), std::string::npos);
  EXPECT_NE(r.out.find("k by the auto rule (kmeans.k = \"auto\"): 3"), std::string::npos) << r.out;
  std::ifstream csv(dir / "s.csv");
  std::string line;
  int lines = 0;
  std::getline(csv, line);
  EXPECT_EQ(line.rfind("k,algorithm,init,repeat,seed,", 0), 0u) << line;
  while (std::getline(csv, line)) ++lines;
  EXPECT_EQ(lines, 12);
  icp::h5::Reader h5((dir / "s.h5").string());
  const auto t = h5.read_table("/sweep");
  EXPECT_EQ(t.rows(), 12u);
  EXPECT_EQ(h5.attr_int("/sweep", "chosen_k"), 3);
  EXPECT_EQ(h5.attr_int("/sweep", "rows"), static_cast<std::int64_t>(blobs(3, 4, 2024).x.rows()));
  EXPECT_EQ(h5.attr_int("/sweep", "repeats"), 2);

  const auto bad = run_cli("sweep --config " + job.string() + " --k 4:2");
  EXPECT_EQ(bad.code, 2) << bad.out;
  EXPECT_NE(bad.out.find("--k"), std::string::npos) << bad.out;
  const auto bad_algo = run_cli("sweep --config " + job.string() + " --k 3 --algorithms warp");
  EXPECT_EQ(bad_algo.code, 2) << bad_algo.out;
  fs::remove_all(dir);
}

}  // namespace
