// knn lookalike kernel throughput: accounts scored per second against a seed set.
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "../src/value_order.hpp"
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

// The PU model's fit: Newton on a logistic loss, every iteration one pass over the rows
// (widening to float64, logits, gradient and a Hessian rank update). 1M accounts x 44 features,
// the 1M demo job's shape, with a planted signal so the fit takes a realistic ~8 iterations.
void BM_FitPuLogistic(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const std::size_t d = 44;
  const icp::Matrix x = random_matrix(n, d, 3);
  std::vector<std::uint8_t> seed(n, 0);
  std::mt19937 gen(4);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  for (std::size_t i = 0; i < n; ++i) {
    const double z = -3.5 + 1.5 * x(i, 0) - x(i, 1) + 0.5 * x(i, 2);
    seed[i] = u(gen) < 1.0 / (1.0 + std::exp(-z)) ? 1 : 0;
  }
  int iterations = 0;
  for (auto _ : state) {
    icp::LogisticModel m = icp::fit_pu_logistic(x.view(), seed, {}, 1.0, 1, 42);
    iterations = m.iterations;
    benchmark::DoNotOptimize(m.coef.data());
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) *
                          static_cast<std::int64_t>(n));
  state.counters["newton_iterations"] = iterations;
}
BENCHMARK(BM_FitPuLogistic)->Arg(1000000)->Iterations(2)->Unit(benchmark::kMillisecond);

// Ranks, midranks and AUCs all sort rows by a float score: 10M scores with ties (a fifth of them
// on a coarse grid, as segment rates are), the shape of the final ranking of a 10M-row job.
void BM_OrderByValue(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  std::vector<float> v(n);
  std::mt19937 gen(5);
  std::uniform_real_distribution<float> u(-3.0f, 3.0f);
  for (std::size_t i = 0; i < n; ++i) v[i] = i % 5 == 0 ? std::round(u(gen) * 4.0f) : u(gen);
  for (auto _ : state) {
    std::vector<std::size_t> order = icp::order_by_value(v, false);
    benchmark::DoNotOptimize(order.data());
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) *
                          static_cast<std::int64_t>(n));
}
BENCHMARK(BM_OrderByValue)->Arg(10000000)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
