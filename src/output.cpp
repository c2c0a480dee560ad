// Results on disk. Every dataset name here is documented in docs/hdf5-schema.md; keep both in step.
#include "icp/output.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>

#include "icp/csv.hpp"
#include "icp/error.hpp"
#include "icp/sweep.hpp"

#ifndef ICP_VERSION
#define ICP_VERSION "0.0.0"
#endif

namespace icp {

namespace {

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

const char* kind_name(FeatureKind k) {
  switch (k) {
    case FeatureKind::numeric:
      return "numeric";
    case FeatureKind::flag:
      return "flag";
    case FeatureKind::onehot:
      return "onehot";
  }
  return "numeric";
}

template <class T, class A>
std::span<const T> sp(const std::vector<T, A>& v) {
  return {v.data(), v.size()};
}

/// Whether the run holds its ids and source lines (an in-memory run), rather than handing them
/// out through id_blocks (a streamed run).
bool ids_held(const RunResult& r) {
  return !r.ids.empty() || !r.id_blocks;
}

/// The ids of `rows` (ascending, repeats allowed), from the run's ids or its id_blocks.
std::vector<std::string> ids_of(const RunResult& r, const std::vector<std::size_t>& rows) {
  std::vector<std::string> out(rows.size());
  if (ids_held(r)) {
    for (std::size_t t = 0; t < rows.size(); ++t) out[t] = r.ids[rows[t]];
    return out;
  }
  r.id_blocks([&](std::size_t first, const std::vector<std::string>& ids,
                  std::span<const std::int64_t>) {
    auto t =
        static_cast<std::size_t>(std::lower_bound(rows.begin(), rows.end(), first) - rows.begin());
    for (; t < rows.size() && rows[t] < first + ids.size(); ++t) out[t] = ids[rows[t] - first];
  });
  return out;
}

/// Rows the writer copies from a spilled run's scratch columns at a time.
constexpr std::size_t kCopyBlockRows = std::size_t{1} << 18;

/// Rows [first, first + count) of a per-row result: from the run's vector, or from its scratch
/// column when the run spilled it (`width` values a row).
template <class T>
void rows_of(const RunResult& r, const char* column, const std::vector<T>& held, std::size_t first,
             std::size_t count, std::vector<T>& out, std::size_t width = 1) {
  if (r.spilled) {
    r.spilled->read(column, first, count, out, width);
    return;
  }
  out.assign(held.begin() + static_cast<std::ptrdiff_t>(first * width),
             held.begin() + static_cast<std::ptrdiff_t>((first + count) * width));
}

/// One per-row dataset (`column` is its path): the run's vector in one write, or a spilled run's
/// scratch column a block at a time.
template <class T>
void write_rows(const RunResult& r, h5::Writer& w, const char* column, const std::vector<T>& held,
                std::size_t width = 1) {
  if (!r.spilled) {
    if (width == 1)
      w.write(column, sp(held));
    else
      w.write(column, sp(held), {held.size() / width, width});
    return;
  }
  std::vector<T> block;
  const std::size_t n = r.spilled->rows();
  for (std::size_t first = 0; first < n; first += kCopyBlockRows) {
    const std::size_t count = std::min(kCopyBlockRows, n - first);
    r.spilled->read(column, first, count, block, width);
    w.append(column, sp(block), width);
  }
}

void write_features(const RunResult& r, h5::Writer& w) {
  const auto& fs = r.normalizer.features;
  w.write_strings("/features/names", r.normalizer.names());
  h5::Table t;
  std::vector<std::string> col, kind, transform;
  std::vector<double> center, scale, impute, weight, offset;
  std::vector<std::string> levels;
  std::vector<std::int64_t> level_feature;
  for (std::size_t j = 0; j < fs.size(); ++j) {
    const auto& f = fs[j];
    col.push_back(f.column);
    kind.push_back(kind_name(f.kind));
    transform.push_back(f.transform == Transform::log1p ? "log1p" : "none");
    center.push_back(f.center);
    scale.push_back(f.scale);
    impute.push_back(f.impute);
    weight.push_back(f.weight);
    offset.push_back(f.offset);
    for (const auto& l : f.levels) {
      levels.push_back(l);
      level_feature.push_back(static_cast<std::int64_t>(j));
    }
  }
  t.fields = {{"name", r.normalizer.names()},
              {"column", col},
              {"kind", kind},
              {"transform", transform},
              {"center", center},
              {"scale", scale},
              {"impute", impute},
              {"weight", weight},
              {"offset", offset}};
  w.write_table("/features/normalizer", t);
  w.write_strings("/features/levels", levels);
  w.write("/features/level_feature", sp(level_feature));
}

void write_segments(const RunResult& r, h5::Writer& w) {
  const auto& km = r.kmeans;
  w.write("/segments/assignment", sp(km.assignment));
  write_rows(r, w, "/segments/distance", km.distance);
  w.write("/segments/centroids", sp(km.centroids.storage()),
          {km.centroids.rows(), km.centroids.cols()});
  w.write("/segments/size", sp(km.sizes));
  w.attr("/segments", "k", static_cast<std::int64_t>(km.sizes.size()));
  w.attr("/segments", "iterations", static_cast<std::int64_t>(km.iterations));
  w.attr("/segments", "converged", static_cast<std::int64_t>(km.converged ? 1 : 0));
  w.attr("/segments", "inertia", km.inertia);
  h5::Table h;
  std::vector<std::int64_t> it, changed;
  std::vector<double> inertia, shift, secs;
  for (const auto& s : km.history) {
    it.push_back(s.iteration);
    inertia.push_back(s.inertia);
    shift.push_back(s.shift);
    changed.push_back(s.changed);
    secs.push_back(s.seconds);
  }
  h.fields = {{"iteration", it},
              {"inertia", inertia},
              {"shift", shift},
              {"changed", changed},
              {"seconds", secs}};
  w.write_table("/segments/history", h);
}

void write_lookalike(const RunResult& r, h5::Writer& w) {
  namespace col = lookalike_columns;
  const auto& la = r.lookalike;
  const std::size_t n = r.kmeans.assignment.size();
  write_rows(r, w, col::score, la.score);
  write_rows(r, w, col::rank, la.rank);
  write_rows(r, w, col::percentile, la.percentile);
  write_rows(r, w, col::tier, la.tier);
  w.attr("/lookalike/tier", "encoding", "ASCII letter codes: 65 = A (best) ... 69 = E");
  w.write("/lookalike/is_seed", sp(r.is_seed));
  if (!r.is_negative.empty()) w.write("/lookalike/is_negative", sp(r.is_negative));
  write_rows(r, w, col::nearest_seed, la.nearest_seed);
  if (ids_held(r)) {
    std::vector<std::string> nearest_id(la.nearest_seed.size());
    const auto rows = static_cast<std::int64_t>(nearest_id.size());
#pragma omp parallel for schedule(static)
    for (std::int64_t s = 0; s < rows; ++s) {
      const auto i = static_cast<std::size_t>(s);
      if (la.nearest_seed[i] >= 0)
        nearest_id[i] = r.ids[static_cast<std::size_t>(la.nearest_seed[i])];
    }
    w.write_strings("/lookalike/nearest_seed_id", nearest_id);
  } else {
    // Nearest seeds are reference seeds: their few ids, then the column a block at a time.
    const std::vector<std::size_t> seed_rows(la.seed_rows.begin(), la.seed_rows.end());
    const std::vector<std::string> seed_ids = ids_of(r, seed_rows);
    std::vector<std::int64_t> nearest;
    // Each row's nearest seed as an index into seed_ids (-1: none), a block at a time.
    auto visit_nearest = [&](const auto& visit) {
      std::vector<std::int64_t> seed(kCopyBlockRows);
      for (std::size_t b = 0; b < n; b += kCopyBlockRows) {
        const std::size_t count = std::min(n - b, kCopyBlockRows);
        rows_of(r, col::nearest_seed, la.nearest_seed, b, count, nearest);
        seed.resize(count);
        for (std::size_t i = 0; i < count; ++i) {
          seed[i] = -1;
          if (nearest[i] < 0) continue;
          const auto row = static_cast<std::size_t>(nearest[i]);
          const auto at = std::lower_bound(seed_rows.begin(), seed_rows.end(), row);
          if (at == seed_rows.end() || *at != row)
            throw Error("results: a nearest seed that is not a reference seed");
          seed[i] = at - seed_rows.begin();
        }
        visit(std::span<const std::int64_t>(seed));
      }
    };
    // The longest id among the nearest seeds, as write_strings would size the column held.
    std::size_t longest = 1;
    visit_nearest([&](std::span<const std::int64_t> seed) {
      for (const std::int64_t s : seed)
        if (s >= 0) longest = std::max(longest, seed_ids[static_cast<std::size_t>(s)].size());
    });
    std::vector<std::string> nearest_id;
    visit_nearest([&](std::span<const std::int64_t> seed) {
      nearest_id.assign(seed.size(), std::string());
      for (std::size_t i = 0; i < seed.size(); ++i)
        if (seed[i] >= 0) nearest_id[i] = seed_ids[static_cast<std::size_t>(seed[i])];
      w.append_strings("/lookalike/nearest_seed_id", nearest_id, longest);
    });
  }
  write_rows(r, w, col::nearest_seed_distance, la.nearest_seed_distance);
  write_rows(r, w, col::knn_similarity, la.knn_similarity);
  write_rows(r, w, col::segment_score, la.segment_score);
  write_rows(r, w, col::model_score, la.model_score);
  std::vector<std::int32_t> reasons;
  if (!r.spilled) {
    reasons.reserve(la.reasons.size() * 3);
    for (const auto& a : la.reasons) reasons.insert(reasons.end(), a.begin(), a.end());
  }
  write_rows(r, w, col::reasons, reasons, 3);
  w.attr("/lookalike", "method", to_string(r.config.lookalike.method));
  w.attr("/lookalike", "method_weight",
         std::span<const double>(la.method_weight.data(), la.method_weight.size()));
  w.attr("/lookalike", "tiers", sp(r.config.lookalike.tiers));
  h5::Table bt;
  std::vector<std::string> method;
  std::vector<double> auc, r1, r5, r10, r25, lift, weight;
  std::vector<std::int64_t> population, positives;
  for (const auto& b : la.backtest) {
    population.push_back(b.population);
    positives.push_back(b.positives);
    method.push_back(b.method);
    auc.push_back(b.auc);
    r1.push_back(b.recall_at_1);
    r5.push_back(b.recall_at_5);
    r10.push_back(b.recall_at_10);
    r25.push_back(b.recall_at_25);
    lift.push_back(b.lift_at_10);
    weight.push_back(b.weight);
  }
  bt.fields = {{"method", method},      {"auc", auc},          {"recall_at_1", r1},
               {"recall_at_5", r5},     {"recall_at_10", r10}, {"recall_at_25", r25},
               {"lift_at_10", lift},    {"weight", weight},    {"population", population},
               {"positives", positives}};
  w.write_table("/lookalike/backtest", bt);
  w.attr("/lookalike/backtest", "holdout", r.config.lookalike.holdout);
  w.attr("/lookalike/backtest", "max_rows", r.config.lookalike.backtest_max_rows);
  w.write("/lookalike/model/coef", sp(la.model_coef));
  w.attr("/lookalike/model", "intercept", la.model_intercept);
  w.write("/lookalike/model/segment_rate", sp(la.segment_rate));
  w.write("/lookalike/model/seed_rows", sp(la.seed_rows));
  // What `icp score` needs beyond the above: the seed vectors (knn of new rows) and the fitted
  // combined values (the population new scores are placed in).
  w.write("/lookalike/model/seed_matrix", sp(la.seeds.storage()),
          {la.seeds.rows(), la.seeds.cols()});
  write_rows(r, w, col::combined, la.combined);
  std::vector<double> curve;
  for (const auto& b : la.backtest) curve.insert(curve.end(), b.gain.begin(), b.gain.end());
  w.write("/lookalike/backtest_curve", sp(curve),
          {la.backtest.size(), la.backtest.empty() ? 0 : la.backtest.front().gain.size()});
}

void write_icp(const RunResult& r, h5::Writer& w) {
  const auto& segs = r.summary.segments;
  std::vector<std::int64_t> seg, size, seeds, neg, rank;
  std::vector<double> share, rate, lift, neg_rate, vmean, vmed, vtot;
  std::vector<std::string> label, desc;
  for (const auto& s : segs) {
    seg.push_back(s.segment);
    size.push_back(s.size);
    share.push_back(s.share);
    seeds.push_back(s.seed_count);
    rate.push_back(s.seed_rate);
    lift.push_back(s.lift);
    neg.push_back(s.negative_count);
    neg_rate.push_back(s.negative_rate);
    vmean.push_back(s.value_mean);
    vmed.push_back(s.value_median);
    vtot.push_back(s.value_total);
    rank.push_back(s.icp_rank);
    label.push_back(s.label);
    desc.push_back(s.description);
  }
  h5::Table t;
  t.fields = {{"segment", seg},        {"size", size},
              {"share", share},        {"seed_count", seeds},
              {"seed_rate", rate},     {"lift", lift},
              {"negative_count", neg}, {"negative_rate", neg_rate},
              {"value_mean", vmean},   {"value_median", vmed},
              {"value_total", vtot},   {"icp_rank", rank},
              {"label", label},        {"description", desc}};
  w.write_table("/icp/summary", t);
  w.attr("/icp", "base_seed_rate", r.summary.base_seed_rate);
  w.attr("/icp", "value_column", r.config.value_column);
  w.attr("/icp", "json", to_json(r.summary));

  h5::Table num, cat;
  std::vector<std::int64_t> nseg, cseg;
  std::vector<std::string> ncol, ccol, clevel;
  std::vector<double> med, q1, q3, mean, miss, cshare, clift;
  for (const auto& s : segs) {
    for (const auto& p : s.numeric) {
      nseg.push_back(s.segment);
      ncol.push_back(p.column);
      med.push_back(p.median);
      q1.push_back(p.q1);
      q3.push_back(p.q3);
      mean.push_back(p.mean);
      miss.push_back(p.missing_share);
    }
    for (const auto& p : s.categorical)
      for (const auto& l : p.top) {
        cseg.push_back(s.segment);
        ccol.push_back(p.column);
        clevel.push_back(l.level);
        cshare.push_back(l.share);
        clift.push_back(l.lift);
      }
  }
  num.fields = {{"segment", nseg}, {"column", ncol}, {"median", med},        {"q1", q1},
                {"q3", q3},        {"mean", mean},   {"missing_share", miss}};
  cat.fields = {
      {"segment", cseg}, {"column", ccol}, {"level", clevel}, {"share", cshare}, {"lift", clift}};
  w.write_table("/icp/profiles/numeric", num);
  w.write_table("/icp/profiles/categorical", cat);
}

void write_run(const RunResult& r, h5::Writer& w) {
  w.group("/run");
  w.attr("/run", "rows_read", r.ingest.rows_read);
  w.attr("/run", "rows_accepted", r.ingest.rows_accepted);
  w.attr("/run", "rows_quarantined", r.ingest.rows_quarantined);
  w.attr("/run", "input_bytes", r.ingest.bytes);
  w.attr("/run", "input", r.config.input_path);
  w.attr("/run", "seeds", r.summary.seeds);
  w.attr("/run", "negatives", r.summary.negatives);
  w.attr("/run", "seed_ids_unmatched", r.seed_ids_unmatched);
  std::vector<std::string> names;
  std::vector<std::int64_t> rows;
  std::vector<double> secs;
  for (const auto& s : r.stages) {
    w.attr("/run", "seconds_" + s.name, s.seconds);
    names.push_back(s.name);
    rows.push_back(s.rows);
    secs.push_back(s.seconds);
  }
  h5::Table t;
  t.fields = {{"stage", names}, {"rows", rows}, {"seconds", secs}};
  w.write_table("/run/stages", t);
}

std::string fmt_num(double v) {
  if (!std::isfinite(v)) return "-";
  const double a = std::fabs(v);
  if (a >= 1e9) return fmt::format("{:.1f}B", v / 1e9);
  if (a >= 1e6) return fmt::format("{:.1f}M", v / 1e6);
  if (a >= 1e4) return fmt::format("{:.0f}K", v / 1e3);
  return fmt::format("{:.0f}", v);
}

}  // namespace

namespace {

/// top_prospects over ranks visited a block at a time: scan(visit) calls visit(first, ranks) on
/// consecutive blocks covering every row.
using RankVisit = std::function<void(std::size_t first, std::span<const std::int64_t> rank)>;
std::vector<std::size_t> top_prospects_of(const std::function<void(const RankVisit&)>& scan,
                                          std::span<const std::uint8_t> is_seed, std::size_t top) {
  // Ranks are 1..n, so the best `top` non-seeds rank at most top + (seeds): one pass keeps the
  // non-seeds up to that rank and a sort of those orders them, where inverting the whole
  // permutation took an n-entry array (80 MB of fresh pages at 10M rows).
  const auto seeds = static_cast<std::size_t>(
      std::count_if(is_seed.begin(), is_seed.end(), [](std::uint8_t s) { return s != 0; }));
  const std::size_t limit = std::min(is_seed.size(), top + seeds);
  std::vector<std::pair<std::int64_t, std::size_t>> kept;
  scan([&](std::size_t first, std::span<const std::int64_t> rank) {
    for (std::size_t t = 0; t < rank.size(); ++t) {
      const std::size_t i = first + t;
      if (is_seed[i] == 0 && rank[t] >= 1 && static_cast<std::size_t>(rank[t]) <= limit)
        kept.emplace_back(rank[t], i);
    }
  });
  std::sort(kept.begin(), kept.end());
  std::vector<std::size_t> out;
  for (std::size_t t = 0; t < std::min(top, kept.size()); ++t) out.push_back(kept[t].second);
  return out;
}

}  // namespace

std::vector<std::size_t> top_prospects(std::span<const std::int64_t> rank,
                                       std::span<const std::uint8_t> is_seed, std::size_t top) {
  if (rank.size() != is_seed.size())
    throw Error("top prospects: ranks and seed flags differ in length");
  return top_prospects_of([&](const RankVisit& visit) { visit(0, rank); }, is_seed, top);
}

std::vector<std::size_t> top_prospects(const h5::Reader& results,
                                       std::span<const std::uint8_t> is_seed, std::size_t top) {
  const std::size_t n = is_seed.size();
  if (results.dims("/lookalike/rank") != std::vector<std::uint64_t>{n})
    throw Error("results file: /lookalike/rank and /lookalike/is_seed differ in length");
  return top_prospects_of(
      [&](const RankVisit& visit) {
        for (std::size_t first = 0; first < n; first += kCopyBlockRows) {
          const std::vector<std::int64_t> rank = results.read_rows<std::int64_t>(
              "/lookalike/rank", first, std::min(kCopyBlockRows, n - first));
          visit(first, rank);
        }
      },
      is_seed, top);
}

void write_results(const RunResult& r, h5::Writer& w) {
  w.attr("/", "icp_format_version", kFormatVersion);
  w.attr("/", "icp_version", ICP_VERSION);
  w.attr("/", "created_utc", utc_now());
  w.attr("/", "config", r.config.config_text);
  w.attr("/", "seed", static_cast<std::int64_t>(r.config.seed));
  w.attr("/", "threads", static_cast<std::int64_t>(r.threads));
  w.attr("/", "processes", static_cast<std::int64_t>(r.processes));
  if (ids_held(r)) {
    w.write_strings("/accounts/id", r.ids);
    w.write("/accounts/source_line", sp(r.source_line));
  } else {
    // At the longest id's length, as write_strings would store the ids held.
    r.id_blocks(
        [&](std::size_t, const std::vector<std::string>& ids, std::span<const std::int64_t> lines) {
          w.append_strings("/accounts/id", ids, std::max<std::size_t>(1, r.longest_id));
          w.append("/accounts/source_line", lines);
        });
  }
  write_features(r, w);
  write_segments(r, w);
  if (!r.k_auto.empty()) {
    // The evidence behind kmeans.k = "auto": every run of its sweep (chosen_k among its attrs).
    write_sweep(r.k_auto, r.k_auto_options, w);
  }
  write_lookalike(r, w);
  write_icp(r, w);
  write_run(r, w);
}

void write_top_csv(const RunResult& r, const std::string& path, std::int64_t top_n) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw Error(path + ": cannot write the top-N CSV (folder missing or not writable)");
    out << "rank,id,score,tier,segment,reason_1,reason_2,reason_3\n";  // prospects: seeds skipped
    const auto names = r.normalizer.names();
    namespace col = lookalike_columns;
    const auto& la = r.lookalike;
    const std::size_t n = r.kmeans.assignment.size();
    const auto scan = [&](const RankVisit& visit) {
      std::vector<std::int64_t> rank;
      for (std::size_t first = 0; first < n; first += kCopyBlockRows) {
        rows_of(r, col::rank, la.rank, first, std::min(kCopyBlockRows, n - first), rank);
        visit(first, rank);
      }
    };
    const std::vector<std::size_t> top =
        top_prospects_of(scan, r.is_seed, static_cast<std::size_t>(top_n));
    std::vector<std::size_t> by_row = top;
    std::sort(by_row.begin(), by_row.end());
    const std::vector<std::string> ids = ids_of(r, by_row);
    std::vector<std::int64_t> rank;
    std::vector<float> score;
    std::vector<std::uint8_t> tier;
    std::vector<std::int32_t> reasons;
    for (std::size_t i : top) {
      const auto at = static_cast<std::size_t>(std::lower_bound(by_row.begin(), by_row.end(), i) -
                                               by_row.begin());
      rows_of(r, col::rank, la.rank, i, 1, rank);
      rows_of(r, col::score, la.score, i, 1, score);
      rows_of(r, col::tier, la.tier, i, 1, tier);
      if (r.spilled)
        r.spilled->read(col::reasons, i, 1, reasons, 3);
      else
        reasons.assign(la.reasons[i].begin(), la.reasons[i].end());
      out << rank[0] << ',' << csv_field(ids[at]) << ',' << fmt::format("{:.2f}", score[0]) << ','
          << char(tier[0]) << ',' << r.kmeans.assignment[i];
      for (std::int32_t f : reasons)
        out << ',' << (f >= 0 ? csv_field(names[static_cast<std::size_t>(f)]) : "");
      out << '\n';
    }
    if (!out.flush()) throw Error(path + ": write failed");
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::filesystem::remove(tmp);
    throw Error(path + ": cannot move the top-N CSV into place: " + ec.message());
  }
}

