// The HTML report: everything is read back from the results file, so `icp report` can draw any
// past run, and charts are hand-written SVG (a chart library would mean script or network).
#include "icp/report.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <variant>
#include <vector>

#include "icp/error.hpp"
#include "icp/hdf5.hpp"
#include "icp/output.hpp"

namespace icp {

namespace {

// Colour per backtest method, in backtest row order (knn, segment, model, ensemble).
constexpr const char* kMethodColours[] = {"#4e79a7", "#f28e2b", "#59a14f", "#d62728"};
// Heatmap colour saturates at this many units of the feature's own scale (robust z for numeric
// features, share difference for levels): beyond it every cell looks equally extreme anyway.
constexpr double kHeatClamp = 1.0;

std::string esc(const std::string& s) {
  std::string o;
  o.reserve(s.size());
  for (const char c : s) {
    switch (c) {
      case '&':
        o += "&amp;";
        break;
      case '<':
        o += "&lt;";
        break;
      case '>':
        o += "&gt;";
        break;
      case '"':
        o += "&quot;";
        break;
      case '\'':
        o += "&#39;";
        break;
      default:
        o += c;
    }
  }
  return o;
}

template <class T>
const std::vector<T>& field(const h5::Table& t, const std::string& name, const std::string& where) {
  for (const auto& f : t.fields) {
    if (f.name != name) continue;
    if (const auto* v = std::get_if<std::vector<T>>(&f.values)) return *v;
  }
  throw Error(where + ": no field '" + name + "' of the expected type");
}

std::string num(double v) {
  if (!std::isfinite(v)) return "&ndash;";
  const double a = std::fabs(v);
  if (a >= 1e9) return fmt::format("{:.1f}B", v / 1e9);
  if (a >= 1e6) return fmt::format("{:.1f}M", v / 1e6);
  if (a >= 1e4) return fmt::format("{:.0f}K", v / 1e3);
  return fmt::format("{:.0f}", v);
}

// Diverging blue-white-red for v in [-1, 1].
std::string heat_colour(double v) {
  v = std::clamp(v, -1.0, 1.0);
  const auto mix = [](double a, double b, double t) {
    return static_cast<int>(std::lround(a + (b - a) * t));
  };
  if (v >= 0)
    return fmt::format("rgb({},{},{})", mix(255, 214, v), mix(255, 39, v), mix(255, 40, v));
  return fmt::format("rgb({},{},{})", mix(255, 31, -v), mix(255, 119, -v), mix(255, 180, -v));
}

struct Data {
  h5::Table summary, backtest;
  std::vector<double> curve;  // methods x points
  std::size_t curve_points = 0;
  std::vector<float> centroids;
  std::vector<std::string> features;
  std::vector<double> feature_weight;
  struct Account {
    std::int64_t rank = 0;
    std::string id;
    float score = 0.0f;
    std::uint8_t tier = 0;
    std::int32_t segment = 0;
    std::array<std::int32_t, 3> reasons{};
  };
  std::vector<Account> top;  // the best-ranked accounts that are not seeds, best first
  std::int64_t rows = 0, seeds = 0, k = 0;
  std::string method, input, created;
};

Data load(const std::string& path, int top) {
  const h5::Reader rd(path);
  if (!rd.has_attr("/", "icp_format_version"))
    throw Error(path + ": not an icp results file (no icp_format_version attribute)");
  Data d;
  d.summary = rd.read_table("/icp/summary");
  d.backtest = rd.read_table("/lookalike/backtest");
  if (rd.exists("/lookalike/backtest_curve")) {
    d.curve = rd.read<double>("/lookalike/backtest_curve");
    const auto dims = rd.dims("/lookalike/backtest_curve");
    d.curve_points = dims.size() == 2 ? static_cast<std::size_t>(dims[1]) : 0;
  }
  d.centroids = rd.read<float>("/segments/centroids");
  d.features = rd.read_strings("/features/names");
  d.feature_weight = field<double>(rd.read_table("/features/normalizer"), "weight",
                                   path + ": /features/normalizer");
  d.rows = rd.attr_int("/run", "rows_accepted");
  d.seeds = rd.attr_int("/run", "seeds");
  d.k = rd.attr_int("/segments", "k");
  d.method = rd.attr_string("/lookalike", "method");
  d.input = rd.attr_string("/run", "input");
  d.created = rd.attr_string("/", "created_utc");
  // Only is_seed is read whole (the ranks a block at a time): the table lists `top` accounts,
  // whose other columns are read row by row (at 10M rows, reading every id and score took most of
  // the write stage).
  const std::vector<std::uint8_t> is_seed = rd.read<std::uint8_t>("/lookalike/is_seed");
  const std::size_t n = is_seed.size();
  const std::vector<std::uint64_t> one{n};
  const std::vector<std::uint64_t> three{n, 3};
  if (rd.dims("/accounts/id") != one || rd.dims("/lookalike/score") != one ||
      rd.dims("/lookalike/tier") != one || rd.dims("/lookalike/rank") != one ||
      rd.dims("/segments/assignment") != one || rd.dims("/lookalike/reasons") != three ||
      d.centroids.size() != static_cast<std::size_t>(d.k) * d.features.size() ||
      d.feature_weight.size() != d.features.size())
    throw Error(path + ": per-account or model datasets have inconsistent sizes");
  for (const std::size_t i :
       top_prospects(rd, is_seed, static_cast<std::size_t>(std::max(top, 0)))) {
    Data::Account a;
    a.rank = rd.read_rows<std::int64_t>("/lookalike/rank", i, 1).at(0);
    a.id = rd.read_string_rows("/accounts/id", i, 1).at(0);
    a.score = rd.read_rows<float>("/lookalike/score", i, 1).at(0);
    a.tier = rd.read_rows<std::uint8_t>("/lookalike/tier", i, 1).at(0);
    a.segment = rd.read_rows<std::int32_t>("/segments/assignment", i, 1).at(0);
    // A listed row's 3 reasons: reading the whole n x 3 table was 120 MB inflated at 10M rows.
    const std::vector<std::int32_t> reasons =
        rd.read_rows<std::int32_t>("/lookalike/reasons", i, 1);
    for (std::size_t r = 0; r < 3; ++r) a.reasons[r] = reasons.at(r);
    d.top.push_back(std::move(a));
  }
  return d;
}

std::vector<std::size_t> by_icp_rank(const Data& d, const std::string& where) {
  const auto& rank = field<std::int64_t>(d.summary, "icp_rank", where);
  std::vector<std::size_t> order(rank.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](auto a, auto b) { return rank[a] < rank[b]; });
  return order;
}

std::string label_colour(const std::string& label) {
  if (label == "ICP") return "#2ca02c";
  if (label == "negative-ICP") return "#d62728";
  return "#9e9e9e";
}

// Horizontal bars: segment size, with the seed lift written at the end of each bar.
std::string segments_svg(const Data& d, const std::vector<std::size_t>& order,
                         const std::string& where) {
  const auto& seg = field<std::int64_t>(d.summary, "segment", where);
  const auto& size = field<std::int64_t>(d.summary, "size", where);
  const auto& lift = field<double>(d.summary, "lift", where);
  const auto& label = field<std::string>(d.summary, "label", where);
  const double max_size =
      static_cast<double>(std::max<std::int64_t>(1, *std::max_element(size.begin(), size.end())));
  const int row_h = 26, left = 110, width = 800, bar_w = 440;
  const int height = row_h * static_cast<int>(order.size()) + 30;
  std::string s = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" role=\"img\" "
      "aria-label=\"segment sizes and lift\">\n",
      width, height);
  int y = 10;
  for (const std::size_t i : order) {
    const double w = static_cast<double>(bar_w) * static_cast<double>(size[i]) / max_size;
    s += fmt::format(
        "<text x=\"{}\" y=\"{}\" text-anchor=\"end\" class=\"lbl\">segment {}</text>"
        "<rect x=\"{}\" y=\"{}\" width=\"{:.1f}\" height=\"{}\" fill=\"{}\"><title>{} accounts, "
        "lift {:.2f}</title></rect>"
        "<text x=\"{:.1f}\" y=\"{}\" class=\"lbl\">{} &#183; lift {:.2f} &#183; {}</text>\n",
        left - 8, y + 15, seg[i], left, y, w, row_h - 6, label_colour(label[i]), size[i], lift[i],
        left + w + 6, y + 15, size[i], lift[i], esc(label[i]));
    y += row_h;
  }
  s += "</svg>\n";
  return s;
}

