#include "icp/reduce.hpp"

#include <algorithm>

#include "icp/parallel.hpp"

namespace icp {

namespace {
class LocalReducer final : public Reducer {
 public:
  void sum(std::span<double>) override {}
  void sum(std::span<std::int64_t>) override {}
  void min(std::span<double>) override {}
  void max(std::span<double>) override {}
  std::vector<double> gather_chunks(std::vector<double> local, std::size_t) override {
    return local;
  }
  Matrix gather_rows(MatrixView local) override {
    Matrix out(local.rows, local.cols);
    std::copy(local.data, local.data + local.rows * local.cols, out.data());
    return out;
  }
  std::vector<float> gather(std::span<const float> local) override {
    return {local.begin(), local.end()};
  }
  std::vector<double> gather(std::span<const double> local) override {
    return {local.begin(), local.end()};
  }
  std::vector<std::int32_t> gather(std::span<const std::int32_t> local) override {
    return {local.begin(), local.end()};
  }
  Matrix scatter_rows(MatrixView all, std::size_t, std::size_t) override {
    return gather_rows(all);
  }
  void broadcast(std::span<std::int64_t>) override {}
  void broadcast(std::span<float>) override {}
  int rank() const noexcept override { return 0; }
  int size() const noexcept override { return 1; }
};
}  // namespace

Reducer& local_reducer() noexcept {
  static LocalReducer reducer;
  return reducer;
}

RowRange chunk_rows_of(std::size_t total, int rank, int size) noexcept {
  const std::size_t chunks = chunk_count(total);
  const auto p = static_cast<std::size_t>(std::max(size, 1));
  const auto r = static_cast<std::size_t>(rank);
  // Process r owns chunks [ceil(r * chunks / p), ceil((r + 1) * chunks / p)): runs that differ
  // by at most one chunk, in rank order.
  auto first_chunk = [&](std::size_t q) { return (q * chunks + p - 1) / p; };
  const std::size_t c0 = first_chunk(r);
  const std::size_t c1 = first_chunk(r + 1);
  RowRange out;
  out.begin = std::min(total, c0 * kReduceChunkRows);
  out.rows = std::min(total, c1 * kReduceChunkRows) - out.begin;
  return out;
}

}  // namespace icp
