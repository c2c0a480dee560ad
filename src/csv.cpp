// CSV ingest. The file is mapped, cut into byte chunks whose edges are moved to true record
// boundaries (quote parity), and each chunk is parsed on its own thread straight into the
// table's typed columns, at row slots bounded by its line ends. The gaps between chunks are then
// closed and local dictionaries merged in file order, so every output (rows, dictionary order,
// line numbers, the first error) is the same at any thread count and any chunk size.
#include "icp/csv.hpp"

#include <fast_float/fast_float.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cfloat>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <utility>

#include "csv_scan.hpp"
#include "icp/error.hpp"
#include "icp/parallel.hpp"
#include "icp/text.hpp"

namespace icp {

namespace {

/// Offending text in messages is cut here so that a runaway quoted field or a 10 kB record
/// cannot flood a log line.
constexpr std::size_t kMaxValueChars = 80;

/// A chunk smaller than this would only add boundary searches and merge work; tests override
/// CsvOptions::chunk_bytes down to 1 byte to exercise edges, which stays legal.
constexpr std::size_t kMinChunkBytes = 1;

/// Parallel passes before the rest of the file is parsed sequentially. Each stray quote (inside
/// an unquoted field) costs one extra pass over what follows it, so a few are cheap; a file
/// full of them (another quoting dialect) must not turn that into quadratic work.
constexpr int kMaxParallelPasses = 4;

/// Chunk-local blocks at least this large are mapped and unmapped directly (ChunkAllocator).
constexpr std::size_t kDirectMapBytes = std::size_t{64} << 10;

/// Allocator for a chunk's own per-row vectors (text cells, unique keys), which are freed during
/// or right after the read. Large blocks bypass malloc: once glibc's dynamic mmap threshold has
/// risen past their size it serves them from its heap, and its pages go back to the system only
/// through malloc_trim, which walks the heap and releases every free page range: 2.4 s of system
/// time after a 10M-row read. Without the trim the freed heap would stay resident. An munmap per
/// block returns the memory at once.
template <class T>
struct ChunkAllocator {
  using value_type = T;
  ChunkAllocator() noexcept = default;
  template <class U>
  ChunkAllocator(const ChunkAllocator<U>&) noexcept {}  // NOLINT: as std::allocator
  T* allocate(std::size_t n) {
    if (n < kDirectMapBytes / sizeof(T)) return std::allocator<T>().allocate(n);
    if (n > static_cast<std::size_t>(-1) / sizeof(T)) throw std::bad_array_new_length();
    void* p =
        ::mmap(nullptr, n * sizeof(T), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    return static_cast<T*>(p);
  }
  void deallocate(T* p, std::size_t n) noexcept {
    if (n < kDirectMapBytes / sizeof(T)) {
      std::allocator<T>().deallocate(p, n);
      return;
    }
    ::munmap(p, n * sizeof(T));
  }
  template <class U>
  bool operator==(const ChunkAllocator<U>&) const noexcept {
    return true;
  }
};

template <class T>
using ChunkVector = std::vector<T, ChunkAllocator<T>>;

/// No byte >= 0x80: valid UTF-8 and the same text in Latin-1, so neither check nor conversion.
/// Eight bytes per step: ids and category names are 5-20 bytes, where a byte loop's tail was
/// most of the cost.
bool is_ascii(std::string_view s) noexcept {
  const char* p = s.data();
  std::size_t n = s.size();
  std::uint64_t any = 0;
  for (; n >= 8; p += 8, n -= 8) {
    std::uint64_t w = 0;
    std::memcpy(&w, p, 8);
    any |= w;
  }
  for (; n > 0; ++p, --n) any |= static_cast<unsigned char>(*p);
  return (any & 0x8080808080808080ull) == 0;
}

std::string truncate_text(std::string_view s) {
  if (s.size() <= kMaxValueChars) return std::string(s);
  std::size_t n = kMaxValueChars;
  // Back off to a UTF-8 lead byte so the message stays valid text.
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0u) == 0x80u) --n;
  return std::string(s.substr(0, n));
}

/// Read-only view of a whole file: mmap when possible (no copy), empty for a 0-byte file.
class MappedFile {
 public:
  explicit MappedFile(const std::string& path) {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) {
      if (errno == ENOENT || errno == ENOTDIR)
        throw InputError(path, 0, "", 0, path, "file not found");
      throw InputError(path, 0, "", 0, path,
                       std::string("cannot open file: ") + std::strerror(errno));
    }
    struct stat st {};
    if (::fstat(fd_, &st) != 0 || !S_ISREG(st.st_mode)) {
      ::close(fd_);
      throw InputError(path, 0, "", 0, path, "not a regular file");
    }
    size_ = static_cast<std::size_t>(st.st_size);
    if (size_ > 0) {
      void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd_, 0);
      if (p == MAP_FAILED) {
        ::close(fd_);
        throw InputError(path, 0, "", 0, path,
                         std::string("cannot map file: ") + std::strerror(errno));
      }
      ::madvise(p, size_, MADV_SEQUENTIAL);
      data_ = static_cast<const char*>(p);
    }
  }
  ~MappedFile() {
    if (data_ != nullptr) ::munmap(const_cast<char*>(data_), size_);
    if (fd_ >= 0) ::close(fd_);
  }
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const char* data() const noexcept { return data_; }
  std::size_t size() const noexcept { return size_; }

  /// Drops the whole pages inside [begin, end) from this process (they stay in the page cache
  /// and come back on the next touch): a parsed chunk's bytes are not needed again, so the
  /// file's resident size stays near the chunks in flight instead of growing to the whole file.
  void release(std::size_t begin, std::size_t end) const noexcept {
    static const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    const std::size_t first = (begin + page - 1) / page * page;
    const std::size_t last = std::min(end, size_) / page * page;
    if (data_ == nullptr || last <= first) return;
    ::madvise(const_cast<char*>(data_) + first, last - first, MADV_DONTNEED);
  }

 private:
  int fd_ = -1;
  const char* data_ = nullptr;
  std::size_t size_ = 0;
};

/// Raw extent of one field: from after the previous delimiter to before the next delimiter or
/// line end (spaces and quotes included).
struct FieldSpan {
  std::size_t begin = 0;
  std::size_t end = 0;
};

struct RecordScan {
  std::size_t start = 0;
  std::size_t end = 0;     ///< end of the record text, before its line terminator
  std::size_t next = 0;    ///< first byte after the terminator
  std::int64_t lines = 0;  ///< line terminators consumed, inside quotes and the final one
  bool unterminated = false;
  std::size_t quote_pos = 0;
  std::int64_t quote_lines = 0;  ///< lines consumed before the unterminated quote opened
  std::size_t quote_field = 0;
};

/// RFC 4180 record scanner over the whole buffer. Lenient where the RFC is silent: a quote
/// inside an unquoted field is literal text, and text after a closing quote is appended.
/// Field ends are found from 64-byte block bitmasks (csv_scan::Cursor), not byte by byte: the
/// per-byte table loop with its mispredicted exit once per field was the scanner's cost.
class Scanner {
 public:
  Scanner(const char* buf, std::size_t n, char delim) : buf_(buf), n_(n), delim_(delim) {}

  const char* data() const noexcept { return buf_; }
  std::size_t size() const noexcept { return n_; }
  char delimiter() const noexcept { return delim_; }
  /// A block cursor for one thread's walk over this buffer.
  csv_scan::Cursor cursor() const noexcept { return csv_scan::Cursor(buf_, n_, delim_); }

  /// Length of the line terminator at `pos` (0 when there is none).
  std::size_t newline_at(std::size_t pos) const noexcept {
    if (buf_[pos] == '\n') return 1;
    if (buf_[pos] == '\r') return (pos + 1 < n_ && buf_[pos + 1] == '\n') ? 2 : 1;
    return 0;
  }