namespace {

struct TopRow {
  std::int64_t rank;
  std::string id;
  float score;
  char tier;
  std::int32_t segment;
};

struct Stored {
  h5::Table summary, backtest;
  std::vector<TopRow> top;  // the best-ranked non-seed accounts
  std::int64_t rows_read, rows_accepted, rows_quarantined, seeds;
  std::int64_t k, iterations;
  double inertia;
};

Stored load(const std::string& path, int top) {
  h5::Reader rd(path);
  if (!rd.has_attr("/", "icp_format_version"))
    throw Error(path + ": not an icp results file (no icp_format_version attribute)");
  Stored s;
  s.summary = rd.read_table("/icp/summary");
  s.backtest = rd.read_table("/lookalike/backtest");
  // Only the seed flags are read whole (the ranks a block at a time); the few rows printed are
  // read one by one (at 10M rows, reading every id string took seconds of a run's end).
  const std::vector<std::uint8_t> is_seed = rd.read<std::uint8_t>("/lookalike/is_seed");
  for (const std::size_t i : top_prospects(rd, is_seed, static_cast<std::size_t>(top))) {
    s.top.push_back(
        TopRow{rd.read_rows<std::int64_t>("/lookalike/rank", i, 1).at(0),
               rd.read_string_rows("/accounts/id", i, 1).at(0),
               rd.read_rows<float>("/lookalike/score", i, 1).at(0),
               static_cast<char>(rd.read_rows<std::uint8_t>("/lookalike/tier", i, 1).at(0)),
               rd.read_rows<std::int32_t>("/segments/assignment", i, 1).at(0)});
  }
  s.rows_read = rd.attr_int("/run", "rows_read");
  s.rows_accepted = rd.attr_int("/run", "rows_accepted");
  s.rows_quarantined = rd.attr_int("/run", "rows_quarantined");
  s.seeds = rd.attr_int("/run", "seeds");
  s.k = rd.attr_int("/segments", "k");
  s.iterations = rd.attr_int("/segments", "iterations");
  s.inertia = rd.attr_double("/segments", "inertia");
  return s;
}

template <class T>
const std::vector<T>& field(const h5::Table& t, const std::string& name) {
  for (const auto& f : t.fields)
    if (f.name == name) return std::get<std::vector<T>>(f.values);
  throw Error("results file: table has no field '" + name + "'");
}

bool has_field(const h5::Table& t, const std::string& name) {
  return std::any_of(t.fields.begin(), t.fields.end(),
                     [&](const h5::TableField& f) { return f.name == name; });
}

std::vector<std::size_t> summary_order(const h5::Table& t) {
  const auto& rank = field<std::int64_t>(t, "icp_rank");
  std::vector<std::size_t> order(rank.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](auto a, auto b) { return rank[a] < rank[b]; });
  return order;
}

}  // namespace