// Gain curves: share of held-out seeds found (y) within the top fraction of the population (x).
std::string gain_svg(const Data& d, const std::string& where) {
  const std::size_t methods = d.backtest.rows();
  if (methods == 0 || d.curve_points < 2 || d.curve.size() != methods * d.curve_points)
    return "<p>No backtest gain curve in this file.</p>\n";
  const auto& name = field<std::string>(d.backtest, "method", where);
  const auto& auc = field<double>(d.backtest, "auc", where);
  const double x0 = 50, y0 = 20, w = 420, h = 300;
  std::string s = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" role=\"img\" "
      "aria-label=\"backtest gain curves\">\n",
      x0 + w + 190, y0 + h + 45);
  s += fmt::format(
      "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" "
      "stroke=\"#bbb\"/>\n",
      x0, y0, w, h);
  for (int t = 0; t <= 4; ++t) {
    const double f = t / 4.0;
    s += fmt::format(
        "<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\" class=\"ax\">{}%"
        "</text><text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"end\" class=\"ax\">{}%"
        "</text>\n",
        x0 + f * w, y0 + h + 16, t * 25, x0 - 6, y0 + h - f * h + 4, t * 25);
  }
  s += fmt::format(
      "<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\" class=\"ax\">top share "
      "of accounts (held-out seeds and non-seeds)</text>\n",
      x0 + w / 2, y0 + h + 36);
  s += fmt::format(
      "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#999\" "
      "stroke-dasharray=\"4 3\"/>\n",
      x0, y0 + h, x0 + w, y0);
  for (std::size_t m = 0; m < methods; ++m) {
    std::string pts;
    for (std::size_t p = 0; p < d.curve_points; ++p) {
      const double fx = static_cast<double>(p) / static_cast<double>(d.curve_points - 1);
      const double fy = d.curve[m * d.curve_points + p];
      pts += fmt::format("{:.1f},{:.1f} ", x0 + fx * w, y0 + h - fy * h);
    }
    const char* colour = kMethodColours[std::min<std::size_t>(m, 3)];
    s += fmt::format("<polyline points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"{}\"/>\n",
                     pts, colour, name[m] == "ensemble" ? 3 : 1.5);
    s += fmt::format(
        "<rect x=\"{}\" y=\"{}\" width=\"14\" height=\"4\" fill=\"{}\"/>"
        "<text x=\"{}\" y=\"{}\" class=\"lbl\">{} (AUC {:.3f})</text>\n",
        x0 + w + 14, y0 + 10 + 20 * static_cast<double>(m), colour, x0 + w + 34,
        y0 + 15 + 20 * static_cast<double>(m), esc(name[m]), auc[m]);
  }
  s += "</svg>\n";
  return s;
}

