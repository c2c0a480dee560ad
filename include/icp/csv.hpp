// CSV ingest: RFC 4180 text -> typed columns, with every rejected row explained.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "icp/table.hpp"
#include "icp/text.hpp"

namespace icp {

enum class ErrorPolicy {
  fail,        ///< stop at the first bad row with file, line, column, header name and text
  quarantine,  ///< write every rejected row verbatim (with line number and reason) and go on
};

/// Which column to read, and as what. Columns of the file not requested are skipped without
/// being materialized.
struct ColumnRequest {
  std::string name;
  ColumnType type = ColumnType::numeric;
};

struct CsvOptions {
  /// Field delimiter: ',' ';' '\t' or '|'.
  char delimiter = ',';
  /// Cells equal to one of these (after trimming spaces outside quotes) are missing.
  std::vector<std::string> missing_tokens = {"", "NA", "N/A", "null", "NULL", "#N/A", "#NAME?"};
  /// The columns to read; each must be in the header (else InputError naming the header line).
  std::vector<ColumnRequest> columns;
  ErrorPolicy on_error = ErrorPolicy::fail;
  /// How text cells (ids, categories) are read: UTF-8 checked (an invalid cell is a bad cell,
  /// named with its line, column and escaped bytes) or Latin-1 converted to UTF-8.
  TextEncoding encoding = TextEncoding::utf8;
  /// With ErrorPolicy::quarantine: CSV file receiving `line,reason,raw_record` for each rejected
  /// row ("" = count them only). Written to a temporary name and renamed when reading succeeds.
  /// It starts with the header row `line,reason,record`; rows are in file order; reason reads
  /// "column '<name>' (<n>): <reason>: '<value>'" or, for a wrong field count, just the reason.
  std::string quarantine_path;
  /// Column whose values must be unique (usually the id column); "" = no check. A repeat is a bad
  /// row (the first occurrence is kept). Missing cells are not compared.
  std::string unique_column;
  /// Threads for parsing (0 = icp::threads()). The result is identical for every value.
  int threads = 0;
  /// Bytes per parse chunk (0 = kCsvChunkBytes). A tuning and test hook only: chunks are cut on
  /// record boundaries and merged in file order, so the result is identical for every value.
  std::size_t chunk_bytes = 0;
  /// Stop after this many records (0 = the whole file). For sampling (`icp schema`): the sample
  /// is read on one thread, since a prefix of the file cannot be cut into chunks up front.
  std::int64_t max_rows = 0;
};

/// Default parse chunk: 1 MiB holds thousands of account rows, so per-chunk costs (boundary
/// search, local dictionaries, merge) are noise, while a 100 MB file still gives ~100 chunks to
/// balance across threads and a chunk's columns stay cache-resident while it is parsed.
inline constexpr std::size_t kCsvChunkBytes = std::size_t{1} << 20;

/// Reads `path`. Throws InputError (file, line, column, value, reason) for a missing file, an
/// unterminated quote, or with ErrorPolicy::fail the first bad row: wrong field count, numeric
/// cell that does not parse, +-Inf/NaN, magnitude beyond float32, duplicate unique value.
/// Line endings LF, CRLF and lone CR are all accepted, as is a UTF-8 BOM.
Table read_csv(const std::string& path, const CsvOptions& options, IngestStats* stats = nullptr);

/// Parses one present numeric cell exactly as read_csv does (fast_float, a leading '+',
/// true/false as 1/0). Returns nullptr and sets `out`, or the reason read_csv reports:
/// "not a number", "NaN value", "infinite value", "value out of float32 range".
const char* parse_numeric_cell(std::string_view cell, double& out) noexcept;

/// The reason for a finite-or-not float64 that did not come from text (HDF5 input), matching
/// parse_numeric_cell: nullptr when `x` is finite and within float32 range (NaN = missing is the
/// caller's business).
const char* check_numeric_value(double x) noexcept;

/// Whether `cell` equals one of `tokens`.
bool is_missing_token(std::string_view cell, const std::vector<std::string>& tokens) noexcept;

/// `s` as one CSV field (RFC 4180): quoted, with inner quotes doubled, when it holds a comma, a
/// quote or a line break; as is otherwise. For every CSV the engine writes.
std::string csv_field(std::string_view s);

/// The header (column names) of a CSV file, for schema inference and error messages.
std::vector<std::string> read_csv_header(const std::string& path, char delimiter = ',');

}  // namespace icp
