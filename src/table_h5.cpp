// HDF5 table input/output. Rows are checked in row order and, within a row, in request order,
// so the first error and the quarantine file are deterministic. Everything runs on the calling
// thread: serial HDF5 is not thread-safe, and the per-cell checks are cheap next to the reads.
#include "icp/table_h5.hpp"

#include <algorithm>
#include <cfloat>
#include <charconv>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>
#include <span>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "icp/csv.hpp"
#include "icp/error.hpp"

namespace icp {

namespace {

/// Offending text in messages is cut here, as in the CSV reader.
constexpr std::size_t kMaxValueChars = 80;

std::string truncate_text(std::string_view s) {
  if (s.size() <= kMaxValueChars) return std::string(s);
  std::size_t n = kMaxValueChars;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0u) == 0x80u) --n;
  return std::string(s.substr(0, n));
}

/// Shortest text that reads back as `x` ("inf", "1e+300", "0.1"), as a user would have typed it.
std::string number_text(double x) {
  char buf[40];
  const auto r = std::to_chars(buf, buf + sizeof buf, x);
  return std::string(buf, r.ptr);
}

std::string join(const std::string& group, const std::string& name) {
  return group == "/" ? "/" + name : group + "/" + name;
}

/// One stored column, as numbers or as strings (whichever the dataset holds).
struct Stored {
  std::string name;
  std::string object;  ///< "<group>/<name>"
  bool is_string = false;
  bool is_integer = false;
  std::vector<double> num;
  std::vector<std::int64_t> ints;
  std::vector<std::string> str;

  std::size_t size() const noexcept {
    return is_string ? str.size() : is_integer ? ints.size() : num.size();
  }
  /// The cell as text (strings as stored, integers in decimal) for messages and keys.
  std::string text(std::size_t i) const {
    if (is_string) return str[i];
    if (is_integer) return std::to_string(ints[i]);
    return number_text(num[i]);
  }
};

/// Rows [first, first + count) of one column (all rows: first 0, count its length).
Stored load(const h5::Reader& rd, const std::string& path, const std::string& group,
            const std::string& name, bool want_strings, std::size_t first, std::size_t count) {
  Stored s;
  s.name = name;
  s.object = join(group, name);
  const std::string place = path + ": " + s.object;
  // The Reader converts only losslessly and says so by throwing, so the dataset's class is found
  // by trying the conversions from the most to the least common layout.
  std::string why;
  if (!want_strings) {
    try {
      s.num = rd.read_rows<double>(s.object, first, count);
      return s;
    } catch (const Error& e) {
      why = e.what();
    }
  }
  try {
    s.ints = rd.read_rows<std::int64_t>(s.object, first, count);
    s.is_integer = true;
    return s;
  } catch (const Error& e) {
    if (why.empty()) why = e.what();
  }
  try {
    s.str = rd.read_string_rows(s.object, first, count);
    s.is_string = true;
    return s;
  } catch (const Error&) {
  }
  throw InputError(place, 0, "", 0, truncate_text(why),
                   want_strings ? "expected a string or integer dataset"
                                : "expected a numeric or string dataset");
}

using BadRow = RejectedRow;

}  // namespace

void write_quarantine(const std::string& path, const std::vector<RejectedRow>& rows) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) throw Error(path + ": cannot write quarantine file");
    f << "line,reason,record\n";
    for (const BadRow& b : rows)
      f << b.line << ',' << csv_field(b.reason) << ',' << csv_field(b.record) << '\n';
    f.flush();
    if (!f) throw Error(path + ": cannot write quarantine file");
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::filesystem::remove(tmp, ec);
    throw Error(path + ": cannot write quarantine file (rename failed)");
  }
}

