#include <gtest/gtest.h>

#include "icp/config.hpp"
#include "icp/error.hpp"

namespace {

const char* kMinimal = R"(
[input]
path = "accounts.csv"
id_column = "account_id"

[[features.numeric]]
column = "employees"
transform = "log1p"
scaling = "robust"
weight = 2.0

[[features.categorical]]
column = "industry"
max_levels = 5

[seeds]
rule = "is_customer == 1"

[kmeans]
k = 7
)";

std::string error_of(const std::string& text) {
  try {
    (void)icp::parse_config(text, "/jobs/job.toml");
  } catch (const icp::ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(Config, ReadsValuesAndDefaults) {
  const auto c = icp::parse_config(kMinimal, "/jobs/job.toml");
  EXPECT_EQ(c.input_path, "/jobs/accounts.csv");  // relative to the job file
  EXPECT_EQ(c.id_column, "account_id");
  ASSERT_EQ(c.numeric.size(), 1u);
  EXPECT_EQ(c.numeric[0].transform, icp::Transform::log1p);
  EXPECT_EQ(c.numeric[0].scaling, icp::Scaling::robust);
  EXPECT_DOUBLE_EQ(c.numeric[0].weight, 2.0);
  ASSERT_EQ(c.categorical.size(), 1u);
  EXPECT_EQ(c.categorical[0].max_levels, 5);
  EXPECT_EQ(c.kmeans.k, 7);
  EXPECT_EQ(c.kmeans.max_iter, 100);  // default
  EXPECT_EQ(c.csv.on_error, icp::ErrorPolicy::fail);
  EXPECT_EQ(c.output.path, "/jobs/results.h5");
}

TEST(Config, ResolvedTomlRoundTrips) {
  const auto a = icp::parse_config(kMinimal, "/jobs/job.toml");
  const auto b = icp::parse_config(a.config_text, "/elsewhere/resolved.toml");
  EXPECT_EQ(b.input_path, a.input_path);  // already absolute
  EXPECT_EQ(b.numeric[0].column, "employees");
  EXPECT_EQ(b.kmeans.k, 7);
  EXPECT_EQ(b.config_text, a.config_text);
}

TEST(Config, UnknownKeyNamesFileLineAndKey) {
  std::string text = kMinimal;
  text += "colour = \"red\"\n";  // lands in [kmeans]
  const std::string msg = error_of(text);
  EXPECT_NE(msg.find("/jobs/job.toml:"), std::string::npos) << msg;
  EXPECT_NE(msg.find("unknown key 'kmeans.colour'"), std::string::npos) << msg;
}

TEST(Config, WrongTypeIsAnError) {
  std::string text = kMinimal;
  text.replace(text.find("k = 7"), 5, "k = \"seven\"");
  const std::string msg = error_of(text);
  EXPECT_NE(msg.find("kmeans.k: expected an integer, found a string"), std::string::npos) << msg;
  EXPECT_NE(msg.find("job.toml:20"), std::string::npos) << msg;
}

TEST(Config, BadChoiceListsTheOptions) {
  std::string text = kMinimal;
  text.replace(text.find("\"robust\""), 8, "\"fancy\"");
  const std::string msg = error_of(text);
  EXPECT_NE(msg.find("features.numeric[0].scaling: unknown value 'fancy'"), std::string::npos)
      << msg;
  EXPECT_NE(msg.find("zscore | robust | minmax | none"), std::string::npos) << msg;
}

TEST(Config, InputEncodingParsedDefaultedAndRoundTripped) {
  EXPECT_EQ(icp::parse_config(kMinimal, "/jobs/job.toml").csv.encoding, icp::TextEncoding::utf8);
  std::string text = kMinimal;
  text.replace(text.find("id_column"), 0, "encoding = \"latin-1\"\n");
  const auto c = icp::parse_config(text, "/jobs/job.toml");
  EXPECT_EQ(c.csv.encoding, icp::TextEncoding::latin1);
  EXPECT_EQ(icp::parse_config(c.config_text, "/jobs/again.toml").csv.encoding,
            icp::TextEncoding::latin1);
  std::string bad = kMinimal;
  bad.replace(bad.find("id_column"), 0, "encoding = \"cp1252\"\n");
  const std::string msg = error_of(bad);
  EXPECT_NE(msg.find("input.encoding: unknown value 'cp1252'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("utf-8 | latin-1"), std::string::npos) << msg;
}

TEST(Config, RangeChecks) {
  std::string text = kMinimal;
  text.replace(text.find("k = 7"), 5, "k = 0");
  EXPECT_NE(error_of(text).find("kmeans.k: must be between 1"), std::string::npos);
}

TEST(Config, RequiredPieces) {
  EXPECT_NE(error_of("[input]\nid_column = \"x\"\n").find("input.path: required"),
            std::string::npos);
  EXPECT_NE(error_of("[input]\npath = \"a.csv\"\n[seeds]\nrule = \"a == 1\"\n").find("features"),
            std::string::npos);
}

TEST(Config, SyntaxErrorHasLineAndColumn) {
  const std::string msg = error_of("[input]\npath = \n");
  EXPECT_EQ(msg.rfind("/jobs/job.toml:2:", 0), 0u) << msg;
}

TEST(Config, DuplicateFeatureIsAnError) {
  std::string text = kMinimal;
  text += "\n";
  text.insert(text.find("[seeds]"), "[[features.numeric]]\ncolumn = \"employees\"\n\n");
  EXPECT_NE(error_of(text).find("listed twice"), std::string::npos);
}

TEST(Config, KMeansAlgorithmParsedDefaultedAndRoundTripped) {
  EXPECT_EQ(icp::parse_config(kMinimal, "/jobs/job.toml").kmeans.algorithm,
            icp::KMeansAlgorithm::automatic);
  std::string text = kMinimal;
  text += "algorithm = \"yinyang\"\n";
  const auto c = icp::parse_config(text, "/jobs/job.toml");
  EXPECT_EQ(c.kmeans.algorithm, icp::KMeansAlgorithm::yinyang);
  const auto again = icp::parse_config(icp::to_toml(c), "/jobs/job.toml");
  EXPECT_EQ(again.kmeans.algorithm, icp::KMeansAlgorithm::yinyang);
}

TEST(Config, KMeansUnknownAlgorithmListsTheChoices) {
  std::string text = kMinimal;
  text += "algorithm = \"elkan\"\n";
  const std::string msg = error_of(text);
  EXPECT_NE(msg.find("kmeans.algorithm"), std::string::npos) << msg;
  EXPECT_NE(msg.find("auto | lloyd | hamerly | yinyang"), std::string::npos) << msg;
}

}  // namespace

TEST(Config, LookalikeSampleSizesParsedDefaultedAndRoundTripped) {
  const auto d = icp::parse_config(kMinimal, "/jobs/job.toml");
  EXPECT_EQ(d.lookalike.knn_max_seeds, 512);
  EXPECT_EQ(d.lookalike.backtest_max_rows, 1000000);
  const std::string text =
      std::string(kMinimal) + "\n[lookalike]\nknn_max_seeds = 0\nbacktest_max_rows = 250000\n";
  const auto c = icp::parse_config(text, "/jobs/job.toml");
  EXPECT_EQ(c.lookalike.knn_max_seeds, 0);
  EXPECT_EQ(c.lookalike.backtest_max_rows, 250000);
  const auto again = icp::parse_config(c.config_text, "/jobs/resolved.toml");
  EXPECT_EQ(again.lookalike.backtest_max_rows, 250000);
  const std::string negative = std::string(kMinimal) + "\n[lookalike]\nbacktest_max_rows = -1\n";
  EXPECT_NE(error_of(negative).find("lookalike.backtest_max_rows: must be between 0"),
            std::string::npos)
      << error_of(negative);
}
