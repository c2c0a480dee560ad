// libFuzzer target for the CSV record splitter and field parser. Each input is a CSV file; the
// first two bytes pick the delimiter and the error policy. The reader must either throw
// icp::Error or return a table, never crash, hang or read out of bounds (build with
// -fsanitize=fuzzer,address,undefined), and the table must be the same with 1-byte chunks on
// two threads as with the default chunking on one (the chunk-edge and stitching invariant).
//
// Build and run: scripts/fuzz (clang only). Without clang, the same file compiles with
// -DICP_FUZZ_STANDALONE into a driver that replays files given on the command line.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>

#include "icp/csv.hpp"
#include "icp/error.hpp"

namespace {

const std::string& scratch_path() {
  static const std::string p = "/tmp/icp_fuzz_csv_" + std::to_string(::getpid()) + ".csv";
  return p;
}

bool same(const icp::Table& a, const icp::Table& b) {
  if (a.rows != b.rows || a.source_line != b.source_line || a.columns.size() != b.columns.size())
    return false;
  for (std::size_t k = 0; k < a.columns.size(); ++k) {
    const auto& x = a.columns[k];
    const auto& y = b.columns[k];
    if (x.codes != y.codes || x.levels != y.levels || x.text != y.text) return false;
    if (x.numeric.size() != y.numeric.size() ||
        (!x.numeric.empty() &&
         std::memcmp(x.numeric.data(), y.numeric.data(), x.numeric.size() * sizeof(double)) != 0))
      return false;
  }
  return true;
}

/// Reads the header, then requests its first columns as numeric, categorical and text in turn.
icp::CsvOptions options_for(const std::string& path, char delim, bool quarantine) {
  icp::CsvOptions o;
  o.delimiter = delim;
  o.on_error = quarantine ? icp::ErrorPolicy::quarantine : icp::ErrorPolicy::fail;
  const auto header = icp::read_csv_header(path, delim);
  const icp::ColumnType types[] = {icp::ColumnType::text, icp::ColumnType::numeric,
                                   icp::ColumnType::categorical};
  for (std::size_t i = 0; i < header.size() && i < 6; ++i) {
    bool dup = false;
    for (const auto& r : o.columns) dup = dup || r.name == header[i];
    if (dup) continue;
    icp::ColumnRequest r;
    r.name = header[i];
    r.type = types[i % 3];
    o.columns.push_back(r);
  }
  if (!o.columns.empty()) o.unique_column = o.columns.front().name;
  return o;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const char delims[] = {',', ';', '\t', '|'};
  const char delim = delims[data[0] % 4];
  const bool quarantine = (data[1] & 1) != 0;
  {
    std::ofstream f(scratch_path(), std::ios::binary | std::ios::trunc);
    f.write(reinterpret_cast<const char*>(data + 2), static_cast<std::streamsize>(size - 2));
  }
  icp::CsvOptions o;
  try {
    o = options_for(scratch_path(), delim, quarantine);
  } catch (const icp::Error&) {
    return 0;
  }
  std::string first_error;
  icp::Table ref;
  try {
    o.threads = 1;
    ref = icp::read_csv(scratch_path(), o);
  } catch (const icp::Error& e) {
    first_error = e.what();
  }
  icp::CsvOptions small = o;
  small.threads = 2;
  small.chunk_bytes = 1;
  try {
    const icp::Table t = icp::read_csv(scratch_path(), small);
    if (!first_error.empty() || !same(ref, t)) {
      std::fprintf(stderr, "chunked read differs from the one-chunk read\n");
      std::abort();
    }
  } catch (const icp::Error& e) {
    if (first_error != e.what()) {
      std::fprintf(stderr, "errors differ:\n  %s\n  %s\n", first_error.c_str(), e.what());
      std::abort();
    }
  }
  return 0;
}

#ifdef ICP_FUZZ_STANDALONE
int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::ifstream f(argv[i], std::ios::binary);
    const std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(s.data()), s.size());
  }
  std::remove(scratch_path().c_str());
  return 0;
}
#endif
