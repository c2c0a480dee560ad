#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "icp/error.hpp"
#include "icp/parallel.hpp"
#include "icp/summary.hpp"
#include "icp/table.hpp"
#include "test_tables.hpp"

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

icp::Column numeric(const std::string& name, std::vector<double> values) {
  icp::Column c;
  c.name = name;
  c.type = icp::ColumnType::numeric;
  c.numeric.assign(values.begin(), values.end());
  return c;
}

icp::Column categorical(const std::string& name, std::vector<std::string> levels,
                        std::vector<std::int32_t> codes) {
  icp::Column c;
  c.name = name;
  c.type = icp::ColumnType::categorical;
  c.levels = std::move(levels);
  c.codes.assign(codes.begin(), codes.end());
  return c;
}

// Ten accounts in two interleaved segments; every expected value below is worked by hand.
//  row seg seed neg   acv  employees industry  country
//   0   0   1    0    100     10     Software  US
//   1   1   0    1     50    100     Retail    US
//   2   0   1    0    200     20     Software  US
//   3   0   1    0    300     30     Software  GB
//   4   1   0    1     60    200     Retail    GB
//   5   0   0    0    NaN     40     Retail    US
//   6   1   0    0     70    300     Software  GB
//   7   0   1    0    500    NaN     Software  (missing)
//   8   1   0    1    NaN    400     Retail    US
//   9   0   0    0    400     50     (missing) US
struct Tiny {
  icp::Table table;
  std::vector<std::int32_t> segment = {0, 1, 0, 0, 1, 0, 1, 0, 1, 0};
  std::vector<std::uint8_t> seed = {1, 0, 1, 1, 0, 0, 0, 1, 0, 0};
  std::vector<std::uint8_t> negative = {0, 1, 0, 0, 1, 0, 0, 0, 1, 0};
  icp::SummaryOptions options;

  Tiny() {
    table.rows = 10;
    table.source = "tiny.csv";
    table.columns.push_back(numeric("acv", {100, 50, 200, 300, 60, kNaN, 70, 500, kNaN, 400}));
    table.columns.push_back(numeric("employees", {10, 100, 20, 30, 200, 40, 300, kNaN, 400, 50}));
    table.columns.push_back(
        categorical("industry", {"Software", "Retail"}, {0, 1, 0, 0, 1, 1, 0, 0, 1, -1}));
    table.columns.push_back(categorical("country", {"US", "GB"}, {0, 0, 0, 1, 1, 0, 1, -1, 0, 0}));
    options.value_column = "acv";
    options.numeric_columns = {"employees"};
    options.categorical_columns = {"industry", "country"};
  }

  icp::IcpSummary run(int k = 2) const {
    return icp::summarize_segments(table, segment, k, seed, negative, options);
  }
};

TEST(SummaryCounts, SizesSharesSeedRatesAndLift) {
  const auto s = Tiny().run();
  EXPECT_EQ(s.rows, 10);
  EXPECT_EQ(s.seeds, 4);
  EXPECT_EQ(s.negatives, 3);
  EXPECT_DOUBLE_EQ(s.base_seed_rate, 0.4);
  ASSERT_EQ(s.segments.size(), 2u);
  const auto& a = s.segments[0];
  const auto& b = s.segments[1];
  EXPECT_EQ(a.segment, 0);
  EXPECT_EQ(b.segment, 1);
  EXPECT_EQ(a.size, 6);
  EXPECT_EQ(b.size, 4);
  EXPECT_DOUBLE_EQ(a.share, 0.6);
  EXPECT_DOUBLE_EQ(b.share, 0.4);
  EXPECT_EQ(a.seed_count, 4);
  EXPECT_EQ(b.seed_count, 0);
  EXPECT_DOUBLE_EQ(a.seed_rate, 4.0 / 6.0);
  EXPECT_DOUBLE_EQ(b.seed_rate, 0.0);
  EXPECT_DOUBLE_EQ(a.lift, (4.0 / 6.0) / 0.4);
  EXPECT_DOUBLE_EQ(b.lift, 0.0);
  EXPECT_EQ(a.negative_count, 0);
  EXPECT_EQ(b.negative_count, 3);
  EXPECT_DOUBLE_EQ(a.negative_rate, 0.0);
  EXPECT_DOUBLE_EQ(b.negative_rate, 0.75);
}