  /// Scans the record starting at `pos` (which must not be at a line terminator).
  RecordScan scan(std::size_t pos, std::vector<FieldSpan>& fields) const {
    csv_scan::Cursor cur = cursor();
    return scan(pos, fields, cur);
  }

  /// As above, reusing `cur` (a cursor over this buffer) across the records of a walk.
  RecordScan scan(std::size_t pos, std::vector<FieldSpan>& fields, csv_scan::Cursor& cur) const {
    RecordScan r;
    r.start = pos;
    fields.clear();
    std::size_t p = pos;
    for (;;) {
      const std::size_t field_begin = p;
      while (p < n_ && buf_[p] == ' ') ++p;
      if (p < n_ && buf_[p] == '"') {
        const std::int64_t lines_before = r.lines;
        std::size_t q = p + 1;
        bool closed = false;
        for (;;) {
          q = cur.next_quote_or_newline(q);
          if (q >= n_) break;
          if (buf_[q] == '"') {
            if (q + 1 < n_ && buf_[q + 1] == '"') {
              q += 2;
              continue;
            }
            closed = true;
            ++q;
            break;
          }
          // A line end inside quotes: CRLF counts once, at its LF.
          if (buf_[q] == '\n' || q + 1 >= n_ || buf_[q + 1] != '\n') ++r.lines;
          ++q;
        }
        if (!closed) {
          r.unterminated = true;
          r.quote_pos = p;
          r.quote_lines = lines_before;
          r.quote_field = fields.size();
          r.end = n_;
          r.next = n_;
          return r;
        }
        p = q;
      }
      p = cur.next_stop(p);
      fields.push_back(FieldSpan{field_begin, p});
      if (p >= n_) {
        r.end = n_;
        r.next = n_;
        return r;
      }
      if (buf_[p] == delim_) {
        ++p;
        continue;
      }
      r.end = p;
      ++r.lines;
      r.next = p + newline_at(p);
      return r;
    }
  }

  /// The cell value: spaces outside quotes trimmed, enclosing quotes removed, doubled quotes
  /// undoubled. Returns a view into the buffer when no rewriting is needed, else into scratch.
  std::string_view cell(FieldSpan f, std::string& scratch) const {
    // Nearly every cell is neither padded nor quoted: answered here, inline in the cell loop.
    if (f.begin == f.end) return {buf_ + f.begin, 0};
    const char first = buf_[f.begin];
    if (first != ' ' && first != '"' && buf_[f.end - 1] != ' ')
      return {buf_ + f.begin, f.end - f.begin};
    return cell_slow(f, scratch);
  }

 private:
  [[gnu::noinline]] std::string_view cell_slow(FieldSpan f, std::string& scratch) const {
    std::size_t b = f.begin;
    std::size_t e = f.end;
    while (b < e && buf_[b] == ' ') ++b;
    while (e > b && buf_[e - 1] == ' ') --e;
    if (b == e || buf_[b] != '"') return {buf_ + b, e - b};
    std::size_t q = b + 1;
    bool doubled = false;
    for (;;) {
      const void* hit = std::memchr(buf_ + q, '"', e - q);
      q = static_cast<std::size_t>(static_cast<const char*>(hit) - buf_);
      if (q + 1 < e && buf_[q + 1] == '"') {
        doubled = true;
        q += 2;
        continue;
      }
      break;
    }
    if (!doubled && q + 1 == e) return {buf_ + b + 1, q - b - 1};
    scratch.clear();
    for (std::size_t i = b + 1; i < q; ++i) {
      scratch.push_back(buf_[i]);
      if (buf_[i] == '"') ++i;  // the second quote of a doubled pair
    }
    scratch.append(buf_ + q + 1, e - q - 1);
    return scratch;
  }

  const char* buf_;
  std::size_t n_;
  char delim_;
};

/// Hash of a cell for dictionaries and the duplicate check: 8 bytes per multiply, then a full
/// avalanche (MurmurHash3's finalizer) so the high bits that pick a duplicate-check partition
/// are as good as the low ones. libstdc++'s byte-wise std::hash was 5% of ingest time. Only
/// speed depends on it: level order and the repeats found are fixed by file order.
inline std::size_t cell_hash(std::string_view s) noexcept {
  constexpr std::uint64_t kMul = 0x9E3779B97F4A7C15ull;
  auto load8 = [](const char* q) {
    std::uint64_t w;
    std::memcpy(&w, q, 8);
    return w;
  };
  auto load4 = [](const char* q) {
    std::uint32_t w;
    std::memcpy(&w, q, 4);
    return std::uint64_t{w};
  };
  auto step = [](std::uint64_t h, std::uint64_t w) {
    h = (h ^ w) * kMul;
    return h ^ (h >> 29);
  };
  const char* p = s.data();
  const std::size_t n = s.size();
  std::uint64_t h = kMul ^ n;
  if (n >= 8) {
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8) h = step(h, load8(p + i));
    // The tail as the last 8 bytes, overlapping the previous word: no byte loop.
    if (i < n) h = step(h, load8(p + n - 8));
  } else if (n >= 4) {
    h = step(h, load4(p) | (load4(p + n - 4) << 32));
  } else if (n > 0) {
    const auto w = std::uint64_t{static_cast<unsigned char>(p[0])} |
                   (std::uint64_t{static_cast<unsigned char>(p[n / 2])} << 8) |
                   (std::uint64_t{static_cast<unsigned char>(p[n - 1])} << 16);
    h = step(h, w);
  }
  h ^= h >> 33;
  h *= 0xFF51AFD7ED558CCDull;
  h ^= h >> 33;
  h *= 0xC4CEB9FE1A85EC53ull;
  h ^= h >> 33;
  return static_cast<std::size_t>(h);
}

struct SvHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept { return cell_hash(s); }
};

/// Levels in order of first appearance within one chunk. Open addressing over level codes with
/// the hash kept per level: every categorical cell does one lookup, and std::unordered_map's
/// prime-modulus bucket and node chase cost more than the rest of the cell.
struct LocalDict {
  std::vector<std::string> levels;

  std::int32_t code(std::string_view s) {
    if (slots_.empty()) slots_.assign(kInitialSlots, -1);
    const std::size_t h = cell_hash(s);
    const std::size_t mask = slots_.size() - 1;
    for (std::size_t i = h & mask;; i = (i + 1) & mask) {
      const std::int32_t c = slots_[i];
      if (c < 0) {
        const auto code = static_cast<std::int32_t>(levels.size());
        levels.emplace_back(s);
        hashes_.push_back(h);
        slots_[i] = code;
        if (2 * levels.size() > slots_.size()) grow();  // load <= 1/2: short probes
        return code;
      }
      const auto u = static_cast<std::size_t>(c);
      if (hashes_[u] == h && levels[u] == s) return c;
    }
  }

 private:
  /// Account categoricals have a few to a few hundred levels: 16 slots grow a handful of times.
  static constexpr std::size_t kInitialSlots = 16;

  void grow() {
    slots_.assign(2 * slots_.size(), -1);
    const std::size_t mask = slots_.size() - 1;
    for (std::size_t c = 0; c < levels.size(); ++c) {
      std::size_t i = hashes_[c] & mask;
      while (slots_[i] >= 0) i = (i + 1) & mask;
      slots_[i] = static_cast<std::int32_t>(c);
    }
  }

  std::vector<std::int32_t> slots_;
  std::vector<std::size_t> hashes_;
};

struct BadRow {
  std::int64_t line = 0;  ///< relative to the chunk until merged, then absolute
  std::string column;
  std::int64_t column_number = 0;
  std::string value;
  std::string reason;
  std::string raw;
};

