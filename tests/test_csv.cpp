#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "icp/csv.hpp"
#include "icp/error.hpp"
#include "icp/text.hpp"
#include "test_bits.hpp"

namespace {

namespace fs = std::filesystem;

const double kNaN = std::numeric_limits<double>::quiet_NaN();

/// A fresh directory per test, removed afterwards.
class CsvTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = "icp_csv_" + std::to_string(::getpid()) + "_" + info->test_suite_name() +
                       "_" + info->name();
    // Parameterized names contain '/', which would nest directories that TearDown leaves.
    std::replace(name.begin(), name.end(), '/', '_');
    dir_ = fs::temp_directory_path() / name;
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
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

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

/// The account-table shape most tests use: id (text), acv (numeric), industry (categorical).
icp::CsvOptions account_options() {
  icp::CsvOptions o;
  o.columns = {req("id", icp::ColumnType::text), req("acv", icp::ColumnType::numeric),
               req("industry", icp::ColumnType::categorical)};
  return o;
}

using icp_test::same_bits;

void expect_same_table(const icp::Table& a, const icp::Table& b, const std::string& what) {
  ASSERT_EQ(a.rows, b.rows) << what;
  EXPECT_EQ(a.source_line, b.source_line) << what;
  ASSERT_EQ(a.columns.size(), b.columns.size()) << what;
  for (std::size_t k = 0; k < a.columns.size(); ++k) {
    const auto& x = a.columns[k];
    const auto& y = b.columns[k];
    EXPECT_EQ(x.name, y.name) << what;
    EXPECT_TRUE(same_bits(x.numeric, y.numeric)) << what << " column " << x.name;
    EXPECT_EQ(x.codes, y.codes) << what << " column " << x.name;
    EXPECT_EQ(x.levels, y.levels) << what << " column " << x.name;
    EXPECT_EQ(x.text, y.text) << what << " column " << x.name;
  }
}

// ---------------------------------------------------------------------------------------------
// Malformed and edge inputs, each with its exact message. Every case runs at the default chunk
// size on one thread and at a 3-byte chunk on two threads: the message must not change.

struct ErrorCase {
  const char* name;
  std::string content;
  std::string expected;  ///< what() after the file path
  std::string unique = "";
  std::vector<std::string> missing = {"", "NA", "N/A", "null", "NULL", "#N/A", "#NAME?"};
  char delimiter = ',';
  bool quarantine = false;
  std::vector<icp::ColumnRequest> extra = {};
};

const std::string kHead = "id,acv,industry\n";

std::vector<ErrorCase> error_cases() {
  std::vector<ErrorCase> c;
  c.push_back(
      {"NotANumber", kHead + "a,1,x\nb,abc,y\n", ":3: column 'acv' (2): not a number: 'abc'"});
  c.push_back(
      {"TrailingJunk", kHead + "a,12abc,x\n", ":2: column 'acv' (2): not a number: '12abc'"});
  c.push_back({"InnerSpace", kHead + "a,1 2,x\n", ":2: column 'acv' (2): not a number: '1 2'"});
  c.push_back({"Hex", kHead + "a,0x10,x\n", ":2: column 'acv' (2): not a number: '0x10'"});
  c.push_back({"DoubleMinus", kHead + "a,--1,x\n", ":2: column 'acv' (2): not a number: '--1'"});
  c.push_back({"LonePlus", kHead + "a,+,x\n", ":2: column 'acv' (2): not a number: '+'"});
  c.push_back(
      {"QuotedComma", kHead + "a,\"1,5\",x\n", ":2: column 'acv' (2): not a number: '1,5'"});
  c.push_back({"Inf", kHead + "a,inf,x\n", ":2: column 'acv' (2): infinite value: 'inf'"});
  c.push_back({"MinusInfinity", kHead + "a, -Infinity ,x\n",
               ":2: column 'acv' (2): infinite value: '-Infinity'"});
  c.push_back({"NaN", kHead + "a,nan,x\n", ":2: column 'acv' (2): NaN value: 'nan'"});
  c.push_back({"QuotedNaN", kHead + "a,\"NaN\",x\n", ":2: column 'acv' (2): NaN value: 'NaN'"});
  c.push_back({"AboveFloat", kHead + "a,1e39,x\n",
               ":2: column 'acv' (2): value out of float32 range: '1e39'"});
  c.push_back({"BelowFloat", kHead + "a,-3.5e38,x\n",
               ":2: column 'acv' (2): value out of float32 range: '-3.5e38'"});
  c.push_back({"DoubleOverflow", kHead + "a,1e999,x\n",
               ":2: column 'acv' (2): value out of float32 range: '1e999'"});
  c.push_back({"TooFewFields", kHead + "a,1,x\nb,2\n", ":3: expected 3 fields, found 2: 'b,2'"});
  c.push_back({"TooManyFields", kHead + "a,1,x,z\n", ":2: expected 3 fields, found 4: 'a,1,x,z'"});
  c.push_back({"LongRecordTruncated", kHead + "a," + std::string(100, '7') + "\n",
               ":2: expected 3 fields, found 2: 'a," + std::string(78, '7') + "'"});
  c.push_back({"Unterminated", kHead + "a,1,x\n\"b,2,y\n",
               ":3: column 'id' (1): unterminated quoted field: '\"b,2,y\n'"});
  c.push_back({"UnterminatedAfterMultiline", kHead + "\"a\nb\",1,x\nc,2,\"y\n",
               ":4: column 'industry' (3): unterminated quoted field: '\"y\n'"});
  c.push_back({"UnterminatedEvenInQuarantine", kHead + "a,1,x\nb,2,\"y",
               ":3: column 'industry' (3): unterminated quoted field: '\"y'"});
  c.back().quarantine = true;
  c.push_back({"UnterminatedHeader", "\"id,acv\n", ":1: unterminated quoted field: '\"id,acv\n'"});
  c.push_back(
      {"MissingColumn", "id,industry\na,x\n", ":1: column 'acv': missing column in header: 'acv'"});
  c.push_back({"MissingColumnEvenInQuarantine", "id,acv\na,1\n",
               ":1: column 'industry': missing column in header: 'industry'"});
  c.back().quarantine = true;
  c.push_back({"MissingUniqueColumn", kHead + "a,1,x\n",
               ":1: column 'email': missing column in header: 'email'"});
  c.back().unique = "email";
  c.push_back({"Empty", "", ": empty file: ''"});
  c.push_back({"OnlyBlankLines", "\n\r\n\r", ": empty file: ''"});
  c.push_back({"OnlyBom", "\xEF\xBB\xBF", ": empty file: ''"});
  c.push_back(
      {"Duplicate", kHead + "a,1,x\nb,2,y\na,3,z\n", ":4: column 'id' (1): duplicate value: 'a'"});
  c.back().unique = "id";
  c.push_back({"DuplicateBeforeLaterNaN", kHead + "a,1,x\na,2,y\nb,nan,z\n",
               ":3: column 'id' (1): duplicate value: 'a'"});
  c.back().unique = "id";
  c.push_back({"NaNBeforeLaterDuplicate", kHead + "a,1,x\nb,nan,y\na,3,z\n",
               ":3: column 'acv' (2): NaN value: 'nan'"});
  c.back().unique = "id";
  c.push_back({"LoneCrLines", "id,acv,industry\ra,1,x\rb,zz,y\r",
               ":3: column 'acv' (2): not a number: 'zz'"});
  c.push_back({"CrLfAndBlankLines", "id,acv,industry\r\n\r\na,1,x\r\n\r\nb,q,y\r\n",
               ":5: column 'acv' (2): not a number: 'q'"});
  c.push_back({"AfterMultilineField", kHead + "a,1,\"multi\nline\"\nb,x,y\n",
               ":4: column 'acv' (2): not a number: 'x'"});
  c.push_back({"EmptyNotMissing", kHead + "a,,x\n", ":2: column 'acv' (2): not a number: ''"});
  c.back().missing = {"?"};
  c.push_back({"FirstBadColumnInFileOrder", "score,id,acv,industry\nzz,a,yy,x\n",
               ":2: column 'score' (1): not a number: 'zz'"});
  c.back().extra = {req("score", icp::ColumnType::numeric)};
  c.push_back(
      {"Semicolon", "id;acv;industry\na;1,5;x\n", ":2: column 'acv' (2): not a number: '1,5'"});
  c.back().delimiter = ';';
  c.push_back({"BomThenBad", "\xEF\xBB\xBFid,acv,industry\na,1e40,x\n",
               ":2: column 'acv' (2): value out of float32 range: '1e40'"});
  return c;
}

class CsvErrors : public CsvTest, public ::testing::WithParamInterface<ErrorCase> {};

TEST_P(CsvErrors, ExactMessage) {
  const ErrorCase& ec = GetParam();
  const std::string p = write("in.csv", ec.content);
  for (const auto& [threads, chunk] : {std::pair<int, std::size_t>{1, 0}, {2, 3}}) {
    icp::CsvOptions o = account_options();
    for (const auto& r : ec.extra) o.columns.push_back(r);
    o.unique_column = ec.unique;
    o.missing_tokens = ec.missing;
    o.delimiter = ec.delimiter;
    o.threads = threads;
    o.chunk_bytes = chunk;
    if (ec.quarantine) {
      o.on_error = icp::ErrorPolicy::quarantine;
      o.quarantine_path = path("q.csv");
    }
    try {
      (void)icp::read_csv(p, o);
      ADD_FAILURE() << "no error; threads " << threads;
    } catch (const icp::InputError& e) {
      EXPECT_EQ(std::string(e.what()), p + ec.expected) << "threads " << threads;
      EXPECT_EQ(e.file(), p);
    }
    EXPECT_FALSE(fs::exists(path("q.csv"))) << "a failed read must not publish a quarantine file";
  }
}

INSTANTIATE_TEST_SUITE_P(Csv, CsvErrors, ::testing::ValuesIn(error_cases()),
                         [](const auto& tp) { return std::string(tp.param.name); });

TEST_F(CsvTest, MissingFileThrowsWithLineZero) {
  const std::string p = path("absent.csv");
  for (const auto policy : {icp::ErrorPolicy::fail, icp::ErrorPolicy::quarantine}) {
    icp::CsvOptions o = account_options();
    o.on_error = policy;
    try {
      (void)icp::read_csv(p, o);
      ADD_FAILURE() << "no error";
    } catch (const icp::InputError& e) {
      EXPECT_EQ(std::string(e.what()), p + ": file not found: '" + p + "'");
      EXPECT_EQ(e.line(), 0);
      EXPECT_EQ(e.reason(), "file not found");
    }
  }
}

TEST_F(CsvTest, ErrorFieldsAreStructured) {
  const std::string p = write("in.csv", kHead + "a,1,x\nb,oops,y\n");
  try {
    (void)icp::read_csv(p, account_options());
    FAIL() << "no error";
  } catch (const icp::InputError& e) {
    EXPECT_EQ(e.line(), 3);
    EXPECT_EQ(e.column(), "acv");
    EXPECT_EQ(e.column_number(), 2);
    EXPECT_EQ(e.value(), "oops");
    EXPECT_EQ(e.reason(), "not a number");
  }
}

// Text cells must be UTF-8 unless the file is declared Latin-1 (Crunchbase's `name` column has
// Latin-1 bytes): an invalid cell is a bad cell named like every other one.
TEST_F(CsvTest, InvalidUtf8TextIsABadCellNamedWithEscapedBytes) {
  // Row 3: "caf\xE9" (Latin-1 e-acute) in a categorical; row 2 has valid two-byte UTF-8.
  const std::string p = write("in.csv", kHead + "a,1,\xC3\xA9t\xC3\xA9\nb,2,caf\xE9\nc,3,x\n");
  try {
    (void)icp::read_csv(p, account_options());
    FAIL() << "no error";
  } catch (const icp::InputError& e) {
    EXPECT_EQ(e.line(), 3);
    EXPECT_EQ(e.column(), "industry");
    EXPECT_EQ(e.column_number(), 3);
    EXPECT_EQ(e.value(), "caf\\xE9");
    EXPECT_EQ(e.reason().rfind("not valid UTF-8 at byte 4", 0), 0u) << e.reason();
    EXPECT_NE(std::string(e.what()).find("latin-1"), std::string::npos) << e.what();
  }
  // Quarantined, the row is counted and the others are read.
  icp::CsvOptions q = account_options();
  q.on_error = icp::ErrorPolicy::quarantine;
  icp::IngestStats stats;
  const icp::Table t = icp::read_csv(p, q, &stats);
  EXPECT_EQ(stats.rows_read, 3);
  EXPECT_EQ(stats.rows_accepted, 2);
  EXPECT_EQ(stats.rows_quarantined, 1);
  EXPECT_EQ(t.columns[2].levels, (std::vector<std::string>{"\xC3\xA9t\xC3\xA9", "x"}));
}

TEST_F(CsvTest, Latin1TextIsConvertedToUtf8) {
  const std::string p = write("in.csv", kHead + "\xC5ngstr\xF6m,1,caf\xE9\nb,2.5,x\n");
  icp::CsvOptions o = account_options();
  o.encoding = icp::TextEncoding::latin1;
  const icp::Table t = icp::read_csv(p, o);
  ASSERT_EQ(t.columns.size(), 3u);
  EXPECT_EQ(t.columns[0].text, (std::vector<std::string>{"\xC3\x85ngstr\xC3\xB6m", "b"}));
  EXPECT_EQ(t.columns[1].numeric, (icp::NumericValues{1.0, 2.5}));
  EXPECT_EQ(t.columns[2].levels, (std::vector<std::string>{"caf\xC3\xA9", "x"}));
}

TEST(Text, EncodingHelpers) {
  icp::TextEncoding e{};
  EXPECT_TRUE(icp::parse_encoding("latin-1", e));
  EXPECT_EQ(e, icp::TextEncoding::latin1);
  EXPECT_TRUE(icp::parse_encoding("utf-8", e));
  EXPECT_EQ(e, icp::TextEncoding::utf8);
  EXPECT_FALSE(icp::parse_encoding("cp1252", e));
  EXPECT_STREQ(icp::to_string(icp::TextEncoding::latin1), "latin-1");
  // Every Latin-1 byte becomes valid UTF-8 (U+0000..U+00FF), and ASCII is unchanged.
  std::string all;
  for (int c = 1; c < 256; ++c) all.push_back(static_cast<char>(c));
  const std::string u = icp::latin1_to_utf8(all);
  EXPECT_EQ(icp::invalid_utf8_at(u), std::string::npos);
  EXPECT_EQ(u.size(), 127u + 2u * 128u);
  EXPECT_EQ(icp::latin1_to_utf8("abc"), "abc");
  // Overlong, surrogate, truncated and stray continuation bytes are invalid; offsets are 0-based.
  EXPECT_EQ(icp::invalid_utf8_at("ok\xC0\xAF"), 2u);
  EXPECT_EQ(icp::invalid_utf8_at("\xED\xA0\x80"), 0u);
  EXPECT_EQ(icp::invalid_utf8_at("a\xE2\x82"), 1u);
  EXPECT_EQ(icp::invalid_utf8_at("\x80"), 0u);
  EXPECT_EQ(icp::invalid_utf8_at("\xF0\x9F\x98\x80"), std::string::npos);
  EXPECT_EQ(icp::escape_bytes("a\tb\xFF"), "a\\x09b\\xFF");
}

// ---------------------------------------------------------------------------------------------
// What a well-formed but awkward file turns into.

TEST_F(CsvTest, ParsesRfc4180AndTypes) {
  // Line 1 header (BOM), 2 plain, 3 quoted delimiter + doubled quote, 4-5 newline in quotes
  // (CRLF inside), 6 blank, 7 lone-CR ending, 8 spaces and booleans, 9 missing tokens, 10 no
  // final newline.
  const std::string content =
      "\xEF\xBB\xBFid,acv,industry,name\n"
      "a1,10.5,Software,plain\n"
      "a2,\"-2\",\"Retail\",\"Smith, \"\"Jr\"\"\"\r\n"
      "a3,1e3,Software,\"two\r\nlines\"\n"
      "\n"
      "a4, 7 ,Retail,x\r"
      "a5,TRUE, \"Food\" ,  spaced  \n"
      "a6,NA,,#N/A\n"
      "a7,false,Retail,\"\"";
  const std::string p = write("in.csv", content);
  icp::CsvOptions o = account_options();
  o.columns.push_back(req("name", icp::ColumnType::text));
  icp::IngestStats st;
  const icp::Table t = icp::read_csv(p, o, &st);
  ASSERT_EQ(t.rows, 7u);
  EXPECT_EQ(t.source, p);
  EXPECT_EQ(t.source_line, (icp::LineNumbers{2, 3, 4, 7, 8, 9, 10}));
  EXPECT_EQ(t.at("id").text, (std::vector<std::string>{"a1", "a2", "a3", "a4", "a5", "a6", "a7"}));
  const auto& acv = t.at("acv").numeric;
  ASSERT_EQ(acv.size(), 7u);
  EXPECT_EQ(acv[0], 10.5);
  EXPECT_EQ(acv[1], -2.0);
  EXPECT_EQ(acv[2], 1000.0);
  EXPECT_EQ(acv[3], 7.0);
  EXPECT_EQ(acv[4], 1.0);
  EXPECT_TRUE(std::isnan(acv[5]));
  EXPECT_EQ(acv[6], 0.0);
  const auto& ind = t.at("industry");
  EXPECT_EQ(ind.levels, (std::vector<std::string>{"Software", "Retail", "Food"}));
  EXPECT_EQ(ind.codes, (icp::CodeValues{0, 1, 0, 1, 2, -1, 1}));
  EXPECT_EQ(t.at("name").text, (std::vector<std::string>{"plain", "Smith, \"Jr\"", "two\r\nlines",
                                                         "x", "spaced", "", ""}));
  EXPECT_EQ(st.rows_read, 7);
  EXPECT_EQ(st.rows_accepted, 7);
  EXPECT_EQ(st.rows_quarantined, 0);
  EXPECT_EQ(st.bytes, static_cast<std::int64_t>(content.size()));
  EXPECT_GE(st.seconds, 0.0);
}

TEST_F(CsvTest, OtherDelimiters) {
  for (const char d : {';', '\t', '|'}) {
    // The delimiter inside quotes is data; a comma is plain text for the other delimiters.
    const std::string content = std::string("id") + d + "acv" + d + "industry\n" + "a" + d + "\"2" +
                                d + "5\"" + d + "x,y\n";
    const std::string p = write("in.csv", content);
    icp::CsvOptions o;
    o.delimiter = d;
    o.columns = {req("acv", icp::ColumnType::text), req("industry", icp::ColumnType::text)};
    const icp::Table t = icp::read_csv(p, o);
    ASSERT_EQ(t.rows, 1u) << d;
    EXPECT_EQ(t.columns[0].text[0], std::string("2") + d + "5");
    EXPECT_EQ(t.columns[1].text[0], "x,y");
  }
}

TEST_F(CsvTest, RejectsUnsupportedDelimiter) {
  const std::string p = write("in.csv", kHead);
  icp::CsvOptions o = account_options();
  o.delimiter = ':';
  EXPECT_THROW((void)icp::read_csv(p, o), icp::ConfigError);
}

TEST_F(CsvTest, UnrequestedColumnsAreSkipped) {
  const std::string p = write("in.csv", "junk,id,more\n\"not, a number\",a,zz\n");
  icp::CsvOptions o;
  o.columns = {req("id", icp::ColumnType::text)};
  const icp::Table t = icp::read_csv(p, o);
  ASSERT_EQ(t.columns.size(), 1u);
  EXPECT_EQ(t.columns[0].text, std::vector<std::string>{"a"});
}

TEST_F(CsvTest, HeaderOnlyGivesEmptyTable) {
  const std::string p = write("in.csv", "id,acv,industry\r\n\r\n");
  icp::IngestStats st;
  const icp::Table t = icp::read_csv(p, account_options(), &st);
  EXPECT_EQ(t.rows, 0u);
  ASSERT_EQ(t.columns.size(), 3u);
  EXPECT_EQ(t.columns[1].numeric.size(), 0u);
  EXPECT_EQ(st.rows_read, 0);
}

TEST_F(CsvTest, FloatMaxIsAccepted) {
  const std::string p = write("in.csv", kHead + "a,3.4028234663852886e38,x\nb,+4.5,y\nc,1e-50,z\n");
  const icp::Table t = icp::read_csv(p, account_options());
  ASSERT_EQ(t.rows, 3u);
  EXPECT_EQ(t.columns[1].numeric[0], 3.4028234663852886e38);
  EXPECT_EQ(t.columns[1].numeric[1], 4.5);
  EXPECT_EQ(t.columns[1].numeric[2], 1e-50);
}

TEST_F(CsvTest, ReadsHeader) {
  const std::string p = write("in.csv", "\xEF\xBB\xBF\r\n id ,\"a,b\"|c\r\n1,2\n");
  EXPECT_EQ(icp::read_csv_header(p), (std::vector<std::string>{"id", "a,b|c"}));
  EXPECT_EQ(icp::read_csv_header(p, '|'), (std::vector<std::string>{"id ,\"a,b\"", "c"}));
}

TEST_F(CsvTest, HeaderOnSecondLineShiftsLineNumbers) {
  const std::string p = write("in.csv", "\nid,acv,industry\na,x,y\n");
  try {
    (void)icp::read_csv(p, account_options());
    FAIL() << "no error";
  } catch (const icp::InputError& e) {
    EXPECT_EQ(e.line(), 3);
  }
}

// ---------------------------------------------------------------------------------------------
// Chunk edges. Every chunk size from 1 byte to the whole file puts an edge on every byte: inside
// a quoted field, between the CR and LF of a pair, and inside a multibyte UTF-8 character.

const std::string kEdgeFile =
    "id,acv,industry,name\r\n"
    "a1,1.5,Caf\xC3\xA9,\"q\"\"uote, and\r\nnewline\"\r\n"
    "a2,2,\xE6\x97\xA5\xE6\x9C\xAC,plain\r"
    "\r\n"
    "a3,\"3\",Caf\xC3\xA9,\"\"\"\"\n"
    "a4,,x,\"\xF0\x9F\x98\x80\"\r\n"
    "a5,5e0,\xE6\x97\xA5\xE6\x9C\xAC,last";

void expect_edge_table(const icp::Table& t, const std::string& what) {
  ASSERT_EQ(t.rows, 5u) << what;
  EXPECT_EQ(t.source_line, (icp::LineNumbers{2, 4, 6, 7, 8})) << what;
  EXPECT_EQ(t.at("id").text, (std::vector<std::string>{"a1", "a2", "a3", "a4", "a5"})) << what;
  const auto& acv = t.at("acv").numeric;
  EXPECT_EQ(acv[0], 1.5) << what;
  EXPECT_EQ(acv[1], 2.0) << what;
  EXPECT_EQ(acv[2], 3.0) << what;
  EXPECT_TRUE(std::isnan(acv[3])) << what;
  EXPECT_EQ(acv[4], 5.0) << what;
  EXPECT_EQ(t.at("industry").levels,
            (std::vector<std::string>{"Caf\xC3\xA9", "\xE6\x97\xA5\xE6\x9C\xAC", "x"}))
      << what;
  EXPECT_EQ(t.at("industry").codes, (icp::CodeValues{0, 1, 0, 2, 1})) << what;
  EXPECT_EQ(t.at("name").text, (std::vector<std::string>{"q\"uote, and\r\nnewline", "plain", "\"",
                                                         "\xF0\x9F\x98\x80", "last"}))
      << what;
}

icp::CsvOptions edge_options() {
  icp::CsvOptions o = account_options();
  o.columns.push_back(req("name", icp::ColumnType::text));
  return o;
}

TEST_F(CsvTest, ChunkEdgesAnywhere) {
  const std::string p = write("in.csv", kEdgeFile);
  for (std::size_t chunk = 1; chunk <= kEdgeFile.size(); ++chunk) {
    for (const int threads : {1, 2}) {
      icp::CsvOptions o = edge_options();
      o.chunk_bytes = chunk;
      o.threads = threads;
      expect_edge_table(icp::read_csv(p, o),
                        "chunk " + std::to_string(chunk) + " threads " + std::to_string(threads));
    }
  }
}

TEST_F(CsvTest, StrayQuoteInUnquotedFieldAtAnyChunkSize) {
  // A quote inside an unquoted field is literal text; it breaks quote parity, so chunk edges
  // found by parity are wrong after it and the reader must notice.
  const std::string content = kHead + "a,1,5\"inch\nb,2,x\nc,3,\"y,\nz\"\nd,4,w\n";
  const std::string p = write("in.csv", content);
  for (std::size_t chunk = 1; chunk <= content.size(); ++chunk) {
    icp::CsvOptions o = account_options();
    o.chunk_bytes = chunk;
    o.threads = 2;
    const icp::Table t = icp::read_csv(p, o);
    const std::string what = "chunk " + std::to_string(chunk);
    ASSERT_EQ(t.rows, 4u) << what;
    EXPECT_EQ(t.source_line, (icp::LineNumbers{2, 3, 4, 6})) << what;
    EXPECT_EQ(t.at("industry").levels, (std::vector<std::string>{"5\"inch", "x", "y,\nz", "w"}))
        << what;
  }
}

TEST_F(CsvTest, ManyStrayQuotesAtAnyChunkSize) {
  // More stray quotes than parallel passes: the reader must finish sequentially, still exact.
  std::string content = kHead;
  std::vector<std::string> levels;
  for (int i = 0; i < 10; ++i) {
    content +=
        "r" + std::to_string(i) + "," + std::to_string(i) + "," + std::to_string(i) + "\"in\n";
    levels.push_back(std::to_string(i) + "\"in");
  }
  const std::string p = write("in.csv", content);
  for (std::size_t chunk = 1; chunk <= content.size(); chunk += 3) {
    icp::CsvOptions o = account_options();
    o.chunk_bytes = chunk;
    o.threads = 2;
    const icp::Table t = icp::read_csv(p, o);
    ASSERT_EQ(t.rows, 10u) << chunk;
    EXPECT_EQ(t.source_line.back(), 11) << chunk;
    EXPECT_EQ(t.at("industry").levels, levels) << chunk;
    EXPECT_EQ(t.at("acv").numeric[9], 9.0) << chunk;
  }
}

TEST_F(CsvTest, FirstErrorInFileOrderAtAnyChunkSize) {
  std::string content = kHead;
  for (int i = 0; i < 60; ++i) {
    const std::string acv = (i == 17) ? "bad17" : (i == 41 || i == 55) ? "inf" : std::to_string(i);
    content += "r" + std::to_string(i) + "," + acv + ",x\n";
  }
  const std::string p = write("in.csv", content);
  for (const std::size_t chunk : {1, 7, 16, 64, 100, 1000}) {
    icp::CsvOptions o = account_options();
    o.chunk_bytes = chunk;
    o.threads = 2;
    try {
      (void)icp::read_csv(p, o);
      ADD_FAILURE() << "no error";
    } catch (const icp::InputError& e) {
      // Row i is on line i + 2.
      EXPECT_EQ(e.line(), 19) << chunk;
      EXPECT_EQ(e.value(), "bad17") << chunk;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Quarantine.

TEST_F(CsvTest, QuarantineWritesEveryBadRowAndCounts) {
  const std::string content = kHead +
                              "a,1,x\n"                     // 2 ok
                              "b,zz,y\n"                    // 3 not a number
                              "c,2\n"                       // 4 field count
                              "a,3,w\n"                     // 5 duplicate of line 2
                              "d,\"4\",\"new\nlevel\"\n"    // 6-7 ok
                              "e,nan,\"say \"\"hi\"\"\"\n"  // 8 NaN, quotes in record
                              "f,5,kept\n"                  // 9 ok, first of two f
                              "f,6,y\n";                    // 10 duplicate of line 9
  const std::string p = write("in.csv", content);
  const std::string q = path("bad.csv");
  icp::CsvOptions o = account_options();
  o.on_error = icp::ErrorPolicy::quarantine;
  o.quarantine_path = q;
  o.unique_column = "id";
  icp::IngestStats st;
  const icp::Table t = icp::read_csv(p, o, &st);
  EXPECT_EQ(st.rows_read, 8);
  EXPECT_EQ(st.rows_accepted, 3);
  EXPECT_EQ(st.rows_quarantined, 5);
  EXPECT_EQ(st.rows_read, st.rows_accepted + st.rows_quarantined);
  ASSERT_EQ(t.rows, 3u);
  EXPECT_EQ(t.source_line, (icp::LineNumbers{2, 6, 9}));
  EXPECT_EQ(t.at("id").text, (std::vector<std::string>{"a", "d", "f"}));
  // "y" and "w" appear only in rejected rows, so they are not levels.
  EXPECT_EQ(t.at("industry").levels, (std::vector<std::string>{"x", "new\nlevel", "kept"}));
  const std::string expected =
      "line,reason,record\n"
      "3,column 'acv' (2): not a number: 'zz',\"b,zz,y\"\n"
      "4,\"expected 3 fields, found 2\",\"c,2\"\n"
      "5,column 'id' (1): duplicate value: 'a',\"a,3,w\"\n"
      "8,column 'acv' (2): NaN value: 'nan',\"e,nan,\"\"say \"\"\"\"hi\"\"\"\"\"\"\"\n"
      "10,column 'id' (1): duplicate value: 'f',\"f,6,y\"\n";
  EXPECT_EQ(slurp(q), expected);
  EXPECT_FALSE(fs::exists(q + ".tmp"));

  // The same at tiny chunks and two threads, file bytes included.
  o.chunk_bytes = 5;
  o.threads = 2;
  o.quarantine_path = path("bad2.csv");
  icp::IngestStats st2;
  expect_same_table(t, icp::read_csv(p, o, &st2), "chunk 5");
  EXPECT_EQ(slurp(path("bad2.csv")), expected);
  EXPECT_EQ(st2.rows_quarantined, 5);
}

TEST_F(CsvTest, QuarantineWithoutPathOnlyCounts) {
  const std::string p = write("in.csv", kHead + "a,1,x\nb,zz,y\n");
  icp::CsvOptions o = account_options();
  o.on_error = icp::ErrorPolicy::quarantine;
  icp::IngestStats st;
  const icp::Table t = icp::read_csv(p, o, &st);
  EXPECT_EQ(t.rows, 1u);
  EXPECT_EQ(st.rows_quarantined, 1);
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator{}), 1);
}

TEST_F(CsvTest, CleanQuarantineRunLeavesHeaderOnlyFile) {
  const std::string p = write("in.csv", kHead + "a,1,x\n");
  const std::string q = write("bad.csv", "stale content from an earlier run\n");
  icp::CsvOptions o = account_options();
  o.on_error = icp::ErrorPolicy::quarantine;
  o.quarantine_path = q;
  (void)icp::read_csv(p, o);
  EXPECT_EQ(slurp(q), "line,reason,record\n");
}

// ---------------------------------------------------------------------------------------------
// Thread count and chunk size never change the result.

std::string account_table_csv(int rows) {
  // Deterministic pseudo-random content with quotes, embedded newlines, CRLF, blank lines and
  // bad rows sprinkled in.
  std::string s = "id,name,industry,region,acv,employees\r\n";
  std::uint32_t x = 12345;
  auto next = [&] {
    x = x * 1664525u + 1013904223u;
    return x >> 8;
  };
  const char* industries[] = {"Software", "Retail", "Caf\xC3\xA9", "Banking", "Health"};
  for (int i = 0; i < rows; ++i) {
    const auto r = next();
    s += "id" + std::to_string(i % 997 == 5 ? 5 : i) + ",";
    s += (r % 7 == 0) ? "\"Name, with\r\nbreak " + std::to_string(i) + "\""
                      : "n" + std::to_string(i);
    s += ",";
    s += (r % 11 == 0) ? "" : industries[r % 5];
    s += ",";
    s += (r % 13 == 0) ? "\"R\"\"" + std::to_string(r % 3) + "\"" : "EU";
    s += ",";
    s += (r % 17 == 0) ? "oops" : std::to_string(static_cast<double>(r % 100000) / 7.0);
    s += ",";
    s += (r % 19 == 0) ? "" : std::to_string(r % 5000);
    s += (r % 3 == 0) ? "\n" : (r % 3 == 1) ? "\r\n" : "\r";
    if (r % 29 == 0) s += "\n";
    if (r % 31 == 0) s += "x,y\n";
  }
  return s;
}

TEST_F(CsvTest, SameBitsAtAnyThreadCountAndChunkSize) {
  const std::string p = write("in.csv", account_table_csv(3000));
  auto options = [&](int threads, std::size_t chunk, const std::string& q) {
    icp::CsvOptions o;
    o.columns = {req("acv", icp::ColumnType::numeric),
                 req("id", icp::ColumnType::text),
                 req("industry", icp::ColumnType::categorical),
                 req("region", icp::ColumnType::categorical),
                 req("name", icp::ColumnType::text),
                 req("employees", icp::ColumnType::numeric)};
    o.on_error = icp::ErrorPolicy::quarantine;
    o.unique_column = "id";
    o.threads = threads;
    o.chunk_bytes = chunk;
    o.quarantine_path = path(q);
    return o;
  };
  icp::IngestStats ref_stats;
  const icp::Table ref = icp::read_csv(p, options(1, 0, "q_ref.csv"), &ref_stats);
  EXPECT_GT(ref_stats.rows_quarantined, 100);
  EXPECT_GT(ref.rows, 2000u);
  EXPECT_EQ(ref_stats.rows_read, ref_stats.rows_accepted + ref_stats.rows_quarantined);
  auto regions = ref.at("region").levels;
  std::sort(regions.begin(), regions.end());
  EXPECT_EQ(regions, (std::vector<std::string>{"EU", "R\"0", "R\"1", "R\"2"}));
  const std::string ref_q = slurp(path("q_ref.csv"));
  int n = 0;
  for (const std::size_t chunk : {std::size_t{97}, std::size_t{1000}, std::size_t{4096}}) {
    for (const int threads : {1, 2}) {
      const std::string q = "q" + std::to_string(n++) + ".csv";
      icp::IngestStats st;
      const std::string what =
          "chunk " + std::to_string(chunk) + " threads " + std::to_string(threads);
      expect_same_table(ref, icp::read_csv(p, options(threads, chunk, q), &st), what);
      EXPECT_EQ(st.rows_read, ref_stats.rows_read) << what;
      EXPECT_EQ(st.rows_quarantined, ref_stats.rows_quarantined) << what;
      EXPECT_EQ(slurp(path(q)), ref_q) << what;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The real Crunchbase 2013 export: lone-CR lines, quoted commas, spreadsheet debris.

TEST_F(CsvTest, Crunchbase2013Companies) {
  const std::string p = ICP_SOURCE_DIR "/../shared/datasets/crunchbase-2013/companies.csv";
  if (!fs::exists(p)) GTEST_SKIP() << "dataset absent: " << p;
  icp::CsvOptions o;
  o.columns = {req("permalink", icp::ColumnType::text),
               req("funding_total_usd", icp::ColumnType::numeric),
               req("status", icp::ColumnType::categorical),
               req("country_code", icp::ColumnType::categorical)};
  o.on_error = icp::ErrorPolicy::quarantine;
  o.quarantine_path = path("q.csv");
  o.unique_column = "permalink";
  icp::IngestStats st;
  const icp::Table t = icp::read_csv(p, o, &st);
  // Reference values from Python's csv module over the same file (latin-1, spaces stripped):
  // 17,727 records, 13 funding cells holding dates or '####' debris, all permalinks distinct.
  EXPECT_EQ(st.rows_read, 17727);
  EXPECT_EQ(st.rows_quarantined, 13);
  EXPECT_EQ(st.rows_accepted, 17714);
  EXPECT_EQ(st.bytes, 2544744);
  ASSERT_EQ(t.rows, 17714u);
  EXPECT_EQ(t.source_line.front(), 2);
  EXPECT_EQ(t.source_line.back(), 17728);
  EXPECT_EQ(t.at("permalink").text.front(), "/company/waywire");
  EXPECT_EQ(t.at("permalink").text.back(), "/company/shwrm");
  const auto& status = t.at("status");
  EXPECT_EQ(status.levels, (std::vector<std::string>{"operating", "acquired", "closed", "ipo"}));
  std::int64_t acquired = 0;
  for (const auto c : status.codes) acquired += (c == 1);
  EXPECT_EQ(acquired, 1672);
  EXPECT_EQ(t.at("country_code").levels, std::vector<std::string>{"USA"});
  double sum = 0.0;
  std::int64_t missing = 0;
  for (const double v : t.at("funding_total_usd").numeric) {
    if (std::isnan(v))
      ++missing;
    else
      sum += v;
  }
  EXPECT_EQ(missing, 1505);
  EXPECT_EQ(sum, 280480771623.0);
  const std::string q = slurp(path("q.csv"));
  EXPECT_EQ(q.rfind("line,reason,record\n7714,column 'funding_total_usd' (4): not a number: "
                    "'5/18/27',",
                    0),
            0u)
      << q.substr(0, 200);
  EXPECT_EQ(std::count(q.begin(), q.end(), '\n'), 14);

  // Two threads and small chunks: identical.
  o.threads = 2;
  o.chunk_bytes = 64 * 1024;
  o.quarantine_path = path("q2.csv");
  expect_same_table(t, icp::read_csv(p, o), "threads 2");
  EXPECT_EQ(slurp(path("q2.csv")), q);
}

}  // namespace
