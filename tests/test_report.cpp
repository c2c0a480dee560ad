// The HTML report: well-formed (every opened element closed, in order), self-contained (no
// script, no remote reference), and showing the numbers stored in the results file. When
// headless Chromium is installed it must also render to a non-trivial PNG.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <variant>
#include <vector>

#include "icp/config.hpp"
#include "icp/error.hpp"
#include "icp/generate.hpp"
#include "icp/hdf5.hpp"
#include "icp/output.hpp"
#include "icp/pipeline.hpp"
#include "icp/report.hpp"

namespace fs = std::filesystem;

namespace {

/// Empty string when balanced, else what went wrong. Void elements need no closing tag.
std::string check_balanced(const std::string& html) {
  static const std::set<std::string> kVoid = {"meta", "br", "hr", "img", "input", "link"};
  std::vector<std::string> stack;
  std::size_t pos = 0;
  while ((pos = html.find('<', pos)) != std::string::npos) {
    const std::size_t end = html.find('>', pos);
    if (end == std::string::npos) return "unterminated tag at " + std::to_string(pos);
    const std::string tag = html.substr(pos + 1, end - pos - 1);
    pos = end + 1;
    if (tag.empty()) return "empty tag";
    if (tag[0] == '!') continue;  // doctype
    const bool closing = tag[0] == '/';
    const bool self_closing = tag.back() == '/';
    std::string name = tag.substr(closing ? 1 : 0);
    name = name.substr(0, name.find_first_of(" \n/"));
    if (closing) {
      if (stack.empty() || stack.back() != name)
        return "</" + name + "> closes <" + (stack.empty() ? "" : stack.back()) + ">";
      stack.pop_back();
    } else if (!self_closing && !kVoid.count(name)) {
      stack.push_back(name);
    }
  }
  return stack.empty() ? "" : "unclosed <" + stack.back() + ">";
}

class Report : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("icp_report_" +
            std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) + "_" +
            std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    icp::GenerateOptions g;
    g.rows = 2000;
    g.seed = 3;
    icp::generate_accounts(g, (dir_ / "accounts.csv").string());
    std::ofstream(dir_ / "job.toml")
        << "[input]\npath = \"accounts.csv\"\nid_column = \"account_id\"\n"
           "[[features.numeric]]\ncolumn = \"employees\"\ntransform = \"log1p\"\n"
           "[[features.numeric]]\ncolumn = \"product_signups_90d\"\ntransform = \"log1p\"\n"
           "[[features.categorical]]\ncolumn = \"industry\"\nmax_levels = 5\n"
           "[seeds]\nrule = \"is_customer == 1 and churned == 0\"\nmin_count = 5\n"
           "[summary]\nvalue_column = \"acv\"\n[kmeans]\nk = 4\n"
           "[output]\npath = \"results.h5\"\nreport = \"report.html\"\n";
    icp::JobConfig c = icp::load_config((dir_ / "job.toml").string());
    c.config_text = icp::to_toml(c);
    report_path_ = c.output.report;
    const icp::RunResult r = icp::run_job(c);
    icp::h5::Writer w(c.output.path);
    icp::write_results(r, w);
    w.commit();
    results_ = c.output.path;
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path dir_;
  std::string results_, report_path_;
};

TEST_F(Report, ConfigKeyResolvesNextToTheJobFile) {
  EXPECT_EQ(fs::path(report_path_), dir_ / "report.html");
  // And survives the round trip through the stored config.
  const icp::JobConfig again =
      icp::parse_config(icp::to_toml(icp::load_config((dir_ / "job.toml").string())), "again");
  EXPECT_EQ(again.output.report, report_path_);
}

TEST_F(Report, WellFormedSelfContainedAndShowsTheStoredNumbers) {
  const std::string html = icp::report_html(results_);
  EXPECT_EQ(check_balanced(html), "");
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("http://"), html.find("http://www.w3.org/2000/svg"));  // only the SVG ns
  EXPECT_EQ(html.find("https://"), std::string::npos);
  EXPECT_NE(html.find("<svg"), std::string::npos);

  const icp::h5::Reader rd(results_);
  const icp::h5::Table bt = rd.read_table("/lookalike/backtest");
  const auto& methods = std::get<std::vector<std::string>>(bt.fields[0].values);
  const auto& auc = std::get<std::vector<double>>(bt.fields[1].values);
  ASSERT_EQ(methods.size(), 4u);
  for (std::size_t m = 0; m < methods.size(); ++m) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%s (AUC %.3f)", methods[m].c_str(), auc[m]);
    EXPECT_NE(html.find(buf), std::string::npos) << buf;
  }
  // Every segment's size appears in the bar chart label "<size> · lift".
  const auto sizes = rd.read<std::int64_t>("/segments/size");
  for (const std::int64_t s : sizes)
    EXPECT_NE(html.find(">" + std::to_string(s) + " &#183; lift"), std::string::npos) << s;
  // The best non-seed account is listed with its id.
  const auto ids = rd.read_strings("/accounts/id");
  const auto rank = rd.read<std::int64_t>("/lookalike/rank");
  const auto seed = rd.read<std::uint8_t>("/lookalike/is_seed");
  std::size_t best = ids.size();
  for (std::size_t i = 0; i < ids.size(); ++i)
    if (!seed[i] && (best == ids.size() || rank[i] < rank[best])) best = i;
  ASSERT_LT(best, ids.size());
  EXPECT_NE(html.find("<td>" + ids[best] + "</td>"), std::string::npos);
  // The gain curve of each method is drawn with all 101 points.
  std::size_t polylines = 0;
  for (std::size_t p = html.find("<polyline"); p != std::string::npos;
       p = html.find("<polyline", p + 1))
    ++polylines;
  EXPECT_EQ(polylines, 4u);
}

