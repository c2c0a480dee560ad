// Normalization: statistics in float64 over fixed row chunks (same bits at any thread count),
// then one parallel pass that writes the centred float32 matrix row by row.
#include "icp/normalize.hpp"

#include <omp.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <exception>
#include <map>
#include <numeric>
#include <stdexcept>
#include <unordered_map>
#include <utility>

#include "icp/error.hpp"
#include "icp/parallel.hpp"
#include "value_order.hpp"

namespace icp {

double signed_log1p(double x) noexcept {
  return std::copysign(std::log1p(std::fabs(x)), x);
}

std::vector<std::string> Normalizer::names() const {
  std::vector<std::string> out;
  out.reserve(features.size());
  for (const auto& f : features) out.push_back(f.name);
  return out;
}

namespace {

// A one-hot column holds weight/sqrt(2) so that two accounts with different levels are exactly
// `weight` apart (two coordinates differ by w/sqrt(2) each), the same scale a numeric feature of
// that weight spans between its quartiles under robust scaling.
constexpr double kOneHotScale = 0.70710678118654752440;
constexpr const char* kOtherLevel = "other";
constexpr const char* kMissingLevel = "(missing)";

double apply_transform(Transform t, double x) noexcept {
  return t == Transform::log1p ? signed_log1p(x) : x;
}

/// Sum of f(i) over [0, n) combined chunk by chunk in a fixed order (thread-count independent).
template <class F>
double chunked_sum(std::size_t n, F&& f) {
  const std::size_t chunks = chunk_count(n);
  std::vector<double> partial(chunks, 0.0);
#pragma omp parallel for schedule(static)
  for (std::size_t c = 0; c < chunks; ++c) {
    const std::size_t end = std::min(n, (c + 1) * kReduceChunkRows);
    double s = 0.0;
    for (std::size_t i = c * kReduceChunkRows; i < end; ++i) s += f(i);
    partial[c] = s;
  }
  double total = 0.0;
  for (double p : partial) total += p;
  return total;
}

const Column& column_of(const Table& table, const std::string& name, ColumnType type) {
  const Column* c = table.find(name);
  if (!c) throw Error(table.source + ": feature column '" + name + "' is not in the header");
  if (c->type != type)
    throw Error(table.source + ": feature column '" + name + "' was read with another type");
  return *c;
}

/// What a numeric feature's spec is built from: counts, float64 sums and exact order statistics
/// of its transformed present values.
struct NumericStats {
  std::int64_t present = 0;
  std::int64_t rows = 0;
  double sum = 0.0;     // of the present values, folded in kReduceChunkRows chunks
  double sum_sq = 0.0;  // of (value - mean)^2, likewise
  double lowest = 0.0, highest = 0.0, median = 0.0, iqr = 0.0;
};

/// Positions of the order statistics a numeric feature needs among m present values: lowest,
/// highest, and the two neighbours of each quartile.
std::array<std::size_t, 8> numeric_positions(std::size_t m) {
  const QuantilePlaces q1 = quantile_places(m, 0.25);
  const QuantilePlaces q2 = quantile_places(m, 0.5);
  const QuantilePlaces q3 = quantile_places(m, 0.75);
  return {0, m - 1, q1.lo, q1.hi, q2.lo, q2.hi, q3.lo, q3.hi};
}

void set_order_statistics(NumericStats& st, std::span<const double> at) {
  const auto m = static_cast<std::size_t>(st.present);
  st.lowest = at[0];
  st.highest = at[1];
  st.median = quantile_between(quantile_places(m, 0.5), at[4], at[5]);
  st.iqr = quantile_between(quantile_places(m, 0.75), at[6], at[7]) -
           quantile_between(quantile_places(m, 0.25), at[2], at[3]);
}

void numeric_specs(const NumericFeature& nf, const MissingOptions& miss, const NumericStats& st,
                   std::vector<FeatureSpec>& out) {
  const auto present = static_cast<double>(st.present);
  const std::int64_t missing = st.rows - st.present;
  const double mean = st.sum / present;
  const double stddev = std::sqrt(st.sum_sq / present);
  const double range = st.highest - st.lowest;
  FeatureSpec f;
  f.name = nf.column;
  f.column = nf.column;
  f.kind = FeatureKind::numeric;
  f.transform = nf.transform;
  f.weight = nf.weight;
  switch (miss.numeric) {
    case NumericImpute::median:
      f.impute = st.median;
      break;
    case NumericImpute::mean:
      f.impute = mean;
      break;
    case NumericImpute::zero:
      f.impute = 0.0;
      break;
  }
  // A zero spread would divide by zero; fall back so a constant column maps to a constant.
  const double fallback = stddev > 0.0 ? stddev : 1.0;
  switch (nf.scaling) {
    case Scaling::zscore:
      f.center = mean, f.scale = fallback;
      break;
    case Scaling::robust:
      f.center = st.median, f.scale = st.iqr > 0.0 ? st.iqr : fallback;
      break;
    case Scaling::minmax:
      f.center = st.lowest, f.scale = range > 0.0 ? range : 1.0;
      break;
    case Scaling::none:
      f.center = 0.0, f.scale = 1.0;
      break;
  }
  const double total = st.sum + static_cast<double>(missing) * f.impute;
  f.offset = f.weight * (total / static_cast<double>(st.rows) - f.center) / f.scale;
  out.push_back(f);

  if (miss.flag && missing > 0) {
    FeatureSpec flag;
    flag.name = nf.column + "__missing";
    flag.column = nf.column;
    flag.kind = FeatureKind::flag;
    flag.weight = miss.flag_weight;
    flag.offset = flag.weight * static_cast<double>(missing) / static_cast<double>(st.rows);
    out.push_back(flag);
  }
}

/// `values` is scratch, reused across features: at 10M rows a fresh 80 MB vector per feature
/// spent more time having its pages zeroed by the kernel than in the selections.
void fit_numeric(const Table& table, const NumericFeature& nf, const MissingOptions& miss,
                 Reducer& reducer, std::vector<double>& values, std::vector<FeatureSpec>& out) {
  const Column& col = column_of(table, nf.column, ColumnType::numeric);
  const std::size_t n = table.rows;
  values.clear();
  values.reserve(n);
  for (std::size_t i = 0; i < n; ++i)
    if (!std::isnan(col.numeric[i]))
      values.push_back(apply_transform(nf.transform, col.numeric[i]));
  std::int64_t counts[2] = {static_cast<std::int64_t>(values.size()), static_cast<std::int64_t>(n)};
  reducer.sum(std::span<std::int64_t>(counts, 2));
  if (counts[0] == 0)
    throw Error(table.source + ": numeric feature '" + nf.column + "' has no value in any row");
  NumericStats st;
  st.present = counts[0];
  st.rows = counts[1];

  double sums[2] = {chunked_sum(values.size(), [&](std::size_t i) { return values[i]; }), 0.0};
  reducer.sum(std::span<double>(sums, 1));
  st.sum = sums[0];
  const double mean = st.sum / static_cast<double>(st.present);
  sums[1] = chunked_sum(values.size(), [&](std::size_t i) {
    const double d = values[i] - mean;
    return d * d;
  });
  reducer.sum(std::span<double>(sums + 1, 1));
  st.sum_sq = sums[1];

  // Exact order statistics on this process's rows; a distributed run replaces this with a
  // merged sketch (the one statistic that cannot go through a plain sum).
  const auto wanted = numeric_positions(values.size());
  set_order_statistics(st, order_statistics(values, wanted));
  numeric_specs(nf, miss, st, out);
}

/// A categorical feature's specs from its levels (in order of first appearance), the rows of
/// each, the missing cells and all rows.
void categorical_specs(const CategoricalFeature& cf, const MissingOptions& miss,
                       const std::vector<std::string>& levels,
                       const std::vector<std::int64_t>& counts, std::int64_t missing, std::size_t n,
                       std::vector<FeatureSpec>& out) {
  std::vector<std::size_t> order(levels.size());
  std::iota(order.begin(), order.end(), 0);
  // Most frequent first; ties to the level seen first in the file.
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return counts[a] > counts[b]; });
  const std::size_t kept = std::min(order.size(), static_cast<std::size_t>(cf.max_levels));
  const double w = cf.weight * kOneHotScale;
  const auto nd = static_cast<double>(n);
  const bool impute_mode = miss.categorical == CategoricalImpute::mode && !order.empty();

