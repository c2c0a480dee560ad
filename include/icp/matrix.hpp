// Dense row-major float32 matrices: the normalized feature matrix, centroids, seed blocks.
#pragma once

#include <cassert>
#include <cstddef>
#include <vector>

namespace icp {

/// Read-only view of a row-major float32 matrix (rows x cols, row stride = cols).
struct MatrixView {
  const float* data = nullptr;
  std::size_t rows = 0;
  std::size_t cols = 0;

  const float* row(std::size_t i) const noexcept { return data + i * cols; }
  float operator()(std::size_t i, std::size_t j) const noexcept { return data[i * cols + j]; }
};

/// Owning row-major float32 matrix. Storage is float32; reductions over it accumulate in double.
class Matrix {
 public:
  Matrix() = default;
  Matrix(std::size_t rows, std::size_t cols, float fill = 0.0f)
      : rows_(rows), cols_(cols), data_(rows * cols, fill) {}

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
  std::vector<float>& storage() noexcept { return data_; }
  const std::vector<float>& storage() const noexcept { return data_; }

 private:
  std::size_t rows_ = 0;
  std::size_t cols_ = 0;
  std::vector<float> data_;
};

}  // namespace icp
