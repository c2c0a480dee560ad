// k-means throughput: the assignment kernel, a full Lloyd iteration, and an SGEMM of the same
// shape (Eigen float product per block, one thread per block) as the roofline to compare with.
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

}  // namespace

BENCHMARK_MAIN();
