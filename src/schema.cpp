// Schema inference from a sample. The sample is read as raw text through the CSV reader (so
// quoting, line endings and BOMs behave exactly as in a run), then each column is profiled.
#include "icp/schema.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <sstream>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

#include "icp/error.hpp"

namespace icp {

namespace {

/// A string column is a free-text column (names, ids, urls), not a categorical one, when more
/// than this share of its present values are distinct: one-hot over such a column is noise.
constexpr double kTextDistinctShare = 0.5;

/// Sample skewness above this (a long right tail, e.g. revenue or headcount) suggests log1p; 1
/// is the usual "highly skewed" threshold.
constexpr double kSkewForLog1p = 1.0;

/// Columns missing in more than this share of the sample are profiled but not proposed as
/// features: imputing most of a column invents a signal.
constexpr double kMaxMissingShareForFeature = 0.9;

/// A column is numeric when at least this share of its present cells parse: exports carry a
/// little spreadsheet debris ("#######", dates pasted into a money column), which the run then
/// quarantines, while a real text column fails far more often.
constexpr double kMinNumericShare = 0.99;

/// Categoricals with more levels than this (cities, dates, free text) are profiled but not
/// proposed: a capped one-hot would pool nearly every row into "other".
constexpr std::int64_t kMaxProposedLevels = 100;

std::string toml_string(std::string_view s) {
  std::string out = "\"";
  for (const char ch : s) {
    const auto u = static_cast<unsigned char>(ch);
    if (ch == '"' || ch == '\\') {
      out += '\\';
      out += ch;
    } else if (u < 0x20 || u == 0x7F) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04X", static_cast<unsigned>(u));
      out += buf;
    } else {
      out += ch;
    }
  }
  return out + "\"";
}

/// A TOML comment must stay on one line and be valid UTF-8-ish text: control bytes are dropped.
std::string comment_text(std::string_view s) {
  std::string out;
  for (const char ch : s)
    if (static_cast<unsigned char>(ch) >= 0x20 && ch != 0x7F) out += ch;
  return out;
}

std::string number(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", x);
  return buf;
}

bool ends_with_id(std::string name) {
  std::transform(name.begin(), name.end(), name.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  auto ends = [&](std::string_view suffix) {
    return name.size() >= suffix.size() &&
           name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  return ends("id") || ends("permalink") || ends("key");
}

ColumnProfile profile(const Column& col, const SchemaOptions& options) {
  ColumnProfile p;
  p.name = col.name;
  std::unordered_set<std::string_view> distinct;
  std::vector<double> nums;
  std::int64_t not_numbers = 0;
  bool integers = true;
  for (const auto& cell : col.text) {
    if (is_missing_token(cell, options.missing_tokens)) {
      ++p.missing;
      continue;
    }
    ++p.present;
    distinct.insert(cell);
    double x = 0.0;
    if (parse_numeric_cell(cell, x) != nullptr) {
      if (not_numbers++ == 0) p.first_bad = cell;
      continue;
    }
    if (x != std::floor(x)) integers = false;
    nums.push_back(x);
  }
  p.distinct = static_cast<std::int64_t>(distinct.size());
  const bool all_distinct = p.present >= 2 && p.distinct == p.present;
  const bool numeric = p.present > 0 && static_cast<double>(nums.size()) >=
                                            kMinNumericShare * static_cast<double>(p.present);
  if (numeric) {
    p.type = ColumnType::numeric;
    p.not_numbers = not_numbers;
    p.id_candidate = all_distinct && p.missing == 0 && integers;
    const auto n = static_cast<double>(nums.size());
    double sum = 0.0;
    p.min = std::numeric_limits<double>::infinity();
    p.max = -p.min;
    for (const double x : nums) {
      sum += x;
      p.min = std::min(p.min, x);
      p.max = std::max(p.max, x);
    }
    const double mean = sum / n;
    double m2 = 0.0;
    double m3 = 0.0;
    for (const double x : nums) {
      const double d = x - mean;
      m2 += d * d;
      m3 += d * d * d;
    }
    m2 /= n;
    m3 /= n;
    p.skewness = m2 > 0.0 ? m3 / std::pow(m2, 1.5) : 0.0;
    auto mid = nums.begin() + static_cast<std::ptrdiff_t>(nums.size() / 2);
    std::nth_element(nums.begin(), mid, nums.end());
    p.median = *mid;
    p.log1p = p.min >= 0.0 && p.skewness > kSkewForLog1p;
  } else {
    p.id_candidate = all_distinct && p.missing == 0;
    p.type = static_cast<double>(p.distinct) > kTextDistinctShare * static_cast<double>(p.present)
                 ? ColumnType::text
                 : ColumnType::categorical;
  }
  return p;
}

double share(std::int64_t part, std::int64_t whole) {
  return whole > 0 ? 100.0 * static_cast<double>(part) / static_cast<double>(whole) : 0.0;
}

bool is_feature(const ColumnProfile& c, const std::string& id_column) {
  if (c.name == id_column || c.id_candidate || c.type == ColumnType::text) return false;
  if (c.distinct < 2) return false;
  if (c.type == ColumnType::categorical && c.distinct > kMaxProposedLevels) return false;
  return static_cast<double>(c.missing) <=
         kMaxMissingShareForFeature * static_cast<double>(c.present + c.missing);
}

}  // namespace

Schema infer_schema(const std::string& path, const SchemaOptions& options) {
  Schema s;
  s.path = path;
  s.delimiter = options.delimiter;
  const std::vector<std::string> header = read_csv_header(path, options.delimiter);
  CsvOptions csv;
  csv.delimiter = options.delimiter;
  csv.encoding = options.encoding;
  // Raw text: missing tokens are judged here, per column, so nothing is folded away.
  csv.missing_tokens.clear();
  csv.on_error = ErrorPolicy::quarantine;
  csv.max_rows = options.sample_rows;
  std::unordered_set<std::string> requested;
  for (const auto& name : header) {
    if (!requested.insert(name).second) continue;  // a repeated header name: the first wins
    ColumnRequest r;
    r.name = name;
    r.type = ColumnType::text;
    csv.columns.push_back(r);
  }
  IngestStats stats;
  Table sample = read_csv(path, csv, &stats);
  s.encoding = options.encoding;
  if (stats.rows_quarantined > 0 && csv.encoding == TextEncoding::utf8) {
    // Rows can be rejected for their field count or for bytes that are not UTF-8; Latin-1
    // accepts any byte, so fewer rejections that way mean a Latin-1 file.
    csv.encoding = TextEncoding::latin1;
    IngestStats latin;
    Table again = read_csv(path, csv, &latin);
    if (latin.rows_quarantined < stats.rows_quarantined) {
      sample = std::move(again);
      stats = latin;
      s.encoding = TextEncoding::latin1;
    }
  }
  s.rows_sampled = stats.rows_read;
  for (const auto& col : sample.columns) s.columns.push_back(profile(col, options));
  for (const auto& c : s.columns)
    if (c.id_candidate && ends_with_id(c.name)) {
      s.id_column = c.name;
      break;
    }
  if (s.id_column.empty())
    for (const auto& c : s.columns)
      if (c.id_candidate && c.type != ColumnType::numeric) {
        s.id_column = c.name;
        break;
      }
  return s;
}

std::vector<ColumnRequest> schema_requests(const Schema& schema) {
  std::vector<ColumnRequest> out;
  for (const auto& c : schema.columns) {
    ColumnRequest r;
    r.name = c.name;
    r.type = c.name == schema.id_column ? ColumnType::text : c.type;
    out.push_back(r);
  }
  return out;
}

std::string schema_job_toml(const Schema& s, const SchemaOptions& options) {
  std::ostringstream o;
  namespace fs = std::filesystem;
  const std::string abs = fs::absolute(s.path).lexically_normal().string();
  o << "# Starting job file written by `icp schema` from the first " << s.rows_sampled
    << " records of\n# " << comment_text(abs) << "\n"
    << "# Review every choice below, then set seeds.rule (which accounts are your best "
       "customers).\n\n";
  o << "[input]\npath = " << toml_string(abs) << "\n";
  o << "id_column = " << toml_string(s.id_column) << "\n";
  if (s.encoding != TextEncoding::utf8)
    o << "encoding = " << toml_string(to_string(s.encoding))
      << "                  # the sample has bytes that are not UTF-8\n";
  o << "delimiter = " << toml_string(s.delimiter == '\t' ? "\\t" : std::string(1, s.delimiter))
    << "\n";
  o << "on_error = \"quarantine\"          # fail | quarantine\n";
  o << "quarantine_path = \"quarantine.csv\"\n\n";

  o << "# Columns (type, missing share, distinct values in the sample):\n";
  for (const auto& c : s.columns) {
    const char* type = c.type == ColumnType::numeric       ? "numeric"
                       : c.type == ColumnType::categorical ? "categorical"
                                                           : "text";
    char pct[32];
    std::snprintf(pct, sizeof pct, "%.1f", share(c.missing, c.present + c.missing));
    o << "#   " << comment_text(c.name) << ": " << type << ", " << pct << "% missing, "
      << c.distinct << " distinct";
    if (c.type == ColumnType::numeric)
      o << ", min " << number(c.min) << ", median " << number(c.median) << ", max " << number(c.max)
        << ", skewness " << number(c.skewness);
    if (c.not_numbers > 0)
      o << ", " << c.not_numbers << " cells not numbers (e.g. '"
        << comment_text(c.first_bad.substr(0, 20)) << "': rejected rows)";
    if (c.id_candidate) o << " (id candidate)";
    if (c.name == s.id_column)
      o << " -> input.id_column";
    else if (!is_feature(c, s.id_column))
      o << " -> not a feature";
    o << "\n";
  }

  std::string example_rule;
  for (const auto& c : s.columns) {
    if (!is_feature(c, s.id_column) || c.type != ColumnType::numeric) continue;
    o << "\n[[features.numeric]]\ncolumn = " << toml_string(c.name) << "\n";
    if (c.log1p)
      o << "transform = \"log1p\"               # skewness " << number(c.skewness) << "\n"
        << "scaling = \"robust\"\n";
    else
      o << "transform = \"none\"\nscaling = \"zscore\"\n";
    o << "weight = 1.0\n";
    // The seed rule is the user's to write; the first numeric feature at its median shows the form.
    if (example_rule.empty()) example_rule = c.name + " >= " + number(c.median);
  }
  for (const auto& c : s.columns) {
    if (!is_feature(c, s.id_column) || c.type != ColumnType::categorical) continue;
    {
      const std::int64_t cap = std::min<std::int64_t>(c.distinct, options.max_levels);
      o << "\n[[features.categorical]]\ncolumn = " << toml_string(c.name)
        << "\nmax_levels = " << cap << "   # of " << c.distinct
        << " levels; the rest pooled as \"other\"\n"
        << "weight = 1.0\n";
    }
  }
  if (example_rule.empty()) example_rule = "<column> == <value>";

  o << "\n[missing]\nnumeric = \"median\"               # median | mean | zero\n"
    << "categorical = \"mode\"              # mode | level\nflag = true\nflag_weight = 0.5\n";
  o << "\n[seeds]\n# Required: set the rule (clauses joined by `and`, e.g. status in (\"a\", "
       "\"b\")).\n# The columns of the rule should not also be features.\n"
    << "# rule = " << toml_string(example_rule) << "\n# negative_rule = \"\"\nmin_count = 10\n";
  o << "\n[kmeans]\nk = 8\n";
  o << "\n[output]\npath = \"results.h5\"\n";
  return o.str();
}

}  // namespace icp
