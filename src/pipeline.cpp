#include "icp/pipeline.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <optional>
#include <set>
#include <unordered_map>

#include "icp/csv.hpp"
#include "icp/error.hpp"
#include "icp/hdf5.hpp"
#include "icp/parallel.hpp"
#include "icp/rule.hpp"
#include "icp/sweep.hpp"
#include "icp/table_h5.hpp"
#include "pipeline_internal.hpp"

namespace icp {

namespace {

using Clock = std::chrono::steady_clock;

double since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

void add_request(std::vector<ColumnRequest>& out, const std::string& name, ColumnType type,
                 const std::string& why) {
  for (auto& r : out) {
    if (r.name != name) continue;
    if (r.type != type)
      throw ConfigError("column '" + name + "' is used as two types (" + why + ")");
    return;
  }
  ColumnRequest r;
  r.name = name;
  r.type = type;
  out.push_back(r);
}

void add_rule_columns(std::vector<ColumnRequest>& out, const std::string& text,
                      const std::string& origin) {
  if (text.empty()) return;
  const RowRule rule = RowRule::parse(text, origin);
  for (const auto& col : rule.columns()) {
    // A column already requested (e.g. a categorical feature) keeps its type; the rule adapts.
    const bool known =
        std::any_of(out.begin(), out.end(), [&](const ColumnRequest& r) { return r.name == col; });
    if (!known) add_request(out, col, rule.column_type(col), origin);
  }
}

}  // namespace

SeedRules parse_seed_rules(const JobConfig& config) {
  SeedRules rules;
  if (!config.seeds.rule.empty())
    rules.seed = RowRule::parse(config.seeds.rule, config.config_path + ": seeds.rule");
  if (!config.seeds.negative_rule.empty())
    rules.negative =
        RowRule::parse(config.seeds.negative_rule, config.config_path + ": seeds.negative_rule");
  return rules;
}

void check_k_fits(const JobConfig& config, std::size_t n) {
  if (!config.k_auto && static_cast<std::size_t>(config.kmeans.k) > n)
    throw ConfigError(config.config_path + ": kmeans.k = " + std::to_string(config.kmeans.k) +
                      " is larger than the " + std::to_string(n) + " accepted rows of " +
                      config.input_path);
}

void check_seed_count(const JobConfig& config, bool by_rule, std::int64_t seeds, std::size_t n) {
  if (seeds >= config.seeds.min_count) return;
  const std::string what = by_rule ? "seeds.rule '" + config.seeds.rule + "'"
                                   : "seeds.ids_file " + config.seeds.ids_file;
  throw ConfigError(config.config_path + ": " + what + " matches " + std::to_string(seeds) +
                    " of " + std::to_string(n) + " accounts; seeds.min_count is " +
                    std::to_string(config.seeds.min_count));
}

void append_weights(const JobConfig& config, const Table& table, std::vector<float>& out) {
  // Checked here, where the source line of a bad weight is known.
  const Column& col = table.at(config.kmeans_weight_column);
  out.reserve(out.size() + table.rows);
  for (std::size_t i = 0; i < table.rows; ++i) {
    const double v = col.numeric[i];
    if (std::isnan(v) || v < 0.0) {
      throw InputError(config.input_path, table.source_line[i], config.kmeans_weight_column, 0,
                       std::isnan(v) ? std::string() : fmt::format("{}", v),
                       std::isnan(v) ? "kmeans.weight_column: missing weight"
                                     : "kmeans.weight_column: negative weight");
    }
    out.push_back(static_cast<float>(v));
  }
}

void record_stage(RunResult& r, const RunProgress& progress, const char* name, std::int64_t rows,
                  double seconds) {
  StageTiming s;
  s.name = name;
  s.rows = rows;
  s.seconds = seconds;
  r.stages.push_back(s);
  if (progress.on_stage) progress.on_stage(s);
}

void stop_if_asked(const RunControl& control, const char* name) {
  if (control.stop_requested && control.stop_requested())
    throw Interrupted(std::string("stopped on request after the ") + name + " stage");
}

NormalizeOptions normalize_options(const JobConfig& config) {
  NormalizeOptions nopt;
  nopt.numeric = config.numeric;
  nopt.categorical = config.categorical;
  nopt.missing = config.missing;
  return nopt;
}

std::vector<std::string> read_seed_ids(const JobConfig& c) {
  std::ifstream in(c.seeds.ids_file);
  if (!in) throw ConfigError(c.seeds.ids_file + ": cannot open the seed id file (seeds.ids_file)");
  std::vector<std::string> listed;
  std::string line;
  while (std::getline(in, line)) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (!line.empty()) listed.push_back(line);
  }
  return listed;
}

