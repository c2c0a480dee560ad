// Row rules that select seeds: clauses joined by `and`, e.g.
//   is_customer == 1 and churned == 0 and acv >= 20000
//   status in ("acquired", "ipo")
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "icp/table.hpp"

namespace icp {

struct RuleClause {
  enum class Op { eq, ne, lt, le, gt, ge, in };
  std::string column;
  Op op = Op::eq;
  /// Literals as written; `numeric` says whether every literal parsed as a number.
  std::vector<std::string> values;
  std::vector<double> numbers;
  bool numeric = false;
};

class RowRule {
 public:
  /// Parses `text`; `origin` (e.g. "job.toml: seeds.rule") prefixes error messages.
  /// Grammar: clause ("and" clause)*; clause: column op literal | column "in" "(" literal,* ")";
  /// op: == != < <= > >=; literal: number, "quoted string" or bare word.
  static RowRule parse(const std::string& text, const std::string& origin);

  const std::vector<RuleClause>& clauses() const noexcept { return clauses_; }
  /// The type each referenced column must be read as: numeric when all its literals are numbers
  /// (or it is compared with < <= > >=), categorical otherwise.
  ColumnType column_type(const std::string& column) const;
  std::vector<std::string> columns() const;
  /// 1 where every clause holds. A missing cell satisfies no clause. Text columns compare as
  /// strings; numeric columns compare numerically (a non-numeric literal there is an error).
  std::vector<std::uint8_t> evaluate(const Table& table) const;
  const std::string& text() const noexcept { return text_; }

 private:
  std::string text_;
  std::string origin_;
  std::vector<RuleClause> clauses_;
};

}  // namespace icp
