// `icp score`: new accounts through a finished run's normalizer, segments and lookalike model.
#include <unistd.h>

#include <array>
#include <cctype>
#include <cstdio>
#include <memory>
#include <optional>

#include "command.hpp"
#include "icp/config.hpp"
#include "icp/error.hpp"
#include "icp/hdf5.hpp"
#include "icp/model_io.hpp"
#include "icp/parallel.hpp"

namespace icp::cli {
namespace {

struct ScoreArgs {
  std::string model, input, output;
  std::string memory_limit;
  std::size_t block_rows = 0;
  std::optional<int> threads;
  bool quiet = false;
};

/// Resident bytes of this process now (Linux /proc; 0 where unavailable).
std::uint64_t resident_bytes() {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  unsigned long long size = 0, resident = 0;
  const int got = std::fscanf(f, "%llu %llu", &size, &resident);
  std::fclose(f);
  return got == 2 ? resident * static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE)) : 0;
}

int score_streamed(const ScoreArgs& a, const ScoringModel& model) {
  if (resolve_input_format("", a.input) != "hdf5")
    throw Error(a.input +
                ": streamed scoring (--memory-limit, --block-rows) reads HDF5 input; "
                "convert the CSV once with `icp convert " +
                a.input + " accounts.h5`");
  h5::Writer out(a.output);  // a bad output path fails before the work
  // --block-rows wins; otherwise the limit is parsed now, so a bad value fails before any read,
  // and turned into rows per block once the library knows the table's row count.
  const std::uint64_t limit = a.block_rows > 0 ? 0 : parse_size(a.memory_limit);
  auto block_rows_for = [&](std::size_t rows) {
    return a.block_rows > 0 ? a.block_rows : streamed_block_rows(limit, resident_bytes(), rows);
  };
  const StreamedScores s = score_h5_streamed(model, a.input, block_rows_for, out);
  out.commit();
  if (!a.quiet) {
    const auto& in = s.ingest;
    std::fprintf(stderr,
                 "  rows read %s = accepted %s + quarantined %s (%zu block%s of up to %s rows)\n",
                 with_commas(in.rows_read).c_str(), with_commas(in.rows_accepted).c_str(),
                 with_commas(in.rows_quarantined).c_str(), s.blocks, s.blocks == 1 ? "" : "s",
                 with_commas(static_cast<long long>(s.block_rows)).c_str());
    if (s.known_seeds > 0)
      std::fprintf(stderr, "  %s rows are seeds of the model (scored without themselves)\n",
                   with_commas(s.known_seeds).c_str());
    std::printf("scored %s accounts with %s (%s): tiers A %lld  B %lld  C %lld  D %lld  E %lld\n",
                with_commas(in.rows_accepted).c_str(), a.model.c_str(),
                to_string(model.options.method), static_cast<long long>(s.tiers[0]),
                static_cast<long long>(s.tiers[1]), static_cast<long long>(s.tiers[2]),
                static_cast<long long>(s.tiers[3]), static_cast<long long>(s.tiers[4]));
    std::printf("scores: %s\n", a.output.c_str());
  }
  return 0;
}

int score(const ScoreArgs& a) {
  const ScoringModel model = load_scoring_model(a.model);
  set_threads(a.threads ? *a.threads : model.config.threads);
  if (!a.memory_limit.empty() || a.block_rows > 0) return score_streamed(a, model);
  h5::Writer out(a.output);  // a bad output path fails before the work
  const ScoredAccounts scored = score_csv(model, a.input);
  write_scores(model, scored, out);
  out.commit();
  if (!a.quiet) {
    const auto& in = scored.ingest;
    std::fprintf(stderr, "  rows read %s = accepted %s + quarantined %s\n",
                 with_commas(in.rows_read).c_str(), with_commas(in.rows_accepted).c_str(),
                 with_commas(in.rows_quarantined).c_str());
    if (scored.known_seeds > 0)
      std::fprintf(stderr, "  %s rows are seeds of the model (scored without themselves)\n",
                   with_commas(scored.known_seeds).c_str());
    std::array<long long, 5> tiers{};
    for (const std::uint8_t t : scored.scores.tier)
      if (t >= 'A' && t <= 'E') ++tiers[static_cast<std::size_t>(t - 'A')];
    std::printf("scored %s accounts with %s (%s): tiers A %lld  B %lld  C %lld  D %lld  E %lld\n",
                with_commas(static_cast<long long>(scored.ids.size())).c_str(), a.model.c_str(),
                to_string(model.options.method), tiers[0], tiers[1], tiers[2], tiers[3], tiers[4]);
    std::printf("scores: %s\n", a.output.c_str());
  }
  return 0;
}

const Registrar registrar{
    15, [](CLI::App& app) -> std::function<int()> {
      auto a = std::make_shared<ScoreArgs>();
      auto* cmd = app.add_subcommand(
          "score", "Score new accounts with a finished run's normalizer, segments and model");
      cmd->add_option("-m,--model", a->model, "Results HDF5 file of `icp run`")->required();
      cmd->add_option("-i,--input", a->input, "CSV of accounts with the job's columns")->required();
      cmd->add_option("-o,--output", a->output, "Scores HDF5 file to write")->required();
      cmd->add_option("--threads", a->threads,
                      "Threads for OpenMP and oneTBB together (0 = all cores)")
          ->check(CLI::NonNegativeNumber);
      cmd->add_option("--memory-limit", a->memory_limit,
                      "Stream an HDF5 input in blocks sized to stay under this much memory "
                      "(e.g. 1G, 512M); the scores equal an in-memory run's");
      cmd->add_option("--block-rows", a->block_rows,
                      "Stream an HDF5 input in blocks of this many rows (overrides the size "
                      "--memory-limit would choose)")
          ->check(CLI::PositiveNumber);
      cmd->add_flag("-q,--quiet", a->quiet, "No progress or summary output");
      return [a] { return score(*a); };
    }};

}  // namespace
}  // namespace icp::cli
