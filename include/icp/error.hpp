// Errors the library throws. The CLI maps every icp::Error to exit code 2 and prints what().
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

namespace icp {

/// Base of every error the user can fix (bad input, bad job file, bad arguments).
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Throws Error when no file could be created at `file`: its folder is missing, not a folder or
/// not writable. The message reads "<file>: cannot write[ <what>]: folder '<folder>' ...".
/// Outputs call it before the expensive work, so a bad path fails in seconds.
void require_writable_folder(const std::string& file, const std::string& what = "");

/// A problem in a data file at a known place. what() reads
/// "<file>:<line>: column '<column>' (<col_no>): <reason>: '<value>'".
class InputError : public Error {
 public:
  InputError(std::string file, std::int64_t line, std::string column, std::int64_t column_number,
             std::string value, std::string reason);
  const std::string& file() const noexcept { return file_; }
  std::int64_t line() const noexcept { return line_; }
  const std::string& column() const noexcept { return column_; }
  std::int64_t column_number() const noexcept { return column_number_; }
  const std::string& value() const noexcept { return value_; }
  const std::string& reason() const noexcept { return reason_; }

 private:
  std::string file_;
  std::int64_t line_;
  std::string column_;
  std::int64_t column_number_;
  std::string value_;
  std::string reason_;
};

/// A problem in the job file or in command-line options ("<file>: <key>: <reason>").
class ConfigError : public Error {
 public:
  using Error::Error;
};

}  // namespace icp
