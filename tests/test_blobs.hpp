// Test data shared by the k-means tests: Gaussian blobs around random centres.
#pragma once

#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

#include "icp/matrix.hpp"

namespace icp_test {

/// Gaussian blobs around `count` random centres spread over [-spread, spread]^d.
inline icp::Matrix blobs(std::size_t n, std::size_t d, std::size_t count, double spread, double sd,
                         std::uint64_t seed, double offset = 0.0) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> where(-spread, spread);
  std::normal_distribution<double> noise(0.0, sd);
  std::vector<double> centres(count * d);
  for (double& c : centres) c = where(rng);
  icp::Matrix m(n, d);
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t b = i % count;
    for (std::size_t t = 0; t < d; ++t) {
      m(i, t) = static_cast<float>(centres[b * d + t] + noise(rng) + offset);
    }
  }
  return m;
}

}  // namespace icp_test
