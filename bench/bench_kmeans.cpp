// k-means throughput: the assignment kernel, the score micro-kernel alone, a full Lloyd
// iteration, an SGEMM of the same shape (Eigen float product per block, one thread per block) as
// the roofline to compare with, and whole fits per algorithm (time to converge).
//
//   bench_kmeans --benchmark_filter='Assign/65536/32/64'
// Counters: points/s (items_per_second) and FLOP/s counting 2*n*k*d per assignment.

// Same as the kernel: rows are split across OpenMP threads, so each block's GEMM is sequential.
#define EIGEN_DONT_PARALLELIZE

#include <benchmark/benchmark.h>

#include <Eigen/Core>
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "../src/kmeans_internal.hpp"
#include "icp/kmeans.hpp"
#include "icp/matrix.hpp"

namespace {

using icp::kmeans_detail::kAssignBlockRows;
using RowMatrixF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

struct Problem {
  icp::Matrix x;          ///< n x d, centred-scale values
  icp::Matrix centroids;  ///< k x d, drawn from the rows
};

Problem make_problem(std::size_t n, std::size_t d, std::size_t k) {
  Problem p;
  p.x = icp::Matrix(n, d);
  std::mt19937_64 rng(12345);
  std::normal_distribution<float> noise(0.0f, 1.0f);
  for (float& v : p.x.storage()) v = noise(rng);
  p.centroids = icp::Matrix(k, d);
  for (std::size_t j = 0; j < k; ++j) {
    const std::size_t row = (j * 7919) % n;
    std::copy(p.x.row(row), p.x.row(row) + d, p.centroids.row(j));
  }
  return p;
}

void set_counters(benchmark::State& state, std::size_t n, std::size_t d, std::size_t k) {
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) *
                          static_cast<std::int64_t>(n));
  state.counters["FLOP/s"] = benchmark::Counter(
      2.0 * static_cast<double>(n) * static_cast<double>(k) * static_cast<double>(d),
      benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::OneK::kIs1000);
}

void BM_Assign(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const auto d = static_cast<std::size_t>(state.range(1));
  const auto k = static_cast<std::size_t>(state.range(2));
  const Problem p = make_problem(n, d, k);
  std::vector<std::int32_t> assignment(n, -1);
  std::vector<float> distance(n);
  for (auto _ : state) {
    const auto stats =
        icp::kmeans_detail::assign_rows(p.x.view(), p.centroids.view(), assignment, distance, true);
    benchmark::DoNotOptimize(stats);
  }
  set_counters(state, n, d, k);
}

void BM_LloydIteration(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const auto d = static_cast<std::size_t>(state.range(1));
  const auto k = static_cast<std::size_t>(state.range(2));
  const Problem p = make_problem(n, d, k);
  icp::kmeans_detail::LloydState start;
  start.centroids = p.centroids;
  start.assignment.assign(n, -1);
  start.distance.assign(n, 0.0f);
  for (auto _ : state) {
    state.PauseTiming();
    // Every timed step starts from the same centres, so iterations measure the same work.
    icp::kmeans_detail::LloydState s = start;
    state.ResumeTiming();
    const auto stats = icp::kmeans_detail::lloyd_step(p.x.view(), s, icp::local_reducer());
    benchmark::DoNotOptimize(stats);
  }
  set_counters(state, n, d, k);
}

/// The matrix product alone, blocked exactly like the kernel: the ceiling the assignment
/// step can approach (it adds the argmin scan and the exact float64 distance).
void BM_SgemmReference(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const auto d = static_cast<std::size_t>(state.range(1));
  const auto k = static_cast<std::size_t>(state.range(2));
  const Problem p = make_problem(n, d, k);
  RowMatrixF c(static_cast<Eigen::Index>(k), static_cast<Eigen::Index>(d));
  std::copy(p.centroids.data(), p.centroids.data() + k * d, c.data());
  const std::size_t blocks = (n + kAssignBlockRows - 1) / kAssignBlockRows;
  for (auto _ : state) {
    float checksum = 0.0f;
#pragma omp parallel reduction(+ : checksum)
    {
      RowMatrixF block(static_cast<Eigen::Index>(kAssignBlockRows), static_cast<Eigen::Index>(d));
      RowMatrixF dots(static_cast<Eigen::Index>(kAssignBlockRows), static_cast<Eigen::Index>(k));
#pragma omp for schedule(dynamic, 32)
      for (std::ptrdiff_t b = 0; b < static_cast<std::ptrdiff_t>(blocks); ++b) {
        const std::size_t r0 = static_cast<std::size_t>(b) * kAssignBlockRows;
        const std::size_t rows = std::min(kAssignBlockRows, n - r0);
        const auto r = static_cast<Eigen::Index>(rows);
        std::copy(p.x.row(r0), p.x.row(r0) + rows * d, block.data());
        dots.topRows(r).noalias() = block.topRows(r) * c.transpose();
        checksum += dots(0, 0);
      }
    }
    benchmark::DoNotOptimize(checksum);
  }
  set_counters(state, n, d, k);
}

