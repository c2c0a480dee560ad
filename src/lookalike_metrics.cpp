// Ranking metrics shared by the lookalike backtest and the final score mapping.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "icp/error.hpp"
#include "icp/lookalike.hpp"
#include "value_order.hpp"

namespace icp {

namespace {

// Rows ordered best first: higher value, then lower row index, so ties never depend on the sort.
std::vector<std::int64_t> order_descending(std::span<const float> value) {
  const std::vector<std::size_t> by_value = order_by_value(value, true);
  return {by_value.begin(), by_value.end()};
}

// Top ceil(fraction * n) rows. The epsilon keeps 0.1 * 1000 from becoming 101 through rounding.
std::size_t top_count(double fraction, std::size_t n) {
  const double c = std::ceil(fraction * static_cast<double>(n) - 1e-9);
  if (c <= 0.0) return 0;
  return std::min(n, static_cast<std::size_t>(c));
}

}  // namespace

std::vector<std::int64_t> rank_descending(std::span<const float> value) {
  const std::vector<std::int64_t> order = order_descending(value);
  std::vector<std::int64_t> rank(value.size());
  for (std::size_t r = 0; r < order.size(); ++r) {
    rank[static_cast<std::size_t>(order[r])] = static_cast<std::int64_t>(r) + 1;
  }
  return rank;
}

double roc_auc(std::span<const float> score, std::span<const std::uint8_t> label) {
  if (score.size() != label.size()) throw Error("roc_auc: score and label sizes differ");
  for (const float s : score) {
    if (!std::isfinite(s)) throw Error("roc_auc: non-finite score");
  }
  const std::vector<std::size_t> order = order_by_value(score, false);
  // Mann-Whitney: sum of the positives' ascending midranks (a tie group shares its mean rank,
  // which is what counts each tied positive/negative pair as one half).
  double positive_rank_sum = 0.0;
  double positives = 0.0;
  std::size_t i = 0;
  while (i < order.size()) {
    std::size_t j = i;
    double group_positives = 0.0;
    while (j < order.size() && score[order[j]] == score[order[i]]) {
      if (label[order[j]] != 0) group_positives += 1.0;
      ++j;
    }
    const double midrank = 0.5 * (static_cast<double>(i + 1) + static_cast<double>(j));
    positive_rank_sum += group_positives * midrank;
    positives += group_positives;
    i = j;
  }
  const double negatives = static_cast<double>(score.size()) - positives;
  if (positives == 0.0 || negatives == 0.0) {
    throw Error("roc_auc: needs at least one positive and one negative");
  }
  return (positive_rank_sum - positives * (positives + 1.0) / 2.0) / (positives * negatives);
}

double recall_at(std::span<const float> score, std::span<const std::uint8_t> label,
                 double fraction) {
  if (score.size() != label.size()) throw Error("recall_at: score and label sizes differ");
  std::int64_t positives = 0;
  for (const std::uint8_t l : label) positives += l != 0 ? 1 : 0;
  if (positives == 0) return 0.0;
  const std::vector<std::int64_t> order = order_descending(score);
  const std::size_t top = top_count(fraction, score.size());
  std::int64_t hits = 0;
  for (std::size_t r = 0; r < top; ++r) {
    hits += label[static_cast<std::size_t>(order[r])] != 0 ? 1 : 0;
  }
  return static_cast<double>(hits) / static_cast<double>(positives);
}

std::vector<double> gain_curve(std::span<const float> score, std::span<const std::uint8_t> label,
                               std::size_t points) {
  if (score.size() != label.size()) throw Error("gain_curve: score and label sizes differ");
  if (points < 2) throw Error("gain_curve: needs at least 2 points");
  std::vector<double> out(points, 0.0);
  std::int64_t positives = 0;
  for (const std::uint8_t l : label) positives += l != 0 ? 1 : 0;
  if (positives == 0) return out;
  const std::vector<std::int64_t> order = order_descending(score);
  std::int64_t hits = 0;
  std::size_t r = 0;
  for (std::size_t t = 0; t < points; ++t) {
    const double fraction = static_cast<double>(t) / static_cast<double>(points - 1);
    const std::size_t top = top_count(fraction, score.size());
    for (; r < top; ++r) hits += label[static_cast<std::size_t>(order[r])] != 0 ? 1 : 0;
    out[t] = static_cast<double>(hits) / static_cast<double>(positives);
  }
  return out;
}

}  // namespace icp
