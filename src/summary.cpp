#include "icp/summary.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "icp/error.hpp"
#include "icp/parallel.hpp"
#include "value_order.hpp"

namespace icp {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

/// Pseudo-count of the rank's smoothing: a segment needs about this many accounts before its own
/// seed rate outweighs the base rate, so tiny segments with one lucky seed do not rank first.
constexpr double kRankPrior = 20.0;
/// A level counts as characteristic of a segment when it is at least 20% over-represented.
constexpr double kDistinctiveLift = 1.2;
/// ... and held by at least a tenth of the segment: a rare level, however over-represented, does
/// not describe the typical account.
constexpr double kMinDescribedShare = 0.1;
/// Levels named per categorical column and "high/low" columns named per description: more makes
/// the line a list rather than a profile.
constexpr std::size_t kMaxDescribedLevels = 2;
constexpr std::size_t kMaxExtremeColumns = 2;
/// A segment median at least half an overall IQR from the overall median is called "high"/"low":
/// the segment's typical account then sits clearly away from the population's middle half.
constexpr double kNotableDeviation = 0.5;
/// Descriptions must fit a table cell or a CRM field; lower-priority pieces are dropped to fit.
constexpr std::size_t kMaxDescriptionChars = 160;

constexpr std::size_t kNoRow = std::numeric_limits<std::size_t>::max();

[[noreturn]] void fail(const std::string& message) {
  throw Error("summarize_segments: " + message);
}

struct NumericStats {
  double median = kNaN;
  double q1 = kNaN;
  double q3 = kNaN;
  double mean = kNaN;
  double total = 0.0;
  std::int64_t missing = 0;
};

/// Quartiles from the order statistics at each quartile's two places (`v`: lo, hi per quartile);
/// a whole h takes its order statistic as it is.
void set_quartiles(NumericStats& s, const QuantilePlaces* at, const std::vector<double>& v) {
  double q[3];
  for (std::size_t j = 0; j < 3; ++j)
    q[j] = at[j].frac == 0.0 ? v[2 * j] : quantile_between(at[j], v[2 * j], v[2 * j + 1]);
  s.q1 = q[0];
  s.median = q[1];
  s.q3 = q[2];
}

/// Rows are either a segment's bucket (ascending row indices) or, with rows == nullptr, all rows.
NumericStats numeric_stats(const Column& column, const std::size_t* rows, std::size_t count) {
  std::vector<double> values;
  values.reserve(count);
  double total = 0.0;  // summed in row order, so the same bits at any thread count
  for (std::size_t i = 0; i < count; ++i) {
    const double x = column.numeric[rows ? rows[i] : i];
    if (std::isnan(x)) continue;
    values.push_back(x);
    total += x;
  }
  NumericStats s;
  s.total = total;
  s.missing = static_cast<std::int64_t>(count - values.size());
  if (values.empty()) return s;
  s.mean = total / static_cast<double>(values.size());
  // Type-7 quantiles (numpy's default); a whole h takes its order statistic as it is.
  const QuantilePlaces at[3] = {quantile_places(values.size(), 0.25),
                                quantile_places(values.size(), 0.5),
                                quantile_places(values.size(), 0.75)};
  const std::size_t wanted[] = {at[0].lo, at[0].hi, at[1].lo, at[1].hi, at[2].lo, at[2].hi};
  set_quartiles(s, at, order_statistics(values, wanted));
  return s;
}

/// Level counts of a segment's rows; the last slot counts missing cells.
std::vector<std::int64_t> level_counts(const Column& column, const std::size_t* rows,
                                       std::size_t count, const Table& table) {
  const std::size_t levels = column.levels.size();
  std::vector<std::int64_t> counts(levels + 1, 0);
  for (std::size_t i = 0; i < count; ++i) {
    const std::int32_t code = column.codes[rows[i]];
    if (code < 0) {
      ++counts[levels];
    } else if (static_cast<std::size_t>(code) >= levels) {
      fail(fmt::format("column '{}' of {} has code {} at row {} but only {} levels", column.name,
                       table.source, code, rows[i], levels));
    } else {
      ++counts[static_cast<std::size_t>(code)];
    }
  }
  return counts;
}

const Column& resolve(const Table& table, const std::string& name, ColumnType type,
                      const char* role) {
  const Column* column = table.find(name);
  if (!column) fail(fmt::format("{} column '{}' is not in the table {}", role, name, table.source));
  if (column->type != type) {
    fail(fmt::format("{} column '{}' is not {}", role, name,
                     type == ColumnType::numeric ? "numeric" : "categorical"));
  }
  if (column->size() != table.rows) {
    fail(fmt::format("column '{}' has {} cells but the table has {} rows", name, column->size(),
                     table.rows));
  }
  return *column;
}

std::string row_place(const Table& table, std::size_t row) {
  if (table.source_line.size() == table.rows && !table.source.empty()) {
    return fmt::format("row {} ({}:{})", row, table.source, table.source_line[row]);
  }
  return fmt::format("row {}", row);
}

// ----------------------------------------------------------------------------------------------
// Description text.

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

bool is_money(const std::string& name) {
  const std::string n = lower(name);
  for (const char* word : {"revenue", "acv", "funding", "usd", "value"}) {
    if (n.find(word) != std::string::npos) return true;
  }
  return false;
}

bool is_year(const std::string& name) { return lower(name).find("year") != std::string::npos; }

/// "2008–2016", or "2012" when both ends round to the same year.
std::string format_years(double lo, double hi) {
  const auto a = static_cast<long long>(std::llround(lo));
  const auto b = static_cast<long long>(std::llround(hi));
  return a == b ? fmt::format("{}", a) : fmt::format("{}\u2013{}", a, b);
}

/// "_30d", "_12w", "_3m", "_1y", "_24h": a time window, implied by context in prose.
bool is_window_token(std::string_view token) {
  if (token.size() < 2) return false;
  const char unit = token.back();
  if (unit != 'd' && unit != 'w' && unit != 'm' && unit != 'y' && unit != 'h') return false;
  return std::all_of(token.begin(), token.end() - 1, [](char c) { return c >= '0' && c <= '9'; });
}

/// "product_signups_30d" -> "product signups"; "revenue_usd" -> "revenue" (shown with "$").
std::string humanize(const std::string& name) {
  std::vector<std::string> tokens;
  std::size_t start = 0;
  while (start <= name.size()) {
    const std::size_t end = std::min(name.find('_', start), name.size());
    if (end > start) tokens.push_back(name.substr(start, end - start));
    start = end + 1;
  }
  while (tokens.size() > 1 &&
         (is_window_token(lower(tokens.back())) || lower(tokens.back()) == "usd")) {
    tokens.pop_back();
  }
  std::string out;
  for (const auto& t : tokens) {
    if (!out.empty()) out += ' ';
    out += t;
  }
  return out.empty() ? name : out;
}

struct Amount {
  bool negative = false;
  std::string digits;  ///< magnitude in units of `suffix`, 2 significant digits
  std::string suffix;  ///< "", "K", "M" or "B"
};

double pow10(int e) {
  return std::pow(10.0, static_cast<double>(e));
}

/// |x| rounded to 2 significant digits, then scaled to K/M/B. The rounded value is built as an
/// integer mantissa (10..99) divided or multiplied by an exact power of ten, so the shortest
/// decimal form prints cleanly ("1.2", not "1.2000000000000002").
Amount human_amount(double x) {
  Amount a;
  if (x == 0.0 || !std::isfinite(x)) {
    a.digits = std::isfinite(x) ? "0" : "?";
    return a;
  }
  a.negative = x < 0.0;
  const double magnitude = std::fabs(x);
  int e = static_cast<int>(std::floor(std::log10(magnitude)));
  double mantissa = std::round(e - 1 >= 0 ? magnitude / pow10(e - 1) : magnitude * pow10(1 - e));
  if (mantissa >= 100.0) {  // 99.5 rounds up into the next decade
    mantissa = 10.0;
    ++e;
  }
  int power = 0;
  if (e >= 9) {
    power = 9;
    a.suffix = "B";
  } else if (e >= 6) {
    power = 6;
    a.suffix = "M";
  } else if (e >= 3) {
    power = 3;
    a.suffix = "K";
  }
  const int shift = e - 1 - power;
  const double shown = shift >= 0 ? mantissa * pow10(shift) : mantissa / pow10(-shift);
  a.digits = fmt::format("{}", shown);
  return a;
}

/// "50–200", "$5–20M", "$500K–$2M", "$5M" (when both ends round alike).
std::string format_range(double lo, double hi, bool money) {
  const Amount a = human_amount(lo);
  const Amount b = human_amount(hi);
  const std::string currency = money ? "$" : "";
  auto full = [&](const Amount& x) {
    return (x.negative ? "-" : "") + currency + x.digits + x.suffix;
  };
  if (a.negative == b.negative && a.digits == b.digits && a.suffix == b.suffix) return full(a);
  if (!a.negative && !b.negative && a.suffix == b.suffix) {
    return currency + a.digits + "\u2013" + b.digits + b.suffix;
  }
  return full(a) + "\u2013" + full(b);
}

std::size_t utf8_length(const std::string& s) {
  return static_cast<std::size_t>(
      std::count_if(s.begin(), s.end(), [](char c) { return (c & 0xC0) != 0x80; }));
}

struct Piece {
  std::string text;
  int position = 0;  ///< where it reads in the line
  int priority = 0;  ///< lower survives the length limit first
};

/// Everything the description needs about one numeric column overall.
struct OverallNumeric {
  double median = kNaN;
  double iqr = kNaN;
};

/// Levels of one segment with a known count, by share (ties: lower code).
struct RankedLevels {
  std::vector<std::size_t> codes;
  std::vector<double> share;
  std::vector<double> lift;
};

std::string describe(const SegmentSummary& seg, const std::vector<const Column*>& numeric_columns,
                     const std::vector<OverallNumeric>& overall,
                     const std::vector<const Column*>& categorical_columns,
                     const std::vector<RankedLevels>& ranked) {
  if (seg.size == 0) return "empty segment";
  std::vector<Piece> pieces;

  // Categorical: the over-represented levels, else the most common one (said as such).
  for (std::size_t c = 0; c < categorical_columns.size(); ++c) {
    const RankedLevels& r = ranked[c];
    const Column& column = *categorical_columns[c];
    std::vector<std::string> names;
    for (std::size_t i = 0; i < r.codes.size() && names.size() < kMaxDescribedLevels; ++i) {
      if (r.share[i] >= kMinDescribedShare && r.lift[i] >= kDistinctiveLift) {
        names.push_back(column.levels[r.codes[i]]);
      }
    }
    std::string text;
    if (!names.empty()) {
      text = names[0];
      if (names.size() > 1) text += " and " + names[1];
    } else if (!r.codes.empty()) {
      text = (r.share[0] >= 0.5 ? "mostly " : "often ") + column.levels[r.codes[0]];
    } else {
      continue;
    }
    Piece p;
    p.text = std::move(text);
    // The first categorical column leads the line (usually industry); the rest follow the ranges.
    p.position = c == 0 ? 0 : 2000 + static_cast<int>(c);
    p.priority = c == 0 ? 0 : 2000 + static_cast<int>(c);
    pieces.push_back(std::move(p));
  }

  // Numeric: the columns whose segment median sits furthest from the overall median, in overall
  // IQR units, are called "high"/"low"; the others are shown as their segment IQR.
  struct Deviation {
    std::size_t column;
    double distance;
    bool high;
  };
  std::vector<Deviation> deviations;
  for (std::size_t j = 0; j < numeric_columns.size(); ++j) {
    const double med = seg.numeric[j].median;
    if (std::isnan(med) || std::isnan(overall[j].median)) continue;
    const double d = med - overall[j].median;
    // A zero IQR means most accounts share one value (often 0): any other median stands out.
    const double distance =
        overall[j].iqr > 0.0 ? std::fabs(d) / overall[j].iqr : (d != 0.0 ? kInf : 0.0);
    if (distance >= kNotableDeviation) deviations.push_back({j, distance, d > 0.0});
  }
  std::stable_sort(deviations.begin(), deviations.end(),
                   [](const Deviation& a, const Deviation& b) { return a.distance > b.distance; });
  if (deviations.size() > kMaxExtremeColumns) deviations.resize(kMaxExtremeColumns);
  std::vector<bool> extreme(numeric_columns.size(), false);
  for (std::size_t i = 0; i < deviations.size(); ++i) {
    const Deviation& d = deviations[i];
    extreme[d.column] = true;
    Piece p;
    const std::string& col = numeric_columns[d.column]->name;
    // "high founded year" reads oddly: a calendar year is late or early, not high or low.
    if (is_year(col))
      p.text = (d.high ? "late " : "early ") + humanize(col);
    else
      p.text = (d.high ? "high " : "low ") + humanize(col);
    p.position = 3000 + static_cast<int>(i);
    p.priority = 1 + static_cast<int>(i);
    pieces.push_back(std::move(p));
  }
  for (std::size_t j = 0; j < numeric_columns.size(); ++j) {
    const NumericProfile& prof = seg.numeric[j];
    if (extreme[j] || std::isnan(prof.q1) || std::isnan(prof.q3)) continue;
    const std::string& name = numeric_columns[j]->name;
    Piece p;
    // Years are labels, not amounts: "founded year 2008–2016", never "2K founded year".
    if (is_year(name))
      p.text = humanize(name) + " " + format_years(prof.q1, prof.q3);
    else
      p.text = format_range(prof.q1, prof.q3, is_money(name)) + " " + humanize(name);
    p.position = 1000 + static_cast<int>(j);
    p.priority = 1000 + static_cast<int>(j);
    pieces.push_back(std::move(p));
  }

  if (pieces.empty()) return fmt::format("{} accounts", seg.size);

  // Keep pieces by priority while the line fits, then read them in position order.
  std::stable_sort(pieces.begin(), pieces.end(),
                   [](const Piece& a, const Piece& b) { return a.priority < b.priority; });
  std::vector<Piece> kept;
  std::size_t length = 0;
  for (auto& p : pieces) {
    const std::size_t extra = utf8_length(p.text) + (kept.empty() ? 0 : 2);
    if (length + extra > kMaxDescriptionChars) continue;
    length += extra;
    kept.push_back(std::move(p));
  }
  std::stable_sort(kept.begin(), kept.end(),
                   [](const Piece& a, const Piece& b) { return a.position < b.position; });
  std::string line;
  for (const auto& p : kept) {
    if (!line.empty()) line += ", ";
    line += p.text;
  }
  return line;
}

double ratio(double num, double den) {
  return den > 0.0 ? num / den : 0.0;
}

/// (a / b) / (c / d) as one division of exact products (exact below 2^53), so that a lift which
/// is exactly 1.5 on paper is 1.5 here and thresholds compare as a person checking by hand would.
double lift_of(std::int64_t a, std::int64_t b, std::int64_t c, std::int64_t d) {
  return ratio(static_cast<double>(a) * static_cast<double>(d),
               static_cast<double>(b) * static_cast<double>(c));
}

/// What the passes over the rows give the assembly: per-segment counts, the numeric statistics
/// per (column, segment) and overall, and the level counts per (column, segment) (the last slot
/// counts missing cells).
struct Tallies {
  std::vector<std::int64_t> size, seeds, negatives;     // k each
  std::vector<NumericStats> numeric_result;             // n_numeric x k
  std::vector<NumericStats> overall_result;             // n_numeric
  std::vector<NumericStats> value_result;               // k, with a value column
  std::vector<std::vector<std::int64_t>> level_result;  // n_categorical x k
};

/// Checks the sizes of the per-row inputs and the options.
void check_inputs(std::size_t n, int k, std::span<const std::int32_t> segment,
                  std::span<const std::uint8_t> is_seed, std::span<const std::uint8_t> is_negative,
                  const SummaryOptions& options) {
  if (k < 1) fail(fmt::format("k must be at least 1, got {}", k));
  if (segment.size() != n) {
    fail(fmt::format("{} segment ids for {} rows", segment.size(), n));
  }
  if (is_seed.size() != n) fail(fmt::format("{} seed flags for {} rows", is_seed.size(), n));
  if (!is_negative.empty() && is_negative.size() != n) {
    fail(fmt::format("{} negative-seed flags for {} rows (pass none or one per row)",
                     is_negative.size(), n));
  }
  if (options.top_levels < 0)
    fail(fmt::format("top_levels must be >= 0, got {}", options.top_levels));
  if (options.min_seeds < 0) fail(fmt::format("min_seeds must be >= 0, got {}", options.min_seeds));
  if (!(options.icp_lift > 0.0) || !std::isfinite(options.icp_lift)) {
    fail(fmt::format("icp_lift must be a positive number, got {}", options.icp_lift));
  }
  if (!(options.negative_lift > 0.0) || !std::isfinite(options.negative_lift)) {
    fail(fmt::format("negative_lift must be a positive number, got {}", options.negative_lift));
  }
}

/// Per-chunk sizes, seeds and negatives per segment, checking every label and flag; `place(i)`
/// names row i in a message. Returns the per-chunk sizes (the in-memory bucketing reads them).
template <class Place>
std::vector<std::int64_t> count_segments(std::span<const std::int32_t> segment, int k,
                                         std::span<const std::uint8_t> is_seed,
                                         std::span<const std::uint8_t> is_negative,
                                         Tallies& tallies, Place&& place) {
  const std::size_t n = segment.size();
  // ---- Pass 1: per-chunk counts per segment (integers, so the combine order cannot matter, but
  // it is fixed anyway), plus the first invalid row of each chunk.
  const auto ks = static_cast<std::size_t>(k);
  const std::size_t chunks = chunk_count(n);
  const bool has_negative = !is_negative.empty();
  std::vector<std::int64_t> chunk_size(chunks * ks, 0);
  std::vector<std::int64_t> chunk_seeds(chunks * ks, 0);
  std::vector<std::int64_t> chunk_negatives(chunks * ks, 0);
  std::vector<std::size_t> chunk_bad(chunks, kNoRow);
#pragma omp parallel for schedule(static)
  for (std::int64_t c = 0; c < static_cast<std::int64_t>(chunks); ++c) {
    const auto cu = static_cast<std::size_t>(c);
    const std::size_t begin = cu * kReduceChunkRows;
    const std::size_t end = std::min(n, begin + kReduceChunkRows);
    std::int64_t* size = &chunk_size[cu * ks];
    std::int64_t* seeds = &chunk_seeds[cu * ks];
    std::int64_t* negatives = &chunk_negatives[cu * ks];
    for (std::size_t i = begin; i < end; ++i) {
      const std::int32_t s = segment[i];
      const std::uint8_t seed = is_seed[i];
      const std::uint8_t negative = has_negative ? is_negative[i] : std::uint8_t{0};
      if (s < 0 || s >= k || seed > 1 || negative > 1) {
        chunk_bad[cu] = i;
        break;
      }
      const auto su = static_cast<std::size_t>(s);
      ++size[su];
      seeds[su] += seed;
      negatives[su] += negative;
    }
  }
  for (std::size_t c = 0; c < chunks; ++c) {
    const std::size_t i = chunk_bad[c];
    if (i == kNoRow) continue;
    if (segment[i] < 0 || segment[i] >= k) {
      fail(fmt::format("segment id {} at {} is out of range [0, {})", segment[i], place(i), k));
    }
    if (is_seed[i] > 1) {
      fail(fmt::format("seed flag {} at {} is not 0 or 1", is_seed[i], place(i)));
    }
    fail(fmt::format("negative-seed flag {} at {} is not 0 or 1", is_negative[i], place(i)));
  }
  std::vector<std::int64_t>& size = tallies.size;
  std::vector<std::int64_t>& seeds = tallies.seeds;
  std::vector<std::int64_t>& negatives = tallies.negatives;
  size.assign(ks, 0);
  seeds.assign(ks, 0);
  negatives.assign(ks, 0);
  for (std::size_t c = 0; c < chunks; ++c) {
    for (std::size_t s = 0; s < ks; ++s) {
      size[s] += chunk_size[c * ks + s];
      seeds[s] += chunk_seeds[c * ks + s];
      negatives[s] += chunk_negatives[c * ks + s];
    }
  }

  return chunk_size;
}

/// Everything after the passes (cheap: k x columns x levels). Columns are read for their names and
/// levels only.
IcpSummary assemble(std::size_t n, std::size_t ks, const Tallies& tallies,
                    const std::vector<const Column*>& numeric_columns,
                    const std::vector<const Column*>& categorical_columns, bool has_value,
                    const SummaryOptions& options) {
  const auto& size = tallies.size;
  const auto& seeds = tallies.seeds;
  const auto& negatives = tallies.negatives;
  const auto& numeric_result = tallies.numeric_result;
  const auto& overall_result = tallies.overall_result;
  const auto& value_result = tallies.value_result;
  const auto& level_result = tallies.level_result;
  const std::size_t n_numeric = numeric_columns.size();
  const std::size_t n_categorical = categorical_columns.size();
  const bool value_column = has_value;
  IcpSummary out;
  out.rows = static_cast<std::int64_t>(n);
  for (std::size_t s = 0; s < ks; ++s) {
    out.seeds += seeds[s];
    out.negatives += negatives[s];
  }
  const auto rows_d = static_cast<double>(n);
  out.base_seed_rate = ratio(static_cast<double>(out.seeds), rows_d);

  std::vector<OverallNumeric> overall(n_numeric);
  for (std::size_t j = 0; j < n_numeric; ++j) {
    overall[j].median = overall_result[j].median;
    overall[j].iqr = overall_result[j].q3 - overall_result[j].q1;
  }
  // Overall level counts are the sums of the per-segment counts.
  std::vector<std::vector<std::int64_t>> overall_levels(n_categorical);
  std::vector<std::int64_t> overall_known(n_categorical, 0);
  for (std::size_t c = 0; c < n_categorical; ++c) {
    const std::size_t levels = categorical_columns[c]->levels.size();
    overall_levels[c].assign(levels, 0);
    for (std::size_t s = 0; s < ks; ++s) {
      for (std::size_t l = 0; l < levels; ++l) overall_levels[c][l] += level_result[c * ks + s][l];
    }
    for (std::size_t l = 0; l < levels; ++l) overall_known[c] += overall_levels[c][l];
  }

  std::vector<double> smoothed(ks);
  out.segments.resize(ks);
  for (std::size_t s = 0; s < ks; ++s) {
    SegmentSummary& seg = out.segments[s];
    seg.segment = static_cast<std::int32_t>(s);
    seg.size = size[s];
    const auto size_d = static_cast<double>(size[s]);
    seg.share = ratio(size_d, rows_d);
    seg.seed_count = seeds[s];
    seg.seed_rate = ratio(static_cast<double>(seeds[s]), size_d);
    seg.lift = lift_of(seeds[s], size[s], out.seeds, out.rows);
    seg.negative_count = negatives[s];
    seg.negative_rate = ratio(static_cast<double>(negatives[s]), size_d);
    smoothed[s] =
        (static_cast<double>(seeds[s]) + kRankPrior * out.base_seed_rate) / (size_d + kRankPrior);
    if (value_column) {
      seg.value_mean = value_result[s].mean;
      seg.value_median = value_result[s].median;
      seg.value_total = value_result[s].total;
    } else {
      seg.value_mean = seg.value_median = seg.value_total = kNaN;
    }

    for (std::size_t j = 0; j < n_numeric; ++j) {
      const NumericStats& st = numeric_result[j * ks + s];
      NumericProfile p;
      p.column = numeric_columns[j]->name;
      p.median = st.median;
      p.q1 = st.q1;
      p.q3 = st.q3;
      p.mean = st.mean;
      p.missing_share = ratio(static_cast<double>(st.missing), size_d);
      seg.numeric.push_back(std::move(p));
    }

    std::vector<RankedLevels> ranked(n_categorical);
    for (std::size_t c = 0; c < n_categorical; ++c) {
      const Column& column = *categorical_columns[c];
      const std::vector<std::int64_t>& counts = level_result[c * ks + s];
      const std::size_t levels = column.levels.size();
      std::int64_t known = 0;
      for (std::size_t l = 0; l < levels; ++l) known += counts[l];
      RankedLevels& r = ranked[c];
      for (std::size_t l = 0; l < levels; ++l) {
        if (counts[l] > 0) r.codes.push_back(l);
      }
      std::stable_sort(r.codes.begin(), r.codes.end(),
                       [&](std::size_t a, std::size_t b) { return counts[a] > counts[b]; });
      const auto known_d = static_cast<double>(known);
      CategoricalProfile profile;
      profile.column = column.name;
      for (std::size_t i = 0; i < r.codes.size(); ++i) {
        const std::size_t l = r.codes[i];
        const double share = ratio(static_cast<double>(counts[l]), known_d);
        r.share.push_back(share);
        r.lift.push_back(lift_of(counts[l], known, overall_levels[c][l], overall_known[c]));
        if (i < static_cast<std::size_t>(options.top_levels)) {
          LevelShare ls;
          ls.level = column.levels[l];
          ls.share = share;
          ls.lift = r.lift.back();
          profile.top.push_back(std::move(ls));
        }
      }
      seg.categorical.push_back(std::move(profile));
    }

    // Labels. Seeds missing from a segment only count as evidence when the base rate predicts
    // at least min_seeds of them there; negatives likewise need min_seeds observations.
    // Negatives are compared with the labelled accounts (seeds + negatives), not with all rows:
    // negative seeds are usually former customers, who gather where the customers are, so a
    // per-row churn rate would brand the best segment negative. What matters is whether a
    // segment's labelled accounts lean negative more than the market's do.
    const auto min_seeds = static_cast<double>(options.min_seeds);
    const double negative_lift = lift_of(seg.negative_count, seg.seed_count + seg.negative_count,
                                         out.negatives, out.seeds + out.negatives);
    const bool churns = seg.negative_count >= options.min_seeds && seg.negative_count > 0 &&
                        negative_lift >= 1.0 / options.negative_lift;
    const bool seeds_absent = seg.size > 0 && out.base_seed_rate > 0.0 &&
                              size_d * out.base_seed_rate >= min_seeds &&
                              seg.lift <= options.negative_lift;
    const bool seeds_dense =
        out.seeds > 0 && seg.seed_count >= options.min_seeds && seg.lift >= options.icp_lift;
    if (seeds_dense && !churns) {
      seg.label = "ICP";
    } else if (churns || seeds_absent) {
      seg.label = "negative-ICP";
    } else {
      seg.label = "neutral";
    }
    seg.description = describe(seg, numeric_columns, overall, categorical_columns, ranked);
  }

  std::vector<std::size_t> by_rank(ks);
  for (std::size_t s = 0; s < ks; ++s) by_rank[s] = s;
  std::stable_sort(by_rank.begin(), by_rank.end(),
                   [&](std::size_t a, std::size_t b) { return smoothed[a] > smoothed[b]; });
  for (std::size_t r = 0; r < ks; ++r) {
    out.segments[by_rank[r]].icp_rank = static_cast<std::int32_t>(r + 1);
  }
  return out;
}

}  // namespace

