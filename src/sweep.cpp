// Sweeps over k-means settings with quality metrics, and the k = "auto" rule.
#include "icp/sweep.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <map>
#include <random>
#include <sstream>

#include "icp/error.hpp"
#include "icp/metrics.hpp"

namespace icp {

namespace {

using Clock = std::chrono::steady_clock;

double since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

/// splitmix64 finalizer: derives independent-looking seeds from (seed, stream) so that the
/// bootstrap draws and the samples of one run do not reuse another run's random stream.
std::uint64_t mix(std::uint64_t seed, std::uint64_t stream) {
  std::uint64_t z = seed + 0x9E3779B97F4A7C15ULL * (stream + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// Streams of mix(): one per use, so changing one sample never shifts another.
constexpr std::uint64_t kStreamSilhouette = 1;
constexpr std::uint64_t kStreamEvaluation = 2;
constexpr std::uint64_t kStreamBootstrap = 16;  // + bootstrap index (draw) and 1000 + (fit seed)

const char* init_name(KMeansInit init) {
  return to_string(init);
}

int parse_int(const std::string& s, const std::string& what, const std::string& text) {
  std::size_t used = 0;
  long v = 0;
  try {
    v = std::stol(s, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != s.size() || v < 1 || v > (1 << 20))
    throw ConfigError(what +
                      ": expected k values such as 4:40:4, 4:12 or 4,8,16 (each k >= 1), "
                      "found '" +
                      text + "'");
  return static_cast<int>(v);
}

Matrix gather_rows(MatrixView x, const std::vector<std::int64_t>& rows) {
  Matrix out(rows.size(), x.cols);
  for (std::size_t i = 0; i < rows.size(); ++i)
    std::copy(x.row(static_cast<std::size_t>(rows[i])),
              x.row(static_cast<std::size_t>(rows[i])) + x.cols, out.row(i));
  return out;
}

/// Mean pairwise ARI of `runs` k-means fits on bootstrap draws, compared on one shared
/// evaluation sample (see SweepRow::stability).
double stability(MatrixView x, const KMeansOptions& base, const SweepOptions& o,
                 std::uint64_t run_seed) {
  if (o.stability_runs < 2) return kNaN;
  const auto n = static_cast<std::int64_t>(x.rows);
  const std::int64_t m = std::min(n, std::max<std::int64_t>(o.stability_sample, 1));
  const Matrix eval = gather_rows(x, sample_rows(n, m, mix(run_seed, kStreamEvaluation)));
  std::vector<std::vector<std::int32_t>> labels;
  std::vector<float> dist(eval.rows());
  for (int b = 0; b < o.stability_runs; ++b) {
    std::mt19937_64 rng(mix(run_seed, kStreamBootstrap + static_cast<std::uint64_t>(b)));
    std::vector<std::int64_t> draw(static_cast<std::size_t>(m));
    // Bootstrap: with replacement. Modulo bias is below m / 2^64, far under any effect here.
    for (auto& r : draw) r = static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(n));
    const Matrix boot = gather_rows(x, draw);
    KMeansOptions ko = base;
    ko.seed = mix(run_seed, kStreamBootstrap + 1000 + static_cast<std::uint64_t>(b));
    ko.on_iteration = nullptr;
    const KMeansResult fit = kmeans_fit(boot, ko);
    labels.emplace_back(eval.rows());
    kmeans_predict(eval, fit.centroids, labels.back(), dist);
  }
  double sum = 0.0;
  int pairs = 0;
  for (std::size_t a = 0; a < labels.size(); ++a)
    for (std::size_t b = a + 1; b < labels.size(); ++b, ++pairs)
      sum += adjusted_rand_index(labels[a], labels[b]);
  return sum / pairs;
}

std::string num(double v, int digits = 17) {
  if (std::isnan(v)) return "";
  return fmt::format("{:.{}g}", v, digits);
}

}  // namespace

std::vector<int> parse_k_list(const std::string& text, const std::string& what) {
  std::vector<int> ks;
  if (text.find(':') != std::string::npos) {
    std::vector<std::string> parts;
    std::stringstream ss(text);
    std::string p;
    while (std::getline(ss, p, ':')) parts.push_back(p);
    if (parts.size() < 2 || parts.size() > 3)
      throw ConfigError(what + ": expected start:stop[:step], found '" + text + "'");
    const int start = parse_int(parts[0], what, text), stop = parse_int(parts[1], what, text);
    const int step = parts.size() == 3 ? parse_int(parts[2], what, text) : 1;
    if (stop < start) throw ConfigError(what + ": empty range '" + text + "' (stop < start)");
    for (int k = start; k <= stop; k += step) ks.push_back(k);
  } else {
    std::stringstream ss(text);
    std::string p;
    while (std::getline(ss, p, ',')) ks.push_back(parse_int(p, what, text));
  }
  if (ks.empty()) throw ConfigError(what + ": no k in '" + text + "'");
  return ks;
}

KMeansAlgorithm parse_kmeans_algorithm(const std::string& name, const std::string& what) {
  // Matched through kmeans' own to_string, so the names stay the ones job files use.
  const KMeansAlgorithm all[] = {KMeansAlgorithm::automatic, KMeansAlgorithm::lloyd,
                                 KMeansAlgorithm::hamerly, KMeansAlgorithm::yinyang,
                                 KMeansAlgorithm::minibatch};
  std::string names;
  for (auto a : all) {
    if (name == to_string(a)) return a;
    names += (names.empty() ? "" : " | ") + std::string(to_string(a));
  }
  throw ConfigError(what + ": unknown k-means algorithm '" + name + "' (expected " + names + ")");
}

std::vector<SweepRow> run_sweep(MatrixView x, const SweepOptions& o) {
  if (o.ks.empty() || o.algorithms.empty() || o.inits.empty() || o.repeats < 1)
    throw Error("sweep: nothing to run (give at least one k, algorithm, init and repeat)");
  std::vector<KMeansAlgorithm> algorithms;
  for (const auto& a : o.algorithms) algorithms.push_back(parse_kmeans_algorithm(a, "sweep"));
  std::int64_t weight_total = 0;
  for (int k : o.ks) {
    if (k < 1 || static_cast<std::size_t>(k) > x.rows)
      throw Error("sweep: k = " + std::to_string(k) + " is outside 1.." + std::to_string(x.rows) +
                  " (the rows of the matrix)");
    weight_total += static_cast<std::int64_t>(k) * static_cast<std::int64_t>(algorithms.size()) *
                    static_cast<std::int64_t>(o.inits.size()) * o.repeats;
  }
  const std::size_t total =
      o.ks.size() * algorithms.size() * o.inits.size() * static_cast<std::size_t>(o.repeats);

  std::vector<SweepRow> rows;
  rows.reserve(total);
  const auto t_start = Clock::now();
  std::int64_t weight_done = 0;
  auto report = [&](const SweepRow& r, bool done) {
    if (!o.on_progress) return;
    SweepProgress p;
    p.index = done ? rows.size() - 1 : rows.size();
    p.total = total;
    p.k = r.k;
    p.algorithm = r.algorithm;
    p.init = r.init;
    p.repeat = r.repeat;
    p.done = done;
    p.elapsed = since(t_start);
    p.eta = weight_done > 0 ? p.elapsed * static_cast<double>(weight_total - weight_done) /
                                  static_cast<double>(weight_done)
                            : 0.0;
    o.on_progress(p);
  };

  for (int k : o.ks) {
    for (std::size_t a = 0; a < algorithms.size(); ++a) {
      for (KMeansInit init : o.inits) {
        for (int rep = 0; rep < o.repeats; ++rep) {
          SweepRow r;
          r.k = k;
          r.algorithm = o.algorithms[a];
          r.init = init_name(init);
          r.repeat = rep;
          r.seed = o.seed + static_cast<std::uint64_t>(rep);
          report(r, false);

          KMeansOptions ko;
          ko.k = k;
          ko.max_iter = o.max_iter;
          ko.tol = o.tol;
          ko.seed = r.seed;
          ko.init = init;
          ko.algorithm = algorithms[a];
          ko.n_init = o.n_init;
          auto t0 = Clock::now();
          const KMeansResult fit = kmeans_fit(x, ko);
          r.seconds = since(t0);
          r.iterations = fit.iterations;
          r.converged = fit.converged;
          r.inertia = fit.inertia;

          t0 = Clock::now();
          if (o.silhouette_sample > 0) {
            const auto s = silhouette_sampled(x, fit.assignment, k, o.silhouette_sample,
                                              mix(r.seed, kStreamSilhouette));
            r.silhouette = s.mean;
            r.silhouette_se = s.standard_error;
            r.silhouette_sample = s.sample;
          } else {
            r.silhouette = r.silhouette_se = kNaN;
          }
          const ClusterQuality q = cluster_quality(x, fit.assignment, k);
          r.calinski_harabasz = q.calinski_harabasz;
          r.davies_bouldin = q.davies_bouldin;
          r.stability = stability(x, ko, o, r.seed);
          r.metric_seconds = since(t0);

          weight_done += k;
          rows.push_back(r);
          report(rows.back(), true);
        }
      }
    }
  }
  return rows;
}

int choose_k(const std::vector<SweepRow>& rows) {
  struct Acc {
    double sum = 0.0, se = 0.0;
    int count = 0;
  };
  std::map<int, Acc> by_k;  // ordered by k, so the scan below meets smaller ks first
  for (const auto& r : rows) {
    if (std::isnan(r.silhouette)) continue;
    auto& a = by_k[r.k];
    a.sum += r.silhouette;
    a.se += std::isnan(r.silhouette_se) ? 0.0 : r.silhouette_se;
    ++a.count;
  }
  if (by_k.empty()) throw Error("k auto: no run of the sweep has a silhouette to choose by");
  int best_k = 0;
  double best = -std::numeric_limits<double>::infinity(), best_se = 0.0;
  for (const auto& [k, a] : by_k) {
    const double mean = a.sum / a.count;
    if (mean > best) {  // strict: ties keep the smaller k
      best = mean;
      best_k = k;
      best_se = a.se / a.count;
    }
  }
  for (const auto& [k, a] : by_k) {
    if (a.sum / a.count >= best - best_se) return k;
  }
  return best_k;
}

SweepOptions k_auto_options(const JobConfig& config, std::size_t rows) {
  const auto top = static_cast<std::int64_t>(rows) - 1;
  if (config.k_min > top)
    throw ConfigError(config.config_path + ": kmeans.k_min = " + std::to_string(config.k_min) +
                      " leaves no k to try with k = \"auto\" on " + std::to_string(rows) +
                      " rows (k must be at most rows - 1)");
  SweepOptions o;
  const int k_max = static_cast<int>(std::min<std::int64_t>(config.k_max, top));
  for (int k = config.k_min; k <= k_max; ++k) o.ks.push_back(k);
  o.algorithms = {to_string(config.kmeans.algorithm)};
  o.inits = {config.kmeans.init};
  o.repeats = 1;
  o.seed = config.seed;
  o.max_iter = config.kmeans.max_iter;
  o.tol = config.kmeans.tol;
  o.n_init = config.kmeans.n_init;
  o.silhouette_sample = kKAutoSilhouetteSample;
  o.stability_runs = 0;
  return o;
}

void write_sweep(const std::vector<SweepRow>& rows, const SweepOptions& o, h5::Writer& out) {
  std::vector<std::int64_t> k, repeat, seed, iterations, converged, sample;
  std::vector<std::string> algorithm, init;
  std::vector<double> seconds, inertia, sil, sil_se, ch, db, stab, metric_seconds;
  for (const auto& r : rows) {
    k.push_back(r.k);
    algorithm.push_back(r.algorithm);
    init.push_back(r.init);
    repeat.push_back(r.repeat);
    seed.push_back(static_cast<std::int64_t>(r.seed));
    iterations.push_back(r.iterations);
    converged.push_back(r.converged ? 1 : 0);
    seconds.push_back(r.seconds);
    inertia.push_back(r.inertia);
    sil.push_back(r.silhouette);
    sil_se.push_back(r.silhouette_se);
    sample.push_back(r.silhouette_sample);
    ch.push_back(r.calinski_harabasz);
    db.push_back(r.davies_bouldin);
    stab.push_back(r.stability);
    metric_seconds.push_back(r.metric_seconds);
  }
  h5::Table t;
  t.fields = {{"k", k},
              {"algorithm", algorithm},
              {"init", init},
              {"repeat", repeat},
              {"seed", seed},
              {"iterations", iterations},
              {"converged", converged},
              {"seconds", seconds},
              {"inertia", inertia},
              {"silhouette", sil},
              {"silhouette_se", sil_se},
              {"silhouette_sample", sample},
              {"calinski_harabasz", ch},
              {"davies_bouldin", db},
              {"stability", stab},
              {"metric_seconds", metric_seconds}};
  out.write_table("/sweep", t);
  out.attr("/sweep", "seed", static_cast<std::int64_t>(o.seed));
  out.attr("/sweep", "repeats", o.repeats);
  out.attr("/sweep", "max_iter", o.max_iter);
  out.attr("/sweep", "tol", o.tol);
  out.attr("/sweep", "n_init", o.n_init);
  out.attr("/sweep", "silhouette_sample", o.silhouette_sample);
  out.attr("/sweep", "stability_runs", o.stability_runs);
  out.attr("/sweep", "stability_sample", o.stability_sample);
  bool any_silhouette = false;
  for (const auto& r : rows) any_silhouette = any_silhouette || !std::isnan(r.silhouette);
  out.attr("/sweep", "chosen_k", any_silhouette ? choose_k(rows) : 0);
}

std::string sweep_csv(const std::vector<SweepRow>& rows) {
  std::string s =
      "k,algorithm,init,repeat,seed,iterations,converged,seconds,inertia,silhouette,"
      "silhouette_se,silhouette_sample,calinski_harabasz,davies_bouldin,stability,"
      "metric_seconds\n";
  for (const auto& r : rows) {
    s += fmt::format("{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n", r.k, r.algorithm, r.init,
                     r.repeat, r.seed, r.iterations, r.converged ? 1 : 0, num(r.seconds),
                     num(r.inertia), num(r.silhouette), num(r.silhouette_se), r.silhouette_sample,
                     num(r.calinski_harabasz), num(r.davies_bouldin), num(r.stability),
                     num(r.metric_seconds));
  }
  return s;
}

std::string sweep_table(const std::vector<SweepRow>& rows) {
  auto f = [](double v, int prec) {
    return std::isnan(v) ? std::string("-") : fmt::format("{:.{}f}", v, prec);
  };
  std::string s = fmt::format(
      "{:>4} {:<8} {:<8} {:>3} {:>20} {:>5} {:>8} {:>14} {:>16} {:>10} "
      "{:>8} {:>9}\n",
      "k", "algo", "init", "rep", "seed", "iter", "seconds", "inertia", "silhouette", "CH", "DB",
      "stability");
  for (const auto& r : rows) {
    const std::string sil = std::isnan(r.silhouette)
                                ? std::string("-")
                                : fmt::format("{:.4f}±{:.4f}", r.silhouette, r.silhouette_se);
    s += fmt::format(
        "{:>4} {:<8} {:<8} {:>3} {:>20} {:>5} {:>8} {:>14} {:>16} {:>10} {:>8} "
        "{:>9}\n",
        r.k, r.algorithm, r.init, r.repeat, r.seed, r.iterations, f(r.seconds, 3),
        fmt::format("{:.6g}", r.inertia), sil, f(r.calinski_harabasz, 1), f(r.davies_bouldin, 4),
        f(r.stability, 4));
  }
  return s;
}

}  // namespace icp
