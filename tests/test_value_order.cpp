// Exact order statistics by radix selection, checked against a full std::sort of the same values.

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <limits>
#include <random>
#include <vector>

#include "../src/value_order.hpp"

namespace {

/// Every position a quantile summary asks for, plus the ends and a few odd ones.
std::vector<std::size_t> probe_positions(std::size_t n) {
  std::vector<std::size_t> p = {
      0,     n - 1, n / 2, (n - 1) / 2, n / 4, n / 4 + 1 < n ? n / 4 + 1 : 0, 3 * (n - 1) / 4,
      n / 3, n / 7};
  return p;
}

void expect_matches_sort(const std::vector<double>& values, const char* what) {
  std::vector<double> sorted = values;
  std::sort(sorted.begin(), sorted.end());
  std::vector<double> scratch = values;
  const std::vector<std::size_t> positions = probe_positions(values.size());
  const std::vector<double> got = icp::order_statistics(scratch, positions);
  ASSERT_EQ(got.size(), positions.size());
  for (std::size_t s = 0; s < positions.size(); ++s) {
    // == so that -0 and +0 agree; every other value must be the sorted one exactly.
    EXPECT_EQ(got[s], sorted[positions[s]])
        << what << ": position " << positions[s] << " of " << values.size();
  }
}

TEST(OrderStatistics, EqualsFullSortOnSpreadValues) {
  std::mt19937_64 rng(7);
  std::lognormal_distribution<double> revenue(14.0, 2.0);
  std::vector<double> v(200000);
  for (double& x : v) x = revenue(rng);
  expect_matches_sort(v, "lognormal");
  std::normal_distribution<double> centred(0.0, 1.0);
  for (double& x : v) x = centred(rng);  // negative and positive: the sign flip of the keys
  expect_matches_sort(v, "normal");
}

TEST(OrderStatistics, FewDistinctValuesAndConstantColumns) {
  std::mt19937_64 rng(11);
  std::vector<double> v(150000);
  for (double& x : v) x = static_cast<double>(rng() % 4);  // product signups 0..3
  expect_matches_sort(v, "four levels");
  std::fill(v.begin(), v.end(), 42.5);
  expect_matches_sort(v, "constant");
  // Values that share their top 48 bits: the selection has to go down to the last digit.
  for (std::size_t i = 0; i < v.size(); ++i)
    v[i] = 1.0e9 + static_cast<double>(rng() % 1000) * std::ldexp(1.0, -20);
  expect_matches_sort(v, "huge offset, tiny spread");
}

TEST(OrderStatistics, SignedZerosInfinitiesAndSmallInputs) {
  std::vector<double> v = {0.0,
                           -0.0,
                           -1.0,
                           1.0,
                           std::numeric_limits<double>::infinity(),
                           -std::numeric_limits<double>::infinity(),
                           -0.0,
                           3.0};
  expect_matches_sort(v, "zeros and infinities");
  expect_matches_sort({5.0}, "one value");
  std::vector<double> scratch = {2.0, 1.0};
  const std::size_t past[] = {2};
  EXPECT_THROW(icp::order_statistics(scratch, past), std::out_of_range);
}

TEST(OrderStatistics, QuantilesInterpolateLikeNumpy) {
  // numpy.quantile([1, 2, 3, 4], q): 0.25 -> 1.75, 0.5 -> 2.5, 0.75 -> 3.25.
  std::vector<double> v = {4.0, 1.0, 3.0, 2.0};
  const double want[] = {1.75, 2.5, 3.25};
  const double qs[] = {0.25, 0.5, 0.75};
  for (std::size_t j = 0; j < 3; ++j) {
    const icp::QuantilePlaces at = icp::quantile_places(v.size(), qs[j]);
    std::vector<double> scratch = v;
    const std::size_t pos[] = {at.lo, at.hi};
    const std::vector<double> got = icp::order_statistics(scratch, pos);
    EXPECT_DOUBLE_EQ(icp::quantile_between(at, got[0], got[1]), want[j]) << "q=" << qs[j];
  }
}

}  // namespace

namespace {

TEST(FloatOrderKey, RoundTripsAndKeepsOrder) {
  const float values[] = {-std::numeric_limits<float>::infinity(),
                          -3.5f,
                          -1e-30f,
                          -0.0f,
                          0.0f,
                          1e-30f,
                          2.0f,
                          std::numeric_limits<float>::max(),
                          std::numeric_limits<float>::infinity()};
  for (std::size_t i = 0; i < std::size(values); ++i) {
    EXPECT_EQ(icp::float_of_order_key(icp::float_order_key(values[i])), values[i]) << values[i];
    if (i > 0) {
      EXPECT_LE(icp::float_order_key(values[i - 1]), icp::float_order_key(values[i])) << values[i];
    }
  }
  EXPECT_EQ(icp::float_order_key(-0.0f), icp::float_order_key(0.0f));
}

}  // namespace