IcpSummary summarize_segments(const Table& table, std::span<const std::int32_t> segment, int k,
                              std::span<const std::uint8_t> is_seed,
                              std::span<const std::uint8_t> is_negative,
                              const SummaryOptions& options) {
  // ---- Validation (everything that can be checked before touching the rows).
  const std::size_t n = table.rows;
  check_inputs(n, k, segment, is_seed, is_negative, options);
  std::vector<const Column*> numeric_columns;
  for (const auto& name : options.numeric_columns) {
    numeric_columns.push_back(&resolve(table, name, ColumnType::numeric, "numeric"));
  }
  std::vector<const Column*> categorical_columns;
  for (const auto& name : options.categorical_columns) {
    categorical_columns.push_back(&resolve(table, name, ColumnType::categorical, "categorical"));
  }
  const Column* value_column = nullptr;
  if (!options.value_column.empty()) {
    value_column = &resolve(table, options.value_column, ColumnType::numeric, "value");
  }

  Tallies tallies;
  const auto ks = static_cast<std::size_t>(k);
  const std::size_t chunks = chunk_count(n);
  const std::vector<std::int64_t> chunk_size =
      count_segments(segment, k, is_seed, is_negative, tallies,
                     [&](std::size_t i) { return row_place(table, i); });
  const std::vector<std::int64_t>& size = tallies.size;

  // ---- Pass 2: bucket row indices by segment (a counting sort). Each chunk writes its rows at
  // offsets fixed by the counts of earlier chunks, so every bucket lists its rows in ascending
  // order whatever the thread count.
  std::vector<std::size_t> bucket_begin(ks + 1, 0);
  for (std::size_t s = 0; s < ks; ++s) {
    bucket_begin[s + 1] = bucket_begin[s] + static_cast<std::size_t>(size[s]);
  }
  std::vector<std::size_t> cursor(chunks * ks);
  for (std::size_t s = 0; s < ks; ++s) {
    std::size_t next = bucket_begin[s];
    for (std::size_t c = 0; c < chunks; ++c) {
      cursor[c * ks + s] = next;
      next += static_cast<std::size_t>(chunk_size[c * ks + s]);
    }
  }
  std::vector<std::size_t> rows_by_segment(n);
#pragma omp parallel for schedule(static)
  for (std::int64_t c = 0; c < static_cast<std::int64_t>(chunks); ++c) {
    const auto cu = static_cast<std::size_t>(c);
    const std::size_t begin = cu * kReduceChunkRows;
    const std::size_t end = std::min(n, begin + kReduceChunkRows);
    std::size_t* next = &cursor[cu * ks];
    for (std::size_t i = begin; i < end; ++i) {
      rows_by_segment[next[static_cast<std::size_t>(segment[i])]++] = i;
    }
  }

  // ---- Pass 3: one task per (column, segment), plus the overall quantiles of each numeric
  // column. Tasks write disjoint slots and each reads its rows in ascending order, so the result
  // does not depend on which thread runs which task.
  const std::size_t n_numeric = numeric_columns.size();
  const std::size_t n_categorical = categorical_columns.size();
  const std::size_t n_value = value_column ? 1 : 0;
  std::vector<NumericStats>& numeric_result = tallies.numeric_result;
  std::vector<NumericStats>& overall_result = tallies.overall_result;
  std::vector<NumericStats>& value_result = tallies.value_result;
  std::vector<std::vector<std::int64_t>>& level_result = tallies.level_result;
  numeric_result.resize(n_numeric * ks);
  overall_result.resize(n_numeric);
  value_result.resize(n_value * ks);
  level_result.resize(n_categorical * ks);
  const std::size_t n_tasks = n_numeric + (n_numeric + n_value + n_categorical) * ks;
  ExceptionCollector errors;
#pragma omp parallel for schedule(dynamic, 1)
  for (std::int64_t t = 0; t < static_cast<std::int64_t>(n_tasks); ++t) {
    errors.run([&] {
      std::size_t task = static_cast<std::size_t>(t);
      // Whole-column tasks first: they are the longest, so they start before the short ones.
      if (task < n_numeric) {
        overall_result[task] = numeric_stats(*numeric_columns[task], nullptr, n);
        return;
      }
      task -= n_numeric;
      const std::size_t column = task / ks;
      const std::size_t s = task % ks;
      const std::size_t* rows = rows_by_segment.data() + bucket_begin[s];
      const auto count = static_cast<std::size_t>(size[s]);
      if (column < n_numeric) {
        numeric_result[column * ks + s] = numeric_stats(*numeric_columns[column], rows, count);
      } else if (column < n_numeric + n_value) {
        value_result[s] = numeric_stats(*value_column, rows, count);
      } else {
        const std::size_t c = column - n_numeric - n_value;
        level_result[c * ks + s] = level_counts(*categorical_columns[c], rows, count, table);
      }
    });
  }
  errors.rethrow();

  return assemble(n, ks, tallies, numeric_columns, categorical_columns, value_column != nullptr,
                  options);
}