// Segments (rows, ICP rank order) x features (columns): the centroid divided by the feature's
// weight, i.e. in the feature's own units (robust z, or share above/below the overall share).
std::string heatmap_svg(const Data& d, const std::vector<std::size_t>& order, int max_features) {
  const std::size_t dims = d.features.size();
  const auto k = static_cast<std::size_t>(d.k);
  std::vector<double> v(k * dims);
  for (std::size_t c = 0; c < k; ++c)
    for (std::size_t j = 0; j < dims; ++j)
      v[c * dims + j] = d.feature_weight[j] != 0.0
                            ? static_cast<double>(d.centroids[c * dims + j]) / d.feature_weight[j]
                            : 0.0;
  // Widest spread across segments first when there are more features than columns.
  std::vector<std::size_t> cols(dims);
  std::iota(cols.begin(), cols.end(), std::size_t{0});
  if (dims > static_cast<std::size_t>(max_features)) {
    std::vector<double> spread(dims, 0.0);
    for (std::size_t j = 0; j < dims; ++j) {
      double lo = INFINITY, hi = -INFINITY;
      for (std::size_t c = 0; c < k; ++c) {
        lo = std::min(lo, v[c * dims + j]);
        hi = std::max(hi, v[c * dims + j]);
      }
      spread[j] = hi - lo;
    }
    std::stable_sort(cols.begin(), cols.end(),
                     [&](auto a, auto b) { return spread[a] > spread[b]; });
    cols.resize(static_cast<std::size_t>(max_features));
    std::sort(cols.begin(), cols.end());
  }
  const int cell = 22, left = 90, top = 150;
  const int width = left + cell * static_cast<int>(cols.size()) + 20;
  const int height = top + cell * static_cast<int>(order.size()) + 10;
  std::string s = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" role=\"img\" "
      "aria-label=\"segment profile heatmap\">\n",
      width, height);
  for (std::size_t t = 0; t < cols.size(); ++t) {
    const int x = left + cell * static_cast<int>(t) + cell / 2;
    s += fmt::format("<text transform=\"translate({},{}) rotate(-60)\" class=\"ax\">{}</text>\n", x,
                     top - 6, esc(d.features[cols[t]]));
  }
  int y = top;
  for (const std::size_t c : order) {
    s += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"end\" class=\"lbl\">segment {}</text>",
                     left - 6, y + 15, c);
    for (std::size_t t = 0; t < cols.size(); ++t) {
      const double val = v[c * dims + cols[t]];
      s += fmt::format(
          "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\">"
          "<title>segment {}, {}: {:.2f}</title></rect>",
          left + cell * static_cast<int>(t), y, cell - 1, cell - 1, heat_colour(val / kHeatClamp),
          c, esc(d.features[cols[t]]), val);
    }
    s += "\n";
    y += cell;
  }
  s += "</svg>\n";
  return s;
}