std::vector<std::uint8_t> seeds_from_ids(const JobConfig& c, const std::vector<std::string>& ids,
                                         std::int64_t& unmatched) {
  const std::vector<std::string> listed = read_seed_ids(c);
  std::unordered_map<std::string, std::size_t> row_of;
  row_of.reserve(ids.size());
  for (std::size_t i = 0; i < ids.size(); ++i) row_of.emplace(ids[i], i);
  std::vector<std::uint8_t> seed(ids.size(), 0);
  unmatched = 0;
  for (const std::string& id : listed) {
    auto it = row_of.find(id);
    if (it == row_of.end())
      ++unmatched;
    else
      seed[it->second] = 1;
  }
  return seed;
}

Matrix read_initial_centroids(const JobConfig& config, std::size_t k, std::size_t d) {
  // Centres of an earlier results file are in that run's normalized space: the job must use
  // the same features, so a shape mismatch is a job error rather than something to adapt.
  const h5::Reader in(config.kmeans_init_file);
  const std::string& ds = config.kmeans_init_dataset;
  if (!in.is_dataset(ds))
    throw ConfigError(config.config_path + ": kmeans.init_file " + config.kmeans_init_file +
                      " has no dataset " + ds);
  const std::vector<std::uint64_t> dims = in.dims(ds);
  if (dims.size() != 2 || dims[0] != k || dims[1] != d)
    throw ConfigError(config.config_path + ": kmeans.init_file " + config.kmeans_init_file + ":" +
                      ds + " must be k x d = " + std::to_string(k) + " x " + std::to_string(d) +
                      " (k of the job, d normalized features)");
  const std::vector<float> c = in.read<float>(ds);
  Matrix out(k, d);
  std::copy(c.begin(), c.end(), out.data());
  return out;
}

SummaryOptions summary_options(const JobConfig& config) {
  SummaryOptions sopt;
  sopt.value_column = config.value_column;
  for (const auto& f : config.numeric) sopt.numeric_columns.push_back(f.column);
  for (const auto& f : config.categorical) sopt.categorical_columns.push_back(f.column);
  return sopt;
}

std::vector<ColumnRequest> required_columns(const JobConfig& c) {
  std::vector<ColumnRequest> out;
  if (!c.id_column.empty()) add_request(out, c.id_column, ColumnType::text, "input.id_column");
  for (const auto& f : c.numeric)
    add_request(out, f.column, ColumnType::numeric, "features.numeric");
  for (const auto& f : c.categorical)
    add_request(out, f.column, ColumnType::categorical, "features.categorical");
  if (!c.value_column.empty())
    add_request(out, c.value_column, ColumnType::numeric, "summary.value_column");
  if (!c.kmeans_weight_column.empty())
    add_request(out, c.kmeans_weight_column, ColumnType::numeric, "kmeans.weight_column");
  add_rule_columns(out, c.seeds.rule, c.config_path + ": seeds.rule");
  add_rule_columns(out, c.seeds.negative_rule, c.config_path + ": seeds.negative_rule");
  return out;
}

Table read_accounts(const JobConfig& config, const std::string& path, IngestStats* stats) {
  CsvOptions csv = config.csv;
  csv.columns = required_columns(config);
  csv.unique_column = config.id_column;
  if (resolve_input_format(config.input_format, path) == "hdf5")
    return read_table_h5(path, config.input_group, csv, stats);
  return read_csv(path, csv, stats);
}

LookalikeOptions lookalike_options(const JobConfig& config) {
  LookalikeOptions o;
  o.neighbors = config.lookalike.neighbors;
  o.knn_max_seeds = config.lookalike.knn_max_seeds;
  o.tiers = config.lookalike.tiers;
  o.holdout = config.lookalike.holdout;
  o.backtest_max_rows = config.lookalike.backtest_max_rows;
  o.seed = config.seed;
  o.method = config.lookalike.method;
  o.prior_strength = config.lookalike.prior_strength;
  o.l2 = config.lookalike.l2;
  o.bags = config.lookalike.bags;
  return o;
}

