// The demo job (datasets/demo/job.toml) rewritten for a test: input by absolute path, every file
// it writes inside `dir`, and optional extra replacements of its text. Shared by the end-to-end
// tests that run the program on real data.
#pragma once

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace icp_test {

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

/// The demo job with k-means made long enough (k = 80, tol 0, 30 iterations) to be stopped
/// mid-way by a signal sent when its first checkpoint appears.
inline std::filesystem::path write_long_kmeans_job(const std::filesystem::path& dir) {
  return write_demo_job(
      dir,
      {{"k = 10", "k = 80"}, {"max_iter = 100", "max_iter = 30"}, {"tol = 1e-4", "tol = 0.0"}});
}

}  // namespace icp_test
