// Job file parsing: strict (unknown keys and wrong types are errors), every message names the
// file, the line and the key, so a typo never silently falls back to a default.
#include "icp/config.hpp"

#include <toml++/toml.h>

#include <cctype>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>

#include "icp/error.hpp"

namespace icp {

namespace {

namespace fs = std::filesystem;

std::string where(const std::string& origin, const toml::node& node) {
  const auto line = node.source().begin.line;
  return line > 0 ? origin + ":" + std::to_string(line) : origin;
}

/// One TOML table being read: remembers which keys were consumed so the rest can be reported.
class Section {
 public:
  Section(const toml::table& table, std::string prefix, const std::string& origin)
      : table_(table), prefix_(std::move(prefix)), origin_(origin) {}

  std::string key_name(std::string_view key) const {
    return prefix_.empty() ? std::string(key) : prefix_ + "." + std::string(key);
  }

  [[noreturn]] void fail(std::string_view key, const std::string& reason) const {
    const toml::node* node = table_.get(key);
    const std::string place = node ? where(origin_, *node) : where(origin_, table_);
    throw ConfigError(place + ": " + key_name(key) + ": " + reason);
  }

  const toml::node* node(std::string_view key) {
    seen_.insert(std::string(key));
    return table_.get(key);
  }

  void get(std::string_view key, std::string& out) {
    if (const auto* n = node(key)) {
      if (!n->is_string()) fail(key, "expected a string, found " + type_name(*n));
      out = *n->value<std::string>();
    }
  }
  void get(std::string_view key, double& out) {
    if (const auto* n = node(key)) {
      if (!n->is_number()) fail(key, "expected a number, found " + type_name(*n));
      out = *n->value<double>();
    }
  }
  void get(std::string_view key, std::int64_t& out, std::int64_t lo, std::int64_t hi) {
    if (const auto* n = node(key)) {
      if (!n->is_integer()) fail(key, "expected an integer, found " + type_name(*n));
      const std::int64_t v = *n->value<std::int64_t>();
      if (v < lo || v > hi)
        fail(key, "must be between " + std::to_string(lo) + " and " + std::to_string(hi) +
                      ", found " + std::to_string(v));
      out = v;
    }
  }
  void get(std::string_view key, int& out, int lo, int hi) {
    std::int64_t v = out;
    get(key, v, lo, hi);
    out = static_cast<int>(v);
  }
  void get(std::string_view key, bool& out) {
    if (const auto* n = node(key)) {
      if (!n->is_boolean()) fail(key, "expected true or false, found " + type_name(*n));
      out = *n->value<bool>();
    }
  }
  void get(std::string_view key, std::vector<double>& out) {
    if (const auto* n = node(key)) {
      const auto* arr = n->as_array();
      if (!arr) fail(key, "expected an array of numbers, found " + type_name(*n));
      out.clear();
      for (const auto& e : *arr) {
        if (!e.is_number()) fail(key, "expected an array of numbers");
        out.push_back(*e.value<double>());
      }
    }
  }
  void get(std::string_view key, std::vector<std::string>& out) {
    if (const auto* n = node(key)) {
      const auto* arr = n->as_array();
      if (!arr) fail(key, "expected an array of strings, found " + type_name(*n));
      out.clear();
      for (const auto& e : *arr) {
        if (!e.is_string()) fail(key, "expected an array of strings");
        out.push_back(*e.value<std::string>());
      }
    }
  }
  /// A string key restricted to a fixed set of choices, mapped to an enum.
  template <class E>
  void choice(std::string_view key, E& out, std::initializer_list<std::pair<const char*, E>> opts) {
    std::string s;
    get(key, s);
    if (!node(key)) return;
    std::string names;
    for (const auto& [name, value] : opts) {
      if (s == name) {
        out = value;
        return;
      }
      names += names.empty() ? name : std::string(" | ") + name;
    }
    fail(key, "unknown value '" + s + "' (expected " + names + ")");
  }

