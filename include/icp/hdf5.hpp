// A small RAII layer over the HDF5 C API: the run's results are written with Writer and read back
// (by `icp inspect`, `icp score` and tests) with Reader.
//
// Threading: serial HDF5 (Debian's libhdf5-serial) is NOT thread-safe. Use Writer and Reader from
// one thread at a time, and never inside an OpenMP region or a oneTBB task: compute in parallel,
// then write from the calling thread.
//
// Errors: every failure throws icp::Error "<file>: <object>: <reason>" (with the innermost HDF5
// message appended where HDF5 gave one). HDF5's own printing to stderr is switched off.
//
// Format: files use the HDF5 1.8 object format (readable by HDF5 >= 1.8, h5py, MATLAB, netCDF-4
// tools) because it stores large attributes, which the 1.0 format cannot. Strings, attribute
// names and link names are variable-length UTF-8, so h5py sees them as str.
#pragma once

#include <concepts>
#include <cstdint>
#include <limits>
#include <memory>
#include <span>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include "icp/error.hpp"

namespace icp::h5 {

/// One column of a compound ("table") dataset.
struct TableField {
  std::string name;
  std::variant<std::vector<std::int64_t>, std::vector<double>, std::vector<std::string>> values;

  std::size_t size() const noexcept;
};

/// Records stored as one compound dataset: one HDF5 record per row, members in field order.
/// (icp::h5::Table, unrelated to the ingest table icp::Table.)
struct Table {
  std::vector<TableField> fields;

  /// Row count (that of the first field; 0 without fields).
  std::size_t rows() const noexcept;
};

/// Element types that Writer::write and Reader::read accept.
template <class T>
concept Element = std::same_as<T, float> || std::same_as<T, double> ||
    std::same_as<T, std::int32_t> || std::same_as<T, std::int64_t> || std::same_as<T, std::uint8_t>;

/// Writes one HDF5 file atomically: everything goes to "<path>.tmp-<host>-<pid>", and only
/// commit() renames it over `path`. Until then an older file at `path` is untouched; a Writer
/// destroyed without commit() (error, exception, early return) removes its temporary file, so a
/// failed run leaves nothing at `path`. A process killed outright can leave only its temporary
/// file; the next Writer for the same path on the same host removes it once that pid is gone.
///
/// Object paths are absolute ("/segments/centroids"); a missing leading '/' is added. Missing
/// intermediate groups are created. Writing to a path that already exists is an error.
/// A moved-from Writer may only be destroyed or assigned to.
class Writer {
 public:
  /// Checks that the folder of `path` exists and is writable and creates the temporary file, so
  /// construct the Writer before the expensive work: a bad output path fails in seconds.
  /// Throws icp::Error naming the path (and the folder) otherwise.
  explicit Writer(std::string path);
  /// Without a successful commit(): closes and deletes the temporary file. Never throws.
  ~Writer();
  Writer(Writer&&) noexcept;
  Writer& operator=(Writer&&) noexcept;
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  const std::string& path() const noexcept;
  /// The temporary file being written ("<path>.tmp-<host>-<pid>").
  const std::string& temp_path() const noexcept;
  bool committed() const noexcept;

  /// Creates a group and any missing parents. Existing groups are left as they are.
  void group(const std::string& path);

  /// A dataset of `v.size()` elements shaped `dims` (row-major; empty = 1-D of v.size()). The
  /// product of `dims` must equal v.size(); zero-sized datasets are allowed. Datasets of
  /// >= 64 Ki elements are chunked and compressed (shuffle + deflate level 1, chunks filtered in
  /// parallel on the OpenMP threads).
  void write(const std::string& path, std::span<const float> v,
             std::vector<std::uint64_t> dims = {});
  void write(const std::string& path, std::span<const double> v,
             std::vector<std::uint64_t> dims = {});
  void write(const std::string& path, std::span<const std::int32_t> v,
             std::vector<std::uint64_t> dims = {});
  void write(const std::string& path, std::span<const std::int64_t> v,
             std::vector<std::uint64_t> dims = {});
  void write(const std::string& path, std::span<const std::uint8_t> v,
             std::vector<std::uint64_t> dims = {});

  /// 1-D dataset of variable-length UTF-8 strings. Throws for invalid UTF-8 or an embedded NUL
  /// (HDF5 strings end at the first NUL), naming the element.
  void write_strings(const std::string& path, const std::vector<std::string>& v);

