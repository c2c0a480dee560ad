// Segment seed-lift: the share of seeds in an account's k-means segment, shrunk towards the base
// rate so that a tiny segment with one seed does not outrank a large, genuinely seed-rich one.
#include <string>

#include "icp/error.hpp"
#include "icp/lookalike.hpp"

namespace icp {

std::vector<double> segment_seed_rates(std::span<const std::int32_t> segment, int k,
                                       std::span<const std::uint8_t> is_seed,
                                       std::span<const std::uint8_t> is_negative,
                                       double prior_strength) {
  if (k < 1) throw Error("lookalike: k must be >= 1");
  if (is_seed.size() != segment.size()) throw Error("lookalike: is_seed size differs from rows");
  if (!is_negative.empty() && is_negative.size() != segment.size()) {
    throw Error("lookalike: is_negative size differs from rows");
  }
  if (!(prior_strength >= 0.0)) throw Error("lookalike: prior_strength must be >= 0");
  const auto kk = static_cast<std::size_t>(k);
  // Integer counts: exact, so the result does not depend on summation order.
  std::vector<std::int64_t> size(kk, 0), seeds(kk, 0), negatives(kk, 0);
  std::int64_t total_seeds = 0;
  std::int64_t total_negatives = 0;
  for (std::size_t i = 0; i < segment.size(); ++i) {
    const std::int32_t c = segment[i];
    if (c < 0 || c >= k) {
      throw Error("lookalike: row " + std::to_string(i) + " has segment " + std::to_string(c) +
                  " outside 0.." + std::to_string(k - 1));
    }
    const auto cc = static_cast<std::size_t>(c);
    ++size[cc];
    if (is_seed[i] != 0) {
      ++seeds[cc];
      ++total_seeds;
    } else if (!is_negative.empty() && is_negative[i] != 0) {
      ++negatives[cc];
      ++total_negatives;
    }
  }
  const double n = static_cast<double>(segment.size());
  const double p = n > 0.0 ? static_cast<double>(total_seeds) / n : 0.0;
  const double q = n > 0.0 ? static_cast<double>(total_negatives) / n : 0.0;
  const double a = prior_strength;
  std::vector<double> rate(kk, p);
  for (std::size_t c = 0; c < kk; ++c) {
    const double nc = static_cast<double>(size[c]);
    if (nc + a <= 0.0) continue;  // empty segment and no prior: the base rate
    double r = (static_cast<double>(seeds[c]) + a * p) / (nc + a);
    if (total_negatives > 0) {
      const double negative_rate = (static_cast<double>(negatives[c]) + a * q) / (nc + a);
      r -= static_cast<double>(total_seeds) / static_cast<double>(total_negatives) *
           (negative_rate - q);
    }
    rate[c] = r;
  }
  return rate;
}

}  // namespace icp
