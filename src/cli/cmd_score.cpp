// `icp score`: new accounts through a finished run's normalizer, segments and lookalike model.
#include <array>
#include <cstdio>
#include <memory>
#include <optional>

#include "command.hpp"
#include "icp/hdf5.hpp"
#include "icp/model_io.hpp"
#include "icp/parallel.hpp"

namespace icp::cli {
namespace {

struct ScoreArgs {
  std::string model, input, output;
  std::optional<int> threads;
  bool quiet = false;
};

int score(const ScoreArgs& a) {
  const ScoringModel model = load_scoring_model(a.model);
  set_threads(a.threads ? *a.threads : model.config.threads);
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
      cmd->add_flag("-q,--quiet", a->quiet, "No progress or summary output");
      return [a] { return score(*a); };
    }};

}  // namespace
}  // namespace icp::cli