/// What a chunk keeps of a column besides the rows it writes into the table: the dictionary its
/// local codes index, and its text cells (a std::string per cell, moved into the table later).
struct ColumnOut {
  LocalDict dict;
  ChunkVector<std::string> text;
};

struct ChunkOut {
  std::vector<ColumnOut> cols;
  /// The chunk's accepted rows are table rows [slot, slot + rows) of the numeric, code and line
  /// arrays until read_csv closes the gaps between chunks. `capacity` slots were set aside: the
  /// line ends in [begin, end), plus one at the end of the file. That bounds the records: each
  /// one starting in the range either ends with a line end in it or holds the line end that every
  /// inner edge sits right after (edges never split a CRLF). parse_chunk still stops, on a record
  /// boundary, if the slots run out, so a flaw in that argument would cost a pass, not a row.
  std::size_t slot = 0;
  std::size_t capacity = 0;
  std::size_t rows = 0;
  /// Unique-column value of each accepted row: a view into the mapped file, or into
  /// `key_store` when the cell had to be rewritten (doubled quotes). Views avoid one heap string
  /// per row; the file stays mapped until read_csv returns.
  ChunkVector<std::string_view> keys;
  /// Heap strings, so that neither growing this vector nor moving the ChunkOut moves the bytes
  /// (a std::deque would be copied, not moved, when the vector of chunks reallocates, since its
  /// move constructor may throw; this also makes ChunkOut move-only).
  std::vector<std::unique_ptr<std::string>> key_store;
  /// cell_hash of each key, 0 when the key is a missing token (then key_missing is 1): taken
  /// while the bytes are in cache, so the duplicate check reads a key's text again only when
  /// two hashes are equal, and the chunk's pages can be released after parsing.
  ChunkVector<std::size_t> key_hash;
  ChunkVector<std::uint8_t> key_missing;
  std::vector<BadRow> bad;
  std::optional<BadRow> fatal;  ///< unterminated quote: nothing after it can be trusted
  bool stopped = false;         ///< fail policy hit a bad row, or fatal
  std::int64_t records = 0;
  std::int64_t lines_consumed = 0;
  std::size_t end_pos = 0;
};

struct Plan {
  std::string path;
  const CsvOptions* opts = nullptr;
  std::vector<std::string> header;
  std::vector<std::size_t> req_field;  ///< file field of each requested column
  std::vector<std::size_t> order;      ///< requests sorted by file field: errors in file order
  std::optional<std::size_t> unique_field;
};

/// The table's per-row arrays that chunks write into directly: no per-chunk column buffers, so
/// no second copy of the table, no stitch copy, and each chunk faults in the pages it fills.
class RowArrays {
 public:
  explicit RowArrays(Table& table) : table_(&table) {}

  /// Room for `rows` slots (kept rows included). Sizing leaves fresh pages untouched
  /// (DefaultInitAllocator); growing after a pass keeps what was written.
  void ensure(std::size_t rows) {
    if (rows <= table_->source_line.size()) return;
    table_->source_line.resize(rows);
    for (Column& c : table_->columns) {
      if (c.type == ColumnType::numeric) c.numeric.resize(rows);
      if (c.type == ColumnType::categorical) c.codes.resize(rows);
    }
  }
  double* numeric(std::size_t k) const noexcept { return table_->columns[k].numeric.data(); }
  std::int32_t* codes(std::size_t k) const noexcept { return table_->columns[k].codes.data(); }
  std::int64_t* lines() const noexcept { return table_->source_line.data(); }

 private:
  Table* table_;
};

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const auto x = static_cast<unsigned char>(a[i]);
    const auto y = static_cast<unsigned char>(b[i]);
    if (std::tolower(x) != std::tolower(y)) return false;
  }
  return true;
}

bool is_missing(std::string_view v, const std::vector<std::string>& tokens) {
  // Runs for every cell: comparing the first byte inline rules out nearly every number and
  // name before any memcmp call (no default token starts with a digit).
  for (const auto& t : tokens) {
    if (t.size() != v.size()) continue;
    if (v.empty()) return true;
    if (t[0] == v[0] && std::memcmp(t.data(), v.data(), v.size()) == 0) return true;
  }
  return false;
}

/// is_missing() with a pretest: one length-bit and one first-byte lookup rule out nearly every
/// number and name (no default token starts with a digit), and this runs for every cell.
class MissingTokens {
 public:
  explicit MissingTokens(const std::vector<std::string>& tokens) : tokens_(&tokens) {
    for (const auto& t : tokens) {
      if (t.size() < 64) {
        lengths_ |= std::uint64_t{1} << t.size();
      } else {
        long_ = true;
      }
      if (!t.empty()) first_[static_cast<unsigned char>(t[0])] = true;
    }
  }
  bool operator()(std::string_view v) const noexcept {
    if (v.size() < 64) {
      if (((lengths_ >> v.size()) & 1u) == 0) return false;
      if (v.empty()) return true;
    } else if (!long_) {
      return false;
    }
    if (!first_[static_cast<unsigned char>(v[0])]) return false;
    return is_missing(v, *tokens_);
  }

 private:
  const std::vector<std::string>* tokens_;
  std::uint64_t lengths_ = 0;  ///< bit L: some token has length L (< 64)
  bool long_ = false;          ///< some token is 64 bytes or longer
  std::array<bool, 256> first_{};
};

/// Parses a present numeric cell; returns the reason on failure.
/// Significant digits the plain-decimal path takes: 10^15 < 2^53, so the digits are an exact
/// integer in a double.
constexpr int kFastDigits = 15;

/// Exact powers of ten up to 10^22, the largest that a double holds exactly.
constexpr std::array<double, 23> kPow10 = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                           1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                           1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/// `[-]digits[.digits]` with at most kFastDigits digits, the shape of nearly every cell in an
/// account table. The digits form an exact integer m and 10^k is exact, so the single rounding
/// of m / 10^k is the correctly rounded value: what fast_float returns for the same text
/// (Clinger's fast path, which fast_float itself tries first). False: take the general path.
inline bool parse_plain_decimal(const char* first, const char* last, double& out) noexcept {
  const char* p = first;
  const bool neg = p != last && *p == '-';
  if (neg) ++p;
  std::uint64_t m = 0;
  int digits = 0;
  int frac = 0;
  const char* int_begin = p;
  while (p != last && static_cast<unsigned char>(*p - '0') < 10) {
    m = m * 10 + static_cast<std::uint64_t>(*p - '0');
    ++p;
  }
  digits = static_cast<int>(p - int_begin);
  if (digits == 0) return false;
  if (p != last && *p == '.') {
    ++p;
    const char* frac_begin = p;
    while (p != last && static_cast<unsigned char>(*p - '0') < 10) {
      m = m * 10 + static_cast<std::uint64_t>(*p - '0');
      ++p;
    }
    frac = static_cast<int>(p - frac_begin);
    if (frac == 0) return false;
    digits += frac;
  }
  if (p != last || digits > kFastDigits) return false;
  // Most cells are integers: skip the divide (its latency shows in profiles) when it is by 1.
  double x = static_cast<double>(m);
  if (frac > 0) x /= kPow10[static_cast<std::size_t>(frac)];
  out = neg ? -x : x;
  return true;
}

