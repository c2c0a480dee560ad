// Checkpoint and resume: a k-means fit continued from any saved state ends with the bits of a
// fit that was never stopped; a stop request saves first, then throws icp::Interrupted.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "icp/checkpoint.hpp"
#include "icp/kmeans.hpp"
#include "test_bits.hpp"
#include "test_support.hpp"

namespace {

icp::Matrix blobs(std::size_t n, std::size_t d, unsigned seed) {
  icp::Matrix x(n, d);
  icp_test::Lcg rng{seed};
  auto next = [&] { return rng.next(); };
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < d; ++j)
      x(i, j) = static_cast<float>(static_cast<double>((i % 7) * (j + 1) % 5) + 2.0 * next());
  return x;
}

using icp_test::same_bits;

void expect_same(const icp::KMeansResult& a, const icp::KMeansResult& b, const std::string& what) {
  EXPECT_EQ(a.centroids.storage(), b.centroids.storage()) << what;
  EXPECT_EQ(a.assignment, b.assignment) << what;
  EXPECT_EQ(a.distance, b.distance) << what;
  EXPECT_EQ(a.sizes, b.sizes) << what;
  EXPECT_TRUE(same_bits(a.inertia, b.inertia)) << what;
  EXPECT_EQ(a.iterations, b.iterations) << what;
  EXPECT_EQ(a.converged, b.converged) << what;
  ASSERT_EQ(a.history.size(), b.history.size()) << what;
  for (std::size_t i = 0; i < a.history.size(); ++i) {
    EXPECT_TRUE(same_bits(a.history[i].inertia, b.history[i].inertia)) << what << " it " << i;
    EXPECT_TRUE(same_bits(a.history[i].shift, b.history[i].shift)) << what << " it " << i;
    EXPECT_EQ(a.history[i].changed, b.history[i].changed) << what << " it " << i;
    EXPECT_EQ(a.history[i].restart, b.history[i].restart) << what << " it " << i;
  }
}

}  // namespace

TEST(Checkpoint, ResumingFromEverySavedStateGivesTheUninterruptedBits) {
  const icp::Matrix x = blobs(3000, 5, 9);
  for (const auto algorithm : {icp::KMeansAlgorithm::lloyd, icp::KMeansAlgorithm::hamerly,
                               icp::KMeansAlgorithm::yinyang}) {
    icp::KMeansOptions o;
    o.k = 14;
    o.n_init = 3;
    o.tol = 1e-7;
    o.seed = 21;
    o.algorithm = algorithm;
    const icp::KMeansResult plain = icp::kmeans_fit(x.view(), o);

    std::vector<icp::KMeansCheckpoint> saved;
    icp::KMeansOptions with = o;
    with.checkpoint_every = 2;
    with.on_checkpoint = [&](const icp::KMeansCheckpoint& c) { saved.push_back(c); };
    expect_same(plain, icp::kmeans_fit(x.view(), with), "checkpointing changes nothing");
    ASSERT_GE(saved.size(), 4u);
    bool saw_later_restart = false;
    for (const auto& c : saved) {
      EXPECT_EQ(c.iteration % 2, 0);
      saw_later_restart = saw_later_restart || c.best_restart >= 0;
      icp::KMeansOptions again = o;
      again.resume = &c;
      expect_same(plain, icp::kmeans_fit(x.view(), again),
                  std::string(icp::to_string(algorithm)) + " from restart " +
                      std::to_string(c.restart) + " iteration " + std::to_string(c.iteration));
    }
    EXPECT_TRUE(saw_later_restart) << "no checkpoint carried a finished restart";
  }
}

TEST(Checkpoint, StopRequestSavesThenThrowsAndTheSavedStateResumes) {
  const icp::Matrix x = blobs(2000, 4, 3);
  icp::KMeansOptions o;
  o.k = 9;
  o.tol = 0.0;
  o.max_iter = 40;
  const icp::KMeansResult plain = icp::kmeans_fit(x.view(), o);
  ASSERT_GT(plain.iterations, 3);

  int polls = 0;
  std::vector<icp::KMeansCheckpoint> saved;
  icp::KMeansOptions stopping = o;
  stopping.stop_requested = [&] { return ++polls == 3; };
  stopping.on_checkpoint = [&](const icp::KMeansCheckpoint& c) { saved.push_back(c); };
  EXPECT_THROW((void)icp::kmeans_fit(x.view(), stopping), icp::Interrupted);
  ASSERT_EQ(saved.size(), 1u);
  EXPECT_EQ(saved[0].iteration, 3);
  icp::KMeansOptions again = o;
  again.resume = &saved[0];
  expect_same(plain, icp::kmeans_fit(x.view(), again), "after a stop at iteration 3");
}

