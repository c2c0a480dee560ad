// icp command line: owns options, timing, progress lines and files; the library owns the work.
// Exit codes: 0 success, 2 bad input / job file / arguments (with one clear message), 1 a bug.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <optional>

#include "icp/config.hpp"
#include "icp/error.hpp"
#include "icp/generate.hpp"
#include "icp/hdf5.hpp"
#include "icp/output.hpp"
#include "icp/parallel.hpp"
#include "icp/pipeline.hpp"

namespace {

constexpr int kExitBadInput = 2;

struct RunArgs {
  std::string config;
  std::string input, output, top_csv;
  std::optional<int> k, threads;
  std::optional<std::uint64_t> seed;
  bool quiet = false;
};

std::string with_commas(std::int64_t v) {
  std::string s = std::to_string(v < 0 ? -v : v);
  for (int i = static_cast<int>(s.size()) - 3; i > 0; i -= 3) s.insert(static_cast<std::size_t>(i), ",");
  return v < 0 ? "-" + s : s;
}

int cmd_run(const RunArgs& a) {
  icp::JobConfig job = icp::load_config(a.config);
  if (!a.input.empty()) job.input_path = a.input;
  if (!a.output.empty()) job.output.path = a.output;
  if (!a.top_csv.empty()) job.output.top_csv = a.top_csv;
  if (a.k) {
    if (*a.k < 1) throw icp::ConfigError("--k: must be at least 1, found " + std::to_string(*a.k));
    job.kmeans.k = *a.k;
  }
  if (a.seed) job.seed = *a.seed;
  if (a.threads) {
    if (*a.threads < 0) throw icp::ConfigError("--threads: must be >= 0");
    job.threads = *a.threads;
  }
  job.kmeans.seed = job.seed;
  job.config_text = icp::to_toml(job);  // what is stored is what ran, overrides included
  icp::set_threads(job.threads);

  // Open the output first: an unwritable folder fails now, before minutes of work, and the
  // temporary file is removed if anything later throws.
  icp::h5::Writer out(job.output.path);

  icp::RunProgress progress;
  if (!a.quiet) {
    std::fprintf(stderr, "icp %s: %s, %d threads\n", ICP_VERSION, job.config_path.c_str(),
                 icp::threads());
    progress.on_stage = [](const icp::StageTiming& s) {
      const double rate = s.seconds > 0 ? static_cast<double>(s.rows) / s.seconds : 0.0;
      std::fprintf(stderr, "  %-10s %12s rows %8.3f s %14s rows/s\n", s.name.c_str(),
                   with_commas(s.rows).c_str(), s.seconds,
                   with_commas(static_cast<std::int64_t>(rate)).c_str());
    };
  }
  const icp::RunResult run = icp::run_job(job, progress);
  if (!a.quiet) {
    std::fprintf(stderr, "  rows read %s = accepted %s + quarantined %s%s\n",
                 with_commas(run.ingest.rows_read).c_str(),
                 with_commas(run.ingest.rows_accepted).c_str(),
                 with_commas(run.ingest.rows_quarantined).c_str(),
                 run.ingest.rows_quarantined > 0 && !job.csv.quarantine_path.empty()
                     ? (" (see " + job.csv.quarantine_path + ")").c_str()
                     : "");
    if (run.seed_ids_unmatched > 0)
      std::fprintf(stderr, "  warning: %s seed ids in %s are not in the input\n",
                   with_commas(run.seed_ids_unmatched).c_str(), job.seeds.ids_file.c_str());
  }
  icp::write_results(run, out);
  if (!job.output.top_csv.empty())
    icp::write_top_csv(run, job.output.top_csv, job.lookalike.top_n);
  out.commit();
  if (!a.quiet) {
    std::printf("%s", icp::inspect_text(job.output.path, 10).c_str());
    std::printf("\nresults: %s\n", job.output.path.c_str());
    if (!job.output.top_csv.empty()) std::printf("top %lld prospects: %s\n",
                                                 static_cast<long long>(job.lookalike.top_n),
                                                 job.output.top_csv.c_str());
  }
  return 0;
}

int cmd_generate(std::int64_t rows, std::uint64_t seed, const std::string& output,
                 const std::string& truth, bool quiet) {
  icp::GenerateOptions o;
  o.rows = rows;
  o.seed = seed;
  const icp::GenerateStats s = icp::generate_accounts(o, output, truth);
  if (!quiet)
    std::fprintf(stderr, "generated %s rows (%s customers, %s in the planted ICP) -> %s in %.2f s\n",
                 with_commas(s.rows).c_str(), with_commas(s.customers).c_str(),
                 with_commas(s.icp_rows).c_str(), output.c_str(), s.seconds);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"icp: Ideal Customer Profile engine. Segments an account table with k-means, "
               "scores every account for similarity to your best customers, and writes ICP "
               "profiles, ranked segments and lookalike lists to HDF5."};
  app.set_version_flag("--version", std::string("icp ") + ICP_VERSION);
  app.require_subcommand(1);