const char* parse_number(std::string_view v, double& out) {
  if (!v.empty() && parse_plain_decimal(v.data(), v.data() + v.size(), out)) return nullptr;
  // Booleans are rare: one byte test keeps the case-folding compares off the number path.
  const char c0 = v.empty() ? '\0' : static_cast<char>(v[0] | 0x20);
  if (c0 == 't' && iequals(v, "true")) {
    out = 1.0;
    return nullptr;
  }
  if (c0 == 'f' && iequals(v, "false")) {
    out = 0.0;
    return nullptr;
  }
  const char* first = v.data();
  const char* last = v.data() + v.size();
  // fast_float follows from_chars, which rejects a leading '+'; spreadsheets write one.
  if (first != last && *first == '+' && last - first > 1 && first[1] != '-' && first[1] != '+')
    ++first;
  if (first == last) return "not a number";
  double x = 0.0;
  const auto res = fast_float::from_chars(first, last, x);
  if (res.ec != std::errc() || res.ptr != last) return "not a number";
  if (std::isnan(x)) return "NaN value";
  if (std::isinf(x)) {
    // A spelled-out infinity is a different mistake from a finite value that overflowed.
    const bool literal =
        std::find_if(first, last, [](char c) { return c == 'i' || c == 'I'; }) != last;
    return literal ? "infinite value" : "value out of float32 range";
  }
  if (std::fabs(x) > static_cast<double>(FLT_MAX)) return "value out of float32 range";
  out = x;
  return nullptr;
}

std::string field_count_reason(std::size_t expected, std::size_t found) {
  return "expected " + std::to_string(expected) + " fields, found " + std::to_string(found);
}

/// Rows parsed before a chunk sizes its vectors: enough to estimate the bytes per row.
constexpr std::size_t kReserveAfterRows = 64;

/// Reserves the chunk's own per-row vectors (text cells, unique keys) for the rows its remaining
/// bytes should hold (10% over the estimate from the rows so far), so chunks neither copy them
/// while growing nor keep up to half their capacity unused until the stitch.
void reserve_rest(ChunkOut& out, const Plan& plan, std::size_t begin, std::size_t pos,
                  std::size_t end) {
  const double per_row = static_cast<double>(pos - begin) / static_cast<double>(out.rows);
  const auto rows =
      std::min(out.capacity,
               static_cast<std::size_t>(static_cast<double>(end - begin) / per_row * 1.1) + 16);
  if (plan.unique_field) {
    out.keys.reserve(rows);
    out.key_hash.reserve(rows);
    out.key_missing.reserve(rows);
  }
  for (std::size_t k = 0; k < out.cols.size(); ++k)
    if (plan.opts->columns[k].type == ColumnType::text) out.cols[k].text.reserve(rows);
}

/// The first cell of a record that fails its column's type, in file order: the message a
/// record gets. Only rejected records come here (the typed loops in parse_chunk accept the rest).
std::optional<BadRow> first_bad_cell(const Scanner& sc, const Plan& plan,
                                     const std::vector<FieldSpan>& fields,
                                     const MissingTokens& missing, std::string_view raw,
                                     std::int64_t line) {
  const CsvOptions& opts = *plan.opts;
  std::string scratch;
  double x = 0.0;
  for (const std::size_t k : plan.order) {
    const std::size_t fi = plan.req_field[k];
    const std::string_view v = sc.cell(fields[fi], scratch);
    if (missing(v)) continue;
    BadRow b;
    if (opts.columns[k].type == ColumnType::numeric) {
      const char* why = parse_number(v, x);
      if (why == nullptr) continue;
      b.value = truncate_text(v);
      b.reason = why;
    } else {
      if (is_ascii(v) || opts.encoding == TextEncoding::latin1) continue;
      const std::size_t at = invalid_utf8_at(v);
      if (at == std::string_view::npos) continue;
      b.value = escape_bytes(truncate_text(v));
      b.reason = "not valid UTF-8 at byte " + std::to_string(at + 1) +
                 " (a Latin-1 file: input.encoding = \"latin-1\" or --encoding latin-1)";
    }
    b.line = line;
    b.column = plan.header[fi];
    b.column_number = static_cast<std::int64_t>(fi) + 1;
    b.raw = std::string(raw);
    return b;
  }
  return std::nullopt;
}

/// Parses the records starting in [begin, end). The last record may run past `end`; end_pos
/// tells where it really stopped, which is how a wrong boundary is detected.
///
/// Cells are converted by type, one loop per type over that type's columns, straight into the
/// row's slot: no per-cell switch, no staging of values. A record that fails any cell is not
/// counted (its slot is reused), and first_bad_cell then finds the failure that comes first in
/// file order. Category codes of a rejected record may have added levels to the chunk's
/// dictionary; harmless, since the file-wide dictionary takes levels from accepted rows only.
void parse_chunk(const Scanner& sc, const Plan& plan, const RowArrays& arrays, std::size_t begin,
                 std::size_t end, ChunkOut& out) {
  const CsvOptions& opts = *plan.opts;
  const std::size_t nreq = plan.req_field.size();
  const std::size_t ncols = plan.header.size();
  const bool fail_fast = opts.on_error == ErrorPolicy::fail;
  const bool latin1 = opts.encoding == TextEncoding::latin1;
  out.cols.resize(nreq);
  std::vector<FieldSpan> fields;
  fields.reserve(ncols + 1);
  const char* buf = sc.data();
  csv_scan::Cursor cur = sc.cursor();
  const MissingTokens missing(opts.missing_tokens);

  struct NumericCell {
    std::size_t field;
    double* out;  ///< the chunk's first slot of the column
  };
  struct CodeCell {
    std::size_t field;
    std::int32_t* out;
    LocalDict* dict;
  };
  struct TextCell {
    std::size_t field;
    ChunkVector<std::string>* out;
    std::string_view value;  ///< this record's cell, valid until the next record
    std::string scratch;     ///< a rewritten cell (quotes undoubled, Latin-1 converted)
  };
  std::vector<NumericCell> numeric;
  std::vector<CodeCell> coded;
  std::vector<TextCell> text;
  for (const std::size_t k : plan.order) {
    const std::size_t fi = plan.req_field[k];
    switch (opts.columns[k].type) {
      case ColumnType::numeric:
        numeric.push_back({fi, arrays.numeric(k) + out.slot});
        break;
      case ColumnType::categorical:
        coded.push_back({fi, arrays.codes(k) + out.slot, &out.cols[k].dict});
        break;
      case ColumnType::text:
        text.push_back({fi, &out.cols[k].text, {}, {}});
        break;
    }
  }
  std::string scratch;      // a numeric or category cell that had to be rewritten
  std::string converted;    // a category cell read as Latin-1, in UTF-8
  std::string key_scratch;  // the unique column's cell, when rewritten
  std::int64_t* const line_out = arrays.lines() + out.slot;

  // A non-ASCII cell as UTF-8: converted from Latin-1 into `into`, or checked. False: invalid.
  auto as_utf8 = [&](std::string_view& v, std::string& into) {
    if (is_ascii(v)) return true;
    if (latin1) {
      into = latin1_to_utf8(v);
      v = into;
      return true;
    }
    return invalid_utf8_at(v) == std::string_view::npos;
  };

  std::size_t pos = begin;
  std::int64_t lines = 0;
  while (pos < end) {
    if (opts.max_rows > 0 && out.records >= opts.max_rows) break;
    if (out.rows == out.capacity) break;  // ends on a record boundary: the next pass goes on
    const std::size_t nl = sc.newline_at(pos);
    if (nl > 0) {  // blank line: not a record
      ++lines;
      pos += nl;
      continue;
    }
    const RecordScan r = sc.scan(pos, fields, cur);
    const std::int64_t rec_line = lines;
    if (r.unterminated) {
      BadRow b;
      b.line = rec_line + r.quote_lines;
      if (r.quote_field < ncols) {
        b.column = plan.header[r.quote_field];
        b.column_number = static_cast<std::int64_t>(r.quote_field) + 1;
      }
      b.value = truncate_text(std::string_view(buf + r.quote_pos, sc.size() - r.quote_pos));
      b.reason = "unterminated quoted field";
      b.raw = std::string(buf + r.start, sc.size() - r.start);
      out.fatal = std::move(b);
      out.stopped = true;
      out.end_pos = sc.size();
      return;
    }
    lines += r.lines;
    pos = r.next;
    ++out.records;
    const std::string_view raw(buf + r.start, r.end - r.start);

    if (fields.size() != ncols) {
      BadRow b;
      b.line = rec_line;
      b.value = truncate_text(raw);
      b.reason = field_count_reason(ncols, fields.size());
      b.raw = std::string(raw);
      out.bad.push_back(std::move(b));
      if (fail_fast) {
        out.stopped = true;
        return;
      }
      continue;
    }

    bool ok = true;
    const std::size_t row = out.rows;
    for (const NumericCell& c : numeric) {
      const std::string_view v = sc.cell(fields[c.field], scratch);
      double& x = c.out[row];
      if (missing(v)) {
        x = std::numeric_limits<double>::quiet_NaN();
        continue;
      }
      // The plain-decimal path inline; parse_number (a call) for everything else.
      if (parse_plain_decimal(v.data(), v.data() + v.size(), x)) continue;
      if (parse_number(v, x) != nullptr) {
        ok = false;
        break;
      }
    }
    if (ok) {
      for (const CodeCell& c : coded) {
        std::string_view v = sc.cell(fields[c.field], scratch);
        if (missing(v)) {
          c.out[row] = -1;
          continue;
        }
        if (!as_utf8(v, converted)) {
          ok = false;
          break;
        }
        c.out[row] = c.dict->code(v);
      }
    }
    if (ok) {
      for (TextCell& c : text) {  // checked before any is kept: the row may still fail
        c.value = sc.cell(fields[c.field], c.scratch);
        if (missing(c.value)) {
          c.value = {};
          continue;
        }
        if (!as_utf8(c.value, c.scratch)) {
          ok = false;
          break;
        }
      }
    }
    if (!ok) {
      std::optional<BadRow> b = first_bad_cell(sc, plan, fields, missing, raw, rec_line);
      if (!b) throw std::logic_error(plan.path + ": CSV cell check disagrees with itself");
      out.bad.push_back(std::move(*b));
      if (fail_fast) {
        out.stopped = true;
        return;
      }
      continue;
    }
    for (TextCell& c : text) c.out->emplace_back(c.value);

    if (plan.unique_field) {
      const std::string_view key = sc.cell(fields[*plan.unique_field], key_scratch);
      if (!key.empty() && key.data() == key_scratch.data()) {
        out.key_store.push_back(std::make_unique<std::string>(key_scratch));
        out.keys.push_back(*out.key_store.back());
      } else {
        out.keys.push_back(key);
      }
      const bool key_missing = missing(key);
      out.key_missing.push_back(key_missing ? 1 : 0);
      out.key_hash.push_back(key_missing ? 0 : cell_hash(key));
    }
    line_out[row] = rec_line;
    ++out.rows;
    if (out.rows == kReserveAfterRows) reserve_rest(out, plan, begin, pos, end);
  }
  out.lines_consumed = lines;
  out.end_pos = pos;
}

