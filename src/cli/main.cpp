// icp command line: owns options, timing, progress lines and files; the library owns the work.
// Exit codes: 0 success, 2 bad input / job file / arguments (with one clear message), 1 a bug.
#include <algorithm>
#include <cstdio>

#include "command.hpp"
#include "icp/error.hpp"

namespace icp::cli {

std::vector<Verb>& verbs() {
  static std::vector<Verb> all;
  return all;
}

std::string with_commas(long long v) {
  std::string s = std::to_string(v < 0 ? -v : v);
  for (int i = static_cast<int>(s.size()) - 3; i > 0; i -= 3)
    s.insert(static_cast<std::size_t>(i), ",");
  return v < 0 ? "-" + s : s;
}

}  // namespace icp::cli

int main(int argc, char** argv) {
  CLI::App app{"icp: Ideal Customer Profile engine. Segments an account table with k-means, "
               "scores every account for similarity to your best customers, and writes ICP "
               "profiles, ranked segments and lookalike lists to HDF5."};
  app.set_version_flag("--version", std::string("icp ") + ICP_VERSION);
  app.require_subcommand(1);

  auto& verbs = icp::cli::verbs();
  std::stable_sort(verbs.begin(), verbs.end(),
                   [](const auto& a, const auto& b) { return a.order < b.order; });
  std::vector<std::pair<CLI::App*, std::function<int()>>> actions;
  for (const auto& v : verbs) {
    const std::size_t before = app.get_subcommands({}).size();
    auto action = v.setup(app);
    actions.emplace_back(app.get_subcommands({})[before], std::move(action));
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : icp::cli::kExitBadInput;
  }

  try {
    for (auto& [sub, action] : actions)
      if (sub->parsed()) return action();
  } catch (const icp::Error& e) {
    std::fprintf(stderr, "icp: error: %s\n", e.what());
    return icp::cli::kExitBadInput;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "icp: internal error: %s\n", e.what());
    return 1;
  }
  return 0;
}