namespace {

/// How a block treats repeats of options.unique_column.
struct UniqueRule {
  /// Whole table: a set of the values seen so far (first occurrence kept).
  std::unordered_set<std::string_view>* seen = nullptr;
  /// Blocks: the global rows found to repeat an earlier value (sorted), from a scan of all rows.
  std::span<const std::uint64_t> repeats;
  /// Neither: uniqueness is not checked and bad rows are only left out, never thrown or
  /// described (the duplicate scan itself).
  bool check = true;
};

/// Checked rows [first, first + count) of the table.
struct Block {
  std::vector<Stored> cols;  ///< requested columns, then the unique column if not requested
  std::vector<std::vector<double>> nums;
  std::vector<std::uint8_t> keep;
  std::vector<std::int64_t> lines;
  std::vector<BadRow> bad;
  std::vector<std::string> keys;  ///< owns unique values of integer-stored id columns
};

}  // namespace

struct H5TableBlocks::Impl {
  std::string path, group;
  CsvOptions options;
  h5::Reader rd;
  std::optional<std::size_t> unique;  ///< index of the unique column in Block::cols
  bool unique_extra = false;          ///< the unique column is not among the requests
  bool has_lines = false;
  std::size_t n = 0;

  Impl(const std::string& p, const std::string& g, const CsvOptions& o)
      : path(p), group(g), options(o), rd(p) {
    if (!rd.is_group(group))
      throw InputError(path + ": " + group, 0, "", 0, group, "no such group");
    std::vector<std::string> names;
    for (const auto& req : options.columns) names.push_back(req.name);
    if (!options.unique_column.empty()) {
      for (std::size_t k = 0; k < names.size(); ++k)
        if (names[k] == options.unique_column) unique = k;
      if (!unique) {
        names.push_back(options.unique_column);
        unique = names.size() - 1;
        unique_extra = true;
      }
    }
    std::string first_name;
    bool sized = false;
    for (const auto& name : names) {
      const std::string obj = join(group, name);
      const std::string place = path + ": " + obj;
      if (!rd.is_dataset(obj)) throw InputError(place, 0, "", 0, name, "missing column in group");
      const std::vector<std::uint64_t> dims = rd.dims(obj);
      if (dims.size() != 1) throw InputError(place, 0, "", 0, name, "expected a 1-D dataset");
      if (!sized) {
        n = dims[0];
        first_name = name;
        sized = true;
      } else if (dims[0] != n) {
        throw InputError(
            place, 0, "", 0, std::to_string(dims[0]),
            "column length differs from '" + first_name + "' (" + std::to_string(n) + " rows)");
      }
    }
    const std::string source_obj = join(group, kSourceLineDataset);
    has_lines = rd.is_dataset(source_obj);
    if (has_lines) {
      const std::vector<std::uint64_t> dims = rd.dims(source_obj);
      const std::uint64_t len = dims.size() == 1 ? dims[0] : 0;
      if (!sized) n = len;
      if (len != n)
        throw InputError(path + ": " + source_obj, 0, "", 0, std::to_string(len),
                         "length differs from the columns (" + std::to_string(n) + " rows)");
    }
  }