/// One parallel pass over [body, n): nominal chunks of `chunk` bytes, each inner edge moved to
/// the first line end outside quotes at or after it (quote parity up to the edge says whether a
/// line end is inside a field), then every chunk parsed on its own. `edge` gets chunks + 1
/// entries. Exact as long as no quote sits inside an unquoted field; the caller checks.
std::vector<ChunkOut> parse_parallel(const MappedFile& file, const Scanner& sc, const Plan& plan,
                                     RowArrays& arrays, std::size_t slot_base, std::size_t body,
                                     std::size_t chunk, int nthreads,
                                     std::vector<std::size_t>& edge) {
  const char* buf = sc.data();
  const std::size_t n = sc.size();
  const std::size_t nchunks = n > body ? (n - body + chunk - 1) / chunk : 0;
  const auto nchunks_signed = static_cast<std::ptrdiff_t>(nchunks);
  std::vector<csv_scan::RangeCounts> counts(nchunks);
  std::vector<char> in_quote(nchunks, 0);
  // Line ends before nominal chunk i (before_nominal) and before edge i (before_edge).
  std::vector<std::size_t> before_nominal(nchunks + 1, 0);
  std::vector<std::size_t> before_edge(nchunks + 1, 0);
  edge.assign(nchunks + 1, n);
  if (nchunks > 0) edge[0] = body;
  std::vector<ChunkOut> outs(nchunks);
  // One team for all three phases: on a shared, oversubscribed machine each fork/join can cost
  // a scheduler time slice, which would dominate small files.
  const int team = static_cast<int>(
      std::min<std::size_t>(static_cast<std::size_t>(nthreads), std::max<std::size_t>(nchunks, 1)));
  ExceptionCollector errors;
#pragma omp parallel num_threads(team) if (team > 1)
  {
#pragma omp for schedule(static)
    for (std::ptrdiff_t i = 0; i < nchunks_signed; ++i) {
      const std::size_t b = body + static_cast<std::size_t>(i) * chunk;
      const std::size_t e = std::min(n, b + chunk);
      counts[static_cast<std::size_t>(i)] = csv_scan::count_range(buf, n, b, e);
    }
#pragma omp single
    {
      for (std::size_t i = 1, parity = 0; i < nchunks; ++i) {
        parity ^= counts[i - 1].quotes & 1u;
        in_quote[i] = static_cast<char>(parity);
      }
      for (std::size_t i = 0; i < nchunks; ++i)
        before_nominal[i + 1] = before_nominal[i] + counts[i].line_ends;
    }
#pragma omp for schedule(static)
    for (std::ptrdiff_t si = 1; si < nchunks_signed; ++si) {
      const auto i = static_cast<std::size_t>(si);
      edge[i] = csv_scan::find_unquoted_newline(buf, n, body + i * chunk, in_quote[i] != 0);
    }
#pragma omp single
    {
      for (std::size_t i = 1; i <= nchunks; ++i) edge[i] = std::max(edge[i], edge[i - 1]);
    }
    // Line ends before each edge: the nominal chunk's prefix plus the few bytes from its start
    // to the edge (usually less than a record), so the file is not read again for them.
#pragma omp for schedule(static)
    for (std::ptrdiff_t si = 1; si <= nchunks_signed; ++si) {
      const auto i = static_cast<std::size_t>(si);
      if (edge[i] >= n) {
        before_edge[i] = before_nominal[nchunks];
        continue;
      }
      const std::size_t j = (edge[i] - body) / chunk;  // < nchunks, as edge[i] < n
      before_edge[i] =
          before_nominal[j] + csv_scan::count_line_ends(buf, n, body + j * chunk, edge[i]);
    }
#pragma omp single
    {
      // Slots per chunk: its line ends, plus one for a last record without a terminator.
      std::size_t slot = slot_base;
      for (std::size_t i = 0; i < nchunks; ++i) {
        outs[i].capacity = before_edge[i + 1] - before_edge[i] + (edge[i + 1] == n && edge[i] < n);
        outs[i].slot = slot;
        slot += outs[i].capacity;
      }
      errors.run([&] { arrays.ensure(slot); });
    }
#pragma omp for schedule(dynamic, 1)
    for (std::ptrdiff_t si = 0; si < nchunks_signed; ++si) {
      const auto i = static_cast<std::size_t>(si);
      errors.run([&] {
        if (!errors.failed()) parse_chunk(sc, plan, arrays, edge[i], edge[i + 1], outs[i]);
        file.release(edge[i], edge[i + 1]);
      });
    }
  }
  errors.rethrow();

  return outs;
}

