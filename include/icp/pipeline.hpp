// The whole ICP job: ingest -> normalize -> segment -> seeds -> lookalike -> summary.
// The library never prints: stage progress goes through RunProgress callbacks.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "icp/checkpoint.hpp"
#include "icp/config.hpp"
#include "icp/kmeans.hpp"
#include "icp/lookalike.hpp"
#include "icp/normalize.hpp"
#include "icp/reduce.hpp"
#include "icp/scratch.hpp"
#include "icp/summary.hpp"
#include "icp/sweep.hpp"
#include "icp/table.hpp"

namespace icp {

/// One finished stage, for progress lines and for `/run` in the output.
struct StageTiming {
  std::string name;
  std::int64_t rows = 0;
  double seconds = 0.0;
};

struct RunProgress {
  std::function<void(const StageTiming&)> on_stage;          ///< after each stage
  std::function<void(const KMeansIteration&)> on_iteration;  ///< each k-means iteration
};

struct RunResult {
  JobConfig config;
  IngestStats ingest;
  std::vector<std::string> ids;  ///< account id per accepted row (line number if no id column)
  /// A streamed run holds neither ids nor source lines (the ids were a third of its memory):
  /// this visits them in row order, a block at a time, reading them back from its scratch file of
  /// table blocks. Empty when `ids`
  /// and `source_line` hold them.
  using AccountVisit = std::function<void(std::size_t first, const std::vector<std::string>& ids,
                                          std::span<const std::int64_t> source_lines)>;
  std::function<void(const AccountVisit&)> id_blocks;
  std::size_t longest_id =
      0;  ///< with id_blocks: bytes of the longest id (the writer's string size)
  std::vector<std::int64_t> source_line;
  /// A streamed run does not hold its per-row results either, beyond the labels and flags:
  /// `kmeans.distance` and every per-row vector of `lookalike` are empty and their values are
  /// here instead, one column per dataset of the results file ("/segments/distance" and
  /// lookalike_columns), for the writer to copy a block at a time. Null in memory.
  std::shared_ptr<const ScratchColumns> spilled;
  Normalizer normalizer;
  KMeansResult kmeans;
  std::vector<std::uint8_t> is_seed;
  std::vector<std::uint8_t> is_negative;  ///< empty when no negative rule
  std::int64_t seed_ids_unmatched = 0;    ///< ids in seeds.ids_file not found in the input
  LookalikeResult lookalike;
  /// With kmeans.k = "auto": every run of the sweep the rule chose from, and its settings
  /// (written to /sweep in the results file); empty otherwise.
  std::vector<SweepRow> k_auto;
  SweepOptions k_auto_options;
  IcpSummary summary;
  std::vector<StageTiming> stages;
  int threads = 1;    ///< per process
  int processes = 1;  ///< MPI processes that ran the job (1 without mpirun)
};

/// The CSV columns a job needs and the type each is read as. Throws ConfigError when one
/// column is needed as two types (e.g. a categorical feature compared with < in a rule).
std::vector<ColumnRequest> required_columns(const JobConfig& config);

/// The lookalike options a job implies (run_job and `icp score` use exactly these).
LookalikeOptions lookalike_options(const JobConfig& config);

/// Checkpointing of one run (`icp run --checkpoint`, `--resume`); everything optional. The CLI
/// owns the files and signals; the job only says when there is something to save.
struct RunControl {
  const JobCheckpoint* resume = nullptr;  ///< continue from this state (same job, same input)
  int checkpoint_every = 0;               ///< k-means iterations between saves (0 = none)
  /// Called with the state every checkpoint_every iterations, once k-means is done, and when a
  /// stop is requested; null = no checkpoints.
  std::function<void(const JobCheckpoint&)> save;
  /// Polled after every k-means iteration and every stage: true saves (if `save`) and throws
  /// icp::Interrupted.
  std::function<bool()> stop_requested;
};

/// Runs the job in memory. Throws icp::Error (or a subclass) for anything the user can fix.
/// With several processes (`reducer.size() > 1`, e.g. under mpirun) every process calls it with
/// the same job: rank 0 reads, normalizes, scores and returns the full result; the k-means
/// iterations and the lookalike nearest-seed search are split between all processes
/// (docs/scaling.md), with the bits of a one-process run. Other ranks return a result holding
/// only `kmeans`.
RunResult run_job(const JobConfig& config, const RunProgress& progress = {},
                  Reducer& reducer = local_reducer(), const RunControl& control = {});

/// How a streamed run (`icp run --memory-limit` or `--block-rows`) reads its input.
struct StreamOptions {
  /// Rows read, normalized and scanned at a time; a positive multiple of kReduceChunkRows.
  std::size_t block_rows = 16 * 4096;
  /// Folder of the scratch file holding the normalized rows (n x d float32, removed at the
  /// end); empty = the system's temporary folder (TMPDIR).
  std::string scratch_dir;
};

/// run_job for an HDF5 input too large to hold: the table is read twice, a block at a time (once
/// for repeated ids, once for the checks, seeds and weights); its accepted blocks go to a scratch
/// file that the later passes (normalizer statistics, the normalized rows, the summary) and the
/// writer's ids (RunResult::id_blocks) read back, and the normalized rows to another that k-means
/// (one scan per iteration), the lookalike stage and the row fetches of seeding read back. Gives
/// run_job's result bit for bit, with the per-row results beyond labels and flags in a third
/// scratch file (RunResult::spilled). Holds 6 bytes a row (labels, seed and
/// negative flags) and at most 8 more in a stage (k-means' distances, the lookalike stage's
/// ranks), the backtest's sample and one block; never the table, the matrix or the scores. Throws
/// ConfigError for a CSV input (convert it once with `icp convert`), kmeans.k = "auto", checkpoints
/// and kmeans init or algorithms that do not stream (kmeans||, minibatch).
RunResult run_job_streamed(const JobConfig& config, const RunProgress& progress,
                           const StreamOptions& options, const RunControl& control = {});

/// Reads the input table exactly as run_job does (used by `icp score` on new accounts).
Table read_accounts(const JobConfig& config, const std::string& path, IngestStats* stats);

}  // namespace icp