TEST_F(Report, RejectsAFileThatIsNotResults) {
  std::ofstream(dir_ / "junk.h5") << "junk";
  EXPECT_THROW(icp::report_html((dir_ / "junk.h5").string()), icp::Error);
}

TEST_F(Report, RendersInHeadlessChromium) {
  const char* chromium = "/usr/bin/chromium";
  if (!fs::exists(chromium)) GTEST_SKIP() << "chromium not installed: render check skipped";
  icp::write_report(results_, report_path_);
  const fs::path png = dir_ / "report.png";
  const std::string cmd = std::string(chromium) +
                          " --headless --no-sandbox --disable-gpu --disable-quic --no-first-run"
                          " --disable-background-networking --disable-component-update"
                          " --disable-sync --user-data-dir=" +
                          (dir_ / "profile").string() + " --screenshot=" + png.string() +
                          " --window-size=1200,2000 file://" + report_path_ + " > /dev/null 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  ASSERT_TRUE(fs::exists(png));
  // A blank 1200 x 2000 page compresses to a few KB; charts and tables make it far larger.
  EXPECT_GT(fs::file_size(png), 30000u);
}

}  // namespace

TEST(TopProspects, TheBestRankedNonSeedsInRankOrder) {
  // A shuffled permutation of ranks with a seed at most of the best places: the rows must be
  // those a walk down the ranks takes, skipping seeds, whatever the seeds' share.
  const std::size_t n = 500;
  std::vector<std::int64_t> rank(n);
  for (std::size_t i = 0; i < n; ++i) rank[i] = static_cast<std::int64_t>((i * 7919) % n) + 1;
  std::vector<std::uint8_t> seed(n, 0);
  for (std::size_t i = 0; i < n; ++i) seed[i] = rank[i] <= 40 && rank[i] % 5 != 0 ? 1 : 0;
  std::vector<std::size_t> by_rank(n);
  for (std::size_t i = 0; i < n; ++i) by_rank[static_cast<std::size_t>(rank[i] - 1)] = i;
  for (const std::size_t top : {std::size_t{0}, std::size_t{1}, std::size_t{10}, n}) {
    std::vector<std::size_t> walk;
    for (const std::size_t i : by_rank)
      if (walk.size() < top && seed[i] == 0) walk.push_back(i);
    EXPECT_EQ(icp::top_prospects(rank, seed, top), walk) << "top " << top;
  }
}

TEST(TopProspects, ReadFromAResultsFileInBlocksAsFromMemory) {
  // More rows than one block of the file reader, the best non-seeds spread over all blocks.
  const std::size_t n = 700001;
  std::vector<std::int64_t> rank(n);
  for (std::size_t i = 0; i < n; ++i) rank[i] = static_cast<std::int64_t>((i * 7919) % n) + 1;
  std::vector<std::uint8_t> seed(n, 0);
  for (std::size_t i = 0; i < n; i += 3) seed[i] = 1;
  const fs::path path =
      fs::temp_directory_path() / ("icp-top-" + std::to_string(::getpid()) + ".h5");
  {
    icp::h5::Writer w(path.string());
    w.write("/lookalike/rank", std::span<const std::int64_t>(rank));
    w.write("/lookalike/is_seed", std::span<const std::uint8_t>(seed));
    w.commit();
  }
  const icp::h5::Reader rd(path.string());
  for (const std::size_t top : {std::size_t{0}, std::size_t{25}, std::size_t{1000}})
    EXPECT_EQ(icp::top_prospects(rd, seed, top), icp::top_prospects(rank, seed, top)) << top;
  EXPECT_THROW((void)icp::top_prospects(rd, std::vector<std::uint8_t>(n - 1, 0), 5), icp::Error);
  fs::remove(path);
}
