// The parallel duplicate check against a plain scalar reference: the first occurrence of each id
// in file order is kept, every later one is rejected, missing ids are never compared, and ids
// rewritten by unquoting (doubled quotes) compare by their value.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "icp/csv.hpp"
#include "icp/error.hpp"

namespace {

namespace fs = std::filesystem;

TEST(CsvDedup, FirstOccurrenceWinsAtAnyChunkSizeAndThreadCount) {
  const fs::path file =
      fs::temp_directory_path() / ("icp_csv_dedup_" + std::to_string(::getpid()) + ".csv");
  // Row i gets id (i * 7919) % 1500 over 4000 rows, so most ids repeat; every 11th id is
  // written quoted with a doubled quote inside, every 97th row has no id.
  std::vector<std::string> values;  // the id's value per row ("" = missing)
  std::string csv = "id,x\n";
  for (int i = 0; i < 4000; ++i) {
    const int k = (i * 7919) % 1500;
    std::string value;
    std::string text;
    if (i % 97 == 0) {
      text = "";
    } else if (k % 11 == 0) {
      value = "q\"" + std::to_string(k);
      text = "\"q\"\"" + std::to_string(k) + "\"";
    } else {
      value = "id" + std::to_string(k);
      text = value;
    }
    values.push_back(value);
    csv += text + "," + std::to_string(i) + "\n";
  }
  std::ofstream(file, std::ios::binary) << csv;

  // Scalar reference: one pass in file order.
  std::set<std::string> seen;
  icp::NumericValues expected_x;
  icp::LineNumbers expected_lines;
  std::int64_t expected_dups = 0;
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (!values[i].empty() && !seen.insert(values[i]).second) {
      ++expected_dups;
      continue;
    }
    expected_x.push_back(static_cast<double>(i));
    expected_lines.push_back(static_cast<std::int64_t>(i) + 2);
  }
  ASSERT_GT(expected_dups, 2000);

  for (const std::size_t chunk : {std::size_t{1}, std::size_t{333}, std::size_t{0}}) {
    for (const int threads : {1, 2}) {
      icp::CsvOptions o;
      icp::ColumnRequest x;
      x.name = "x";
      x.type = icp::ColumnType::numeric;
      o.columns = {x};
      o.unique_column = "id";
      o.on_error = icp::ErrorPolicy::quarantine;
      o.chunk_bytes = chunk;
      o.threads = threads;
      icp::IngestStats st;
      const icp::Table t = icp::read_csv(file.string(), o, &st);
      const std::string what = "chunk " + std::to_string(chunk) + " threads " +
                               std::to_string(threads);
      EXPECT_EQ(st.rows_quarantined, expected_dups) << what;
      EXPECT_EQ(t.at("x").numeric, expected_x) << what;
      EXPECT_EQ(t.source_line, expected_lines) << what;
    }
  }

  // With fail, the first repeat in file order (found by the same scalar pass) is the error.
  std::int64_t first_dup_line = 0;
  seen.clear();
  for (std::size_t i = 0; i < values.size() && first_dup_line == 0; ++i)
    if (!values[i].empty() && !seen.insert(values[i]).second)
      first_dup_line = static_cast<std::int64_t>(i) + 2;
  icp::CsvOptions f;
  f.unique_column = "id";
  f.chunk_bytes = 200;
  f.threads = 2;
  try {
    (void)icp::read_csv(file.string(), f);
    ADD_FAILURE() << "no duplicate error";
  } catch (const icp::InputError& e) {
    EXPECT_EQ(e.line(), first_dup_line);
    EXPECT_EQ(e.reason(), "duplicate value");
  }
  fs::remove(file);
}

}  // namespace
