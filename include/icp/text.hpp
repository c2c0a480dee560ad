#pragma once
// Text encoding helpers shared by ingest (which checks or converts every text cell) and the
// HDF5 writer (which stores UTF-8 only).

#include <cstddef>
#include <string>
#include <string_view>

namespace icp {

/// How the bytes of a CSV's text cells are read.
enum class TextEncoding {
  utf8,    ///< must be valid UTF-8: a cell that is not is a bad cell (error or quarantine)
  latin1,  ///< ISO-8859-1: every byte is one character, converted to UTF-8 (lossless)
};

/// "utf-8" or "latin-1".
const char* to_string(TextEncoding encoding) noexcept;
/// The encoding named "utf-8" or "latin-1" into `out`; false for any other name.
bool parse_encoding(std::string_view name, TextEncoding& out) noexcept;

/// Byte offset of the first invalid UTF-8 sequence in `s` (overlong forms, UTF-16 surrogates
/// and code points past U+10FFFF count as invalid), or std::string::npos.
std::size_t invalid_utf8_at(std::string_view s) noexcept;

/// `s` read as ISO-8859-1, in UTF-8 (bytes >= 0x80 become two bytes).
std::string latin1_to_utf8(std::string_view s);

/// `s` with every byte outside printable ASCII written as \xNN: safe to print whatever `s` is.
std::string escape_bytes(std::string_view s);

}  // namespace icp
