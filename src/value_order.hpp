// Rows ordered by a float value (ties to the lower row), for ranks, midranks and AUCs. Not
// installed.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace icp {

/// Row indices sorted by value ascending (descending = true: largest first), equal values in
/// row order; -0 and +0 count as equal. Sorts packed (value key, row) 64-bit integers with a
/// stable radix sort on the value key (rows stay in order among equal values), on one thread, so
/// the result cannot depend on the thread count; packed keys are 3-5x faster than sorting indices
/// through a comparator that chases the values, and the radix sort 2-3x faster than a parallel
/// comparison sort of the keys on 2 threads.
std::vector<std::size_t> order_by_value(std::span<const float> value, bool descending);

/// Ascending midrank of each value scaled to [0, 1]: tied values share the mean of their ranks,
/// so a method with few distinct values (segment) neither gains nor loses from tie order ((i + j -
/// 1) / 2 / (n - 1) for a tie group at sorted places [i, j); a lone row gets 1). `rank` (optional)
/// gets rank_descending's ranks from the same sort: a tie group at ascending places [i, j), rows in
/// ascending order, holds descending ranks n - j + 1 .. n - i in that order. Without `rank`, values
/// that take at most 64 distinct values are ranked by counting instead of sorting (the same bits).
std::vector<double> normalized_midrank(std::span<const float> value,
                                       std::vector<std::int64_t>* rank = nullptr);

/// Monotone map float -> uint32: unsigned order of the keys is float order, -0 and +0 share a
/// key (every bit of a negative flipped, the sign bit of the rest set). Out of line: inlined
/// into knn's prefill it made the 2M x 512 search 3-4% slower (measured in two stops).
std::uint32_t float_order_key(float f) noexcept;
/// float_order_key's map, inline for the loops that want it so (Hamerly's runner-up search,
/// where a call per score cost 0.3-0.5 s of a 10M-row fit).
inline std::uint32_t float_order_key_inline(float f) noexcept {
  if (f == 0.0f) f = 0.0f;  // -0 == +0 as floats: give them one key
  const auto u = std::bit_cast<std::uint32_t>(f);
  return (u & 0x80000000u) != 0 ? ~u : (u | 0x80000000u);
}
/// The float of a key (a zero comes back as +0).
float float_of_order_key(std::uint32_t key) noexcept;

/// Sorts keys ascending (the radix sort order_by_value uses; a spare copy while it runs).
void sort_keys(std::vector<std::uint32_t>& keys);

/// The values a full ascending sort of `values` would put at `positions` (each < values.size(),
/// any order, repeats allowed), exact, without sorting: a most-significant-digit radix selection
/// on order-preserving 64-bit keys (16 bits a pass) keeps only the buckets that hold a wanted
/// position, so a 10M-value column costs about two linear passes instead of the several
/// nth_element passes one selection per position took. `values` must hold no NaN and is used as
/// scratch (its contents are overwritten). -0 and +0 count as equal (a zero comes back as +0).
std::vector<double> order_statistics(std::span<double> values,
                                     std::span<const std::size_t> positions);

/// Type-7 quantile (numpy's default) of `count` values whose order statistics at
/// quantile_places(count, q) are `lo` and `hi`: lo + (h - floor h) (hi - lo), h = (count - 1) q.
struct QuantilePlaces {
  std::size_t lo = 0;
  std::size_t hi = 0;
  double frac = 0.0;
};
QuantilePlaces quantile_places(std::size_t count, double q) noexcept;
double quantile_between(const QuantilePlaces& at, double lo, double hi) noexcept;

}  // namespace icp
