// `icp sweep`: k-means over a grid of k, algorithms, inits and repeats on the job's normalized
// matrix (ingested and normalized once), each run timed and scored.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>

#include "command.hpp"
#include "icp/config.hpp"
#include "icp/error.hpp"
#include "icp/hdf5.hpp"
#include "icp/normalize.hpp"
#include "icp/output.hpp"
#include "icp/parallel.hpp"
#include "icp/pipeline.hpp"
#include "icp/sweep.hpp"

namespace icp::cli {
namespace {

struct SweepArgs {
  std::string config;
  std::string input;
  std::string k;
  std::string algorithms = "lloyd";
  std::string inits = "kmeans++";
  int repeats = 1;
  std::string csv, output;
  std::int64_t silhouette_sample = 10000;
  int stability_runs = 3;
  std::int64_t stability_sample = 20000;
  std::optional<std::uint64_t> seed;
  std::optional<int> threads;
  bool quiet = false;
};

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string p;
  while (std::getline(ss, p, ',')) {
    if (!p.empty()) out.push_back(p);
  }
  return out;
}

std::string clock_text(double s) {
  const auto t = static_cast<long long>(s + 0.5);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", t / 3600, t / 60 % 60, t % 60);
  return buf;
}

void write_text_file(const std::string& path, const std::string& text) {
  // Same temporary-then-rename rule as the HDF5 output: a failed write leaves no partial CSV.
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary);
    if (!out) throw Error(path + ": cannot write the sweep CSV");
    out << text;
    if (!out.flush()) throw Error(path + ": cannot write the sweep CSV");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw Error(path + ": cannot write the sweep CSV");
  }
}

int run(const SweepArgs& a) {
  JobConfig job = load_config(a.config);
  if (!a.input.empty()) job.input_path = a.input;
  if (a.seed) job.seed = *a.seed;
  if (a.threads) {
    if (*a.threads < 0) throw ConfigError("--threads: must be >= 0");
    job.threads = *a.threads;
  }
  if (a.repeats < 1) throw ConfigError("--repeats: must be at least 1");
  if (a.silhouette_sample < 0) throw ConfigError("--silhouette-sample: must be >= 0");
  if (a.stability_sample < 1) throw ConfigError("--stability-sample: must be >= 1");
  job.kmeans.seed = job.seed;
  job.config_text = to_toml(job);  // what is stored is what ran, overrides included
  set_threads(job.threads);

  SweepOptions o;
  o.ks = parse_k_list(a.k, "--k");
  o.algorithms = split(a.algorithms);
  for (const auto& name : o.algorithms) parse_kmeans_algorithm(name, "--algorithms");
  o.inits.clear();
  for (const auto& name : split(a.inits)) {
    if (name == "kmeans++")
      o.inits.push_back(KMeansInit::kmeanspp);
    else if (name == "random")
      o.inits.push_back(KMeansInit::random);
    else if (name == "kmeans||")
      o.inits.push_back(KMeansInit::kmeans_parallel);
    else
      throw ConfigError("--init: unknown init '" + name +
                        "' (expected kmeans++ | kmeans|| | random)");
  }
  if (o.algorithms.empty() || o.inits.empty())
    throw ConfigError("--algorithms / --init: give at least one name");
  o.repeats = a.repeats;
  o.seed = job.seed;
  o.max_iter = job.kmeans.max_iter;
  o.tol = job.kmeans.tol;
  o.n_init = job.kmeans.n_init;
  o.silhouette_sample = a.silhouette_sample;
  o.stability_runs = a.stability_runs;
  o.stability_sample = a.stability_sample;

  // Output first: a bad path fails before minutes of work.
  std::optional<h5::Writer> out;
  if (!a.output.empty()) out.emplace(a.output);

  using Clock = std::chrono::steady_clock;
  auto t0 = Clock::now();
  IngestStats ingest;
  const Table table = read_accounts(job, job.input_path, &ingest);
  if (table.rows == 0) throw Error(job.input_path + ": no accepted rows");
  NormalizeOptions nopt;
  nopt.numeric = job.numeric;
  nopt.categorical = job.categorical;
  nopt.missing = job.missing;
  const Normalizer normalizer = fit_normalizer(table, nopt);
  const Matrix x = apply_normalizer(normalizer, table);
  const double prep = std::chrono::duration<double>(Clock::now() - t0).count();
  if (!a.quiet) {
    std::fprintf(stderr,
                 "icp %s sweep: %s, %s rows x %zu features (ingest + normalize %.2f s), "
                 "%d threads\n",
                 ICP_VERSION, job.config_path.c_str(),
                 with_commas(static_cast<long long>(x.rows())).c_str(), x.cols(), prep, threads());
    o.on_progress = [](const SweepProgress& p) {
      if (!p.done) return;
      std::fprintf(stderr, "  [%zu/%zu] k=%d %s %s repeat %d  elapsed %s  eta %s\n", p.index + 1,
                   p.total, p.k, p.algorithm.c_str(), p.init.c_str(), p.repeat,
                   clock_text(p.elapsed).c_str(), clock_text(p.eta).c_str());
    };
  }
  const std::vector<SweepRow> rows = run_sweep(x, o);

  if (out) {
    write_sweep(rows, o, *out);
    out->attr("/", "icp_format_version", kFormatVersion);
    out->attr("/", "icp_version", ICP_VERSION);
    out->attr("/", "config", job.config_text);
    out->attr("/", "threads", threads());
    out->attr("/sweep", "rows", static_cast<std::int64_t>(x.rows()));
    out->attr("/sweep", "features", static_cast<std::int64_t>(x.cols()));
    out->write_strings("/sweep_features", normalizer.names());
    out->commit();
  }
  if (!a.csv.empty()) write_text_file(a.csv, sweep_csv(rows));
  std::printf("%s", sweep_table(rows).c_str());
  if (std::any_of(rows.begin(), rows.end(),
                  [](const SweepRow& r) { return !std::isnan(r.silhouette); }))
    std::printf("k by the auto rule (kmeans.k = \"auto\"): %d\n", choose_k(rows));
  return 0;
}

