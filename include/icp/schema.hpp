// Schema inference: reads a sample of a CSV file and proposes column types and a starting job
// file (`icp schema`), or the column requests `icp convert` uses without a job file.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "icp/csv.hpp"
#include "icp/table.hpp"

namespace icp {

struct SchemaOptions {
  char delimiter = ',';
  /// Records read from the top of the file (0 = all).
  std::int64_t sample_rows = 100000;
  std::vector<std::string> missing_tokens = CsvOptions{}.missing_tokens;
  /// How text cells are read first (CsvOptions::encoding); see infer_schema.
  TextEncoding encoding = TextEncoding::utf8;
  /// One-hot cap suggested for categorical features (most frequent levels kept).
  int max_levels = 12;
};

/// What the sample says about one column.
struct ColumnProfile {
  std::string name;
  ColumnType type = ColumnType::text;  ///< numeric when >= 99% of present cells parse as numbers
  std::int64_t present = 0;
  std::int64_t missing = 0;
  std::int64_t distinct = 0;  ///< distinct present values in the sample
  bool id_candidate = false;  ///< no gaps, every value distinct, not fractional
  bool log1p = false;         ///< numeric, non-negative and right-skewed (skewness > 1)
  // Numeric columns only (over present cells):
  double min = 0.0;
  double max = 0.0;
  double median = 0.0;
  double skewness = 0.0;
  std::int64_t not_numbers = 0;  ///< present cells of a numeric column that do not parse
  std::string first_bad;         ///< the first of them (or of any column's unparsed cells)
};

struct Schema {
  std::string path;
  char delimiter = ',';
  std::int64_t rows_sampled = 0;  ///< records in the sample (including rejected ones)
  /// The encoding the sample was read with: options.encoding, or Latin-1 when the sample read as
  /// UTF-8 rejected rows that Latin-1 keeps (bytes that are not UTF-8).
  TextEncoding encoding = TextEncoding::utf8;
  std::vector<ColumnProfile> columns;
  /// The id candidate chosen for input.id_column ("" when none): the first candidate whose name
  /// ends in "id" or "permalink", else the first candidate.
  std::string id_column;
};

/// Profiles every column of the first options.sample_rows records. Records with a wrong field
/// count are skipped; a UTF-8 sample that loses rows to invalid bytes is read again as Latin-1
/// (Schema::encoding says which). Throws InputError for a missing or empty file.
Schema infer_schema(const std::string& path, const SchemaOptions& options = {});

/// One request per column: numeric columns as numeric, the id column and other columns whose
/// values are mostly distinct as text, the rest categorical.
std::vector<ColumnRequest> schema_requests(const Schema& schema);

/// A starting job file (TOML that load_config accepts once the commented seed rule is set):
/// types, cardinalities and missing rates as comments, log1p for skewed positive columns,
/// categorical features capped at options.max_levels, the id candidate as input.id_column.
std::string schema_job_toml(const Schema& schema, const SchemaOptions& options = {});

}  // namespace icp
