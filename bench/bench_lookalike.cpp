// knn lookalike kernel throughput: accounts scored per second against a seed set.
#include <benchmark/benchmark.h>

#include <random>

#include "icp/lookalike.hpp"
#include "icp/matrix.hpp"

namespace {

icp::Matrix random_matrix(std::size_t rows, std::size_t cols, std::uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  icp::Matrix m(rows, cols);
  for (float& v : m.storage()) v = normal(gen);
  return m;
}

// Production-like shape: 200k accounts, 32 features, 5k seeds, 10 neighbours. One pass is
// ~64 GFLOP of GEMM, so a single iteration per repetition is enough on a shared machine.
void BM_KnnToSeeds(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const auto m = static_cast<std::size_t>(state.range(1));
  const icp::Matrix x = random_matrix(n, 32, 1);
  const icp::Matrix seeds = random_matrix(m, 32, 2);
  for (auto _ : state) {
    icp::KnnResult r = icp::knn_to_seeds(x.view(), seeds.view(), {}, 10);
    benchmark::DoNotOptimize(r.mean.data());
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) *
                          static_cast<std::int64_t>(n));
  state.counters["pairs/s"] = benchmark::Counter(
      static_cast<double>(state.iterations()) * static_cast<double>(n) * static_cast<double>(m),
      benchmark::Counter::kIsRate);
}
BENCHMARK(BM_KnnToSeeds)->Args({200000, 5000})->Iterations(1)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
