#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <system_error>
#include <vector>

#include "icp/error.hpp"
#include "icp/generate.hpp"
#include "icp/parallel.hpp"

namespace {

namespace fs = std::filesystem;

// Written by hand from the spec, not taken from the generator.
const std::vector<std::string> kHeader = {"account_id",       "company_name",
                                          "industry",         "country",
                                          "funding_stage",    "employees",
                                          "annual_revenue",   "founded_year",
                                          "web_visits_30d",   "product_signups_90d",
                                          "email_engagement", "support_tickets_90d",
                                          "is_customer",      "acv",
                                          "churned"};
enum Col {
  kId,
  kName,
  kIndustry,
  kCountry,
  kStage,
  kEmployees,
  kRevenue,
  kFounded,
  kWeb,
  kSignups,
  kEngagement,
  kTickets,
  kCustomer,
  kAcv,
  kChurned
};

struct Field {
  std::string text;
  bool quoted = false;
};
using Record = std::vector<Field>;

/// Minimal RFC 4180 reader, independent of the library's CSV code: quoted fields may hold commas,
/// doubled quotes and line breaks. Fails the test on a malformed quote.
std::vector<Record> split_csv(const std::string& data) {
  std::vector<Record> records;
  Record record;
  Field field;
  bool in_quotes = false;
  bool after_quote = false;  // just closed a quoted field: only ',' or '\n' may follow
  for (std::size_t i = 0; i < data.size(); ++i) {
    const char c = data[i];
    if (in_quotes) {
      if (c != '"') {
        field.text += c;
      } else if (i + 1 < data.size() && data[i + 1] == '"') {
        field.text += '"';
        ++i;
      } else {
        in_quotes = false;
        after_quote = true;
      }
      continue;
    }
    if (c == ',' || c == '\n') {
      record.push_back(field);
      field = Field{};
      after_quote = false;
      if (c == '\n') {
        records.push_back(record);
        record.clear();
      }
      continue;
    }
    EXPECT_FALSE(after_quote) << "text after a closing quote at byte " << i;
    if (c == '"' && field.text.empty()) {
      in_quotes = true;
      field.quoted = true;
    } else {
      EXPECT_NE(c, '"') << "bare quote inside an unquoted field at byte " << i;
      field.text += c;
    }
  }
  EXPECT_FALSE(in_quotes) << "unterminated quote";
  EXPECT_TRUE(record.empty() && field.text.empty()) << "last line has no LF";
  return records;
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << path;
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

fs::path scratch_dir() {
  const fs::path dir = fs::temp_directory_path() /
                       ("icp_test_generate_" + std::to_string(static_cast<long>(::getpid())));
  fs::create_directories(dir);
  return dir;
}

bool is_number(const std::string& s, double* value) {
  if (s.empty()) return false;
  char* end = nullptr;
  *value = std::strtod(s.c_str(), &end);
  return end == s.c_str() + s.size() && std::isfinite(*value);
}

double number(const Field& f) {
  double v = 0.0;
  EXPECT_TRUE(is_number(f.text, &v)) << "'" << f.text << "'";
  return v;
}

/// One generated dataset shared by the read-only tests (kept small: tests must be fast).
class GenerateData : public ::testing::Test {
 protected:
  static constexpr std::int64_t kRows = 20000;
  static constexpr std::uint64_t kSeed = 11;

  static void SetUpTestSuite() {
    dir_ = new fs::path(scratch_dir());
    icp::GenerateOptions options;
    options.rows = kRows;
    options.seed = kSeed;
    stats_ = new icp::GenerateStats(icp::generate_accounts(
        options, (*dir_ / "accounts.csv").string(), (*dir_ / "truth.csv").string()));
    accounts_ = new std::vector<Record>(split_csv(read_file(*dir_ / "accounts.csv")));
    truth_ = new std::vector<Record>(split_csv(read_file(*dir_ / "truth.csv")));
  }
  static void TearDownTestSuite() {
    fs::remove_all(*dir_);
    delete dir_;
    delete stats_;
    delete accounts_;
    delete truth_;
  }

  static fs::path* dir_;
  static icp::GenerateStats* stats_;
  static std::vector<Record>* accounts_;
  static std::vector<Record>* truth_;
};

fs::path* GenerateData::dir_ = nullptr;
icp::GenerateStats* GenerateData::stats_ = nullptr;
std::vector<Record>* GenerateData::accounts_ = nullptr;
std::vector<Record>* GenerateData::truth_ = nullptr;

TEST_F(GenerateData, HeaderRowCountAndFieldCount) {
  const auto& rows = *accounts_;
  ASSERT_EQ(rows.size(), static_cast<std::size_t>(kRows) + 1);
  ASSERT_EQ(rows[0].size(), kHeader.size());
  for (std::size_t j = 0; j < kHeader.size(); ++j) EXPECT_EQ(rows[0][j].text, kHeader[j]);
  for (std::size_t i = 1; i < rows.size(); ++i)
    ASSERT_EQ(rows[i].size(), kHeader.size()) << "line " << i + 1;
  EXPECT_EQ(rows[1][kId].text, "A0000001");
  EXPECT_EQ(rows[kRows][kId].text, "A0020000");
}

TEST_F(GenerateData, LineEndingsAreLf) {
  const std::string data = read_file(*dir_ / "accounts.csv");
  EXPECT_EQ(data.find('\r'), std::string::npos);
  EXPECT_EQ(static_cast<std::int64_t>(std::count(data.begin(), data.end(), '\n')), kRows + 1);
}

TEST_F(GenerateData, SomeNamesAreQuotedWithCommasOrQuotes) {
  std::int64_t with_comma = 0, with_quote = 0, quoted = 0;
  for (std::size_t i = 1; i < accounts_->size(); ++i) {
    const Field& name = (*accounts_)[i][kName];
    EXPECT_FALSE(name.text.empty());
    if (name.quoted) ++quoted;
    if (name.text.find(',') != std::string::npos) {
      ++with_comma;
      EXPECT_TRUE(name.quoted) << name.text;
    }
    if (name.text.find('"') != std::string::npos) {
      ++with_quote;
      EXPECT_TRUE(name.quoted) << name.text;
    }
  }
  EXPECT_GT(with_comma, kRows / 50);  // "Acme Analytics, Inc." style names are common
  EXPECT_GT(with_quote, 0);           // a few carry a doubled quote
  EXPECT_LT(with_quote, kRows / 50);
  // Quoting only where RFC 4180 needs it.
  EXPECT_LE(quoted, with_comma + with_quote);
}

TEST_F(GenerateData, MissingCellsOnlyWhereIntendedAndAtIntendedRates) {
  const std::set<std::string> allowed_tokens = {"", "NA", "N/A", "null", "NULL", "#N/A"};
  const std::vector<int> gappy = {kCountry, kEmployees, kRevenue, kFounded, kWeb, kEngagement};
  std::vector<std::int64_t> missing(kHeader.size(), 0);
  std::int64_t revenue_na = 0;
  for (std::size_t i = 1; i < accounts_->size(); ++i) {
    const Record& r = (*accounts_)[i];
    for (std::size_t j = 0; j < r.size(); ++j) {
      const bool is_gappy =
          std::find(gappy.begin(), gappy.end(), static_cast<int>(j)) != gappy.end();
      double v = 0.0;
      if (is_gappy && allowed_tokens.count(r[j].text)) {
        ++missing[j];
        continue;
      }
      if (j == kAcv && r[kCustomer].text == "0") {
        EXPECT_EQ(r[j].text, "") << "line " << i + 1;  // prospects have no contract
        continue;
      }
      EXPECT_FALSE(r[j].text.empty()) << "line " << i + 1 << " column " << kHeader[j];
      if (j >= kEmployees) {
        EXPECT_TRUE(is_number(r[j].text, &v)) << "'" << r[j].text << "'";
      }
    }
    if (r[kRevenue].text == "N/A") ++revenue_na;
  }
  for (int j : gappy) {
    const double rate = static_cast<double>(missing[j]) / static_cast<double>(kRows);
    EXPECT_GE(rate, 0.03) << kHeader[j];
    EXPECT_LE(rate, 0.08) << kHeader[j];
  }
  EXPECT_GT(revenue_na, 0);
  EXPECT_LT(revenue_na, missing[kRevenue] / 2);  // "N/A" is the exception, empty the rule
}

TEST_F(GenerateData, ValuesAreInRangeAndCategoriesLongTailed) {
  std::set<std::string> industries, countries, stages;
  std::vector<double> log_emp, log_rev;
  for (std::size_t i = 1; i < accounts_->size(); ++i) {
    const Record& r = (*accounts_)[i];
    industries.insert(r[kIndustry].text);
    if (!r[kCountry].text.empty()) {
      countries.insert(r[kCountry].text);
      EXPECT_EQ(r[kCountry].text.size(), 2u) << r[kCountry].text;
    }
    stages.insert(r[kStage].text);
    if (!r[kEngagement].text.empty()) {
      const double e = number(r[kEngagement]);
      EXPECT_GE(e, 0.0);
      EXPECT_LE(e, 1.0);
    }
    if (!r[kFounded].text.empty()) {
      const double y = number(r[kFounded]);
      EXPECT_GE(y, 1800.0);
      EXPECT_LE(y, 2026.0);
    }
    double emp = 0.0, rev = 0.0;
    if (is_number(r[kEmployees].text, &emp) && is_number(r[kRevenue].text, &rev)) {
      EXPECT_GE(emp, 1.0);
      EXPECT_GT(rev, 0.0);
      log_emp.push_back(std::log(emp));
      log_rev.push_back(std::log(rev));
    }
    for (int j : {kWeb, kSignups, kTickets}) {
      if (!r[j].text.empty()) {
        EXPECT_GE(number(r[j]), 0.0);
      }
    }
  }
  EXPECT_GE(industries.size(), 18u);
  EXPECT_LE(industries.size(), 25u);
  EXPECT_GE(countries.size(), 20u);
  EXPECT_LE(countries.size(), 30u);
  EXPECT_EQ(stages, (std::set<std::string>{"Bootstrapped", "Seed", "Series A", "Series B",
                                           "Series C+", "Public", "PE-backed"}));
  // Revenue is correlated with head count (Pearson on logs).
  const auto n = static_cast<double>(log_emp.size());
  double me = 0, mr = 0;
  for (std::size_t i = 0; i < log_emp.size(); ++i) me += log_emp[i], mr += log_rev[i];
  me /= n, mr /= n;
  double see = 0, srr = 0, ser = 0;
  for (std::size_t i = 0; i < log_emp.size(); ++i) {
    see += (log_emp[i] - me) * (log_emp[i] - me);
    srr += (log_rev[i] - mr) * (log_rev[i] - mr);
    ser += (log_emp[i] - me) * (log_rev[i] - mr);
  }
  EXPECT_GT(ser / std::sqrt(see * srr), 0.7);
  // Heavy tail: the largest company is far above the median one.
  std::vector<double> emp(log_emp);
  std::sort(emp.begin(), emp.end());
  EXPECT_GT(emp.back() - emp[emp.size() / 2], std::log(50.0));
}

TEST_F(GenerateData, OnlyCustomersChurnAndCarryAcv) {
  std::int64_t customers = 0, churned = 0;
  for (std::size_t i = 1; i < accounts_->size(); ++i) {
    const Record& r = (*accounts_)[i];
    const double is_customer = number(r[kCustomer]);
    const double churn = number(r[kChurned]);

    ASSERT_TRUE(is_customer == 0.0 || is_customer == 1.0);
    ASSERT_TRUE(churn == 0.0 || churn == 1.0);
    if (is_customer == 1.0) {
      ++customers;
      EXPECT_GE(number(r[kAcv]), 1000.0);
    } else {
      EXPECT_EQ(churn, 0.0) << "line " << i + 1;
      EXPECT_EQ(r[kAcv].text, "") << "line " << i + 1;
    }
    if (churn == 1.0) ++churned;
  }
  EXPECT_GT(churned, 0);
  EXPECT_EQ(customers, stats_->customers);
  EXPECT_EQ(churned, stats_->churned);
}

TEST_F(GenerateData, TruthFileMatchesAccounts) {
  const auto& truth = *truth_;
  ASSERT_EQ(truth.size(), accounts_->size());
  ASSERT_EQ(truth[0].size(), 4u);
  EXPECT_EQ(truth[0][0].text, "account_id");
  EXPECT_EQ(truth[0][1].text, "segment");
  EXPECT_EQ(truth[0][2].text, "segment_name");
  EXPECT_EQ(truth[0][3].text, "is_icp");
  const int segments = icp::generate_segment_count();
  EXPECT_GE(segments, 8);
  EXPECT_LE(segments, 12);
  std::vector<std::int64_t> per_segment(static_cast<std::size_t>(segments), 0);
  std::set<int> icp_segments;
  std::int64_t icp_rows = 0;
  for (std::size_t i = 1; i < truth.size(); ++i) {
    ASSERT_EQ(truth[i].size(), 4u);
    EXPECT_EQ(truth[i][0].text, (*accounts_)[i][kId].text);
    const auto seg = static_cast<int>(number(truth[i][1]));
    ASSERT_GE(seg, 0);
    ASSERT_LT(seg, segments);
    EXPECT_EQ(truth[i][2].text, icp::generate_segment_name(seg));
    const bool icp_row = truth[i][3].text == "1";
    EXPECT_TRUE(icp_row || truth[i][3].text == "0");
    EXPECT_EQ(icp_row, icp::generate_segment_is_icp(seg));
    if (icp_row) icp_segments.insert(seg), ++icp_rows;
    ++per_segment[static_cast<std::size_t>(seg)];
  }
  EXPECT_EQ(icp_segments.size(), 2u);
  EXPECT_EQ(icp_rows, stats_->icp_rows);
  EXPECT_EQ(per_segment, stats_->segment_rows);
  EXPECT_EQ(stats_->rows, kRows);
  for (auto count : per_segment) EXPECT_GT(count, kRows / 100);  // every segment is populated
}

TEST_F(GenerateData, PlantedIcpHasIntendedShareAndCustomerRates) {
  std::int64_t icp = 0, other = 0, icp_cust = 0, other_cust = 0, icp_churn = 0, other_churn = 0;
  std::vector<double> icp_acv, other_acv;
  for (std::size_t i = 1; i < accounts_->size(); ++i) {
    const Record& r = (*accounts_)[i];
    const bool is_icp = (*truth_)[i][3].text == "1";
    const bool customer = r[kCustomer].text == "1";
    const bool churned = r[kChurned].text == "1";
    (is_icp ? icp : other) += 1;
    if (customer) {
      (is_icp ? icp_cust : other_cust) += 1;
      (is_icp ? icp_churn : other_churn) += churned ? 1 : 0;
      (is_icp ? icp_acv : other_acv).push_back(number(r[kAcv]));
    }
  }
  const double n = static_cast<double>(kRows);
  EXPECT_NEAR(static_cast<double>(icp) / n, 0.10, 0.02);
  EXPECT_NEAR(static_cast<double>(icp_cust) / static_cast<double>(icp), 0.35, 0.05);
  const double other_rate = static_cast<double>(other_cust) / static_cast<double>(other);
  EXPECT_GE(other_rate, 0.01);
  EXPECT_LE(other_rate, 0.03);
  // Customers come mostly, but not only, from the ICP.
  const double icp_share_of_customers =
      static_cast<double>(icp_cust) / static_cast<double>(icp_cust + other_cust);
  EXPECT_GT(icp_share_of_customers, 0.5);
  EXPECT_LT(icp_share_of_customers, 0.85);
  // ICP customers churn less and pay more.
  const double icp_churn_rate = static_cast<double>(icp_churn) / static_cast<double>(icp_cust);
  const double other_churn_rate =
      static_cast<double>(other_churn) / static_cast<double>(other_cust);
  EXPECT_LT(icp_churn_rate, 0.12);
  EXPECT_GT(other_churn_rate, 2.0 * icp_churn_rate);
  std::sort(icp_acv.begin(), icp_acv.end());
  std::sort(other_acv.begin(), other_acv.end());
  EXPECT_GT(icp_acv[icp_acv.size() / 2], 1.5 * other_acv[other_acv.size() / 2]);
  EXPECT_EQ(icp_cust, stats_->icp_customers);
}

TEST_F(GenerateData, IcpRowsLookLikeTheirDescription) {
  // Segment 0 is "mid-market Software/Fintech in US/GB, 50-500 employees".
  std::int64_t rows = 0, sw = 0, us_gb = 0, mid = 0, with_emp = 0;
  for (std::size_t i = 1; i < accounts_->size(); ++i) {
    if ((*truth_)[i][1].text != "0") continue;
    const Record& r = (*accounts_)[i];
    ++rows;
    if (r[kIndustry].text == "Software" || r[kIndustry].text == "Fintech") ++sw;
    if (r[kCountry].text == "US" || r[kCountry].text == "GB") ++us_gb;
    double emp = 0.0;
    if (is_number(r[kEmployees].text, &emp)) {
      ++with_emp;
      if (emp >= 50 && emp <= 500) ++mid;
    }
  }
  ASSERT_GT(rows, 0);
  EXPECT_GT(static_cast<double>(sw) / static_cast<double>(rows), 0.7);
  EXPECT_GT(static_cast<double>(us_gb) / static_cast<double>(rows), 0.6);
  EXPECT_GT(static_cast<double>(mid) / static_cast<double>(with_emp), 0.8);
}

class GenerateFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = scratch_dir() / ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::create_directories(dir_);
  }
  void TearDown() override {
    fs::remove_all(dir_);
    std::error_code ignored;
    fs::remove(dir_.parent_path(), ignored);  // the per-process folder, once empty
  }
  std::string path(const char* name) const { return (dir_ / name).string(); }
  fs::path dir_;
};