TEST(SummaryCounts, ValueStatisticsIgnoreMissing) {
  const auto s = Tiny().run();
  // Segment 0 acv: 100 200 300 500 400 (row 5 missing); segment 1: 50 60 70 (row 8 missing).
  EXPECT_DOUBLE_EQ(s.segments[0].value_total, 1500.0);
  EXPECT_DOUBLE_EQ(s.segments[0].value_mean, 300.0);
  EXPECT_DOUBLE_EQ(s.segments[0].value_median, 300.0);
  EXPECT_DOUBLE_EQ(s.segments[1].value_total, 180.0);
  EXPECT_DOUBLE_EQ(s.segments[1].value_mean, 60.0);
  EXPECT_DOUBLE_EQ(s.segments[1].value_median, 60.0);
}

TEST(SummaryProfile, NumericQuantilesInOriginalUnits) {
  const auto s = Tiny().run();
  ASSERT_EQ(s.segments[0].numeric.size(), 1u);
  // Segment 0 employees: 10 20 30 40 50, one missing of six.
  const auto& a = s.segments[0].numeric[0];
  EXPECT_EQ(a.column, "employees");
  EXPECT_DOUBLE_EQ(a.q1, 20.0);
  EXPECT_DOUBLE_EQ(a.median, 30.0);
  EXPECT_DOUBLE_EQ(a.q3, 40.0);
  EXPECT_DOUBLE_EQ(a.mean, 30.0);
  EXPECT_DOUBLE_EQ(a.missing_share, 1.0 / 6.0);
  // Segment 1 employees: 100 200 300 400; h = 3p: q1 at 0.75, median at 1.5, q3 at 2.25.
  const auto& b = s.segments[1].numeric[0];
  EXPECT_DOUBLE_EQ(b.q1, 175.0);
  EXPECT_DOUBLE_EQ(b.median, 250.0);
  EXPECT_DOUBLE_EQ(b.q3, 325.0);
  EXPECT_DOUBLE_EQ(b.mean, 250.0);
  EXPECT_DOUBLE_EQ(b.missing_share, 0.0);
}

TEST(SummaryProfile, TopLevelsWithShareAndLift) {
  const auto s = Tiny().run();
  // Overall known cells: industry Software 5/9, Retail 4/9; country US 6/9, GB 3/9.
  const auto& a = s.segments[0].categorical;
  ASSERT_EQ(a.size(), 2u);
  EXPECT_EQ(a[0].column, "industry");
  ASSERT_EQ(a[0].top.size(), 2u);
  EXPECT_EQ(a[0].top[0].level, "Software");
  EXPECT_DOUBLE_EQ(a[0].top[0].share, 0.8);
  EXPECT_DOUBLE_EQ(a[0].top[0].lift, 0.8 / (5.0 / 9.0));
  EXPECT_EQ(a[0].top[1].level, "Retail");
  EXPECT_DOUBLE_EQ(a[0].top[1].share, 0.2);
  EXPECT_DOUBLE_EQ(a[0].top[1].lift, 0.2 / (4.0 / 9.0));
  EXPECT_EQ(a[1].column, "country");
  ASSERT_EQ(a[1].top.size(), 2u);
  EXPECT_EQ(a[1].top[0].level, "US");
  EXPECT_DOUBLE_EQ(a[1].top[0].share, 0.8);
  EXPECT_DOUBLE_EQ(a[1].top[0].lift, 0.8 / (6.0 / 9.0));

  const auto& b = s.segments[1].categorical;
  EXPECT_EQ(b[0].top[0].level, "Retail");
  EXPECT_DOUBLE_EQ(b[0].top[0].share, 0.75);
  EXPECT_DOUBLE_EQ(b[0].top[0].lift, 0.75 / (4.0 / 9.0));
  // US and GB tie at 2 of 4: the lower code (US, first seen) comes first.
  ASSERT_EQ(b[1].top.size(), 2u);
  EXPECT_EQ(b[1].top[0].level, "US");
  EXPECT_EQ(b[1].top[1].level, "GB");
  EXPECT_DOUBLE_EQ(b[1].top[1].share, 0.5);
  EXPECT_DOUBLE_EQ(b[1].top[1].lift, 0.5 / (3.0 / 9.0));
}

TEST(SummaryProfile, TopLevelsIsACap) {
  Tiny t;
  t.options.top_levels = 1;
  const auto s = t.run();
  ASSERT_EQ(s.segments[0].categorical[0].top.size(), 1u);
  EXPECT_EQ(s.segments[0].categorical[0].top[0].level, "Software");
}

