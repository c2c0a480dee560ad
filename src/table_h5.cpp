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

Stored load(const h5::Reader& rd, const std::string& path, const std::string& group,
            const std::string& name, bool want_strings) {
  Stored s;
  s.name = name;
  s.object = join(group, name);
  const std::string place = path + ": " + s.object;
  if (!rd.is_dataset(s.object)) throw InputError(place, 0, "", 0, name, "missing column in group");
  if (rd.dims(s.object).size() != 1)
    throw InputError(place, 0, "", 0, name, "expected a 1-D dataset");
  // The Reader converts only losslessly and says so by throwing, so the dataset's class is found
  // by trying the conversions from the most to the least common layout.
  std::string why;
  if (!want_strings) {
    try {
      s.num = rd.read<double>(s.object);
      return s;
    } catch (const Error& e) {
      why = e.what();
    }
  }
  try {
    s.ints = rd.read<std::int64_t>(s.object);
    s.is_integer = true;
    return s;
  } catch (const Error& e) {
    if (why.empty()) why = e.what();
  }
  try {
    s.str = rd.read_strings(s.object);
    s.is_string = true;
    return s;
  } catch (const Error&) {
  }
  throw InputError(place, 0, "", 0, truncate_text(why),
                   want_strings ? "expected a string or integer dataset"
                                : "expected a numeric or string dataset");
}

struct BadRow {
  std::int64_t line = 0;
  std::string message;  ///< quarantine reason
  std::string record;
};

void write_quarantine(const std::string& path, const std::vector<BadRow>& rows) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) throw Error(path + ": cannot write quarantine file");
    f << "line,reason,record\n";
    for (const BadRow& b : rows)
      f << b.line << ',' << csv_field(b.message) << ',' << csv_field(b.record) << '\n';
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

}  // namespace

