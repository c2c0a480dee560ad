// Schema inference: types, counts and the starting job file, which must load once a seed rule
// is set.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "icp/config.hpp"
#include "icp/error.hpp"
#include "icp/schema.hpp"

namespace {

namespace fs = std::filesystem;

class SchemaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           ("icp_schema_" + std::to_string(::getpid()) + "_" + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& content) const {
    const auto p = (dir_ / name).string();
    std::ofstream f(p, std::ios::binary);
    f << content;
    return p;
  }
  fs::path dir_;
};

const icp::ColumnProfile& col(const icp::Schema& s, const std::string& name) {
  for (const auto& c : s.columns)
    if (c.name == name) return c;
  throw std::runtime_error("no column " + name);
}

/// 40 rows: id unique, revenue right-skewed (39 small values and one huge), year symmetric,
/// industry 3 levels with 4 gaps, a 40-distinct name column, a constant column and a mostly
/// numeric column with one debris cell.
std::string sample_csv() {
  std::string s = "account_id,revenue,year,industry,name,country,score\n";
  const char* ind[] = {"saas", "fintech", "retail"};
  for (int i = 0; i < 40; ++i) {
    s += "a" + std::to_string(i) + ",";
    s += (i == 39 ? "1000000" : std::to_string(10 + i % 5)) + ",";
    s += std::to_string(2000 + i % 3) + ",";
    s += (i % 10 == 9 ? std::string("NA") : std::string(ind[i % 3])) + ",";
    s += "\"Company " + std::to_string(i) + ", Inc\",";
    s += "USA,";
    // 100 present cells would be needed for one debris cell to stay under 1%; here it is 1 of
    // 40 (2.5%), so the column must come out as categorical/text, not numeric.
    s += (i == 5 ? std::string("#####") : std::to_string(i % 7)) + "\n";
  }
  return s;
}

TEST_F(SchemaTest, ProfilesTypesCountsAndSkew) {
  const icp::Schema s = icp::infer_schema(write("a.csv", sample_csv()));
  EXPECT_EQ(s.rows_sampled, 40);
  ASSERT_EQ(s.columns.size(), 7u);
  EXPECT_EQ(s.id_column, "account_id");
  EXPECT_TRUE(col(s, "account_id").id_candidate);
  EXPECT_EQ(col(s, "account_id").type, icp::ColumnType::text);

  const auto& rev = col(s, "revenue");
  EXPECT_EQ(rev.type, icp::ColumnType::numeric);
  EXPECT_EQ(rev.present, 40);
  EXPECT_EQ(rev.distinct, 6);  // 10..14 and 1000000
  EXPECT_EQ(rev.min, 10.0);
  EXPECT_EQ(rev.max, 1000000.0);
  EXPECT_TRUE(rev.log1p);

  const auto& year = col(s, "year");
  EXPECT_EQ(year.type, icp::ColumnType::numeric);
  EXPECT_EQ(year.median, 2001.0);  // 14 x 2000, 13 x 2001, 13 x 2002: element 20 is 2001
  EXPECT_FALSE(year.log1p);

  const auto& industry = col(s, "industry");
  EXPECT_EQ(industry.type, icp::ColumnType::categorical);
  EXPECT_EQ(industry.missing, 4);
  EXPECT_EQ(industry.present, 36);
  EXPECT_EQ(industry.distinct, 3);

  EXPECT_EQ(col(s, "name").type, icp::ColumnType::text);
  EXPECT_EQ(col(s, "country").distinct, 1);
  EXPECT_NE(col(s, "score").type, icp::ColumnType::numeric);
}

TEST_F(SchemaTest, SampleRowsLimitsTheRead) {
  icp::SchemaOptions o;
  o.sample_rows = 10;
  const icp::Schema s = icp::infer_schema(write("a.csv", sample_csv()), o);
  EXPECT_EQ(s.rows_sampled, 10);
  EXPECT_EQ(col(s, "revenue").max, 14.0);  // the outlier is row 40
  EXPECT_FALSE(col(s, "revenue").log1p);
}

TEST_F(SchemaTest, StartingJobLoadsOnceTheSeedRuleIsSet) {
  const std::string csv = write("a.csv", sample_csv());
  const icp::Schema s = icp::infer_schema(csv);
  std::string toml = icp::schema_job_toml(s);
  // Without a rule the job must not load (seeds are required).
  EXPECT_THROW(icp::parse_config(toml, (dir_ / "job.toml").string()), icp::ConfigError);

  const std::string placeholder = "# rule = ";
  const auto at = toml.find(placeholder);
  ASSERT_NE(at, std::string::npos) << toml;
  toml.replace(at, placeholder.size(), "rule = ");
  const icp::JobConfig job = icp::parse_config(toml, (dir_ / "job.toml").string());
  EXPECT_EQ(job.input_path, fs::absolute(csv).lexically_normal().string());
  EXPECT_EQ(job.id_column, "account_id");
  EXPECT_EQ(job.seeds.rule, "revenue >= 12");
  ASSERT_EQ(job.numeric.size(), 2u);
  EXPECT_EQ(job.numeric[0].column, "revenue");
  EXPECT_EQ(job.numeric[0].transform, icp::Transform::log1p);
  EXPECT_EQ(job.numeric[1].column, "year");
  EXPECT_EQ(job.numeric[1].transform, icp::Transform::none);
  // score (0..6 plus one "#####") is categorical; country (one level) and name (text) are not
  // features.
  ASSERT_EQ(job.categorical.size(), 2u);
  EXPECT_EQ(job.categorical[0].column, "industry");
  EXPECT_EQ(job.categorical[0].max_levels, 3);
  EXPECT_EQ(job.categorical[1].column, "score");
  EXPECT_EQ(job.categorical[1].max_levels, 8);
  EXPECT_EQ(job.csv.on_error, icp::ErrorPolicy::quarantine);
}

TEST_F(SchemaTest, Latin1FileNeedsItsEncodingAndTheJobCarriesIt) {
  std::string text = "account_id,name,industry,revenue\n";
  for (int i = 0; i < 40; ++i) {
    text += "a" + std::to_string(i) + "," + (i % 3 == 0 ? "Caf\xE9 " : "Plain ") +
            std::to_string(i) + "," + (i % 2 ? "Retail" : "Software") + "," +
            std::to_string(10 + i * i) + "\n";
  }
  const std::string csv = write("l.csv", text);
  // Read as UTF-8 the sample loses 14 rows to Latin-1 bytes: the schema reads it as Latin-1,
  // keeps every row and proposes a job that says so.
  const icp::Schema s = icp::infer_schema(csv);
  EXPECT_EQ(s.encoding, icp::TextEncoding::latin1);
  EXPECT_EQ(s.rows_sampled, 40);
  std::string toml = icp::schema_job_toml(s);
  toml.replace(toml.find("# rule = "), 9, "rule = ");
  const icp::JobConfig job = icp::parse_config(toml, (dir_ / "job.toml").string());
  EXPECT_EQ(job.csv.encoding, icp::TextEncoding::latin1);
  // A UTF-8 file stays UTF-8 (its job has no encoding line, the default).
  const icp::Schema u = icp::infer_schema(write("u.csv", "account_id,name\na1,Caf\xC3\xA9\n"));
  EXPECT_EQ(u.encoding, icp::TextEncoding::utf8);
  EXPECT_EQ(icp::schema_job_toml(u).find("encoding"), std::string::npos);
}

TEST_F(SchemaTest, MissingFileIsAnInputError) {
  EXPECT_THROW(icp::infer_schema((dir_ / "absent.csv").string()), icp::InputError);
}

}  // namespace