namespace {

// Buckets of at most this many values are kept and sorted by the streamed quartiles: each of the
// up to 6 per (column, segment) then holds no more than a count table does (512 KiB), where the
// selection's default (1M values, 8 MiB) times 6 x 88 selections would not fit a memory limit.
constexpr std::size_t kSummaryCollectBelow = std::size_t{1} << 16;

/// numeric_stats of values that arrive in row order, over several looks.
struct NumericFold {
  double total = 0.0;
  std::int64_t present = 0;
  std::int64_t missing = 0;
  StreamedSelection select{kSummaryCollectBelow};
  std::array<QuantilePlaces, 3> at{};

  void add(double x) {
    if (std::isnan(x)) {
      ++missing;
      return;
    }
    total += x;
    ++present;
    select.add(x);
  }
  /// Ends the first look: the quartiles' positions are known now.
  void first_look_done() {
    select.end_look();
    if (present == 0) return;
    const auto m = static_cast<std::size_t>(present);
    at = {quantile_places(m, 0.25), quantile_places(m, 0.5), quantile_places(m, 0.75)};
    const std::size_t wanted[] = {at[0].lo, at[0].hi, at[1].lo, at[1].hi, at[2].lo, at[2].hi};
    select.want(wanted);
  }
  bool open() const noexcept { return present > 0 && !select.done(); }
  NumericStats stats() const {
    NumericStats s;
    s.total = total;
    s.missing = missing;
    if (present == 0) return s;
    s.mean = total / static_cast<double>(present);
    set_quartiles(s, at.data(), select.result());
    return s;
  }
};

/// One categorical column over the blocks: levels in order of first appearance, counts per
/// segment (the last slot, missing cells, is added at the end).
struct LevelFold {
  Column head;  // name and levels only: what the assembly reads
  std::unordered_map<std::string, std::size_t> index;
  std::vector<std::vector<std::int64_t>> counts;  // per segment, per level
  std::vector<std::int64_t> missing;              // per segment
};

}  // namespace