TEST(SummaryLabels, RankAndLabelsOfTinyTable) {
  const auto s = Tiny().run();
  // Smoothed: (4 + 20*0.4) / 26 = 0.46 vs (0 + 8) / 24 = 0.33.
  EXPECT_EQ(s.segments[0].icp_rank, 1);
  EXPECT_EQ(s.segments[1].icp_rank, 2);
  // Segment 0: lift 1.67 >= 1.5 with 4 >= 3 seeds. Segment 1: negatives among its labelled
  // accounts 3 / (0 + 3) = 1 vs 3 / (4 + 3) overall: lift 2.33 >= 1 / 0.5, with 3 >= 3 negatives.
  EXPECT_EQ(s.segments[0].label, "ICP");
  EXPECT_EQ(s.segments[1].label, "negative-ICP");
}

// seg 0: 2 accounts, 1 seed (raw rate 0.5); seg 1: 100 accounts, 30 seeds; seg 2: 98, 9 seeds.
struct RankCase {
  icp::Table table;
  std::vector<std::int32_t> segment;
  std::vector<std::uint8_t> seed;
  RankCase() {
    auto add = [&](std::int32_t s, int count, int seeds) {
      for (int i = 0; i < count; ++i) {
        segment.push_back(s);
        seed.push_back(i < seeds ? 1 : 0);
      }
    };
    add(2, 98, 9);
    add(0, 2, 1);
    add(1, 100, 30);
    table.rows = segment.size();
  }
};

TEST(SummaryLabels, SmoothedRankKeepsTinySegmentsFromRankingFirst) {
  RankCase c;
  const auto s = icp::summarize_segments(c.table, c.segment, 3, c.seed, {}, {});
  EXPECT_DOUBLE_EQ(s.base_seed_rate, 0.2);
  // (1 + 4) / 22 = 0.227, (30 + 4) / 120 = 0.283, (9 + 4) / 118 = 0.110.
  EXPECT_EQ(s.segments[1].icp_rank, 1);
  EXPECT_EQ(s.segments[0].icp_rank, 2);
  EXPECT_EQ(s.segments[2].icp_rank, 3);
  // Segment 0 has lift 2.5 but one seed (< min_seeds 3): no label. Segment 1 has lift exactly
  // 1.5. Segment 2 has lift 0.45 with 98 * 0.2 = 19.6 seeds expected.
  EXPECT_EQ(s.segments[0].label, "neutral");
  EXPECT_EQ(s.segments[1].label, "ICP");
  EXPECT_EQ(s.segments[2].label, "negative-ICP");
}

TEST(SummaryLabels, EqualSmoothedRatesRankByLowerSegmentId) {
  icp::Table t;
  t.rows = 8;
  const std::vector<std::int32_t> segment = {2, 1, 0, 2, 1, 0, 1, 2};
  const std::vector<std::uint8_t> seed = {1, 1, 0, 0, 0, 0, 0, 0};
  // Segments 1 and 2 both have 3 accounts and 1 seed; segment 0 has none.
  const auto s = icp::summarize_segments(t, segment, 3, seed, {}, {});
  EXPECT_EQ(s.segments[1].icp_rank, 1);
  EXPECT_EQ(s.segments[2].icp_rank, 2);
  EXPECT_EQ(s.segments[0].icp_rank, 3);
}

TEST(SummaryLabels, MinSeedsGatesNegativeByAbsence) {
  RankCase c;
  icp::SummaryOptions o;
  o.min_seeds = 20;  // segment 2 would expect 19.6 seeds at the base rate: not enough evidence
  const auto s = icp::summarize_segments(c.table, c.segment, 3, c.seed, {}, o);
  EXPECT_EQ(s.segments[2].label, "neutral");
  EXPECT_EQ(s.segments[1].label, "ICP");  // 30 seeds >= 20
}

TEST(SummaryLabels, ChurnWhereTheCustomersAreDoesNotHideTheIcp) {
  // Segment 0: 100 accounts, 40 seeds, 8 negatives; segment 1: 300 accounts, 3 seeds, 2
  // negatives. Per row, segment 0 churns at 0.08 vs 0.025 overall (3.2x), but among labelled
  // accounts its negative share is 8/48 = 0.167 vs 10/53 = 0.189 overall (0.88x): it is the ICP.
  icp::Table t;
  std::vector<std::int32_t> segment;
  std::vector<std::uint8_t> seed, negative;
  auto add = [&](std::int32_t s, int count, int seeds, int negatives) {
    for (int i = 0; i < count; ++i) {
      segment.push_back(s);
      seed.push_back(i < seeds ? 1 : 0);
      negative.push_back(i >= seeds && i < seeds + negatives ? 1 : 0);
    }
  };
  add(0, 100, 40, 8);
  add(1, 300, 3, 2);
  t.rows = segment.size();
  const auto s = icp::summarize_segments(t, segment, 2, seed, negative, {});
  EXPECT_EQ(s.segments[0].label, "ICP");
  EXPECT_EQ(s.segments[1].label, "negative-ICP");  // lift 0.09 with 32 seeds expected
}