  /// Reads and checks rows [first, first + count): cells in row order and, within a row, in
  /// request order, so the first error (fail policy) is the one a whole-table read meets first.
  Block check(std::size_t first, std::size_t count, const UniqueRule& rule) const {
    Block b;
    const std::size_t nreq = options.columns.size();
    for (std::size_t k = 0; k < nreq; ++k)
      b.cols.push_back(load(rd, path, group, options.columns[k].name,
                            options.columns[k].type != ColumnType::numeric, first, count));
    if (unique_extra)
      b.cols.push_back(load(rd, path, group, options.unique_column, true, first, count));
    if (has_lines) {
      b.lines = rd.read_rows<std::int64_t>(join(group, kSourceLineDataset), first, count);
    } else {
      b.lines.resize(count);
      for (std::size_t i = 0; i < count; ++i) b.lines[i] = static_cast<std::int64_t>(first + i) + 1;
    }
    const bool fail_fast = options.on_error == ErrorPolicy::fail && rule.check;
    const double nan = std::numeric_limits<double>::quiet_NaN();
    b.nums.resize(nreq);
    for (std::size_t k = 0; k < nreq; ++k)
      if (options.columns[k].type == ColumnType::numeric) b.nums[k].assign(count, nan);
    b.keep.assign(count, 0);
    if (unique && !b.cols[*unique].is_string) b.keys.resize(count);

    auto record_of = [&](std::size_t i) {
      std::string r;
      for (std::size_t k = 0; k < b.cols.size(); ++k) {
        if (k > 0) r.push_back(',');
        r += csv_field(b.cols[k].text(i));
      }
      return r;
    };
    auto reject = [&](std::size_t i, const Stored& c, const std::string& value, const char* why) {
      if (fail_fast)
        throw InputError(path + ": " + c.object + ": row " + std::to_string(first + i + 1), 0, "",
                         0, truncate_text(value), why);
      if (!rule.check) return;
      BadRow bad;
      bad.line = b.lines[i];
      bad.row = static_cast<std::uint64_t>(first + i);
      bad.reason = "column '" + c.name + "': " + why + ": '" + truncate_text(value) + "'";
      bad.record = record_of(i);
      b.bad.push_back(std::move(bad));
    };

    auto repeat = rule.repeats.begin();
    for (std::size_t i = 0; i < count; ++i) {
      bool ok = true;
      for (std::size_t k = 0; k < nreq && ok; ++k) {
        if (options.columns[k].type != ColumnType::numeric) continue;
        const Stored& c = b.cols[k];
        double x = nan;
        const char* why = nullptr;
        if (c.is_string) {
          if (!is_missing_token(c.str[i], options.missing_tokens))
            why = parse_numeric_cell(c.str[i], x);
        } else {
          x = c.is_integer ? static_cast<double>(c.ints[i]) : c.num[i];
          if (!std::isnan(x)) why = check_numeric_value(x);
        }
        if (why != nullptr) {
          reject(i, c, c.text(i), why);
          ok = false;
        } else {
          b.nums[k][i] = x;
        }
      }
      if (!ok) continue;
      if (unique && rule.check) {
        const Stored& c = b.cols[*unique];
        std::string_view key;
        if (c.is_string) {
          key = c.str[i];
        } else {
          b.keys[i] = c.text(i);
          key = b.keys[i];
        }
        bool repeated = false;
        if (rule.seen != nullptr) {
          repeated =
              !is_missing_token(key, options.missing_tokens) && !rule.seen->insert(key).second;
        } else {
          while (repeat != rule.repeats.end() && *repeat < first + i) ++repeat;
          repeated = repeat != rule.repeats.end() && *repeat == first + i;
        }
        if (repeated) {
          reject(i, c, std::string(key), "duplicate value");
          continue;
        }
      }
      b.keep[i] = 1;
    }
    return b;
  }

  Table build(const Block& b) const {
    const std::size_t count = b.keep.size();
    Table table;
    table.source = path;
    std::size_t kept = 0;
    for (const auto k : b.keep) kept += k;
    table.rows = kept;
    table.source_line.reserve(kept);
    for (std::size_t i = 0; i < count; ++i)
      if (b.keep[i]) table.source_line.push_back(b.lines[i]);
    for (std::size_t k = 0; k < options.columns.size(); ++k) {
      Column col;
      col.name = options.columns[k].name;
      col.type = options.columns[k].type;
      const Stored& c = b.cols[k];
      switch (col.type) {
        case ColumnType::numeric:
          col.numeric.reserve(kept);
          for (std::size_t i = 0; i < count; ++i)
            if (b.keep[i]) col.numeric.push_back(b.nums[k][i]);
          break;
        case ColumnType::categorical: {
          // Codes in order of first appearance among kept rows, as the CSV reader assigns them.
          col.codes.reserve(kept);
          std::unordered_map<std::string, std::int32_t> index;
          for (std::size_t i = 0; i < count; ++i) {
            if (!b.keep[i]) continue;
            std::string v = c.text(i);
            if (is_missing_token(v, options.missing_tokens)) {
              col.codes.push_back(-1);
              continue;
            }
            auto [it, inserted] =
                index.try_emplace(v, static_cast<std::int32_t>(col.levels.size()));
            if (inserted) col.levels.push_back(std::move(v));
            col.codes.push_back(it->second);
          }
          break;
        }
        case ColumnType::text:
          col.text.reserve(kept);
          for (std::size_t i = 0; i < count; ++i) {
            if (!b.keep[i]) continue;
            std::string v = c.text(i);
            if (is_missing_token(v, options.missing_tokens)) v.clear();
            col.text.push_back(std::move(v));
          }
          break;
      }
      table.columns.push_back(std::move(col));
    }
    return table;
  }
};

