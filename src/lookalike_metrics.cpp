// Ranking metrics shared by the lookalike backtest and the final score mapping.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>

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

// Mann-Whitney AUC from the rows ordered best first: the sum of the positives' ascending
// midranks (a tie group shares its mean rank, which counts each tied positive/negative pair as
// one half). Group [i, j) of the descending order holds ascending ranks n - j + 1 .. n - i. Every
// term is a half-integer far below 2^53, so the sum is exact in any order.
double auc_from_order(std::span<const std::int64_t> order, std::span<const float> score,
                      std::span<const std::uint8_t> label) {
  const std::size_t n = order.size();
  double positive_rank_sum = 0.0;
  double positives = 0.0;
  std::size_t i = 0;
  while (i < n) {
    const float v = score[static_cast<std::size_t>(order[i])];
    std::size_t j = i;
    double group_positives = 0.0;
    while (j < n && score[static_cast<std::size_t>(order[j])] == v) {
      if (label[static_cast<std::size_t>(order[j])] != 0) group_positives += 1.0;
      ++j;
    }
    const double midrank = 0.5 * (static_cast<double>(n - j + 1) + static_cast<double>(n - i));
    positive_rank_sum += group_positives * midrank;
    positives += group_positives;
    i = j;
  }
  const double negatives = static_cast<double>(n) - positives;
  if (positives == 0.0 || negatives == 0.0) {
    throw Error("roc_auc: needs at least one positive and one negative");
  }
  return (positive_rank_sum - positives * (positives + 1.0) / 2.0) / (positives * negatives);
}

std::int64_t count_positives(std::span<const std::uint8_t> label) {
  return std::count_if(label.begin(), label.end(), [](std::uint8_t l) { return l != 0; });
}

// Recall within the top ceil(fraction * n) rows of the order, for fraction = t / (points - 1).
std::vector<double> gain_from_order(std::span<const std::int64_t> order,
                                    std::span<const std::uint8_t> label, std::int64_t positives,
                                    std::size_t points) {
  std::vector<double> out(points, 0.0);
  if (positives == 0) return out;
  std::int64_t hits = 0;
  std::size_t r = 0;
  for (std::size_t t = 0; t < points; ++t) {
    const double fraction = static_cast<double>(t) / static_cast<double>(points - 1);
    const std::size_t top = top_count(fraction, order.size());
    for (; r < top; ++r) hits += label[static_cast<std::size_t>(order[r])] != 0 ? 1 : 0;
    out[t] = static_cast<double>(hits) / static_cast<double>(positives);
  }
  return out;
}

double recall_from_order(std::span<const std::int64_t> order, std::span<const std::uint8_t> label,
                         std::int64_t positives, double fraction) {
  if (positives == 0) return 0.0;
  const std::size_t top = top_count(fraction, order.size());
  std::int64_t hits = 0;
  for (std::size_t r = 0; r < top; ++r)
    hits += label[static_cast<std::size_t>(order[r])] != 0 ? 1 : 0;
  return static_cast<double>(hits) / static_cast<double>(positives);
}

void check_sizes(const char* what, std::span<const float> score,
                 std::span<const std::uint8_t> label) {
  if (score.size() != label.size())
    throw Error(std::string(what) + ": score and label sizes differ");
}

// The AUC's tie groups compare scores for equality: a NaN would fall in no group.
void check_finite(const char* what, std::span<const float> score) {
  for (const float s : score) {
    if (!std::isfinite(s)) throw Error(std::string(what) + ": non-finite score");
  }
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
  check_sizes("roc_auc", score, label);
  check_finite("roc_auc", score);
  return auc_from_order(order_descending(score), score, label);
}

double recall_at(std::span<const float> score, std::span<const std::uint8_t> label,
                 double fraction) {
  check_sizes("recall_at", score, label);
  const std::int64_t positives = count_positives(label);
  if (positives == 0) return 0.0;
  return recall_from_order(order_descending(score), label, positives, fraction);
}

std::vector<double> gain_curve(std::span<const float> score, std::span<const std::uint8_t> label,
                               std::size_t points) {
  check_sizes("gain_curve", score, label);
  if (points < 2) throw Error("gain_curve: needs at least 2 points");
  const std::int64_t positives = count_positives(label);
  if (positives == 0) return std::vector<double>(points, 0.0);
  return gain_from_order(order_descending(score), label, positives, points);
}

BacktestRow measure_ranking(std::span<const float> score, std::span<const std::uint8_t> label) {
  check_sizes("measure_ranking", score, label);
  check_finite("measure_ranking", score);
  // One sort serves every figure: the AUC, four recalls and the gain curve each sorted the
  // population on their own (six sorts per method, a tenth of a 1M-row lookalike stage).
  const std::vector<std::int64_t> order = order_descending(score);
  const std::int64_t positives = count_positives(label);
  BacktestRow row;
  row.population = static_cast<std::int64_t>(score.size());
  row.positives = positives;
  row.auc = auc_from_order(order, score, label);
  row.recall_at_1 = recall_from_order(order, label, positives, kRecallFractions[0]);
  row.recall_at_5 = recall_from_order(order, label, positives, kRecallFractions[1]);
  row.recall_at_10 = recall_from_order(order, label, positives, kRecallFractions[2]);
  row.recall_at_25 = recall_from_order(order, label, positives, kRecallFractions[3]);
  row.lift_at_10 = row.recall_at_10 / kRecallFractions[2];
  row.gain = gain_from_order(order, label, positives, kGainPoints);
  return row;
}

}  // namespace icp
