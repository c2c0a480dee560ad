// `icp schema`: profile a sample of a CSV file and print a starting job file.
#include <cstdio>
#include <memory>

#include "command.hpp"
#include "icp/config.hpp"
#include "icp/error.hpp"
#include "icp/schema.hpp"

namespace icp::cli {
namespace {

struct SchemaArgs {
  std::string input;
  std::string delimiter = ",";
  std::string encoding = "utf-8";
  std::int64_t rows = 100000;
  int max_levels = 12;
};

int run(const SchemaArgs& a) {
  SchemaOptions o;
  if (a.delimiter == "\\t" || a.delimiter == "tab") o.delimiter = '\t';
  else if (a.delimiter.size() == 1) o.delimiter = a.delimiter[0];
  else throw ConfigError("--delimiter: expected one of , ; | \\t, found '" + a.delimiter + "'");
  if (!parse_encoding(a.encoding, o.encoding))
    throw ConfigError("--encoding: expected utf-8 or latin-1, found '" + a.encoding + "'");
  if (a.rows < 0) throw ConfigError("--rows: must be >= 0 (0 = the whole file)");
  if (a.max_levels < 2) throw ConfigError("--max-levels: must be at least 2");
  o.sample_rows = a.rows;
  o.max_levels = a.max_levels;
  const Schema s = infer_schema(a.input, o);
  std::printf("%s", schema_job_toml(s, o).c_str());
  return 0;
}

const Registrar registrar{40, [](CLI::App& app) -> std::function<int()> {
  auto a = std::make_shared<SchemaArgs>();
  auto* cmd = app.add_subcommand(
      "schema", "Profile a sample of a CSV file and print a starting job file (TOML)");
  cmd->add_option("input", a->input, "Accounts CSV")->required();
  cmd->add_option("--rows", a->rows, "Records to sample from the top (0 = all)");
  cmd->add_option("--delimiter", a->delimiter, "Field delimiter: , ; | or \\t");
  cmd->add_option("--encoding", a->encoding, "Text cells: utf-8 (default) or latin-1");
  cmd->add_option("--max-levels", a->max_levels, "One-hot cap proposed for categoricals");
  return [a] { return run(*a); };
}};

}  // namespace
}  // namespace icp::cli
