#include "icp/error.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <utility>

namespace icp {

namespace {
std::string format_input_error(const std::string& file, std::int64_t line,
                               const std::string& column, std::int64_t column_number,
                               const std::string& value, const std::string& reason) {
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

void require_writable_folder(const std::string& file, const std::string& what) {
  namespace fs = std::filesystem;
  fs::path folder = fs::path(file).parent_path();
  if (folder.empty()) folder = ".";
  const std::string head = file + ": cannot write" + (what.empty() ? "" : " " + what) + ": ";
  std::error_code ec;
  const fs::file_status status = fs::status(folder, ec);
  if (!fs::exists(status)) throw Error(head + "folder '" + folder.string() + "' does not exist");
  if (!fs::is_directory(status)) throw Error(head + "'" + folder.string() + "' is not a folder");
  if (::access(folder.c_str(), W_OK) != 0) {
    throw Error(head + "folder '" + folder.string() + "' is not writable (" + std::strerror(errno) +
                ")");
  }
}

}  // namespace icp