Table read_table_h5(const std::string& path, const std::string& group, const CsvOptions& options,
                    IngestStats* stats) {
  const auto t0 = std::chrono::steady_clock::now();
  const h5::Reader rd(path);
  if (!rd.is_group(group)) throw InputError(path + ": " + group, 0, "", 0, group, "no such group");

  const std::size_t nreq = options.columns.size();
  std::vector<Stored> cols;
  cols.reserve(nreq + 1);
  for (const auto& req : options.columns)
    cols.push_back(load(rd, path, group, req.name, req.type != ColumnType::numeric));
  std::optional<std::size_t> unique;
  if (!options.unique_column.empty()) {
    for (std::size_t k = 0; k < nreq; ++k)
      if (options.columns[k].name == options.unique_column) unique = k;
    if (!unique) {
      cols.push_back(load(rd, path, group, options.unique_column, true));
      unique = nreq;
    }
  }

  std::size_t n = 0;
  const std::string source_obj = join(group, kSourceLineDataset);
  std::vector<std::int64_t> source_line;
  if (rd.is_dataset(source_obj)) source_line = rd.read<std::int64_t>(source_obj);
  if (!cols.empty())
    n = cols.front().size();
  else if (!source_line.empty())
    n = source_line.size();
  for (const auto& c : cols)
    if (c.size() != n)
      throw InputError(path + ": " + c.object, 0, "", 0, std::to_string(c.size()),
                       "column length differs from '" + cols.front().name + "' (" +
                           std::to_string(n) + " rows)");
  if (!source_line.empty() && source_line.size() != n)
    throw InputError(path + ": " + source_obj, 0, "", 0, std::to_string(source_line.size()),
                     "length differs from the columns (" + std::to_string(n) + " rows)");
  auto line_of = [&](std::size_t i) {
    return source_line.empty() ? static_cast<std::int64_t>(i) + 1 : source_line[i];
  };

  const bool fail_fast = options.on_error == ErrorPolicy::fail;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  std::vector<std::vector<double>> nums(nreq);
  for (std::size_t k = 0; k < nreq; ++k)
    if (options.columns[k].type == ColumnType::numeric) nums[k].assign(n, nan);
  std::vector<std::uint8_t> keep(n, 0);
  std::vector<BadRow> bad;
  std::unordered_set<std::string_view> seen;
  std::vector<std::string> keys;  // owns the unique values of integer-stored id columns
  if (unique && !cols[*unique].is_string) keys.resize(n);

  auto record_of = [&](std::size_t i) {
    std::string r;
    for (std::size_t k = 0; k < cols.size(); ++k) {
      if (k > 0) r.push_back(',');
      r += csv_field(cols[k].text(i));
    }
    return r;
  };
  auto reject = [&](std::size_t i, const Stored& c, const std::string& value, const char* why) {
    if (fail_fast)
      throw InputError(path + ": " + c.object + ": row " + std::to_string(i + 1), 0, "", 0,
                       truncate_text(value), why);
    BadRow b;
    b.line = line_of(i);
    b.message = "column '" + c.name + "': " + why + ": '" + truncate_text(value) + "'";
    b.record = record_of(i);
    bad.push_back(std::move(b));
  };

  for (std::size_t i = 0; i < n; ++i) {
    bool ok = true;
    for (std::size_t k = 0; k < nreq && ok; ++k) {
      if (options.columns[k].type != ColumnType::numeric) continue;
      const Stored& c = cols[k];
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
        nums[k][i] = x;
      }
    }
    if (!ok) continue;
    if (unique) {
      const Stored& c = cols[*unique];
      std::string_view key;
      if (c.is_string) {
        key = c.str[i];
      } else {
        keys[i] = c.text(i);
        key = keys[i];
      }
      if (!is_missing_token(key, options.missing_tokens) && !seen.insert(key).second) {
        reject(i, c, std::string(key), "duplicate value");
        continue;
      }
    }
    keep[i] = 1;
  }

  Table table;
  table.source = path;
  std::size_t kept = 0;
  for (const auto k : keep) kept += k;
  table.rows = kept;
  table.source_line.reserve(kept);
  for (std::size_t i = 0; i < n; ++i)
    if (keep[i]) table.source_line.push_back(line_of(i));
  for (std::size_t k = 0; k < nreq; ++k) {
    Column col;
    col.name = options.columns[k].name;
    col.type = options.columns[k].type;
    const Stored& c = cols[k];
    switch (col.type) {
      case ColumnType::numeric:
        col.numeric.reserve(kept);
        for (std::size_t i = 0; i < n; ++i)
          if (keep[i]) col.numeric.push_back(nums[k][i]);
        break;
      case ColumnType::categorical: {
        // Codes in order of first appearance among kept rows, as the CSV reader assigns them.
        col.codes.reserve(kept);
        std::unordered_map<std::string, std::int32_t> index;
        for (std::size_t i = 0; i < n; ++i) {
          if (!keep[i]) continue;
          std::string v = c.text(i);
          if (is_missing_token(v, options.missing_tokens)) {
            col.codes.push_back(-1);
            continue;
          }
          auto [it, inserted] = index.try_emplace(v, static_cast<std::int32_t>(col.levels.size()));
          if (inserted) col.levels.push_back(std::move(v));
          col.codes.push_back(it->second);
        }
        break;
      }
      case ColumnType::text:
        col.text.reserve(kept);
        for (std::size_t i = 0; i < n; ++i) {
          if (!keep[i]) continue;
          std::string v = c.text(i);
          if (is_missing_token(v, options.missing_tokens)) v.clear();
          col.text.push_back(std::move(v));
        }
        break;
    }
    table.columns.push_back(std::move(col));
  }

  if (!fail_fast && !options.quarantine_path.empty()) {
    std::stable_sort(bad.begin(), bad.end(),
                     [](const BadRow& a, const BadRow& b) { return a.line < b.line; });
    write_quarantine(options.quarantine_path, bad);
  }
  if (stats != nullptr) {
    stats->rows_read = static_cast<std::int64_t>(n);
    stats->rows_accepted = static_cast<std::int64_t>(kept);
    stats->rows_quarantined = static_cast<std::int64_t>(bad.size());
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
