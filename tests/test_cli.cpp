// End-to-end tests of the `icp` binary: exit codes, messages, files left behind, and the HDF5
// layout read back through the C API (icp::h5::Reader).
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <numeric>
#include <sstream>
#include <string>

#include "icp/hdf5.hpp"
#include "icp/lookalike.hpp"
#include "test_support.hpp"

namespace fs = std::filesystem;

namespace {

using Result = icp_test::ShellResult;

Result run(const std::string& args) {
  return icp_test::shell(std::string(ICP_BINARY) + " " + args);
}

void write_file(const fs::path& p, const std::string& text) {
  std::ofstream(p, std::ios::binary) << text;
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string job_text(const std::string& input, const std::string& output, int k = 6,
                     const std::string& extra_seed = "") {
  return "[input]\npath = \"" + input + "\"\nid_column = \"account_id\"\n" +
         "on_error = \"fail\"\n"
         "[[features.numeric]]\ncolumn = \"employees\"\ntransform = \"log1p\"\nscaling = "
         "\"robust\"\n"
         "[[features.numeric]]\ncolumn = \"annual_revenue\"\ntransform = \"log1p\"\nscaling = "
         "\"robust\"\n"
         "[[features.numeric]]\ncolumn = \"web_visits_30d\"\ntransform = \"log1p\"\n"
         "[[features.numeric]]\ncolumn = \"product_signups_90d\"\ntransform = \"log1p\"\n"
         "[[features.numeric]]\ncolumn = \"email_engagement\"\n"
         "[[features.categorical]]\ncolumn = \"industry\"\nmax_levels = 8\n"
         "[[features.categorical]]\ncolumn = \"country\"\nmax_levels = 8\n"
         "[seeds]\nrule = \"is_customer == 1 and churned == 0" +
         extra_seed + "\"\nnegative_rule = \"churned == 1\"\nmin_count = 5\n" +
         "[summary]\nvalue_column = \"acv\"\n[kmeans]\nk = " + std::to_string(k) +
         "\n[output]\npath = \"" + output + "\"\n";
}

class Cli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ =
        fs::temp_directory_path() /
        ("icp_cli_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) +
         "_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  /// A small generated account table shared by the tests of one fixture instance.
  fs::path accounts(std::int64_t rows = 3000) {
    const fs::path p = dir_ / "accounts.csv";
    if (!fs::exists(p)) {
      const Result r =
          run("generate --quiet --rows " + std::to_string(rows) + " --seed 11 --output " +
              p.string() + " --truth " + (dir_ / "truth.csv").string());
      EXPECT_EQ(r.code, 0) << r.out;
    }
    return p;
  }

  fs::path job(const std::string& text) {
    const fs::path p = dir_ / "job.toml";
    write_file(p, text);
    return p;
  }

  /// Runs a job expected to fail: exit code 2, the message contains every `needles`, and no
  /// file (nor temporary) is left at the output path.
  void expect_failure(const std::string& args, const std::vector<std::string>& needles) {
    const Result r = run(args);
    EXPECT_EQ(r.code, 2) << r.out;
    for (const auto& n : needles) EXPECT_NE(r.out.find(n), std::string::npos) << n << "\n" << r.out;
    for (const auto& e : fs::directory_iterator(dir_))
      EXPECT_EQ(e.path().filename().string().find("out.h5"), std::string::npos)
          << "left behind: " << e.path();
  }

  fs::path dir_;
};

TEST_F(Cli, VersionAndHelp) {
  const Result v = run("--version");
  EXPECT_EQ(v.code, 0);
  EXPECT_EQ(v.out.rfind("icp ", 0), 0u) << v.out;
  const Result h = run("--help");
  EXPECT_EQ(h.code, 0);
  for (const char* verb : {"run", "generate", "inspect"})
    EXPECT_NE(h.out.find(verb), std::string::npos) << verb;
  const Result rh = run("run --help");
  EXPECT_EQ(rh.code, 0);
  EXPECT_NE(rh.out.find("--threads"), std::string::npos);
  EXPECT_EQ(run("frobnicate").code, 2);
}

TEST_F(Cli, RunWritesTheDocumentedLayout) {
  const auto in = accounts();
  const auto out = dir_ / "out.h5";
  const auto j = job(job_text(in.string(), out.string()));
  const Result r = run("run --quiet --config " + j.string());
  ASSERT_EQ(r.code, 0) << r.out;
  ASSERT_TRUE(fs::exists(out));

  icp::h5::Reader h(out.string());
  EXPECT_EQ(h.attr_int("/", "icp_format_version"), 1);
  EXPECT_FALSE(h.attr_string("/", "icp_version").empty());
  EXPECT_NE(h.attr_string("/", "config").find("[kmeans]"), std::string::npos);
  EXPECT_EQ(h.attr_int("/", "seed"), 42);
  EXPECT_GE(h.attr_int("/", "threads"), 1);
  EXPECT_EQ(h.attr_string("/", "created_utc").size(), 20u);

  const auto ids = h.read_strings("/accounts/id");
  const std::size_t n = ids.size();
  EXPECT_EQ(n, 3000u);
  const auto names = h.read_strings("/features/names");
  const auto d = names.size();
  EXPECT_GE(d, 5u + 2u);
  EXPECT_EQ(h.dims("/segments/assignment"), (std::vector<std::uint64_t>{n}));
  EXPECT_EQ(h.dims("/segments/distance"), (std::vector<std::uint64_t>{n}));
  EXPECT_EQ(h.dims("/segments/centroids"), (std::vector<std::uint64_t>{6, d}));
  EXPECT_EQ(h.attr_int("/segments", "k"), 6);
  const auto size = h.read<std::int64_t>("/segments/size");
  EXPECT_EQ(std::accumulate(size.begin(), size.end(), std::int64_t{0}),
            static_cast<std::int64_t>(n));
  const auto dist = h.read<float>("/segments/distance");
  double inertia = 0;
  for (float x : dist) inertia += x;
  EXPECT_NEAR(h.attr_double("/segments", "inertia"), inertia, 1e-4 * inertia);

  const auto rank = h.read<std::int64_t>("/lookalike/rank");
  std::vector<std::int64_t> sorted = rank;
  std::sort(sorted.begin(), sorted.end());
  for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(sorted[i], static_cast<std::int64_t>(i + 1));
  const auto score = h.read<float>("/lookalike/score");
  for (float s : score) ASSERT_TRUE(s >= 0.0f && s <= 100.0f) << s;
  // Better rank never has a lower score.
  std::vector<std::size_t> by_rank(n);
  for (std::size_t i = 0; i < n; ++i) by_rank[static_cast<std::size_t>(rank[i] - 1)] = i;
  for (std::size_t r1 = 1; r1 < n; ++r1) ASSERT_GE(score[by_rank[r1 - 1]], score[by_rank[r1]]);
  const auto tier = h.read<std::uint8_t>("/lookalike/tier");
  EXPECT_EQ(tier[by_rank[0]], 'A');
  EXPECT_EQ(tier[by_rank[n - 1]], 'E');
  EXPECT_EQ(h.dims("/lookalike/percentile"), (std::vector<std::uint64_t>{n}));
  EXPECT_EQ(h.dims("/lookalike/is_seed"), (std::vector<std::uint64_t>{n}));

  const auto summary = h.read_table("/icp/summary");
  EXPECT_EQ(summary.rows(), 6u);
  std::vector<std::string> fields;
  for (const auto& f : summary.fields) fields.push_back(f.name);
  for (const char* want : {"segment", "size", "share", "seed_count", "seed_rate", "lift",
                           "value_mean", "value_median", "icp_rank", "description"})
    EXPECT_NE(std::find(fields.begin(), fields.end(), want), fields.end()) << want;

  const auto read = h.attr_int("/run", "rows_read");
  EXPECT_EQ(read, h.attr_int("/run", "rows_accepted") + h.attr_int("/run", "rows_quarantined"));
  EXPECT_EQ(read, 3000);
  EXPECT_TRUE(h.has_attr("/run", "seconds_kmeans"));

  // Other tools open it: h5dump (hdf5-tools) and h5py (Debian's python3-h5py).
  if (std::system("command -v h5dump >/dev/null 2>&1") == 0) {
    EXPECT_EQ(std::system(("h5dump -H " + out.string() + " >/dev/null").c_str()), 0);
  } else {
    std::printf("[ note ] h5dump not installed: skipped opening the results with it\n");
  }
  if (std::system("/usr/bin/python3 -c 'import h5py' >/dev/null 2>&1") == 0) {
    const std::string py =
        "/usr/bin/python3 -c \"import h5py,sys; f=h5py.File(sys.argv[1]); "
        "r=f['/lookalike/rank'][:]; s=f['/icp/summary'][:]; "
        "assert sorted(r)==list(range(1,len(r)+1)); assert len(s)==6; "
        "assert f['/accounts/id'].asstr()[0]=='A0000001'\" " +
        out.string();
    EXPECT_EQ(std::system(py.c_str()), 0);
  } else {
    std::printf("[ note ] h5py not installed: skipped opening the results with it\n");
  }

  // inspect reads the file alone.
  const Result ins = run("inspect " + out.string());
  EXPECT_EQ(ins.code, 0) << ins.out;
  EXPECT_NE(ins.out.find("ICP segments"), std::string::npos) << ins.out;
  EXPECT_NE(ins.out.find(ids[by_rank[0]].substr(0, 4)), std::string::npos);
  const Result js = run("inspect --json " + out.string());
  EXPECT_EQ(js.code, 0);
  EXPECT_NE(js.out.find("\"top_lookalikes\""), std::string::npos);
}

TEST_F(Cli, SameBitsAtOneAndTwoThreads) {
  const auto in = accounts();
  const auto j = job(job_text(in.string(), (dir_ / "unused.h5").string()));
  const auto a = dir_ / "t1.h5";
  const auto b = dir_ / "t2.h5";
  ASSERT_EQ(run("run -q --config " + j.string() + " --threads 1 --output " + a.string()).code, 0);
  ASSERT_EQ(run("run -q --config " + j.string() + " --threads 2 --output " + b.string()).code, 0);
  icp::h5::Reader ha(a.string()), hb(b.string());
  EXPECT_EQ(ha.read<std::int32_t>("/segments/assignment"),
            hb.read<std::int32_t>("/segments/assignment"));
  EXPECT_EQ(ha.read<float>("/segments/centroids"), hb.read<float>("/segments/centroids"));
  EXPECT_EQ(ha.read<float>("/segments/distance"), hb.read<float>("/segments/distance"));
  EXPECT_EQ(ha.attr_double("/segments", "inertia"), hb.attr_double("/segments", "inertia"));
  EXPECT_EQ(ha.read<float>("/lookalike/score"), hb.read<float>("/lookalike/score"));
  EXPECT_EQ(ha.read<std::int64_t>("/lookalike/rank"), hb.read<std::int64_t>("/lookalike/rank"));
}

/// The generator's account id of row i (1-based): "A0000001".
std::string fmt_id(int i) {
  std::string digits = std::to_string(i);
  return "A" + std::string(7 - digits.size(), '0') + digits;
}

TEST_F(Cli, StreamedRunWritesTheInMemoryResults) {
  // The whole job read in blocks of 4096 rows (9 blocks: the last one short) must write every
  // dataset the in-memory run writes, bit for bit (scripts/h5-same), and the same top-N CSV;
  // the backtest runs on a sample here, as it does in a large market.
  const auto csv = accounts(33000);
  const auto h5 = dir_ / "accounts.h5";
  ASSERT_EQ(run("convert -q " + csv.string() + " " + h5.string()).code, 0);
  const std::string text = job_text(h5.string(), (dir_ / "unused.h5").string(), 7) +
                           "top_csv = \"" + (dir_ / "unused.csv").string() + "\"\n" +
                           "[lookalike]\nbacktest_max_rows = 12000\n";
  const auto j = job(text);
  const auto whole = dir_ / "whole.h5";
  const auto blocks = dir_ / "blocks.h5";
  const auto scratch = dir_ / "scratch";
  fs::create_directories(scratch);
  Result r = run("run -q --config " + j.string() + " --output " + whole.string() + " --top-csv " +
                 (dir_ / "whole.csv").string());
  ASSERT_EQ(r.code, 0) << r.out;
  r = run("run -q --config " + j.string() + " --output " + blocks.string() + " --top-csv " +
          (dir_ / "blocks.csv").string() + " --block-rows 4096 --scratch-dir " + scratch.string());
  ASSERT_EQ(r.code, 0) << r.out;
  r = icp_test::shell("/usr/bin/python3 " + std::string(ICP_SOURCE_DIR) + "/scripts/h5-same " +
                      whole.string() + " " + blocks.string());
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(read_file(dir_ / "whole.csv"), read_file(dir_ / "blocks.csv"));
  EXPECT_TRUE(fs::is_empty(scratch)) << "the scratch file outlived the run";

  // Without an id column the ids are line numbers, read back through every column.
  {
    std::string no_ids = text;
    const std::string id_line = "id_column = \"account_id\"\n";
    ASSERT_NE(no_ids.find(id_line), std::string::npos);
    no_ids.erase(no_ids.find(id_line), id_line.size());
    const fs::path no_ids_job = dir_ / "no_ids_job.toml";
    write_file(no_ids_job, no_ids);
    r = run("run -q --config " + no_ids_job.string() + " --output " + whole.string() +
            " --top-csv " + (dir_ / "whole.csv").string());
    ASSERT_EQ(r.code, 0) << r.out;
    r = run("run -q --config " + no_ids_job.string() + " --output " + blocks.string() +
            " --top-csv " + (dir_ / "blocks.csv").string() + " --block-rows 8192");
    ASSERT_EQ(r.code, 0) << r.out;
    r = icp_test::shell("/usr/bin/python3 " + std::string(ICP_SOURCE_DIR) + "/scripts/h5-same " +
                        whole.string() + " " + blocks.string());
    EXPECT_EQ(r.code, 0) << r.out;
    EXPECT_EQ(read_file(dir_ / "whole.csv"), read_file(dir_ / "blocks.csv"));
    EXPECT_NE(read_file(dir_ / "blocks.csv").find(",line "), std::string::npos);
  }

  // Seeds from an id file: flagged block by block in the streamed run, with the same count of
  // listed ids that are not in the input.
  {
    std::ofstream ids(dir_ / "seeds.txt");
    for (int i = 1; i <= 3000; i += 7) ids << fmt_id(i) << "\n";
    ids << "NOT-AN-ACCOUNT\nA9999999 \n";
  }
  std::string by_ids = text;
  const std::string rule = "rule = \"is_customer == 1 and churned == 0\"";
  ASSERT_NE(by_ids.find(rule), std::string::npos);
  by_ids.replace(by_ids.find(rule), rule.size(),
                 "ids_file = \"" + (dir_ / "seeds.txt").string() + "\"");
  const fs::path ids_job = dir_ / "ids_job.toml";
  write_file(ids_job, by_ids);
  r = run("run --config " + ids_job.string() + " --output " + whole.string() + " --top-csv " +
          (dir_ / "whole.csv").string());
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("2 seed ids"), std::string::npos) << r.out;
  r = run("run --config " + ids_job.string() + " --output " + blocks.string() + " --top-csv " +
          (dir_ / "blocks.csv").string() + " --block-rows 8192");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("2 seed ids"), std::string::npos) << r.out;
  r = icp_test::shell("/usr/bin/python3 " + std::string(ICP_SOURCE_DIR) + "/scripts/h5-same " +
                      whole.string() + " " + blocks.string());
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(read_file(dir_ / "whole.csv"), read_file(dir_ / "blocks.csv"));

