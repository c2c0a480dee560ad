#include "value_order.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <optional>
#include <stdexcept>
#include <utility>

#include "icp/matrix.hpp"

namespace icp {

namespace {

// Digits of the stable radix sort: 11 bits (a 16 KiB count table, L1-resident) take the 32-bit
// value key in 3 passes.
constexpr unsigned kRadixBits = 11;
constexpr std::size_t kRadixBuckets = std::size_t{1} << kRadixBits;
constexpr unsigned kRadixPasses = (32 + kRadixBits - 1) / kRadixBits;
// Rows below which the key and order loops stay on the calling thread (a team costs more).
constexpr std::size_t kParallelRows = std::size_t{1} << 16;

// Page-fault-free scratch: written by the loops below before it is read.
using Keys = std::vector<std::uint64_t, DefaultInitAllocator<std::uint64_t>>;

// Sorts integers by their 32 bits from `base` up with a stable LSD radix sort. For packed
// (value key << 32 | row) integers (base 32) the rows, written in ascending order, stay ascending
// among equal keys, which is the order of the whole 64-bit integers. One counting pass for every
// digit, then a scatter per digit: linear passes instead of a comparison sort's log n (10M keys:
// 0.26 s against 0.47 s for tbb::parallel_sort on 2 threads, bench_lookalike BM_OrderByValue).
template <class Vector>
void radix_sort_32(Vector& keys, unsigned base) {
  std::vector<std::size_t> start(kRadixPasses * (kRadixBuckets + 1), 0);
  for (const auto k : keys)
    for (unsigned p = 0; p < kRadixPasses; ++p)
      ++start[p * (kRadixBuckets + 1) + ((k >> (base + p * kRadixBits)) & (kRadixBuckets - 1)) + 1];
  Vector spare(keys.size());
  for (unsigned p = 0; p < kRadixPasses; ++p) {
    std::size_t* at = start.data() + p * (kRadixBuckets + 1);
    // A digit that is the same for every key leaves the order as it is.
    if (std::find(at + 1, at + kRadixBuckets + 1, keys.size()) != at + kRadixBuckets + 1) continue;
    for (std::size_t b = 0; b < kRadixBuckets; ++b) at[b + 1] += at[b];
    const unsigned shift = base + p * kRadixBits;
    for (const auto k : keys) spare[at[(k >> shift) & (kRadixBuckets - 1)]++] = k;
    keys.swap(spare);
  }
}

// Distinct values counted before a sort is given up on: a segment method's scores take one value
// per segment, and ranking those by counting is a pass over the rows instead of a sort of them.
constexpr std::size_t kFewLevels = 64;
// Open-addressing slots for the distinct values: a power of two, 4x kFewLevels, so probes stay
// short (a binary search over the levels per row cost as much as the sort it replaced).
constexpr std::size_t kLevelSlots = 256;

// Each row's level (in order of first appearance) and each level's value and count, or nothing
// when there are more than kFewLevels distinct values (or a NaN, which has no order).
struct Levels {
  std::vector<std::uint8_t> id;  // per row
  std::vector<float> value;      // per level
  std::vector<std::size_t> count;
};

std::optional<Levels> few_levels(std::span<const float> value) {
  static_assert(kFewLevels <= 256, "level ids are bytes");
  std::array<std::int16_t, kLevelSlots> slot;
  slot.fill(-1);
  std::array<std::uint32_t, kLevelSlots> slot_key{};
  Levels out;
  out.id.resize(value.size());
  for (std::size_t r = 0; r < value.size(); ++r) {
    const float v = value[r];
    if (std::isnan(v)) return std::nullopt;
    // -0 and +0 are one value: the same key for both.
    const std::uint32_t key = v == 0.0f ? 0u : std::bit_cast<std::uint32_t>(v);
    std::size_t h = (key * 0x9E3779B1u) >> 24;
    while (slot[h] >= 0 && slot_key[h] != key) h = (h + 1) & (kLevelSlots - 1);
    if (slot[h] < 0) {
      if (out.value.size() == kFewLevels) return std::nullopt;
      slot[h] = static_cast<std::int16_t>(out.value.size());
      slot_key[h] = key;
      out.value.push_back(v);
      out.count.push_back(0);
    }
    const auto level = static_cast<std::size_t>(slot[h]);
    out.id[r] = static_cast<std::uint8_t>(level);
    ++out.count[level];
  }
  return out;
}

}  // namespace

std::uint32_t float_order_key(float f) noexcept {
  return float_order_key_inline(f);
}

float float_of_order_key(std::uint32_t key) noexcept {
  return std::bit_cast<float>((key & 0x80000000u) != 0 ? (key & 0x7FFFFFFFu) : ~key);
}

void sort_keys(std::vector<std::uint32_t>& keys) {
  radix_sort_32(keys, 0);
}

SortedKeys::SortedKeys(std::vector<std::uint32_t> keys) : keys_(std::move(keys)) {
  sort_keys(keys_);
  index_.resize((keys_.size() + kIndexStride - 1) / kIndexStride);
  for (std::size_t s = 0; s < index_.size(); ++s) index_[s] = keys_[s * kIndexStride];
}

// The index narrows the bound to the run of kIndexStride keys that holds it: with index_[s] the
// first sample past the bound, the bound lies in ((s - 1) * stride, s * stride].
template <class Search>
std::size_t SortedKeys::bound(std::uint32_t key, Search search) const noexcept {
  const auto s =
      static_cast<std::size_t>(search(index_.begin(), index_.end(), key) - index_.begin());
  const std::size_t b = s == 0 ? 0 : (s - 1) * kIndexStride;
  const std::size_t e = std::min(keys_.size(), s * kIndexStride);
  return static_cast<std::size_t>(search(keys_.begin() + static_cast<std::ptrdiff_t>(b),
                                         keys_.begin() + static_cast<std::ptrdiff_t>(e), key) -
                                  keys_.begin());
}

std::size_t SortedKeys::lower(std::uint32_t key) const noexcept {
  return bound(
      key, [](auto first, auto last, std::uint32_t k) { return std::lower_bound(first, last, k); });
}

std::size_t SortedKeys::upper(std::uint32_t key) const noexcept {
  return bound(
      key, [](auto first, auto last, std::uint32_t k) { return std::upper_bound(first, last, k); });
}

double SortedKeys::midrank(float v) const noexcept {
  const std::size_t m = keys_.size();
  if (m < 2) return midrank_of_place(0, 0, m);
  const std::uint32_t key = float_order_key(v);
  const std::size_t below = lower(key);
  // Most values (continuous scores) equal no member: the second search only when one is v.
  const std::size_t equal = below < m && keys_[below] == key ? upper(key) - below : 0;
  return midrank_of_place(below, equal, m);
}

StreamedRanks::StreamedRanks(const SortedKeys& sorted)
    : sorted_(sorted), taken_(sorted.size(), 0) {}

void StreamedRanks::next(std::span<const float> values, std::span<std::int64_t> rank) {
  const std::size_t n = sorted_.size();
  const auto count = static_cast<std::ptrdiff_t>(values.size());
  lo_.resize(values.size());
  // The searches read only the sorted keys: in parallel. The counters are taken in row order.
#pragma omp parallel for schedule(static)
  for (std::ptrdiff_t t = 0; t < count; ++t) {
    const auto i = static_cast<std::size_t>(t);
    const std::uint32_t key = float_order_key(values[i]);
    lo_[i] = sorted_.lower(key);
    rank[i] = static_cast<std::int64_t>(n - sorted_.upper(key)) + 1;  // 1 + rows above
  }
  for (std::size_t i = 0; i < values.size(); ++i) rank[i] += taken_[lo_[i]]++;
}

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
  Keys keys(n);
  const auto count = static_cast<std::int64_t>(n);
#pragma omp parallel for schedule(static) if (n > kParallelRows)
  for (std::int64_t s = 0; s < count; ++s) {
    const auto i = static_cast<std::size_t>(s);
    const std::uint32_t k = descending ? ~float_order_key(value[i]) : float_order_key(value[i]);
    keys[i] = (static_cast<std::uint64_t>(k) << 32) | static_cast<std::uint64_t>(i);
  }
  radix_sort_32(keys, 32);
#pragma omp parallel for schedule(static) if (n > kParallelRows)
  for (std::int64_t s = 0; s < count; ++s) {
    const auto i = static_cast<std::size_t>(s);
    order[i] = static_cast<std::size_t>(keys[i] & 0xFFFFFFFFu);
  }
  return order;
}