H5TableBlocks::H5TableBlocks(const std::string& path, const std::string& group,
                             const CsvOptions& options)
    : impl_(std::make_unique<Impl>(path, group, options)) {}
H5TableBlocks::~H5TableBlocks() = default;

std::size_t H5TableBlocks::rows() const noexcept {
  return impl_->n;
}

std::vector<std::uint64_t> H5TableBlocks::repeated_rows(std::size_t block_rows,
                                                        std::uint64_t* first_rejected) const {
  const Impl& t = *impl_;
  if (first_rejected != nullptr) *first_rejected = t.n;
  if (!t.unique && first_rejected == nullptr) return {};
  block_rows = std::max<std::size_t>(block_rows, 1);
  // Pass 1: a 64-bit hash of every accepted row's value. Only values whose hash occurs twice can
  // repeat, so pass 2 compares the few rows holding those hashes exactly.
  std::vector<std::uint64_t> hashes;
  // Address space for every row up front: pages are touched as hashes arrive, where growing by
  // doubling held the old and the new array at once (805 MB for a moment at 40M rows).
  if (t.unique) hashes.reserve(t.n);
  std::vector<std::uint8_t> accepted(t.n, 0);
  const UniqueRule unchecked{nullptr, {}, false};
  const std::hash<std::string_view> hash;
  for (std::size_t first = 0; first < t.n; first += block_rows) {
    const Block b = t.check(first, std::min(block_rows, t.n - first), unchecked);
    for (std::size_t i = 0; i < b.keep.size(); ++i) {
      if (!b.keep[i]) {  // rows come in order: the first one met is the first rejected
        if (first_rejected != nullptr && *first_rejected == t.n) *first_rejected = first + i;
        continue;
      }
      accepted[first + i] = 1;
      if (!t.unique) continue;
      const std::string key = b.cols[*t.unique].text(i);
      if (!is_missing_token(key, t.options.missing_tokens)) hashes.push_back(hash(key));
    }
  }
  std::sort(hashes.begin(), hashes.end());
  std::vector<std::uint64_t> shared;
  for (std::size_t i = 1; i < hashes.size(); ++i)
    if (hashes[i] == hashes[i - 1] && (shared.empty() || shared.back() != hashes[i]))
      shared.push_back(hashes[i]);
  std::vector<std::uint64_t>().swap(hashes);
  std::vector<std::uint64_t> repeats;
  if (!t.unique || shared.empty()) return repeats;
  std::unordered_set<std::string> seen;
  for (std::size_t first = 0; first < t.n; first += block_rows) {
    const std::size_t count = std::min(block_rows, t.n - first);
    const Stored c = load(t.rd, t.path, t.group, t.options.unique_column, true, first, count);
    for (std::size_t i = 0; i < count; ++i) {
      if (!accepted[first + i]) continue;
      std::string key = c.text(i);
      if (is_missing_token(key, t.options.missing_tokens)) continue;
      if (!std::binary_search(shared.begin(), shared.end(), hash(key))) continue;
      if (!seen.insert(std::move(key)).second) repeats.push_back(first + i);
    }
  }
  return repeats;
}