  // Rejected rows: ids repeated across blocks are quarantined, and the quarantine file lists the
  // same rows with the same reasons as the in-memory run's.
  {
    const std::string all = read_file(csv);
    std::string dup = all;
    std::istringstream lines(all);
    std::string line;
    std::getline(lines, line);  // header
    for (int i = 0; i < 5 && std::getline(lines, line); ++i) dup += line + "\n";
    write_file(dir_ / "dup.csv", dup);
  }
  const auto dup_h5 = dir_ / "dup.h5";
  ASSERT_EQ(run("convert -q " + (dir_ / "dup.csv").string() + " " + dup_h5.string()).code, 0);
  std::string quarantined = text;
  const std::string fail_policy = "on_error = \"fail\"";
  ASSERT_NE(quarantined.find(fail_policy), std::string::npos);
  quarantined.replace(
      quarantined.find(fail_policy), fail_policy.size(),
      "on_error = \"quarantine\"\nquarantine_path = \"" + (dir_ / "q.csv").string() + "\"");
  quarantined.replace(quarantined.find(h5.string()), h5.string().size(), dup_h5.string());
  const fs::path q_job = dir_ / "q_job.toml";
  write_file(q_job, quarantined);
  r = run("run -q --config " + q_job.string() + " --output " + whole.string());
  ASSERT_EQ(r.code, 0) << r.out;
  const std::string q_whole = read_file(dir_ / "q.csv");
  fs::remove(dir_ / "q.csv");
  r = run("run -q --config " + q_job.string() + " --output " + blocks.string() +
          " --block-rows 4096");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(read_file(dir_ / "q.csv"), q_whole);
  EXPECT_NE(q_whole.find("duplicate value"), std::string::npos) << q_whole;
  EXPECT_EQ(std::count(q_whole.begin(), q_whole.end(), '\n'), 6) << q_whole;  // header + 5
  r = icp_test::shell("/usr/bin/python3 " + std::string(ICP_SOURCE_DIR) + "/scripts/h5-same " +
                      whole.string() + " " + blocks.string());
  EXPECT_EQ(r.code, 0) << r.out;

