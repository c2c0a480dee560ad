#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "icp/error.hpp"
#include "icp/table.hpp"

namespace {

icp::Table small_table() {
  icp::Table t;
  t.rows = 3;
  t.source = "accounts.csv";
  icp::Column num;
  num.name = "acv";
  num.numeric = {1.0, std::numeric_limits<double>::quiet_NaN(), 3.0};
  icp::Column cat;
  cat.name = "industry";
  cat.type = icp::ColumnType::categorical;
  cat.codes = {0, -1, 1};
  cat.levels = {"Software", "Retail"};
  icp::Column txt;
  txt.name = "id";
  txt.type = icp::ColumnType::text;
  txt.text = {"a", "", "c"};
  t.columns = {num, cat, txt};
  return t;
}

TEST(Table, FindsColumnsByName) {
  const auto t = small_table();
  ASSERT_NE(t.find("industry"), nullptr);
  EXPECT_EQ(t.find("industry")->levels.size(), 2u);
  EXPECT_EQ(t.find("nope"), nullptr);
}

TEST(Table, AtNamesSourceAndColumnWhenAbsent) {
  const auto t = small_table();
  try {
    (void)t.at("revenue");
    FAIL() << "expected icp::Error";
  } catch (const icp::Error& e) {
    EXPECT_NE(std::string(e.what()).find("accounts.csv"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("'revenue'"), std::string::npos);
  }
}

TEST(Table, MissingCellsPerType) {
  const auto t = small_table();
  for (const auto& c : t.columns) {
    EXPECT_EQ(c.size(), 3u) << c.name;
    EXPECT_FALSE(c.is_missing(0)) << c.name;
    EXPECT_TRUE(c.is_missing(1)) << c.name;
    EXPECT_FALSE(c.is_missing(2)) << c.name;
  }
}

TEST(InputError, MessageNamesFileLineColumnAndValue) {
  icp::InputError e("a.csv", 12, "employees", 4, "abc", "not a number");
  EXPECT_STREQ(e.what(), "a.csv:12: column 'employees' (4): not a number: 'abc'");
  EXPECT_EQ(e.line(), 12);
  EXPECT_EQ(e.column_number(), 4);
}

}  // namespace