  for (std::size_t r = 0; r < kept; ++r) {
    const std::size_t l = order[r];
    FeatureSpec f;
    f.name = cf.column + "=" + levels[l];
    f.column = cf.column;
    f.kind = FeatureKind::onehot;
    f.weight = w;
    f.levels = {levels[l]};
    std::int64_t c = counts[l];
    if (impute_mode && r == 0) {
      f.impute = 1.0;  // missing cells take the most frequent level
      c += missing;
    }
    f.offset = w * static_cast<double>(c) / nd;
    out.push_back(f);
  }
  if (kept < order.size()) {
    FeatureSpec other;
    other.name = cf.column + "=" + kOtherLevel;
    other.column = cf.column;
    other.kind = FeatureKind::onehot;
    other.weight = w;
    std::int64_t c = 0;
    for (std::size_t r = kept; r < order.size(); ++r) {
      other.levels.push_back(levels[order[r]]);
      c += counts[order[r]];
    }
    other.offset = w * static_cast<double>(c) / nd;
    out.push_back(other);
  }
  if (missing > 0 && !impute_mode) {
    FeatureSpec m;
    m.name = cf.column + "=" + kMissingLevel;
    m.column = cf.column;
    m.kind = FeatureKind::onehot;
    m.weight = w;
    m.impute = 1.0;
    m.offset = w * static_cast<double>(missing) / nd;
    out.push_back(m);
  } else if (missing > 0 && miss.flag) {
    FeatureSpec flag;
    flag.name = cf.column + "__missing";
    flag.column = cf.column;
    flag.kind = FeatureKind::flag;
    flag.weight = miss.flag_weight;
    flag.offset = flag.weight * static_cast<double>(missing) / nd;
    out.push_back(flag);
  }
}