TEST(SummaryDescription, YearsAreShownAsYears) {
  // Both segments hold 2008, 2010, 2012, 2014, 2016: no deviation from the overall median, so
  // the column is shown as the segment IQR (2010 to 2014), as years rather than "2K".
  icp::Table t;
  t.rows = 10;
  t.columns.push_back(numeric("founded_year", {2008, 2010, 2012, 2014, 2016, 2008, 2010, 2012,
                                               2014, 2016}));
  const std::vector<std::int32_t> segment = {0, 0, 0, 0, 0, 1, 1, 1, 1, 1};
  const std::vector<std::uint8_t> seed(10, 0);
  icp::SummaryOptions o;
  o.numeric_columns = {"founded_year"};
  const auto s = icp::summarize_segments(t, segment, 2, seed, {}, o);
  EXPECT_NE(s.segments[0].description.find("founded year 2010\u20132014"), std::string::npos)
      << s.segments[0].description;
}

TEST(SummaryQuantiles, MatchNumpyLinearInterpolation) {
  // numpy.percentile(x, [25, 50, 75]) with the default (linear) method, worked by hand:
  // [1 3 5 7 9 15]: h = 5p -> 1.25, 2.5, 3.75 -> 3.5, 6, 8.5.
  // [2 10]: h = p -> 0.25, 0.5, 0.75 -> 4, 6, 8.    [42]: 42 everywhere.
  icp::Table t;
  t.rows = 12;
  t.columns.push_back(numeric("x", {7, 2, 1, kNaN, 3, 15, 42, 9, 10, 5, kNaN, kNaN}));
  const std::vector<std::int32_t> segment = {0, 1, 0, 1, 0, 0, 2, 0, 1, 0, 3, 3};
  const std::vector<std::uint8_t> seed(12, 0);
  icp::SummaryOptions o;
  o.numeric_columns = {"x"};
  const auto s = icp::summarize_segments(t, segment, 4, seed, {}, o);
  const auto& a = s.segments[0].numeric[0];
  EXPECT_DOUBLE_EQ(a.q1, 3.5);
  EXPECT_DOUBLE_EQ(a.median, 6.0);
  EXPECT_DOUBLE_EQ(a.q3, 8.5);
  EXPECT_DOUBLE_EQ(a.mean, 40.0 / 6.0);
  const auto& b = s.segments[1].numeric[0];
  EXPECT_DOUBLE_EQ(b.q1, 4.0);
  EXPECT_DOUBLE_EQ(b.median, 6.0);
  EXPECT_DOUBLE_EQ(b.q3, 8.0);
  EXPECT_DOUBLE_EQ(b.missing_share, 1.0 / 3.0);
  const auto& c = s.segments[2].numeric[0];
  EXPECT_DOUBLE_EQ(c.q1, 42.0);
  EXPECT_DOUBLE_EQ(c.median, 42.0);
  EXPECT_DOUBLE_EQ(c.q3, 42.0);
  // All missing: no statistic, but a well-defined missing share.
  const auto& d = s.segments[3].numeric[0];
  EXPECT_TRUE(std::isnan(d.median));
  EXPECT_TRUE(std::isnan(d.q1));
  EXPECT_TRUE(std::isnan(d.mean));
  EXPECT_DOUBLE_EQ(d.missing_share, 1.0);
}

// Two segments of five built so that only product sign-ups stands out (see the hand-worked
// overall quartiles in the test body).
icp::Table description_table() {
  icp::Table t;
  t.rows = 10;
  t.columns.push_back(numeric("employees", {30, 50, 100, 200, 400, 20, 60, 90, 150, 500}));
  t.columns.push_back(numeric("revenue", {4e6, 5e6, 10e6, 20e6, 30e6, 1e6, 6e6, 9e6, 25e6, 40e6}));
  t.columns.push_back(numeric("product_signups_30d", {40, 50, 60, 70, 80, 0, 0, 0, 1, 2}));
  t.columns.push_back(categorical("industry", {"Software", "E-commerce", "Retail", "Manufacturing"},
                                  {0, 0, 0, 1, 1, 2, 2, 2, 0, 3}));
  t.columns.push_back(categorical("country", {"US", "GB", "DE"}, {0, 0, 0, 1, 1, 0, 0, 0, 2, 2}));
  return t;
}