namespace {

/// StreamedSelection fed `values` look after look, as a table read in blocks would feed it (in
/// reverse order on the later looks: the order within a look must not matter).
std::vector<double> streamed(const std::vector<double>& values,
                             const std::vector<std::size_t>& positions, std::size_t collect_below,
                             int* looks) {
  icp::StreamedSelection s(collect_below);
  for (const double v : values) s.add(v);
  s.end_look();
  EXPECT_EQ(s.count(), values.size());
  s.want(positions);
  while (!s.done()) {
    for (auto it = values.rbegin(); it != values.rend(); ++it) s.add(*it);
    s.end_look();
  }
  *looks = s.looks();
  return s.result();
}

void expect_streamed_matches_sort(const std::vector<double>& values, const char* what) {
  std::vector<double> sorted = values;
  std::sort(sorted.begin(), sorted.end());
  const std::vector<std::size_t> positions = probe_positions(values.size());
  // 1: every bucket narrowed digit by digit; the default keeps small buckets after one look.
  for (const std::size_t collect :
       {std::size_t{1}, std::size_t{100}, icp::StreamedSelection::kCollectBelow}) {
    int looks = 0;
    const std::vector<double> got = streamed(values, positions, collect, &looks);
    ASSERT_EQ(got.size(), positions.size());
    EXPECT_LE(looks, 5) << what;  // the first look, then at most one per remaining 16 bits
    for (std::size_t s = 0; s < positions.size(); ++s) {
      EXPECT_EQ(got[s], sorted[positions[s]]) << what << ": position " << positions[s] << " of "
                                              << values.size() << ", collect_below " << collect;
      // A zero comes back as +0, as order_statistics gives it.
      if (got[s] == 0.0) {
        EXPECT_FALSE(std::signbit(got[s])) << what;
      }
    }
  }
}

TEST(StreamedSelection, EqualsFullSortLookAfterLook) {
  std::mt19937_64 rng(23);
  std::lognormal_distribution<double> revenue(14.0, 2.0);
  std::vector<double> v(60000);
  for (double& x : v) x = revenue(rng);
  expect_streamed_matches_sort(v, "lognormal");
  std::normal_distribution<double> centred(0.0, 1.0);
  for (double& x : v) x = centred(rng);
  expect_streamed_matches_sort(v, "normal");
  for (double& x : v) x = static_cast<double>(rng() % 4);
  expect_streamed_matches_sort(v, "four levels");
  std::fill(v.begin(), v.end(), -42.5);
  expect_streamed_matches_sort(v, "constant");
  for (double& x : v) x = 1.0e9 + static_cast<double>(rng() % 1000) * std::ldexp(1.0, -20);
  expect_streamed_matches_sort(v, "huge offset, tiny spread");
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = i % 3 == 0 ? -0.0 : (i % 3 == 1 ? 0.0 : -1.0);
  expect_streamed_matches_sort(v, "signed zeros");
  expect_streamed_matches_sort({7.25}, "one value");
  expect_streamed_matches_sort({-std::numeric_limits<double>::infinity(), 3.0,
                                std::numeric_limits<double>::infinity(), -3.0},
                               "infinities");
}

TEST(StreamedSelection, AgreesWithOrderStatisticsOnTheSameValues) {
  // The in-memory selection and the streamed one must give the same bits, not just equal values.
  std::mt19937_64 rng(5);
  std::vector<double> v(30000);
  for (std::size_t i = 0; i < v.size(); ++i)
    v[i] = std::ldexp(static_cast<double>(rng() >> 11), -40) * (i % 2 == 0 ? 1.0 : -1.0);
  const std::vector<std::size_t> positions = probe_positions(v.size());
  std::vector<double> scratch = v;
  const std::vector<double> want = icp::order_statistics(scratch, positions);
  int looks = 0;
  const std::vector<double> got = streamed(v, positions, 1, &looks);
  for (std::size_t s = 0; s < positions.size(); ++s)
    EXPECT_EQ(std::bit_cast<std::uint64_t>(got[s]), std::bit_cast<std::uint64_t>(want[s]));
  icp::StreamedSelection early;
  EXPECT_THROW(early.want(positions), std::logic_error);  // before the first look
  early.add(1.0);
  early.end_look();
  EXPECT_THROW(early.want(std::vector<std::size_t>{1}), std::out_of_range);
}

}  // namespace
