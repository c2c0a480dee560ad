// Exact order statistics by radix selection, checked against a full std::sort of the same values.

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <limits>
#include <random>
#include <span>
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

namespace {

/// Values with many ties, both zeros, infinities and spread values: the cases ranks must order.
std::vector<float> tied_values(std::size_t n, unsigned levels, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<float> v(n);
  for (std::size_t i = 0; i < n; ++i) {
    const unsigned pick = rng() % 8;
    if (pick == 0) {
      v[i] = std::uniform_real_distribution<float>(-3.0f, 3.0f)(rng);
    } else if (pick == 1) {
      v[i] = (rng() % 2 == 0) ? -0.0f : 0.0f;
    } else if (pick == 2 && rng() % 16 == 0) {
      v[i] = (rng() % 2 == 0) ? std::numeric_limits<float>::infinity()
                              : -std::numeric_limits<float>::infinity();
    } else {
      v[i] = static_cast<float>(rng() % levels) * 0.25f - 1.0f;
    }
  }
  return v;
}

}  // namespace

TEST(SortedKeys, MidrankOfAMemberIsNormalizedMidranksBits) {
  for (const std::size_t n : {std::size_t{1}, std::size_t{2}, std::size_t{63}, std::size_t{64},
                              std::size_t{65}, std::size_t{1000}, std::size_t{20000}}) {
    const std::vector<float> v = tied_values(n, 17, static_cast<std::uint32_t>(n));
    std::vector<std::uint32_t> keys(n);
    for (std::size_t i = 0; i < n; ++i) keys[i] = icp::float_order_key(v[i]);
    const icp::SortedKeys sorted(std::move(keys));
    const std::vector<double> want = icp::normalized_midrank(v);
    for (std::size_t i = 0; i < n; ++i) {
      const double got = sorted.midrank(v[i]);
      ASSERT_EQ(std::bit_cast<std::uint64_t>(got), std::bit_cast<std::uint64_t>(want[i]))
          << "n " << n << ", row " << i << ", value " << v[i];
    }
    // Bounds against a plain search of a sorted copy.
    std::vector<float> plain = v;
    std::sort(plain.begin(), plain.end());
    for (std::size_t i = 0; i < n; i += 7) {
      const auto lo = std::lower_bound(plain.begin(), plain.end(), v[i]) - plain.begin();
      const auto hi = std::upper_bound(plain.begin(), plain.end(), v[i]) - plain.begin();
      EXPECT_EQ(sorted.lower(icp::float_order_key(v[i])), static_cast<std::size_t>(lo));
      EXPECT_EQ(sorted.upper(icp::float_order_key(v[i])), static_cast<std::size_t>(hi));
    }
  }
  // Outside the population: under every member 0, over every member 1, between two halfway.
  const icp::SortedKeys three(std::vector<std::uint32_t>{
      icp::float_order_key(1.0f), icp::float_order_key(2.0f), icp::float_order_key(3.0f)});
  EXPECT_EQ(three.midrank(0.5f), 0.0);
  EXPECT_EQ(three.midrank(9.0f), 1.0);
  EXPECT_EQ(three.midrank(1.5f), 0.25);
  EXPECT_EQ(three.at(2), 3.0f);
}

TEST(StreamedRanks, EqualsRankDescendingForAnyBlocks) {
  for (const unsigned levels : {1u, 3u, 1000u}) {
    const std::size_t n = 3000;
    const std::vector<float> v = tied_values(n, levels, levels);
    // Plain definition: 1 + rows with a larger value + earlier rows with an equal one.
    std::vector<std::int64_t> want(n, 1);
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t j = 0; j < n; ++j)
        want[i] += (v[j] > v[i] || (v[j] == v[i] && j < i)) ? 1 : 0;
    for (const std::size_t block : {std::size_t{1}, std::size_t{64}, std::size_t{4097}, n}) {
      std::vector<std::uint32_t> keys(n);
      for (std::size_t i = 0; i < n; ++i) keys[i] = icp::float_order_key(v[i]);
      const icp::SortedKeys sorted(std::move(keys));
      icp::StreamedRanks ranks(sorted);
      std::vector<std::int64_t> got(n);
      for (std::size_t first = 0; first < n; first += block) {
        const std::size_t count = std::min(block, n - first);
        ranks.next(std::span<const float>(v).subspan(first, count),
                   std::span<std::int64_t>(got).subspan(first, count));
      }
      EXPECT_EQ(got, want) << levels << " levels, blocks of " << block;
    }
  }
}