std::string inspect_text(const std::string& path, int top) {
  const Stored s = load(path, top);
  std::string o;
  o += fmt::format(
      "{}\n  rows read {}  accepted {}  quarantined {}  seeds {}  segments {}  "
      "k-means iterations {}  inertia {:.6g}\n\n",
      path, s.rows_read, s.rows_accepted, s.rows_quarantined, s.seeds, s.k, s.iterations,
      s.inertia);
  o += "ICP segments (best first)\n";
  o += fmt::format("  {:>4} {:>4} {:>8} {:>6} {:>6} {:>9} {:>6} {:>10}  {:<12} {}\n", "rank", "seg",
                   "size", "share", "seeds", "seed_rate", "lift", "value_med", "label",
                   "description");
  const auto& t = s.summary;
  for (std::size_t i : summary_order(t)) {
    o += fmt::format("  {:>4} {:>4} {:>8} {:>5.1f}% {:>6} {:>8.2f}% {:>6.2f} {:>10}  {:<12} {}\n",
                     field<std::int64_t>(t, "icp_rank")[i], field<std::int64_t>(t, "segment")[i],
                     field<std::int64_t>(t, "size")[i], 100.0 * field<double>(t, "share")[i],
                     field<std::int64_t>(t, "seed_count")[i],
                     100.0 * field<double>(t, "seed_rate")[i], field<double>(t, "lift")[i],
                     fmt_num(field<double>(t, "value_median")[i]),
                     field<std::string>(t, "label")[i], field<std::string>(t, "description")[i]);
  }
  if (!s.backtest.fields.empty() && s.backtest.rows() > 0) {
    o += "\nBacktest (held-out seeds)";
    // Files written before these columns existed still print their table.
    if (has_field(s.backtest, "population") && has_field(s.backtest, "positives"))
      o += fmt::format(": {} held-out seeds among {} accounts measured",
                       field<std::int64_t>(s.backtest, "positives")[0],
                       field<std::int64_t>(s.backtest, "population")[0]);
    o += "\n";
    o += fmt::format("  {:<10} {:>6} {:>7} {:>7} {:>7} {:>7} {:>8} {:>7}\n", "method", "AUC",
                     "rec@1%", "rec@5%", "rec@10%", "rec@25%", "lift@10%", "weight");
    const auto& b = s.backtest;
    for (std::size_t i = 0; i < b.rows(); ++i)
      o += fmt::format("  {:<10} {:>6.3f} {:>7.3f} {:>7.3f} {:>7.3f} {:>7.3f} {:>8.2f} {:>7.2f}\n",
                       field<std::string>(b, "method")[i], field<double>(b, "auc")[i],
                       field<double>(b, "recall_at_1")[i], field<double>(b, "recall_at_5")[i],
                       field<double>(b, "recall_at_10")[i], field<double>(b, "recall_at_25")[i],
                       field<double>(b, "lift_at_10")[i], field<double>(b, "weight")[i]);
  }
  o += fmt::format("\nTop {} lookalike accounts (seeds excluded)\n", top);
  o += fmt::format("  {:>6} {:<16} {:>6} {:>4} {:>4}\n", "rank", "id", "score", "tier", "seg");
  for (const TopRow& row : s.top)
    o += fmt::format("  {:>6} {:<16} {:>6.2f} {:>4} {:>4}\n", row.rank, row.id, row.score, row.tier,
                     row.segment);
  return o;
}