TEST(SummaryDescription, NamesDistinctiveLevelsRangesAndHighColumns) {
  const auto t = description_table();
  const std::vector<std::int32_t> segment = {0, 0, 0, 0, 0, 1, 1, 1, 1, 1};
  const std::vector<std::uint8_t> seed(10, 0);
  icp::SummaryOptions o;
  o.numeric_columns = {"employees", "revenue", "product_signups_30d"};
  o.categorical_columns = {"industry", "country"};
  const auto s = icp::summarize_segments(t, segment, 2, seed, {}, o);
  // Overall medians / IQRs (type 7 over the 10 values): employees 95 / 135, revenue 9.5M /
  // 18.5M, sign-ups 21 / 57.25. Segment 0 medians 100, 10M, 60: only sign-ups is >= 0.5 IQR
  // away, and above. Industry lifts in segment 0: Software 0.6/0.4, E-commerce 0.4/0.2;
  // country: US 0.6/0.6 (not distinctive), GB 0.4/0.2.
  const std::string& a = s.segments[0].description;
  EXPECT_NE(a.find("Software"), std::string::npos) << a;
  EXPECT_NE(a.find("$"), std::string::npos) << a;
  EXPECT_NE(a.find("high product signups"), std::string::npos) << a;
  EXPECT_EQ(a,
            "Software and E-commerce, 50\u2013200 employees, $5\u201320M revenue, GB, "
            "high product signups");
  // Segment 1: Retail 0.6/0.3 and Manufacturing 0.2/0.1 are over-represented, Software 0.2/0.4
  // is not; sign-ups median 0 is 21/57.25 = 0.37 IQR below: not called "low".
  EXPECT_EQ(s.segments[1].description,
            "Retail and Manufacturing, 60\u2013150 employees, $6\u201325M revenue, "
            "0\u20131 product signups, DE");
}

TEST(SummaryDescription, HumanUnitsTwoSignificantDigitsAndCommonLevels) {
  icp::Table t;
  t.rows = 3;
  t.columns.push_back(numeric("funding", {500000, 1234567, 2000000}));
  t.columns.push_back(numeric("seats", {999, 1000, 1001}));
  t.columns.push_back(numeric("visits_90d", {0.123, 0.2, 0.3}));
  t.columns.push_back(categorical("industry", {"Software"}, {0, 0, 0}));
  icp::SummaryOptions o;
  o.numeric_columns = {"funding", "seats", "visits_90d"};
  o.categorical_columns = {"industry"};
  const auto s = icp::summarize_segments(t, std::vector<std::int32_t>(3, 0), 1,
                                         std::vector<std::uint8_t>(3, 0), {}, o);
  // funding q1 867283.5 -> $870K, q3 1617283.5 -> $1.6M; seats 999.5 and 1000.5 both -> 1K;
  // visits 0.1615 -> 0.16, 0.25. One segment: nothing deviates, every level has lift 1.
  EXPECT_EQ(s.segments[0].description,
            "mostly Software, $870K\u2013$1.6M funding, 1K seats, 0.16\u20130.25 visits");
}

TEST(SummaryDescription, StaysShortWithManyColumns) {
  icp::Table t;
  t.rows = 4;
  icp::SummaryOptions o;
  for (int c = 0; c < 30; ++c) {
    const std::string name = "metric_number_" + std::to_string(c);
    t.columns.push_back(numeric(name, {1.0 * c, 2.0 * c + 5, 3.0 * c, 4.0 * c + 1}));
    o.numeric_columns.push_back(name);
  }
  const auto s = icp::summarize_segments(t, std::vector<std::int32_t>{0, 1, 0, 1}, 2,
                                         std::vector<std::uint8_t>(4, 0), {}, o);
  for (const auto& seg : s.segments) {
    std::size_t chars = 0;
    for (char ch : seg.description) chars += (static_cast<unsigned char>(ch) & 0xC0) != 0x80;
    EXPECT_LE(chars, 160u) << seg.description;
    EXPECT_GT(chars, 0u);
  }
}

