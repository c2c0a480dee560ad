// Rows ordered by a float value (ties to the lower row), for ranks, midranks and AUCs. Not
// installed.
#pragma once

#include <cstddef>
#include <span>
#include <vector>

namespace icp {

/// Row indices sorted by value ascending (descending = true: largest first), equal values in
/// row order; -0 and +0 count as equal. Sorts packed (value key, row) 64-bit integers, which are
/// unique, so the parallel sort's result does not depend on the thread count; this is 3-5x faster
/// than sorting indices through a comparator that chases the values (cache misses per compare).
std::vector<std::size_t> order_by_value(std::span<const float> value, bool descending);

}  // namespace icp