void fit_categorical(const Table& table, const CategoricalFeature& cf, const MissingOptions& miss,
                     std::vector<FeatureSpec>& out) {
  const Column& col = column_of(table, cf.column, ColumnType::categorical);
  std::vector<std::int64_t> counts(col.levels.size(), 0);
  std::int64_t missing = 0;
  for (std::size_t i = 0; i < table.rows; ++i) {
    if (col.codes[i] < 0)
      ++missing;
    else
      ++counts[static_cast<std::size_t>(col.codes[i])];
  }
  categorical_specs(cf, miss, col.levels, counts, missing, table.rows, out);
}

/// How one source column fills its output columns, resolved against a particular table.
struct ColumnPlan {
  const Column* column = nullptr;
  std::size_t numeric_feature = SIZE_MAX;
  std::size_t flag_feature = SIZE_MAX;
  std::vector<std::int64_t> code_to_feature;  ///< categorical: output column per code, -1 = none
  std::int64_t missing_feature = -1;          ///< categorical: output column of a missing cell
};

std::vector<ColumnPlan> make_plans(const Normalizer& norm, const Table& table) {
  std::vector<ColumnPlan> plans;
  std::map<std::string, std::size_t> by_column;
  for (std::size_t j = 0; j < norm.features.size(); ++j) {
    const FeatureSpec& f = norm.features[j];
    auto [it, fresh] = by_column.try_emplace(f.column, plans.size());
    if (fresh) {
      ColumnPlan p;
      p.column = table.find(f.column);
      if (!p.column) throw Error(table.source + ": column '" + f.column + "' is not in the header");
      const ColumnType want = f.kind == FeatureKind::onehot    ? ColumnType::categorical
                              : f.kind == FeatureKind::numeric ? ColumnType::numeric
                                                               : p.column->type;
      if (p.column->type != want)
        throw Error(table.source + ": column '" + f.column + "' was read with another type");
      if (p.column->type == ColumnType::categorical)
        p.code_to_feature.assign(p.column->levels.size(), -1);
      plans.push_back(std::move(p));
    }
    ColumnPlan& p = plans[it->second];
    if (f.kind == FeatureKind::numeric) p.numeric_feature = j;
    if (f.kind == FeatureKind::flag) p.flag_feature = j;
    if (f.kind == FeatureKind::onehot) {
      if (f.impute != 0.0) p.missing_feature = static_cast<std::int64_t>(j);
      const bool is_other = f.name == f.column + "=" + kOtherLevel;
      for (std::size_t l = 0; l < p.column->levels.size(); ++l) {
        const std::string& lev = p.column->levels[l];
        if (std::find(f.levels.begin(), f.levels.end(), lev) != f.levels.end())
          p.code_to_feature[l] = static_cast<std::int64_t>(j);
        else if (is_other && p.code_to_feature[l] < 0)
          p.code_to_feature[l] = -2 - static_cast<std::int64_t>(j);  // provisional: unseen level
      }
    }
  }
  // Unseen levels fall into "other" unless a named column claimed them later in the list.
  for (auto& p : plans)
    for (auto& t : p.code_to_feature)
      if (t <= -2) t = -2 - t;
  return plans;
}

}  // namespace

