// `icp convert`: parse a CSV once and store it as one HDF5 dataset per column, the input that
// streamed runs (`icp run --memory-limit`, `icp score --memory-limit`) read a block at a time.
#include <cstdio>
#include <memory>
#include <optional>

#include "command.hpp"
#include "icp/config.hpp"
#include "icp/csv.hpp"
#include "icp/error.hpp"
#include "icp/hdf5.hpp"
#include "icp/parallel.hpp"
#include "icp/pipeline.hpp"
#include "icp/schema.hpp"
#include "icp/table_h5.hpp"

namespace icp::cli {
namespace {

struct ConvertArgs {
  std::string input, output, config;
  std::string delimiter;
  std::string group;
  std::string on_error;
  std::string quarantine;
  std::string encoding;
  std::int64_t sample_rows = 100000;
  std::optional<int> threads;
  bool quiet = false;
};

char delimiter_of(const std::string& d) {
  if (d == "\\t" || d == "tab") return '\t';
  if (d.size() == 1) return d[0];
  throw ConfigError("--delimiter: expected one of , ; | \\t, found '" + d + "'");
}

TextEncoding encoding_of(const std::string& e) {
  TextEncoding out{};
  if (!parse_encoding(e, out))
    throw ConfigError("--encoding: expected utf-8 or latin-1, found '" + e + "'");
  return out;
}

int run(const ConvertArgs& a) {
  CsvOptions csv;
  std::string group = "/accounts";
  if (!a.config.empty()) {
    // The job's own columns, types, missing tokens and error policy: the converted file then
    // holds exactly the rows and columns a run would have used.
    const JobConfig job = load_config(a.config);
    csv = job.csv;
    csv.columns = required_columns(job);
    csv.unique_column = job.id_column;
    group = job.input_group;
    set_threads(job.threads);
  } else {
    SchemaOptions so;
    if (!a.delimiter.empty()) so.delimiter = delimiter_of(a.delimiter);
    so.sample_rows = a.sample_rows;
    if (!a.encoding.empty()) so.encoding = encoding_of(a.encoding);
    const Schema schema = infer_schema(a.input, so);
    csv.delimiter = so.delimiter;
    csv.encoding = schema.encoding;  // Latin-1 when the sample showed bytes that are not UTF-8
    csv.columns = schema_requests(schema);
    csv.unique_column = schema.id_column;
  }
  if (!a.delimiter.empty()) csv.delimiter = delimiter_of(a.delimiter);
  if (!a.encoding.empty()) csv.encoding = encoding_of(a.encoding);
  if (!a.group.empty()) group = a.group;
  if (a.on_error == "quarantine") csv.on_error = ErrorPolicy::quarantine;
  else if (a.on_error == "fail") csv.on_error = ErrorPolicy::fail;
  else if (!a.on_error.empty())
    throw ConfigError("--on-error: expected fail or quarantine, found '" + a.on_error + "'");
  if (!a.quarantine.empty()) csv.quarantine_path = a.quarantine;
  if (a.threads) set_threads(*a.threads);
  if (group.empty() || group[0] != '/')
    throw ConfigError("--group: expected an absolute HDF5 group such as /accounts");

  h5::Writer out(a.output);  // fails fast on an unwritable folder
  IngestStats stats;
  const Table table = read_csv(a.input, csv, &stats);
  write_table_h5(out, group, table);
  out.commit();
  if (!a.quiet) {
    std::fprintf(stderr, "converted %s -> %s:%s: %zu columns, rows read %s = accepted %s + "
                 "rejected %s, %.2f s parse\n",
                 a.input.c_str(), a.output.c_str(), group.c_str(), table.columns.size(),
                 with_commas(stats.rows_read).c_str(), with_commas(stats.rows_accepted).c_str(),
                 with_commas(stats.rows_quarantined).c_str(), stats.seconds);
  }
  return 0;
}

const Registrar registrar{50, [](CLI::App& app) -> std::function<int()> {
  auto a = std::make_shared<ConvertArgs>();
  auto* cmd = app.add_subcommand(
      "convert", "Store a CSV account table as HDF5 (one dataset per column) for streamed runs and other tools");
  cmd->add_option("input", a->input, "Accounts CSV")->required();
  cmd->add_option("output", a->output, "HDF5 file to write")->required();
  cmd->add_option("-c,--config", a->config,
                  "Job file: convert the columns, types and error policy it uses");
  cmd->add_option("--delimiter", a->delimiter, "Field delimiter: , ; | or \\t");
  cmd->add_option("--group", a->group, "HDF5 group for the columns (default /accounts)");
  cmd->add_option("--on-error", a->on_error,
                  "fail (default without --config) or quarantine: skip and count bad rows");
  cmd->add_option("--quarantine", a->quarantine, "With quarantine: CSV receiving the bad rows");
  cmd->add_option("--encoding", a->encoding,
                  "Text cells: utf-8 (default; invalid bytes are bad cells) or latin-1");
  cmd->add_option("--rows", a->sample_rows,
                  "Without --config: records sampled to infer column types");
  cmd->add_option("--threads", a->threads, "Parse threads (0 = all cores)");
  cmd->add_flag("-q,--quiet", a->quiet, "No summary line");
  return [a] { return run(*a); };
}};

}  // namespace
}  // namespace icp::cli
