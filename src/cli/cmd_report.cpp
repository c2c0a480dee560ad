// `icp report`: the self-contained HTML report of a results file.
#include <cstdio>
#include <memory>

#include "command.hpp"
#include "icp/report.hpp"

namespace icp::cli {
namespace {

struct ReportArgs {
  std::string results, output = "report.html";
  int top = 25;
  bool quiet = false;
};

const Registrar registrar{
    35, [](CLI::App& app) -> std::function<int()> {
      auto a = std::make_shared<ReportArgs>();
      auto* cmd = app.add_subcommand(
          "report",
          "Write a self-contained HTML report (inline SVG, no network) of a results file");
      cmd->add_option("results", a->results, "Results HDF5 file of `icp run`")->required();
      cmd->add_option("-o,--output", a->output, "HTML file to write (default report.html)");
      cmd->add_option("--top", a->top, "Lookalike accounts to list")->check(CLI::PositiveNumber);
      cmd->add_flag("-q,--quiet", a->quiet, "Print nothing");
      return [a] {
        ReportOptions o;
        o.top = a->top;
        write_report(a->results, a->output, o);
        if (!a->quiet) std::printf("report: %s\n", a->output.c_str());
        return 0;
      };
    }};

}  // namespace
}  // namespace icp::cli