  /// Datasets written one block of rows at a time, for results too large to hold at once. The
  /// first append creates a growing rows x `cols` dataset (chunked and compressed like write's,
  /// whatever its final size); each later append adds `v.size() / cols` rows at its end and must
  /// give the same `cols`. The values read back equal one write() of all blocks concatenated.
  void append(const std::string& path, std::span<const float> v, std::uint64_t cols = 1);
  void append(const std::string& path, std::span<const double> v, std::uint64_t cols = 1);
  void append(const std::string& path, std::span<const std::int32_t> v, std::uint64_t cols = 1);
  void append(const std::string& path, std::span<const std::int64_t> v, std::uint64_t cols = 1);
  void append(const std::string& path, std::span<const std::uint8_t> v, std::uint64_t cols = 1);
  /// Strings: variable-length, or with `fixed_bytes` (1..64, the longest of every block, which
  /// the caller knows) one fixed-length type as write_strings gives such strings, compressed like
  /// numbers; a longer string then throws.
  void append_strings(const std::string& path, const std::vector<std::string>& v,
                      std::size_t fixed_bytes = 0);

  /// Attributes on an existing group or dataset ("/" for the root). An attribute of the same
  /// name is replaced.
  void attr(const std::string& object, const std::string& name, double v);
  void attr(const std::string& object, const std::string& name, std::int64_t v);
  /// Any other integer (and bool, stored as 0/1) is stored as int64.
  template <std::integral I>
  requires(!std::same_as<I, std::int64_t>) void attr(const std::string& object,
                                                     const std::string& name, I v) {
    if constexpr (std::is_unsigned_v<I> && sizeof(I) >= sizeof(std::int64_t)) {
      if (v > static_cast<I>(std::numeric_limits<std::int64_t>::max())) {
        throw Error(path() + ": " + object + ": attribute '" + name + "' exceeds int64");
      }
    }
    attr(object, name, static_cast<std::int64_t>(v));
  }
  /// Scalar variable-length UTF-8 string.
  void attr(const std::string& object, const std::string& name, const std::string& v);
  void attr(const std::string& object, const std::string& name, const char* v) {
    attr(object, name, std::string(v));
  }
  /// 1-D float64 array attribute.
  void attr(const std::string& object, const std::string& name, std::span<const double> v);

  /// One compound dataset, one record per row. Fields must be non-empty, uniquely named and of
  /// equal length. int64 -> int64, double -> float64, string -> variable-length UTF-8.
  void write_table(const std::string& path, const Table& t);

  /// Flushes, closes and fsyncs the temporary file, then renames it over `path` (atomic on
  /// POSIX). Afterwards the Writer accepts no more writes. Throws icp::Error on failure, in which
  /// case the temporary file is removed and `path` keeps its old content.
  void commit();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Read-only access to an HDF5 file. Conversions happen only where HDF5 converts losslessly
/// (e.g. int32 -> int64 or double, float32 -> float64); anything else (float64 -> float32,
/// float -> integer, int64 -> double, ...) throws icp::Error naming the dataset and its type.
/// A moved-from Reader may only be destroyed or assigned to.
class Reader {
 public:
  /// Throws icp::Error "<path>: no such file", "<path>: not an HDF5 file", ...
  explicit Reader(const std::string& path);
  ~Reader();
  Reader(Reader&&) noexcept;
  Reader& operator=(Reader&&) noexcept;
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;

  const std::string& path() const noexcept;

  /// Whether a link exists at `path` (false, not an error, when a parent is missing).
  bool exists(const std::string& path) const;
  bool is_group(const std::string& path) const;
  bool is_dataset(const std::string& path) const;

  /// Shape of a dataset (empty for a scalar dataset).
  std::vector<std::uint64_t> dims(const std::string& path) const;

  /// All elements, row-major, converted to T (see the class comment for what converts).
  template <Element T>
  std::vector<T> read(const std::string& path) const;

  /// A string dataset (variable or fixed length), flattened.
  std::vector<std::string> read_strings(const std::string& path) const;

  /// Rows [first, first + count) of a dataset (along its first dimension, whole along the
  /// others, row-major): one block of a column too large to read whole, or a few rows of an
  /// n x 3 table. Throws naming the dataset when it is a scalar or the range passes its end.
  template <Element T>
  std::vector<T> read_rows(const std::string& path, std::uint64_t first, std::uint64_t count) const;
  /// Elements [first, first + count) of a 1-D string dataset (throws when it is not 1-D).
  std::vector<std::string> read_string_rows(const std::string& path, std::uint64_t first,
                                            std::uint64_t count) const;

  bool has_attr(const std::string& object, const std::string& name) const;
  /// Single-valued numeric attributes; attr_int rejects floating-point attributes.
  double attr_double(const std::string& object, const std::string& name) const;
  std::int64_t attr_int(const std::string& object, const std::string& name) const;
  std::vector<double> attr_doubles(const std::string& object, const std::string& name) const;
  std::string attr_string(const std::string& object, const std::string& name) const;

  /// A 1-D compound dataset: integer members -> int64, float members -> double, strings ->
  /// string. Other member types throw.
  Table read_table(const std::string& path) const;

  /// Names of the links in a group, sorted bytewise.
  std::vector<std::string> list(const std::string& group) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace icp::h5
