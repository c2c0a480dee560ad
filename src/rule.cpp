#include "icp/rule.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <set>

#include "icp/error.hpp"

namespace icp {

namespace {

struct Lexer {
  const std::string& s;
  const std::string& origin;
  std::size_t pos = 0;

  [[noreturn]] void fail(const std::string& what) const {
    throw ConfigError(origin + ": " + what + " at character " + std::to_string(pos + 1) + " of '" +
                      s + "'");
  }
  void skip() {
    while (pos < s.size() && std::isspace(static_cast<unsigned char>(s[pos]))) ++pos;
  }
  bool done() {
    skip();
    return pos >= s.size();
  }
  bool accept(std::string_view tok) {
    skip();
    if (s.compare(pos, tok.size(), tok) == 0) {
      pos += tok.size();
      return true;
    }
    return false;
  }
  std::string word() {
    skip();
    const std::size_t b = pos;
    while (pos < s.size() && (std::isalnum(static_cast<unsigned char>(s[pos])) || s[pos] == '_' ||
                              s[pos] == '.' || s[pos] == '-' || s[pos] == '+'))
      ++pos;
    if (b == pos) fail("expected a column name or value");
    return s.substr(b, pos - b);
  }
  std::string literal() {
    skip();
    if (pos < s.size() && (s[pos] == '"' || s[pos] == '\'')) {
      const char q = s[pos++];
      const std::size_t b = pos;
      while (pos < s.size() && s[pos] != q) ++pos;
      if (pos >= s.size()) fail("unterminated string");
      return s.substr(b, pos++ - b);
    }
    return word();
  }
};

bool parse_number(const std::string& t, double& out) {
  const char* b = t.data();
  const char* e = b + t.size();
  if (b != e && *b == '+') ++b;
  auto [p, ec] = std::from_chars(b, e, out);
  return ec == std::errc() && p == e && std::isfinite(out);
}

bool holds(RuleClause::Op op, double v, const std::vector<double>& nums) {
  switch (op) {
    case RuleClause::Op::eq: return v == nums[0];
    case RuleClause::Op::ne: return v != nums[0];
    case RuleClause::Op::lt: return v < nums[0];
    case RuleClause::Op::le: return v <= nums[0];
    case RuleClause::Op::gt: return v > nums[0];
    case RuleClause::Op::ge: return v >= nums[0];
    case RuleClause::Op::in: return std::find(nums.begin(), nums.end(), v) != nums.end();
  }
  return false;
}

bool is_order(RuleClause::Op op) {
  return op == RuleClause::Op::lt || op == RuleClause::Op::le || op == RuleClause::Op::gt ||
         op == RuleClause::Op::ge;
}

}  // namespace

RowRule RowRule::parse(const std::string& text, const std::string& origin) {
  RowRule rule;
  rule.text_ = text;
  rule.origin_ = origin;
  Lexer lx{text, origin};
  if (lx.done()) lx.fail("empty rule");
  do {
    RuleClause c;
    c.column = lx.word();
    if (lx.accept("==")) c.op = RuleClause::Op::eq;
    else if (lx.accept("!=")) c.op = RuleClause::Op::ne;
    else if (lx.accept("<=")) c.op = RuleClause::Op::le;
    else if (lx.accept(">=")) c.op = RuleClause::Op::ge;
    else if (lx.accept("<")) c.op = RuleClause::Op::lt;
    else if (lx.accept(">")) c.op = RuleClause::Op::gt;
    else if (lx.accept("in ") || lx.accept("in(")) {
      c.op = RuleClause::Op::in;
      if (text[lx.pos - 1] != '(' && !lx.accept("(")) lx.fail("expected '(' after 'in'");
      do c.values.push_back(lx.literal());
      while (lx.accept(","));
      if (!lx.accept(")")) lx.fail("expected ')'");
    } else {
      lx.fail("expected one of == != < <= > >= in");
    }
    if (c.op != RuleClause::Op::in) c.values.push_back(lx.literal());
    c.numeric = true;
    for (const auto& v : c.values) {
      double d = 0;
      if (!parse_number(v, d)) c.numeric = false;
      c.numbers.push_back(d);
    }
    if (is_order(c.op) && !c.numeric) lx.fail("'" + c.column + "' is compared with a non-number");
    rule.clauses_.push_back(std::move(c));
  } while (lx.accept("and ") || lx.accept("AND "));
  if (!lx.done()) lx.fail("expected 'and' or the end of the rule");
  return rule;
}

ColumnType RowRule::column_type(const std::string& column) const {
  bool any = false;
  bool numeric = true;
  for (const auto& c : clauses_) {
    if (c.column != column) continue;
    any = true;
    numeric = numeric && c.numeric;
  }
  if (!any) throw Error(origin_ + ": the rule does not use column '" + column + "'");
  return numeric ? ColumnType::numeric : ColumnType::categorical;
}

std::vector<std::string> RowRule::columns() const {
  std::vector<std::string> out;
  for (const auto& c : clauses_)
    if (std::find(out.begin(), out.end(), c.column) == out.end()) out.push_back(c.column);
  return out;
}

std::vector<std::uint8_t> RowRule::evaluate(const Table& table) const {
  std::vector<std::uint8_t> keep(table.rows, 1);
  for (const auto& c : clauses_) {
    const Column* col = table.find(c.column);
    if (!col) throw ConfigError(origin_ + ": column '" + c.column + "' is not in " + table.source);
    if (col->type == ColumnType::numeric) {
      if (!c.numeric)
        throw ConfigError(origin_ + ": column '" + c.column +
                          "' is numeric but is compared with a non-number");
      for (std::size_t i = 0; i < table.rows; ++i) {
        const double v = col->numeric[i];
        if (keep[i] && (std::isnan(v) || !holds(c.op, v, c.numbers))) keep[i] = 0;
      }
    } else {
      if (is_order(c.op))
        throw ConfigError(origin_ + ": column '" + c.column + "' is not numeric; use == != in");
      // Match literals against the dictionary once, so each row is one integer lookup.
      std::vector<std::uint8_t> level_ok;
      if (col->type == ColumnType::categorical) {
        level_ok.assign(col->levels.size(), 0);
        for (std::size_t l = 0; l < col->levels.size(); ++l) {
          const bool found =
              std::find(c.values.begin(), c.values.end(), col->levels[l]) != c.values.end();
          level_ok[l] = (c.op == RuleClause::Op::ne) ? !found : found;
        }
      }
      for (std::size_t i = 0; i < table.rows; ++i) {
        if (!keep[i]) continue;
        if (col->is_missing(i)) {
          keep[i] = 0;
          continue;
        }
        if (col->type == ColumnType::categorical) {
          keep[i] = level_ok[static_cast<std::size_t>(col->codes[i])];
        } else {
          const bool found =
              std::find(c.values.begin(), c.values.end(), col->text[i]) != c.values.end();
          keep[i] = (c.op == RuleClause::Op::ne) ? !found : found;
        }
      }
    }
  }
  return keep;
}

}  // namespace icp