TEST_F(GenerateFiles, SameSeedGivesByteIdenticalFilesAtAnyThreadCount) {
  icp::GenerateOptions options;
  options.rows = 3000;
  options.seed = 5;
  icp::set_threads(1);
  icp::generate_accounts(options, path("a1.csv"), path("t1.csv"));
  icp::set_threads(2);
  icp::generate_accounts(options, path("a2.csv"), path("t2.csv"));
  icp::set_threads(0);
  const std::string a1 = read_file(path("a1.csv"));
  EXPECT_GT(a1.size(), 100000u);
  EXPECT_EQ(a1, read_file(path("a2.csv")));
  EXPECT_EQ(read_file(path("t1.csv")), read_file(path("t2.csv")));
}

TEST_F(GenerateFiles, DifferentSeedGivesDifferentData) {
  icp::GenerateOptions options;
  options.rows = 500;
  options.seed = 5;
  icp::generate_accounts(options, path("a.csv"));
  options.seed = 6;
  icp::generate_accounts(options, path("b.csv"));
  const auto a = split_csv(read_file(path("a.csv")));
  const auto b = split_csv(read_file(path("b.csv")));
  ASSERT_EQ(a.size(), b.size());
  std::int64_t differing_names = 0;
  for (std::size_t i = 1; i < a.size(); ++i)
    differing_names += a[i][kName].text != b[i][kName].text;
  EXPECT_GT(differing_names, 400);  // not merely a shifted copy: almost every row changes
}

