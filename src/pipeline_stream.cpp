// The job over an HDF5 input read in blocks (`icp run --memory-limit`): run_job's stages, each
// through the block-wise version of its kernel, with scratch files for what a market larger than
// memory cannot hold: the table's accepted blocks (for the later table scans), the normalized rows
// (scanned by k-means and the lookalike stage) and the per-row results (copied by the writer).

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

#include "icp/error.hpp"
#include "icp/parallel.hpp"
#include "icp/pipeline.hpp"
#include "icp/rule.hpp"
#include "icp/scratch.hpp"
#include "icp/table_h5.hpp"
#include "pipeline_internal.hpp"

namespace icp {

namespace {

using Clock = std::chrono::steady_clock;

double since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

/// The normalized rows as RowBlocks: blocks of `block_rows` read back from their scratch column
/// (written once, in row order, by the normalize stage).
RowBlocks scratch_blocks(const ScratchColumns& scratch, std::size_t cols, std::size_t block_rows) {
  RowBlocks b;
  b.rows = scratch.rows();
  b.cols = cols;
  b.scan = [&scratch, cols, block_rows, n = scratch.rows()](const RowBlocks::Visit& visit) {
    // Mapped, not read: a read copies every block out of the page cache, and k-means scans the
    // whole matrix once per iteration.
    for (std::size_t first = 0; first < n; first += block_rows) {
      const std::size_t count = std::min(block_rows, n - first);
      const ScratchColumns::Mapped block =
          scratch.map("normalized", first, count, cols * sizeof(float));
      visit(first, MatrixView{static_cast<const float*>(block.data()), count, cols});
    }
  };
  b.fetch = [&scratch, cols](std::span<const std::size_t> rows) {
    Matrix out(rows.size(), cols);
    for (std::size_t r = 0; r < rows.size(); ++r)
      scratch.read("normalized", rows[r], std::span<float>(out.row(r), cols), cols);
    return out;
  };
  return b;
}

/// The accepted blocks of the table as the ingest pass read them, kept in a scratch file for the
/// later scans (normalizer statistics, normalized rows, summary): reading a block back is a copy
/// from the page cache, where reading the HDF5 table again meant inflating and checking every
/// column and building its strings on one thread (about 15 s a scan of 10M rows, nine scans).
/// Each block comes back exactly as read (the same codes and levels), so the results do not move.
/// The writer reads the ids from here too (RunResult::id_blocks), so the file lives as long as the
/// run's result does.
class SpilledTable {
 public:
  explicit SpilledTable(const std::string& folder) : file_(folder, 0, "table") {}

  void add(const Table& t) {
    if (blocks_.empty()) {
      source_ = t.source;
      for (const Column& c : t.columns) shape_.emplace_back(c.name, c.type);
    }
    buffer_.clear();
    put(t.rows);
    put_array(t.source_line.data(), t.rows);
    for (const Column& c : t.columns) {
      switch (c.type) {
        case ColumnType::numeric:
          put_array(c.numeric.data(), t.rows);
          break;
        case ColumnType::categorical:
          put_array(c.codes.data(), t.rows);
          put(c.levels.size());
          for (const std::string& l : c.levels) put_string(l);
          break;
        case ColumnType::text:
          for (const std::string& s : c.text) put_string(s);
          break;
      }
    }
    blocks_.push_back({file_.append_bytes(buffer_), buffer_.size()});
  }

  void scan(const TableVisitor& visit) const {
    std::vector<char> bytes;
    for (const Block& b : blocks_) {
      bytes.resize(b.bytes);
      file_.read_bytes(b.offset, bytes);
      const char* at = bytes.data();
      Table t;
      t.source = source_;
      t.rows = take<std::size_t>(at);
      t.source_line.resize(t.rows);
      take_array(at, t.source_line.data(), t.rows);
      for (const auto& [name, type] : shape_) {
        Column c;
        c.name = name;
        c.type = type;
        switch (type) {
          case ColumnType::numeric:
            c.numeric.resize(t.rows);
            take_array(at, c.numeric.data(), t.rows);
            break;
          case ColumnType::categorical: {
            c.codes.resize(t.rows);
            take_array(at, c.codes.data(), t.rows);
            c.levels.resize(take<std::size_t>(at));
            for (std::string& l : c.levels) l = take_string(at);
            break;
          }
          case ColumnType::text:
            c.text.resize(t.rows);
            for (std::string& s : c.text) s = take_string(at);
            break;
        }
        t.columns.push_back(std::move(c));
      }
      if (at != bytes.data() + bytes.size()) throw Error(file_.path() + ": a table block misread");
      visit(t);
    }
  }