Normalizer fit_normalizer(const Table& table, const NormalizeOptions& options, Reducer& reducer) {
  if (table.rows == 0) throw Error(table.source + ": no accepted rows to normalize");
  Normalizer norm;
  // Numeric features are independent: fitted two or more at a time, each thread reusing one
  // scratch vector, and appended in the job's order. The selections inside are serial, so this
  // is where threads help. With several processes every statistic is a collective, which must
  // be called in the same order on every process: one feature at a time then.
  const std::size_t nnum = options.numeric.size();
  std::vector<std::vector<FeatureSpec>> specs(nnum);
  std::vector<std::exception_ptr> failed(nnum);
  const int team =
      reducer.size() == 1
          ? static_cast<int>(std::min<std::size_t>(static_cast<std::size_t>(threads()), nnum))
          : 1;
#pragma omp parallel num_threads(std::max(team, 1)) if (team > 1)
  {
    std::vector<double> values;
#pragma omp for schedule(dynamic, 1)
    for (std::ptrdiff_t sf = 0; sf < static_cast<std::ptrdiff_t>(nnum); ++sf) {
      const auto f = static_cast<std::size_t>(sf);
      try {
        fit_numeric(table, options.numeric[f], options.missing, reducer, values, specs[f]);
      } catch (...) {
        failed[f] = std::current_exception();
      }
    }
  }
  for (std::size_t f = 0; f < nnum; ++f) {  // the first failing feature in job order
    if (failed[f]) std::rethrow_exception(failed[f]);
    norm.features.insert(norm.features.end(), specs[f].begin(), specs[f].end());
  }
  for (const auto& cf : options.categorical)
    fit_categorical(table, cf, options.missing, norm.features);
  if (norm.features.empty()) throw Error("normalize: no features configured");
  return norm;
}

namespace {

/// A float64 sum folded as chunked_sum folds it: values in chunks of kReduceChunkRows, each
/// summed in order from 0, then the chunk sums in order. Values arrive one at a time, so a chunk
/// may span blocks.
struct ChunkFold {
  double total = 0.0;
  double part = 0.0;
  std::size_t in = 0;
  void add(double v) noexcept {
    part += v;
    if (++in == kReduceChunkRows) {
      total += part;
      part = 0.0;
      in = 0;
    }
  }
  double sum() const noexcept { return in > 0 ? total + part : total; }
};

/// One numeric feature across the passes of fit_normalizer_streamed.
struct StreamedNumeric {
  NumericStats st;
  ChunkFold sum, sum_sq;
  double mean = 0.0;
  StreamedSelection select;
};

/// One categorical feature: levels in order of first appearance over all blocks (each block
/// lists its own in that order, so appending unseen ones block by block keeps it).
struct StreamedCategorical {
  std::vector<std::string> levels;
  std::unordered_map<std::string, std::size_t> index;
  std::vector<std::int64_t> counts;
  std::int64_t missing = 0;
};

}  // namespace