struct Header {
  std::vector<std::string> names;
  std::int64_t line = 0;       ///< physical line of the header record
  std::size_t body_start = 0;  ///< first byte after the header
  std::int64_t body_line = 0;  ///< physical line at body_start
};

Header parse_header(const Scanner& sc, const std::string& path) {
  std::size_t pos = 0;
  const char* buf = sc.data();
  const std::size_t n = sc.size();
  if (n >= 3 && static_cast<unsigned char>(buf[0]) == 0xEF &&
      static_cast<unsigned char>(buf[1]) == 0xBB && static_cast<unsigned char>(buf[2]) == 0xBF)
    pos = 3;
  std::int64_t line = 1;
  while (pos < n) {
    const std::size_t nl = sc.newline_at(pos);
    if (nl == 0) break;
    ++line;
    pos += nl;
  }
  if (pos >= n) throw InputError(path, 0, "", 0, "", "empty file");
  std::vector<FieldSpan> fields;
  const RecordScan r = sc.scan(pos, fields);
  if (r.unterminated)
    throw InputError(path, line + r.quote_lines, "", 0,
                     truncate_text(std::string_view(buf + r.quote_pos, n - r.quote_pos)),
                     "unterminated quoted field");
  Header h;
  h.line = line;
  h.body_start = r.next;
  h.body_line = line + r.lines;
  std::string scratch;
  for (const auto& f : fields) h.names.emplace_back(sc.cell(f, scratch));
  return h;
}

void check_delimiter(char d) {
  if (d != ',' && d != ';' && d != '\t' && d != '|')
    throw ConfigError(std::string("csv delimiter must be one of , ; \\t |, got '") + d + "'");
}

std::string quarantine_reason(const BadRow& b) {
  if (b.column_number == 0) return b.reason;
  return "column '" + b.column + "' (" + std::to_string(b.column_number) + "): " + b.reason +
         ": '" + b.value + "'";
}

void write_quarantine(const std::string& path, const std::vector<const BadRow*>& rows) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) throw Error(path + ": cannot write quarantine file");
    f << "line,reason,record\n";
    for (const BadRow* b : rows)
      f << b->line << ',' << csv_field(quarantine_reason(*b)) << ',' << csv_field(b->raw) << '\n';
    f.flush();
    if (!f) throw Error(path + ": cannot write quarantine file");
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::filesystem::remove(tmp, ec);
    throw Error(path + ": cannot write quarantine file (rename failed)");
  }
}

[[noreturn]] void throw_bad(const std::string& path, const BadRow& b) {
  throw InputError(path, b.line, b.column, b.column_number, b.value, b.reason);
}

/// Key partitions for the duplicate check. Equal keys hash to the same partition, so each
/// partition finds its repeats on its own, scanning its keys in file order; 64 keeps two to a
/// few dozen threads busy and the per-partition sets small. The result does not depend on it.
constexpr std::size_t kKeyPartitions = 64;

/// Moves each chunk's kept rows of one per-row array to their final places, in file order, and
/// trims the array to `kept`. A row only moves down (a chunk's slot is at least the rows kept
/// before it), so this works in place; a chunk with nothing dropped that already sits at its
/// place (every LF-terminated file without blank lines or rejects) is not touched at all.
template <class Vec>
void close_gaps(Vec& v, const std::vector<ChunkOut>& outs,
                const std::vector<std::vector<char>>& drop, std::size_t kept) {
  auto* p = v.data();
  std::size_t dst = 0;
  for (std::size_t c = 0; c < outs.size(); ++c) {
    const ChunkOut& o = outs[c];
    if (drop[c].empty()) {
      if (dst != o.slot && o.rows > 0) std::memmove(p + dst, p + o.slot, o.rows * sizeof(*p));
      dst += o.rows;
      continue;
    }
    for (std::size_t j = 0; j < o.rows; ++j)
      if (drop[c][j] == 0) p[dst++] = p[o.slot + j];
  }
  v.resize(kept);
}

struct KeyPos {
  std::size_t chunk = 0;
  std::size_t row = 0;
  bool operator<(const KeyPos& o) const noexcept {
    return chunk != o.chunk ? chunk < o.chunk : row < o.row;
  }
};

/// Insert-only open-addressing set of keys, held as (hash, key number) in 16 bytes: no node per
/// key (the std set allocates one each), and the stored hash rules out almost every key
/// comparison, so a key's text is looked up (through `key_of`, from its number) only when two
/// hashes are equal. Slots half the size of (text view, hash) ones keep a partition's set in
/// cache, and the common insert touches neither the key's chunk nor its text.
class KeySet {
 public:
  explicit KeySet(std::size_t expected) {
    std::size_t cap = 16;
    while (cap < 2 * expected) cap <<= 1;  // load <= 1/2 keeps linear probes short
    slots_.assign(cap, Slot{0, kEmpty});
    mask_ = cap - 1;
  }
  /// False when the key numbered `index` equals one inserted before.
  template <class KeyOf>
  bool insert(std::size_t index, std::size_t hash, KeyOf&& key_of) {
    for (std::size_t i = hash & mask_;; i = (i + 1) & mask_) {
      Slot& s = slots_[i];
      if (s.index == kEmpty) {
        s = Slot{hash, index};
        return true;
      }
      if (s.hash == hash && key_of(s.index) == key_of(index)) return false;
    }
  }

 private:
  static constexpr std::size_t kEmpty = std::numeric_limits<std::size_t>::max();
  struct Slot {
    std::size_t hash;
    std::size_t index;  // kEmpty: free
  };
  std::vector<Slot> slots_;
  std::size_t mask_ = 0;
};

/// Keys hashed and bucketed per block: fixed (not derived from the thread count or the parse
/// chunks, which tests shrink to 1 byte), large enough that per-block partition counters are
/// noise, small enough to give a few blocks per thread on a 1M-row file.
constexpr std::size_t kKeyBlock = std::size_t{1} << 16;