  // What a streamed run cannot do is refused before any work, naming the way out.
  const fs::path csv_job = dir_ / "csv_job.toml";
  write_file(csv_job, job_text(csv.string(), (dir_ / "out.h5").string()));
  expect_failure("run -q --config " + csv_job.string() + " --memory-limit 1G",
                 {"reads HDF5 input", "icp convert"});
  expect_failure("run -q --config " + j.string() + " --output " + (dir_ / "out.h5").string() +
                     " --block-rows 1000",
                 {"--block-rows 1000", "multiple of 4096"});
  expect_failure("run -q --config " + j.string() + " --output " + (dir_ / "out.h5").string() +
                     " --memory-limit lots",
                 {"--memory-limit 'lots'"});
}

TEST_F(Cli, TopCsvListsProspectsBestFirst) {
  const auto in = accounts();
  const auto out = dir_ / "out.h5";
  const auto csv = dir_ / "top.csv";
  const auto j = job(job_text(in.string(), out.string()));
  ASSERT_EQ(run("run -q --config " + j.string() + " --top-csv " + csv.string()).code, 0);
  std::istringstream lines(read_file(csv));
  std::string line;
  std::getline(lines, line);
  EXPECT_EQ(line, "rank,id,score,tier,segment,reason_1,reason_2,reason_3");
  int rows = 0;
  long prev = 0;
  while (std::getline(lines, line)) {
    const long r = std::stol(line.substr(0, line.find(',')));
    EXPECT_GT(r, prev);
    prev = r;
    ++rows;
  }
  EXPECT_EQ(rows, 1000);
}

