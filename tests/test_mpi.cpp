// The program under mpirun: a job split between 2 and 3 processes writes the datasets of a
// one-process run bit for bit (compared by scripts/h5-same), and a failing rank ends the whole
// job with its message and no output. Built with -DICP_MPI=ON (scripts/test's release build);
// elsewhere the tests say why they skip.
#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "test_support.hpp"

namespace fs = std::filesystem;

#ifdef ICP_TEST_MPI
namespace {

using icp_test::shell;
using Result = icp_test::ShellResult;

/// mpirun as CI runs it: as root, on loopback, more processes than cores allowed. Shared-memory
/// single-copy (CMA) needs ptrace rights containers often lack; plain copies work everywhere.
std::string mpirun(int np) {
  return "OMPI_MCA_btl_vader_single_copy_mechanism=none " + std::string(ICP_MPIEXEC) +
         " --oversubscribe --allow-run-as-root -np " + std::to_string(np) + " ";
}

using icp_test::fresh_dir;

/// `job` run by one process and by two (mpirun) writes the same datasets (scripts/h5-same).
void expect_two_processes_write_one_process_file(const fs::path& dir, const fs::path& job) {
  const std::string run = std::string(ICP_BINARY) + " run -q -c " + job.string() + " --output ";
  Result r = shell(run + (dir / "one.h5").string());
  ASSERT_EQ(r.code, 0) << r.out;
  r = shell(mpirun(2) + run + (dir / "two.h5").string());
  ASSERT_EQ(r.code, 0) << r.out;
  const Result same =
      shell("/usr/bin/python3 " + std::string(ICP_SOURCE_DIR) + "/scripts/h5-same " +
            (dir / "one.h5").string() + " " + (dir / "two.h5").string());
  EXPECT_EQ(same.code, 0) << same.out;
}

}  // namespace
#endif

TEST(Mpi, TwoAndThreeProcessesWriteTheDatasetsOfOneProcess) {
#ifndef ICP_TEST_MPI
  GTEST_SKIP() << "built without -DICP_MPI=ON (scripts/test's release build has it)";
#else
  const fs::path dir = fresh_dir("mpi_same");
  const fs::path job = icp_test::write_demo_job(dir);
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

TEST(Mpi, WeightedJobOnTwoProcessesWritesTheOneProcessFile) {
#ifndef ICP_TEST_MPI
  GTEST_SKIP() << "built without -DICP_MPI=ON (scripts/test's release build has it)";
#else
  const fs::path dir = fresh_dir("mpi_weights");
  const fs::path job = icp_test::write_demo_job(
      dir, {{"n_init = 1", "n_init = 1\nweight_column = \"product_signups_90d\""}});
  expect_two_processes_write_one_process_file(dir, job);
  fs::remove_all(dir);
#endif
}

TEST(Mpi, MiniBatchOnTwoProcessesWritesTheOneProcessFile) {
  // Mini-batch runs on a gathered copy of the rows (gather_rows, rows as an MPI datatype); the
  // exact algorithms no longer gather, so this is what still sends whole matrices around.
#ifndef ICP_TEST_MPI
  GTEST_SKIP() << "built without -DICP_MPI=ON (scripts/test's release build has it)";
#else
  const fs::path dir = fresh_dir("mpi_minibatch");
  const fs::path job =
      icp_test::write_demo_job(dir, {{"n_init = 1", "n_init = 1\nalgorithm = \"minibatch\""}});
  expect_two_processes_write_one_process_file(dir, job);
  fs::remove_all(dir);
#endif
}

TEST(Mpi, AFailingRankEndsTheJobWithItsMessageAndNoOutput) {
#ifndef ICP_TEST_MPI
  GTEST_SKIP() << "built without -DICP_MPI=ON (scripts/test's release build has it)";
#else
  const fs::path dir = fresh_dir("mpi_fail");
  const fs::path job = icp_test::write_demo_job(dir);
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

TEST(Mpi, StoppedOnTwoProcessesResumedOnThreeWritesTheOneProcessFile) {
#ifndef ICP_TEST_MPI
  GTEST_SKIP() << "built without -DICP_MPI=ON (scripts/test's release build has it)";
#else
  const fs::path dir = fresh_dir("mpi_resume");
  const fs::path job = icp_test::write_long_kmeans_job(dir);
  const std::string icp = ICP_BINARY;
  const std::string base = " run -q --threads 1 -c " + job.string();
  Result r = shell(icp + base + " --output " + (dir / "one.h5").string());
  ASSERT_EQ(r.code, 0) << r.out;

  const fs::path ckpt = dir / "state.h5";
  const fs::path out = dir / "many.h5";
  // mpirun in the background; the signal goes to the icp ranks (as `scancel --signal=TERM`
  // does under SLURM), not to mpirun, which would tear the job down.
  const std::string launch = mpirun(2) + icp + base + " --output " + out.string() +
                             " --checkpoint " + ckpt.string() + " --checkpoint-every 1";
  FILE* job_pipe = popen((launch + " 2>&1").c_str(), "r");
  ASSERT_NE(job_pipe, nullptr);
  bool appeared = false;
  for (int i = 0; i < 12000 && !appeared; ++i) {
    appeared = fs::exists(ckpt);
    if (!appeared) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  // Only this test's ranks: their command line names this test's own output file (ctest runs
  // other tests, with other icp processes, at the same time).
  const Result kill = shell("pkill -TERM -f '^" + icp + " run .*--output " + out.string() + "'");
  const Result stopped = icp_test::drain(job_pipe);
  ASSERT_TRUE(appeared) << "no checkpoint within 60 s:\n" << stopped.out;
  EXPECT_EQ(kill.code, 0) << "no icp rank to signal: " << kill.out;
  EXPECT_EQ(stopped.code, 3) << stopped.out;
  EXPECT_NE(stopped.out.find("state saved to"), std::string::npos) << stopped.out;
  EXPECT_FALSE(fs::exists(out));
  const Result stage = shell("h5dump -a /stage " + ckpt.string());
  EXPECT_NE(stage.out.find("\"kmeans\""), std::string::npos) << stage.out;

  r = shell(mpirun(3) + icp + base + " --output " + out.string() + " --resume " + ckpt.string());
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_FALSE(fs::exists(ckpt)) << "the checkpoint outlived a finished run";
  const Result same = shell("/usr/bin/python3 " + std::string(ICP_SOURCE_DIR) +
                            "/scripts/h5-same " + (dir / "one.h5").string() + " " + out.string());
  EXPECT_EQ(same.code, 0) << "stopped on 2 and resumed on 3 differs from one process:\n"
                          << same.out;
  fs::remove_all(dir);
#endif
}