  RunArgs run;
  auto* run_cmd = app.add_subcommand("run", "Run an ICP job (ingest, normalize, segment, score, "
                                            "summarize, write HDF5)");
  run_cmd->add_option("-c,--config", run.config, "Job file (TOML)")->required();
  run_cmd->add_option("--input", run.input, "Override input.path");
  run_cmd->add_option("--output", run.output, "Override output.path (HDF5)");
  run_cmd->add_option("--top-csv", run.top_csv, "Override output.top_csv");
  run_cmd->add_option("--k", run.k, "Override kmeans.k");
  run_cmd->add_option("--seed", run.seed, "Override run.seed");
  run_cmd->add_option("--threads", run.threads,
                      "Threads for OpenMP and oneTBB together (0 = all cores)");
  run_cmd->add_flag("-q,--quiet", run.quiet, "No progress or summary output");

  std::int64_t gen_rows = 50000;
  std::uint64_t gen_seed = 7;
  std::string gen_out, gen_truth;
  bool gen_quiet = false;
  auto* gen_cmd = app.add_subcommand("generate", "Write a synthetic account table with planted "
                                                 "segments and a planted ICP");
  gen_cmd->add_option("--rows", gen_rows, "Rows to write")->check(CLI::NonNegativeNumber);
  gen_cmd->add_option("--seed", gen_seed, "Random seed");
  gen_cmd->add_option("-o,--output", gen_out, "Accounts CSV to write")->required();
  gen_cmd->add_option("--truth", gen_truth, "Also write the planted segment and ICP of each row");
  gen_cmd->add_flag("-q,--quiet", gen_quiet, "No summary line");

  std::string insp_path;
  bool insp_json = false;
  int insp_top = 10;
  auto* insp_cmd = app.add_subcommand("inspect", "Print a results file's ICP summary, backtest "
                                                 "and top lookalikes");
  insp_cmd->add_option("results", insp_path, "Results HDF5 file")->required();
  insp_cmd->add_flag("--json", insp_json, "Print JSON instead of text");
  insp_cmd->add_option("--top", insp_top, "Lookalike accounts to list")->check(CLI::PositiveNumber);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : kExitBadInput;
  }

  try {
    if (*run_cmd) return cmd_run(run);
    if (*gen_cmd) return cmd_generate(gen_rows, gen_seed, gen_out, gen_truth, gen_quiet);
    if (*insp_cmd) {
      std::printf("%s\n", insp_json ? icp::inspect_json(insp_path, insp_top).c_str()
                                    : icp::inspect_text(insp_path, insp_top).c_str());
      return 0;
    }
  } catch (const icp::Error& e) {
    std::fprintf(stderr, "icp: error: %s\n", e.what());
    return kExitBadInput;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "icp: internal error: %s\n", e.what());
    return 1;
  }
  return 0;
}
