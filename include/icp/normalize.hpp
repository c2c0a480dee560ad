// Feature normalization: a typed table -> a contiguous, centred float32 matrix, plus every
// parameter needed to apply the same mapping to new accounts.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "icp/config.hpp"
#include "icp/matrix.hpp"
#include "icp/reduce.hpp"
#include "icp/table.hpp"

namespace icp {

enum class FeatureKind : std::int32_t {
  numeric = 0,  ///< weight * (transform(x) - center) / scale
  flag = 1,     ///< weight where the source cell is missing, else 0
  onehot = 2,   ///< weight / sqrt(2) where the source level (or pooled "other") is present
};

/// One output column of the matrix and how it is computed from the source table.
struct FeatureSpec {
  std::string name;           ///< e.g. "employees", "employees__missing", "industry=Software"
  std::string column;         ///< source column
  FeatureKind kind = FeatureKind::numeric;
  Transform transform = Transform::none;
  double center = 0.0;        ///< numeric: subtracted after the transform
  double scale = 1.0;         ///< numeric: divides after centring (never 0)
  double impute = 0.0;        ///< numeric: transformed value used for a missing cell
  double weight = 1.0;        ///< multiplies the scaled value / indicator
  double offset = 0.0;        ///< column mean of the weighted value, subtracted last (centring)
  std::vector<std::string> levels;  ///< onehot: source levels mapped to this column
};

struct NormalizeOptions {
  std::vector<NumericFeature> numeric;
  std::vector<CategoricalFeature> categorical;
  MissingOptions missing;
};

struct Normalizer {
  std::vector<FeatureSpec> features;
  std::size_t dims() const noexcept { return features.size(); }
  std::vector<std::string> names() const;
};

/// Learns the mapping from `table` (statistics over all rows; medians and quartiles exact).
/// Throws icp::Error when a feature column is absent or has the wrong type, or when a numeric
/// feature column has no value at all.
Normalizer fit_normalizer(const Table& table, const NormalizeOptions& options,
                          Reducer& reducer = local_reducer());

/// fit_normalizer over a table read in blocks, with the bits fit_normalizer gives on all of its
/// rows at once: float64 sums folded in the same kReduceChunkRows chunks, and the exact medians
/// and quartiles by a radix selection that looks at the values again on each pass instead of
/// holding them. Holds the categorical levels, a few sums per feature and the selection's count
/// tables (512 KiB per wanted bucket: at most 8 per numeric feature), never a column. Scans the
/// table 2 + (1 to 3) times; `passes` (optional) receives the count. Throws as fit_normalizer
/// does, naming the block's source.
Normalizer fit_normalizer_streamed(const TableScan& scan, const NormalizeOptions& options,
                                   int* passes = nullptr);

/// Applies the mapping, in parallel over rows. Categorical levels unseen at fit time count as
/// "other" when the feature has it, else as all-zero.
Matrix apply_normalizer(const Normalizer& normalizer, const Table& table);

/// sign(x) * log(1 + |x|): defined for every real, monotone, identity-like near 0.
double signed_log1p(double x) noexcept;

}  // namespace icp
