// Scratch columns: what a streamed run keeps of every row outside memory comes back as written.

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <filesystem>
#include <numeric>
#include <string>
#include <vector>

#include "icp/error.hpp"
#include "icp/scratch.hpp"

namespace {

TEST(ScratchColumns, ColumnsOfSeveralTypesAndWidthsComeBackAsWritten) {
  const std::size_t n = 10007;
  std::string path;
  {
    icp::ScratchColumns s("", n, "test");
    path = s.path();
    EXPECT_TRUE(std::filesystem::exists(path));
    std::vector<float> f(n);
    std::vector<std::int64_t> big(n);
    std::vector<std::int32_t> triple(3 * n);
    std::iota(f.begin(), f.end(), -5.5f);
    for (std::size_t i = 0; i < n; ++i)
      big[i] = (std::int64_t{1} << 40) - static_cast<std::int64_t>(i);
    std::iota(triple.begin(), triple.end(), 7);
    // Written out of order, in uneven blocks, interleaved between columns.
    for (std::size_t first = 0; first < n; first += 999) {
      const std::size_t count = std::min<std::size_t>(999, n - first);
      const std::size_t back = n - first - count;  // the float column from the end
      s.write<float>("f", back, std::span<const float>(f).subspan(back, count));
      s.write<std::int32_t>("t", first,
                            std::span<const std::int32_t>(triple).subspan(3 * first, 3 * count), 3);
      s.write<std::int64_t>("b", first, std::span<const std::int64_t>(big).subspan(first, count));
    }
    std::vector<float> f2;
    std::vector<std::int64_t> big2;
    std::vector<std::int32_t> t2;
    s.read("f", 0, n, f2);
    s.read("b", 0, n, big2);
    s.read("t", 0, n, t2, 3);
    EXPECT_EQ(f2, f);
    EXPECT_EQ(big2, big);
    EXPECT_EQ(t2, triple);
    s.read("t", 5000, 2, t2, 3);
    EXPECT_EQ(t2, (std::vector<std::int32_t>{15007, 15008, 15009, 15010, 15011, 15012}));
    EXPECT_TRUE(s.has("f"));
    EXPECT_FALSE(s.has("g"));
  }
  EXPECT_FALSE(std::filesystem::exists(path)) << "the scratch file outlived its owner";
}

TEST(ScratchColumns, UnwrittenRowsReadAsZerosAndMisuseThrows) {
  icp::ScratchColumns s("", 100, "test");
  s.write<double>("late", 90, std::vector<double>(10, 2.5));
  s.write<float>("after", 0, std::vector<float>(1, 1.0f));  // placed after "late"'s 100 rows
  std::vector<double> d;
  s.read("late", 0, 100, d);
  for (std::size_t i = 0; i < 90; ++i) ASSERT_EQ(d[i], 0.0) << i;
  EXPECT_EQ(d[95], 2.5);
  std::vector<float> f;
  s.read("after", 50, 50, f);  // past the end of the file: a hole
  EXPECT_EQ(f, std::vector<float>(50, 0.0f));
  EXPECT_THROW(s.write<float>("late", 0, std::vector<float>(1)), icp::Error);     // other width
  EXPECT_THROW(s.write<double>("late", 95, std::vector<double>(6)), icp::Error);  // past n
  EXPECT_THROW(s.read("late", 99, 2, d), icp::Error);
  EXPECT_THROW(s.read("missing", 0, 1, d), icp::Error);
}

TEST(ScratchColumns, ByteBlocksBesideColumnsComeBackAsWritten) {
  icp::ScratchColumns s("", 1000, "test");
  std::vector<char> big(5u << 20);  // read back in parallel pieces
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 7 % 251);
  const std::string small = "a block";
  const std::uint64_t a = s.append_bytes(small);
  s.write<double>("after", 0, std::vector<double>(1000, 1.5));  // placed after the first block
  const std::uint64_t b = s.append_bytes(big);
  const std::uint64_t c = s.append_bytes({});
  std::vector<char> got(small.size());
  s.read_bytes(a, got);
  EXPECT_EQ(std::string(got.begin(), got.end()), small);
  got.resize(big.size());
  s.read_bytes(b, got);
  EXPECT_EQ(got, big);
  std::vector<double> d;
  s.read("after", 0, 1000, d);
  EXPECT_EQ(d, std::vector<double>(1000, 1.5));
  EXPECT_EQ(c, b + big.size());
  got.resize(2);
  EXPECT_THROW(s.read_bytes(c - 1, got), icp::Error);
}

TEST(ScratchColumns, MappedRowsAreTheWrittenOnesAtAnyOffset) {
  const std::size_t n = 5000, width = 7;  // 28-byte rows: most blocks start inside a page
  icp::ScratchColumns s("", n, "test");
  s.write<std::int32_t>("before", 0, std::vector<std::int32_t>(n, -1));  // shifts "rows"
  std::vector<float> v(n * width);
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i) * 0.5f;
  s.write<float>("rows", 0, v, width);
  for (const std::size_t first : {std::size_t{0}, std::size_t{1}, std::size_t{147}, n - 3}) {
    const std::size_t count = std::min<std::size_t>(1000, n - first);
    icp::ScratchColumns::Mapped m = s.map("rows", first, count, width * sizeof(float));
    const auto* p = static_cast<const float*>(m.data());
    for (std::size_t i = 0; i < count * width; ++i)
      ASSERT_EQ(p[i], v[first * width + i]) << "first " << first << ", value " << i;
    icp::ScratchColumns::Mapped moved = std::move(m);
    EXPECT_EQ(moved.data(), p);
    EXPECT_EQ(m.data(), nullptr);  // NOLINT(bugprone-use-after-move): moved-from is empty
  }
  EXPECT_THROW((void)s.map("rows", n - 1, 2, width * sizeof(float)), icp::Error);
  EXPECT_THROW((void)s.map("rows", 0, 1, 4), icp::Error);  // another width
}

TEST(ScratchColumns, AFolderThatCannotHoldItIsNamed) {
  try {
    icp::ScratchColumns s("/nonexistent/icp-scratch", 10, "test");
    FAIL() << "no error for a missing folder";
  } catch (const icp::Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/icp-scratch"), std::string::npos)
        << e.what();
  }
}

}  // namespace