namespace {

/// The k-means stage on every process. Rank 0 holds the whole normalized matrix; the others
/// learn its shape (and the job's k and any initial centres) from it, each fits its own run of
/// rows, and the labels and distances come back whole to every process.
KMeansResult fit_segments(MatrixView x, KMeansOptions kopt, Reducer& reducer) {
  if (reducer.size() == 1) return kmeans_fit(x, kopt);
  std::int64_t shape[4] = {static_cast<std::int64_t>(x.rows), static_cast<std::int64_t>(x.cols),
                           kopt.k, kopt.sample_weight.empty() ? 0 : 1};
  reducer.broadcast(std::span<std::int64_t>(shape, 4));
  const auto n = static_cast<std::size_t>(shape[0]);
  const auto d = static_cast<std::size_t>(shape[1]);
  kopt.k = static_cast<int>(shape[2]);
  if (kopt.init == KMeansInit::file) {
    if (reducer.rank() != 0) kopt.initial_centroids = Matrix(static_cast<std::size_t>(kopt.k), d);
    reducer.broadcast(std::span<float>(kopt.initial_centroids.storage()));
  }
  const Matrix mine = reducer.scatter_rows(x, n, d);
  if (shape[3] != 0) {
    // Weights travel as a one-column matrix, so they split exactly as the rows do.
    const Matrix w = reducer.scatter_rows(
        MatrixView{kopt.sample_weight.data(), kopt.sample_weight.size(), 1}, n, 1);
    kopt.sample_weight.assign(w.storage().begin(), w.storage().end());
  }
  KMeansResult km = kmeans_fit(mine.view(), kopt, reducer);
  km.assignment = reducer.gather(std::span<const std::int32_t>(km.assignment));
  km.distance = reducer.gather(std::span<const float>(km.distance));
  return km;
}

/// The lookalike stage on several processes: rank 0 runs it and hands each nearest-seed search
/// (the stage's largest part) to all processes, which score their own run of rows. Rows are
/// scored independently in the same 256-row blocks, so the result has one process's bits.
constexpr std::int64_t kLookalikeStop = 0;
constexpr std::int64_t kLookalikeGo = 1;
constexpr std::int64_t kKnnDone = 0;
constexpr std::int64_t kKnnRequest = 1;

/// One nearest-seed search over every process's rows; `request` = {command, seeds, d,
/// neighbours} as rank 0 broadcast it, `seeds` and `self_seed` significant on rank 0 only.
KnnResult knn_request(Reducer& reducer, MatrixView mine, std::size_t total_rows,
                      const std::int64_t* request, const float* seeds_root,
                      std::span<const std::int64_t> self_seed_root) {
  const bool root = reducer.rank() == 0;
  Matrix seeds(static_cast<std::size_t>(request[1]), static_cast<std::size_t>(request[2]));
  if (root) std::copy_n(seeds_root, seeds.storage().size(), seeds.data());
  reducer.broadcast(std::span<float>(seeds.storage()));
  // Which rows are seeds themselves (never their own neighbour), as (row, seed) pairs.
  std::vector<std::int64_t> pairs;
  if (root) {
    for (std::size_t i = 0; i < self_seed_root.size(); ++i) {
      if (self_seed_root[i] < 0) continue;
      pairs.push_back(static_cast<std::int64_t>(i));
      pairs.push_back(self_seed_root[i]);
    }
  }
  std::int64_t count = static_cast<std::int64_t>(pairs.size());
  reducer.broadcast(std::span<std::int64_t>(&count, 1));
  pairs.resize(static_cast<std::size_t>(count));
  reducer.broadcast(std::span<std::int64_t>(pairs));
  const RowRange range = chunk_rows_of(total_rows, reducer.rank(), reducer.size());
  std::vector<std::int64_t> self(range.rows, -1);
  for (std::size_t t = 0; t + 1 < pairs.size(); t += 2) {
    const auto row = static_cast<std::size_t>(pairs[t]);
    if (row >= range.begin && row < range.begin + range.rows)
      self[row - range.begin] = pairs[t + 1];
  }
  // Lookalike scoring reads the nearest seed and the mean only.
  const KnnResult part = knn_to_seeds(mine, seeds.view(), self, static_cast<int>(request[3]), 1);
  // Seed indices fit int32 (a seed matrix of 2^31 rows would not fit in memory anyway).
  const std::vector<std::int32_t> index32(part.index.begin(), part.index.end());
  KnnResult all;
  all.k = part.k;
  const std::vector<std::int32_t> index = reducer.gather(std::span<const std::int32_t>(index32));
  all.index.assign(index.begin(), index.end());
  all.distance = reducer.gather(std::span<const float>(part.distance));
  all.mean = reducer.gather(std::span<const double>(part.mean));
  return all;
}

/// The other processes' side of the lookalike stage: their rows, then each search rank 0 asks
/// for, until it says the stage is over (or that the job stops before it).
void serve_lookalike(Reducer& reducer) {
  std::int64_t head[3] = {0, 0, 0};
  reducer.broadcast(std::span<std::int64_t>(head, 3));
  if (head[0] == kLookalikeStop) throw Interrupted("stopped on request after the kmeans stage");
  const auto n = static_cast<std::size_t>(head[1]);
  const Matrix mine = reducer.scatter_rows(MatrixView{}, n, static_cast<std::size_t>(head[2]));
  for (;;) {
    std::int64_t request[4] = {0, 0, 0, 0};
    reducer.broadcast(std::span<std::int64_t>(request, 4));
    if (request[0] == kKnnDone) return;
    (void)knn_request(reducer, mine.view(), n, request, nullptr, {});
  }
}

}  // namespace

