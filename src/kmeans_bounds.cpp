// Helpers shared by the bounded assignment policies (Hamerly, Yinyang).

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <vector>

#include "kmeans_internal.hpp"

namespace icp::kmeans_detail {

BoundFrame make_bound_frame(MatrixView centroids) {
  BoundFrame f;
  f.packed = pack_centres(centroids);
  const std::size_t k = centroids.rows;
  const std::size_t d = centroids.cols;
  double cmax2 = 0.0;
  for (std::size_t j = 0; j < k; ++j) {
    double s = 0.0;
    for (std::size_t t = 0; t < d; ++t) s += static_cast<double>(centroids(j, t)) * centroids(j, t);
    cmax2 = std::max(cmax2, s);
  }
  f.cmax = bound_up(std::sqrt(cmax2));
  f.half.assign(k, std::numeric_limits<double>::infinity());
  // k^2 d / 2 float64 operations: 2M at k = 256, d = 64, small next to one pass over the rows.
  for (std::size_t a = 0; a < k; ++a) {
    for (std::size_t b = a + 1; b < k; ++b) {
      const double h = 0.5 * std::sqrt(squared_distance(centroids.row(a), centroids.row(b), d));
      f.half[a] = std::min(f.half[a], h);
      f.half[b] = std::min(f.half[b], h);
    }
  }
  for (double& h : f.half) h = bound_down(h);
  return f;
}

std::vector<double> centre_moves(const Matrix& prev, const Matrix& next) {
  std::vector<double> moves(prev.rows());
  for (std::size_t j = 0; j < prev.rows(); ++j) {
    moves[j] = bound_up(std::sqrt(squared_distance(prev.row(j), next.row(j), prev.cols())));
  }
  return moves;
}

double row_sq_norm(const float* x, std::size_t d) noexcept {
  // Eight float64 lanes combined in a fixed order (as squared_distance): the same bits wherever
  // it is called, without the 4-cycle add latency per column of one running sum.
  double lane[8] = {0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0};
  std::size_t t = 0;
  for (; t + 8 <= d; t += 8) {
    for (std::size_t l = 0; l < 8; ++l) lane[l] += static_cast<double>(x[t + l]) * x[t + l];
  }
  double tail = 0.0;
  for (; t < d; ++t) tail += static_cast<double>(x[t]) * x[t];
  return (((lane[0] + lane[1]) + (lane[2] + lane[3])) +
          ((lane[4] + lane[5]) + (lane[6] + lane[7]))) +
         tail;
}

std::vector<float> row_norms(MatrixView xc) {
  std::vector<float> out(xc.rows);
#pragma omp parallel for schedule(static) if (xc.rows > kReduceChunkRows)
  for (std::ptrdiff_t i = 0; i < static_cast<std::ptrdiff_t>(xc.rows); ++i) {
    // row_sq_norm's eight lanes: one running sum was a chain of d dependent adds per row.
    const double s = row_sq_norm(xc.row(static_cast<std::size_t>(i)), xc.cols);
    out[static_cast<std::size_t>(i)] = float_up(bound_up(std::sqrt(s)));
  }
  return out;
}

}  // namespace icp::kmeans_detail
