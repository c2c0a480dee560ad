// Steps of a job that the in-memory run (pipeline.cpp) and the streamed run
// (pipeline_stream.cpp) share. Not installed.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "icp/config.hpp"
#include "icp/matrix.hpp"
#include "icp/normalize.hpp"
#include "icp/pipeline.hpp"
#include "icp/rule.hpp"
#include "icp/summary.hpp"
#include "icp/table.hpp"

namespace icp {

/// The seed and negative rules of the job, parsed before any data is read (a typo costs nothing).
struct SeedRules {
  std::optional<RowRule> seed;
  std::optional<RowRule> negative;
};
SeedRules parse_seed_rules(const JobConfig& config);

/// ConfigError unless k <= n accepted rows (kmeans.k = "auto" is checked by its sweep).
void check_k_fits(const JobConfig& config, std::size_t n);

/// ConfigError when fewer than seeds.min_count of the n accounts are seeds.
void check_seed_count(const JobConfig& config, bool by_rule, std::int64_t seeds, std::size_t n);

/// The k-means weights of `table`'s rows appended to `out`: InputError naming the source line of
/// a missing or negative weight.
void append_weights(const JobConfig& config, const Table& table, std::vector<float>& out);

/// The ids listed in config.seeds.ids_file (one per line; blank lines and trailing spaces and
/// CRs dropped). ConfigError when it cannot be opened.
std::vector<std::string> read_seed_ids(const JobConfig& config);

/// Seed flags of the rows whose id is listed in config.seeds.ids_file; `unmatched` counts the
/// listed ids that are not among `ids`.
std::vector<std::uint8_t> seeds_from_ids(const JobConfig& config,
                                         const std::vector<std::string>& ids,
                                         std::int64_t& unmatched);

/// kmeans.init_file's k x d centres (ConfigError naming the file when the shape differs).
Matrix read_initial_centroids(const JobConfig& config, std::size_t k, std::size_t d);

/// Records a finished stage in r.stages and reports it through progress.on_stage.
void record_stage(RunResult& r, const RunProgress& progress, const char* name, std::int64_t rows,
                  double seconds);

/// Throws Interrupted when control asks to stop (between stages), naming the stage just done.
void stop_if_asked(const RunControl& control, const char* name);

NormalizeOptions normalize_options(const JobConfig& config);
SummaryOptions summary_options(const JobConfig& config);

}  // namespace icp