Table H5TableBlocks::read(std::size_t first, std::size_t count,
                          std::span<const std::uint64_t> repeats, IngestStats* stats,
                          std::vector<RejectedRow>* rejected) const {
  const Impl& t = *impl_;
  if (first > t.n || count > t.n - first)
    throw Error(t.path + ": rows " + std::to_string(first) + ".." + std::to_string(first + count) +
                " pass the end of " + t.group + " (" + std::to_string(t.n) + " rows)");
  const Block b = t.check(first, count, UniqueRule{nullptr, repeats, true});
  Table table = t.build(b);
  if (stats != nullptr) {
    stats->rows_read += static_cast<std::int64_t>(count);
    stats->rows_accepted += static_cast<std::int64_t>(table.rows);
    stats->rows_quarantined += static_cast<std::int64_t>(b.bad.size());
  }
  if (rejected != nullptr) rejected->insert(rejected->end(), b.bad.begin(), b.bad.end());
  return table;
}

std::vector<std::uint64_t> repeats_or_first_error(const H5TableBlocks& source,
                                                  std::size_t block_rows, bool fail) {
  const std::size_t n = source.rows();
  std::uint64_t first_bad = n;
  std::vector<std::uint64_t> repeats =
      source.repeated_rows(block_rows, fail ? &first_bad : nullptr);
  if (fail && (first_bad < n || !repeats.empty())) {
    const std::uint64_t row = repeats.empty() ? first_bad : std::min(first_bad, repeats.front());
    (void)source.read(static_cast<std::size_t>(row), 1, repeats);  // throws that row's error
  }
  return repeats;
}

Table read_table_h5(const std::string& path, const std::string& group, const CsvOptions& options,
                    IngestStats* stats) {
  const auto t0 = std::chrono::steady_clock::now();
  const H5TableBlocks source(path, group, options);
  const H5TableBlocks::Impl& t = *source.impl_;
  std::unordered_set<std::string_view> seen;
  Block b = t.check(0, t.n, UniqueRule{&seen, {}, true});
  Table table = t.build(b);
  if (options.on_error != ErrorPolicy::fail && !options.quarantine_path.empty()) {
    std::stable_sort(b.bad.begin(), b.bad.end(),
                     [](const BadRow& x, const BadRow& y) { return x.line < y.line; });
    write_quarantine(options.quarantine_path, b.bad);
  }
  if (stats != nullptr) {
    stats->rows_read = static_cast<std::int64_t>(t.n);
    stats->rows_accepted = static_cast<std::int64_t>(table.rows);
    stats->rows_quarantined = static_cast<std::int64_t>(b.bad.size());
    std::error_code ec;
    const auto bytes = std::filesystem::file_size(path, ec);
    stats->bytes = ec ? 0 : static_cast<std::int64_t>(bytes);
    stats->seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  return table;
}

void write_table_h5(h5::Writer& w, const std::string& group, const Table& table) {
  w.group(group);
  for (const auto& col : table.columns) {
    if (col.name.empty() || col.name.find('/') != std::string::npos || col.name == "." ||
        col.name == kSourceLineDataset)
      throw Error(w.path() + ": column '" + col.name +
                  "' cannot be an HDF5 dataset name (empty, '/', '.' or reserved)");
    const std::string obj = join(group, col.name);
    switch (col.type) {
      case ColumnType::numeric:
        w.write(obj, std::span<const double>(col.numeric));
        break;
      case ColumnType::categorical: {
        std::vector<std::string> v;
        v.reserve(col.codes.size());
        for (const auto c : col.codes)
          v.push_back(c < 0 ? std::string() : col.levels[static_cast<std::size_t>(c)]);
        w.write_strings(obj, v);
        break;
      }
      case ColumnType::text:
        w.write_strings(obj, col.text);
        break;
    }
  }
  w.write(join(group, kSourceLineDataset), std::span<const std::int64_t>(table.source_line));
  w.attr(group, "source", table.source);
  w.attr(group, "rows", static_cast<std::int64_t>(table.rows));
}

}  // namespace icp