TEST_F(GenerateFiles, FirstRowsOfALongerFileEqualAShorterFile) {
  icp::GenerateOptions options;
  options.rows = 200;
  icp::generate_accounts(options, path("short.csv"));
  options.rows = 1000;
  icp::generate_accounts(options, path("long.csv"));
  const std::string small = read_file(path("short.csv"));
  const std::string large = read_file(path("long.csv"));
  ASSERT_LT(small.size(), large.size());
  EXPECT_EQ(large.compare(0, small.size(), small), 0);
}

TEST_F(GenerateFiles, ZeroRowsWritesTheHeaderOnly) {
  icp::GenerateOptions options;
  options.rows = 0;
  const auto stats = icp::generate_accounts(options, path("a.csv"), path("t.csv"));
  EXPECT_EQ(stats.rows, 0);
  const auto rows = split_csv(read_file(path("a.csv")));
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].size(), kHeader.size());
  EXPECT_EQ(split_csv(read_file(path("t.csv"))).size(), 1u);
}

TEST_F(GenerateFiles, NoTruthFileWhenPathIsEmpty) {
  icp::GenerateOptions options;
  options.rows = 10;
  icp::generate_accounts(options, path("a.csv"), "");
  std::int64_t files = std::distance(fs::directory_iterator(dir_), fs::directory_iterator());
  EXPECT_EQ(files, 1);
}

