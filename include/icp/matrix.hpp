// Dense row-major float32 matrices: the normalized feature matrix, centroids, seed blocks.
#pragma once

#include <cassert>
#include <cstddef>
#include <functional>
#include <memory>
#include <new>
#include <optional>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

#include "icp/allocator.hpp"

namespace icp {

/// Read-only view of a row-major float32 matrix (rows x cols, row stride = cols).
struct MatrixView {
  const float* data = nullptr;
  std::size_t rows = 0;
  std::size_t cols = 0;

  const float* row(std::size_t i) const noexcept { return data + i * cols; }
  float operator()(std::size_t i, std::size_t j) const noexcept { return data[i * cols + j]; }
};

/// A Matrix's elements.
using FloatStorage = std::vector<float, DefaultInitAllocator<float>>;

/// Owning row-major float32 matrix. Storage is float32; reductions over it accumulate in double.
class Matrix {
 public:
  Matrix() = default;
  /// Every element `fill`; a large matrix is filled by all threads (see DefaultInitAllocator).
  Matrix(std::size_t rows, std::size_t cols, float fill = 0.0f);

  /// Contents unspecified: for a caller that writes every element, best from a parallel loop.
  static Matrix uninitialized(std::size_t rows, std::size_t cols);

  std::size_t rows() const noexcept { return rows_; }
  std::size_t cols() const noexcept { return cols_; }
  float* data() noexcept { return data_.data(); }
  const float* data() const noexcept { return data_.data(); }
  float* row(std::size_t i) noexcept { return data_.data() + i * cols_; }
  const float* row(std::size_t i) const noexcept { return data_.data() + i * cols_; }
  float& operator()(std::size_t i, std::size_t j) noexcept { return data_[i * cols_ + j]; }
  float operator()(std::size_t i, std::size_t j) const noexcept { return data_[i * cols_ + j]; }

  MatrixView view() const noexcept { return {data_.data(), rows_, cols_}; }
  operator MatrixView() const noexcept { return view(); }  // NOLINT: views are cheap

  FloatStorage& storage() noexcept { return data_; }
  const FloatStorage& storage() const noexcept { return data_; }

 private:
  std::size_t rows_ = 0;
  std::size_t cols_ = 0;
  FloatStorage data_;
};

/// A matrix too large to hold, read a block of rows at a time.
struct RowBlocks {
  using Visit = std::function<void(std::size_t first_row, MatrixView block)>;
  std::size_t rows = 0;
  std::size_t cols = 0;
  /// One pass: `visit` on consecutive blocks covering rows 0 .. rows-1 in order. Every block
  /// starts on a multiple of kReduceChunkRows (parallel.hpp; so every block but the last holds a
  /// multiple of it), which keeps each fixed-chunk sum inside one block.
  std::function<void(const Visit& visit)> scan;
  /// Rows at the given positions (any order, repeats allowed), in that order.
  std::function<Matrix(std::span<const std::size_t> rows)> fetch;
};

/// Flat index (row * cols + col) of the first non-finite value of x in row order, if any. Scans
/// fixed chunks of rows in parallel and takes the lowest chunk's find, so the answer does not
/// depend on the thread count.
std::optional<std::size_t> first_non_finite(MatrixView x);

}  // namespace icp
