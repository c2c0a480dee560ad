#include "value_order.hpp"

#include <oneapi/tbb/parallel_sort.h>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <numeric>

namespace icp {

namespace {

/// Monotone map float -> uint32: flipping every bit of negatives and the sign bit of the rest
/// makes unsigned order equal float order.
std::uint32_t float_key(float f) noexcept {
  if (f == 0.0f) f = 0.0f;  // -0 == +0 as floats: give them one key
  const auto u = std::bit_cast<std::uint32_t>(f);
  return (u & 0x80000000u) != 0 ? ~u : (u | 0x80000000u);
}

}  // namespace

std::vector<std::size_t> order_by_value(std::span<const float> value, bool descending) {
  const std::size_t n = value.size();
  std::vector<std::size_t> order(n);
  if (n > (std::size_t{1} << 32)) {  // rows no longer fit the key's low half
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
      const float va = value[a];
      const float vb = value[b];
      if (va != vb) return descending ? va > vb : va < vb;
      return a < b;
    });
    return order;
  }
  std::vector<std::uint64_t> keys(n);
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint32_t k = descending ? ~float_key(value[i]) : float_key(value[i]);
    keys[i] = (static_cast<std::uint64_t>(k) << 32) | static_cast<std::uint64_t>(i);
  }
  tbb::parallel_sort(keys.begin(), keys.end());
  for (std::size_t i = 0; i < n; ++i) order[i] = static_cast<std::size_t>(keys[i] & 0xFFFFFFFFu);
  return order;
}

}  // namespace icp
