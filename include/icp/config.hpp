// The job file (TOML) as a plain struct, every field with its default.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "icp/csv.hpp"
#include "icp/kmeans.hpp"
#include "icp/lookalike.hpp"

namespace icp {

enum class Transform { none, log1p };
enum class Scaling { zscore, robust, minmax, none };
enum class NumericImpute { median, mean, zero };
enum class CategoricalImpute { mode, level };

struct NumericFeature {
  std::string column;
  Transform transform = Transform::none;  ///< log1p is sign(x)*log(1+|x|)
  Scaling scaling = Scaling::zscore;
  double weight = 1.0;  ///< multiplies the scaled value
};

struct CategoricalFeature {
  std::string column;
  int max_levels = 10;  ///< most frequent levels kept; the rest pooled into "other"
  double weight = 1.0;  ///< distance between two different levels equals `weight`
};

struct MissingOptions {
  NumericImpute numeric = NumericImpute::median;
  CategoricalImpute categorical = CategoricalImpute::mode;
  bool flag = true;          ///< add a 0/1 `<column>__missing` feature per column with gaps
  double flag_weight = 0.5;  ///< weight of those flags
};

struct SeedOptions {
  std::string rule;           ///< e.g. "is_customer == 1 and churned == 0 and acv >= 20000"
  std::string ids_file;       ///< alternatively, a file with one seed id per line
  std::string negative_rule;  ///< optional negative seeds (e.g. "churned == 1")
  std::int64_t min_count = 10;
};

struct LookalikeOptionsConfig {
  int neighbors = 10;                 ///< nearest seeds averaged by the knn method
  std::int64_t knn_max_seeds = 512;   ///< knn reference seeds at most (seeded sample); 0 = all
  LookalikeMethod method = LookalikeMethod::ensemble;  ///< knn | segment | model | ensemble
  double prior_strength = 20.0;  ///< pseudo-counts smoothing a segment's seed rate to the base
  double l2 = 1.0;               ///< L2 penalty of the positive-unlabeled logistic model
  int bags = 1;                  ///< model bagging over unlabeled half-samples (1 = none)
  std::vector<double> tiers = {0.01, 0.05, 0.10, 0.25};  ///< A/B/C/D cut-offs (top fractions)
  double holdout = 0.2;       ///< share of seeds held out by the backtest
  std::int64_t backtest_max_rows = 1000000;  ///< backtest scores a seeded sample above it; 0 = all
  std::int64_t top_n = 1000;  ///< rows of the top-N CSV
};

struct OutputOptions {
  std::string path = "results.h5";
  std::string top_csv;  ///< optional top-N CSV for CRM import
  std::string report;   ///< optional self-contained HTML report (icp/report.hpp)
};

struct JobConfig {
  std::string config_path;  ///< the job file itself (relative paths resolve from its folder)
  std::string config_text;  ///< resolved job, as TOML, stored in the output
  // [input]
  std::string input_path;
  std::string id_column;
  /// [input] format: "csv" | "hdf5"; "" = from the extension of the path read (.h5/.hdf5 is
  /// HDF5), so `icp run --input other.h5` needs no job edit.
  std::string input_format;
  /// [input] group: the HDF5 group holding one 1-D dataset per column (h5py/pandas layout).
  std::string input_group = "/accounts";
  CsvOptions csv;  ///< delimiter, missing tokens, error policy, quarantine path
  // [features]
  std::vector<NumericFeature> numeric;
  std::vector<CategoricalFeature> categorical;
  MissingOptions missing;
  SeedOptions seeds;
  std::string value_column;  ///< [summary] value_column, e.g. "acv"
  KMeansOptions kmeans;
  /// [kmeans] k = "auto": run_job sweeps k = k_min..k_max and keeps the k that icp::choose_k
  /// picks (highest sampled silhouette, smallest k within one standard error; README).
  bool k_auto = false;
  int k_min = 2;   ///< [kmeans] k_min (>= 2: a silhouette needs two clusters)
  int k_max = 20;  ///< [kmeans] k_max
  /// [kmeans] init_file (init = "file"): HDF5 file holding k x d float32 starting centres in
  /// this job's normalized feature space (e.g. the results file of an earlier run).
  std::string kmeans_init_file;
  std::string kmeans_init_dataset = "/segments/centroids";  ///< [kmeans] init_dataset
  /// [kmeans] weight_column: numeric column of per-account weights (>= 0) for the segmentation
  /// (KMeansOptions::sample_weight); "" = every account weighs 1.
  std::string kmeans_weight_column;
  LookalikeOptionsConfig lookalike;
  OutputOptions output;
  int threads = 0;  ///< 0 = all hardware threads
  std::uint64_t seed = 42;
};

/// Parses a job file. Unknown keys, wrong types and invalid values throw ConfigError naming the
/// file, the key (and line where known). Relative paths are resolved against the file's folder.
JobConfig load_config(const std::string& path);

/// Same from text; `origin` names the source in messages and anchors relative paths.
JobConfig parse_config(const std::string& text, const std::string& origin);

/// "csv" or "hdf5": `format` when set, else from the extension of `path` (.h5/.hdf5/.he5).
std::string resolve_input_format(const std::string& format, const std::string& path);

/// The resolved job (every default filled in, paths resolved) as a TOML document.
std::string to_toml(const JobConfig& config);

}  // namespace icp