/// Every present key that repeats an earlier one, in file order. Keys are numbered in file
/// order, hashed and counting-sorted by partition block by block (stable, so each partition
/// lists its keys in file order), then each partition is checked on its own; all in parallel.
std::vector<KeyPos> find_repeats(const std::vector<ChunkOut>& outs, int nthreads) {
  std::vector<std::size_t> first(outs.size() + 1, 0);  // global index of each chunk's first key
  for (std::size_t c = 0; c < outs.size(); ++c) first[c + 1] = first[c] + outs[c].keys.size();
  const std::size_t n = first.back();
  // Keys, hashes and missing flags stay in their chunks (no copy of 25 bytes per row): a global
  // index is found through `first`.
  auto chunk_of = [&](std::size_t i) {
    return static_cast<std::size_t>(std::upper_bound(first.begin(), first.end(), i) -
                                    first.begin()) -
           1;
  };
  std::vector<std::uint8_t> part(n);  // partition, or kKeyPartitions for a missing key
  const std::size_t nblocks = (n + kKeyBlock - 1) / kKeyBlock;
  // count[b * (P + 1) + p]: keys of block b in partition p; becomes the scatter offset.
  std::vector<std::size_t> count(nblocks * (kKeyPartitions + 1), 0);
  std::vector<std::size_t> part_begin(kKeyPartitions + 1, 0);
  struct Entry {
    std::size_t index;
    std::size_t hash;
  };
  std::vector<Entry> entries;
  std::vector<std::vector<std::size_t>> found(kKeyPartitions);
  const int team = std::max(1, nthreads);
  ExceptionCollector errors;
  // Calls f(i, chunk, row) for the keys of block `blk`, in order.
  auto each_key = [&](std::size_t blk, auto&& f) {
    const std::size_t end = std::min(n, (blk + 1) * kKeyBlock);
    std::size_t i = blk * kKeyBlock;
    if (i >= end) return;
    std::size_t c = chunk_of(i);
    for (; i < end; ++i) {
      while (i >= first[c + 1]) ++c;
      f(i, c, i - first[c]);
    }
  };
#pragma omp parallel num_threads(team) if (team > 1)
  {
#pragma omp for schedule(dynamic, 1)
    for (std::ptrdiff_t sb = 0; sb < static_cast<std::ptrdiff_t>(nblocks); ++sb) {
      const auto blk = static_cast<std::size_t>(sb);
      std::size_t* cnt = &count[blk * (kKeyPartitions + 1)];
      each_key(blk, [&](std::size_t i, std::size_t c, std::size_t row) {
        if (outs[c].key_missing[row] != 0) {
          part[i] = static_cast<std::uint8_t>(kKeyPartitions);
          return;
        }
        // High bits pick the partition: the set inside uses the low bits.
        const auto p = static_cast<std::uint8_t>((outs[c].key_hash[row] >> 58) % kKeyPartitions);
        part[i] = p;
        ++cnt[p];
      });
    }
#pragma omp single
    {
      // Partition-major, block-minor offsets: partition p's keys in block order = file order.
      std::size_t at = 0;
      for (std::size_t p = 0; p < kKeyPartitions; ++p) {
        part_begin[p] = at;
        for (std::size_t blk = 0; blk < nblocks; ++blk) {
          std::size_t& cnt = count[blk * (kKeyPartitions + 1) + p];
          const std::size_t k = cnt;
          cnt = at;
          at += k;
        }
      }
      part_begin[kKeyPartitions] = at;
      entries.resize(at);
    }
#pragma omp for schedule(dynamic, 1)
    for (std::ptrdiff_t sb = 0; sb < static_cast<std::ptrdiff_t>(nblocks); ++sb) {
      const auto blk = static_cast<std::size_t>(sb);
      std::size_t* next = &count[blk * (kKeyPartitions + 1)];
      each_key(blk, [&](std::size_t i, std::size_t c, std::size_t row) {
        if (part[i] < kKeyPartitions) entries[next[part[i]]++] = Entry{i, outs[c].key_hash[row]};
      });
    }
#pragma omp for schedule(dynamic, 1)
    for (std::ptrdiff_t sp = 0; sp < static_cast<std::ptrdiff_t>(kKeyPartitions); ++sp) {
      errors.run([&] {
        const auto p = static_cast<std::size_t>(sp);
        KeySet seen(part_begin[p + 1] - part_begin[p]);
        auto key_of = [&](std::size_t i) {
          const std::size_t c = chunk_of(i);
          return outs[c].keys[i - first[c]];
        };
        for (std::size_t e = part_begin[p]; e < part_begin[p + 1]; ++e) {
          const std::size_t i = entries[e].index;
          if (!seen.insert(i, entries[e].hash, key_of)) found[p].push_back(i);
        }
      });
    }
  }
  errors.rethrow();
  std::vector<std::size_t> all;
  for (const auto& f : found) all.insert(all.end(), f.begin(), f.end());
  std::sort(all.begin(), all.end());
  std::vector<KeyPos> pos;
  pos.reserve(all.size());
  for (const std::size_t i : all) {
    const std::size_t c = chunk_of(i);
    pos.push_back(KeyPos{c, i - first[c]});
  }
  return pos;
}

}  // namespace

const char* parse_numeric_cell(std::string_view cell, double& out) noexcept {
  return parse_number(cell, out);
}

const char* check_numeric_value(double x) noexcept {
  if (std::isnan(x)) return "NaN value";
  if (std::isinf(x)) return "infinite value";
  if (std::fabs(x) > static_cast<double>(FLT_MAX)) return "value out of float32 range";
  return nullptr;
}

bool is_missing_token(std::string_view cell, const std::vector<std::string>& tokens) noexcept {
  return is_missing(cell, tokens);
}

std::vector<std::string> read_csv_header(const std::string& path, char delimiter) {
  check_delimiter(delimiter);
  MappedFile file(path);
  const Scanner sc(file.data(), file.size(), delimiter);
  return parse_header(sc, path).names;
}

