// Matrix allocation: large matrices are first touched by every thread.
#include "icp/matrix.hpp"

#include <sys/mman.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <vector>

#include "icp/parallel.hpp"

namespace icp {

namespace {

// Below this many elements (4 MiB) a fill is faster than starting the thread team.
constexpr std::size_t kParallelFillElements = std::size_t{1} << 20;

/// The x86-64 transparent huge page size.
constexpr std::size_t kHugePage = std::size_t{2} << 20;

}  // namespace

namespace detail {

void* allocate_huge(std::size_t bytes) {
  void* p = nullptr;
  if (::posix_memalign(&p, kHugePage, bytes) != 0) throw std::bad_alloc();
  // Advice only: where THP is off ("never") the block simply keeps 4 KiB pages.
  (void)::madvise(p, bytes, MADV_HUGEPAGE);
  return p;
}

void deallocate_huge(void* p) noexcept {
  std::free(p);  // NOLINT: pairs with posix_memalign
}

}  // namespace detail

Matrix::Matrix(std::size_t rows, std::size_t cols, float fill) : rows_(rows), cols_(cols) {
  const std::size_t n = rows * cols;
  data_.resize(n);
  float* p = data_.data();
  if (n < kParallelFillElements) {
    std::fill_n(p, n, fill);
    return;
  }
  // Static schedule: each thread faults in (and the kernel zeroes) one contiguous share.
  const auto count = static_cast<std::int64_t>(n);
#pragma omp parallel for schedule(static)
  for (std::int64_t i = 0; i < count; ++i) p[i] = fill;
}

Matrix Matrix::uninitialized(std::size_t rows, std::size_t cols) {
  Matrix m;
  m.rows_ = rows;
  m.cols_ = cols;
  m.data_.resize(rows * cols);
  return m;
}

std::optional<std::size_t> first_non_finite(MatrixView x) {
  const std::size_t chunks = chunk_count(x.rows);
  std::vector<std::optional<std::size_t>> first(chunks);
#pragma omp parallel for schedule(static) if (chunks > 1)
  for (std::ptrdiff_t ci = 0; ci < static_cast<std::ptrdiff_t>(chunks); ++ci) {
    const std::size_t begin = static_cast<std::size_t>(ci) * kReduceChunkRows * x.cols;
    const std::size_t end =
        std::min(x.rows, (static_cast<std::size_t>(ci) + 1) * kReduceChunkRows) * x.cols;
    for (std::size_t t = begin; t < end; ++t) {
      if (!std::isfinite(x.data[t])) {
        first[static_cast<std::size_t>(ci)] = t;
        break;
      }
    }
  }
  for (const auto& f : first) {
    if (f) return f;
  }
  return std::nullopt;
}

}  // namespace icp
