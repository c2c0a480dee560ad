// icp command line: owns options, timing, progress lines and files; the library owns the work.
// Exit codes: 0 success, 2 bad input / job file / arguments (with one clear message), 1 a bug.
#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <string>

#include "command.hpp"
#include "icp/error.hpp"

namespace icp::cli {

std::vector<Verb>& verbs() {
  static std::vector<Verb> all;
  return all;
}

/// "1G", "512M", "1.5G", "800000000": bytes, with binary K/M/G/T suffixes.
std::uint64_t parse_size(const std::string& text) {
  std::size_t used = 0;
  double value = -1.0;
  try {
    value = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  std::string unit = text.substr(used);
  if (!unit.empty() && (unit.back() == 'B' || unit.back() == 'b')) unit.pop_back();
  if (!unit.empty() && (unit.back() == 'i')) unit.pop_back();
  double scale = 1.0;
  if (unit.size() == 1) {
    switch (std::toupper(static_cast<unsigned char>(unit[0]))) {
      case 'K':
        scale = 1024.0;
        break;
      case 'M':
        scale = 1024.0 * 1024.0;
        break;
      case 'G':
        scale = 1024.0 * 1024.0 * 1024.0;
        break;
      case 'T':
        scale = 1024.0 * 1024.0 * 1024.0 * 1024.0;
        break;
      default:
        used = 0;
    }
  } else if (!unit.empty()) {
    used = 0;
  }
  if (used == 0 || !(value > 0.0) || value * scale > 1e18)
    throw Error("--memory-limit '" + text + "': expected a size such as 1G, 512M or 800000000");
  return static_cast<std::uint64_t>(value * scale);
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
