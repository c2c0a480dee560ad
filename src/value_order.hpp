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

/// The normalized midrank of a value with `below` of m sorted values under it and `equal` equal
/// to it: normalized_midrank's expression for a tie group at places [below, below + equal), so a
/// member gets its bits and a value between two members lands halfway between their midranks.
/// Clamped to [0, 1]; 0 under every member; 1 when m < 2 (as a lone row).
inline double midrank_of_place(std::size_t below, std::size_t equal, std::size_t m) noexcept {
  if (m < 2) return 1.0;
  if (below + equal == 0) return 0.0;
  const double midrank0 = 0.5 * static_cast<double>(below + (below + equal) - 1);
  const double r = midrank0 / static_cast<double>(m - 1);
  return r < 0.0 ? 0.0 : (r > 1.0 ? 1.0 : r);
}

/// A sorted copy of values held nowhere else in full (a market read in blocks), as order keys,
/// searched through a cache-resident index of every kIndexStride-th key: where a value stands
/// among them, for ranks and midranks, at 4 bytes a value plus 1/64 of that.
class SortedKeys {
 public:
  /// 64 keys are 4 cache lines, and the index (1/64 of the keys: 2.3 MB at 37M) stays in cache,
  /// where a binary search of the whole copy missed the cache at nearly every step for every row.
  static constexpr std::size_t kIndexStride = 64;
  SortedKeys() = default;
  /// Takes float_order_key of every value (any order) and sorts them.
  explicit SortedKeys(std::vector<std::uint32_t> keys);
  std::size_t size() const noexcept { return keys_.size(); }
  /// First position whose key is >= key (lower) or > key (upper).
  std::size_t lower(std::uint32_t key) const noexcept;
  std::size_t upper(std::uint32_t key) const noexcept;
  /// The value at an ascending position (a zero comes back as +0).
  float at(std::size_t position) const noexcept { return float_of_order_key(keys_[position]); }
  /// The normalized midrank `v` would have among the values: for one of them, bit for bit what
  /// normalized_midrank gave it; a value between two of them lands halfway between their
  /// midranks (clamped to [0, 1]; 1 when there are fewer than two values).
  double midrank(float v) const noexcept;

 private:
  template <class Search>
  std::size_t bound(std::uint32_t key, Search search) const noexcept;
  std::vector<std::uint32_t> keys_;
  std::vector<std::uint32_t> index_;
};

/// rank_descending's ranks (1 = highest, ties to the lower row) handed out in row order, a block
/// of rows at a time, without its n-entry order: the values' SortedKeys and a counter per sorted
/// position, 8 bytes a row in all.
class StreamedRanks {
 public:
  /// Keeps a reference to `sorted`: every value that will be ranked, sorted.
  explicit StreamedRanks(const SortedKeys& sorted);
  /// Ranks of the next values.size() rows (rows continue across calls, in order).
  void next(std::span<const float> values, std::span<std::int64_t> rank);

 private:
  const SortedKeys& sorted_;
  std::vector<std::uint32_t> taken_;  // at a tie group's first position: its rows ranked so far
  std::vector<std::size_t> lo_;
};

/// Monotone map double -> uint64 (float_order_key's rule on 64 bits): -0 and +0 share a key.
inline std::uint64_t double_order_key(double v) noexcept {
  if (v == 0.0) v = 0.0;  // -0 == +0: one key
  const auto u = std::bit_cast<std::uint64_t>(v);
  return (u >> 63) != 0 ? ~u : (u | (std::uint64_t{1} << 63));
}

/// The values a full ascending sort of `values` would put at `positions` (each < values.size(),
/// any order, repeats allowed), exact, without sorting: a most-significant-digit radix selection
/// on order-preserving 64-bit keys (16 bits a pass) keeps only the buckets that hold a wanted
/// position, so a 10M-value column costs about two linear passes instead of the several
/// nth_element passes one selection per position took. `values` must hold no NaN and is used as
/// scratch (its contents are overwritten). -0 and +0 count as equal (a zero comes back as +0).
std::vector<double> order_statistics(std::span<double> values,
                                     std::span<const std::size_t> positions);

/// order_statistics for values that cannot all be held (a column of a table read in blocks): the
/// same radix selection, one digit per look at the values, with the values offered again on each
/// look in any order. The first look counts the top 16 bits of every value and gives count();
/// want() then names the positions, and each later look narrows every wanted position's bucket by
/// 16 more bits, or, once a bucket holds at most `collect_below` values, keeps that bucket's
/// values and sorts them. Usually two or three looks after the first; at most four. Holds a
/// 512 KiB count table per wanted bucket plus the kept buckets. Results have order_statistics'
/// bits (-0 and +0 equal, a zero comes back as +0). Values must not be NaN.
class StreamedSelection {
 public:
  static constexpr std::size_t kCollectBelow = std::size_t{1} << 20;  // 8 MiB of keys
  explicit StreamedSelection(std::size_t collect_below = kCollectBelow);
  /// Offers one value to the current look.
  void add(double v) {
    const std::uint64_t key = double_order_key(v);
    for (Bucket& b : open_) {
      if (b.bits != 0 && (key >> (64 - b.bits)) != b.prefix) continue;
      if (b.collect)
        b.keys.push_back(key);
      else
        ++b.count[static_cast<std::size_t>((key >> (48 - b.bits)) & 0xFFFF)];
      return;
    }
  }
  /// Ends a look: resolves the buckets it narrowed or kept.
  void end_look();
  /// Values offered to the first look.
  std::size_t count() const noexcept { return count_; }
  /// After the first look: the positions wanted (each < count(), any order, repeats allowed).
  void want(std::span<const std::size_t> positions);
  /// Every wanted position is found (so no further look is needed).
  bool done() const noexcept { return wanted_set_ && open_.empty(); }
  /// The values at the wanted positions, in want()'s order; only when done().
  std::vector<double> result() const;
  /// Looks taken so far.
  int looks() const noexcept { return looks_; }

 private:
  struct Target {
    std::size_t rank = 0;  // within its bucket
    std::size_t slot = 0;  // in want()'s order
  };
  struct Bucket {
    std::uint64_t prefix = 0;  // the top `bits` bits every value in it shares
    int bits = 0;
    std::size_t size = 0;  // values in it
    bool collect = false;
    std::vector<std::size_t> count;   // next 16-bit digit histogram (when !collect)
    std::vector<std::uint64_t> keys;  // its values' keys (when collect)
    std::vector<Target> targets;
  };
  void split(Bucket& b, std::vector<Bucket>& next);

  std::size_t collect_below_;
  std::vector<Bucket> open_;
  std::vector<std::uint64_t> found_;
  std::size_t count_ = 0;
  bool wanted_set_ = false;
  int looks_ = 0;
};

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