std::string icp_table(const Data& d, const std::vector<std::size_t>& order,
                      const std::string& where) {
  const auto& t = d.summary;
  std::string s =
      "<table>\n<tr><th>ICP rank</th><th>segment</th><th>size</th><th>share</th><th>seeds</th>"
      "<th>seed rate</th><th>lift</th><th>negative rate</th><th>value median</th>"
      "<th>label</th><th>description</th></tr>\n";
  for (const std::size_t i : order) {
    const std::string& label = field<std::string>(t, "label", where)[i];
    s += fmt::format(
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{:.1f}%</td><td>{}</td><td>{:.2f}%</td>"
        "<td>{:.2f}</td><td>{:.2f}%</td><td>{}</td><td "
        "style=\"color:{}\">{}</td><td>{}</td></tr>\n",
        field<std::int64_t>(t, "icp_rank", where)[i], field<std::int64_t>(t, "segment", where)[i],
        field<std::int64_t>(t, "size", where)[i], 100.0 * field<double>(t, "share", where)[i],
        field<std::int64_t>(t, "seed_count", where)[i],
        100.0 * field<double>(t, "seed_rate", where)[i], field<double>(t, "lift", where)[i],
        100.0 * field<double>(t, "negative_rate", where)[i],
        num(field<double>(t, "value_median", where)[i]), label_colour(label), esc(label),
        esc(field<std::string>(t, "description", where)[i]));
  }
  return s + "</table>\n";
}

std::string backtest_table(const Data& d, const std::string& where) {
  const auto& b = d.backtest;
  if (b.rows() == 0) return "<p>No backtest (holdout = 0).</p>\n";
  std::string s =
      "<table>\n<tr><th>method</th><th>AUC</th><th>recall@1%</th><th>recall@5%</th>"
      "<th>recall@10%</th><th>recall@25%</th><th>lift@10%</th><th>weight</th></tr>\n";
  for (std::size_t i = 0; i < b.rows(); ++i)
    s += fmt::format(
        "<tr><td>{}</td><td>{:.3f}</td><td>{:.3f}</td><td>{:.3f}</td><td>{:.3f}</td>"
        "<td>{:.3f}</td><td>{:.2f}</td><td>{:.2f}</td></tr>\n",
        esc(field<std::string>(b, "method", where)[i]), field<double>(b, "auc", where)[i],
        field<double>(b, "recall_at_1", where)[i], field<double>(b, "recall_at_5", where)[i],
        field<double>(b, "recall_at_10", where)[i], field<double>(b, "recall_at_25", where)[i],
        field<double>(b, "lift_at_10", where)[i], field<double>(b, "weight", where)[i]);
  return s + "</table>\n";
}