const Registrar registrar{
    40, [](CLI::App& app) -> std::function<int()> {
      auto a = std::make_shared<SweepArgs>();
      auto* cmd = app.add_subcommand(
          "sweep", "Benchmark k-means over k, algorithms, inits and repeats with quality metrics");
      cmd->add_option("-c,--config", a->config, "Job file (TOML): input, features, kmeans settings")
          ->required();
      cmd->add_option("--k", a->k, "k values: start:stop[:step] (stop included) or a,b,c")
          ->required();
      cmd->add_option("--algorithms", a->algorithms, "Comma-separated k-means algorithms");
      cmd->add_option("--init", a->inits, "Comma-separated inits: kmeans++,kmeans||,random");
      cmd->add_option("--repeats", a->repeats, "Runs per combination (seeds seed, seed+1, ...)");
      cmd->add_option("--csv", a->csv, "Also write the table as CSV");
      cmd->add_option("-o,--output", a->output, "Write /sweep to this HDF5 file");
      cmd->add_option("--silhouette-sample", a->silhouette_sample,
                      "Rows in the silhouette sample (0 = no silhouette)");
      cmd->add_option("--stability-runs", a->stability_runs,
                      "Bootstrap fits per run for stability (< 2 = none)");
      cmd->add_option("--stability-sample", a->stability_sample,
                      "Rows per bootstrap draw and in the evaluation sample");
      cmd->add_option("--input", a->input, "Override input.path");
      cmd->add_option("--seed", a->seed, "Override run.seed");
      cmd->add_option("--threads", a->threads,
                      "Threads for OpenMP and oneTBB together (0 = all cores)");
      cmd->add_flag("-q,--quiet", a->quiet, "No progress on stderr");
      return [a] { return run(*a); };
    }};

}  // namespace
}  // namespace icp::cli
