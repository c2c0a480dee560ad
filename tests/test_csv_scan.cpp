// The CSV block classifier (src/csv_scan.hpp) against byte-at-a-time references, and read_csv
// on random quoted/multi-line input against the values the generator wrote.
#include <gtest/gtest.h>
#include <unistd.h>

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "../src/csv_scan.hpp"
#include "icp/csv.hpp"

namespace {

namespace cs = icp::csv_scan;

/// Bytes that matter to the classifier, plus filler; weighted so that runs of each appear.
std::string random_bytes(std::mt19937_64& rng, std::size_t n) {
  static const char kAlphabet[] = {'a', 'b', '0', ' ', ',', ';', '\t', '|', '"', '\r', '\n', '\0'};
  std::uniform_int_distribution<std::size_t> pick(0, sizeof(kAlphabet) - 1);
  std::string s(n, 'x');
  for (auto& c : s) c = kAlphabet[pick(rng)];
  return s;
}

void expect_same(const cs::BlockMasks& a, const cs::BlockMasks& b) {
  EXPECT_EQ(a.quote, b.quote);
  EXPECT_EQ(a.delim, b.delim);
  EXPECT_EQ(a.cr, b.cr);
  EXPECT_EQ(a.lf, b.lf);
}

TEST(CsvScan, ReportsItsPath) {
  const std::string path = cs::classify_path();
  EXPECT_TRUE(path == "avx512bw" || path == "avx2" || path == "scalar") << path;
}

TEST(CsvScan, EachSpecialByteAtEveryOffsetSetsExactlyItsBit) {
  for (const char delim : {',', ';', '\t', '|'}) {
    for (const char c : {'"', delim, '\r', '\n'}) {
      for (std::size_t off = 0; off < cs::kBlock; ++off) {
        std::string block(cs::kBlock, 'a');
        block[off] = c;
        const cs::BlockMasks m = cs::classify(block.data(), delim);
        const std::uint64_t bit = std::uint64_t{1} << off;
        EXPECT_EQ(m.quote, c == '"' ? bit : 0u) << int(c) << " at " << off;
        EXPECT_EQ(m.delim, c == delim ? bit : 0u) << int(c) << " at " << off;
        EXPECT_EQ(m.cr, c == '\r' ? bit : 0u) << int(c) << " at " << off;
        EXPECT_EQ(m.lf, c == '\n' ? bit : 0u) << int(c) << " at " << off;
        expect_same(m, cs::classify_scalar(block.data(), delim));
      }
    }
  }
}

TEST(CsvScan, RandomBlocksMatchScalar) {
  std::mt19937_64 rng(42);
  for (int it = 0; it < 2000; ++it) {
    const std::string s = random_bytes(rng, cs::kBlock);
    for (const char delim : {',', ';', '\t', '|'})
      expect_same(cs::classify(s.data(), delim), cs::classify_scalar(s.data(), delim));
  }
}

TEST(CsvScan, PartialBlockClearsBitsPastItsLength) {
  const std::string full(cs::kBlock, '"');
  for (std::size_t len = 0; len < cs::kBlock; ++len) {
    const cs::BlockMasks m = cs::classify_partial(full.data(), len, ',');
    const std::uint64_t want = len == 0 ? 0 : (~std::uint64_t{0} >> (cs::kBlock - len));
    EXPECT_EQ(m.quote, want) << len;
    EXPECT_EQ(m.delim | m.cr | m.lf, 0u);
  }
}

TEST(CsvScan, PrefixXorByHandAndAgainstScalar) {
  EXPECT_EQ(cs::prefix_xor(0), 0u);
  EXPECT_EQ(cs::prefix_xor(0b1u), ~std::uint64_t{0});
  EXPECT_EQ(cs::prefix_xor(0b1001u), 0b0111u);    // open at 0, close at 3
  EXPECT_EQ(cs::prefix_xor(0b10100u), 0b01100u);  // open at 2, close at 4
  EXPECT_EQ(cs::prefix_xor(std::uint64_t{1} << 63), std::uint64_t{1} << 63);
  std::mt19937_64 rng(7);
  for (int it = 0; it < 10000; ++it) {
    const std::uint64_t x = rng();
    EXPECT_EQ(cs::prefix_xor(x), cs::prefix_xor_scalar(x)) << x;
  }
}

TEST(CsvScan, CountQuotesMatchesScalarOnAnyRange) {
  std::mt19937_64 rng(3);
  const std::string s = random_bytes(rng, 300);
  for (std::size_t b = 0; b < 70; ++b)
    for (std::size_t e = b; e <= s.size(); e += 7)
      EXPECT_EQ(cs::count_range(s.data(), s.size(), b, e).quotes,
                cs::count_quotes_scalar(s.data(), b, e))
          << b << ".." << e;
}

TEST(CsvScan, CountLineEndsByHand) {
  const std::string s = "a\r\nb\rc\n\nd\n\re";
  // Bytes: a0 CR1 LF2 b3 CR4 c5 LF6 LF7 d8 LF9 CR10 e11.
  EXPECT_EQ(cs::count_line_ends(s.data(), s.size(), 0, s.size()), 6u);  // the CRLF counts once
  EXPECT_EQ(cs::count_line_ends(s.data(), s.size(), 0, 2), 0u);  // the CR pairs with the LF at 2
  EXPECT_EQ(cs::count_line_ends(s.data(), s.size(), 2, 3), 1u);
  EXPECT_EQ(cs::count_line_ends(s.data(), s.size(), 4, 5), 1u);  // lone CR
  EXPECT_EQ(cs::count_line_ends(s.data(), s.size(), 10, 11), 1u);
  const std::string cr_last = "x\r";
  EXPECT_EQ(cs::count_line_ends(cr_last.data(), cr_last.size(), 0, 2), 1u);  // CR at the end
}

TEST(CsvScan, CountLineEndsMatchesScalarOnAnyRange) {
  std::mt19937_64 rng(13);
  for (int it = 0; it < 20; ++it) {
    // Dense CR and LF bytes, so that CRLF pairs straddle block and range edges.
    std::string s = random_bytes(rng, 300);
    for (auto& c : s)
      if (rng() % 3 == 0) c = rng() % 2 == 0 ? '\r' : '\n';
    for (std::size_t b = 0; b < 70; ++b)
      for (std::size_t e = b; e <= s.size(); e += 5)
        ASSERT_EQ(cs::count_range(s.data(), s.size(), b, e).line_ends,
                  cs::count_line_ends_scalar(s.data(), s.size(), b, e))
            << "iteration " << it << " range " << b << ".." << e;
    // Ranges that partition the buffer count every terminator once.
    std::size_t sum = 0;
    for (std::size_t b = 0; b < s.size(); b += 17)
      sum += cs::count_line_ends(s.data(), s.size(), b, std::min(s.size(), b + 17));
    EXPECT_EQ(sum, cs::count_line_ends_scalar(s.data(), s.size(), 0, s.size()));
  }
}

TEST(CsvScan, FindUnquotedNewlineByHand) {
  const std::string s = "ab\"c\nd\"e\r\nf\rg";
  //                     0 1 2 3 4  5 6 7 8  9 10 11 12
  EXPECT_EQ(cs::find_unquoted_newline(s.data(), s.size(), 0, false), 10u);   // CRLF at 8
  EXPECT_EQ(cs::find_unquoted_newline(s.data(), s.size(), 0, true), 5u);     // LF at 4
  EXPECT_EQ(cs::find_unquoted_newline(s.data(), s.size(), 9, false), 10u);   // the LF of CRLF
  EXPECT_EQ(cs::find_unquoted_newline(s.data(), s.size(), 10, false), 12u);  // lone CR at 11
  EXPECT_EQ(cs::find_unquoted_newline(s.data(), s.size(), 12, false), s.size());
}

TEST(CsvScan, FindUnquotedNewlineMatchesScalarFromEveryOffset) {
  std::mt19937_64 rng(11);
  for (int it = 0; it < 40; ++it) {
    // Sparse line ends so that quoted stretches span several blocks.
    std::string s = random_bytes(rng, 200);
    for (auto& c : s)
      if ((c == '\r' || c == '\n') && rng() % 8 != 0) c = 'z';
    for (std::size_t pos = 0; pos <= s.size(); ++pos)
      for (const bool inq : {false, true})
        ASSERT_EQ(cs::find_unquoted_newline(s.data(), s.size(), pos, inq),
                  cs::find_unquoted_newline_scalar(s.data(), s.size(), pos, inq))
            << "iteration " << it << " pos " << pos << " in_quote " << inq;
  }
}

TEST(CsvScan, CursorFindsTheNextStopFromEveryOffset) {
  std::mt19937_64 rng(5);
  for (const std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{63}, std::size_t{64},
                              std::size_t{65}, std::size_t{200}}) {
    const std::string s = random_bytes(rng, n);
    cs::Cursor cur(s.data(), s.size(), ';');
    // Forward and backward walks: the cursor must reload its block when asked about another.
    for (int dir = 0; dir < 2; ++dir) {
      for (std::size_t k = 0; k <= n; ++k) {
        const std::size_t pos = dir == 0 ? k : n - k;
        std::size_t want_stop = pos;
        while (want_stop < n && s[want_stop] != ';' && s[want_stop] != '\r' && s[want_stop] != '\n')
          ++want_stop;
        std::size_t want_q = pos;
        while (want_q < n && s[want_q] != '"' && s[want_q] != '\r' && s[want_q] != '\n') ++want_q;
        ASSERT_EQ(cur.next_stop(pos), want_stop) << n << " " << pos;
        ASSERT_EQ(cur.next_quote_or_newline(pos), want_q) << n << " " << pos;
      }
    }
  }
}