std::vector<double> normalized_midrank(std::span<const float> value,
                                       std::vector<std::int64_t>* rank) {
  const std::size_t n = value.size();
  std::vector<double> out(n, 1.0);
  if (rank != nullptr) rank->assign(n, 1);
  // Few distinct values and no ranks wanted: tie groups from counts, the same i and j (so the
  // same bits) as the sorted path's.
  if (rank == nullptr) {
    if (const std::optional<Levels> levels = few_levels(value)) {
      const std::size_t count = levels->value.size();
      std::vector<std::size_t> by_value(count);
      std::iota(by_value.begin(), by_value.end(), std::size_t{0});
      std::sort(by_value.begin(), by_value.end(),
                [&](std::size_t a, std::size_t b) { return levels->value[a] < levels->value[b]; });
      std::vector<double> mid(count);
      std::size_t i = 0;
      for (const std::size_t l : by_value) {
        const std::size_t j = i + levels->count[l];
        mid[l] = n >= 2 ? 0.5 * static_cast<double>(i + j - 1) / static_cast<double>(n - 1) : 1.0;
        i = j;
      }
      for (std::size_t r = 0; r < n; ++r) out[r] = mid[levels->id[r]];
      return out;
    }
  }
  const std::vector<std::size_t> order = order_by_value(value, false);
  std::size_t i = 0;
  while (i < n) {
    std::size_t j = i;
    while (j < n && value[order[j]] == value[order[i]]) ++j;
    const double midrank0 = 0.5 * static_cast<double>(i + j - 1);  // 0-based mean rank
    for (std::size_t t = i; t < j; ++t) {
      if (n >= 2) out[order[t]] = midrank0 / static_cast<double>(n - 1);
      if (rank != nullptr) (*rank)[order[t]] = static_cast<std::int64_t>(n - j + (t - i) + 1);
    }
    i = j;
  }
  return out;
}

