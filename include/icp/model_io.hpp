// Re-scoring new accounts with a finished run: everything `icp score` needs is loaded back from
// the run's results file (the ICP as a living document), applied to a new CSV with the same
// columns, and written to a scores file (layout in docs/hdf5-schema.md, "Scores file").
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "icp/config.hpp"
#include "icp/hdf5.hpp"
#include "icp/lookalike.hpp"
#include "icp/matrix.hpp"
#include "icp/normalize.hpp"
#include "icp/pipeline.hpp"
#include "icp/table.hpp"

namespace icp {

/// A fitted job, as stored in a results file.
struct ScoringModel {
  std::string path;          ///< the results file it came from
  JobConfig config;          ///< root attribute `config`, parsed
  Normalizer normalizer;     ///< /features/normalizer, /features/levels
  Matrix centroids;          ///< /segments/centroids (k x d)
  LookalikeOptions options;  ///< the fitting options (lookalike_options(config))
  /// The parts of the fit that scoring reads: seed_rows, seeds, model_coef, model_intercept,
  /// segment_rate, method_weight, and the fitted population's combined, knn_similarity,
  /// segment_score and model_score. The per-account outputs (rank, tier, ...) stay empty.
  LookalikeResult fitted;
  std::vector<std::string> seed_ids;  ///< id of each seed, in the order of fitted.seed_rows
  std::vector<std::string> feature_names;
};

/// Loads a results file written by `icp run`. Throws icp::Error naming the file when it is not
/// a results file, is of another format version, or lacks the model datasets.
ScoringModel load_scoring_model(const std::string& results_path);

/// Scores of a table of accounts against a model.
struct ScoredAccounts {
  std::vector<std::string> ids;  ///< id column, or "line N" without one
  std::vector<std::int64_t> source_line;
  IngestStats ingest;
  std::vector<std::int32_t> assignment;  ///< kmeans_predict against the stored centroids
  std::vector<float> distance;           ///< exact squared distance to that centroid
  LookalikeNewScores scores;
  std::vector<std::int64_t> rank;  ///< within these accounts, 1 = best (ties to the lower row)
  /// Rows whose id is a seed of the model (ids compared only when the job has an id column):
  /// such a row is that seed, so it is not its own neighbour, as in the fit.
  std::int64_t known_seeds = 0;
};

/// Reads `csv_path` as the job read its input (same CSV options and feature columns; the seed
/// rule and value columns are not needed; rejected rows are counted, never written to the job's
/// quarantine file), then scores it with score_table.
ScoredAccounts score_csv(const ScoringModel& model, const std::string& csv_path);

/// Applies the stored normalizer, assigns segments with the stored centroids and scores with
/// score_new_accounts. `table` must hold the model's feature columns (and its id column).
ScoredAccounts score_table(const ScoringModel& model, const Table& table);

/// Writes the scores file layout into `out` (the caller commits).
void write_scores(const ScoringModel& model, const ScoredAccounts& scored, h5::Writer& out);

// ---- Streamed scoring: inputs larger than memory (`icp score --memory-limit`) ----
//
// Memory of a streamed run: what is resident once the model is loaded, kStreamBytesPerRow per
// input row (combined scores kept for the ranks, then a sorted copy and a counter; the duplicate
// scan's hashes before them), and one block of rows in flight at kStreamBytesPerBlockRow.

/// Bytes per input row held for the whole run (see above).
inline constexpr std::uint64_t kStreamBytesPerRow = 12;
/// Bytes per row of the block in flight: its input columns as read and as a table, the
/// normalized features, nearest-seed lists, scores and output strings. Measured on the generated
/// 14-column table (d = 31) at about 1.1 KB and rounded up.
inline constexpr std::uint64_t kStreamBytesPerBlockRow = 2048;
/// Headroom for HDF5's chunk caches and the allocator.
inline constexpr std::uint64_t kStreamReserveBytes = std::uint64_t{64} << 20;
/// Blocks are multiples of this (and at least this): smaller blocks would spend more time opening
/// datasets than scoring.
inline constexpr std::uint64_t kStreamMinBlockRows = 4096;
/// Larger blocks gain nothing (every row is scored on its own) and delay the first output.
inline constexpr std::uint64_t kStreamMaxBlockRows = std::uint64_t{1} << 20;

/// Rows per block so that a streamed run of `rows` input rows stays under `memory_limit` bytes
/// with `resident` bytes already in use (the loaded model). Throws icp::Error saying how much is
/// needed when even kStreamMinBlockRows rows do not fit.
std::size_t streamed_block_rows(std::uint64_t memory_limit, std::uint64_t resident,
                                std::uint64_t rows);

struct StreamedScores {
  IngestStats ingest;  ///< rows read = accepted + quarantined, summed over the blocks
  std::int64_t known_seeds = 0;
  std::array<std::int64_t, 5> tiers{};  ///< accounts in tiers A..E
  std::size_t block_rows = 0;
  std::size_t blocks = 0;
};

/// Scores an HDF5 account table (the job's input_group layout, as `icp convert` writes it) block
/// by block into `out`, never holding more than one block of rows: the same datasets and values
/// as score_csv + write_scores on the whole table, whatever the block size. Repeated ids are
/// found by a scan first (H5TableBlocks::repeated_rows); under the fail policy a bad row fails
/// the run before anything is scored. `block_rows_for(rows)` gives the rows per block once the
/// table's row count is known (e.g. streamed_block_rows for a memory limit). The caller commits
/// `out`.
StreamedScores score_h5_streamed(const ScoringModel& model, const std::string& h5_path,
                                 const std::function<std::size_t(std::size_t)>& block_rows_for,
                                 h5::Writer& out);

}  // namespace icp
