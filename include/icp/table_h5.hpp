// Account tables stored in HDF5 as one 1-D dataset per column under a group: the layout h5py and
// pandas users write (numeric columns as float64/float32/integer datasets, text and categorical
// columns as string datasets). `icp convert` writes it once so repeated runs skip CSV parsing.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "icp/csv.hpp"
#include "icp/hdf5.hpp"
#include "icp/table.hpp"

namespace icp {

/// Dataset written by write_table_h5 next to the columns: the physical CSV line of each row, so
/// that a run on a converted file reports (and stores) the same source lines as the CSV run.
/// Tables written by other tools do not have it; their rows are numbered 1..n instead.
inline constexpr const char* kSourceLineDataset = "__source_line__";

/// Reads the requested columns (options.columns) of the table stored under `group`, with the
/// same rules as read_csv: options.missing_tokens mark missing string cells (NaN marks a missing
/// number), +-Inf, values beyond float32 and numbers that do not parse (numeric columns stored as
/// strings) are bad rows, options.unique_column repeats are bad rows (first kept), and
/// options.on_error / quarantine_path decide what a bad row does. Numeric columns accept float
/// and integer datasets (and strings, parsed like CSV cells); categorical and text columns accept
/// string and integer datasets. Errors name "<file>: <group>/<column>: row N" (N from 1) as the
/// place; a missing dataset, a wrong type, a non-1-D dataset or columns of different lengths
/// throw InputError. options.delimiter, threads, chunk_bytes and max_rows are ignored.
/// HDF5 is read on the calling thread (serial HDF5 is not thread-safe).
Table read_table_h5(const std::string& path, const std::string& group, const CsvOptions& options,
                    IngestStats* stats = nullptr);

/// A row rejected under the quarantine policy: what the quarantine file lists for it.
struct RejectedRow {
  std::int64_t line = 0;  ///< the row's source line (kSourceLineDataset, else its number)
  std::uint64_t row = 0;  ///< its place in the stored table, from 0
  std::string reason;
  std::string record;  ///< the row's cells as text
};

/// Writes the quarantine file read_table_h5 writes (line,reason,record; rows in the given order)
/// under a temporary name renamed into place.
void write_quarantine(const std::string& path, const std::vector<RejectedRow>& rows);

/// The same table read one block of rows at a time, for inputs larger than memory (`icp score
/// --memory-limit`). Blocks get read_table_h5's checks and messages (rows numbered in the whole
/// table); a bad row throws under the fail policy and is counted (and handed back when asked) under
/// the quarantine policy. Repeats of options.unique_column span blocks, so they come
/// from repeated_rows() (a scan of the whole table) and are handed to each read().
class H5TableBlocks {
 public:
  /// Opens the table and checks that every column exists, is 1-D and has the same length.
  H5TableBlocks(const std::string& path, const std::string& group, const CsvOptions& options);
  ~H5TableBlocks();
  H5TableBlocks(const H5TableBlocks&) = delete;
  H5TableBlocks& operator=(const H5TableBlocks&) = delete;

  /// Rows stored (read, before any is rejected).
  std::size_t rows() const noexcept;

  /// Rows (from 0, sorted) whose unique-column value repeats that of an earlier accepted row:
  /// exactly the rows read_table_h5 rejects as "duplicate value". Reads the table in blocks of
  /// `block_rows`, holding 9 bytes per row plus one block. Empty without a unique column.
  /// `first_rejected` (optional) receives the first row rejected for a bad cell, or rows(): with
  /// the repeats, where the fail policy stops, before any block is processed.
  std::vector<std::uint64_t> repeated_rows(std::size_t block_rows,
                                           std::uint64_t* first_rejected = nullptr) const;

  /// Rows [first, first + count), rejecting those listed in `repeats` as duplicates. Adds the
  /// block's counts (not bytes or seconds) to `stats`, and its rejected rows (quarantine policy)
  /// to `rejected`.
  Table read(std::size_t first, std::size_t count, std::span<const std::uint64_t> repeats,
             IngestStats* stats = nullptr, std::vector<RejectedRow>* rejected = nullptr) const;

 private:
  friend Table read_table_h5(const std::string&, const std::string&, const CsvOptions&,
                             IngestStats*);
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// What a reader of `source` in blocks needs before its first block: the repeats
/// (repeated_rows), and under the fail policy (`fail`) the error of the first bad or repeated row,
/// thrown before anything is processed or written.
std::vector<std::uint64_t> repeats_or_first_error(const H5TableBlocks& source,
                                                  std::size_t block_rows, bool fail);

/// Writes `table` under `group`: numeric -> float64 (NaN = missing), categorical -> strings (the
/// level, "" = missing), text -> strings, plus kSourceLineDataset (int64). Reading it back with
/// the same requests and missing tokens that include "" gives the same table bit for bit.
/// The group gets attributes "source" (table.source) and "rows".
void write_table_h5(h5::Writer& writer, const std::string& group, const Table& table);

}  // namespace icp