TEST(SummaryEmpty, EmptySegmentHasZeroRatesAndNoNaNInJson) {
  Tiny t;
  t.segment = {0, 2, 0, 0, 2, 0, 2, 0, 2, 0};  // segment 1 of 3 gets no account
  const auto s = t.run(3);
  ASSERT_EQ(s.segments.size(), 3u);
  const auto& e = s.segments[1];
  EXPECT_EQ(e.size, 0);
  EXPECT_EQ(e.share, 0.0);
  EXPECT_EQ(e.seed_count, 0);
  EXPECT_EQ(e.seed_rate, 0.0);
  EXPECT_EQ(e.lift, 0.0);
  EXPECT_EQ(e.negative_rate, 0.0);
  EXPECT_EQ(e.value_total, 0.0);
  EXPECT_TRUE(std::isnan(e.value_mean));
  EXPECT_EQ(e.numeric[0].missing_share, 0.0);
  EXPECT_TRUE(e.categorical[0].top.empty());
  EXPECT_EQ(e.label, "neutral");
  EXPECT_EQ(e.description, "empty segment");
  // (0 + 20 * 0.4) / 20 = 0.4, between segment 0 (0.46) and segment 2 (0.33).
  EXPECT_EQ(e.icp_rank, 2);

  const std::string text = icp::to_json(s);
  EXPECT_EQ(text.find("NaN"), std::string::npos);
  EXPECT_EQ(text.find("nan"), std::string::npos);
  const auto j = nlohmann::json::parse(text);  // throws on anything that is not JSON
  EXPECT_TRUE(j["segments"][1]["value_mean"].is_null());
  EXPECT_TRUE(j["segments"][1]["numeric"][0]["median"].is_null());
  EXPECT_EQ(j["segments"][1]["seed_rate"].get<double>(), 0.0);
  EXPECT_EQ(j["segments"][1]["size"].get<std::int64_t>(), 0);
}

TEST(SummaryJson, ParsesBackWithExpectedKeys) {
  const auto s = Tiny().run();
  const auto j = nlohmann::json::parse(icp::to_json(s));
  for (const char* key : {"rows", "seeds", "negatives", "base_seed_rate", "segments"}) {
    EXPECT_TRUE(j.contains(key)) << key;
  }
  EXPECT_EQ(j["rows"].get<std::int64_t>(), 10);
  EXPECT_DOUBLE_EQ(j["base_seed_rate"].get<double>(), 0.4);
  ASSERT_EQ(j["segments"].size(), 2u);
  const auto& a = j["segments"][0];
  for (const char* key :
       {"segment", "size", "share", "seed_count", "seed_rate", "lift", "negative_count",
        "negative_rate", "value_mean", "value_median", "value_total", "icp_rank", "label",
        "description", "numeric", "categorical"}) {
    EXPECT_TRUE(a.contains(key)) << key;
  }
  EXPECT_EQ(a["size"].get<std::int64_t>(), 6);
  EXPECT_EQ(a["label"].get<std::string>(), "ICP");
  EXPECT_DOUBLE_EQ(a["value_total"].get<double>(), 1500.0);
  EXPECT_EQ(a["numeric"][0]["column"].get<std::string>(), "employees");
  EXPECT_DOUBLE_EQ(a["numeric"][0]["q3"].get<double>(), 40.0);
  EXPECT_EQ(a["categorical"][0]["top"][0]["level"].get<std::string>(), "Software");
  EXPECT_DOUBLE_EQ(a["categorical"][0]["top"][0]["share"].get<double>(), 0.8);
  EXPECT_EQ(a["description"].get<std::string>(), s.segments[0].description);
}

TEST(SummaryJson, NoValueColumnWritesNulls) {
  Tiny t;
  t.options.value_column.clear();
  const auto j = nlohmann::json::parse(icp::to_json(t.run()));
  EXPECT_TRUE(j["segments"][0]["value_total"].is_null());
  EXPECT_TRUE(j["segments"][0]["value_median"].is_null());
}