/// The score kernel alone (no argmin, no exact distance), one thread per chunk like assign_rows.
void BM_ScoreKernel(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const auto d = static_cast<std::size_t>(state.range(1));
  const auto k = static_cast<std::size_t>(state.range(2));
  const Problem p = make_problem(n, d, k);
  const icp::kmeans_detail::PackedCentres packed = icp::kmeans_detail::pack_centres(p.centroids);
  const std::size_t ldo = packed.panels * icp::kmeans_detail::kPanelWidth;
  const std::size_t blocks = (n + kAssignBlockRows - 1) / kAssignBlockRows;
  for (auto _ : state) {
    float checksum = 0.0f;
#pragma omp parallel reduction(+ : checksum)
    {
      std::vector<float> out(kAssignBlockRows * ldo);
#pragma omp for schedule(dynamic, 32)
      for (std::ptrdiff_t b = 0; b < static_cast<std::ptrdiff_t>(blocks); ++b) {
        const std::size_t r0 = static_cast<std::size_t>(b) * kAssignBlockRows;
        const std::size_t rows = std::min(kAssignBlockRows, n - r0);
        icp::kmeans_detail::score_rows(p.x.row(r0), rows, d, packed, out.data(), ldo);
        checksum += out[0];
      }
    }
    benchmark::DoNotOptimize(checksum);
  }
  set_counters(state, n, d, k);
}

/// Overlapping planted clusters (k Gaussian blobs, sd 1, centres uniform in [-1.5, 1.5]^d), so
/// Lloyd needs tens of iterations rather than the 3 that well-separated blobs take.
icp::Matrix clustered(std::size_t n, std::size_t d, std::size_t k) {
  std::mt19937_64 rng(777);
  std::uniform_real_distribution<float> where(-1.5f, 1.5f);
  std::normal_distribution<float> noise(0.0f, 1.0f);
  std::vector<float> centres(k * d);
  for (float& c : centres) c = where(rng);
  icp::Matrix x(n, d);
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t b = i % k;
    for (std::size_t t = 0; t < d; ++t) x(i, t) = centres[b * d + t] + noise(rng);
  }
  return x;
}

/// Whole fit to tol 1e-4 per algorithm from a random init (cheap, so the steps dominate);
/// iterations and inertia as counters (equal across the exact algorithms by construction).
void BM_Fit(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const auto d = static_cast<std::size_t>(state.range(1));
  const auto k = static_cast<std::size_t>(state.range(2));
  const auto algorithm = static_cast<icp::KMeansAlgorithm>(state.range(3));
  const icp::Matrix x = clustered(n, d, k);
  icp::KMeansOptions o;
  o.k = static_cast<int>(k);
  o.algorithm = algorithm;
  o.init = icp::KMeansInit::random;
  o.max_iter = 300;
  o.tol = 1e-4;
  int iterations = 0;
  double inertia = 0.0;
  for (auto _ : state) {
    const icp::KMeansResult r = icp::kmeans_fit(x, o);
    iterations = r.iterations;
    inertia = r.inertia;
  }
  state.counters["iterations"] = iterations;
  state.counters["inertia"] = inertia;
  const icp::KMeansAlgorithm ran = icp::kmeans_detail::resolve_algorithm(algorithm, d, k);
  state.SetLabel(algorithm == ran ? std::string(icp::to_string(ran))
                                  : std::string("auto=") + icp::to_string(ran));
}

/// The grid behind resolve_algorithm's rule: Lloyd against Hamerly over k and d (Yinyang at
/// d = 32 only: it lost at every shape measured), and auto, which must match the faster one.
void fit_shapes(benchmark::internal::Benchmark* b) {
  using A = icp::KMeansAlgorithm;
  for (const std::int64_t d : {16, 32, 48, 64}) {
    for (const std::int64_t k : {8, 16, 32, 64, 256}) {
      for (const auto a : {A::lloyd, A::hamerly, A::yinyang, A::automatic}) {
        if (a == A::yinyang && d != 32) continue;
        b->Args({200000, d, k, static_cast<std::int64_t>(a)});
      }
    }
  }
  b->ArgNames({"n", "d", "k", "alg"})->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);
}

void shapes(benchmark::internal::Benchmark* b) {
  for (const std::int64_t n : {std::int64_t{1000000}, std::int64_t{65536}}) {
    for (const std::int64_t d : {16, 32, 64}) {
      for (const std::int64_t k : {16, 64, 256}) b->Args({n, d, k});
    }
  }
  b->ArgNames({"n", "d", "k"})->Unit(benchmark::kMillisecond)->UseRealTime();
}

BENCHMARK(BM_Assign)->Apply(shapes);
BENCHMARK(BM_LloydIteration)->Apply(shapes);
BENCHMARK(BM_SgemmReference)->Apply(shapes);
BENCHMARK(BM_ScoreKernel)->Apply(shapes);
BENCHMARK(BM_Fit)->Apply(fit_shapes);

}  // namespace

BENCHMARK_MAIN();
