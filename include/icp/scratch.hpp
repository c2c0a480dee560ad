// Per-row columns kept in a scratch file rather than in memory: what a streamed run
// (`icp run --memory-limit`) holds of every row beyond a few bytes of labels and flags.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

namespace icp {

/// A scratch file of fixed-width columns of `rows` rows each, written and read back by row
/// ranges (pwrite/pread: the page cache holds what fits, the process's memory none of it). A
/// column takes its place in the file when it is first written; regions never written read as
/// zeros. The file is removed when this object goes away, whether the run ends or throws.
class ScratchColumns {
 public:
  /// A new file in `folder` (empty = the system's temporary folder) named after `tag`. Throws
  /// icp::Error naming the path when it cannot be created.
  ScratchColumns(const std::string& folder, std::size_t rows, const std::string& tag);
  ~ScratchColumns();
  ScratchColumns(const ScratchColumns&) = delete;
  ScratchColumns& operator=(const ScratchColumns&) = delete;

  std::size_t rows() const noexcept { return rows_; }
  const std::string& path() const noexcept { return path_; }
  bool has(const std::string& column) const { return columns_.count(column) != 0; }

  /// Rows [first, first + values.size() / width) of `column`, `width` values a row. The first
  /// write names the column's type and width; a later one with another width throws.
  template <class T>
  void write(const std::string& column, std::size_t first, std::span<const T> values,
             std::size_t width = 1) {
    const Column& c = place(column, width * sizeof(T));
    put(c, first, values.data(), values.size() * sizeof(T));
  }
  /// Appends `bytes` after everything placed so far (blocks of any size, beside the columns);
  /// returns where they start, for read_bytes.
  std::uint64_t append_bytes(std::span<const char> bytes);
  /// out.size() bytes from `offset` (as append_bytes gave it).
  void read_bytes(std::uint64_t offset, std::span<char> out) const;

  /// Rows of a column mapped read-only into memory (mmap), unmapped when this goes away: what a
  /// scan reads without copying. Mapped file pages count toward the process's resident memory
  /// while mapped, so a scan maps one block at a time.
  class Mapped {
   public:
    Mapped() = default;
    Mapped(Mapped&& other) noexcept;
    Mapped& operator=(Mapped&& other) noexcept;
    ~Mapped();
    const void* data() const noexcept { return data_; }

   private:
    friend class ScratchColumns;
    void* base_ = nullptr;
    std::size_t length_ = 0;
    const void* data_ = nullptr;
  };
  /// Rows [first, first + count) of `column` (`row_bytes` bytes a row), mapped. Throws where
  /// read() would.
  Mapped map(const std::string& column, std::size_t first, std::size_t count,
             std::size_t row_bytes) const;

  /// Rows [first, first + out.size() / width) of `column` into `out`.
  template <class T>
  void read(const std::string& column, std::size_t first, std::span<T> out,
            std::size_t width = 1) const {
    get(at(column, width * sizeof(T)), first, out.data(), out.size() * sizeof(T));
  }
  /// Rows [first, first + count) of `column` into `out` (resized to count x width).
  template <class T>
  void read(const std::string& column, std::size_t first, std::size_t count, std::vector<T>& out,
            std::size_t width = 1) const {
    out.resize(count * width);
    read(column, first, std::span<T>(out), width);
  }

 private:
  struct Column {
    std::uint64_t offset = 0;
    std::size_t row_bytes = 0;
  };
  const Column& place(const std::string& column, std::size_t row_bytes);
  const Column& at(const std::string& column, std::size_t row_bytes) const;
  void put(const Column& c, std::size_t first, const void* data, std::size_t bytes);
  void get(const Column& c, std::size_t first, void* data, std::size_t bytes) const;
  void read_range(char* data, std::size_t bytes, std::uint64_t offset) const;
  void read_parallel(char* data, std::size_t bytes, std::uint64_t offset) const;
  void write_range(const char* data, std::size_t bytes, std::uint64_t offset);
  /// Reads of at least twice this are split into pieces read in parallel.
  static constexpr std::size_t kParallelReadBytes = std::size_t{1} << 20;

  std::string path_;
  std::size_t rows_ = 0;
  int fd_ = -1;
  std::uint64_t end_ = 0;  // bytes of the file given to columns so far
  std::map<std::string, Column> columns_;
};

}  // namespace icp