 private:
  struct Block {
    std::uint64_t offset = 0;
    std::size_t bytes = 0;
  };
  template <class T>
  void put_array(const T* v, std::size_t n) {
    const auto* p = reinterpret_cast<const char*>(v);
    buffer_.insert(buffer_.end(), p, p + n * sizeof(T));
  }
  template <class T>
  void put(T v) {
    put_array(&v, 1);
  }
  void put_string(const std::string& s) {
    put(s.size());
    buffer_.insert(buffer_.end(), s.begin(), s.end());
  }
  template <class T>
  static void take_array(const char*& at, T* out, std::size_t n) {
    std::memcpy(static_cast<void*>(out), at, n * sizeof(T));
    at += n * sizeof(T);
  }
  template <class T>
  static T take(const char*& at) {
    T v;
    take_array(at, &v, 1);
    return v;
  }
  static std::string take_string(const char*& at) {
    const auto n = take<std::size_t>(at);
    std::string s(at, n);
    at += n;
    return s;
  }

  ScratchColumns file_;
  std::vector<Block> blocks_;
  std::vector<std::pair<std::string, ColumnType>> shape_;
  std::string source_;
  std::vector<char> buffer_;
};

}  // namespace

RunResult run_job_streamed(const JobConfig& config, const RunProgress& progress,
                           const StreamOptions& options, const RunControl& control) {
  if (resolve_input_format(config.input_format, config.input_path) != "hdf5") {
    throw ConfigError(config.input_path +
                      ": a streamed run (--memory-limit, --block-rows) reads HDF5 input; convert "
                      "the CSV once with `icp convert " +
                      config.input_path + " <file>.h5`");
  }
  if (config.k_auto)
    throw ConfigError(config.config_path +
                      ": kmeans.k = \"auto\" sweeps k on the matrix in memory; a streamed run "
                      "needs a fixed k");
  if (options.block_rows == 0 || options.block_rows % kReduceChunkRows != 0)
    throw ConfigError(fmt::format("--block-rows {} must be a positive multiple of {}",
                                  options.block_rows, kReduceChunkRows));
  if (control.resume != nullptr || control.save)
    throw ConfigError("checkpoints (--checkpoint, --resume) are not taken in a streamed run");
  RunResult r;
  r.config = config;
  r.threads = threads();
  r.processes = 1;
  auto stage = [&](const char* name, std::int64_t rows, Clock::time_point t0) {
    record_stage(r, progress, name, rows, since(t0));
    stop_if_asked(control, name);
  };
  const SeedRules rules = parse_seed_rules(config);
  const std::optional<RowRule>& seed_rule = rules.seed;
  const std::optional<RowRule>& neg_rule = rules.negative;

  // ---- Ingest: the checks of read_table_h5, block by block. Repeated ids span blocks, so one
  // scan finds them first (and, under the fail policy, the first bad row).
  auto t0 = Clock::now();
  CsvOptions csv = config.csv;
  csv.columns = required_columns(config);
  csv.unique_column = config.id_column;
  const H5TableBlocks source(config.input_path, config.input_group, csv);
  const std::size_t stored = source.rows();
  const std::size_t block = options.block_rows;
  const bool fail = csv.on_error == ErrorPolicy::fail;
  const std::vector<std::uint64_t> repeats = repeats_or_first_error(source, block, fail);
  // The later scans read the accepted blocks from here (removed with the result).
  const auto spilled_table = std::make_shared<SpilledTable>(options.scratch_dir);
  const TableScan scan = [&](const TableVisitor& visit) { spilled_table->scan(visit); };

  // One pass for what every later stage needs per row: seed flags and weights. Ids and source
  // lines are not kept (at 48 bytes a row they were the largest per-row items): seeds listed in
  // a file are flagged here, and the writer reads both back through r.id_blocks.
  std::vector<float> weight;
  std::vector<RejectedRow> rejected;  // quarantine policy: the file lists them, as read_table_h5's
  std::size_t n = 0;
  std::unordered_set<std::string> listed, matched;
  std::vector<std::string> listed_lines;
  if (!seed_rule) {
    listed_lines = read_seed_ids(config);
    listed.insert(listed_lines.begin(), listed_lines.end());
  }
  auto ids_of_block = [id_column = config.id_column](const Table& t) {
    if (!id_column.empty()) return t.at(id_column).text;
    std::vector<std::string> ids;
    ids.reserve(t.rows);
    for (const auto line : t.source_line) ids.push_back("line " + std::to_string(line));
    return ids;
  };
  for (std::size_t first = 0; first < stored; first += block) {
    const Table t =
        source.read(first, std::min(block, stored - first), repeats, &r.ingest, &rejected);
    spilled_table->add(t);
    if (seed_rule) {
      const std::vector<std::uint8_t> s = seed_rule->evaluate(t);
      r.is_seed.insert(r.is_seed.end(), s.begin(), s.end());
    }
    if (neg_rule) {
      const std::vector<std::uint8_t> s = neg_rule->evaluate(t);
      r.is_negative.insert(r.is_negative.end(), s.begin(), s.end());
    }
    // The id column as it is; line numbers built only when there is none.
    std::vector<std::string> line_ids;
    const std::vector<std::string>& ids =
        config.id_column.empty() ? (line_ids = ids_of_block(t)) : t.at(config.id_column).text;
    for (const std::string& id : ids) r.longest_id = std::max(r.longest_id, id.size());
    if (!seed_rule) {
      for (const std::string& id : ids) {
        const bool seed = listed.count(id) != 0;
        r.is_seed.push_back(seed ? 1 : 0);
        if (seed) matched.insert(id);
      }
    }
    if (!config.kmeans_weight_column.empty()) append_weights(config, t, weight);
    n += t.rows;
  }
  if (!fail && !csv.quarantine_path.empty()) {
    std::stable_sort(rejected.begin(), rejected.end(),
                     [](const RejectedRow& a, const RejectedRow& b) { return a.line < b.line; });
    write_quarantine(csv.quarantine_path, rejected);
  }
  rejected = {};
  {
    std::error_code ec;
    const auto bytes = std::filesystem::file_size(config.input_path, ec);
    r.ingest.bytes = ec ? 0 : static_cast<std::int64_t>(bytes);
    r.ingest.rows_read = static_cast<std::int64_t>(stored);
    r.ingest.seconds = since(t0);
  }
  stage("ingest", r.ingest.rows_read, t0);
  if (n == 0) throw Error(config.input_path + ": no accepted rows");
  check_k_fits(config, n);

  t0 = Clock::now();
  if (!seed_rule) {
    for (const std::string& id : listed_lines) r.seed_ids_unmatched += matched.count(id) == 0;
  }
  const auto seeds = static_cast<std::int64_t>(std::count(r.is_seed.begin(), r.is_seed.end(), 1));
  check_seed_count(config, seed_rule.has_value(), seeds, n);
  stage("seeds", seeds, t0);

  // ---- Normalize: statistics over the blocks, then every row written once to the scratch file.
  t0 = Clock::now();
  r.normalizer = fit_normalizer_streamed(scan, normalize_options(config));
  const std::size_t d = r.normalizer.dims();
  ScratchColumns normalized(options.scratch_dir, n, "normalized");
  {
    std::size_t at = 0;
    scan([&](const Table& t) {
      const Matrix m = apply_normalizer(r.normalizer, t);
      normalized.write("normalized", at, std::span<const float>(m.data(), m.rows() * d), d);
      at += m.rows();
    });
  }
  const RowBlocks x = scratch_blocks(normalized, d, block);
  stage("normalize", static_cast<std::int64_t>(n), t0);

  t0 = Clock::now();
  KMeansOptions kopt = config.kmeans;
  kopt.seed = config.seed;
  kopt.on_iteration = progress.on_iteration;
  kopt.stop_requested = control.stop_requested;
  kopt.sample_weight = std::move(weight);
  if (kopt.init == KMeansInit::file)
    kopt.initial_centroids = read_initial_centroids(config, static_cast<std::size_t>(kopt.k), d);
  r.kmeans = kmeans_fit_streamed(x, kopt);
  // The per-row results beyond labels and flags go to a scratch file, for the writer to copy.
  auto spilled = std::make_shared<ScratchColumns>(options.scratch_dir, n, "results");
  spilled->write<float>("/segments/distance", 0, r.kmeans.distance);
  r.kmeans.distance = std::vector<float>();
  stage("kmeans", static_cast<std::int64_t>(n), t0);

  t0 = Clock::now();
  r.lookalike = score_lookalike(x, r.kmeans.assignment, config.kmeans.k, r.is_seed, r.is_negative,
                                lookalike_options(config), spilled.get());
  r.spilled = std::move(spilled);
  stage("lookalike", static_cast<std::int64_t>(n), t0);

  t0 = Clock::now();
  r.summary = summarize_segments(scan, r.kmeans.assignment, config.kmeans.k, r.is_seed,
                                 r.is_negative, summary_options(config));
  stage("summary", static_cast<std::int64_t>(n), t0);
  // The ids and source lines, when the writer asks: from the accepted blocks kept at ingest.
  r.id_blocks = [spilled_table, ids_of_block](const auto& visit) {
    std::size_t accepted = 0;
    spilled_table->scan([&](const Table& t) {
      visit(accepted, ids_of_block(t),
            std::span<const std::int64_t>(t.source_line.data(), t.source_line.size()));
      accepted += t.rows;
    });
  };
  return r;
}

}  // namespace icp
