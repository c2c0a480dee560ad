// The columnar account table that ingest produces and every later stage reads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "icp/allocator.hpp"

namespace icp {

enum class ColumnType {
  numeric,      ///< float64 values; NaN marks a missing cell
  categorical,  ///< int32 codes into `levels`; -1 marks a missing cell
  text,         ///< raw strings (ids, names); "" for an empty cell
};

/// Per-row arrays of the table. Sizing one leaves its pages untouched (DefaultInitAllocator), so
/// the CSV reader's chunks fault in and fill their own rows in parallel, straight into the table.
/// So resize(n) does not zero-fill: write every new element before reading it.
using NumericValues = std::vector<double, DefaultInitAllocator<double>>;
using CodeValues = std::vector<std::int32_t, DefaultInitAllocator<std::int32_t>>;
using LineNumbers = std::vector<std::int64_t, DefaultInitAllocator<std::int64_t>>;

/// One typed column. Only the vector matching `type` is filled.
struct Column {
  std::string name;
  ColumnType type = ColumnType::numeric;
  NumericValues numeric;
  CodeValues codes;
  std::vector<std::string> levels;  ///< dictionary, in order of first appearance
  std::vector<std::string> text;

  std::size_t size() const noexcept;
  /// Missing cells: NaN (numeric), code -1 (categorical), empty string (text).
  bool is_missing(std::size_t row) const noexcept;
};

/// Rows that passed ingest, column by column.
struct Table {
  std::size_t rows = 0;
  std::vector<Column> columns;
  /// 1-based physical line number in the source file of each accepted row (for messages).
  LineNumbers source_line;
  /// Source file path (for messages).
  std::string source;

  /// nullptr when absent.
  const Column* find(std::string_view name) const noexcept;
  /// Throws icp::Error naming the source and the column when absent.
  const Column& at(std::string_view name) const;
};

/// A table too large to hold, read one block of rows at a time: a scan calls `visit` on every
/// block, in row order, and may be called again for another pass (each pass must see the same
/// rows in the same order; the block boundaries may differ).
using TableVisitor = std::function<void(const Table& block)>;
using TableScan = std::function<void(const TableVisitor& visit)>;

/// What ingest saw: rows_read == rows_accepted + rows_quarantined, always.
struct IngestStats {
  std::int64_t rows_read = 0;
  std::int64_t rows_accepted = 0;
  std::int64_t rows_quarantined = 0;
  std::int64_t bytes = 0;
  double seconds = 0.0;
};

}  // namespace icp
