// Rows ordered by a float value (ties to the lower row), for ranks, midranks and AUCs. Not
// installed.
#pragma once

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

/// Monotone map float -> uint32: unsigned order of the keys is float order, -0 and +0 share a
/// key (every bit of a negative flipped, the sign bit of the rest set).
std::uint32_t float_order_key(float f) noexcept;

/// Sorts keys ascending (the radix sort order_by_value uses; a spare copy while it runs).
void sort_keys(std::vector<std::uint32_t>& keys);

}  // namespace icp
