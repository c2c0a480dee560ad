// Driver for scripts/bench-peers: runs icp's k-means on raw float32 files from a given initial
// set of centres, so it can be compared with scikit-learn from the same start.
//
//   bench_kmeans_peer DATA N D INIT K ITERS TOL ALGORITHM
// DATA is N x D float32 row-major, INIT is K x D float32 (both native byte order). Runs at most
// ITERS iterations (stopping early once the squared centre movement is <= TOL x the mean column
// variance, scikit-learn's rule; TOL < 0 never stops early) and
// prints one line: "iterations=<i> seconds=<s> ms_per_iter=<m> inertia=<x> peak_rss_mb=<r>".
// Timing excludes reading the files and includes centring, every step and the final assignment.

#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "../src/kmeans_internal.hpp"
#include "icp/kmeans.hpp"

namespace {

namespace kd = icp::kmeans_detail;

std::vector<float> read_floats(const char* path, std::size_t count) {
  std::vector<float> v(count);
  std::ifstream in(path, std::ios::binary);
  in.read(reinterpret_cast<char*>(v.data()), static_cast<std::streamsize>(count * sizeof(float)));
  if (!in) {
    std::fprintf(stderr, "cannot read %zu floats from %s\n", count, path);
    std::exit(2);
  }
  return v;
}

icp::KMeansAlgorithm parse_algorithm(const std::string& s) {
  if (s == "lloyd") return icp::KMeansAlgorithm::lloyd;
  if (s == "hamerly") return icp::KMeansAlgorithm::hamerly;
  if (s == "yinyang") return icp::KMeansAlgorithm::yinyang;
  return icp::KMeansAlgorithm::automatic;
}

std::unique_ptr<kd::StepPolicy> policy_for(icp::KMeansAlgorithm a) {
  switch (a) {
    case icp::KMeansAlgorithm::hamerly:
      return kd::make_hamerly_policy();
    case icp::KMeansAlgorithm::yinyang:
      return kd::make_yinyang_policy();
    default:
      return kd::make_lloyd_policy();
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 9) {
    std::fprintf(stderr, "usage: %s DATA N D INIT K ITERS TOL ALGORITHM\n", argv[0]);
    return 2;
  }
  const std::size_t n = std::stoull(argv[2]);
  const std::size_t d = std::stoull(argv[3]);
  const std::size_t k = std::stoull(argv[5]);
  const int iters = std::stoi(argv[6]);
  const double tol = std::stod(argv[7]);
  const std::vector<float> data = read_floats(argv[1], n * d);
  const std::vector<float> init = read_floats(argv[4], k * d);
  const icp::MatrixView x{data.data(), n, d};
  const icp::MatrixView c0{init.data(), k, d};

  const auto start = std::chrono::steady_clock::now();
  const std::vector<double> mean = kd::column_means(x, icp::local_reducer());
  const icp::Matrix xc = kd::centre_rows(x, mean);
  kd::LloydState state;
  state.centroids = kd::centre_rows(c0, mean);
  state.assignment.assign(n, -1);
  state.distance.assign(n, 0.0f);
  const auto algorithm = kd::resolve_algorithm(parse_algorithm(argv[8]), d, k);
  const auto policy = policy_for(algorithm);
  const double converged_at =
      tol * kd::mean_feature_variance(xc.view(), icp::local_reducer(), {});
  int done = 0;
  for (int it = 1; it <= iters; ++it) {
    const kd::StepStats s = policy->step(xc.view(), state, icp::local_reducer());
    done = it;
    if (tol >= 0.0 && s.shift <= converged_at) break;
  }
  const kd::AssignStats final_assign = kd::assign_rows(xc.view(), state.centroids.view(),
                                                       state.assignment, state.distance, false);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  std::printf("iterations=%d seconds=%.6f ms_per_iter=%.3f inertia=%.10g peak_rss_mb=%.1f algorithm=%s\n",
              done, seconds, 1e3 * seconds / done, final_assign.inertia,
              static_cast<double>(usage.ru_maxrss) / 1024.0, icp::to_string(algorithm));
  return 0;
}