TEST_F(GenerateFiles, UnwritablePathThrowsNamingItAndLeavesNothingBehind) {
  icp::GenerateOptions options;
  options.rows = 10;
  const std::string bad = path("no_such_dir/accounts.csv");
  try {
    icp::generate_accounts(options, bad);
    FAIL() << "expected icp::Error";
  } catch (const icp::Error& e) {
    EXPECT_NE(std::string(e.what()).find(bad), std::string::npos) << e.what();
  }
  // The truth file cannot be created: the accounts file must not appear either.
  const std::string bad_truth = path("no_such_dir/truth.csv");
  try {
    icp::generate_accounts(options, path("a.csv"), bad_truth);
    FAIL() << "expected icp::Error";
  } catch (const icp::Error& e) {
    EXPECT_NE(std::string(e.what()).find(bad_truth), std::string::npos) << e.what();
  }
  EXPECT_TRUE(fs::is_empty(dir_));
}

TEST_F(GenerateFiles, RejectsBadArguments) {
  icp::GenerateOptions options;
  options.rows = -1;
  EXPECT_THROW(icp::generate_accounts(options, path("a.csv")), icp::Error);
  options.rows = 10;
  EXPECT_THROW(icp::generate_accounts(options, path("a.csv"), path("a.csv")), icp::Error);
  EXPECT_THROW(icp::generate_segment_name(icp::generate_segment_count()), icp::Error);
  EXPECT_THROW(icp::generate_segment_is_icp(-1), icp::Error);
  EXPECT_TRUE(fs::is_empty(dir_));
}

TEST_F(GenerateFiles, OverwritesAnExistingFile) {
  {
    std::ofstream old(path("a.csv"));
    old << "stale\n";
  }
  icp::GenerateOptions options;
  options.rows = 5;
  icp::generate_accounts(options, path("a.csv"));
  EXPECT_EQ(split_csv(read_file(path("a.csv"))).size(), 6u);
}

}  // namespace
