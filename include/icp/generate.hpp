// Synthetic B2B account database with planted segments and a planted ICP, for demos, tests and
// benchmarks. One row per company; a truth file records the planted segment of every row.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace icp {

struct GenerateOptions {
  std::int64_t rows = 50000;  ///< 0 writes the header only; negative throws icp::Error
  std::uint64_t seed = 7;     ///< all randomness derives from this
};

struct GenerateStats {
  std::int64_t rows = 0;
  std::int64_t icp_rows = 0;               ///< rows from the planted ICP segments
  std::int64_t customers = 0;              ///< is_customer == 1
  std::int64_t icp_customers = 0;          ///< customers from the planted ICP segments
  std::int64_t churned = 0;                ///< churned == 1 (always customers)
  std::int64_t bytes = 0;                  ///< size of the accounts file
  std::vector<std::int64_t> segment_rows;  ///< rows per planted segment (generate_segment_count())
  double seconds = 0.0;
};

/// Number of planted segments.
int generate_segment_count() noexcept;
/// Name of planted segment `segment` (0-based, as in the truth file); throws icp::Error when out
/// of range.
std::string generate_segment_name(int segment);
/// Whether planted segment `segment` belongs to the ICP.
bool generate_segment_is_icp(int segment);

/// Writes `options.rows` accounts to `csv_path` (header first, LF line endings, RFC 4180 quoting)
/// and, unless `truth_path` is empty, the planted truth (account_id,segment,segment_name,is_icp)
/// to `truth_path`. Rows are streamed, so memory does not grow with `rows`. Each row depends only
/// on (seed, row index): the same seed gives byte-identical files whatever the thread count, and
/// the first n rows of a longer file equal an n-row file. Files are written under a temporary
/// name and renamed when complete. Throws icp::Error naming the path on any I/O failure.
GenerateStats generate_accounts(const GenerateOptions& options, const std::string& csv_path,
                                const std::string& truth_path = "");

}  // namespace icp
