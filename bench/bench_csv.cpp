// CSV ingest throughput on the generated account table (`icp generate`: quoted names with
// commas, categoricals, numerics with empty cells), read the way the demo job reads it: 14
// typed columns plus the unique id check.
//   bench_csv                      1M rows (~90 MB), 1 and 2 threads
//   bench_csv --rows=10000000      10M rows (~900 MB; not part of any default run)
//   bench_csv --csv=/path/a.csv    an existing file with the same columns
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "icp/csv.hpp"
#include "icp/generate.hpp"
#include "icp/parallel.hpp"

namespace {

/// Default size: the 1M-row target; generating it takes ~2 s, once per process.
constexpr std::int64_t kDefaultRows = 1000000;

std::int64_t g_rows = kDefaultRows;
std::string g_csv;        // given with --csv: used as is, never removed
std::string g_generated;  // written by this process, removed at exit

const std::string& bench_file() {
  static const std::string path = [] {
    if (!g_csv.empty()) return g_csv;
    g_generated = (std::filesystem::temp_directory_path() /
                   ("icp_bench_csv_" + std::to_string(::getpid()) + ".csv"))
                      .string();
    icp::GenerateOptions o;
    o.rows = g_rows;
    icp::generate_accounts(o, g_generated);
    return g_generated;
  }();
  return path;
}

icp::CsvOptions account_options(int threads) {
  icp::CsvOptions o;
  o.threads = threads;
  auto add = [&](const char* name, icp::ColumnType t) {
    icp::ColumnRequest r;
    r.name = name;
    r.type = t;
    o.columns.push_back(r);
  };
  add("account_id", icp::ColumnType::text);
  for (const char* n : {"industry", "country", "funding_stage"})
    add(n, icp::ColumnType::categorical);
  for (const char* n : {"employees", "annual_revenue", "founded_year", "web_visits_30d",
                        "product_signups_90d", "email_engagement", "support_tickets_90d",
                        "is_customer", "acv", "churned"})
    add(n, icp::ColumnType::numeric);
  o.unique_column = "account_id";
  o.on_error = icp::ErrorPolicy::quarantine;
  return o;
}

void BM_ReadCsv(benchmark::State& state) {
  const std::string& path = bench_file();
  const int threads = static_cast<int>(state.range(0));
  icp::set_threads(threads);
  const icp::CsvOptions o = account_options(threads);
  icp::IngestStats st;
  for (auto _ : state) {
    icp::Table t = icp::read_csv(path, o, &st);
    benchmark::DoNotOptimize(t.rows);
    // Freeing the table (10M strings, 1.3 GB handed back) is not parsing: untimed.
    state.PauseTiming();
    { const icp::Table gone = std::move(t); }
    state.ResumeTiming();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * st.bytes);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * st.rows_read);
  state.counters["rows"] = static_cast<double>(st.rows_read);
}
BENCHMARK(BM_ReadCsv)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

int main(int argc, char** argv) {
  // Our own flags first; the rest goes to Google Benchmark.
  std::vector<char*> rest;
  for (int i = 0; i < argc; ++i) {
    if (std::strncmp(argv[i], "--rows=", 7) == 0) {
      g_rows = std::atoll(argv[i] + 7);
    } else if (std::strncmp(argv[i], "--csv=", 6) == 0) {
      g_csv = argv[i] + 6;
    } else {
      rest.push_back(argv[i]);
    }
  }
  int n = static_cast<int>(rest.size());
  benchmark::Initialize(&n, rest.data());
  if (benchmark::ReportUnrecognizedArguments(n, rest.data())) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  if (!g_generated.empty()) {
    std::error_code ec;
    std::filesystem::remove(g_generated, ec);
  }
  return 0;
}
