// HDF5 table input: the h5py/pandas layout, the CSV reader's error rules with
// "<file>: <group>/<column>: row N" places, and `icp convert` giving the same run as the CSV.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "icp/config.hpp"
#include "icp/csv.hpp"
#include "icp/error.hpp"
#include "icp/generate.hpp"
#include "icp/hdf5.hpp"
#include "icp/pipeline.hpp"
#include "icp/table_h5.hpp"
#include "test_bits.hpp"

namespace {

namespace fs = std::filesystem;

const double kNaN = std::numeric_limits<double>::quiet_NaN();
const double kInf = std::numeric_limits<double>::infinity();

class TableH5Test : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           ("icp_th5_" + std::to_string(::getpid()) + "_" + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  std::string write(const std::string& name, const std::string& content) const {
    std::ofstream f(path(name), std::ios::binary);
    f << content;
    return path(name);
  }
  fs::path dir_;
};

std::string slurp(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

icp::ColumnRequest req(const std::string& name, icp::ColumnType type) {
  icp::ColumnRequest r;
  r.name = name;
  r.type = type;
  return r;
}

using icp_test::same_bits;

template <class T, class A>
bool same_bytes(const std::vector<T, A>& a, const std::vector<T, A>& b) {
  return a.size() == b.size() &&
         (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
}

void expect_same_table(const icp::Table& a, const icp::Table& b) {
  ASSERT_EQ(a.rows, b.rows);
  EXPECT_EQ(a.source_line, b.source_line);
  ASSERT_EQ(a.columns.size(), b.columns.size());
  for (std::size_t k = 0; k < a.columns.size(); ++k) {
    const auto& x = a.columns[k];
    const auto& y = b.columns[k];
    EXPECT_EQ(x.name, y.name);
    EXPECT_EQ(x.type, y.type);
    EXPECT_TRUE(same_bits(x.numeric, y.numeric)) << x.name;
    EXPECT_EQ(x.codes, y.codes) << x.name;
    EXPECT_EQ(x.levels, y.levels) << x.name;
    EXPECT_EQ(x.text, y.text) << x.name;
  }
}

/// The layout an h5py user writes: mixed numeric widths, strings with "" for missing.
std::string write_h5py_like(const std::string& file) {
  icp::h5::Writer w(file);
  w.write_strings("/accounts/id", {"a1", "a2", "a3"});
  const std::vector<float> acv = {1.5f, std::numeric_limits<float>::quiet_NaN(), -3.0f};
  w.write("/accounts/acv", std::span<const float>(acv));
  const std::vector<std::int64_t> employees = {10, 20, 9007199254740993};
  w.write("/accounts/employees", std::span<const std::int64_t>(employees));
  const std::vector<std::int32_t> region = {7, 7, 3};
  w.write("/accounts/region", std::span<const std::int32_t>(region));
  w.write_strings("/accounts/industry", {"saas", "", "fintech"});
  w.write_strings("/accounts/revenue", {"1e3", "NA", "+2.5"});
  w.commit();
  return file;
}

TEST_F(TableH5Test, ReadsTheH5pyLayout) {
  const std::string f = write_h5py_like(path("a.h5"));
  icp::CsvOptions o;
  o.columns = {req("id", icp::ColumnType::text), req("acv", icp::ColumnType::numeric),
               req("employees", icp::ColumnType::numeric),
               req("region", icp::ColumnType::categorical),
               req("industry", icp::ColumnType::categorical),
               req("revenue", icp::ColumnType::numeric)};
  icp::IngestStats stats;
  const icp::Table t = icp::read_table_h5(f, "/accounts", o, &stats);
  ASSERT_EQ(t.rows, 3u);
  EXPECT_EQ(t.source_line, (icp::LineNumbers{1, 2, 3}));
  EXPECT_EQ(t.at("id").text, (std::vector<std::string>{"a1", "a2", "a3"}));
  EXPECT_TRUE(same_bits(t.at("acv").numeric, {1.5, kNaN, -3.0}));
  // 2^53 + 1 rounds to the nearest double, as fast_float would round its decimal text.
  EXPECT_TRUE(same_bits(t.at("employees").numeric, {10.0, 20.0, 9007199254740992.0}));
  EXPECT_EQ(t.at("region").codes, (icp::CodeValues{0, 0, 1}));
  EXPECT_EQ(t.at("region").levels, (std::vector<std::string>{"7", "3"}));
  EXPECT_EQ(t.at("industry").codes, (icp::CodeValues{0, -1, 1}));
  EXPECT_EQ(t.at("industry").levels, (std::vector<std::string>{"saas", "fintech"}));
  EXPECT_TRUE(same_bits(t.at("revenue").numeric, {1000.0, kNaN, 2.5}));
  EXPECT_EQ(stats.rows_read, 3);
  EXPECT_EQ(stats.rows_accepted, 3);
  EXPECT_EQ(stats.rows_quarantined, 0);
}

TEST_F(TableH5Test, CsvRoundTripIsBitIdentical) {
  const std::string csv = write(
      "a.csv",
      "id,acv,industry,name,skip\n"
      "x1,1.25,saas,\"Acme, Inc\",z\n"
      "\n"
      "x2,,fintech,Beta,z\n"
      "x3,-7e-310,,\"Gamma \"\"G\"\"\",z\n"
      "x4,3.4028234663852886e38,saas,,z\n"
      "x5,0.1,retail,Delta,z\n");
  icp::CsvOptions o;
  o.columns = {req("id", icp::ColumnType::text), req("acv", icp::ColumnType::numeric),
               req("industry", icp::ColumnType::categorical),
               req("name", icp::ColumnType::text)};
  o.unique_column = "id";
  const icp::Table from_csv = icp::read_csv(csv, o);
  {
    icp::h5::Writer w(path("a.h5"));
    icp::write_table_h5(w, "/data/accounts", from_csv);
    w.commit();
  }
  const icp::Table from_h5 = icp::read_table_h5(path("a.h5"), "/data/accounts", o);
  expect_same_table(from_csv, from_h5);
  // The blank line moves x2 to physical line 4; the HDF5 copy keeps that.
  EXPECT_EQ(from_h5.source_line, (icp::LineNumbers{2, 4, 5, 6, 7}));
}

struct H5Case {
  const char* name;
  const char* request;  ///< column requested as numeric ("" = none)
  const char* expected;  ///< what() after "<file>: "
};

TEST_F(TableH5Test, ErrorsNameFileGroupColumnAndRow) {
  const std::string f = path("bad.h5");
  {
    icp::h5::Writer w(f);
    const std::vector<double> inf = {1.0, kInf};
    w.write("/t/inf", std::span<const double>(inf));
    const std::vector<double> ninf = {-kInf, 1.0};
    w.write("/t/ninf", std::span<const double>(ninf));
    w.write_strings("/t/big", {"1", "1e39"});
    w.write_strings("/t/word", {"2", "abc"});
    w.write_strings("/t/nan", {"NaN", "1"});
    const std::vector<double> big_double = {1.0, 1e300};
    w.write("/t/big_double", std::span<const double>(big_double));
    const std::vector<double> shorter = {1.0};
    w.write("/t/short", std::span<const double>(shorter));
    const std::vector<double> grid = {1, 2, 3, 4};
    w.write("/t/grid", std::span<const double>(grid), {2, 2});
    w.write("/t/ok", std::span<const double>(inf.data(), 1));
    w.commit();
  }
  auto message = [&](const std::string& column) -> std::string {
    icp::CsvOptions o;
    o.columns = {req(column, icp::ColumnType::numeric)};
    try {
      (void)icp::read_table_h5(f, "/t", o);
    } catch (const icp::InputError& e) {
      const std::string m = e.what();
      return m.rfind(f + ": ", 0) == 0 ? m.substr(f.size() + 2) : "unexpected: " + m;
    }
    return "no error";
  };
  EXPECT_EQ(message("inf"), "/t/inf: row 2: infinite value: 'inf'");
  EXPECT_EQ(message("ninf"), "/t/ninf: row 1: infinite value: '-inf'");
  EXPECT_EQ(message("big"), "/t/big: row 2: value out of float32 range: '1e39'");
  EXPECT_EQ(message("big_double"), "/t/big_double: row 2: value out of float32 range: '1e+300'");
  EXPECT_EQ(message("word"), "/t/word: row 2: not a number: 'abc'");
  EXPECT_EQ(message("nan"), "/t/nan: row 1: NaN value: 'NaN'");
  EXPECT_EQ(message("absent"), "/t/absent: missing column in group: 'absent'");
  EXPECT_EQ(message("grid"), "/t/grid: expected a 1-D dataset: 'grid'");

  icp::CsvOptions two;
  two.columns = {req("ok", icp::ColumnType::numeric), req("inf", icp::ColumnType::numeric)};
  try {
    (void)icp::read_table_h5(f, "/t", two);
    FAIL() << "no error for columns of different lengths";
  } catch (const icp::InputError& e) {
    EXPECT_EQ(std::string(e.what()),
              f + ": /t/inf: column length differs from 'ok' (1 rows): '2'");
  }
  icp::CsvOptions cat;
  cat.columns = {req("ok", icp::ColumnType::categorical)};
  try {
    (void)icp::read_table_h5(f, "/t", cat);
    FAIL() << "no error for a float dataset read as categorical";
  } catch (const icp::InputError& e) {
    EXPECT_EQ(e.reason(), "expected a string or integer dataset");
  }
  try {
    (void)icp::read_table_h5(f, "/nope", two);
    FAIL() << "no error for a missing group";
  } catch (const icp::InputError& e) {
    EXPECT_EQ(std::string(e.what()), f + ": /nope: no such group: '/nope'");
  }
}

TEST_F(TableH5Test, QuarantineKeepsFirstDuplicateAndCountsEveryRow) {
  const std::string f = path("q.h5");
  {
    icp::h5::Writer w(f);
    w.write_strings("/accounts/id", {"a", "b", "a", "", "", "c"});
    const std::vector<double> acv = {1, 2, 3, kInf, 5, 6};
    w.write("/accounts/acv", std::span<const double>(acv));
    w.commit();
  }
  icp::CsvOptions o;
  o.columns = {req("id", icp::ColumnType::text), req("acv", icp::ColumnType::numeric)};
  o.unique_column = "id";
  o.on_error = icp::ErrorPolicy::quarantine;
  o.quarantine_path = path("q.csv");
  icp::IngestStats stats;
  const icp::Table t = icp::read_table_h5(f, "/accounts", o, &stats);
  EXPECT_EQ(stats.rows_read, 6);
  EXPECT_EQ(stats.rows_accepted, 4);
  EXPECT_EQ(stats.rows_quarantined, 2);
  EXPECT_EQ(t.source_line, (icp::LineNumbers{1, 2, 5, 6}));
  // Missing ids are not compared, so the two empty ids both stay (the first one had Inf).
  EXPECT_EQ(t.at("id").text, (std::vector<std::string>{"a", "b", "", "c"}));
  EXPECT_TRUE(same_bits(t.at("acv").numeric, {1, 2, 5, 6}));
  EXPECT_EQ(slurp(path("q.csv")),
            "line,reason,record\n"
            "3,column 'id': duplicate value: 'a',\"a,3\"\n"
            "4,column 'acv': infinite value: 'inf',\",inf\"\n");

  o.on_error = icp::ErrorPolicy::fail;
  try {
    (void)icp::read_table_h5(f, "/accounts", o);
    FAIL() << "no error for a duplicate id";
  } catch (const icp::InputError& e) {
    EXPECT_EQ(std::string(e.what()), f + ": /accounts/id: row 3: duplicate value: 'a'");
  }
}

TEST_F(TableH5Test, FormatFollowsTheExtensionUnlessSet) {
  EXPECT_EQ(icp::resolve_input_format("", "x/a.H5"), "hdf5");
  EXPECT_EQ(icp::resolve_input_format("", "a.hdf5"), "hdf5");
  EXPECT_EQ(icp::resolve_input_format("", "a.csv"), "csv");
  EXPECT_EQ(icp::resolve_input_format("csv", "a.h5"), "csv");
  const std::string base =
      "[input]\npath = \"a.dat\"\n%s\n[[features.numeric]]\ncolumn = \"x\"\n"
      "[seeds]\nrule = \"y == 1\"\n";
  auto job = [&](const std::string& extra) {
    std::string t = base;
    t.replace(t.find("%s"), 2, extra);
    return icp::parse_config(t, path("job.toml"));
  };
  const icp::JobConfig c = job("format = \"hdf5\"\ngroup = \"/g/accounts\"");
  EXPECT_EQ(c.input_format, "hdf5");
  EXPECT_EQ(c.input_group, "/g/accounts");
  EXPECT_NE(c.config_text.find("format = \"hdf5\"\ngroup = \"/g/accounts\""), std::string::npos);
  EXPECT_EQ(job("").input_group, "/accounts");
  EXPECT_THROW(job("format = \"parquet\""), icp::ConfigError);
  EXPECT_THROW(job("group = \"accounts\""), icp::ConfigError);
}

TEST_F(TableH5Test, RunOnConvertedFileMatchesCsvRunBitForBit) {
  const std::string csv = path("accounts.csv");
  icp::GenerateOptions g;
  g.rows = 3000;
  icp::generate_accounts(g, csv);
  const std::string job_text =
      "[input]\npath = \"accounts.csv\"\nid_column = \"account_id\"\non_error = \"quarantine\"\n"
      "[[features.numeric]]\ncolumn = \"employees\"\ntransform = \"log1p\"\nscaling = \"robust\"\n"
      "[[features.numeric]]\ncolumn = \"annual_revenue\"\ntransform = \"log1p\"\n"
      "[[features.numeric]]\ncolumn = \"founded_year\"\n"
      "[[features.categorical]]\ncolumn = \"industry\"\n"
      "[[features.categorical]]\ncolumn = \"country\"\n"
      "[seeds]\nrule = \"is_customer == 1 and churned == 0\"\nnegative_rule = \"churned == 1\"\n"
      "[summary]\nvalue_column = \"acv\"\n[kmeans]\nk = 4\n[lookalike]\nneighbors = 5\n";
  write("job.toml", job_text);
  const icp::JobConfig job = icp::load_config(path("job.toml"));

  const std::string cmd = std::string(ICP_BINARY) + " convert -q " + csv + " " +
                          path("accounts.h5") + " --config " + path("job.toml");
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;

  icp::JobConfig job_h5 = job;
  job_h5.input_path = path("accounts.h5");
  const icp::RunResult a = icp::run_job(job);
  const icp::RunResult b = icp::run_job(job_h5);
  EXPECT_EQ(a.ingest.rows_accepted, b.ingest.rows_accepted);
  EXPECT_EQ(b.ingest.rows_read, b.ingest.rows_accepted + b.ingest.rows_quarantined);
  EXPECT_EQ(a.ids, b.ids);
  EXPECT_EQ(a.source_line, b.source_line);
  EXPECT_EQ(a.is_seed, b.is_seed);
  EXPECT_EQ(a.is_negative, b.is_negative);
  EXPECT_EQ(a.kmeans.assignment, b.kmeans.assignment);
  EXPECT_TRUE(same_bytes(a.kmeans.centroids.storage(), b.kmeans.centroids.storage()));
  EXPECT_TRUE(same_bytes(a.lookalike.score, b.lookalike.score));
  EXPECT_TRUE(same_bytes(a.lookalike.combined, b.lookalike.combined));
  EXPECT_EQ(a.lookalike.rank, b.lookalike.rank);
  EXPECT_GT(a.ingest.rows_accepted, 2900);
}

}  // namespace