// Several chunks of kReduceChunkRows, so threads really split the rows.
struct Large {
  icp::Table table;
  std::vector<std::int32_t> segment;
  std::vector<std::uint8_t> seed, negative;
  icp::SummaryOptions options;
  static constexpr int k = 5;
  Large() {
    const std::size_t n = 3 * icp::kReduceChunkRows + 123;
    table.rows = n;
    std::uint64_t state = 12345;
    auto next = [&] {
      state = state * 6364136223846793005ULL + 1442695040888963407ULL;
      return static_cast<std::uint32_t>(state >> 33);
    };
    std::vector<double> value(n), x(n);
    std::vector<std::int32_t> codes(n);
    for (std::size_t i = 0; i < n; ++i) {
      segment.push_back(static_cast<std::int32_t>(next() % k));
      seed.push_back(next() % 10 == 0 ? 1 : 0);
      negative.push_back(next() % 13 == 0 ? 1 : 0);
      value[i] = next() % 17 == 0 ? kNaN : static_cast<double>(next() % 100000) * 0.37;
      x[i] = next() % 11 == 0 ? kNaN : static_cast<double>(next() % 1000) / 7.0;
      codes[i] = static_cast<std::int32_t>(next() % 7) - 1;
    }
    table.columns.push_back(numeric("acv", value));
    table.columns.push_back(numeric("score", x));
    table.columns.push_back(categorical("tier", {"a", "b", "c", "d", "e", "f"}, codes));
    options.value_column = "acv";
    options.numeric_columns = {"score", "acv"};
    options.categorical_columns = {"tier"};
  }
  icp::IcpSummary run() const {
    return icp::summarize_segments(table, segment, k, seed, negative, options);
  }
};

TEST(SummaryThreads, OneAndTwoThreadsGiveIdenticalResults) {
  const Large data;
  const int before = icp::threads();
  icp::set_threads(1);
  const auto one = data.run();
  icp::set_threads(2);
  const auto two = data.run();
  icp::set_threads(before);
  ASSERT_EQ(one.segments.size(), two.segments.size());
  std::int64_t total = 0;
  for (std::size_t s = 0; s < one.segments.size(); ++s) {
    const auto& a = one.segments[s];
    const auto& b = two.segments[s];
    total += a.size;
    EXPECT_EQ(a.size, b.size);
    EXPECT_EQ(std::bit_cast<std::uint64_t>(a.value_total),
              std::bit_cast<std::uint64_t>(b.value_total));
    EXPECT_EQ(std::bit_cast<std::uint64_t>(a.value_mean),
              std::bit_cast<std::uint64_t>(b.value_mean));
    EXPECT_EQ(std::bit_cast<std::uint64_t>(a.numeric[0].mean),
              std::bit_cast<std::uint64_t>(b.numeric[0].mean));
    EXPECT_EQ(a.description, b.description);
  }
  EXPECT_EQ(total, static_cast<std::int64_t>(data.table.rows));
  // JSON prints doubles in shortest round-trip form: equal text means equal bits everywhere.
  EXPECT_EQ(icp::to_json(one), icp::to_json(two));
}

/// The first line where two JSON texts differ ("" when equal): a whole summary in a failure
/// message is unreadable.
std::string first_difference(const std::string& a, const std::string& b) {
  std::size_t i = 0, line = 1;
  while (i < a.size() && i < b.size() && a[i] == b[i]) line += a[i++] == '\n' ? 1 : 0;
  if (i == a.size() && i == b.size()) return "";
  auto around = [&](const std::string& s) {
    const std::size_t from = s.rfind('\n', i == 0 ? 0 : i - 1);
    const std::size_t begin = from == std::string::npos ? 0 : from + 1;
    return s.substr(begin, s.find('\n', i) - begin);
  };
  return "line " + std::to_string(line) + ": '" + around(a) + "' vs '" + around(b) + "'";
}

TEST(SummaryStreamed, TableReadInBlocksGivesTheSameSummary) {
  // JSON prints doubles in shortest round-trip form: equal text means equal bits everywhere.
  const Large data;
  const std::string whole = icp::to_json(data.run());

  for (const auto& sizes :
       std::vector<std::vector<std::size_t>>{{data.table.rows}, {1000}, {4096, 5, 777}}) {
    int scans = 0;
    const icp::IcpSummary streamed =
        icp::summarize_segments(icp_test::scan_of(data.table, sizes, &scans), data.segment,
                                Large::k, data.seed, data.negative, data.options);
    EXPECT_EQ(first_difference(icp::to_json(streamed), whole), "") << "blocks of " << sizes.front();
    EXPECT_GE(scans, 2);
  }
}

