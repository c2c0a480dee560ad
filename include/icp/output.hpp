// The run's results on disk: the HDF5 layout (docs/hdf5-schema.md), the top-N CSV for CRM
// import, and the readable summary `icp inspect` prints from the file alone.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "icp/hdf5.hpp"
#include "icp/pipeline.hpp"

namespace icp {

/// Version of the HDF5 layout; bumped on any incompatible change.
inline constexpr std::int64_t kFormatVersion = 1;

/// Writes every dataset of the layout into `out` (the caller commits, so that a failure
/// anywhere leaves no file at the output path).
void write_results(const RunResult& run, h5::Writer& out);

/// Rows of the `top` best-ranked accounts that are not seeds, best first. `rank` is a run's
/// /lookalike/rank (1..n, each once) and `is_seed` its seed flags, of the same length.
std::vector<std::size_t> top_prospects(std::span<const std::int64_t> rank,
                                       std::span<const std::uint8_t> is_seed, std::size_t top);

/// top_prospects of a results file's /lookalike/rank, read a block of rows at a time (`is_seed`
/// is its /lookalike/is_seed): the ranks are never held whole (8 bytes a row).
std::vector<std::size_t> top_prospects(const h5::Reader& results,
                                       std::span<const std::uint8_t> is_seed, std::size_t top);

/// Top `top_n` accounts by rank: id, score, tier, rank, segment, reasons. Written atomically.
void write_top_csv(const RunResult& run, const std::string& path, std::int64_t top_n);

/// The ICP table, top lookalikes and counts of a results file, as text for people.
std::string inspect_text(const std::string& results_path, int top = 10);
/// The same as JSON (summary, backtest, counts, top lookalikes).
std::string inspect_json(const std::string& results_path, int top = 10);

}  // namespace icp