TEST_F(Cli, BadTopCsvOrReportFolderFailsBeforeAnyWork) {
  const auto in = accounts();
  const auto j = job(job_text(in.string(), (dir_ / "out.h5").string()));
  // Without -q the stages report as they finish: none may have run.
  Result r = run("run --config " + j.string() + " --top-csv " + (dir_ / "nope" / "t.csv").string());
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("nope/t.csv: cannot write the top-N CSV: folder"), std::string::npos)
      << r.out;
  EXPECT_EQ(r.out.find("ingest"), std::string::npos) << r.out;
  const auto jr = job(job_text(in.string(), (dir_ / "out.h5").string()) + "report = \"" +
                      (dir_ / "gone" / "r.html").string() + "\"\n");
  r = run("run --config " + jr.string());
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("r.html: cannot write the report: folder"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("ingest"), std::string::npos) << r.out;
  EXPECT_FALSE(fs::exists(dir_ / "out.h5"));
}

TEST_F(Cli, AReportThatCannotBeWrittenLeavesNoOutputs) {
  const auto in = accounts();
  // The report's path is an existing folder: its folder passes the early check, and the final
  // rename onto it fails after the results file was committed.
  fs::create_directories(dir_ / "taken");
  const auto csv = dir_ / "top.csv";
  const auto j = job(job_text(in.string(), (dir_ / "out.h5").string()) + "report = \"" +
                     (dir_ / "taken").string() + "\"\n");
  expect_failure("run -q --config " + j.string() + " --top-csv " + csv.string(),
                 {"report", "taken"});
  EXPECT_FALSE(fs::exists(dir_ / "out.h5"));
  EXPECT_FALSE(fs::exists(csv));
}