std::string top_table(const Data& d) {
  std::string s =
      "<table>\n<tr><th>rank</th><th>id</th><th>score</th><th>tier</th><th>segment</th>"
      "<th>reasons</th></tr>\n";
  for (const Data::Account& a : d.top) {
    std::string reasons;
    for (const std::int32_t f : a.reasons) {
      if (f < 0 || static_cast<std::size_t>(f) >= d.features.size()) continue;
      if (!reasons.empty()) reasons += ", ";
      reasons += esc(d.features[static_cast<std::size_t>(f)]);
    }
    s += fmt::format(
        "<tr><td>{}</td><td>{}</td><td>{:.2f}</td><td>{}</td><td>{}</td><td>{}</td>"
        "</tr>\n",
        a.rank, esc(a.id), a.score, static_cast<char>(a.tier), a.segment, reasons);
  }
  return s + "</table>\n";
}

}  // namespace

std::string report_html(const std::string& results_path, const ReportOptions& options) {
  const Data d = load(results_path, options.top);
  const std::string where = results_path + ": /icp/summary";
  const std::vector<std::size_t> order = by_icp_rank(d, where);
  std::string h;
  h += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";
  h += "<title>ICP report: " + esc(results_path) + "</title>\n";
  h += "<style>body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1150px}"
       "table{border-collapse:collapse;font-size:13px;margin:8px 0 20px}"
       "td,th{border:1px solid #ddd;padding:3px 7px;text-align:right}"
       "th{background:#f3f3f3}td:last-child{text-align:left}"
       ".lbl{font-size:12px}.ax{font-size:11px;fill:#555}h2{margin-top:28px}"
       ".meta{color:#555;font-size:13px}</style>\n</head>\n<body>\n";
  h += "<h1>Ideal customer profile report</h1>\n";
  h += fmt::format(
      "<p class=\"meta\">{} &#183; input {} &#183; {} accounts, {} seeds, {} segments, "
      "lookalike method {} &#183; created {}</p>\n",
      esc(results_path), esc(d.input), d.rows, d.seeds, d.k, esc(d.method), esc(d.created));
  h += "<h2>Segments: size and seed lift</h2>\n";
  h += "<p class=\"meta\">Best ICP rank first. Lift = the segment's seed rate over the overall "
       "seed rate; colour = label (green ICP, grey neutral, red negative-ICP).</p>\n";
  h += segments_svg(d, order, where);
  h += "<h2>Backtest: held-out seeds</h2>\n";
  h += "<p class=\"meta\">A seeded share of the seeds is hidden, every method is fitted on the "
       "rest, "
       "and the hidden seeds are looked for among all non-seed accounts. Dashed line: "
       "random order.</p>\n";
  h += gain_svg(d, results_path + ": /lookalike/backtest");
  h += backtest_table(d, results_path + ": /lookalike/backtest");
  h += "<h2>Segment profiles</h2>\n";
  h += "<p class=\"meta\">Centroids in each feature's own units: robust z for numeric features, "
       "share above (red) or below (blue) the overall share for levels and missing flags.</p>\n";
  h += heatmap_svg(d, order, std::max(1, options.max_features));
  h += "<h2>ICP table</h2>\n";
  h += icp_table(d, order, where);
  h += fmt::format("<h2>Top {} lookalike accounts</h2>\n", options.top);
  h +=
      "<p class=\"meta\">Seeds excluded; reasons are the features that raise the score most.</p>\n";
  h += top_table(d);
  h += "</body>\n</html>\n";
  return h;
}

void write_report(const std::string& results_path, const std::string& html_path,
                  const ReportOptions& options) {
  const std::string html = report_html(results_path, options);
  const std::string tmp = html_path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw Error(html_path + ": cannot write the report (folder missing or not writable)");
    out << html;
    if (!out.flush()) {
      std::filesystem::remove(tmp);
      throw Error(html_path + ": write failed");
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, html_path, ec);
  if (ec) {
    std::filesystem::remove(tmp);
    throw Error(html_path + ": cannot move the report into place: " + ec.message());
  }
}

}  // namespace icp