namespace {

// Order statistics: 16-bit digits (a 256 KiB count table, L2-resident) take a 64-bit key in at
// most 4 passes, and a double's top 16 bits (sign, exponent, 4 mantissa bits) already split
// typical columns into hundreds of buckets.
constexpr unsigned kSelectBits = 16;
constexpr std::size_t kSelectBuckets = std::size_t{1} << kSelectBits;
// Below this many keys a plain sort is cheaper than another counting pass.
constexpr std::size_t kSelectSortBelow = 4096;

double double_of_key(std::uint64_t k) noexcept {
  return std::bit_cast<double>((k >> 63) != 0 ? (k & ~(std::uint64_t{1} << 63)) : ~k);
}

struct Wanted {
  std::size_t rank = 0;  // within the keys being searched
  std::size_t slot = 0;  // in the caller's output
};

// Keys at the wanted ranks of `keys` (reordered freely). Every key of a bucket shares its digits
// so far, so once all 64 bits are taken a bucket holds one value.
void select_keys(std::span<std::uint64_t> keys, int shift, std::span<const Wanted> wanted,
                 std::vector<std::uint64_t>& out) {
  if (keys.size() < kSelectSortBelow || shift < 0) {
    std::sort(keys.begin(), keys.end());
    for (const Wanted& w : wanted) out[w.slot] = keys[w.rank];
    return;
  }
  const auto digit = [shift](std::uint64_t k) {
    return static_cast<std::size_t>((k >> static_cast<unsigned>(shift)) & (kSelectBuckets - 1));
  };
  std::vector<std::size_t> count(kSelectBuckets, 0);
  for (const std::uint64_t k : keys) ++count[digit(k)];
  std::vector<std::size_t> start(kSelectBuckets + 1, 0);
  for (std::size_t b = 0; b < kSelectBuckets; ++b) start[b + 1] = start[b] + count[b];
  // The buckets holding a wanted rank, in bucket order, each with its wanted ranks.
  std::vector<std::size_t> buckets;
  std::vector<std::vector<Wanted>> inside;
  std::vector<std::int32_t> index_of(kSelectBuckets, -1);
  for (const Wanted& w : wanted) {
    const std::size_t b = static_cast<std::size_t>(
        std::upper_bound(start.begin(), start.end(), w.rank) - start.begin() - 1);
    if (index_of[b] < 0) {
      index_of[b] = static_cast<std::int32_t>(buckets.size());
      buckets.push_back(b);
      inside.emplace_back();
    }
    inside[static_cast<std::size_t>(index_of[b])].push_back({w.rank - start[b], w.slot});
  }
  // One pass gathers every wanted bucket; a bucket that is all of the keys is searched in place.
  if (buckets.size() == 1 && count[buckets[0]] == keys.size()) {
    select_keys(keys, shift - static_cast<int>(kSelectBits), inside[0], out);
    return;
  }
  std::vector<std::vector<std::uint64_t>> held(buckets.size());
  for (std::size_t g = 0; g < buckets.size(); ++g) held[g].reserve(count[buckets[g]]);
  for (const std::uint64_t k : keys) {
    const std::int32_t g = index_of[digit(k)];
    if (g >= 0) held[static_cast<std::size_t>(g)].push_back(k);
  }
  for (std::size_t g = 0; g < buckets.size(); ++g)
    select_keys(held[g], shift - static_cast<int>(kSelectBits), inside[g], out);
}

}  // namespace

