#include "icp/error.hpp"

#include <utility>

namespace icp {

namespace {
std::string format_input_error(const std::string& file, std::int64_t line, const std::string& column,
                               std::int64_t column_number, const std::string& value,
                               const std::string& reason) {
  std::string msg = file;
  if (line > 0) msg += ":" + std::to_string(line);
  msg += ": ";
  if (!column.empty() || column_number > 0) {
    msg += "column '" + column + "'";
    if (column_number > 0) msg += " (" + std::to_string(column_number) + ")";
    msg += ": ";
  }
  msg += reason;
  msg += ": '" + value + "'";
  return msg;
}
}  // namespace

InputError::InputError(std::string file, std::int64_t line, std::string column,
                       std::int64_t column_number, std::string value, std::string reason)
    : Error(format_input_error(file, line, column, column_number, value, reason)),
      file_(std::move(file)),
      line_(line),
      column_(std::move(column)),
      column_number_(column_number),
      value_(std::move(value)),
      reason_(std::move(reason)) {}

}  // namespace icp
