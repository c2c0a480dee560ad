#include "icp/scratch.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <utility>

#include "icp/error.hpp"
#include "icp/parallel.hpp"

namespace icp {

ScratchColumns::ScratchColumns(const std::string& folder, std::size_t rows, const std::string& tag)
    : rows_(rows) {
  // Two scratch files of one process (the normalized rows and the per-row results) must not
  // share a name.
  static std::atomic<int> serial{0};
  const std::filesystem::path dir =
      folder.empty() ? std::filesystem::temp_directory_path() : std::filesystem::path(folder);
  path_ = (dir / fmt::format("icp-{}-{}-{}.scratch", ::getpid(), serial++, tag)).string();
  fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd_ < 0)
    throw Error(path_ + ": cannot create a scratch file (" + std::strerror(errno) +
                "; set --scratch-dir to a writable folder)");
}

ScratchColumns::~ScratchColumns() {
  ::close(fd_);
  std::remove(path_.c_str());
}

const ScratchColumns::Column& ScratchColumns::place(const std::string& column,
                                                    std::size_t row_bytes) {
  auto it = columns_.find(column);
  if (it == columns_.end()) {
    Column c;
    c.offset = end_;
    c.row_bytes = row_bytes;
    end_ += static_cast<std::uint64_t>(row_bytes) * rows_;
    it = columns_.emplace(column, c).first;
  }
  return at(column, row_bytes);
}

const ScratchColumns::Column& ScratchColumns::at(const std::string& column,
                                                 std::size_t row_bytes) const {
  const auto it = columns_.find(column);
  if (it == columns_.end()) throw Error(path_ + ": no scratch column " + column);
  if (it->second.row_bytes != row_bytes)
    throw Error(fmt::format("{}: scratch column {} has {} bytes a row, not {}", path_, column,
                            it->second.row_bytes, row_bytes));
  return it->second;
}

void ScratchColumns::put(const Column& c, std::size_t first, const void* data, std::size_t bytes) {
  if (c.row_bytes == 0 || bytes % c.row_bytes != 0 || first + bytes / c.row_bytes > rows_)
    throw Error(path_ + ": a write past the scratch column's rows");
  write_range(static_cast<const char*>(data), bytes,
              c.offset + static_cast<std::uint64_t>(first) * c.row_bytes);
}

void ScratchColumns::write_range(const char* p, std::size_t bytes, std::uint64_t offset) {
  while (bytes > 0) {
    const ssize_t put = ::pwrite(fd_, p, bytes, static_cast<off_t>(offset));
    if (put <= 0)
      throw Error(path_ + ": cannot write the scratch file (is the scratch folder full?)");
    p += put;
    bytes -= static_cast<std::size_t>(put);
    offset += static_cast<std::uint64_t>(put);
  }
}

std::uint64_t ScratchColumns::append_bytes(std::span<const char> bytes) {
  const std::uint64_t at = end_;
  end_ += bytes.size();
  write_range(bytes.data(), bytes.size(), at);
  return at;
}

void ScratchColumns::read_bytes(std::uint64_t offset, std::span<char> out) const {
  if (offset + out.size() > end_) throw Error(path_ + ": a read past the scratch file's blocks");
  read_parallel(out.data(), out.size(), offset);
}

void ScratchColumns::get(const Column& c, std::size_t first, void* data, std::size_t bytes) const {
  if (c.row_bytes == 0 || bytes % c.row_bytes != 0 || first + bytes / c.row_bytes > rows_)
    throw Error(path_ + ": a read past the scratch column's rows");
  read_parallel(static_cast<char*>(data), bytes,
                c.offset + static_cast<std::uint64_t>(first) * c.row_bytes);
}

ScratchColumns::Mapped::Mapped(Mapped&& other) noexcept
    : base_(std::exchange(other.base_, nullptr)),
      length_(std::exchange(other.length_, 0)),
      data_(std::exchange(other.data_, nullptr)) {}

ScratchColumns::Mapped& ScratchColumns::Mapped::operator=(Mapped&& other) noexcept {
  if (this != &other) {
    if (base_ != nullptr) ::munmap(base_, length_);
    base_ = std::exchange(other.base_, nullptr);
    length_ = std::exchange(other.length_, 0);
    data_ = std::exchange(other.data_, nullptr);
  }
  return *this;
}

ScratchColumns::Mapped::~Mapped() {
  if (base_ != nullptr) ::munmap(base_, length_);
}

ScratchColumns::Mapped ScratchColumns::map(const std::string& column, std::size_t first,
                                           std::size_t count, std::size_t row_bytes) const {
  const Column& c = at(column, row_bytes);
  if (first + count > rows_) throw Error(path_ + ": a read past the scratch column's rows");
  Mapped m;
  if (count == 0) return m;
  const std::uint64_t offset = c.offset + static_cast<std::uint64_t>(first) * c.row_bytes;
  const auto page = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
  const std::uint64_t start = offset - offset % page;
  m.length_ = static_cast<std::size_t>(offset - start) + count * c.row_bytes;
  // MAP_POPULATE: the pages (in the page cache after the write) are mapped in one call, not by a
  // fault per 4 KiB page on first touch.
  void* p = ::mmap(nullptr, m.length_, PROT_READ, MAP_SHARED | MAP_POPULATE, fd_,
                   static_cast<off_t>(start));
  if (p == MAP_FAILED)
    throw Error(path_ + ": cannot map the scratch file (" + std::strerror(errno) + ")");
  m.base_ = p;
  m.data_ = static_cast<const char*>(p) + (offset - start);
  return m;
}

void ScratchColumns::read_parallel(char* data, std::size_t bytes, std::uint64_t offset) const {
  if (bytes < 2 * kParallelReadBytes) {
    read_range(data, bytes, offset);
    return;
  }
  // A read served from the page cache is a copy by the kernel on the calling thread: pieces read
  // side by side copy at the threads' combined bandwidth (the streamed k-means reads the whole
  // normalized matrix once per iteration).
  const std::size_t pieces = (bytes + kParallelReadBytes - 1) / kParallelReadBytes;
  ExceptionCollector errors;
#pragma omp parallel for schedule(static)
  for (std::ptrdiff_t t = 0; t < static_cast<std::ptrdiff_t>(pieces); ++t) {
    const std::size_t at = static_cast<std::size_t>(t) * kParallelReadBytes;
    errors.run(
        [&] { read_range(data + at, std::min(kParallelReadBytes, bytes - at), offset + at); });
  }
  errors.rethrow();
}

void ScratchColumns::read_range(char* p, std::size_t bytes, std::uint64_t offset) const {
  while (bytes > 0) {
    const ssize_t got = ::pread(fd_, p, bytes, static_cast<off_t>(offset));
    if (got < 0) throw Error(path_ + ": cannot read the scratch file back");
    if (got == 0) {
      // Past the end of the file: a region never written (the file is sparse up to it).
      std::memset(p, 0, bytes);
      return;
    }
    p += got;
    bytes -= static_cast<std::size_t>(got);
    offset += static_cast<std::uint64_t>(got);
  }
}

}  // namespace icp
