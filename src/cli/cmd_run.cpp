// `icp run`: the whole job from a job file, with command-line overrides.
#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "command.hpp"
#include "icp/checkpoint.hpp"
#include "icp/config.hpp"
#include "icp/error.hpp"
#include "icp/hdf5.hpp"
#include "icp/output.hpp"
#include "icp/parallel.hpp"
#include "icp/pipeline.hpp"
#include "icp/reduce.hpp"
#include "icp/report.hpp"
#ifdef ICP_WITH_MPI
#include "../mpi/mpi_reducer.hpp"
#endif

namespace icp::cli {
namespace {

struct RunArgs {
  std::string config;
  std::string input, output, top_csv;
  std::string checkpoint, resume;
  int checkpoint_every = 10;
  std::optional<int> k, threads;
  std::optional<std::uint64_t> seed;
  bool quiet = false;
  std::string memory_limit;  // streamed run: its block size from this
  std::size_t block_rows = 0;
  std::string scratch_dir;
};

// Streamed runs hold per row labels and flags (6 bytes; 14 while ranking: the sorted keys and
// their counters) and one block in flight; scores and the rest wait in a scratch file. A block row
// costs its table cells, its normalized row and the stages' per-block scratch: 2 KiB is a generous
// bound for demo-like jobs (d ~ 50), so a block takes about an eighth of the limit and the rest is
// left to the per-row state.
constexpr std::uint64_t kRunBytesPerBlockRow = 2048;
constexpr std::uint64_t kRunBlockShareOfLimit = 8;

bool streamed(const RunArgs& a) {
  return !a.memory_limit.empty() || a.block_rows > 0;
}

StreamOptions stream_options(const RunArgs& a) {
  StreamOptions o;
  o.scratch_dir = a.scratch_dir;
  if (a.block_rows > 0) {
    o.block_rows = a.block_rows;
    return o;
  }
  const std::uint64_t rows =
      parse_size(a.memory_limit) / kRunBlockShareOfLimit / kRunBytesPerBlockRow;
  const std::uint64_t clamped =
      std::clamp<std::uint64_t>(rows, kReduceChunkRows, std::uint64_t{1} << 20);
  o.block_rows = static_cast<std::size_t>(clamped - clamped % kReduceChunkRows);
  return o;
}

JobConfig resolve(const RunArgs& a) {
  JobConfig job = load_config(a.config);
  if (!a.input.empty()) job.input_path = a.input;
  if (!a.output.empty()) job.output.path = a.output;
  if (!a.top_csv.empty()) job.output.top_csv = a.top_csv;
  if (a.k) {
    if (*a.k < 1) throw ConfigError("--k: must be at least 1, found " + std::to_string(*a.k));
    job.kmeans.k = *a.k;
    job.k_auto = false;  // an explicit k overrides k = "auto" in the job file
  }
  if (a.seed) job.seed = *a.seed;
  if (a.threads) {
    if (*a.threads < 0) throw ConfigError("--threads: must be >= 0");
    job.threads = *a.threads;
  }
  job.kmeans.seed = job.seed;
  job.config_text = to_toml(job);  // what is stored is what ran, overrides included
  return job;
}

/// Peak resident memory of this process so far in MiB (Linux VmHWM; 0 where unavailable).
long long peak_rss_mib() {
  std::FILE* f = std::fopen("/proc/self/status", "r");
  if (f == nullptr) return 0;
  char line[256];
  long long kib = 0;
  while (std::fgets(line, sizeof line, f) != nullptr)
    if (std::sscanf(line, "VmHWM: %lld kB", &kib) == 1) break;
  std::fclose(f);
  return kib / 1024;
}

/// A stage's line: rows, time, rate, and the peak memory so far (which stage sets the peak is
/// what sizing a run, or a --memory-limit, needs to know).
void print_stage(const StageTiming& s) {
  const double rate = s.seconds > 0 ? static_cast<double>(s.rows) / s.seconds : 0.0;
  std::fprintf(stderr, "  %-10s %12s rows %8.3f s %14s rows/s %8s MiB peak\n", s.name.c_str(),
               with_commas(s.rows).c_str(), s.seconds,
               with_commas(static_cast<long long>(rate)).c_str(),
               with_commas(peak_rss_mib()).c_str());
}

/// Exit code of a run stopped by SIGTERM/SIGINT (after saving its checkpoint, if it keeps one).
constexpr int kExitStopped = 3;

volatile std::sig_atomic_t g_stop_signal = 0;

extern "C" void on_stop_signal(int sig) {
  if (g_stop_signal != 0) {
    // A second signal: the user (or the scheduler) does not want to wait for the checkpoint.
    std::signal(sig, SIG_DFL);
    std::raise(sig);
    return;
  }
  g_stop_signal = sig;
}

/// With checkpoints, SIGTERM (what schedulers send before a time limit or pre-emption) and
/// SIGINT finish the current k-means iteration or stage, save, and exit; without, they keep
/// their default (immediate) effect.
void catch_stop_signals() {
  std::signal(SIGTERM, on_stop_signal);
  std::signal(SIGINT, on_stop_signal);
}

/// The job on one process of `reducer` (the only one unless launched by mpirun). Processes
/// sharing a node share its cores: `--threads 0` gives each an equal part.
int run_on(const RunArgs& a, Reducer& reducer, int node_processes) {
  JobConfig job = resolve(a);
  if (job.threads == 0 && node_processes > 1) {
    set_threads(0);
    job.threads = std::max(1, threads() / node_processes);
  }
  set_threads(job.threads);
  const bool root = reducer.rank() == 0;

  // --resume keeps saving to the file it resumed from unless --checkpoint names another. Every
  // process reads the checkpoint (a shared file system, as batch clusters have) and takes part
  // in stops; only rank 0 writes it.
  const std::string checkpoint_path = !a.checkpoint.empty() ? a.checkpoint : a.resume;
  JobCheckpoint resumed;
  RunControl control;
  bool saved = !a.resume.empty();  // whether checkpoint_path holds a state to continue from
  if (!a.resume.empty()) {
    resumed = load_checkpoint(a.resume);
    control.resume = &resumed;
  }
  if (!checkpoint_path.empty()) {
    if (a.checkpoint_every < 0) throw ConfigError("--checkpoint-every: must be >= 0");
    control.checkpoint_every = a.checkpoint_every;
    control.save = [&, root](const JobCheckpoint& c) {
      if (root) save_checkpoint(checkpoint_path, c);
      saved = true;
    };
    control.stop_requested = [] { return g_stop_signal != 0; };
    catch_stop_signals();
  }
  if (!root) {
    // Rank 0 reads, scores and writes; the others lend their cores to the distributed stages.
    try {
      (void)run_job(job, {}, reducer, control);
    } catch (const Interrupted&) {
      return kExitStopped;  // rank 0 says why and where the state is
    }
    return 0;
  }

  // Open the output first: an unwritable folder fails now, before minutes of work, and the
  // temporary file is removed if anything later throws. The other outputs' folders are checked
  // now for the same reason.
  h5::Writer out(job.output.path);
  if (!job.output.top_csv.empty()) require_writable_folder(job.output.top_csv, "the top-N CSV");
  if (!job.output.report.empty()) require_writable_folder(job.output.report, "the report");

  RunProgress progress;
  if (!a.quiet) {
    if (reducer.size() > 1)
      std::fprintf(stderr, "icp %s: %s, %d processes x %d threads\n", ICP_VERSION,
                   job.config_path.c_str(), reducer.size(), threads());
    else
      std::fprintf(stderr, "icp %s: %s, %d threads\n", ICP_VERSION, job.config_path.c_str(),
                   threads());
    progress.on_stage = print_stage;
    if (control.resume != nullptr)
      std::fprintf(stderr, "  resuming from %s (%s)\n", a.resume.c_str(),
                   resumed.stage == CheckpointStage::kmeans
                       ? ("k-means restart " + std::to_string(resumed.kmeans.restart + 1) +
                          ", iteration " + std::to_string(resumed.kmeans.iteration))
                             .c_str()
                       : "k-means done");
  }
  RunResult result;
  try {
    if (streamed(a)) {
      if (reducer.size() > 1)
        throw ConfigError("a streamed run (--memory-limit, --block-rows) runs in one process");
      const StreamOptions so = stream_options(a);
      if (!a.quiet)
        std::fprintf(stderr, "  streamed: blocks of %s rows, normalized rows spilled to %s\n",
                     with_commas(static_cast<long long>(so.block_rows)).c_str(),
                     so.scratch_dir.empty() ? "the temporary folder" : so.scratch_dir.c_str());
      result = run_job_streamed(job, progress, so, control);
    } else {
      result = run_job(job, progress, reducer, control);
    }
  } catch (const Interrupted& e) {
    if (!saved) {
      // Stopped before k-means wrote anything: there is nothing to continue from.
      std::fprintf(stderr, "icp: stopped by signal %d: %s; no state saved yet, run it again\n",
                   g_stop_signal, e.what());
      return kExitStopped;
    }
    std::fprintf(stderr, "icp: stopped by signal %d: %s; state saved to %s\n", g_stop_signal,
                 e.what(), checkpoint_path.c_str());
    std::fprintf(stderr, "  continue with: icp run -c %s --resume %s\n", a.config.c_str(),
                 checkpoint_path.c_str());
    return kExitStopped;
  }
  if (!a.quiet) {
    const auto& in = result.ingest;
    std::string where;
    if (in.rows_quarantined > 0 && !job.csv.quarantine_path.empty())
      where = " (see " + job.csv.quarantine_path + ")";
    std::fprintf(stderr, "  rows read %s = accepted %s + quarantined %s%s\n",
                 with_commas(in.rows_read).c_str(), with_commas(in.rows_accepted).c_str(),
                 with_commas(in.rows_quarantined).c_str(), where.c_str());
    if (result.seed_ids_unmatched > 0)
      std::fprintf(stderr, "  warning: %s seed ids in %s are not in the input\n",
                   with_commas(result.seed_ids_unmatched).c_str(), job.seeds.ids_file.c_str());
    // The limit sizes the blocks; labels, flags and the ranks' sorted keys still grow with the
    // market. Say so when they went past it rather than let a scheduler's kill say it later.
    const long long limit_mib =
        a.memory_limit.empty() ? 0 : static_cast<long long>(parse_size(a.memory_limit) >> 20);
    if (limit_mib > 0 && peak_rss_mib() > limit_mib)
      std::fprintf(stderr,
                   "  warning: peak memory %s MiB is over --memory-limit %s MiB: a streamed run "
                   "still holds up to 14 bytes per row (docs/scaling.md)\n",
                   with_commas(peak_rss_mib()).c_str(), with_commas(limit_mib).c_str());
  }
  const auto write_start = std::chrono::steady_clock::now();
  write_results(result, out);
  out.commit();
  try {
    if (!job.output.top_csv.empty()) write_top_csv(result, job.output.top_csv, job.lookalike.top_n);
    // Drawn from the committed file, so the report shows exactly what was stored.
    if (!job.output.report.empty()) write_report(job.output.path, job.output.report);
  } catch (...) {
    // All or nothing: a run whose top-N CSV or report failed leaves none of its outputs, so no
    // one mistakes a results file without its report for a finished run.
    std::error_code ec;
    std::filesystem::remove(job.output.path, ec);
    if (!job.output.top_csv.empty()) std::filesystem::remove(job.output.top_csv, ec);
    throw;
  }
  if (!a.quiet)  // not in /run/stages: the file cannot hold the time it took to write itself
    print_stage(
        {"write", result.ingest.rows_accepted,
         std::chrono::duration<double>(std::chrono::steady_clock::now() - write_start).count()});
  // The results are in place: a later run must not pick up this job's state by mistake.
  if (!checkpoint_path.empty()) std::remove(checkpoint_path.c_str());
  if (!a.quiet) {
    std::printf("%s", inspect_text(job.output.path, 10).c_str());
    std::printf("\nresults: %s\n", job.output.path.c_str());
    if (!job.output.top_csv.empty())
      std::printf("top %lld prospects: %s\n", static_cast<long long>(job.lookalike.top_n),
                  job.output.top_csv.c_str());
    if (!job.output.report.empty()) std::printf("report: %s\n", job.output.report.c_str());
  }
  return 0;
}

int run(const RunArgs& a) {
#ifdef ICP_WITH_MPI
  if (mpi::launched()) {
    mpi::Session session;
    try {
      return run_on(a, session.reducer(), session.local_size());
    } catch (const Error& e) {
      // The failing rank's own words, then the whole job ends: no rank waits in a collective
      // for it, and rank 0's temporary output has already been removed by its destructor.
      std::fprintf(stderr, "icp: error (rank %d of %d): %s\n", session.reducer().rank(),
                   session.reducer().size(), e.what());
      session.abort(kExitBadInput);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "icp: internal error (rank %d of %d): %s\n", session.reducer().rank(),
                   session.reducer().size(), e.what());
      session.abort(1);
    }
  }
#endif
  return run_on(a, local_reducer(), 1);
}

const Registrar registrar{
    10, [](CLI::App& app) -> std::function<int()> {
      auto a = std::make_shared<RunArgs>();
      auto* cmd = app.add_subcommand(
          "run", "Run an ICP job (ingest, normalize, segment, score, summarize, write HDF5)");
      cmd->add_option("-c,--config", a->config, "Job file (TOML)")->required();
      cmd->add_option("--input", a->input, "Override input.path");
      cmd->add_option("--output", a->output, "Override output.path (HDF5)");
      cmd->add_option("--top-csv", a->top_csv, "Override output.top_csv");
      cmd->add_option("--k", a->k, "Override kmeans.k");
      cmd->add_option("--memory-limit", a->memory_limit,
                      "Stream an HDF5 input in blocks instead of holding the table and matrix "
                      "(e.g. 1G); the results equal an in-memory run's");
      cmd->add_option("--block-rows", a->block_rows,
                      "Stream in blocks of this many rows (a multiple of 4096; overrides the "
                      "size --memory-limit would choose)");
      cmd->add_option("--scratch-dir", a->scratch_dir,
                      "Folder for a streamed run's normalized rows (rows x features x 4 bytes, "
                      "removed at the end; default: TMPDIR)");
      cmd->add_option("--seed", a->seed, "Override run.seed");
      cmd->add_option("--threads", a->threads,
                      "Threads for OpenMP and oneTBB together (0 = all cores)");
      cmd->add_option(
          "--checkpoint", a->checkpoint,
          "Save the job's state to this HDF5 file while it runs (rank 0 writes it); SIGTERM "
          "or SIGINT then save and stop with exit code 3");
      cmd->add_option("--checkpoint-every", a->checkpoint_every,
                      "k-means iterations between checkpoints (default 10; also saved when k-means "
                      "ends)");
      cmd->add_option(
          "--resume", a->resume,
          "Continue from a checkpoint (same job file and input); keeps checkpointing to "
          "it");
      cmd->add_flag("-q,--quiet", a->quiet, "No progress or summary output");
      return [a] { return run(*a); };
    }};

}  // namespace
}  // namespace icp::cli
