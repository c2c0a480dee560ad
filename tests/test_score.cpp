// `icp score`: a finished run re-scores accounts from its results file alone. Scoring the run's
// own input must reproduce the run (segments, per-method raw scores, combined value, 0-100
// score, nearest seed, reasons: same bits; segment distance to float tolerance; tier the same
// except for ties at a cut-off value), and new accounts are placed in the fitted population.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>

#include "icp/config.hpp"
#include "icp/csv.hpp"
#include "icp/error.hpp"
#include "icp/generate.hpp"
#include "icp/hdf5.hpp"
#include "icp/model_io.hpp"
#include "icp/output.hpp"
#include "icp/pipeline.hpp"
#include "icp/table_h5.hpp"
#include "test_support.hpp"

namespace fs = std::filesystem;

namespace {

int run_icp(const std::string& args, std::string* output = nullptr) {
  const icp_test::ShellResult r = icp_test::shell(std::string(ICP_BINARY) + " " + args);
  if (output) *output = r.out;
  return r.code;
}

std::string job_text(const fs::path& input, const fs::path& output, const std::string& method,
                     const std::string& on_error = "fail") {
  return "[input]\npath = \"" + input.string() + "\"\nid_column = \"account_id\"\non_error = \"" +
         on_error +
         "\"\n"
         "[[features.numeric]]\ncolumn = \"employees\"\ntransform = \"log1p\"\n"
         "scaling = \"robust\"\n"
         "[[features.numeric]]\ncolumn = \"annual_revenue\"\ntransform = \"log1p\"\n"
         "[[features.numeric]]\ncolumn = \"product_signups_90d\"\ntransform = \"log1p\"\n"
         "[[features.numeric]]\ncolumn = \"email_engagement\"\n"
         "[[features.categorical]]\ncolumn = \"industry\"\nmax_levels = 6\n"
         "[[features.categorical]]\ncolumn = \"country\"\nmax_levels = 5\n"
         "[seeds]\nrule = \"is_customer == 1 and churned == 0\"\n"
         "negative_rule = \"churned == 1\"\nmin_count = 5\n"
         "[summary]\nvalue_column = \"acv\"\n[kmeans]\nk = 5\n"
         "[lookalike]\nmethod = \"" +
         method +
         "\"\n"
         "[output]\npath = \"" +
         output.string() + "\"\n";
}

class Score : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("icp_score_" +
            std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) + "_" +
            std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    icp::GenerateOptions g;
    g.rows = 3000;
    g.seed = 5;
    icp::generate_accounts(g, (dir_ / "accounts.csv").string());
  }
  void TearDown() override { fs::remove_all(dir_); }

  /// Runs the job in memory and writes its results file, as `icp run` does.
  icp::RunResult fit(const std::string& method, const std::string& on_error = "fail") {
    const fs::path job = dir_ / "job.toml";
    std::ofstream(job) << job_text(dir_ / "accounts.csv", dir_ / "results.h5", method, on_error);
    icp::JobConfig c = icp::load_config(job.string());
    c.config_text = icp::to_toml(c);
    icp::RunResult r = icp::run_job(c);
    icp::h5::Writer w(c.output.path);
    icp::write_results(r, w);
    w.commit();
    return r;
  }

  fs::path dir_;
};

