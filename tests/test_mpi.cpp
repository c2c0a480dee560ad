// The program under mpirun: a job split between 2 and 3 processes writes the datasets of a
// one-process run bit for bit (compared by scripts/h5-same), and a failing rank ends the whole
// job with its message and no output. Built with -DICP_MPI=ON (scripts/test's release build);
// elsewhere the tests say why they skip.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace fs = std::filesystem;

#ifdef ICP_TEST_MPI
namespace {

struct Result {
  int code = -1;
  std::string out;
};

Result shell(const std::string& cmd) {
  Result r;
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf{};
  std::size_t got = 0;
  while ((got = fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), got);
  const int status = pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

/// mpirun as CI runs it: as root, on loopback, more processes than cores allowed. Shared-memory
/// single-copy (CMA) needs ptrace rights containers often lack; plain copies work everywhere.
std::string mpirun(int np) {
  return "OMPI_MCA_btl_vader_single_copy_mechanism=none " + std::string(ICP_MPIEXEC) +
         " --oversubscribe --allow-run-as-root -np " + std::to_string(np) + " ";
}

/// The demo job with every path it writes moved into `dir`.
fs::path demo_job(const fs::path& dir) {
  const fs::path demo = fs::path(ICP_SOURCE_DIR) / "datasets" / "demo";
  std::ifstream in(demo / "job.toml");
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  auto replace = [&](const std::string& from, const std::string& to) {
    const auto at = text.find(from);
    ASSERT_NE(at, std::string::npos) << from;
    text.replace(at, from.size(), to);
  };
  replace("path = \"accounts.csv\"", "path = \"" + (demo / "accounts.csv").string() + "\"");
  replace("quarantine_path = \"../../out/demo/quarantine.csv\"",
          "quarantine_path = \"" + (dir / "quarantine.csv").string() + "\"");
  replace("report = \"../../out/demo/report.html\"", "report = \"\"");
  const fs::path job = dir / "job.toml";
  std::ofstream(job) << text;
  return job;
}

fs::path fresh_dir(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / ("icp_mpi_" + name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

}  // namespace
#endif

TEST(Mpi, TwoAndThreeProcessesWriteTheDatasetsOfOneProcess) {
#ifndef ICP_TEST_MPI
  GTEST_SKIP() << "built without -DICP_MPI=ON (scripts/test's release build has it)";
#else
  const fs::path dir = fresh_dir("same");
  const fs::path job = demo_job(dir);
  const std::string icp = ICP_BINARY;
  const std::string common = " run -q -c " + job.string();
  const Result one = shell(icp + common + " --output " + (dir / "one.h5").string() + " --top-csv " +
                           (dir / "one.csv").string());
  ASSERT_EQ(one.code, 0) << one.out;
  for (const int np : {2, 3}) {
    const std::string tag = "np" + std::to_string(np);
    const Result many =
        shell(mpirun(np) + icp + common + " --output " + (dir / (tag + ".h5")).string() +
              " --top-csv " + (dir / (tag + ".csv")).string());
    ASSERT_EQ(many.code, 0) << many.out;
    const Result same =
        shell("/usr/bin/python3 " + std::string(ICP_SOURCE_DIR) + "/scripts/h5-same " +
              (dir / "one.h5").string() + " " + (dir / (tag + ".h5")).string());
    EXPECT_EQ(same.code, 0) << np << " processes differ from one:\n" << same.out;
    const Result csv =
        shell("cmp " + (dir / "one.csv").string() + " " + (dir / (tag + ".csv")).string());
    EXPECT_EQ(csv.code, 0) << csv.out;
    // The file says how it was made.
    const Result procs = shell("h5dump -a /processes " + (dir / (tag + ".h5")).string());
    EXPECT_NE(procs.out.find("(0): " + std::to_string(np)), std::string::npos) << procs.out;
  }
  fs::remove_all(dir);
#endif
}

TEST(Mpi, AFailingRankEndsTheJobWithItsMessageAndNoOutput) {
#ifndef ICP_TEST_MPI
  GTEST_SKIP() << "built without -DICP_MPI=ON (scripts/test's release build has it)";
#else
  const fs::path dir = fresh_dir("fail");
  const fs::path job = demo_job(dir);
  const fs::path out = dir / "never.h5";
  const Result r = shell(mpirun(2) + ICP_BINARY + " run -q -c " + job.string() + " --input " +
                         (dir / "missing.csv").string() + " --output " + out.string());
  EXPECT_NE(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("icp: error (rank 0 of 2): "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("missing.csv"), std::string::npos) << r.out;
  EXPECT_FALSE(fs::exists(out));
  for (const auto& e : fs::directory_iterator(dir))
    EXPECT_EQ(e.path().extension(), ".toml") << "left behind: " << e.path();
  fs::remove_all(dir);
#endif
}