std::string inspect_json(const std::string& path, int top) {
  const Stored s = load(path, top);
  h5::Reader rd(path);
  nlohmann::json j;
  j["file"] = path;
  j["rows_read"] = s.rows_read;
  j["rows_accepted"] = s.rows_accepted;
  j["rows_quarantined"] = s.rows_quarantined;
  j["seeds"] = s.seeds;
  j["k"] = s.k;
  j["iterations"] = s.iterations;
  j["inertia"] = s.inertia;
  j["summary"] = nlohmann::json::parse(rd.attr_string("/icp", "json"));
  nlohmann::json bt = nlohmann::json::array();
  for (std::size_t i = 0; i < s.backtest.rows(); ++i)
    bt.push_back({{"method", field<std::string>(s.backtest, "method")[i]},
                  {"auc", field<double>(s.backtest, "auc")[i]},
                  {"recall_at_10", field<double>(s.backtest, "recall_at_10")[i]},
                  {"lift_at_10", field<double>(s.backtest, "lift_at_10")[i]},
                  {"weight", field<double>(s.backtest, "weight")[i]}});
  j["backtest"] = bt;
  nlohmann::json topj = nlohmann::json::array();
  for (const TopRow& t : s.top) {
    topj.push_back({{"rank", t.rank},
                    {"id", t.id},
                    {"score", t.score},
                    {"tier", std::string(1, t.tier)},
                    {"segment", t.segment}});
  }
  j["top_lookalikes"] = topj;
  return j.dump(2);
}

}  // namespace icp