void expect_reproduces(const std::string& method, const fs::path& dir, const icp::RunResult& run) {
  const fs::path scores = dir / "scores.h5";
  std::string out;
  ASSERT_EQ(run_icp("score -q --model " + (dir / "results.h5").string() + " --input " +
                        (dir / "accounts.csv").string() + " --output " + scores.string(),
                    &out),
            0)
      << out;
  const icp::h5::Reader rd(scores.string());
  const std::size_t n = run.ids.size();
  EXPECT_EQ(rd.read_strings("/accounts/id"), run.ids);
  EXPECT_EQ(rd.attr_int("/lookalike", "known_seeds"),
            static_cast<std::int64_t>(run.lookalike.seed_rows.size()));
  const auto assignment = rd.read<std::int32_t>("/segments/assignment");
  const auto distance = rd.read<float>("/segments/distance");
  const auto score = rd.read<float>("/lookalike/score");
  const auto combined = rd.read<float>("/lookalike/combined");
  const auto knn = rd.read<float>("/lookalike/knn_similarity");
  const auto seg = rd.read<float>("/lookalike/segment_score");
  const auto model = rd.read<float>("/lookalike/model_score");
  const auto tier = rd.read<std::uint8_t>("/lookalike/tier");
  const auto rank = rd.read<std::int64_t>("/lookalike/rank");
  const auto nearest = rd.read<std::int64_t>("/lookalike/nearest_seed");
  const auto nearest_id = rd.read_strings("/lookalike/nearest_seed_id");
  const auto reasons = rd.read<std::int32_t>("/lookalike/reasons");
  ASSERT_EQ(score.size(), n);
  const auto& la = run.lookalike;
  // Tier cut-off values from the fitted ranks: n = 3000 -> ranks 30, 150, 300, 750.
  std::vector<float> cut;
  for (const std::int64_t end : {30, 150, 300, 750})
    for (std::size_t i = 0; i < n; ++i)
      if (la.rank[i] == end) cut.push_back(la.combined[i]);
  ASSERT_EQ(cut.size(), 4u);
  for (std::size_t i = 0; i < n; ++i) {
    SCOPED_TRACE(method + " row " + std::to_string(i));
    ASSERT_EQ(assignment[i], run.kmeans.assignment[i]);
    ASSERT_NEAR(distance[i], run.kmeans.distance[i], 1e-4f * (1.0f + run.kmeans.distance[i]));
    ASSERT_EQ(knn[i], la.knn_similarity[i]);
    ASSERT_EQ(seg[i], la.segment_score[i]);
    ASSERT_EQ(model[i], la.model_score[i]);
    ASSERT_EQ(combined[i], la.combined[i]);
    ASSERT_EQ(score[i], la.score[i]);
    ASSERT_EQ(rank[i], la.rank[i]);  // same rows in the same order: the same ranking
    ASSERT_EQ(nearest[i], la.nearest_seed[i]);
    ASSERT_EQ(nearest_id[i], run.ids[static_cast<std::size_t>(la.nearest_seed[i])]);
    for (std::size_t s = 0; s < 3; ++s) ASSERT_EQ(reasons[i * 3 + s], la.reasons[i][s]);
    if (std::find(cut.begin(), cut.end(), la.combined[i]) == cut.end()) {
      ASSERT_EQ(tier[i], la.tier[i]);
    } else {
      ASSERT_LE(tier[i], la.tier[i]);
    }
  }
}

TEST_F(Score, ScoringTheRunsOwnRowsReproducesTheRunEnsemble) {
  const icp::RunResult run = fit("ensemble");
  expect_reproduces("ensemble", dir_, run);
}

TEST_F(Score, ScoringTheRunsOwnRowsReproducesTheRunKnn) {
  const icp::RunResult run = fit("knn");
  expect_reproduces("knn", dir_, run);
}

TEST_F(Score, NewAccountsNeedOnlyTheFeatureColumns) {
  const icp::RunResult run = fit("ensemble");
  // No seed-rule or value columns, columns in another order, a level never seen in the fit.
  std::ofstream(dir_ / "new.csv")
      << "country,industry,account_id,employees,annual_revenue,product_signups_90d,"
         "email_engagement\n"
         "US,Software,new-1,120,15000000,40,0.6\n"
         "Atlantis,Mining,new-2,3,,0,0.01\n"
         ",Software,new-3,5000,900000000,2,\n";
  const icp::ScoringModel model = icp::load_scoring_model((dir_ / "results.h5").string());
  const icp::ScoredAccounts s = icp::score_csv(model, (dir_ / "new.csv").string());
  ASSERT_EQ(s.ids, (std::vector<std::string>{"new-1", "new-2", "new-3"}));
  EXPECT_EQ(s.known_seeds, 0);
  const auto& la = run.lookalike;
  const double m = static_cast<double>(la.combined.size());
  for (std::size_t i = 0; i < 3; ++i) {
    // The 0-100 score is where the row's combined value falls among the fitted ones.
    double below = 0.0, equal = 0.0;
    for (const float v : la.combined) {
      below += v < s.scores.combined[i] ? 1.0 : 0.0;
      equal += v == s.scores.combined[i] ? 1.0 : 0.0;
    }
    const double expected = below + equal == 0.0
                                ? 0.0
                                : std::clamp((below + (equal - 1.0) / 2.0) / (m - 1.0), 0.0, 1.0);
    EXPECT_NEAR(s.scores.score[i], 100.0 * expected, 1e-3) << "row " << i;
    // A new row is not a seed: its nearest seed may be any seed, at its true distance.
    EXPECT_TRUE(
        std::binary_search(la.seed_rows.begin(), la.seed_rows.end(), s.scores.nearest_seed[i]));
    EXPECT_GE(s.assignment[i], 0);
    EXPECT_LT(s.assignment[i], 5);
    EXPECT_EQ(s.scores.segment_score[i],
              static_cast<float>(la.segment_rate[static_cast<std::size_t>(s.assignment[i])]));
  }
  // Software, 120 staff, 40 sign-ups outranks a 3-person mining company with no activity.
  EXPECT_GT(s.scores.score[0], s.scores.score[1]);
}