  /// Reports the first key of this table that no reader asked for.
  void reject_unknown() const {
    for (const auto& [k, v] : table_) {
      if (!seen_.count(std::string(k.str())))
        throw ConfigError(where(origin_, v) + ": unknown key '" + key_name(k.str()) + "'");
    }
  }

  static std::string type_name(const toml::node& n) {
    switch (n.type()) {
      case toml::node_type::string:
        return "a string";
      case toml::node_type::integer:
        return "an integer";
      case toml::node_type::floating_point:
        return "a number";
      case toml::node_type::boolean:
        return "a boolean";
      case toml::node_type::array:
        return "an array";
      case toml::node_type::table:
        return "a table";
      default:
        return "a date/time";
    }
  }

 private:
  const toml::table& table_;
  std::string prefix_;
  const std::string& origin_;
  std::set<std::string> seen_;
};

/// Sub-table `key` of `parent`, or an empty table when absent; a non-table is an error.
const toml::table& sub_table(Section& parent, const toml::table& empty, std::string_view key) {
  const toml::node* n = parent.node(key);
  if (!n) return empty;
  if (!n->is_table()) parent.fail(key, "expected a table, found " + Section::type_name(*n));
  return *n->as_table();
}

std::string resolve_path(const std::string& base_dir, const std::string& p) {
  if (p.empty() || fs::path(p).is_absolute() || base_dir.empty()) return p;
  return (fs::path(base_dir) / p).lexically_normal().string();
}

char parse_delimiter(Section& s, const std::string& text) {
  if (text == "," || text == ";" || text == "|" || text == "\t" || text == "\\t")
    return text == "\\t" ? '\t' : text[0];
  s.fail("delimiter", "expected one of \",\" \";\" \"|\" \"\\t\", found '" + text + "'");
}

void read_input(Section& root, const toml::table& empty, const std::string& origin,
                const std::string& base, JobConfig& c) {
  Section s(sub_table(root, empty, "input"), "input", origin);
  s.get("path", c.input_path);
  c.input_path = resolve_path(base, c.input_path);
  s.get("id_column", c.id_column);
  s.get("format", c.input_format);
  if (!c.input_format.empty() && c.input_format != "csv" && c.input_format != "hdf5")
    s.fail("format", "unknown value '" + c.input_format + "' (expected csv | hdf5)");
  s.get("group", c.input_group);
  if (c.input_group.empty() || c.input_group[0] != '/')
    s.fail("group",
           "expected an absolute HDF5 group such as \"/accounts\", found '" + c.input_group + "'");
  std::string delim = std::string(1, c.csv.delimiter);
  s.get("delimiter", delim);
  c.csv.delimiter = parse_delimiter(s, delim);
  s.get("missing_tokens", c.csv.missing_tokens);
  s.choice("on_error", c.csv.on_error,
           {{"fail", ErrorPolicy::fail}, {"quarantine", ErrorPolicy::quarantine}});
  s.get("quarantine_path", c.csv.quarantine_path);
  c.csv.quarantine_path = resolve_path(base, c.csv.quarantine_path);
  s.choice("encoding", c.csv.encoding,
           {{"utf-8", TextEncoding::utf8}, {"latin-1", TextEncoding::latin1}});
  s.reject_unknown();
}

template <class F>
void for_each_table_in_array(Section& parent, std::string_view key, F&& f) {
  const toml::node* n = parent.node(key);
  if (!n) return;
  const toml::array* arr = n->as_array();
  if (!arr) parent.fail(key, "expected an array of tables ([[" + parent.key_name(key) + "]])");
  std::size_t i = 0;
  for (const auto& e : *arr) {
    if (!e.is_table()) parent.fail(key, "expected an array of tables");
    f(*e.as_table(), parent.key_name(key) + "[" + std::to_string(i++) + "]");
  }
}

void read_features(Section& root, const toml::table& empty, const std::string& origin,
                   JobConfig& c) {
  Section s(sub_table(root, empty, "features"), "features", origin);
  for_each_table_in_array(s, "numeric", [&](const toml::table& t, const std::string& name) {
    Section f(t, name, origin);
    NumericFeature nf;
    f.get("column", nf.column);
    if (nf.column.empty()) f.fail("column", "every numeric feature needs a column name");
    f.choice("transform", nf.transform, {{"none", Transform::none}, {"log1p", Transform::log1p}});
    f.choice("scaling", nf.scaling,
             {{"zscore", Scaling::zscore},
              {"robust", Scaling::robust},
              {"minmax", Scaling::minmax},
              {"none", Scaling::none}});
    f.get("weight", nf.weight);
    if (!(nf.weight >= 0.0)) f.fail("weight", "must be >= 0");
    f.reject_unknown();
    c.numeric.push_back(nf);
  });
  for_each_table_in_array(s, "categorical", [&](const toml::table& t, const std::string& name) {
    Section f(t, name, origin);
    CategoricalFeature cf;
    f.get("column", cf.column);
    if (cf.column.empty()) f.fail("column", "every categorical feature needs a column name");
    f.get("max_levels", cf.max_levels, 1, 10000);
    f.get("weight", cf.weight);
    if (!(cf.weight >= 0.0)) f.fail("weight", "must be >= 0");
    f.reject_unknown();
    c.categorical.push_back(cf);
  });
  s.reject_unknown();
  std::set<std::string> names;
  for (const auto& f : c.numeric)
    if (!names.insert(f.column).second)
      throw ConfigError(origin + ": features: column '" + f.column + "' is listed twice");
  for (const auto& f : c.categorical)
    if (!names.insert(f.column).second)
      throw ConfigError(origin + ": features: column '" + f.column + "' is listed twice");
}

void read_rest(Section& root, const toml::table& empty, const std::string& origin,
               const std::string& base, JobConfig& c) {
  {
    Section s(sub_table(root, empty, "missing"), "missing", origin);
    s.choice("numeric", c.missing.numeric,
             {{"median", NumericImpute::median},
              {"mean", NumericImpute::mean},
              {"zero", NumericImpute::zero}});
    s.choice("categorical", c.missing.categorical,
             {{"mode", CategoricalImpute::mode}, {"level", CategoricalImpute::level}});
    s.get("flag", c.missing.flag);
    s.get("flag_weight", c.missing.flag_weight);
    if (!(c.missing.flag_weight >= 0.0)) s.fail("flag_weight", "must be >= 0");
    s.reject_unknown();
  }
  {
    Section s(sub_table(root, empty, "seeds"), "seeds", origin);
    s.get("rule", c.seeds.rule);
    s.get("ids_file", c.seeds.ids_file);
    c.seeds.ids_file = resolve_path(base, c.seeds.ids_file);
    s.get("negative_rule", c.seeds.negative_rule);
    s.get("min_count", c.seeds.min_count, 2, std::int64_t{1} << 40);
    if (!c.seeds.rule.empty() && !c.seeds.ids_file.empty())
      s.fail("ids_file", "give either seeds.rule or seeds.ids_file, not both");
    s.reject_unknown();
  }
  {
    Section s(sub_table(root, empty, "summary"), "summary", origin);
    s.get("value_column", c.value_column);
    s.reject_unknown();
  }
  {
    Section s(sub_table(root, empty, "kmeans"), "kmeans", origin);
    if (const toml::node* kn = s.node("k"); kn && kn->is_string()) {
      const std::string kv = *kn->value<std::string>();
      if (kv != "auto")
        s.fail("k", "expected an integer, found a string ('" + kv +
                        "'; the only string accepted is \"auto\")");
      c.k_auto = true;
    } else {
      s.get("k", c.kmeans.k, 1, 1 << 20);
    }
    s.get("k_min", c.k_min, 2, 1 << 20);
    s.get("k_max", c.k_max, 2, 1 << 20);
    if (c.k_max < c.k_min) s.fail("k_max", "must be >= kmeans.k_min");
    s.get("max_iter", c.kmeans.max_iter, 1, 1 << 20);
    s.get("tol", c.kmeans.tol);
    if (!(c.kmeans.tol >= 0.0)) s.fail("tol", "must be >= 0");
    s.choice("init", c.kmeans.init,
             {{"kmeans++", KMeansInit::kmeanspp},
              {"random", KMeansInit::random},
              {"kmeans||", KMeansInit::kmeans_parallel},
              {"file", KMeansInit::file}});
    s.get("init_file", c.kmeans_init_file);
    c.kmeans_init_file = resolve_path(base, c.kmeans_init_file);
    s.get("init_dataset", c.kmeans_init_dataset);
    s.get("weight_column", c.kmeans_weight_column);
    if (c.kmeans.init == KMeansInit::file) {
      if (c.kmeans_init_file.empty()) s.fail("init", "init = \"file\" needs kmeans.init_file");
      if (c.k_auto) s.fail("init", "init = \"file\" needs a fixed k, not k = \"auto\"");
    } else if (s.node("init_file") || s.node("init_dataset")) {
      s.fail(s.node("init_file") ? "init_file" : "init_dataset", "only used with init = \"file\"");
    }
    s.choice("algorithm", c.kmeans.algorithm,
             {{"auto", KMeansAlgorithm::automatic},
              {"lloyd", KMeansAlgorithm::lloyd},
              {"hamerly", KMeansAlgorithm::hamerly},
              {"yinyang", KMeansAlgorithm::yinyang},
              {"minibatch", KMeansAlgorithm::minibatch}});
    s.get("batch_size", c.kmeans.batch_size, 0, std::int64_t{1} << 40);
    s.get("n_init", c.kmeans.n_init, 1, 1000);
    s.reject_unknown();
  }
  {
    Section s(sub_table(root, empty, "lookalike"), "lookalike", origin);
    s.get("neighbors", c.lookalike.neighbors, 1, 1000);
    s.get("knn_max_seeds", c.lookalike.knn_max_seeds, 0, std::int64_t{1} << 40);
    s.choice("method", c.lookalike.method,
             {{"ensemble", LookalikeMethod::ensemble},
              {"knn", LookalikeMethod::knn},
              {"segment", LookalikeMethod::segment},
              {"model", LookalikeMethod::model}});
    s.get("prior_strength", c.lookalike.prior_strength);
    if (!(c.lookalike.prior_strength >= 0.0)) s.fail("prior_strength", "must be >= 0");
    s.get("l2", c.lookalike.l2);
    if (!(c.lookalike.l2 > 0.0)) s.fail("l2", "must be > 0");
    s.get("bags", c.lookalike.bags, 1, 1000);
    s.get("tiers", c.lookalike.tiers);
    for (std::size_t i = 0; i < c.lookalike.tiers.size(); ++i) {
      const double t = c.lookalike.tiers[i];
      if (!(t > 0.0 && t <= 1.0) || (i > 0 && t <= c.lookalike.tiers[i - 1]))
        s.fail("tiers", "must be increasing fractions in (0, 1]");
    }
    if (c.lookalike.tiers.size() > 4) s.fail("tiers", "at most 4 cut-offs (tiers A-D, rest E)");
    s.get("holdout", c.lookalike.holdout);
    if (!(c.lookalike.holdout > 0.0 && c.lookalike.holdout < 1.0))
      s.fail("holdout", "must be between 0 and 1 (exclusive)");
    s.get("backtest_max_rows", c.lookalike.backtest_max_rows, 0, std::int64_t{1} << 40);
    s.get("top_n", c.lookalike.top_n, 1, std::int64_t{1} << 40);
    s.reject_unknown();
  }
  {
    Section s(sub_table(root, empty, "output"), "output", origin);
    s.get("path", c.output.path);
    c.output.path = resolve_path(base, c.output.path);
    s.get("top_csv", c.output.top_csv);
    c.output.top_csv = resolve_path(base, c.output.top_csv);
    s.get("report", c.output.report);
    c.output.report = resolve_path(base, c.output.report);
    s.reject_unknown();
  }
  {
    Section s(sub_table(root, empty, "run"), "run", origin);
    s.get("threads", c.threads, 0, 4096);
    std::int64_t seed = static_cast<std::int64_t>(c.seed);
    s.get("seed", seed, 0, std::numeric_limits<std::int64_t>::max());
    c.seed = static_cast<std::uint64_t>(seed);
    s.reject_unknown();
  }
}

}  // namespace

JobConfig parse_config(const std::string& text, const std::string& origin) {
  toml::table doc;
  try {
    doc = toml::parse(text, origin);
  } catch (const toml::parse_error& e) {
    throw ConfigError(origin + ":" + std::to_string(e.source().begin.line) + ":" +
                      std::to_string(e.source().begin.column) + ": " +
                      std::string(e.description()));
  }
  JobConfig c;
  c.config_path = origin;
  const std::string base = fs::path(origin).parent_path().string();
  const toml::table empty;
  Section root(doc, "", origin);
  read_input(root, empty, origin, base, c);
  read_features(root, empty, origin, c);
  read_rest(root, empty, origin, base, c);
  root.reject_unknown();

  if (c.input_path.empty()) throw ConfigError(origin + ": input.path: required");
  if (c.numeric.empty() && c.categorical.empty())
    throw ConfigError(origin +
                      ": features: at least one numeric or categorical feature is required");
  if (c.seeds.rule.empty() && c.seeds.ids_file.empty())
    throw ConfigError(origin + ": seeds: give seeds.rule or seeds.ids_file");
  if (!c.seeds.ids_file.empty() && c.id_column.empty())
    throw ConfigError(origin + ": input.id_column: required when seeds.ids_file is used");
  c.kmeans.seed = c.seed;
  c.config_text = to_toml(c);
  return c;
}

JobConfig load_config(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError(path + ": cannot open the job file");
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_config(ss.str(), path);
}

namespace {
std::string quoted(const std::string& s) {
  std::string out = "\"";
  for (char ch : s) {
    if (ch == '"' || ch == '\\') out += '\\';
    if (ch == '\t') {
      out += "\\t";
      continue;
    }
    out += ch;
  }
  return out + "\"";
}
std::string number(double v) {
  std::ostringstream os;
  os.precision(17);
  os << v;
  std::string s = os.str();
  if (s.find_first_of(".eEn") == std::string::npos) s += ".0";
  return s;
}
const char* name_of(Transform t) {
  return t == Transform::log1p ? "log1p" : "none";
}
const char* name_of(Scaling s) {
  switch (s) {
    case Scaling::zscore:
      return "zscore";
    case Scaling::robust:
      return "robust";
    case Scaling::minmax:
      return "minmax";
    case Scaling::none:
      return "none";
  }
  return "none";
}
}  // namespace

std::string resolve_input_format(const std::string& format, const std::string& path) {
  if (!format.empty()) return format;
  std::string ext = fs::path(path).extension().string();
  for (auto& ch : ext) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return ext == ".h5" || ext == ".hdf5" || ext == ".he5" ? "hdf5" : "csv";
}

std::string to_toml(const JobConfig& c) {
  std::ostringstream o;
  o << "[input]\npath = " << quoted(c.input_path) << "\nid_column = " << quoted(c.id_column)
    << "\nformat = " << quoted(resolve_input_format(c.input_format, c.input_path))
    << "\ngroup = " << quoted(c.input_group)
    << "\ndelimiter = " << quoted(std::string(1, c.csv.delimiter)) << "\nmissing_tokens = [";
  for (std::size_t i = 0; i < c.csv.missing_tokens.size(); ++i)
    o << (i ? ", " : "") << quoted(c.csv.missing_tokens[i]);
  o << "]\non_error = " << quoted(c.csv.on_error == ErrorPolicy::fail ? "fail" : "quarantine")
    << "\nquarantine_path = " << quoted(c.csv.quarantine_path)
    << "\nencoding = " << quoted(to_string(c.csv.encoding)) << "\n";
  for (const auto& f : c.numeric)
    o << "\n[[features.numeric]]\ncolumn = " << quoted(f.column) << "\ntransform = \""
      << name_of(f.transform) << "\"\nscaling = \"" << name_of(f.scaling)
      << "\"\nweight = " << number(f.weight) << "\n";
  for (const auto& f : c.categorical)
    o << "\n[[features.categorical]]\ncolumn = " << quoted(f.column)
      << "\nmax_levels = " << f.max_levels << "\nweight = " << number(f.weight) << "\n";
  const char* num_imp = c.missing.numeric == NumericImpute::median ? "median"
                        : c.missing.numeric == NumericImpute::mean ? "mean"
                                                                   : "zero";
  o << "\n[missing]\nnumeric = \"" << num_imp << "\"\ncategorical = \""
    << (c.missing.categorical == CategoricalImpute::mode ? "mode" : "level")
    << "\"\nflag = " << (c.missing.flag ? "true" : "false")
    << "\nflag_weight = " << number(c.missing.flag_weight) << "\n";
  o << "\n[seeds]\n";
  if (!c.seeds.rule.empty()) o << "rule = " << quoted(c.seeds.rule) << "\n";
  if (!c.seeds.ids_file.empty()) o << "ids_file = " << quoted(c.seeds.ids_file) << "\n";
  if (!c.seeds.negative_rule.empty())
    o << "negative_rule = " << quoted(c.seeds.negative_rule) << "\n";
  o << "min_count = " << c.seeds.min_count << "\n";
  o << "\n[summary]\nvalue_column = " << quoted(c.value_column) << "\n";
  o << "\n[kmeans]\nk = " << (c.k_auto ? std::string("\"auto\"") : std::to_string(c.kmeans.k))
    << "\nk_min = " << c.k_min << "\nk_max = " << c.k_max << "\nmax_iter = " << c.kmeans.max_iter
    << "\ntol = " << number(c.kmeans.tol) << "\ninit = \"" << to_string(c.kmeans.init)
    << "\"\nalgorithm = \"" << to_string(c.kmeans.algorithm) << "\"\nn_init = " << c.kmeans.n_init
    << "\n";
  if (c.kmeans.init == KMeansInit::file)
    o << "init_file = " << quoted(c.kmeans_init_file)
      << "\ninit_dataset = " << quoted(c.kmeans_init_dataset) << "\n";
  if (c.kmeans.batch_size > 0) o << "batch_size = " << c.kmeans.batch_size << "\n";
  if (!c.kmeans_weight_column.empty())
    o << "weight_column = " << quoted(c.kmeans_weight_column) << "\n";
  o << "\n[lookalike]\nneighbors = " << c.lookalike.neighbors
    << "\nknn_max_seeds = " << c.lookalike.knn_max_seeds << "\nmethod = \""
    << to_string(c.lookalike.method)
    << "\"\nprior_strength = " << number(c.lookalike.prior_strength)
    << "\nl2 = " << number(c.lookalike.l2) << "\nbags = " << c.lookalike.bags << "\ntiers = [";
  for (std::size_t i = 0; i < c.lookalike.tiers.size(); ++i)
    o << (i ? ", " : "") << number(c.lookalike.tiers[i]);
  o << "]\nholdout = " << number(c.lookalike.holdout)
    << "\nbacktest_max_rows = " << c.lookalike.backtest_max_rows
    << "\ntop_n = " << c.lookalike.top_n << "\n";
  o << "\n[output]\npath = " << quoted(c.output.path) << "\ntop_csv = " << quoted(c.output.top_csv)
    << "\nreport = " << quoted(c.output.report) << "\n";
  o << "\n[run]\nthreads = " << c.threads << "\nseed = " << c.seed << "\n";
  return o.str();
}

}  // namespace icp