TEST_F(Cli, MissingInputFile) {
  const auto j = job(job_text((dir_ / "nope.csv").string(), (dir_ / "out.h5").string()));
  expect_failure("run -q --config " + j.string(), {"nope.csv", "file not found"});
}

TEST_F(Cli, UnwritableOutputFolder) {
  const auto in = accounts();
  const auto j = job(job_text(in.string(), (dir_ / "no_such_dir" / "out.h5").string()));
  expect_failure("run -q --config " + j.string(), {"no_such_dir"});
}

TEST_F(Cli, UnknownKeyInJobFile) {
  const auto in = accounts();
  const auto j = job(job_text(in.string(), (dir_ / "out.h5").string()) + "colour = 3\n");
  expect_failure("run -q --config " + j.string(), {"job.toml:", "unknown key 'output.colour'"});
}

TEST_F(Cli, WrongTypeInJobFile) {
  const auto in = accounts();
  std::string text = job_text(in.string(), (dir_ / "out.h5").string());
  text.replace(text.find("k = 6"), 5, "k = \"six\"");
  expect_failure("run -q --config " + job(text).string(), {"kmeans.k", "expected an integer"});
}

TEST_F(Cli, FeatureColumnNotInHeader) {
  const auto in = accounts();
  std::string text = job_text(in.string(), (dir_ / "out.h5").string());
  text.replace(text.find("\"email_engagement\""), 18, "\"email_engagment\"");
  expect_failure("run -q --config " + job(text).string(), {"email_engagment", "accounts.csv"});
}