/// One random field value and its CSV spelling: plain, quoted with delimiters, doubled quotes
/// and line ends inside, or plain with a literal quote inside.
struct Cell {
  std::string value;
  std::string text;
  std::int64_t newlines = 0;  ///< line ends inside the quoted text
};

Cell random_cell(std::mt19937_64& rng, char delim) {
  Cell c;
  const std::size_t len = rng() % 12;
  switch (rng() % 4) {
    case 0:
    case 1:  // plain: letters only, never a leading or trailing space
      for (std::size_t i = 0; i < len; ++i) c.value.push_back(static_cast<char>('a' + rng() % 26));
      c.text = c.value;
      break;
    case 2: {  // plain with a literal quote inside (not first: that would open a quoted field)
      c.value = "k";
      for (std::size_t i = 0; i < len; ++i) c.value.push_back(rng() % 3 == 0 ? '"' : 'q');
      c.text = c.value;
      break;
    }
    default: {  // quoted
      static const char* const kPieces[] = {"x", "yz", "\"", " ", "\n", "\r\n", "\r", "d"};
      c.text = "\"";
      for (std::size_t i = 0; i < len; ++i) {
        std::string piece = kPieces[rng() % 8];
        if (piece == "d") piece = std::string(1, delim);
        c.value += piece;
        c.text += piece == "\"" ? "\"\"" : piece;
      }
      c.text += "\"";
      // Physical lines: LF, CRLF (adjacent pieces can make one) and a lone CR each end one.
      for (std::size_t i = 0; i < c.text.size(); ++i)
        if (c.text[i] == '\n' || (c.text[i] == '\r' && c.text[i + 1] != '\n')) ++c.newlines;
      break;
    }
  }
  return c;
}

