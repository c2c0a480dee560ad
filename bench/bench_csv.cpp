// CSV ingest throughput on an account-shaped table (id, quoted name with a comma, two
// categoricals, eight numerics, some empty cells). Run: bench_csv [--benchmark_filter=...]
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "icp/csv.hpp"
#include "icp/parallel.hpp"

namespace {

/// Rows in the default run: ~25 MB, large enough that per-call costs vanish and small enough to
/// generate in about a second on the shared machine.
constexpr int kDefaultRows = 200000;

std::string make_csv(int rows) {
  std::string s = "id,name,industry,region,acv,employees,age,seats,usage,nps,growth,tickets\n";
  const char* industries[] = {"Software", "Retail", "Banking", "Health", "Manufacturing"};
  const char* regions[] = {"EMEA", "NA", "APAC", "LATAM"};
  std::uint64_t x = 88172645463325252ull;
  auto next = [&] {  // xorshift: fixed content, no dependence on the standard library
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return x;
  };
  char buf[64];
  for (int i = 0; i < rows; ++i) {
    s += "acct-" + std::to_string(i);
    s += ",\"Company " + std::to_string(i % 5000) + ", Inc.\",";
    s += industries[next() % 5];
    s += ',';
    s += regions[next() % 4];
    for (int k = 0; k < 8; ++k) {
      s += ',';
      const std::uint64_t r = next();
      if (r % 23 == 0) continue;  // an empty cell
      std::snprintf(buf, sizeof buf, "%.6g", static_cast<double>(r % 10000000) / 97.0);
      s += buf;
    }
    s += '\n';
  }
  return s;
}

/// The file is written once per process, outside every timing loop.
const std::string& bench_file() {
  static const std::string path = [] {
    const auto p = std::filesystem::temp_directory_path() /
                   ("icp_bench_csv_" + std::to_string(::getpid()) + ".csv");
    std::ofstream(p, std::ios::binary) << make_csv(kDefaultRows);
    return p.string();
  }();
  return path;
}

struct Cleanup {
  ~Cleanup() {
    std::error_code ec;
    std::filesystem::remove(std::filesystem::temp_directory_path() /
                                ("icp_bench_csv_" + std::to_string(::getpid()) + ".csv"),
                            ec);
  }
} cleanup;

void BM_ReadCsv(benchmark::State& state) {
  const std::string& path = bench_file();
  icp::CsvOptions o;
  o.threads = static_cast<int>(state.range(0));
  icp::set_threads(o.threads);
  auto add = [&](const char* name, icp::ColumnType t) {
    icp::ColumnRequest r;
    r.name = name;
    r.type = t;
    o.columns.push_back(r);
  };
  add("id", icp::ColumnType::text);
  add("industry", icp::ColumnType::categorical);
  add("region", icp::ColumnType::categorical);
  for (const char* n : {"acv", "employees", "age", "seats", "usage", "nps", "growth", "tickets"})
    add(n, icp::ColumnType::numeric);
  o.unique_column = "id";
  icp::IngestStats st;
  for (auto _ : state) {
    icp::Table t = icp::read_csv(path, o, &st);
    benchmark::DoNotOptimize(t.rows);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * st.bytes);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * st.rows_read);
}
BENCHMARK(BM_ReadCsv)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