Normalizer fit_normalizer_streamed(const TableScan& scan, const NormalizeOptions& options,
                                   int* passes) {
  const std::size_t nnum = options.numeric.size();
  std::vector<StreamedNumeric> num(nnum);
  std::vector<StreamedCategorical> cat(options.categorical.size());
  std::size_t rows = 0;
  std::string source;
  int scans = 0;
  // A pass over every block; `each(f, column, block)` sees numeric feature f's column, features
  // split between threads (each feature's values stay in row order on one thread).
  auto numeric_pass = [&](const Table& block, auto&& each) {
    std::vector<const Column*> cols(nnum);
    for (std::size_t f = 0; f < nnum; ++f)
      cols[f] = &column_of(block, options.numeric[f].column, ColumnType::numeric);
#pragma omp parallel for schedule(dynamic, 1) if (nnum > 1)
    for (std::ptrdiff_t sf = 0; sf < static_cast<std::ptrdiff_t>(nnum); ++sf) {
      const auto f = static_cast<std::size_t>(sf);
      const Transform t = options.numeric[f].transform;
      const NumericValues& v = cols[f]->numeric;
      for (std::size_t i = 0; i < block.rows; ++i)
        if (!std::isnan(v[i])) each(f, apply_transform(t, v[i]));
    }
  };

  // Pass 1: counts, sums, the selection's first look, the categorical levels.
  scan([&](const Table& block) {
    source = block.source;
    rows += block.rows;
    numeric_pass(block, [&](std::size_t f, double x) {
      ++num[f].st.present;
      num[f].sum.add(x);
      num[f].select.add(x);
    });
    for (std::size_t c = 0; c < cat.size(); ++c) {
      const Column& col = column_of(block, options.categorical[c].column, ColumnType::categorical);
      StreamedCategorical& sc = cat[c];
      std::vector<std::size_t> global(col.levels.size());
      for (std::size_t l = 0; l < col.levels.size(); ++l) {
        auto [it, fresh] = sc.index.try_emplace(col.levels[l], sc.levels.size());
        if (fresh) {
          sc.levels.push_back(col.levels[l]);
          sc.counts.push_back(0);
        }
        global[l] = it->second;
      }
      for (std::size_t i = 0; i < block.rows; ++i) {
        if (col.codes[i] < 0)
          ++sc.missing;
        else
          ++sc.counts[global[static_cast<std::size_t>(col.codes[i])]];
      }
    }
  });
  ++scans;
  if (rows == 0)
    throw Error((source.empty() ? "normalize" : source) + ": no accepted rows to normalize");
  for (std::size_t f = 0; f < nnum; ++f) {
    StreamedNumeric& s = num[f];
    if (s.st.present == 0)
      throw Error(source + ": numeric feature '" + options.numeric[f].column +
                  "' has no value in any row");
    s.st.rows = static_cast<std::int64_t>(rows);
    s.st.sum = s.sum.sum();
    s.mean = s.st.sum / static_cast<double>(s.st.present);
    s.select.end_look();
    s.select.want(numeric_positions(static_cast<std::size_t>(s.st.present)));
  }

  // Pass 2: squared deviations from the mean, and the selection's second look.
  scan([&](const Table& block) {
    numeric_pass(block, [&](std::size_t f, double x) {
      StreamedNumeric& s = num[f];
      const double d = x - s.mean;
      s.sum_sq.add(d * d);
      if (!s.select.done()) s.select.add(x);
    });
  });
  ++scans;
  for (auto& s : num) {
    s.st.sum_sq = s.sum_sq.sum();
    if (!s.select.done()) s.select.end_look();
  }
  // Further looks until every order statistic is found (ties spanning a wide bucket).
  auto pending = [&] {
    return std::any_of(num.begin(), num.end(), [](const auto& s) { return !s.select.done(); });
  };
  while (pending()) {
    scan([&](const Table& block) {
      numeric_pass(block, [&](std::size_t f, double x) {
        if (!num[f].select.done()) num[f].select.add(x);
      });
    });
    ++scans;
    for (auto& s : num)
      if (!s.select.done()) s.select.end_look();
  }

  Normalizer norm;
  for (std::size_t f = 0; f < nnum; ++f) {
    StreamedNumeric& s = num[f];
    set_order_statistics(s.st, s.select.result());
    numeric_specs(options.numeric[f], options.missing, s.st, norm.features);
  }
  for (std::size_t c = 0; c < cat.size(); ++c)
    categorical_specs(options.categorical[c], options.missing, cat[c].levels, cat[c].counts,
                      cat[c].missing, rows, norm.features);
  if (norm.features.empty()) throw Error("normalize: no features configured");
  if (passes != nullptr) *passes = scans;
  return norm;
}

Matrix apply_normalizer(const Normalizer& norm, const Table& table) {
  const std::vector<ColumnPlan> plans = make_plans(norm, table);
  const std::size_t n = table.rows;
  const std::size_t d = norm.features.size();
  Matrix out = Matrix::uninitialized(n, d);  // every row written below, first touched there
  // Each row starts at minus the column means (the centring), then adds its own contributions.
  std::vector<float> base(d);
  for (std::size_t j = 0; j < d; ++j) base[j] = static_cast<float>(-norm.features[j].offset);
#pragma omp parallel for schedule(static)
  for (std::size_t i = 0; i < n; ++i) {
    float* row = out.row(i);
    std::copy(base.begin(), base.end(), row);
    for (const ColumnPlan& p : plans) {
      const Column& c = *p.column;
      const bool missing = c.is_missing(i);
      if (p.flag_feature != SIZE_MAX && missing)
        row[p.flag_feature] = static_cast<float>(norm.features[p.flag_feature].weight -
                                                 norm.features[p.flag_feature].offset);
      if (p.numeric_feature != SIZE_MAX) {
        const FeatureSpec& f = norm.features[p.numeric_feature];
        const double t = missing ? f.impute : apply_transform(f.transform, c.numeric[i]);
        row[p.numeric_feature] = static_cast<float>(f.weight * (t - f.center) / f.scale - f.offset);
      } else if (c.type == ColumnType::categorical) {
        const std::int64_t j =
            missing ? p.missing_feature : p.code_to_feature[static_cast<std::size_t>(c.codes[i])];
        if (j >= 0) {
          const FeatureSpec& f = norm.features[static_cast<std::size_t>(j)];
          row[j] = static_cast<float>(f.weight - f.offset);
        }
      }
    }
  }
  return out;
}

}  // namespace icp