TEST_F(Cli, NonNumericValueNamesLineColumnAndValue) {
  const auto in = dir_ / "bad.csv";
  std::string csv = read_file(accounts());
  // Corrupt the employees cell of the 4th data row (line 5).
  std::istringstream ls(csv);
  std::string line, out;
  int no = 0;
  while (std::getline(ls, line)) {
    ++no;
    if (no == 5) {
      const std::string id = line.substr(0, line.find(','));
      line = id + ",\"Bad Co\",Software,US,Seed,lots,1000,2000,10,1,0.5,1,0,,0";
    }
    out += line + "\n";
  }
  write_file(in, out);
  const auto j = job(job_text(in.string(), (dir_ / "out.h5").string()));
  expect_failure("run -q --config " + j.string(), {"bad.csv:5", "employees", "'lots'"});
}

TEST_F(Cli, KOutOfRange) {
  const auto in = accounts(50);
  const auto j = job(job_text(in.string(), (dir_ / "out.h5").string()));
  expect_failure("run -q --config " + j.string() + " --k 0", {"--k", "at least 1"});
  expect_failure("run -q --config " + j.string() + " --k 51",
                 {"kmeans.k = 51", "50 accepted rows"});
}

TEST_F(Cli, SeedRuleMatchingNothing) {
  const auto in = accounts();
  const auto j = job(job_text(in.string(), (dir_ / "out.h5").string(), 6, " and acv >= 1e15"));
  expect_failure("run -q --config " + j.string(), {"seeds.rule", "matches 0 of 3000"});
}

}  // namespace
