// Account tables stored in HDF5 as one 1-D dataset per column under a group: the layout h5py and
// pandas users write (numeric columns as float64/float32/integer datasets, text and categorical
// columns as string datasets). `icp convert` writes it once so repeated runs skip CSV parsing.
#pragma once

#include <string>

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

/// Writes `table` under `group`: numeric -> float64 (NaN = missing), categorical -> strings (the
/// level, "" = missing), text -> strings, plus kSourceLineDataset (int64). Reading it back with
/// the same requests and missing tokens that include "" gives the same table bit for bit.
/// The group gets attributes "source" (table.source) and "rows".
void write_table_h5(h5::Writer& writer, const std::string& group, const Table& table);

}  // namespace icp