IcpSummary summarize_segments(const TableScan& scan, std::span<const std::int32_t> segment, int k,
                              std::span<const std::uint8_t> is_seed,
                              std::span<const std::uint8_t> is_negative,
                              const SummaryOptions& options) {
  const std::size_t n = segment.size();
  check_inputs(n, k, segment, is_seed, is_negative, options);
  const auto ks = static_cast<std::size_t>(k);
  Tallies tallies;
  (void)count_segments(segment, k, is_seed, is_negative, tallies,
                       [](std::size_t i) { return fmt::format("row {}", i); });

  const std::size_t n_numeric = options.numeric_columns.size();
  const bool has_value = !options.value_column.empty();
  // Column c < n_numeric: numeric column c, its k segment folds then its overall fold; the value
  // column last, with k folds.
  std::vector<std::string> names = options.numeric_columns;
  if (has_value) names.push_back(options.value_column);
  std::vector<std::vector<NumericFold>> folds(names.size());
  for (std::size_t c = 0; c < names.size(); ++c)
    folds[c] = std::vector<NumericFold>(ks + (c < n_numeric ? 1 : 0));
  std::vector<LevelFold> levels(options.categorical_columns.size());
  for (std::size_t c = 0; c < levels.size(); ++c) {
    levels[c].head.name = options.categorical_columns[c];
    levels[c].head.type = ColumnType::categorical;
    levels[c].counts.assign(ks, {});
    levels[c].missing.assign(ks, 0);
  }

  // Each numeric column's folds on one thread, rows in order: sums keep their row order.
  auto add_numeric = [&](const Table& block, std::size_t first, bool first_look) {
    std::vector<const Column*> cols(names.size());
    for (std::size_t c = 0; c < names.size(); ++c)
      cols[c] = &resolve(block, names[c], ColumnType::numeric, c < n_numeric ? "numeric" : "value");
#pragma omp parallel for schedule(dynamic, 1) if (names.size() > 1)
    for (std::ptrdiff_t sc = 0; sc < static_cast<std::ptrdiff_t>(names.size()); ++sc) {
      const auto c = static_cast<std::size_t>(sc);
      std::vector<NumericFold>& f = folds[c];
      const bool overall = c < n_numeric;
      const NumericValues& v = cols[c]->numeric;
      for (std::size_t r = 0; r < block.rows; ++r) {
        NumericFold& seg = f[static_cast<std::size_t>(segment[first + r])];
        if (first_look) {
          seg.add(v[r]);
          if (overall) f[ks].add(v[r]);
        } else if (!std::isnan(v[r])) {  // later looks only narrow the open selections
          if (seg.open()) seg.select.add(v[r]);
          if (overall && f[ks].open()) f[ks].select.add(v[r]);
        }
      }
    }
  };

  std::size_t rows = 0;
  scan([&](const Table& block) {
    if (rows + block.rows > n)
      fail(fmt::format("the table has more rows than the {} segment ids", n));
    add_numeric(block, rows, true);
    for (LevelFold& lf : levels) {
      const Column& col = resolve(block, lf.head.name, ColumnType::categorical, "categorical");
      std::vector<std::size_t> global(col.levels.size());
      for (std::size_t l = 0; l < col.levels.size(); ++l) {
        auto [it, fresh] = lf.index.try_emplace(col.levels[l], lf.head.levels.size());
        if (fresh) lf.head.levels.push_back(col.levels[l]);
        global[l] = it->second;
      }
      for (auto& c : lf.counts) c.resize(lf.head.levels.size(), 0);
      for (std::size_t r = 0; r < block.rows; ++r) {
        const auto s = static_cast<std::size_t>(segment[rows + r]);
        const std::int32_t code = col.codes[r];
        if (code < 0)
          ++lf.missing[s];
        else
          ++lf.counts[s][global[static_cast<std::size_t>(code)]];
      }
    }
    rows += block.rows;
  });
  if (rows != n) fail(fmt::format("the table has {} rows but there are {} segment ids", rows, n));
  for (auto& f : folds)
    for (NumericFold& one : f) one.first_look_done();
  auto open = [&] {
    for (const auto& f : folds)
      for (const NumericFold& one : f)
        if (one.open()) return true;
    return false;
  };
  while (open()) {
    rows = 0;
    scan([&](const Table& block) {
      add_numeric(block, rows, false);
      rows += block.rows;
    });
    for (auto& f : folds)
      for (NumericFold& one : f)
        if (one.open()) one.select.end_look();
  }

  tallies.numeric_result.resize(n_numeric * ks);
  tallies.overall_result.resize(n_numeric);
  for (std::size_t c = 0; c < n_numeric; ++c) {
    for (std::size_t s = 0; s < ks; ++s) tallies.numeric_result[c * ks + s] = folds[c][s].stats();
    tallies.overall_result[c] = folds[c][ks].stats();
  }
  if (has_value)
    for (std::size_t s = 0; s < ks; ++s) tallies.value_result.push_back(folds.back()[s].stats());
  std::vector<Column> numeric_heads(n_numeric);
  std::vector<const Column*> numeric_columns, categorical_columns;
  for (std::size_t c = 0; c < n_numeric; ++c) {
    numeric_heads[c].name = names[c];
    numeric_columns.push_back(&numeric_heads[c]);
  }
  for (LevelFold& lf : levels) {
    for (std::size_t s = 0; s < ks; ++s) {
      std::vector<std::int64_t> counts = lf.counts[s];
      counts.resize(lf.head.levels.size(), 0);
      counts.push_back(lf.missing[s]);
      tallies.level_result.push_back(std::move(counts));
    }
    categorical_columns.push_back(&lf.head);
  }
  return assemble(n, ks, tallies, numeric_columns, categorical_columns, has_value, options);
}

