// Block classifier for the CSV reader: 64 bytes at a time into bitmasks of quotes, delimiters
// and line-end bytes (simdjson-style), with the quote parity of a block by prefix XOR. The
// vector path is chosen at build time (__AVX512BW__, else __AVX2__, else a portable loop); every
// function has a plain byte-at-a-time reference in csv_scan.cpp that the tests compare against.
// Internal to icp_core (not installed): csv.cpp and tests/test_csv_scan.cpp include it.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>

#if defined(__AVX512BW__) || defined(__AVX2__) || defined(__PCLMUL__)
#include <immintrin.h>
#endif

namespace icp::csv_scan {

/// Bytes per classified block: one bit per byte in a uint64_t.
inline constexpr std::size_t kBlock = 64;

/// Bit i set when byte i of the block is that character.
struct BlockMasks {
  std::uint64_t quote = 0;
  std::uint64_t delim = 0;
  std::uint64_t cr = 0;
  std::uint64_t lf = 0;
};

/// Which vector path classify() was built with: "avx512bw", "avx2" or "scalar".
const char* classify_path() noexcept;

/// Byte-at-a-time reference of classify(): the tests hold the vector path to it.
BlockMasks classify_scalar(const char* p, char delim) noexcept;
/// Byte-at-a-time reference of prefix_xor().
std::uint64_t prefix_xor_scalar(std::uint64_t x) noexcept;
/// Byte-at-a-time references of count_range().quotes and find_unquoted_newline().
std::size_t count_quotes_scalar(const char* buf, std::size_t begin, std::size_t end) noexcept;
/// Byte-at-a-time reference of count_line_ends().
std::size_t count_line_ends_scalar(const char* buf, std::size_t n, std::size_t begin,
                                   std::size_t end) noexcept;
std::size_t find_unquoted_newline_scalar(const char* buf, std::size_t n, std::size_t pos,
                                         bool in_quote) noexcept;

/// Classifies the 64 readable bytes at `p`.
inline BlockMasks classify(const char* p, char delim) noexcept {
  BlockMasks m;
#if defined(__AVX512BW__)
  const __m512i v = _mm512_loadu_si512(static_cast<const void*>(p));
  m.quote = _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8('"'));
  m.delim = _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8(delim));
  m.cr = _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8('\r'));
  m.lf = _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8('\n'));
#elif defined(__AVX2__)
  const __m256i lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  const __m256i hi = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 32));
  auto bits = [&](char c) {
    const __m256i k = _mm256_set1_epi8(c);
    const auto l = static_cast<std::uint32_t>(_mm256_movemask_epi8(_mm256_cmpeq_epi8(lo, k)));
    const auto h = static_cast<std::uint32_t>(_mm256_movemask_epi8(_mm256_cmpeq_epi8(hi, k)));
    return std::uint64_t{l} | (std::uint64_t{h} << 32);
  };
  m.quote = bits('"');
  m.delim = bits(delim);
  m.cr = bits('\r');
  m.lf = bits('\n');
#else
  m = classify_scalar(p, delim);
#endif
  return m;
}

/// Classifies `len` (< 64) bytes at `p`; bits at and past `len` are clear. The copy keeps the
/// vector load inside the buffer (the mapped file may end at a page edge).
inline BlockMasks classify_partial(const char* p, std::size_t len, char delim) noexcept {
  alignas(64) char tmp[kBlock] = {};  // NUL is never a delimiter, quote or line end
  std::memcpy(tmp, p, len);
  return classify(tmp, delim);
}

/// Bit i = XOR of bits 0..i: with quote bits in, the bytes inside (or closing) a quoted run.
inline std::uint64_t prefix_xor(std::uint64_t x) noexcept {
#if defined(__PCLMUL__)
  // Carry-less multiply by all-ones is a prefix XOR in one instruction.
  const __m128i r = _mm_clmulepi64_si128(_mm_set_epi64x(0, static_cast<long long>(x)),
                                         _mm_set1_epi8(static_cast<char>(0xFF)), 0);
  return static_cast<std::uint64_t>(_mm_cvtsi128_si64(r));
#else
  x ^= x << 1;
  x ^= x << 2;
  x ^= x << 4;
  x ^= x << 8;
  x ^= x << 16;
  x ^= x << 32;
  return x;
#endif
}

/// What one pass over a range counts.
struct RangeCounts {
  std::size_t quotes = 0;     ///< '"' bytes
  std::size_t line_ends = 0;  ///< as count_line_ends()
};

/// Quotes and line ends in [begin, end) of `buf` (n bytes), from one classification per block:
/// the reader's first pass needs both (quote parity for the chunk edges, line ends for the row
/// slots), and the file is read once instead of twice.
RangeCounts count_range(const char* buf, std::size_t n, std::size_t begin,
                        std::size_t end) noexcept;

/// Line terminators (LF, CRLF, lone CR) that end in [begin, end) of `buf` (n bytes): LF bytes
/// plus CR bytes not followed by LF, looking past `end` for the LF. Every record of a range that
/// starts and ends on record boundaries ends with one of them (quoted newlines only add more),
/// so this bounds its record count: the reader sizes each chunk's share of the table from it.
std::size_t count_line_ends(const char* buf, std::size_t n, std::size_t begin,
                            std::size_t end) noexcept;

/// First byte after the first line terminator (LF, CRLF or a lone CR) at or after `pos` that
/// lies outside quotes, quote parity starting at `in_quote` and every '"' toggling it; `n` when
/// there is none. This is the chunk-edge rule of the parallel reader.
std::size_t find_unquoted_newline(const char* buf, std::size_t n, std::size_t pos,
                                  bool in_quote) noexcept;

/// Next stop byte at or after a position, from cached 64-byte block masks. The record scanner
/// asks twice per field, and fields are a few bytes long, so one classification serves many
/// questions; a cursor belongs to one thread (it caches the block last looked at).
class Cursor {
 public:
  Cursor(const char* buf, std::size_t n, char delim) noexcept : buf_(buf), n_(n), delim_(delim) {}

  /// First delimiter, CR or LF at or after `pos` (the end of an unquoted field); `n` if none.
  std::size_t next_stop(std::size_t pos) noexcept { return next(pos, false); }
  /// First '"', CR or LF at or after `pos` (what matters inside a quoted field); `n` if none.
  std::size_t next_quote_or_newline(std::size_t pos) noexcept { return next(pos, true); }

 private:
  std::size_t next(std::size_t pos, bool quoted) noexcept {
    while (pos < n_) {
      const std::size_t base = pos & ~(kBlock - 1);
      if (base != base_) load(base);
      const std::uint64_t m = (quoted ? quoted_ : stop_) >> (pos - base);
      if (m != 0) return pos + static_cast<std::size_t>(std::countr_zero(m));
      pos = base + kBlock;
    }
    return n_;
  }

  void load(std::size_t base) noexcept {
    const BlockMasks m = base + kBlock <= n_ ? classify(buf_ + base, delim_)
                                             : classify_partial(buf_ + base, n_ - base, delim_);
    const std::uint64_t nl = m.cr | m.lf;
    stop_ = m.delim | nl;
    quoted_ = m.quote | nl;
    base_ = base;
  }

  const char* buf_;
  std::size_t n_;
  char delim_;
  std::size_t base_ = ~std::size_t{0};  ///< offset of the cached block; never a multiple of 64
  std::uint64_t stop_ = 0;
  std::uint64_t quoted_ = 0;
};

}  // namespace icp::csv_scan