class CsvScanRead : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("icp_csv_scan_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
};

// Records built from random cells, with LF, CRLF and lone-CR record ends, behind a header whose
// length walks through all 64 offsets, so every structural byte lands at every block offset.
TEST_F(CsvScanRead, RandomQuotedRecordsAtEveryBlockOffset) {
  constexpr std::size_t kCols = 4;
  constexpr std::size_t kRows = 40;
  std::mt19937_64 rng(2026);
  static const char* const kEnds[] = {"\n", "\r\n", "\r"};
  for (const char delim : {',', '|'}) {
    // Every block offset for ','; a sample of them for '|' keeps the test fast under ASan.
    for (std::size_t shift = 0; shift < cs::kBlock; shift += delim == ',' ? 1 : 7) {
      std::string file = "c0" + std::string(shift, 'h');
      for (std::size_t k = 1; k < kCols; ++k) file += delim + ("c" + std::to_string(k));
      file += "\n";
      std::vector<std::vector<std::string>> want(kCols);
      icp::LineNumbers want_line;
      std::int64_t line = 2;
      for (std::size_t r = 0; r < kRows; ++r) {
        want_line.push_back(line);
        for (std::size_t k = 0; k < kCols; ++k) {
          Cell c = random_cell(rng, delim);
          if (k == 0 && c.value.empty()) c = Cell{"e", "e", 0};  // keeps no record blank
          if (k > 0) file += delim;
          file += c.text;
          want[k].push_back(c.value);
          line += c.newlines;
        }
        file += kEnds[rng() % 3];
        ++line;
      }
      const std::string p = (dir_ / "r.csv").string();
      {
        std::ofstream f(p, std::ios::binary | std::ios::trunc);
        f << file;
      }
      // (chunk bytes, threads): whole file on one thread, many edges on two, and 7-byte chunks
      // (an edge in nearly every field; slow under sanitizers) at a few shifts.
      std::vector<std::pair<std::size_t, int>> runs = {{0, 1}, {97, 2}};
      if (shift % 16 == 0) runs.emplace_back(7, 2);
      for (const auto& [chunk, threads] : runs) {
        {
          icp::CsvOptions o;
          o.delimiter = delim;
          o.missing_tokens.clear();  // every cell is text as written
          o.threads = threads;
          o.chunk_bytes = chunk;
          for (std::size_t k = 0; k < kCols; ++k) {
            icp::ColumnRequest q;
            q.name = k == 0 ? "c0" + std::string(shift, 'h') : "c" + std::to_string(k);
            q.type = icp::ColumnType::text;
            o.columns.push_back(q);
          }
          const icp::Table t = icp::read_csv(p, o);
          ASSERT_EQ(t.rows, kRows) << "shift " << shift << " chunk " << chunk;
          EXPECT_EQ(t.source_line, want_line) << "shift " << shift << " chunk " << chunk;
          for (std::size_t k = 0; k < kCols; ++k)
            ASSERT_EQ(t.columns[k].text, want[k])
                << "delim " << delim << " shift " << shift << " chunk " << chunk << " threads "
                << threads << " column " << k;
        }
      }
    }
  }
}

