// Tables and matrices read in blocks, as H5TableBlocks and a streamed run's scratch file give
// them, for the tests of the streamed passes (normalizer, summary, k-means, lookalike).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "icp/matrix.hpp"
#include "icp/table.hpp"

namespace icp_test {

/// Rows [first, first + count) of `t` as a table of their own, categorical levels renumbered in
/// order of first appearance within the block, as a reader of blocks (H5TableBlocks) gives them.
inline icp::Table slice(const icp::Table& t, std::size_t first, std::size_t count) {
  icp::Table b;
  b.source = t.source;
  b.rows = count;
  for (const icp::Column& c : t.columns) {
    icp::Column o;
    o.name = c.name;
    o.type = c.type;
    if (c.type == icp::ColumnType::numeric) {
      o.numeric.assign(c.numeric.begin() + static_cast<std::ptrdiff_t>(first),
                       c.numeric.begin() + static_cast<std::ptrdiff_t>(first + count));
    } else if (c.type == icp::ColumnType::categorical) {
      std::vector<std::int32_t> renumber(c.levels.size(), -1);
      for (std::size_t i = first; i < first + count; ++i) {
        const std::int32_t code = c.codes[i];
        if (code < 0) {
          o.codes.push_back(-1);
          continue;
        }
        auto& to = renumber[static_cast<std::size_t>(code)];
        if (to < 0) {
          to = static_cast<std::int32_t>(o.levels.size());
          o.levels.push_back(c.levels[static_cast<std::size_t>(code)]);
        }
        o.codes.push_back(to);
      }
    }
    b.columns.push_back(std::move(o));
  }
  return b;
}

/// A scan of `t` in blocks whose sizes cycle through `sizes` (each pass the same).
inline icp::TableScan scan_of(const icp::Table& t, std::vector<std::size_t> sizes, int* scans) {
  return [&t, sizes, scans](const icp::TableVisitor& visit) {
    ++*scans;
    std::size_t s = 0;
    for (std::size_t first = 0; first < t.rows; s = (s + 1) % sizes.size()) {
      const std::size_t count = std::min(sizes[s], t.rows - first);
      visit(slice(t, first, count));
      first += count;
    }
  };
}

/// The rows of `m` in blocks of `block` rows (a multiple of kReduceChunkRows), each a copy, as a
/// block read from a file would be; counts scans and fetched rows when given somewhere to.
inline icp::RowBlocks row_blocks_of(const icp::Matrix& m, std::size_t block, int* scans = nullptr,
                                    std::size_t* fetched = nullptr) {
  icp::RowBlocks b;
  b.rows = m.rows();
  b.cols = m.cols();
  b.scan = [&m, block, scans](const icp::RowBlocks::Visit& visit) {
    if (scans != nullptr) ++*scans;
    for (std::size_t first = 0; first < m.rows(); first += block) {
      const std::size_t rows = std::min(block, m.rows() - first);
      icp::Matrix part(rows, m.cols());
      std::copy(m.row(first), m.row(first) + rows * m.cols(), part.data());
      visit(first, part.view());
    }
  };
  b.fetch = [&m, fetched](std::span<const std::size_t> rows) {
    if (fetched != nullptr) *fetched += rows.size();
    icp::Matrix out(rows.size(), m.cols());
    for (std::size_t r = 0; r < rows.size(); ++r)
      std::copy(m.row(rows[r]), m.row(rows[r]) + m.cols(), out.row(r));
    return out;
  };
  return b;
}

}  // namespace icp_test
