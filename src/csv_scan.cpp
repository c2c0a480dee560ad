// Plain references of the block classifier, and the whole-range helpers built on it.
#include "csv_scan.hpp"

#include <algorithm>
#include <bit>

namespace icp::csv_scan {

namespace {

std::size_t newline_length(const char* buf, std::size_t n, std::size_t p) noexcept {
  if (buf[p] == '\n') return 1;
  return (p + 1 < n && buf[p + 1] == '\n') ? 2 : 1;  // CRLF, or a lone CR
}

BlockMasks classify_at(const char* buf, std::size_t n, std::size_t p, char delim) noexcept {
  return p + kBlock <= n ? classify(buf + p, delim) : classify_partial(buf + p, n - p, delim);
}

}  // namespace

const char* classify_path() noexcept {
#if defined(__AVX512BW__)
  return "avx512bw";
#elif defined(__AVX2__)
  return "avx2";
#else
  return "scalar";
#endif
}

BlockMasks classify_scalar(const char* p, char delim) noexcept {
  BlockMasks m;
  for (std::size_t i = 0; i < kBlock; ++i) {
    const std::uint64_t bit = std::uint64_t{1} << i;
    if (p[i] == '"') m.quote |= bit;
    if (p[i] == delim) m.delim |= bit;
    if (p[i] == '\r') m.cr |= bit;
    if (p[i] == '\n') m.lf |= bit;
  }
  return m;
}

std::uint64_t prefix_xor_scalar(std::uint64_t x) noexcept {
  std::uint64_t out = 0;
  std::uint64_t acc = 0;
  for (int i = 0; i < 64; ++i) {
    acc ^= (x >> i) & 1u;
    out |= acc << i;
  }
  return out;
}

std::size_t count_quotes_scalar(const char* buf, std::size_t begin, std::size_t end) noexcept {
  std::size_t k = 0;
  for (std::size_t p = begin; p < end; ++p) k += buf[p] == '"' ? 1 : 0;
  return k;
}

std::size_t count_line_ends_scalar(const char* buf, std::size_t n, std::size_t begin,
                                   std::size_t end) noexcept {
  std::size_t k = 0;
  for (std::size_t p = begin; p < end; ++p) {
    if (buf[p] == '\n') ++k;
    if (buf[p] == '\r' && (p + 1 >= n || buf[p + 1] != '\n')) ++k;
  }
  return k;
}

std::size_t find_unquoted_newline_scalar(const char* buf, std::size_t n, std::size_t pos,
                                         bool in_quote) noexcept {
  bool inq = in_quote;
  for (std::size_t p = pos; p < n; ++p) {
    const char c = buf[p];
    if (c == '"') {
      inq = !inq;
    } else if (!inq && (c == '\r' || c == '\n')) {
      return p + newline_length(buf, n, p);
    }
  }
  return n;
}

RangeCounts count_range(const char* buf, std::size_t n, std::size_t begin,
                        std::size_t end) noexcept {
  RangeCounts k;
  for (std::size_t p = begin; p < end; p += kBlock) {
    const std::size_t len = std::min(kBlock, end - p);
    const BlockMasks m =
        len == kBlock ? classify(buf + p, ',') : classify_partial(buf + p, len, ',');
    std::uint64_t lone_cr = m.cr & ~(m.lf >> 1);
    // A CR in the block's last byte pairs with an LF just past it (next block, or past `end`).
    const std::uint64_t last = std::uint64_t{1} << (len - 1);
    if ((lone_cr & last) != 0 && p + len < n && buf[p + len] == '\n') lone_cr &= ~last;
    k.quotes += static_cast<std::size_t>(std::popcount(m.quote));
    k.line_ends += static_cast<std::size_t>(std::popcount(m.lf) + std::popcount(lone_cr));
  }
  return k;
}

std::size_t count_line_ends(const char* buf, std::size_t n, std::size_t begin,
                            std::size_t end) noexcept {
  return count_range(buf, n, begin, end).line_ends;
}

std::size_t find_unquoted_newline(const char* buf, std::size_t n, std::size_t pos,
                                  bool in_quote) noexcept {
  // Parity carried across blocks as all-ones / all-zeros, so it XORs straight into a mask.
  std::uint64_t carry = in_quote ? ~std::uint64_t{0} : 0;
  for (std::size_t p = pos; p < n; p += kBlock) {
    const BlockMasks m = classify_at(buf, n, p, ',');
    const std::uint64_t inside = prefix_xor(m.quote) ^ carry;
    const std::uint64_t nl = (m.cr | m.lf) & ~inside;
    if (nl != 0) {
      const std::size_t q = p + static_cast<std::size_t>(std::countr_zero(nl));
      return q + newline_length(buf, n, q);
    }
    carry = (inside >> 63) != 0 ? ~std::uint64_t{0} : 0;
  }
  return n;
}

}  // namespace icp::csv_scan