// Plain decimals take a shortcut in read_csv; glibc's strtod (correctly rounded) is the
// reference, compared bit for bit, around the shortcut's 15-digit limit and on both sides of it.
TEST(CsvScanNumbers, DecimalsMatchStrtodBitForBit) {
  std::mt19937_64 rng(99);
  std::vector<std::string> cells = {"0",
                                    "-0",
                                    "0.0",
                                    "-0.0",
                                    "007",
                                    "1.5",
                                    "0.1",
                                    "0.3",
                                    "9007199254740993",
                                    "999999999999999",
                                    "99999999999999.9",
                                    "123456789012345.6",
                                    "0.000000000000001",
                                    "1.000000000000000",
                                    "4.35",
                                    "2.675",
                                    "1e5",
                                    "-12.50",
                                    "1.",
                                    "-.5"};
  for (int it = 0; it < 20000; ++it) {
    const std::size_t ndig = 1 + rng() % 17;
    std::string s = rng() % 4 == 0 ? "-" : "";
    std::string digits;
    for (std::size_t i = 0; i < ndig; ++i) digits.push_back(static_cast<char>('0' + rng() % 10));
    const std::size_t dot = rng() % (ndig + 1);
    if (dot > 0 && dot < ndig) digits.insert(dot, ".");
    cells.push_back(s + digits);
  }
  for (const std::string& c : cells) {
    double got = 0.0;
    ASSERT_EQ(icp::parse_numeric_cell(c, got), nullptr) << c;
    const double want = std::strtod(c.c_str(), nullptr);
    ASSERT_EQ(std::bit_cast<std::uint64_t>(got), std::bit_cast<std::uint64_t>(want)) << c;
  }
}

TEST(CsvScanNumbers, MalformedDecimalsStillRejected) {
  for (const char* c : {"-", ".", "1.2.3", "1-2", "--1", "12a", "0x10", "1 2"}) {
    double got = 0.0;
    EXPECT_STREQ(icp::parse_numeric_cell(c, got), "not a number") << c;
  }
}

}  // namespace
