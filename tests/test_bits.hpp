// Bit-for-bit comparisons for the reproducibility tests. memcmp, not ==: -0.0 and 0.0 differ,
// and a NaN equals itself, as the "same bits at any thread count" promise means.
#pragma once

#include <cstring>
#include <vector>

#include "icp/matrix.hpp"

namespace icp_test {

inline bool same_bits(double a, double b) {
  return std::memcmp(&a, &b, sizeof a) == 0;
}

template <class T, class A>
bool same_bits(const std::vector<T, A>& a, const std::vector<T, A>& b) {
  return a.size() == b.size() &&
         (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
}

inline bool same_bits(const icp::Matrix& a, const icp::Matrix& b) {
  return a.rows() == b.rows() && a.cols() == b.cols() &&
         (a.storage().empty() ||
          std::memcmp(a.data(), b.data(), a.rows() * a.cols() * sizeof(float)) == 0);
}

}  // namespace icp_test