TEST_F(Score, ClearErrors) {
  fit("ensemble");
  std::string out;
  // Not a results file.
  std::ofstream(dir_ / "junk.h5") << "not hdf5";
  EXPECT_EQ(run_icp("score -q --model " + (dir_ / "junk.h5").string() + " --input " +
                        (dir_ / "accounts.csv").string() + " --output " + (dir_ / "s.h5").string(),
                    &out),
            2);
  EXPECT_NE(out.find("junk.h5"), std::string::npos) << out;
  // A feature column missing from the new file: named, and no output file left behind.
  std::ofstream(dir_ / "bad.csv") << "account_id,employees\nx,5\n";
  EXPECT_EQ(run_icp("score -q --model " + (dir_ / "results.h5").string() + " --input " +
                        (dir_ / "bad.csv").string() + " --output " + (dir_ / "s.h5").string(),
                    &out),
            2);
  EXPECT_NE(out.find("annual_revenue"), std::string::npos) << out;
  EXPECT_FALSE(fs::exists(dir_ / "s.h5"));
}

/// The fit's input as an HDF5 table (the layout `icp convert` writes) with cells a streamed run
/// must reject exactly as a whole-table read does: an infinite number, an id repeating an
/// earlier one across block edges, and a repeat of a row that is itself rejected.
void write_h5_input(const fs::path& csv, const fs::path& h5) {
  icp::CsvOptions o;
  o.columns = {{"account_id", icp::ColumnType::text},
               {"employees", icp::ColumnType::numeric},
               {"annual_revenue", icp::ColumnType::numeric},
               {"product_signups_90d", icp::ColumnType::numeric},
               {"email_engagement", icp::ColumnType::numeric},
               {"industry", icp::ColumnType::categorical},
               {"country", icp::ColumnType::categorical}};
  icp::Table t = icp::read_csv(csv.string(), o);
  auto& id = t.columns[0].text;
  auto& employees = t.columns[1].numeric;
  employees[10] = std::numeric_limits<double>::infinity();
  id[2500] = id[3];     // repeats an accepted row in another block
  id[2600] = id[10];    // repeats the rejected row 10: accepted, as in a whole-table read
  id[2700] = id[2500];  // a third copy
  icp::h5::Writer w(h5.string());
  icp::write_table_h5(w, "/accounts", t);
  w.commit();
}

/// Every per-account dataset and run count of two scores files, bit for bit.
void expect_same_scores(const fs::path& a, const fs::path& b) {
  const icp::h5::Reader x(a.string()), y(b.string());
  for (const char* name : {"/accounts/id", "/lookalike/nearest_seed_id", "/features/names"})
    EXPECT_EQ(x.read_strings(name), y.read_strings(name)) << name;
  for (const char* name : {"/segments/distance", "/lookalike/score", "/lookalike/combined",
                           "/lookalike/nearest_seed_distance", "/lookalike/knn_similarity",
                           "/lookalike/segment_score", "/lookalike/model_score"}) {
    const auto u = x.read<float>(name), v = y.read<float>(name);
    ASSERT_EQ(u.size(), v.size()) << name;
    EXPECT_EQ(0, std::memcmp(u.data(), v.data(), u.size() * sizeof(float))) << name;
  }
  for (const char* name : {"/accounts/source_line", "/lookalike/rank", "/lookalike/nearest_seed"})
    EXPECT_EQ(x.read<std::int64_t>(name), y.read<std::int64_t>(name)) << name;
  for (const char* name : {"/segments/assignment", "/lookalike/reasons"})
    EXPECT_EQ(x.read<std::int32_t>(name), y.read<std::int32_t>(name)) << name;
  EXPECT_EQ(x.dims("/lookalike/reasons"), y.dims("/lookalike/reasons"));
  EXPECT_EQ(x.read<std::uint8_t>("/lookalike/tier"), y.read<std::uint8_t>("/lookalike/tier"));
  for (const char* attr : {"rows_read", "rows_accepted", "rows_quarantined"})
    EXPECT_EQ(x.attr_int("/run", attr), y.attr_int("/run", attr)) << attr;
  EXPECT_EQ(x.attr_int("/lookalike", "known_seeds"), y.attr_int("/lookalike", "known_seeds"));
}

