#include <gtest/gtest.h>

#include <limits>

#include "icp/error.hpp"
#include "icp/rule.hpp"

namespace {

icp::Table accounts() {
  icp::Table t;
  t.source = "a.csv";
  t.rows = 5;
  icp::Column cust;
  cust.name = "is_customer";
  cust.numeric = {1, 1, 0, 1, 1};
  icp::Column acv;
  acv.name = "acv";
  acv.numeric = {25000, 10000, 0, std::numeric_limits<double>::quiet_NaN(), 20000};
  icp::Column status;
  status.name = "status";
  status.type = icp::ColumnType::categorical;
  status.levels = {"operating", "acquired", "ipo"};
  status.codes = {1, 2, 0, 1, -1};
  t.columns = {cust, acv, status};
  return t;
}

TEST(Rule, NumericClausesJoinedByAnd) {
  const auto r = icp::RowRule::parse("is_customer == 1 and acv >= 20000", "job: seeds.rule");
  EXPECT_EQ(r.evaluate(accounts()), (std::vector<std::uint8_t>{1, 0, 0, 0, 1}));
  EXPECT_EQ(r.column_type("acv"), icp::ColumnType::numeric);
}

TEST(Rule, InListOverCategoricalAndMissingNeverMatches) {
  const auto r = icp::RowRule::parse("status in (\"acquired\", ipo)", "x");
  EXPECT_EQ(r.column_type("status"), icp::ColumnType::categorical);
  EXPECT_EQ(r.evaluate(accounts()), (std::vector<std::uint8_t>{1, 1, 0, 1, 0}));
  const auto ne = icp::RowRule::parse("status != operating", "x");
  EXPECT_EQ(ne.evaluate(accounts()), (std::vector<std::uint8_t>{1, 1, 0, 1, 0}));
}

TEST(Rule, OperatorsWithoutSpaces) {
  const auto r = icp::RowRule::parse("acv>10000 and acv<=25000", "x");
  EXPECT_EQ(r.evaluate(accounts()), (std::vector<std::uint8_t>{1, 0, 0, 0, 1}));
}

TEST(Rule, SyntaxErrorsNameOriginAndPosition) {
  try {
    (void)icp::RowRule::parse("acv >= ", "job.toml: seeds.rule");
    FAIL();
  } catch (const icp::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("job.toml: seeds.rule"), std::string::npos);
  }
  EXPECT_THROW((void)icp::RowRule::parse("acv ~ 3", "x"), icp::ConfigError);
  EXPECT_THROW((void)icp::RowRule::parse("status >= big", "x"), icp::ConfigError);
  EXPECT_THROW((void)icp::RowRule::parse("a == 1 or b == 2", "x"), icp::ConfigError);
}

TEST(Rule, UnknownColumnAndTypeMismatch) {
  EXPECT_THROW((void)icp::RowRule::parse("revenue > 1", "x").evaluate(accounts()),
               icp::ConfigError);
  EXPECT_THROW((void)icp::RowRule::parse("acv == big", "x").evaluate(accounts()),
               icp::ConfigError);
}

}  // namespace