TEST(SummaryStreamed, QuartilesOfAWideBucketTakeSeveralLooks) {
  // 150k values sharing their top 16 bits: the first bucket is too large to keep, so the
  // selection narrows it digit by digit over further scans; the result must not change.
  const std::size_t n = 150000;
  icp::Table table;
  table.source = "wide.csv";
  table.rows = n;
  std::vector<double> x(n);
  std::vector<std::int32_t> segment(n);
  std::vector<std::uint8_t> seed(n, 0);
  std::uint64_t state = 99;
  for (std::size_t i = 0; i < n; ++i) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    x[i] = i % 50 == 0 ? kNaN : 1.0e6 + static_cast<double>(state >> 40) * 1e-3;
    segment[i] = static_cast<std::int32_t>(i % 3 == 0);
    seed[i] = i % 9 == 0 ? 1 : 0;
  }
  table.columns.push_back(numeric("revenue", x));
  icp::SummaryOptions options;
  options.numeric_columns = {"revenue"};
  options.value_column = "revenue";
  const std::string whole =
      icp::to_json(icp::summarize_segments(table, segment, 2, seed, {}, options));
  int scans = 0;
  const icp::IcpSummary streamed = icp::summarize_segments(
      icp_test::scan_of(table, {20000}, &scans), segment, 2, seed, {}, options);
  EXPECT_EQ(first_difference(icp::to_json(streamed), whole), "");
  EXPECT_GE(scans, 3);
}

TEST(SummaryThreads, SegmentCountsMatchAPlainLoop) {
  const Large data;
  const auto s = data.run();
  std::vector<std::int64_t> size(Large::k, 0), seeds(Large::k, 0), negatives(Large::k, 0);
  std::vector<double> total(Large::k, 0.0);
  for (std::size_t i = 0; i < data.table.rows; ++i) {
    const auto g = static_cast<std::size_t>(data.segment[i]);
    ++size[g];
    seeds[g] += data.seed[i];
    negatives[g] += data.negative[i];
    const double v = data.table.columns[0].numeric[i];
    if (!std::isnan(v)) total[g] += v;
  }
  for (std::size_t g = 0; g < Large::k; ++g) {
    EXPECT_EQ(s.segments[g].size, size[g]);
    EXPECT_EQ(s.segments[g].seed_count, seeds[g]);
    EXPECT_EQ(s.segments[g].negative_count, negatives[g]);
    EXPECT_NEAR(s.segments[g].value_total, total[g], 1e-9 * total[g]);
  }
}

template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const icp::Error& e) {
    return e.what();
  }
  return "(no icp::Error)";
}

TEST(SummaryValidation, RejectsBadInputsWithClearMessages) {
  Tiny t;
  auto contains = [](const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
  };
  {
    Tiny bad = t;
    bad.segment[7] = 2;
    const auto m = error_of([&] { bad.run(2); });
    EXPECT_TRUE(contains(m, "segment id 2") && contains(m, "row 7")) << m;
  }
  {
    Tiny bad = t;
    bad.segment[3] = -1;
    const auto m = error_of([&] { bad.run(2); });
    EXPECT_TRUE(contains(m, "segment id -1") && contains(m, "row 3")) << m;
  }
  {
    Tiny bad = t;
    bad.seed[4] = 2;
    EXPECT_TRUE(contains(error_of([&] { bad.run(); }), "seed flag 2"));
  }
  {
    Tiny bad = t;
    bad.segment.pop_back();
    EXPECT_TRUE(contains(error_of([&] { bad.run(); }), "9 segment ids for 10 rows"));
  }
  {
    Tiny bad = t;
    bad.seed.push_back(0);
    EXPECT_TRUE(contains(error_of([&] { bad.run(); }), "11 seed flags"));
  }
  {
    Tiny bad = t;
    bad.negative.resize(3);
    EXPECT_TRUE(contains(error_of([&] { bad.run(); }), "3 negative-seed flags"));
  }
  {
    Tiny bad = t;
    bad.options.numeric_columns = {"employes"};
    EXPECT_TRUE(contains(error_of([&] { bad.run(); }), "'employes'"));
  }
  {
    Tiny bad = t;
    bad.options.categorical_columns = {"acv"};
    EXPECT_TRUE(contains(error_of([&] { bad.run(); }), "not categorical"));
  }
  {
    Tiny bad = t;
    bad.options.value_column = "industry";
    EXPECT_TRUE(contains(error_of([&] { bad.run(); }), "not numeric"));
  }
  {
    Tiny bad = t;
    bad.table.columns[2].codes[5] = 9;  // industry has 2 levels
    EXPECT_TRUE(contains(error_of([&] { bad.run(); }), "code 9"));
  }
  EXPECT_TRUE(contains(error_of([&] { t.run(0); }), "k must be"));
  {
    Tiny bad = t;
    bad.options.negative_lift = 0.0;
    EXPECT_TRUE(contains(error_of([&] { bad.run(); }), "negative_lift"));
  }
}

}  // namespace