TEST_F(Score, StreamedScoringEqualsAWholeTableRunForAnyBlockSize) {
  fit("ensemble", "quarantine");
  write_h5_input(dir_ / "accounts.csv", dir_ / "accounts.h5");
  const std::string common = "score -q --model " + (dir_ / "results.h5").string() + " --input " +
                             (dir_ / "accounts.h5").string() + " --output ";
  std::string out;
  ASSERT_EQ(run_icp(common + (dir_ / "whole.h5").string(), &out), 0) << out;
  {
    const icp::h5::Reader rd((dir_ / "whole.h5").string());
    EXPECT_EQ(rd.attr_int("/run", "rows_read"), 3000);
    EXPECT_EQ(rd.attr_int("/run", "rows_quarantined"), 3);  // the Inf and two repeats of row 3
  }
  // Small blocks (47 of them), blocks that cut the repeats apart, one larger than the table.
  for (const int block : {64, 777, 2501, 5000}) {
    SCOPED_TRACE("block rows " + std::to_string(block));
    const fs::path streamed = dir_ / ("streamed" + std::to_string(block) + ".h5");
    ASSERT_EQ(run_icp(common + streamed.string() + " --block-rows " + std::to_string(block), &out),
              0)
        << out;
    expect_same_scores(dir_ / "whole.h5", streamed);
  }
}

TEST_F(Score, StreamedScoringFailsAsAWholeTableRunDoesBeforeWritingAnything) {
  fit("ensemble");  // on_error = fail
  write_h5_input(dir_ / "accounts.csv", dir_ / "accounts.h5");
  const std::string common = "score -q --model " + (dir_ / "results.h5").string() + " --input " +
                             (dir_ / "accounts.h5").string() + " --output " +
                             (dir_ / "s.h5").string();
  std::string whole, streamed;
  EXPECT_EQ(run_icp(common, &whole), 2);
  EXPECT_EQ(run_icp(common + " --block-rows 1000", &streamed), 2);
  // The first bad row in row order (the Inf at row 11), named the same way by both.
  EXPECT_NE(whole.find("/accounts/employees: row 11"), std::string::npos) << whole;
  EXPECT_EQ(streamed, whole);
  EXPECT_FALSE(fs::exists(dir_ / "s.h5"));
  // A CSV cannot be streamed: the message says how to convert it.
  EXPECT_EQ(run_icp("score -q --model " + (dir_ / "results.h5").string() + " --input " +
                        (dir_ / "accounts.csv").string() + " --output " + (dir_ / "s.h5").string() +
                        " --memory-limit 1G",
                    &streamed),
            2);
  EXPECT_NE(streamed.find("icp convert"), std::string::npos) << streamed;
  EXPECT_EQ(run_icp(common + " --memory-limit 12X", &streamed), 2);
  EXPECT_NE(streamed.find("'12X'"), std::string::npos) << streamed;
}

TEST(StreamedBlockRows, FitsTheLimitInWholeMultiplesAndSaysWhatIsNeeded) {
  const std::uint64_t mib = std::uint64_t{1} << 20;
  const std::size_t rows = 37'000'000;
  const std::size_t b = icp::streamed_block_rows(1024 * mib, 200 * mib, rows);
  EXPECT_EQ(b % icp::kStreamMinBlockRows, 0u);
  EXPECT_GE(b, icp::kStreamMinBlockRows);
  // What the run holds stays under the limit.
  EXPECT_LE(200 * mib + icp::kStreamReserveBytes + icp::kStreamBytesPerRow * rows +
                icp::kStreamBytesPerBlockRow * b,
            1024 * mib);
  // More memory never means smaller blocks, and blocks stop growing at the cap.
  EXPECT_GE(icp::streamed_block_rows(4096 * mib, 200 * mib, rows), b);
  EXPECT_EQ(icp::streamed_block_rows(std::uint64_t{64} << 30, 0, 1000), icp::kStreamMaxBlockRows);
  try {
    (void)icp::streamed_block_rows(256 * mib, 200 * mib, rows);
    ADD_FAILURE() << "a limit below the ranks' memory must throw";
  } catch (const icp::Error& e) {
    EXPECT_NE(std::string(e.what()).find("at least"), std::string::npos) << e.what();
  }
}

}  // namespace
