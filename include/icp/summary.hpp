// Segment summaries: each k-means segment described as an ICP profile people can act on (size,
// seed concentration, value, typical feature ranges, dominant levels, a one-line description).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "icp/table.hpp"

namespace icp {

struct SummaryOptions {
  std::string value_column;                  ///< numeric, e.g. "acv" ("" = none)
  std::vector<std::string> numeric_columns;  ///< numeric columns profiled in original units
  std::vector<std::string> categorical_columns;
  int top_levels = 5;  ///< levels kept per categorical profile (>= 0)
  /// "ICP" when lift >= this and seed_count >= min_seeds, unless the negative-rate rule below
  /// fires (a segment that churns at twice the base rate is not a target). Must be > 0.
  double icp_lift = 1.5;
  /// "negative-ICP" when lift <= this (and the segment is big enough that min_seeds seeds were
  /// expected at the base rate) or when the negative-rate lift >= 1/this (with at least
  /// min_seeds negatives). Must be > 0.
  double negative_lift = 0.5;
  std::int64_t min_seeds = 3;  ///< evidence needed before a segment gets a label (>= 0)
};

/// Statistics of one numeric column within a segment, over its non-missing cells. Quantiles are
/// exact, "type 7" (numpy's default, linear interpolation): for sorted values x[0..m-1] and
/// probability p, h = (m - 1) p, i = floor(h) and Q(p) = x[i] + (h - i) (x[i + 1] - x[i]).
/// With no non-missing cell, median/q1/q3/mean are NaN (written as null in JSON).
struct NumericProfile {
  std::string column;
  double median = 0.0;
  double q1 = 0.0;
  double q3 = 0.0;
  double mean = 0.0;
  double missing_share = 0.0;  ///< missing cells / segment size (0 for an empty segment)
};

/// Shares are among cells with a known level (missing cells are left out of both numerator and
/// denominator), in the segment and overall; lift = segment share / overall share.
struct LevelShare {
  std::string level;
  double share = 0.0;
  double lift = 0.0;
};

struct CategoricalProfile {
  std::string column;
  std::vector<LevelShare> top;  ///< up to top_levels present levels, by share (ties: lower code)
};

struct SegmentSummary {
  std::int32_t segment = 0;
  std::int64_t size = 0;
  double share = 0.0;  ///< size / rows
  std::int64_t seed_count = 0;
  double seed_rate = 0.0;  ///< seed_count / size (0 when empty)
  double lift = 0.0;       ///< seed_rate / base_seed_rate (0 when there are no seeds)
  std::int64_t negative_count = 0;
  double negative_rate = 0.0;  ///< negative_count / size (0 when empty)
  double value_mean = 0.0;     ///< over non-missing values; NaN when none (or no column)
  double value_median = 0.0;   ///< type-7 median; NaN when none (or no column)
  double value_total = 0.0;    ///< sum of non-missing values; NaN when no value column
  /// 1 = best. Ordered by the smoothed seed rate (seeds + 20 base) / (size + 20), which pulls
  /// small segments toward the base rate so that 1 seed among 2 accounts does not rank first;
  /// ties go to the lower segment id.
  std::int32_t icp_rank = 0;
  std::string label;                    ///< "ICP", "negative-ICP" or "neutral"
  std::string description;              ///< one plain-English line (UTF-8, en dash in ranges)
  std::vector<NumericProfile> numeric;  ///< in options.numeric_columns order
  std::vector<CategoricalProfile> categorical;  ///< in options.categorical_columns order
};

struct IcpSummary {
  std::vector<SegmentSummary> segments;  ///< ordered by segment id, all k of them
  double base_seed_rate = 0.0;           ///< seeds / rows (0 when rows == 0)
  std::int64_t seeds = 0;
  std::int64_t negatives = 0;
  std::int64_t rows = 0;
};

/// Summarizes the k segments of `table`. `segment` gives each row's segment (0..k-1), `is_seed`
/// is 0/1 per row, `is_negative` is 0/1 per row or empty (no negative seeds). Throws icp::Error for
/// k < 1, spans of the wrong length, a segment id out of range, a flag other than 0/1, unknown
/// or wrongly typed columns, invalid categorical codes and invalid options. The result is
/// identical at any thread count.
IcpSummary summarize_segments(const Table& table, std::span<const std::int32_t> segment, int k,
                              std::span<const std::uint8_t> is_seed,
                              std::span<const std::uint8_t> is_negative,
                              const SummaryOptions& options);

/// summarize_segments over a table read in blocks (a market larger than memory), with the same
/// result. Holds the per-row inputs, per (column, segment) a float64 sum and an exact radix
/// selection for the quartiles (512 KiB count tables, buckets of at most 64K values kept), and one
/// block; scans the table 1 + (1 to 4) times, reading each block's numeric columns again only
/// while a quartile is still open. A row is named by its number in messages.
IcpSummary summarize_segments(const TableScan& scan, std::span<const std::int32_t> segment, int k,
                              std::span<const std::uint8_t> is_seed,
                              std::span<const std::uint8_t> is_negative,
                              const SummaryOptions& options);

/// The summary as pretty-printed JSON (keys named as the struct fields; non-finite numbers are
/// written as null).
std::string to_json(const IcpSummary& summary);

}  // namespace icp
