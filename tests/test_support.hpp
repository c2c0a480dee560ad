// Helpers of the end-to-end tests that run the `icp` program: a shell command's exit code and
// output, and the demo job rewritten to write inside a test's folder.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace icp_test {

/// A 64-bit LCG (Knuth's MMIX constants) for test data: the same numbers on every platform,
/// unlike the std distributions.
struct Lcg {
  std::uint64_t state;
  /// Uniform in [0, 1) with 53 bits.
  double next() {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<double>(state >> 11) * 0x1.0p-53;
  }
};

struct ShellResult {
  int code = -1;    ///< exit code; -1 when the command did not exit normally
  std::string out;  ///< stdout and stderr together
};

/// Everything a popen()ed command prints, then its exit code.
inline ShellResult drain(FILE* pipe) {
  ShellResult r;
  if (pipe == nullptr) return r;
  std::array<char, 4096> buf{};
  std::size_t got = 0;
  while ((got = std::fread(buf.data(), 1, buf.size(), pipe)) > 0) r.out.append(buf.data(), got);
  const int status = pclose(pipe);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

/// Runs `cmd` with /bin/sh, stderr folded into stdout.
inline ShellResult shell(const std::string& cmd) {
  return drain(popen((cmd + " 2>&1").c_str(), "r"));
}

/// The demo job (datasets/demo/job.toml) rewritten for a test: input by absolute path, every file
/// it writes inside `dir`, and optional extra replacements of its text.
inline std::filesystem::path write_demo_job(
    const std::filesystem::path& dir,
    const std::vector<std::pair<std::string, std::string>>& extra = {}) {
  const std::filesystem::path demo = std::filesystem::path(ICP_SOURCE_DIR) / "datasets" / "demo";
  std::ifstream in(demo / "job.toml");
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  auto replace = [&](const std::string& from, const std::string& to) {
    const auto at = text.find(from);
    if (at == std::string::npos) throw std::runtime_error("demo job lacks: " + from);
    text.replace(at, from.size(), to);
  };
  replace("path = \"accounts.csv\"", "path = \"" + (demo / "accounts.csv").string() + "\"");
  replace("quarantine_path = \"../../out/demo/quarantine.csv\"",
          "quarantine_path = \"" + (dir / "quarantine.csv").string() + "\"");
  replace("top_csv = \"../../out/demo/top_accounts.csv\"", "top_csv = \"\"");
  replace("report = \"../../out/demo/report.html\"", "report = \"\"");
  for (const auto& [from, to] : extra) replace(from, to);
  const std::filesystem::path job = dir / "job.toml";
  std::ofstream(job) << text;
  return job;
}

/// The demo job with k-means made long enough (k = 40, tol 0, 20 iterations: ~0.5 s in a
/// Release build) to be stopped mid-way by a signal sent when its first checkpoint appears.
inline std::filesystem::path write_long_kmeans_job(const std::filesystem::path& dir) {
  return write_demo_job(
      dir,
      {{"k = 10", "k = 40"}, {"max_iter = 100", "max_iter = 20"}, {"tol = 1e-4", "tol = 0.0"}});
}

/// An empty folder of its own under the system's temporary folder: the name carries the process
/// id, so two test runs at once (say a Release and a sanitizer suite) never share it.
inline std::filesystem::path fresh_dir(const std::string& name) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("icp_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

}  // namespace icp_test
