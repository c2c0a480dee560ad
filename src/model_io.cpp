// `icp score` library side: a results file back into a scoring model, and new accounts through
// the same normalizer, centroids and lookalike model. Dataset names follow docs/hdf5-schema.md.
#include "icp/model_io.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <ctime>
#include <unordered_map>
#include <variant>

#include "icp/error.hpp"
#include "icp/kmeans.hpp"
#include "icp/output.hpp"
#include "icp/pipeline.hpp"
#include "icp/table_h5.hpp"
#include "value_order.hpp"

#ifndef ICP_VERSION
#define ICP_VERSION "0.0.0"
#endif

namespace icp {

namespace {

template <class T>
std::span<const T> sp(const std::vector<T>& v) {
  return {v.data(), v.size()};
}

template <class T>
const std::vector<T>& field(const h5::Table& t, const std::string& name, const std::string& where) {
  for (const auto& f : t.fields) {
    if (f.name != name) continue;
    if (const auto* v = std::get_if<std::vector<T>>(&f.values)) return *v;
    throw Error(where + ": field '" + name + "' has an unexpected type");
  }
  throw Error(where + ": no field '" + name + "'");
}

FeatureKind parse_kind(const std::string& s, const std::string& where) {
  if (s == "numeric") return FeatureKind::numeric;
  if (s == "flag") return FeatureKind::flag;
  if (s == "onehot") return FeatureKind::onehot;
  throw Error(where + ": unknown feature kind '" + s + "'");
}

Normalizer read_normalizer(const h5::Reader& rd) {
  const std::string where = rd.path() + ": /features/normalizer";
  const h5::Table t = rd.read_table("/features/normalizer");
  const auto& name = field<std::string>(t, "name", where);
  const auto& column = field<std::string>(t, "column", where);
  const auto& kind = field<std::string>(t, "kind", where);
  const auto& transform = field<std::string>(t, "transform", where);
  const auto& center = field<double>(t, "center", where);
  const auto& scale = field<double>(t, "scale", where);
  const auto& impute = field<double>(t, "impute", where);
  const auto& weight = field<double>(t, "weight", where);
  const auto& offset = field<double>(t, "offset", where);
  Normalizer norm;
  norm.features.resize(t.rows());
  for (std::size_t j = 0; j < t.rows(); ++j) {
    FeatureSpec& f = norm.features[j];
    f.name = name[j];
    f.column = column[j];
    f.kind = parse_kind(kind[j], where);
    if (transform[j] != "none" && transform[j] != "log1p")
      throw Error(where + ": unknown transform '" + transform[j] + "'");
    f.transform = transform[j] == "log1p" ? Transform::log1p : Transform::none;
    f.center = center[j];
    f.scale = scale[j];
    f.impute = impute[j];
    f.weight = weight[j];
    f.offset = offset[j];
  }
  const auto levels = rd.read_strings("/features/levels");
  const auto level_feature = rd.read<std::int64_t>("/features/level_feature");
  if (levels.size() != level_feature.size())
    throw Error(rd.path() + ": /features/levels and /features/level_feature differ in length");
  for (std::size_t l = 0; l < levels.size(); ++l) {
    const std::int64_t j = level_feature[l];
    if (j < 0 || static_cast<std::size_t>(j) >= norm.features.size())
      throw Error(rd.path() + ": /features/level_feature holds an index outside the features");
    norm.features[static_cast<std::size_t>(j)].levels.push_back(levels[l]);
  }
  return norm;
}

Matrix read_matrix(const h5::Reader& rd, const std::string& path, std::size_t cols) {
  const auto dims = rd.dims(path);
  if (dims.size() != 2 || dims[1] != cols)
    throw Error(rd.path() + ": " + path + ": expected a matrix of " + std::to_string(cols) +
                " columns");
  Matrix m(static_cast<std::size_t>(dims[0]), cols);
  const std::vector<float> v = rd.read<float>(path);
  m.storage().assign(v.begin(), v.end());
  return m;
}

}  // namespace

ScoringModel load_scoring_model(const std::string& results_path) {
  const h5::Reader rd(results_path);
  if (!rd.has_attr("/", "icp_format_version"))
    throw Error(results_path + ": not an icp results file (no icp_format_version attribute)");
  const std::int64_t version = rd.attr_int("/", "icp_format_version");
  if (version != kFormatVersion)
    throw Error(results_path + ": results format version " + std::to_string(version) +
                ", this icp reads version " + std::to_string(kFormatVersion));
  if (!rd.exists("/lookalike/model/seed_matrix") || !rd.exists("/lookalike/combined"))
    throw Error(results_path +
                ": no stored lookalike model (/lookalike/model/seed_matrix); "
                "re-run the job with this version of icp");
  ScoringModel m;
  m.path = results_path;
  m.config = parse_config(rd.attr_string("/", "config"), results_path + ": config");
  m.options = lookalike_options(m.config);
  m.normalizer = read_normalizer(rd);
  m.feature_names = m.normalizer.names();
  const std::size_t d = m.normalizer.dims();
  m.centroids = read_matrix(rd, "/segments/centroids", d);

  LookalikeResult& f = m.fitted;
  f.seeds = read_matrix(rd, "/lookalike/model/seed_matrix", d);
  f.seed_rows = rd.read<std::int64_t>("/lookalike/model/seed_rows");
  f.model_coef = rd.read<double>("/lookalike/model/coef");
  f.model_intercept = rd.attr_double("/lookalike/model", "intercept");
  f.segment_rate = rd.read<double>("/lookalike/model/segment_rate");
  const std::vector<double> w = rd.attr_doubles("/lookalike", "method_weight");
  if (w.size() != f.method_weight.size())
    throw Error(results_path + ": /lookalike attribute method_weight must hold 3 values");
  std::copy(w.begin(), w.end(), f.method_weight.begin());
  f.combined = rd.read<float>("/lookalike/combined");
  f.knn_similarity = rd.read<float>("/lookalike/knn_similarity");
  f.segment_score = rd.read<float>("/lookalike/segment_score");
  f.model_score = rd.read<float>("/lookalike/model_score");
  if (f.seed_rows.size() != f.seeds.rows() || f.model_coef.size() != d ||
      f.segment_rate.size() != m.centroids.rows())
    throw Error(results_path + ": the stored lookalike model is inconsistent with its features");

  const std::vector<std::string> ids = rd.read_strings("/accounts/id");
  m.seed_ids.reserve(f.seed_rows.size());
  for (const std::int64_t row : f.seed_rows) {
    if (row < 0 || static_cast<std::size_t>(row) >= ids.size())
      throw Error(results_path + ": /lookalike/model/seed_rows holds a row outside /accounts/id");
    m.seed_ids.push_back(ids[static_cast<std::size_t>(row)]);
  }
  return m;
}

namespace {

/// The job as `icp score` reads new accounts with it: prospects need the features (and id), not
/// the columns that defined seeds or value in the fit.
JobConfig scoring_job(const ScoringModel& model) {
  JobConfig job = model.config;
  job.seeds.rule.clear();
  job.seeds.negative_rule.clear();
  job.value_column.clear();
  job.csv.quarantine_path.clear();  // never overwrite the fit's quarantine file
  // The stored job names the fit's format; new accounts are read by their own extension.
  job.input_format.clear();
  return job;
}

/// Seed index of each model seed id, for recognising seeds among the new rows.
std::unordered_map<std::string, std::int64_t> seed_lookup(const ScoringModel& model) {
  std::unordered_map<std::string, std::int64_t> seed_of;
  if (model.config.id_column.empty()) return seed_of;
  seed_of.reserve(model.seed_ids.size());
  for (std::size_t s = 0; s < model.seed_ids.size(); ++s)
    seed_of.emplace(model.seed_ids[s], static_cast<std::int64_t>(s));
  return seed_of;
}

/// Scores one table of accounts (all of them, or one block) without ranking them.
ScoredAccounts score_rows(const ScoringModel& model, const NewAccountScorer& scorer,
                          const std::unordered_map<std::string, std::int64_t>& seed_of,
                          const Table& table) {
  const std::size_t n = table.rows;
  ScoredAccounts out;
  out.source_line.assign(table.source_line.begin(), table.source_line.end());
  if (!model.config.id_column.empty()) {
    out.ids = table.at(model.config.id_column).text;
  } else {
    out.ids.reserve(n);
    for (const std::int64_t line : table.source_line)
      out.ids.push_back("line " + std::to_string(line));
  }
  const Matrix x = apply_normalizer(model.normalizer, table);
  out.assignment.resize(n);
  out.distance.resize(n);
  kmeans_predict(x, model.centroids, out.assignment, out.distance);

  std::vector<std::int64_t> self_seed;
  if (!model.config.id_column.empty()) {
    self_seed.assign(n, -1);
    for (std::size_t i = 0; i < n; ++i) {
      const auto it = seed_of.find(out.ids[i]);
      if (it == seed_of.end()) continue;
      self_seed[i] = it->second;
      ++out.known_seeds;
    }
  }
  out.scores = scorer.score(x, out.assignment, model.fitted.seeds, self_seed);
  return out;
}

void write_header(const ScoringModel& model, h5::Writer& w) {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
  w.attr("/", "icp_format_version", kFormatVersion);
  w.attr("/", "icp_version", ICP_VERSION);
  w.attr("/", "created_utc", std::string(stamp));
  w.attr("/", "kind", "scores");
  w.attr("/", "model", model.path);
  w.write_strings("/features/names", model.feature_names);
}

/// Appends one block of scored rows to every per-account dataset except the rank.
void append_block(const ScoringModel& model,
                  const std::unordered_map<std::int64_t, std::size_t>& seed_index,
                  const ScoredAccounts& s, h5::Writer& w) {
  w.append_strings("/accounts/id", s.ids);
  w.append("/accounts/source_line", sp(s.source_line));
  w.append("/segments/assignment", sp(s.assignment));
  w.append("/segments/distance", sp(s.distance));
  const LookalikeNewScores& sc = s.scores;
  w.append("/lookalike/score", sp(sc.score));
  w.append("/lookalike/combined", sp(sc.combined));
  w.append("/lookalike/tier", sp(sc.tier));
  w.append("/lookalike/nearest_seed", sp(sc.nearest_seed));
  std::vector<std::string> nearest_id(sc.nearest_seed.size());
  for (std::size_t i = 0; i < nearest_id.size(); ++i) {
    const auto it = seed_index.find(sc.nearest_seed[i]);
    if (it != seed_index.end()) nearest_id[i] = model.seed_ids[it->second];
  }
  w.append_strings("/lookalike/nearest_seed_id", nearest_id);
  w.append("/lookalike/nearest_seed_distance", sp(sc.nearest_seed_distance));
  w.append("/lookalike/knn_similarity", sp(sc.knn_similarity));
  w.append("/lookalike/segment_score", sp(sc.segment_score));
  w.append("/lookalike/model_score", sp(sc.model_score));
  std::vector<std::int32_t> reasons;
  reasons.reserve(sc.reasons.size() * 3);
  for (const auto& a : sc.reasons) reasons.insert(reasons.end(), a.begin(), a.end());
  w.append("/lookalike/reasons", sp(reasons), 3);
}

void write_footer(const ScoringModel& model, const IngestStats& ingest, std::int64_t known_seeds,
                  h5::Writer& w) {
  w.attr("/lookalike/tier", "encoding", "ASCII letter codes: 65 = A (best) ... 69 = E");
  w.attr("/lookalike", "method", to_string(model.options.method));
  w.attr("/lookalike", "method_weight",
         std::span<const double>(model.fitted.method_weight.data(),
                                 model.fitted.method_weight.size()));
  w.attr("/lookalike", "tiers", sp(model.options.tiers));
  w.attr("/lookalike", "known_seeds", known_seeds);
  w.group("/run");
  w.attr("/run", "rows_read", ingest.rows_read);
  w.attr("/run", "rows_accepted", ingest.rows_accepted);
  w.attr("/run", "rows_quarantined", ingest.rows_quarantined);
}

std::unordered_map<std::int64_t, std::size_t> seed_row_index(const ScoringModel& model) {
  std::unordered_map<std::int64_t, std::size_t> seed_index;
  seed_index.reserve(model.fitted.seed_rows.size());
  for (std::size_t k = 0; k < model.fitted.seed_rows.size(); ++k)
    seed_index.emplace(model.fitted.seed_rows[k], k);
  return seed_index;
}

/// Block of rows ranked at a time when the ranks are written: bounds the int64 ranks in flight.
constexpr std::size_t kRankBlockRows = std::size_t{1} << 16;

/// rank_descending's ranks written in blocks: 8 bytes per row (StreamedRanks) instead of its
/// n-entry order.
void append_ranks(std::span<const float> combined, h5::Writer& w) {
  const std::size_t n = combined.size();
  std::vector<std::uint32_t> keys(n);
  for (std::size_t i = 0; i < n; ++i) keys[i] = float_order_key(combined[i]);
  const SortedKeys sorted(std::move(keys));
  StreamedRanks ranks(sorted);
  std::vector<std::int64_t> rank;
  for (std::size_t b0 = 0; b0 < n; b0 += kRankBlockRows) {
    const std::size_t b1 = std::min(n, b0 + kRankBlockRows);
    rank.resize(b1 - b0);
    ranks.next(combined.subspan(b0, b1 - b0), rank);
    w.append("/lookalike/rank", sp(rank));
  }
}

}  // namespace

ScoredAccounts score_csv(const ScoringModel& model, const std::string& csv_path) {
  IngestStats stats;
  const Table table = read_accounts(scoring_job(model), csv_path, &stats);
  ScoredAccounts out = score_table(model, table);
  out.ingest = stats;
  return out;
}

ScoredAccounts score_table(const ScoringModel& model, const Table& table) {
  if (table.rows == 0) throw Error(table.source + ": no accepted rows to score");
  const NewAccountScorer scorer(model.fitted, model.options);
  ScoredAccounts out = score_rows(model, scorer, seed_lookup(model), table);
  out.rank = rank_descending(out.scores.combined);
  return out;
}

void write_scores(const ScoringModel& model, const ScoredAccounts& s, h5::Writer& w) {
  write_header(model, w);
  append_block(model, seed_row_index(model), s, w);
  w.append("/lookalike/rank", sp(s.rank));
  write_footer(model, s.ingest, s.known_seeds, w);
}

std::size_t streamed_block_rows(std::uint64_t memory_limit, std::uint64_t resident,
                                std::uint64_t rows) {
  const std::uint64_t held = resident + kStreamReserveBytes + kStreamBytesPerRow * rows;
  const std::uint64_t budget = memory_limit > held ? memory_limit - held : 0;
  const std::uint64_t fit = budget / kStreamBytesPerBlockRow;
  if (fit < kStreamMinBlockRows) {
    const std::uint64_t need = held + kStreamBytesPerBlockRow * kStreamMinBlockRows;
    throw Error(fmt::format(
        "--memory-limit {} MiB is too small to stream {} rows: the model takes {} MiB, the ranks "
        "{} bytes per row, and a block of {} rows about {} MiB; at least {} MiB is needed",
        memory_limit >> 20, rows, resident >> 20, kStreamBytesPerRow, kStreamMinBlockRows,
        (kStreamBytesPerBlockRow * kStreamMinBlockRows) >> 20, (need >> 20) + 1));
  }
  const std::uint64_t capped = std::min<std::uint64_t>(fit, kStreamMaxBlockRows);
  return static_cast<std::size_t>(capped - capped % kStreamMinBlockRows);
}

StreamedScores score_h5_streamed(const ScoringModel& model, const std::string& h5_path,
                                 const std::function<std::size_t(std::size_t)>& block_rows_for,
                                 h5::Writer& out) {
  const JobConfig job = scoring_job(model);
  CsvOptions csv = job.csv;
  csv.columns = required_columns(job);
  csv.unique_column = job.id_column;
  const H5TableBlocks source(h5_path, job.input_group, csv);
  const std::size_t n = source.rows();
  const std::size_t block_rows = block_rows_for(n);
  if (block_rows == 0) throw Error("streamed scoring: block_rows must be positive");
  StreamedScores result;
  result.block_rows = block_rows;

  // Repeated ids span blocks: one scan finds them (and, under the fail policy, the first bad
  // row) before any output, so a failing input costs a read, not a scoring pass.
  // Without a unique column and under the quarantine policy there is nothing to find first, so
  // the scan is skipped (repeated_rows returns at once).
  const std::vector<std::uint64_t> repeats =
      repeats_or_first_error(source, block_rows, csv.on_error == ErrorPolicy::fail);

  write_header(model, out);
  const NewAccountScorer scorer(model.fitted, model.options);
  const auto seed_of = seed_lookup(model);
  const auto seed_index = seed_row_index(model);
  std::vector<float> combined;
  combined.reserve(n);  // address space only: pages are touched as blocks arrive
  for (std::size_t first = 0; first < n; first += block_rows) {
    const Table table =
        source.read(first, std::min(block_rows, n - first), repeats, &result.ingest);
    ++result.blocks;
    if (table.rows == 0) continue;
    const ScoredAccounts block = score_rows(model, scorer, seed_of, table);
    append_block(model, seed_index, block, out);
    combined.insert(combined.end(), block.scores.combined.begin(), block.scores.combined.end());
    result.known_seeds += block.known_seeds;
    for (const std::uint8_t t : block.scores.tier)
      if (t >= 'A' && t <= 'E') ++result.tiers[static_cast<std::size_t>(t - 'A')];
  }
  if (combined.empty()) throw Error(h5_path + ": no accepted rows to score");
  append_ranks(combined, out);
  write_footer(model, result.ingest, result.known_seeds, out);
  return result;
}

}  // namespace icp
