// `icp inspect`: a results file's ICP table, backtest and top lookalikes, from the file alone.
#include <cstdio>
#include <memory>

#include "command.hpp"
#include "icp/output.hpp"

namespace icp::cli {
namespace {

struct InspectArgs {
  std::string path;
  bool json = false;
  int top = 10;
};

const Registrar registrar{30, [](CLI::App& app) -> std::function<int()> {
  auto a = std::make_shared<InspectArgs>();
  auto* cmd = app.add_subcommand(
      "inspect", "Print a results file's ICP summary, backtest and top lookalikes");
  cmd->add_option("results", a->path, "Results HDF5 file")->required();
  cmd->add_flag("--json", a->json, "Print JSON instead of text");
  cmd->add_option("--top", a->top, "Lookalike accounts to list")->check(CLI::PositiveNumber);
  return [a] {
    const std::string text = a->json ? inspect_json(a->path, a->top) : inspect_text(a->path, a->top);
    std::printf("%s\n", text.c_str());
    return 0;
  };
}};

}  // namespace
}  // namespace icp::cli
