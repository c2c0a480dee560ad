// A self-contained HTML report of a results file: inline SVG and CSS only (no script, no network),
// so it can be mailed or archived and opens the same way anywhere.
#pragma once

#include <string>

namespace icp {

struct ReportOptions {
  int top = 25;           ///< lookalike accounts listed (seeds excluded)
  int max_features = 40;  ///< heatmap columns at most (the features with the widest spread)
};

/// The report of `results_path` (a file written by `icp run`): segment sizes and seed lift, the
/// backtest gain curve per method, a heatmap of the segment centroids (normalized features), the
/// ICP table and the top lookalike accounts. Throws icp::Error for a file that is not a results
/// file or lacks a dataset the report needs.
std::string report_html(const std::string& results_path, const ReportOptions& options = {});

/// Writes report_html to `html_path` atomically (temporary file, then rename).
void write_report(const std::string& results_path, const std::string& html_path,
                  const ReportOptions& options = {});

}  // namespace icp