std::vector<double> order_statistics(std::span<double> values,
                                     std::span<const std::size_t> positions) {
  const std::size_t n = values.size();
  std::vector<Wanted> wanted;
  wanted.reserve(positions.size());
  for (std::size_t s = 0; s < positions.size(); ++s) {
    if (positions[s] >= n) throw std::out_of_range("order_statistics: position past the values");
    wanted.push_back({positions[s], s});
  }
  // The keys take the values' own storage: doubles and keys are both 8 bytes.
  static_assert(sizeof(double) == sizeof(std::uint64_t));
  std::span<std::uint64_t> keys(reinterpret_cast<std::uint64_t*>(values.data()), n);
  for (std::size_t i = 0; i < n; ++i) keys[i] = double_order_key(values[i]);
  std::vector<std::uint64_t> found(positions.size(), 0);
  if (!wanted.empty()) select_keys(keys, 64 - static_cast<int>(kSelectBits), wanted, found);
  std::vector<double> out(positions.size());
  for (std::size_t s = 0; s < out.size(); ++s) out[s] = double_of_key(found[s]);
  return out;
}

StreamedSelection::StreamedSelection(std::size_t collect_below)
    : collect_below_(std::max<std::size_t>(collect_below, 1)) {
  Bucket root;
  root.count.assign(kSelectBuckets, 0);
  open_.push_back(std::move(root));
}

void StreamedSelection::split(Bucket& b, std::vector<Bucket>& next) {
  if (b.collect) {
    std::sort(b.keys.begin(), b.keys.end());
    for (const Target& t : b.targets) found_[t.slot] = b.keys[t.rank];
    return;
  }
  std::vector<std::size_t> start(kSelectBuckets + 1, 0);
  for (std::size_t d = 0; d < kSelectBuckets; ++d) start[d + 1] = start[d] + b.count[d];
  const std::size_t first_new = next.size();
  for (const Target& t : b.targets) {
    const auto d = static_cast<std::size_t>(std::upper_bound(start.begin(), start.end(), t.rank) -
                                            start.begin() - 1);
    const std::uint64_t prefix = (b.prefix << kSelectBits) | d;
    const int bits = b.bits + static_cast<int>(kSelectBits);
    if (bits == 64) {  // every bit taken: the bucket is one value
      found_[t.slot] = prefix;
      continue;
    }
    auto it = std::find_if(next.begin() + static_cast<std::ptrdiff_t>(first_new), next.end(),
                           [&](const Bucket& o) { return o.prefix == prefix; });
    if (it == next.end()) {
      Bucket nb;
      nb.prefix = prefix;
      nb.bits = bits;
      nb.size = b.count[d];
      nb.collect = nb.size <= collect_below_;
      if (nb.collect)
        nb.keys.reserve(nb.size);
      else
        nb.count.assign(kSelectBuckets, 0);
      next.push_back(std::move(nb));
      it = next.end() - 1;
    }
    it->targets.push_back({t.rank - start[d], t.slot});
  }
}

void StreamedSelection::end_look() {
  ++looks_;
  if (looks_ == 1) {
    for (const std::size_t c : open_.front().count) count_ += c;
    return;  // want() splits the first look's histogram
  }
  std::vector<Bucket> next;
  for (Bucket& b : open_) split(b, next);
  open_ = std::move(next);
}

void StreamedSelection::want(std::span<const std::size_t> positions) {
  if (looks_ != 1 || wanted_set_)
    throw std::logic_error("StreamedSelection::want: call once, after the first look");
  for (const std::size_t p : positions)
    if (p >= count_) throw std::out_of_range("StreamedSelection::want: position past the values");
  found_.assign(positions.size(), 0);
  Bucket& root = open_.front();
  for (std::size_t s = 0; s < positions.size(); ++s) root.targets.push_back({positions[s], s});
  wanted_set_ = true;
  std::vector<Bucket> next;
  split(root, next);
  open_ = std::move(next);
}

std::vector<double> StreamedSelection::result() const {
  if (!done()) throw std::logic_error("StreamedSelection::result: positions not all found yet");
  std::vector<double> out(found_.size());
  for (std::size_t s = 0; s < out.size(); ++s) out[s] = double_of_key(found_[s]);
  return out;
}

QuantilePlaces quantile_places(std::size_t count, double q) noexcept {
  QuantilePlaces at;
  const double h = static_cast<double>(count - 1) * q;
  const double floor_h = std::floor(h);
  at.lo = static_cast<std::size_t>(floor_h);
  at.hi = std::min(at.lo + 1, count - 1);
  at.frac = h - floor_h;
  return at;
}

double quantile_between(const QuantilePlaces& at, double lo, double hi) noexcept {
  return lo + at.frac * (hi - lo);
}

}  // namespace icp