std::string to_json(const IcpSummary& summary) {
  using Json = nlohmann::ordered_json;
  auto number = [](double x) { return std::isfinite(x) ? Json(x) : Json(nullptr); };
  Json root;
  root["rows"] = summary.rows;
  root["seeds"] = summary.seeds;
  root["negatives"] = summary.negatives;
  root["base_seed_rate"] = number(summary.base_seed_rate);
  Json segments = Json::array();
  for (const auto& seg : summary.segments) {
    Json j;
    j["segment"] = seg.segment;
    j["size"] = seg.size;
    j["share"] = number(seg.share);
    j["seed_count"] = seg.seed_count;
    j["seed_rate"] = number(seg.seed_rate);
    j["lift"] = number(seg.lift);
    j["negative_count"] = seg.negative_count;
    j["negative_rate"] = number(seg.negative_rate);
    j["value_mean"] = number(seg.value_mean);
    j["value_median"] = number(seg.value_median);
    j["value_total"] = number(seg.value_total);
    j["icp_rank"] = seg.icp_rank;
    j["label"] = seg.label;
    j["description"] = seg.description;
    Json numeric = Json::array();
    for (const auto& p : seg.numeric) {
      Json q;
      q["column"] = p.column;
      q["median"] = number(p.median);
      q["q1"] = number(p.q1);
      q["q3"] = number(p.q3);
      q["mean"] = number(p.mean);
      q["missing_share"] = number(p.missing_share);
      numeric.push_back(std::move(q));
    }
    j["numeric"] = std::move(numeric);
    Json categorical = Json::array();
    for (const auto& p : seg.categorical) {
      Json q;
      q["column"] = p.column;
      Json top = Json::array();
      for (const auto& l : p.top) {
        Json t;
        t["level"] = l.level;
        t["share"] = number(l.share);
        t["lift"] = number(l.lift);
        top.push_back(std::move(t));
      }
      q["top"] = std::move(top);
      categorical.push_back(std::move(q));
    }
    j["categorical"] = std::move(categorical);
    segments.push_back(std::move(j));
  }
  root["segments"] = std::move(segments);
  // Level names come from user files: replace invalid UTF-8 rather than throw.
  return root.dump(2, ' ', false, Json::error_handler_t::replace);
}

}  // namespace icp