RunResult run_job(const JobConfig& config, const RunProgress& progress, Reducer& reducer,
                  const RunControl& control) {
  if (reducer.rank() != 0) {
    // Other processes take part in the distributed stages only; rank 0 reads, scores and writes
    // (checkpoints too: here the hooks only make this process agree on stops and gathers).
    RunResult r;
    r.config = config;
    r.threads = threads();
    r.processes = reducer.size();
    const JobCheckpoint* resume = control.resume;
    KMeansOptions kopt = config.kmeans;
    kopt.seed = config.seed;
    if (resume != nullptr) kopt.resume = &resume->kmeans;
    if (control.save) {
      kopt.checkpoint_every = control.checkpoint_every;
      kopt.on_checkpoint = [](const KMeansCheckpoint&) {};
    }
    kopt.stop_requested = control.stop_requested;
    if (resume == nullptr || resume->stage != CheckpointStage::segments)
      r.kmeans = fit_segments(MatrixView{}, kopt, reducer);
    serve_lookalike(reducer);
    return r;
  }
  RunResult r;
  r.config = config;
  r.threads = threads();
  r.processes = reducer.size();
  bool others_done = false;  // several processes: they have left run_job
  auto stage = [&](const char* name, std::int64_t rows, Clock::time_point t0,
                   bool may_stop = true) {
    record_stage(r, progress, name, rows, since(t0));
    // Between stages is the other place a stop request is honoured (k-means polls per iteration).
    // With several processes only once the others are done: they would wait for rank 0 forever.
    if (may_stop && (reducer.size() == 1 || others_done)) stop_if_asked(control, name);
  };
  const JobCheckpoint* resume = control.resume;
  const std::string job_print = control.save || resume ? job_fingerprint(config) : std::string();
  if (resume != nullptr && resume->job != job_print)
    throw ConfigError(config.config_path +
                      ": the job differs from the one that wrote the checkpoint (only [output] "
                      "and the thread count may change on resume)");

  const SeedRules rules = parse_seed_rules(config);
  const std::optional<RowRule>& seed_rule = rules.seed;
  const std::optional<RowRule>& neg_rule = rules.negative;

  auto t0 = Clock::now();
  Table table = read_accounts(config, config.input_path, &r.ingest);
  stage("ingest", r.ingest.rows_read, t0);
  const std::size_t n = table.rows;
  if (n == 0) throw Error(config.input_path + ": no accepted rows");
  check_k_fits(config, n);

  r.source_line.assign(table.source_line.begin(), table.source_line.end());

  // Seeds before the heavy stages: a rule that matches nothing fails in seconds, not minutes.
  // The rules run first because they may read the id column, which then moves out of the table
  // (no later stage reads it): copying 10M ids cost 0.3 s and 320 MB of fresh pages.
  t0 = Clock::now();
  if (seed_rule) r.is_seed = seed_rule->evaluate(table);
  if (neg_rule) r.is_negative = neg_rule->evaluate(table);
  if (!config.id_column.empty()) {
    for (Column& c : table.columns)
      if (c.name == config.id_column) r.ids = std::move(c.text);
  } else {
    r.ids.reserve(n);
    for (auto line : table.source_line) r.ids.push_back("line " + std::to_string(line));
  }
  if (!seed_rule) r.is_seed = seeds_from_ids(config, r.ids, r.seed_ids_unmatched);
  const auto seeds = static_cast<std::int64_t>(std::count(r.is_seed.begin(), r.is_seed.end(), 1));
  check_seed_count(config, seed_rule.has_value(), seeds, n);
  stage("seeds", seeds, t0);

  t0 = Clock::now();
  r.normalizer = fit_normalizer(table, normalize_options(config));
  Matrix x = apply_normalizer(r.normalizer, table);
  const std::string norm_print =
      control.save || resume ? normalizer_fingerprint(r.normalizer) : std::string();
  if (resume != nullptr && resume->normalizer != norm_print)
    throw Error(config.input_path +
                ": the input is not the one the checkpoint was taken on (its normalizer "
                "differs); resume needs the same file");
  stage("normalize", static_cast<std::int64_t>(n), t0);

  // kmeans.k = "auto": the rule of icp::choose_k over a sweep of k_min..k_max (README).
  int k = config.kmeans.k;
  if (resume != nullptr) {
    k = resume->k;  // already chosen when k = "auto"
    r.config.kmeans.k = k;
  } else if (config.k_auto) {
    t0 = Clock::now();
    r.k_auto_options = k_auto_options(config, n);
    r.k_auto = run_sweep(x, r.k_auto_options);
    k = choose_k(r.k_auto);
    r.config.kmeans.k = k;
    stage("k-auto", static_cast<std::int64_t>(n), t0);
  }

  t0 = Clock::now();
  KMeansOptions kopt = config.kmeans;
  kopt.k = k;
  kopt.seed = config.seed;
  kopt.on_iteration = progress.on_iteration;
  if (!config.kmeans_weight_column.empty()) append_weights(config, table, kopt.sample_weight);
  if (kopt.init == KMeansInit::file)
    kopt.initial_centroids = read_initial_centroids(config, static_cast<std::size_t>(k), x.cols());
  auto checkpoint = [&](CheckpointStage at) {
    JobCheckpoint c;
    c.stage = at;
    c.job = job_print;
    c.normalizer = norm_print;
    c.k = k;
    return c;
  };
  if (control.save) {
    kopt.checkpoint_every = control.checkpoint_every;
    kopt.on_checkpoint = [&](const KMeansCheckpoint& state) {
      JobCheckpoint c = checkpoint(CheckpointStage::kmeans);
      c.kmeans = state;
      control.save(c);
    };
  }
  kopt.stop_requested = control.stop_requested;
  if (resume != nullptr && resume->stage == CheckpointStage::segments) {
    r.kmeans = resume->segments;
  } else {
    if (resume != nullptr) kopt.resume = &resume->kmeans;
    r.kmeans = fit_segments(x.view(), kopt, reducer);
    if (control.save) {
      // Lookalike scoring is the longest stage: a stop during it must not cost the k-means.
      JobCheckpoint c = checkpoint(CheckpointStage::segments);
      c.segments = r.kmeans;
      control.save(c);
    }
  }
  if (reducer.size() == 1) {
    stage("kmeans", static_cast<std::int64_t>(n), t0);
    t0 = Clock::now();
    r.lookalike = score_lookalike(x, r.kmeans.assignment, k, r.is_seed, r.is_negative,
                                  lookalike_options(config));
  } else {
    // The other processes wait to learn whether lookalike follows: the stop check is made once,
    // here, so they are never left waiting for a stage that will not come.
    stage("kmeans", static_cast<std::int64_t>(n), t0, false);
    const bool stopping = control.stop_requested && control.stop_requested();
    std::int64_t head[3] = {stopping ? kLookalikeStop : kLookalikeGo, static_cast<std::int64_t>(n),
                            static_cast<std::int64_t>(x.cols())};
    reducer.broadcast(std::span<std::int64_t>(head, 3));
    if (stopping) throw Interrupted("stopped on request after the kmeans stage");
    t0 = Clock::now();
    const Matrix mine = reducer.scatter_rows(x.view(), n, x.cols());
    LookalikeOptions lopt = lookalike_options(config);
    lopt.knn = [&](MatrixView, MatrixView reference, std::span<const std::int64_t> self_seed,
                   int neighbors) {
      std::int64_t request[4] = {kKnnRequest, static_cast<std::int64_t>(reference.rows),
                                 static_cast<std::int64_t>(reference.cols), neighbors};
      reducer.broadcast(std::span<std::int64_t>(request, 4));
      return knn_request(reducer, mine.view(), n, request, reference.data, self_seed);
    };
    r.lookalike = score_lookalike(x, r.kmeans.assignment, k, r.is_seed, r.is_negative, lopt);
    std::int64_t done[4] = {kKnnDone, 0, 0, 0};
    reducer.broadcast(std::span<std::int64_t>(done, 4));
    others_done = true;
  }
  stage("lookalike", static_cast<std::int64_t>(n), t0);

  t0 = Clock::now();
  r.summary = summarize_segments(table, r.kmeans.assignment, k, r.is_seed, r.is_negative,
                                 summary_options(config));
  stage("summary", static_cast<std::int64_t>(n), t0);
  return r;
}

}  // namespace icp
