// `icp generate`: synthetic accounts with planted segments and a planted ICP.
#include <cstdio>
#include <memory>

#include "command.hpp"
#include "icp/generate.hpp"

namespace icp::cli {
namespace {

struct GenerateArgs {
  GenerateOptions options;
  std::string output, truth;
  bool quiet = false;
};

int run(const GenerateArgs& a) {
  const GenerateStats s = generate_accounts(a.options, a.output, a.truth);
  if (!a.quiet)
    std::fprintf(stderr,
                 "generated %s rows (%s customers, %s in the planted ICP) -> %s in %.2f s\n",
                 with_commas(s.rows).c_str(), with_commas(s.customers).c_str(),
                 with_commas(s.icp_rows).c_str(), a.output.c_str(), s.seconds);
  return 0;
}

const Registrar registrar{20, [](CLI::App& app) -> std::function<int()> {
  auto a = std::make_shared<GenerateArgs>();
  auto* cmd = app.add_subcommand(
      "generate", "Write a synthetic account table with planted segments and a planted ICP");
  cmd->add_option("--rows", a->options.rows, "Rows to write")->check(CLI::NonNegativeNumber);
  cmd->add_option("--seed", a->options.seed, "Random seed");
  cmd->add_option("-o,--output", a->output, "Accounts CSV to write")->required();
  cmd->add_option("--truth", a->truth, "Also write the planted segment and ICP of each row");
  cmd->add_flag("-q,--quiet", a->quiet, "No summary line");
  return [a] { return run(*a); };
}};

}  // namespace
}  // namespace icp::cli