Table read_csv(const std::string& path, const CsvOptions& options, IngestStats* stats) {
  const auto t0 = std::chrono::steady_clock::now();
  check_delimiter(options.delimiter);
  MappedFile file(path);
  const Scanner sc(file.data(), file.size(), options.delimiter);
  const char* buf = file.data();
  const std::size_t n = file.size();

  Header header = parse_header(sc, path);
  Plan plan;
  plan.path = path;
  plan.opts = &options;
  plan.header = header.names;
  auto field_of = [&](const std::string& name) -> std::size_t {
    const auto it = std::find(plan.header.begin(), plan.header.end(), name);
    if (it == plan.header.end())
      throw InputError(path, header.line, name, 0, name, "missing column in header");
    return static_cast<std::size_t>(it - plan.header.begin());
  };
  for (const auto& req : options.columns) plan.req_field.push_back(field_of(req.name));
  if (!options.unique_column.empty()) plan.unique_field = field_of(options.unique_column);
  plan.order.resize(plan.req_field.size());
  for (std::size_t k = 0; k < plan.order.size(); ++k) plan.order[k] = k;
  std::stable_sort(plan.order.begin(), plan.order.end(), [&](std::size_t a, std::size_t b) {
    return plan.req_field[a] < plan.req_field[b];
  });

  const std::size_t chunk =
      std::max(kMinChunkBytes, options.chunk_bytes > 0 ? options.chunk_bytes : kCsvChunkBytes);
  const int nthreads = options.threads > 0 ? options.threads : threads();
  const std::size_t body = header.body_start;

  // Chunks write their rows straight into the table's arrays (RowArrays); the gaps between
  // chunks' slots are closed once every row is known.
  Table table;
  table.source = path;
  table.columns.resize(options.columns.size());
  for (std::size_t k = 0; k < options.columns.size(); ++k) {
    table.columns[k].name = options.columns[k].name;
    table.columns[k].type = options.columns[k].type;
  }
  RowArrays arrays(table);

  // Chunk i starts on a true record boundary if chunk i-1 ended exactly on it. Parity is fooled
  // only by a quote inside an unquoted field: the chunk that ran past its edge is still exact
  // (it started on a true boundary), so keep it and start a new pass where it really ended.
  std::vector<ChunkOut> outs;
  std::vector<std::size_t> edge;
  std::size_t start = body;
  for (int pass = 0; start < n; ++pass) {
    const std::size_t slot_base = outs.empty() ? 0 : outs.back().slot + outs.back().rows;
    if (pass == kMaxParallelPasses || options.max_rows > 0) {
      ChunkOut& o = outs.emplace_back();
      o.slot = slot_base;
      o.capacity = csv_scan::count_line_ends(buf, n, start, n) + 1;
      if (options.max_rows > 0)
        o.capacity = std::min(o.capacity, static_cast<std::size_t>(options.max_rows));
      arrays.ensure(o.slot + o.capacity);
      parse_chunk(sc, plan, arrays, start, n, o);
      const bool limited = options.max_rows > 0 && o.records >= options.max_rows;
      if (!o.stopped && !limited && o.end_pos < n)  // the bound above makes this unreachable
        throw std::logic_error(path + ": CSV reader ran out of row slots at byte " +
                               std::to_string(o.end_pos));
      break;
    }
    std::vector<ChunkOut> part =
        parse_parallel(file, sc, plan, arrays, slot_base, start, chunk, nthreads, edge);
    bool again = false;
    std::size_t take = part.size();
    for (std::size_t i = 0; i < part.size(); ++i) {
      if (part[i].stopped) {
        take = i + 1;
        break;
      }
      if (part[i].end_pos != edge[i + 1]) {
        take = i + 1;
        start = part[i].end_pos;
        again = true;
        break;
      }
    }
    for (std::size_t i = 0; i < take; ++i) outs.push_back(std::move(part[i]));
    if (!again || outs.back().stopped) break;
  }

  // Relative lines -> physical lines.
  std::vector<std::int64_t> line_base(outs.size());
  std::int64_t base = header.body_line;
  for (std::size_t c = 0; c < outs.size(); ++c) {
    ChunkOut& o = outs[c];
    line_base[c] = base;
    for (auto& b : o.bad) b.line += base;
    if (o.fatal) o.fatal->line += base;
    base += o.lines_consumed;
  }
  std::int64_t* const lines = arrays.lines();
#pragma omp parallel for schedule(dynamic, 1) num_threads(nthreads) if (nthreads > 1)
  for (std::ptrdiff_t sc_i = 0; sc_i < static_cast<std::ptrdiff_t>(outs.size()); ++sc_i) {
    const ChunkOut& o = outs[static_cast<std::size_t>(sc_i)];
    const std::int64_t b = line_base[static_cast<std::size_t>(sc_i)];
    for (std::size_t j = 0; j < o.rows; ++j) lines[o.slot + j] += b;
  }

  const bool fail_fast = options.on_error == ErrorPolicy::fail;
  // Uniqueness is a whole-file property: the first occurrence in file order wins. drop[c] stays
  // empty for a chunk without repeats (nothing to skip when its rows move).
  std::vector<std::vector<char>> drop(outs.size());
  std::vector<BadRow> dups;
  if (plan.unique_field) {
    const std::vector<KeyPos> repeats = find_repeats(outs, nthreads);
    const std::size_t uf = *plan.unique_field;
    for (const KeyPos& r : repeats) {
      BadRow b;
      b.line = lines[outs[r.chunk].slot + r.row];
      b.column = plan.header[uf];
      b.column_number = static_cast<std::int64_t>(uf) + 1;
      b.value = truncate_text(outs[r.chunk].keys[r.row]);
      b.reason = "duplicate value";
      if (fail_fast) throw_bad(path, b);  // every accepted row precedes any chunk error
      if (drop[r.chunk].empty()) drop[r.chunk].assign(outs[r.chunk].rows, 0);
      drop[r.chunk][r.row] = 1;
      dups.push_back(std::move(b));
    }
  }
  if (fail_fast) {
    for (const auto& o : outs) {
      if (o.fatal) throw_bad(path, *o.fatal);
      if (!o.bad.empty()) throw_bad(path, o.bad.front());
    }
  }
  for (const auto& o : outs)
    if (o.fatal) throw_bad(path, *o.fatal);

  // Raw text of duplicate rows is only needed for the quarantine file.
  if (!dups.empty() && !options.quarantine_path.empty()) {
    std::vector<FieldSpan> fields;
    csv_scan::Cursor cur = sc.cursor();
    std::size_t d = 0;
    std::size_t pos = body;
    std::int64_t line = header.body_line;
    while (pos < n && d < dups.size()) {
      const std::size_t nl = sc.newline_at(pos);
      if (nl > 0) {
        ++line;
        pos += nl;
        continue;
      }
      const RecordScan r = sc.scan(pos, fields, cur);
      if (line == dups[d].line) dups[d++].raw.assign(buf + r.start, r.end - r.start);
      line += r.lines;
      pos = r.next;
    }
  }

  std::size_t kept = 0;
  std::int64_t records = 0;
  std::size_t bad_count = dups.size();
  for (std::size_t c = 0; c < outs.size(); ++c) {
    records += outs[c].records;
    bad_count += outs[c].bad.size();
    kept += outs[c].rows;
    for (const char x : drop[c]) kept -= static_cast<std::size_t>(x);
  }
  auto keep = [&](std::size_t c, std::size_t j) { return drop[c].empty() || drop[c][j] == 0; };
  table.rows = kept;

  // Columns are independent, so they are finished in parallel (the line numbers as one more
  // task); each one is still assembled in file order by a single thread, so the result is the
  // same at any thread count.
  const auto ncols_out = static_cast<std::ptrdiff_t>(options.columns.size());
  ExceptionCollector stitch_errors;
  const int stitch_team = static_cast<int>(std::min<std::ptrdiff_t>(nthreads, ncols_out + 1));
#pragma omp parallel for schedule(dynamic, 1) num_threads(stitch_team) if (stitch_team > 1)
  for (std::ptrdiff_t sk = 0; sk <= ncols_out; ++sk)
    stitch_errors.run([&] {
      if (sk == ncols_out) {
        close_gaps(table.source_line, outs, drop, kept);
        return;
      }
      const auto k = static_cast<std::size_t>(sk);
      Column& col = table.columns[k];
      switch (col.type) {
        case ColumnType::numeric:
          close_gaps(col.numeric, outs, drop, kept);
          break;
        case ColumnType::categorical: {
          // Global codes are handed out on first appearance among kept rows, in file order, so
          // a level seen only in rejected rows never enters the dictionary. Rows only move
          // down (see close_gaps), so codes are remapped in place.
          std::int32_t* codes = col.codes.data();
          std::unordered_map<std::string_view, std::int32_t, SvHash> global;
          std::size_t dst = 0;
          for (std::size_t c = 0; c < outs.size(); ++c) {
            const ChunkOut& o = outs[c];
            const LocalDict& dict = o.cols[k].dict;
            std::vector<std::int32_t> remap(dict.levels.size(), -1);
            for (std::size_t j = 0; j < o.rows; ++j) {
              if (!keep(c, j)) continue;
              const std::int32_t local = codes[o.slot + j];
              if (local < 0) {
                codes[dst++] = -1;
                continue;
              }
              auto& g = remap[static_cast<std::size_t>(local)];
              if (g < 0) {
                const std::string& level = dict.levels[static_cast<std::size_t>(local)];
                auto [it, inserted] =
                    global.try_emplace(level, static_cast<std::int32_t>(col.levels.size()));
                if (inserted) col.levels.push_back(level);
                g = it->second;
              }
              codes[dst++] = g;
            }
          }
          col.codes.resize(kept);
          break;
        }
        case ColumnType::text:
          col.text.reserve(kept);
          for (std::size_t c = 0; c < outs.size(); ++c) {
            auto& v = outs[c].cols[k].text;
            for (std::size_t j = 0; j < v.size(); ++j)
              if (keep(c, j)) col.text.push_back(std::move(v[j]));
            ChunkVector<std::string>().swap(v);  // unmapped as stitched (ChunkAllocator)
          }
          break;
      }
    });
  stitch_errors.rethrow();

  if (options.on_error == ErrorPolicy::quarantine && !options.quarantine_path.empty()) {
    std::vector<const BadRow*> rows;
    rows.reserve(bad_count);
    for (const auto& o : outs)
      for (const auto& b : o.bad) rows.push_back(&b);
    for (const auto& b : dups) rows.push_back(&b);
    std::stable_sort(rows.begin(), rows.end(),
                     [](const BadRow* a, const BadRow* b) { return a->line < b->line; });
    write_quarantine(options.quarantine_path, rows);
  }

  if (stats != nullptr) {
    stats->rows_read = records;
    stats->rows_accepted = static_cast<std::int64_t>(kept);
    stats->rows_quarantined = static_cast<std::int64_t>(bad_count);
    stats->bytes = static_cast<std::int64_t>(n);
    stats->seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  return table;
}

std::string csv_field(std::string_view s) {
  if (s.find_first_of(",\"\r\n") == std::string_view::npos) return std::string(s);
  std::string q = "\"";
  for (const char c : s) {
    q.push_back(c);
    if (c == '"') q.push_back('"');
  }
  q.push_back('"');
  return q;
}

}  // namespace icp