TEST(Checkpoint, ResumeRejectsAStateOfAnotherShape) {
  const icp::Matrix x = blobs(500, 4, 1);
  icp::KMeansCheckpoint c;
  c.centroids = icp::Matrix(5, 4);
  c.assignment.assign(500, 0);
  icp::KMeansOptions o;
  o.k = 6;
  o.resume = &c;
  try {
    (void)icp::kmeans_fit(x.view(), o);
    FAIL() << "a 5-centre state resumed a k = 6 fit";
  } catch (const icp::Error& e) {
    EXPECT_NE(std::string(e.what()).find("does not fit"), std::string::npos) << e.what();
  }
  o.k = 5;
  o.algorithm = icp::KMeansAlgorithm::minibatch;
  EXPECT_THROW((void)icp::kmeans_fit(x.view(), o), icp::Error);
}

// ---- The program: SIGTERM mid-k-means, then --resume ------------------------------------------

namespace {

namespace fs = std::filesystem;

int shell(const std::string& cmd, std::string* out = nullptr) {
  const icp_test::ShellResult r = icp_test::shell(cmd);
  if (out) *out = r.out;
  return r.code;
}

}  // namespace

TEST(Checkpoint, SigtermMidKMeansThenResumeWritesTheUninterruptedFile) {
  const fs::path dir = icp_test::fresh_dir("checkpoint_cli");
  const fs::path job = icp_test::write_long_kmeans_job(dir);
  const std::string icp = ICP_BINARY;
  const std::string base = icp + " run -q --threads 1 -c " + job.string();
  std::string text;
  ASSERT_EQ(shell(base + " --output " + (dir / "full.h5").string(), &text), 0) << text;

  const fs::path ckpt = dir / "state.h5";
  const fs::path out = dir / "resumed.h5";
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    const std::string ckpt_s = ckpt.string(), out_s = out.string(), job_s = job.string();
    execl(ICP_BINARY, ICP_BINARY, "run", "-q", "--threads", "1", "-c", job_s.c_str(), "--output",
          out_s.c_str(), "--checkpoint", ckpt_s.c_str(), "--checkpoint-every", "1",
          static_cast<char*>(nullptr));
    _exit(127);
  }
  // The first checkpoint appears (renamed into place whole) after k-means iteration 1.
  bool appeared = false;
  for (int i = 0; i < 12000 && !appeared; ++i) {
    appeared = fs::exists(ckpt);
    if (!appeared) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_TRUE(appeared) << "no checkpoint within 60 s";
  ASSERT_EQ(kill(pid, SIGTERM), 0);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << "killed by signal " << WTERMSIG(status);
  EXPECT_EQ(WEXITSTATUS(status), 3);
  EXPECT_FALSE(fs::exists(out)) << "a stopped run wrote results";

  const icp::JobCheckpoint saved = icp::load_checkpoint(ckpt.string());
  ASSERT_EQ(saved.stage, icp::CheckpointStage::kmeans) << "k-means finished before the signal";
  EXPECT_GE(saved.kmeans.iteration, 1);
  EXPECT_LT(saved.kmeans.iteration, 20);

  ASSERT_EQ(shell(base + " --output " + out.string() + " --resume " + ckpt.string(), &text), 0)
      << text;
  EXPECT_FALSE(fs::exists(ckpt)) << "the checkpoint outlived a finished run";
  ASSERT_EQ(shell("/usr/bin/python3 " + std::string(ICP_SOURCE_DIR) + "/scripts/h5-same " +
                      (dir / "full.h5").string() + " " + out.string(),
                  &text),
            0)
      << "resumed run differs from the uninterrupted one:\n"
      << text;

  // The same job file with another k: the saved state must not be applied to it.
  icp::save_checkpoint(ckpt.string(), saved);
  EXPECT_EQ(
      shell(base + " --k 39 --output " + (dir / "bad.h5").string() + " --resume " + ckpt.string(),
            &text),
      2);
  EXPECT_NE(text.find("differs from the one that wrote the checkpoint"), std::string::npos) << text;
  EXPECT_FALSE(fs::exists(dir / "bad.h5"));
  fs::remove_all(dir);
}
