#include "icp/hdf5.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <hdf5.h>
#include <libdeflate.h>
#include <omp.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <new>
#include <set>
#include <system_error>
#include <utility>
#include <vector>

#include "icp/allocator.hpp"
#include "icp/parallel.hpp"
#include "icp/text.hpp"

namespace icp::h5 {
namespace {

namespace fs = std::filesystem;

// Smaller datasets stay contiguous: compression saves little on them, and contiguous storage
// is what simple readers (and h5dump output) handle best.
constexpr std::uint64_t kCompressMinElements = 64 * 1024;
// Target bytes per chunk: half of HDF5's default 1 MiB chunk cache, so a reader walking a
// dataset keeps the current chunk cached and inflates each chunk once, while deflate's
// per-chunk overhead stays negligible.
constexpr std::uint64_t kChunkBytes = 512 * 1024;
// Deflate runs on one thread inside HDF5's filter pipeline and was 70% of writing a results
// file. On the 1M-row demo job level 1 instead of 4 cut the whole job by 0.5 s (15.25 -> 14.74 s)
// for a 0.7% larger file (83.5 -> 84.1 MB): after shuffle, float data gains little from effort.
constexpr unsigned kDeflateLevel = 1;
// Longest string written as a fixed-length dataset (NUL-padded to the longest value): ids, codes
// and labels. HDF5 stores every variable-length string in its global heap, one by one on one
// thread (180 ns each: 1.8 s per 10M-row id column); a fixed-length column is one block of bytes,
// shuffled and deflated in parallel like numbers, and its padding compresses away. Beyond 64
// bytes a few long values would pad every row, so longer text stays variable-length.
constexpr std::size_t kFixedStringMaxBytes = 64;
// Elements per block of the byte shuffle: 256 elements of up to 8 bytes are read once into L1
// and written as up to 8 runs of 256 bytes, where a byte-by-byte pass over the whole chunk per
// byte position read the 512 KiB chunk 4 or 8 times with a stride.
constexpr std::size_t kShuffleBlock = 256;

// HDF5's shuffle filter: byte j of every element, then byte j + 1 (out[j * n + e] =
// in[e * size + j]). Fixed sizes let the compiler keep the inner loop in registers.
template <std::size_t Size>
void shuffle_fixed(const unsigned char* in, std::size_t n, unsigned char* out) {
  for (std::size_t e0 = 0; e0 < n; e0 += kShuffleBlock) {
    const std::size_t e1 = std::min(n, e0 + kShuffleBlock);
    for (std::size_t j = 0; j < Size; ++j) {
      unsigned char* o = out + j * n;
      for (std::size_t e = e0; e < e1; ++e) o[e] = in[e * Size + j];
    }
  }
}

void shuffle_bytes(const unsigned char* in, std::size_t n, std::size_t size, unsigned char* out) {
  switch (size) {
    case 2:
      return shuffle_fixed<2>(in, n, out);
    case 4:
      return shuffle_fixed<4>(in, n, out);
    case 8:
      return shuffle_fixed<8>(in, n, out);
    default:
      for (std::size_t j = 0; j < size; ++j)
        for (std::size_t e = 0; e < n; ++e) out[j * n + e] = in[e * size + j];
  }
}

// Deflate is kept on a dataset when its first chunk shrinks to at most this fraction. Float
// columns of scores and distances shrink only to 75-84% (their mantissa bytes are noise, even
// shuffled), and deflating them was half the time spent writing a 10M-row results file; they are
// stored unfiltered instead (the chunks' filter masks say so, and every HDF5 reader honours
// them): 12% more file for ~1 s less on that job. Integers, codes and ids shrink to 2-45%.
constexpr double kDeflateKeepRatio = 0.75;
// HDF5 filter mask of a chunk stored with both filters (shuffle, deflate) skipped.
constexpr std::uint32_t kSkipAllFilters = 0x3;

// Chunks compressed per parallel batch before their serial H5Dwrite_chunk: 32 x 512 KiB bounds
// the extra memory at ~32 MiB (input copies plus deflate output) whatever the dataset size,
// and leaves several chunks per thread to balance.
constexpr std::size_t kChunksPerBatch = 32;

// Chunk bytes, not zeroed when resized (every byte used is written first).
using ChunkBytes = std::vector<unsigned char, DefaultInitAllocator<unsigned char>>;

// One thread's state of the chunk filters: a libdeflate compressor (its state is not shared;
// freed with the struct) and the edge chunk's padded copy and the shuffled bytes.
struct ChunkFilters {
  std::unique_ptr<libdeflate_compressor, void (*)(libdeflate_compressor*)> compressor{
      nullptr, libdeflate_free_compressor};
  ChunkBytes raw;
  ChunkBytes shuffled;
};

// Owns one hid_t of any kind; the closer matches the kind (H5Fclose, H5Dclose, ...).
class Hid {
 public:
  using Closer = herr_t (*)(hid_t);
  Hid() = default;
  Hid(hid_t id, Closer closer) noexcept : id_(id), closer_(closer) {}
  ~Hid() { reset(); }
  Hid(Hid&& o) noexcept : id_(std::exchange(o.id_, H5I_INVALID_HID)), closer_(o.closer_) {}
  Hid& operator=(Hid&& o) noexcept {
    if (this != &o) {
      reset();
      id_ = std::exchange(o.id_, H5I_INVALID_HID);
      closer_ = o.closer_;
    }
    return *this;
  }
  Hid(const Hid&) = delete;
  Hid& operator=(const Hid&) = delete;

  hid_t get() const noexcept { return id_; }
  bool valid() const noexcept { return id_ >= 0; }
  void reset() noexcept { (void)close(); }
  // Closes now and returns HDF5's status: closing the file is where buffered data is written,
  // so commit() must see that result rather than lose it in a destructor.
  herr_t close() noexcept {
    herr_t status = 0;
    if (id_ >= 0 && closer_ != nullptr) status = closer_(id_);
    id_ = H5I_INVALID_HID;
    return status;
  }

 private:
  hid_t id_ = H5I_INVALID_HID;
  Closer closer_ = nullptr;
};

// The innermost message of HDF5's error stack (the most specific one), then clears the stack.
std::string hdf5_detail() {
  std::string detail;
  H5Ewalk2(
      H5E_DEFAULT, H5E_WALK_UPWARD,
      [](unsigned n, const H5E_error2_t* e, void* data) -> herr_t {
        if (n == 0 && e != nullptr && e->desc != nullptr) {
          *static_cast<std::string*>(data) = e->desc;
        }
        return 0;
      },
      &detail);
  H5Eclear2(H5E_DEFAULT);
  return detail;
}

[[noreturn]] void fail(const std::string& file, const std::string& object,
                       const std::string& reason) {
  std::string message = file + ": " + object + ": " + reason;
  const std::string detail = hdf5_detail();
  if (!detail.empty()) message += " (HDF5: " + detail + ")";
  throw Error(message);
}

void silence_hdf5() noexcept {
  // HDF5 prints every error stack to stderr by default; we report through exceptions instead.
  // (Per thread in thread-safe builds, global otherwise: set on every open to cover both.)
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
}

// "a/b" -> "/a/b", "/a/b/" -> "/a/b"; empty stays empty (callers reject it).
std::string normalize(const std::string& path) {
  if (path.empty()) return path;
  std::string out = path.front() == '/' ? path : "/" + path;
  while (out.size() > 1 && out.back() == '/') out.pop_back();
  return out;
}

// H5Lexists fails (rather than returning false) when a parent is missing, so walk the prefixes.
bool link_exists(hid_t loc, const std::string& object) {
  if (object == "/") return true;
  std::size_t pos = 0;
  while (true) {
    pos = object.find('/', pos + 1);
    const std::string prefix = object.substr(0, pos);
    if (H5Lexists(loc, prefix.c_str(), H5P_DEFAULT) <= 0) {
      H5Eclear2(H5E_DEFAULT);
      return false;
    }
    if (pos == std::string::npos) return true;
  }
}

// H5I_GROUP / H5I_DATASET / H5I_DATATYPE of an existing object, H5I_BADID if absent.
H5I_type_t object_type(hid_t loc, const std::string& object) {
  if (!link_exists(loc, object)) return H5I_BADID;
  Hid o(H5Oopen(loc, object.c_str(), H5P_DEFAULT), H5Oclose);
  if (!o.valid()) {
    H5Eclear2(H5E_DEFAULT);
    return H5I_BADID;
  }
  return H5Iget_type(o.get());
}

enum class Kind { f32, f64, i32, i64, u8 };

template <class T>
constexpr Kind kind_of() {
  if constexpr (std::same_as<T, float>) return Kind::f32;
  if constexpr (std::same_as<T, double>) return Kind::f64;
  if constexpr (std::same_as<T, std::int32_t>) return Kind::i32;
  if constexpr (std::same_as<T, std::int64_t>) return Kind::i64;
  if constexpr (std::same_as<T, std::uint8_t>) return Kind::u8;
}

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::f32:
      return "float32";
    case Kind::f64:
      return "float64";
    case Kind::i32:
      return "int32";
    case Kind::i64:
      return "int64";
    case Kind::u8:
      return "uint8";
  }
  return "?";
}

hid_t mem_type(Kind k) {
  switch (k) {
    case Kind::f32:
      return H5T_NATIVE_FLOAT;
    case Kind::f64:
      return H5T_NATIVE_DOUBLE;
    case Kind::i32:
      return H5T_NATIVE_INT32;
    case Kind::i64:
      return H5T_NATIVE_INT64;
    case Kind::u8:
      return H5T_NATIVE_UINT8;
  }
  return H5I_INVALID_HID;
}

// Fixed little-endian file types: the file reads the same on any machine.
hid_t file_type(Kind k) {
  switch (k) {
    case Kind::f32:
      return H5T_IEEE_F32LE;
    case Kind::f64:
      return H5T_IEEE_F64LE;
    case Kind::i32:
      return H5T_STD_I32LE;
    case Kind::i64:
      return H5T_STD_I64LE;
    case Kind::u8:
      return H5T_STD_U8LE;
  }
  return H5I_INVALID_HID;
}

std::string describe(hid_t type) {
  const std::size_t bits = 8 * H5Tget_size(type);
  switch (H5Tget_class(type)) {
    case H5T_INTEGER:
      return fmt::format("{}{}", H5Tget_sign(type) == H5T_SGN_NONE ? "uint" : "int", bits);
    case H5T_FLOAT:
      return fmt::format("float{}", bits);
    case H5T_STRING:
      return H5Tis_variable_str(type) > 0
                 ? "a variable-length string"
                 : fmt::format("a fixed-length string ({} bytes)", bits / 8);
    case H5T_COMPOUND:
      return "a compound type";
    case H5T_ENUM:
      return "an enum";
    case H5T_ARRAY:
      return "an array type";
    case H5T_VLEN:
      return "a variable-length sequence";
    case H5T_OPAQUE:
      return "an opaque type";
    case H5T_BITFIELD:
      return "a bitfield";
    case H5T_REFERENCE:
      return "a reference";
    case H5T_TIME:
      return "a time type";
    default:
      return "an unknown type";
  }
}

// Whether every value of the stored type is exactly representable in the requested kind.
bool converts_losslessly(hid_t stored, Kind want) {
  const H5T_class_t cls = H5Tget_class(stored);
  if (cls == H5T_INTEGER) {
    const bool is_signed = H5Tget_sign(stored) != H5T_SGN_NONE;
    const std::size_t precision = H5Tget_precision(stored);
    const std::size_t magnitude_bits = is_signed ? precision - 1 : precision;
    switch (want) {
      case Kind::f32:
        return magnitude_bits <= 24;  // float32 significand
      case Kind::f64:
        return magnitude_bits <= 53;  // float64 significand
      case Kind::i32:
        return magnitude_bits <= 31;
      case Kind::i64:
        return magnitude_bits <= 63;
      case Kind::u8:
        return !is_signed && precision <= 8;
    }
    return false;
  }
  if (cls == H5T_FLOAT) {
    std::size_t sign_pos = 0, exp_pos = 0, exp_bits = 0, mant_pos = 0, mant_bits = 0;
    if (H5Tget_fields(stored, &sign_pos, &exp_pos, &exp_bits, &mant_pos, &mant_bits) < 0) {
      H5Eclear2(H5E_DEFAULT);
      return false;
    }
    switch (want) {
      case Kind::f32:
        return exp_bits <= 8 && mant_bits <= 23;
      case Kind::f64:
        return exp_bits <= 11 && mant_bits <= 52;
      default:
        return false;
    }
  }
  return false;
}

std::vector<hsize_t> to_hsize(const std::vector<std::uint64_t>& dims) {
  return {dims.begin(), dims.end()};
}

std::string dims_text(const std::vector<std::uint64_t>& dims) {
  return fmt::format("[{}]", fmt::join(dims, ", "));
}

Hid utf8_vlen_type(H5T_cset_t cset = H5T_CSET_UTF8) {
  Hid t(H5Tcopy(H5T_C_S1), H5Tclose);
  if (!t.valid() || H5Tset_size(t.get(), H5T_VARIABLE) < 0 || H5Tset_cset(t.get(), cset) < 0) {
    return {};
  }
  return t;
}

// Reads `n` strings stored as `stored` (variable or fixed length). `read(mem_type, buffer)`
// performs the actual H5Dread/H5Aread into a buffer laid out as n values of mem_type.
template <class ReadFn>
std::vector<std::string> read_string_values(const std::string& file, const std::string& object,
                                            hid_t stored, std::size_t n, ReadFn&& read) {
  std::vector<std::string> out;
  out.reserve(n);
  if (H5Tis_variable_str(stored) > 0) {
    Hid mt = utf8_vlen_type(H5Tget_cset(stored));
    if (!mt.valid()) fail(file, object, "cannot build a string type");
    std::vector<char*> ptrs(n, nullptr);
    if (n == 0) return out;
    // HDF5 allocates every string it reads; give them back on every path, including a failed
    // read (pointers it did not fill stay null, which reclaiming skips) and a throwing copy.
    // H5Dvlen_reclaim, not H5Treclaim: Debian's 1.10.8 headers declare the latter but the
    // library lacks it.
    struct Reclaim {
      hid_t type;
      std::vector<char*>& ptrs;
      ~Reclaim() {
        const hsize_t count = ptrs.size();
        Hid space(H5Screate_simple(1, &count, nullptr), H5Sclose);
        if (space.valid()) H5Dvlen_reclaim(type, space.get(), H5P_DEFAULT, ptrs.data());
      }
    } reclaim{mt.get(), ptrs};
    if (read(mt.get(), ptrs.data()) < 0) fail(file, object, "cannot read strings");
    for (const char* p : ptrs) out.emplace_back(p != nullptr ? p : "");
    return out;
  }
  const std::size_t size = H5Tget_size(stored);
  Hid mt(H5Tcopy(stored), H5Tclose);
  if (!mt.valid() || size == 0) fail(file, object, "cannot build a string type");
  std::vector<char> buffer(n * size);
  if (n == 0) return out;
  if (read(mt.get(), buffer.data()) < 0) fail(file, object, "cannot read strings");
  const bool space_padded = H5Tget_strpad(stored) == H5T_STR_SPACEPAD;
  for (std::size_t i = 0; i < n; ++i) {
    const char* begin = buffer.data() + i * size;
    std::size_t len = 0;
    while (len < size && begin[len] != '\0') ++len;
    if (space_padded) {
      while (len > 0 && begin[len - 1] == ' ') --len;
    }
    out.emplace_back(begin, len);
  }
  return out;
}

std::uint64_t element_count(const std::vector<std::uint64_t>& dims) {
  std::uint64_t n = 1;
  for (std::uint64_t d : dims) {
    if (d != 0 && n > std::numeric_limits<std::uint64_t>::max() / d) {
      return std::numeric_limits<std::uint64_t>::max();
    }
    n *= d;
  }
  return n;
}

}  // namespace

std::size_t TableField::size() const noexcept {
  return std::visit([](const auto& v) { return v.size(); }, values);
}

std::size_t Table::rows() const noexcept {
  return fields.empty() ? 0 : fields.front().size();
}

// ------------------------------------------------------------------------------------------
// Writer

struct Writer::Impl {
  std::string path;
  std::string temp;  // set only once the temporary file exists: the destructor removes it
  Hid file;
  Hid lcpl;  // link creation: make missing parent groups, UTF-8 names
  bool committed = false;
  /// Datasets being appended to, kept open between blocks (closed before the file).
  struct Growing {
    Hid ds;
    std::uint64_t rows = 0;
    std::uint64_t cols = 1;
    std::vector<hsize_t> chunk;
    bool filtered = false;  // shuffle + deflate (numbers, when HDF5 has deflate)
    std::size_t row_bytes = 0;
    /// Filtered appends store whole chunks only: the rows past the last whole chunk wait here for
    /// the next append or the commit. (Written as they came, a block ending inside a chunk made
    /// the next append read, inflate, patch and deflate that chunk again through HDF5, on one
    /// thread, and left the chunk's first version as dead space in the file.)
    std::vector<unsigned char> tail;
  };
  std::map<std::string, Growing> growing;
  /// write_chunks' per-thread filter state and compressed chunks, reused by every dataset.
  mutable std::vector<ChunkFilters> filters;
  mutable std::vector<ChunkBytes> packed;

  ~Impl() {
    if (committed) return;
    growing.clear();
    file.reset();
    if (!temp.empty()) {
      std::error_code ec;
      fs::remove(temp, ec);
    }
  }

  void require_open() const {
    if (committed) throw Error(path + ": already committed, no more writes");
    if (!file.valid()) throw Error(path + ": closed after a failed commit, no more writes");
  }

  std::string object_path(const std::string& p) const {
    std::string obj = normalize(p);
    if (obj.empty() || obj == "/") throw Error(path + ": '" + p + "': not a valid dataset path");
    return obj;
  }

  void require_new(const std::string& obj) const {
    if (link_exists(file.get(), obj)) fail(path, obj, "already exists");
  }

  // Chunk shape of a compressed dataset, or empty when it stays contiguous. Filled from the
  // fastest-varying dimension outwards, so a chunk holds whole rows.
  static std::vector<hsize_t> chunk_shape(const std::vector<hsize_t>& dims,
                                          std::size_t element_bytes) {
    std::uint64_t total = 1;
    for (hsize_t d : dims) total *= d;
    if (total < kCompressMinElements || H5Zfilter_avail(H5Z_FILTER_DEFLATE) <= 0) return {};
    std::vector<hsize_t> chunk(dims.size());
    std::uint64_t budget =
        std::max<std::uint64_t>(1, kChunkBytes / std::max<std::size_t>(1, element_bytes));
    for (std::size_t i = dims.size(); i-- > 0;) {
      chunk[i] = std::max<hsize_t>(1, std::min<hsize_t>(dims[i], budget));
      budget = std::max<std::uint64_t>(1, budget / chunk[i]);
    }
    return chunk;
  }

  // Chunked (+ shuffled and deflated when `filtered`) for large datasets; H5P_DEFAULT
  // (contiguous) without a chunk shape.
  Hid creation_plist(const std::vector<hsize_t>& chunk, const std::string& obj,
                     bool filtered = true) const {
    if (chunk.empty()) return Hid(H5P_DEFAULT, nullptr);
    Hid dcpl(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
    if (!dcpl.valid() ||
        H5Pset_chunk(dcpl.get(), static_cast<int>(chunk.size()), chunk.data()) < 0 ||
        (filtered &&
         (H5Pset_shuffle(dcpl.get()) < 0 || H5Pset_deflate(dcpl.get(), kDeflateLevel) < 0))) {
      fail(path, obj, "cannot set up chunking and compression");
    }
    return dcpl;
  }

  void write_dataset(const std::string& p, hid_t stored, hid_t memory, std::size_t element_bytes,
                     const void* data, std::size_t n, std::vector<std::uint64_t> dims) {
    require_open();
    const std::string obj = object_path(p);
    if (dims.empty()) dims = {n};
    if (dims.size() > H5S_MAX_RANK) fail(path, obj, "too many dimensions");
    if (element_count(dims) != n) {
      fail(path, obj, fmt::format("dims {} do not hold the {} values given", dims_text(dims), n));
    }
    require_new(obj);
    const std::vector<hsize_t> hdims = to_hsize(dims);
    Hid space(H5Screate_simple(static_cast<int>(hdims.size()), hdims.data(), nullptr), H5Sclose);
    if (!space.valid()) fail(path, obj, "cannot create dataspace " + dims_text(dims));
    const std::vector<hsize_t> chunk = chunk_shape(hdims, element_bytes);
    Hid dcpl = creation_plist(chunk, obj);
    Hid ds(H5Dcreate2(file.get(), obj.c_str(), stored, space.get(), lcpl.get(), dcpl.get(),
                      H5P_DEFAULT),
           H5Dclose);
    if (!ds.valid()) fail(path, obj, "cannot create dataset");
    if (n == 0) return;
    if (can_write_chunks(hdims, chunk, stored, memory)) {
      write_chunks(ds.get(), hdims, chunk, element_bytes, static_cast<const unsigned char*>(data),
                   obj);
      return;
    }
    if (H5Dwrite(ds.get(), memory, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0) {
      fail(path, obj, "cannot write dataset");
    }
  }

  // The pre-filtered path needs plain numbers (a variable-length string in memory is a pointer,
  // its stored form a heap reference HDF5 makes), whole rows per chunk (so a chunk is one
  // contiguous slice of the data) and a memory layout equal to the stored one.
  static bool can_write_chunks(const std::vector<hsize_t>& dims, const std::vector<hsize_t>& chunk,
                               hid_t stored, hid_t memory) {
    if (chunk.empty()) return false;
    const H5T_class_t kind = H5Tget_class(stored);
    const bool fixed_string = kind == H5T_STRING && H5Tis_variable_str(stored) == 0;
    if (kind != H5T_INTEGER && kind != H5T_FLOAT && !fixed_string) return false;
    for (std::size_t i = 1; i < dims.size(); ++i) {
      if (chunk[i] != dims[i]) return false;
    }
    return H5Tequal(stored, memory) > 0;
  }

  // HDF5 runs a dataset's filters (shuffle, deflate) chunk after chunk on the calling thread,
  // which made deflate most of the time spent writing a results file. Here the chunks run the
  // same two filters in parallel (HDF5's byte shuffle, then deflate at the same level into the
  // zlib format H5Z's deflate filter reads), and H5Dwrite_chunk stores them in order. Deflate is
  // libdeflate's: 2.2x zlib's speed at level 1 on shuffled floats, and 8% smaller. Any HDF5
  // reader inflates the chunks (tests/test_hdf5.cpp inflates them with zlib and compares them
  // with what HDF5's own pipeline stores). A dataset deflate barely shrinks is stored with its
  // chunks' filters skipped (kDeflateKeepRatio).
  // `first_row` (a multiple of the chunk rows) places the data further down a growing dataset.
  void write_chunks(hid_t ds, const std::vector<hsize_t>& dims, const std::vector<hsize_t>& chunk,
                    std::size_t element_bytes, const unsigned char* data, const std::string& obj,
                    std::uint64_t first_row = 0) const {
    std::size_t row_bytes = element_bytes;
    for (std::size_t i = 1; i < dims.size(); ++i) row_bytes *= static_cast<std::size_t>(dims[i]);
    const auto rows = static_cast<std::size_t>(dims[0]);
    const auto chunk_rows = static_cast<std::size_t>(chunk[0]);
    const std::size_t chunk_bytes = chunk_rows * row_bytes;
    const std::size_t chunks = (rows + chunk_rows - 1) / chunk_rows;
    const std::size_t elements = chunk_bytes / element_bytes;
    if (chunks == 0) return;
    // Chunk c as stored unfiltered: the data itself, or for the edge chunk (stored at full size
    // with the fill value 0 past the last row) a padded copy.
    auto chunk_input = [&](std::size_t c, ChunkBytes& raw) {
      const unsigned char* input = data + c * chunk_rows * row_bytes;
      const std::size_t bytes = std::min(chunk_rows, rows - c * chunk_rows) * row_bytes;
      if (bytes == chunk_bytes) return input;
      raw.resize(chunk_bytes);
      std::memcpy(raw.data(), input, bytes);
      std::memset(raw.data() + bytes, 0, chunk_bytes - bytes);
      return static_cast<const unsigned char*>(raw.data());
    };
    auto deflate = [&](std::size_t c, ChunkFilters& f, ChunkBytes& out) {
      if (!f.compressor) {
        f.compressor.reset(libdeflate_alloc_compressor(static_cast<int>(kDeflateLevel)));
        if (!f.compressor) throw std::bad_alloc();
      }
      const unsigned char* input = chunk_input(c, f.raw);
      if (element_bytes > 1) {  // HDF5's shuffle: byte j of every element, then byte j + 1
        f.shuffled.resize(chunk_bytes);
        shuffle_bytes(input, elements, element_bytes, f.shuffled.data());
        input = f.shuffled.data();
      }
      out.resize(libdeflate_zlib_compress_bound(f.compressor.get(), chunk_bytes));
      const std::size_t size =
          libdeflate_zlib_compress(f.compressor.get(), input, chunk_bytes, out.data(), out.size());
      if (size == 0) throw Error(path + ": " + obj + ": deflate failed");
      out.resize(size);
    };
    std::vector<hsize_t> offset(dims.size(), 0);
    auto store = [&](std::size_t c, std::uint32_t mask, const unsigned char* bytes,
                     std::size_t size) {
      offset[0] = static_cast<hsize_t>(first_row + c * chunk_rows);
      if (H5Dwrite_chunk(ds, H5P_DEFAULT, mask, offset.data(), size, bytes) < 0)
        fail(path, obj, "cannot write dataset");
    };
    // Buffers kept across datasets: allocated afresh, each dataset's were faulted in (and
    // zeroed by the kernel) again, a tenth of the write stage at 10M rows on this VM.
    if (packed.size() < kChunksPerBatch) packed.resize(kChunksPerBatch);
    const auto team = static_cast<std::size_t>(omp_get_max_threads());
    if (filters.size() < team) filters.resize(team);
    // The first chunk decides whether deflate pays on this dataset (the decision depends on the
    // data only, so the file is the same at any thread count).
    deflate(0, filters[0], packed[0]);
    if (static_cast<double>(packed[0].size()) >
        kDeflateKeepRatio * static_cast<double>(chunk_bytes)) {
      for (std::size_t c = 0; c < chunks; ++c)
        store(c, kSkipAllFilters, chunk_input(c, filters[0].raw), chunk_bytes);
      return;
    }
    for (std::size_t first = 0; first < chunks; first += kChunksPerBatch) {
      const std::size_t count = std::min(kChunksPerBatch, chunks - first);
      ExceptionCollector errors;
#pragma omp parallel num_threads(static_cast <int>(team)) if (count > 1)
      {
        ChunkFilters& f = filters[static_cast<std::size_t>(omp_get_thread_num())];
#pragma omp for schedule(dynamic, 1)
        for (std::size_t b = 0; b < count; ++b) {
          if (first + b == 0) continue;  // deflated above
          errors.run([&] { deflate(first + b, f, packed[b]); });
        }
      }
      errors.rethrow();
      for (std::size_t b = 0; b < count; ++b)
        store(first + b, 0, packed[b].data(), packed[b].size());
    }
  }

  // Rows in a growing dataset's chunks: the chunk shape write() would give a large dataset, so
  // a streamed result is stored (and compressed) like an in-memory one.
  static constexpr hsize_t kGrowingShapeRows = hsize_t{1} << 32;

  Growing& growing_dataset(const std::string& obj, hid_t stored, std::size_t element_bytes,
                           std::uint64_t cols) {
    auto it = growing.find(obj);
    if (it != growing.end()) {
      if (it->second.cols != cols)
        fail(path, obj,
             fmt::format("appended with {} columns, created with {}", cols, it->second.cols));
      return it->second;
    }
    require_new(obj);
    Growing g;
    g.cols = cols;
    std::vector<hsize_t> dims = {0}, max = {H5S_UNLIMITED};
    std::vector<hsize_t> shape = {kGrowingShapeRows};
    if (cols != 1) {
      dims.push_back(cols);
      max.push_back(cols);
      shape.push_back(cols);
    }
    g.chunk = chunk_shape(shape, element_bytes);
    if (g.chunk.empty()) {  // no deflate filter available: chunked (to grow), unfiltered
      g.chunk = shape;
      g.chunk[0] = std::max<hsize_t>(1, kChunkBytes / (element_bytes * cols));
    }
    // Variable-length strings are heap references: no filter. Fixed-length ones are bytes.
    g.filtered = H5Zfilter_avail(H5Z_FILTER_DEFLATE) > 0 && H5Tis_variable_str(stored) <= 0;
    g.row_bytes = element_bytes * cols;
    Hid space(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), max.data()), H5Sclose);
    if (!space.valid()) fail(path, obj, "cannot create a growing dataspace");
    const Hid dcpl = creation_plist(g.chunk, obj, g.filtered);
    g.ds = Hid(H5Dcreate2(file.get(), obj.c_str(), stored, space.get(), lcpl.get(), dcpl.get(),
                          H5P_DEFAULT),
               H5Dclose);
    if (!g.ds.valid()) fail(path, obj, "cannot create dataset");
    return growing.emplace(obj, std::move(g)).first->second;
  }

  void append_rows(const std::string& p, hid_t stored, hid_t memory, std::size_t element_bytes,
                   const void* data, std::size_t n, std::uint64_t cols) {
    require_open();
    const std::string obj = object_path(p);
    if (cols == 0 || n % cols != 0)
      fail(path, obj, fmt::format("{} values are not whole rows of {} columns", n, cols));
    Growing& g = growing_dataset(obj, stored, element_bytes, cols);
    const std::uint64_t rows = n / cols;
    if (rows == 0) return;
    std::vector<hsize_t> size = {g.rows + rows}, start = {g.rows}, count = {rows};
    if (cols != 1) {
      size.push_back(cols);
      start.push_back(0);
      count.push_back(cols);
    }
    if (g.filtered && H5Tequal(stored, memory) > 0) {
      // Whole chunks, filtered in parallel as write() does; the rest waits in the tail.
      const auto* bytes = static_cast<const unsigned char*>(data);
      std::size_t left = static_cast<std::size_t>(rows);
      const auto chunk_rows = static_cast<std::size_t>(g.chunk[0]);
      if (!g.tail.empty()) {
        const std::size_t have = g.tail.size() / g.row_bytes;
        const std::size_t take = std::min(left, chunk_rows - have);
        g.tail.insert(g.tail.end(), bytes, bytes + take * g.row_bytes);
        bytes += take * g.row_bytes;
        left -= take;
        if (have + take < chunk_rows) return;
        store_rows(g, obj, g.tail.data(), chunk_rows, element_bytes);
        g.tail.clear();
      }
      const std::size_t whole = left - left % chunk_rows;
      if (whole > 0) store_rows(g, obj, bytes, whole, element_bytes);
      g.tail.assign(bytes + whole * g.row_bytes, bytes + left * g.row_bytes);
      return;
    }
    if (H5Dset_extent(g.ds.get(), size.data()) < 0) fail(path, obj, "cannot extend dataset");
    {
      Hid fspace(H5Dget_space(g.ds.get()), H5Sclose);
      Hid mspace(H5Screate_simple(static_cast<int>(count.size()), count.data(), nullptr), H5Sclose);
      if (!fspace.valid() || !mspace.valid() ||
          H5Sselect_hyperslab(fspace.get(), H5S_SELECT_SET, start.data(), nullptr, count.data(),
                              nullptr) < 0 ||
          H5Dwrite(g.ds.get(), memory, mspace.get(), fspace.get(), H5P_DEFAULT, data) < 0) {
        fail(path, obj, "cannot append to dataset");
      }
    }
    g.rows += rows;
  }

  // `rows` rows at the end of a filtered growing dataset, which ends on a chunk edge.
  void store_rows(Growing& g, const std::string& obj, const unsigned char* data, std::size_t rows,
                  std::size_t element_bytes) {
    std::vector<hsize_t> size = {g.rows + rows}, count = {rows};
    if (g.cols != 1) {
      size.push_back(g.cols);
      count.push_back(g.cols);
    }
    if (H5Dset_extent(g.ds.get(), size.data()) < 0) fail(path, obj, "cannot extend dataset");
    write_chunks(g.ds.get(), count, g.chunk, element_bytes, data, obj, g.rows);
    g.rows += rows;
  }

  // Stores every growing dataset's waiting rows (its last chunk, padded) and closes them all.
  void finish_growing() {
    for (auto& [obj, g] : growing) {
      if (g.tail.empty()) continue;
      const std::size_t element_bytes = g.row_bytes / g.cols;
      store_rows(g, obj, g.tail.data(), g.tail.size() / g.row_bytes, element_bytes);
      g.tail.clear();
    }
    growing.clear();
  }

  template <class T>
  void append_numbers(const std::string& p, std::span<const T> v, std::uint64_t cols) {
    constexpr Kind k = kind_of<T>();
    append_rows(p, file_type(k), mem_type(k), sizeof(T), v.data(), v.size(), cols);
  }

  template <class T>
  void write_numbers(const std::string& p, std::span<const T> v, std::vector<std::uint64_t> dims) {
    constexpr Kind k = kind_of<T>();
    write_dataset(p, file_type(k), mem_type(k), sizeof(T), v.data(), v.size(), std::move(dims));
  }

  void check_strings(const std::string& obj, const std::vector<std::string>& v,
                     const std::string& what) const {
    for (std::size_t i = 0; i < v.size(); ++i) {
      if (v[i].find('\0') != std::string::npos) {
        fail(path, obj, fmt::format("{} {} contains a NUL character", what, i));
      }
      const std::size_t bad = invalid_utf8_at(v[i]);
      if (bad != std::string::npos) {
        fail(path, obj, fmt::format("{} {} is not valid UTF-8 (byte {})", what, i, bad));
      }
    }
  }

  // Short strings as one fixed-length UTF-8 type of `size` bytes, NUL-padded: a block of bytes
  // that takes the parallel chunk path like numbers.
  void write_fixed_strings(const std::string& p, const std::vector<std::string>& v,
                           std::size_t size, bool append = false) {
    require_open();
    const std::string obj = object_path(p);
    check_strings(obj, v, "string");
    Hid type(H5Tcopy(H5T_C_S1), H5Tclose);
    if (!type.valid() || H5Tset_size(type.get(), size) < 0 ||
        H5Tset_cset(type.get(), H5T_CSET_UTF8) < 0 ||
        H5Tset_strpad(type.get(), H5T_STR_NULLPAD) < 0)
      fail(path, obj, "cannot build a string type");
    std::vector<char> bytes(v.size() * size, '\0');
    const auto n = static_cast<std::ptrdiff_t>(v.size());
    for (std::size_t i = 0; i < v.size(); ++i)
      if (v[i].size() > size)
        fail(path, obj, fmt::format("string {} is longer than the dataset's {} bytes", i, size));
#pragma omp parallel for schedule(static) if (n > 65536)
    for (std::ptrdiff_t i = 0; i < n; ++i) {
      const std::string& s = v[static_cast<std::size_t>(i)];
      std::memcpy(bytes.data() + static_cast<std::size_t>(i) * size, s.data(), s.size());
    }
    if (append)
      append_rows(p, type.get(), type.get(), size, bytes.data(), v.size(), 1);
    else
      write_dataset(p, type.get(), type.get(), size, bytes.data(), v.size(), {});
  }

  // Checks strings for a string dataset and hands `write` HDF5's UTF-8 variable-length type and
  // the strings as the char pointers it stores.
  template <class Write>
  void with_string_pointers(const std::string& p, const std::vector<std::string>& v,
                            Write&& write) {
    require_open();
    const std::string obj = object_path(p);
    check_strings(obj, v, "string");
    Hid type = utf8_vlen_type();
    if (!type.valid()) fail(path, obj, "cannot build a string type");
    std::vector<const char*> ptrs(v.size());
    for (std::size_t i = 0; i < v.size(); ++i) ptrs[i] = v[i].c_str();
    write(type.get(), ptrs);
  }

  Hid open_object(const std::string& object) const {
    const std::string obj = normalize(object);
    if (obj.empty() || !link_exists(file.get(), obj))
      fail(path, object, "no such group or dataset");
    Hid o(H5Oopen(file.get(), obj.c_str(), H5P_DEFAULT), H5Oclose);
    if (!o.valid()) fail(path, obj, "cannot open");
    return o;
  }

  void write_attr(const std::string& object, const std::string& name, hid_t stored, hid_t memory,
                  const void* data, const std::vector<hsize_t>* dims) {
    require_open();
    if (name.empty()) fail(path, object, "empty attribute name");
    Hid o = open_object(object);
    const std::string obj = normalize(object);
    const htri_t present = H5Aexists(o.get(), name.c_str());
    if (present < 0 || (present > 0 && H5Adelete(o.get(), name.c_str()) < 0)) {
      fail(path, obj, "cannot replace attribute '" + name + "'");
    }
    Hid space = dims == nullptr ? Hid(H5Screate(H5S_SCALAR), H5Sclose)
                                : Hid(H5Screate_simple(1, dims->data(), nullptr), H5Sclose);
    Hid acpl(H5Pcreate(H5P_ATTRIBUTE_CREATE), H5Pclose);
    if (!space.valid() || !acpl.valid() || H5Pset_char_encoding(acpl.get(), H5T_CSET_UTF8) < 0) {
      fail(path, obj, "cannot prepare attribute '" + name + "'");
    }
    Hid a(H5Acreate2(o.get(), name.c_str(), stored, space.get(), acpl.get(), H5P_DEFAULT),
          H5Aclose);
    if (!a.valid()) fail(path, obj, "cannot create attribute '" + name + "'");
    const bool empty = dims != nullptr && (*dims)[0] == 0;
    if (!empty && H5Awrite(a.get(), memory, data) < 0) {
      fail(path, obj, "cannot write attribute '" + name + "'");
    }
  }
};

namespace {

// This machine's name as it goes into temporary file names: letters, digits, '-' and '.' kept,
// anything else '_' (a name with '/' would leave the folder).
std::string host_tag() {
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) != 0 || name[0] == '\0') return "host";
  std::string out(name);
  for (char& c : out) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.') c = '_';
  }
  return out;
}

// Removes "<file>.tmp-<host>-<pid>" files left by processes of this host that no longer exist
// (a run killed with SIGKILL, e.g. by a scheduler after its grace period, cannot remove its own,
// and at scale it is as large as the results). Only this host's: on a shared file system a pid
// from another node says nothing about that node. A pid that exists (even if reused by another
// program) keeps its file.
void remove_stale_temps(const fs::path& folder, const std::string& file, const std::string& host) {
  const std::string prefix = file + ".tmp-" + host + "-";
  std::error_code ec;
  for (fs::directory_iterator it(folder, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) continue;
    const std::string digits = name.substr(prefix.size());
    if (digits.size() > 9 || digits.find_first_not_of("0123456789") != std::string::npos) continue;
    const auto pid = static_cast<pid_t>(std::stol(digits));
    if (pid <= 0 || pid == ::getpid()) continue;
    if (::kill(pid, 0) == 0 || errno != ESRCH) continue;  // alive, or not ours to judge
    std::error_code rm;
    fs::remove(it->path(), rm);
  }
}

}  // namespace

Writer::Writer(std::string path) : impl_(std::make_unique<Impl>()) {
  silence_hdf5();
  impl_->path = std::move(path);
  const std::string& p = impl_->path;
  if (p.empty()) throw Error("HDF5 output: empty file name");
  require_writable_folder(p);
  fs::path folder = fs::path(p).parent_path();
  if (folder.empty()) folder = ".";
  std::error_code ec;
  if (fs::is_directory(fs::status(p, ec))) {
    throw Error(fmt::format("{}: cannot write: it is a folder", p));
  }

  const std::string host = host_tag();
  remove_stale_temps(folder, fs::path(p).filename().string(), host);
  const std::string temp = p + ".tmp-" + host + "-" + std::to_string(::getpid());
  Hid fapl(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
  if (!fapl.valid() || H5Pset_libver_bounds(fapl.get(), H5F_LIBVER_V18, H5F_LIBVER_V18) < 0) {
    fail(p, "/", "cannot set up file access");
  }
  Hid f(H5Fcreate(temp.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.get()), H5Fclose);
  if (!f.valid()) {
    fail(p, "/",
         fmt::format("cannot create temporary file '{}' in folder '{}'", temp, folder.string()));
  }
  impl_->file = std::move(f);
  impl_->temp = temp;
  Hid lcpl(H5Pcreate(H5P_LINK_CREATE), H5Pclose);
  if (!lcpl.valid() || H5Pset_create_intermediate_group(lcpl.get(), 1) < 0 ||
      H5Pset_char_encoding(lcpl.get(), H5T_CSET_UTF8) < 0) {
    fail(p, "/", "cannot set up link creation");
  }
  impl_->lcpl = std::move(lcpl);
}

Writer::~Writer() = default;
Writer::Writer(Writer&&) noexcept = default;
Writer& Writer::operator=(Writer&&) noexcept = default;

const std::string& Writer::path() const noexcept {
  return impl_->path;
}
const std::string& Writer::temp_path() const noexcept {
  return impl_->temp;
}
bool Writer::committed() const noexcept {
  return impl_->committed;
}

void Writer::group(const std::string& path) {
  impl_->require_open();
  const std::string obj = normalize(path);
  if (obj.empty()) throw Error(impl_->path + ": empty group path");
  if (obj == "/") return;
  const H5I_type_t type = object_type(impl_->file.get(), obj);
  if (type == H5I_GROUP) return;
  if (type != H5I_BADID) fail(impl_->path, obj, "exists and is not a group");
  Hid g(H5Gcreate2(impl_->file.get(), obj.c_str(), impl_->lcpl.get(), H5P_DEFAULT, H5P_DEFAULT),
        H5Gclose);
  if (!g.valid()) fail(impl_->path, obj, "cannot create group");
}

void Writer::write(const std::string& path, std::span<const float> v,
                   std::vector<std::uint64_t> dims) {
  impl_->write_numbers(path, v, std::move(dims));
}
void Writer::write(const std::string& path, std::span<const double> v,
                   std::vector<std::uint64_t> dims) {
  impl_->write_numbers(path, v, std::move(dims));
}
void Writer::write(const std::string& path, std::span<const std::int32_t> v,
                   std::vector<std::uint64_t> dims) {
  impl_->write_numbers(path, v, std::move(dims));
}
void Writer::write(const std::string& path, std::span<const std::int64_t> v,
                   std::vector<std::uint64_t> dims) {
  impl_->write_numbers(path, v, std::move(dims));
}
void Writer::write(const std::string& path, std::span<const std::uint8_t> v,
                   std::vector<std::uint64_t> dims) {
  impl_->write_numbers(path, v, std::move(dims));
}

void Writer::write_strings(const std::string& path, const std::vector<std::string>& v) {
  std::size_t longest = 0;
  for (const std::string& s : v) longest = std::max(longest, s.size());
  if (!v.empty() && longest <= kFixedStringMaxBytes) {
    impl_->write_fixed_strings(path, v, std::max<std::size_t>(1, longest));
    return;
  }
  impl_->with_string_pointers(path, v, [&](hid_t type, const std::vector<const char*>& ptrs) {
    impl_->write_dataset(path, type, type, sizeof(char*), ptrs.data(), ptrs.size(), {});
  });
}

void Writer::append(const std::string& path, std::span<const float> v, std::uint64_t cols) {
  impl_->append_numbers(path, v, cols);
}
void Writer::append(const std::string& path, std::span<const double> v, std::uint64_t cols) {
  impl_->append_numbers(path, v, cols);
}
void Writer::append(const std::string& path, std::span<const std::int32_t> v, std::uint64_t cols) {
  impl_->append_numbers(path, v, cols);
}
void Writer::append(const std::string& path, std::span<const std::int64_t> v, std::uint64_t cols) {
  impl_->append_numbers(path, v, cols);
}
void Writer::append(const std::string& path, std::span<const std::uint8_t> v, std::uint64_t cols) {
  impl_->append_numbers(path, v, cols);
}

void Writer::append_strings(const std::string& path, const std::vector<std::string>& v,
                            std::size_t fixed_bytes) {
  if (fixed_bytes > 0 && fixed_bytes <= kFixedStringMaxBytes) {
    impl_->write_fixed_strings(path, v, fixed_bytes, true);
    return;
  }
  impl_->with_string_pointers(path, v, [&](hid_t type, const std::vector<const char*>& ptrs) {
    impl_->append_rows(path, type, type, sizeof(char*), ptrs.data(), ptrs.size(), 1);
  });
}

void Writer::attr(const std::string& object, const std::string& name, double v) {
  impl_->write_attr(object, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &v, nullptr);
}

void Writer::attr(const std::string& object, const std::string& name, std::int64_t v) {
  impl_->write_attr(object, name, H5T_STD_I64LE, H5T_NATIVE_INT64, &v, nullptr);
}

void Writer::attr(const std::string& object, const std::string& name, const std::string& v) {
  impl_->require_open();
  impl_->check_strings(normalize(object), {v}, "attribute '" + name + "' string");
  Hid type = utf8_vlen_type();
  if (!type.valid()) fail(impl_->path, object, "cannot build a string type");
  const char* p = v.c_str();
  impl_->write_attr(object, name, type.get(), type.get(), &p, nullptr);
}

void Writer::attr(const std::string& object, const std::string& name, std::span<const double> v) {
  const std::vector<hsize_t> dims = {v.size()};
  impl_->write_attr(object, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, v.data(), &dims);
}

void Writer::write_table(const std::string& path, const Table& t) {
  impl_->require_open();
  const std::string obj = impl_->object_path(path);
  if (t.fields.empty()) fail(impl_->path, obj, "a table needs at least one field");
  const std::size_t rows = t.rows();
  std::set<std::string> names;
  Hid string_type = utf8_vlen_type();
  if (!string_type.valid()) fail(impl_->path, obj, "cannot build a string type");

  // Packed record layout: 8 bytes per number, one pointer per string.
  std::vector<std::size_t> offsets;
  std::size_t record = 0;
  for (const TableField& f : t.fields) {
    if (f.name.empty()) fail(impl_->path, obj, "a table field has an empty name");
    if (!names.insert(f.name).second) fail(impl_->path, obj, "duplicate field '" + f.name + "'");
    if (f.size() != rows) {
      fail(impl_->path, obj,
           fmt::format("field '{}' has {} rows, field '{}' has {}", f.name, f.size(),
                       t.fields.front().name, rows));
    }
    if (const auto* s = std::get_if<std::vector<std::string>>(&f.values)) {
      impl_->check_strings(obj, *s, "field '" + f.name + "' row");
    }
    offsets.push_back(record);
    record += std::holds_alternative<std::vector<std::string>>(f.values) ? sizeof(char*) : 8;
  }

  Hid compound(H5Tcreate(H5T_COMPOUND, record), H5Tclose);
  if (!compound.valid()) fail(impl_->path, obj, "cannot build the record type");
  std::vector<unsigned char> buffer(rows * record);
  for (std::size_t j = 0; j < t.fields.size(); ++j) {
    const TableField& f = t.fields[j];
    hid_t member = H5I_INVALID_HID;
    std::visit(
        [&](const auto& values) {
          using V = typename std::decay_t<decltype(values)>::value_type;
          for (std::size_t i = 0; i < rows; ++i) {
            unsigned char* dst = buffer.data() + i * record + offsets[j];
            if constexpr (std::same_as<V, std::string>) {
              const char* p = values[i].c_str();
              std::memcpy(dst, &p, sizeof p);
            } else {
              std::memcpy(dst, &values[i], sizeof(V));
            }
          }
          if constexpr (std::same_as<V, std::string>) {
            member = string_type.get();
          } else if constexpr (std::same_as<V, double>) {
            member = H5T_NATIVE_DOUBLE;
          } else {
            member = H5T_NATIVE_INT64;
          }
        },
        f.values);
    if (H5Tinsert(compound.get(), f.name.c_str(), offsets[j], member) < 0) {
      fail(impl_->path, obj, "cannot add field '" + f.name + "'");
    }
  }
  impl_->write_dataset(path, compound.get(), compound.get(), record, buffer.data(), rows, {});
}

void Writer::commit() {
  impl_->require_open();
  Impl& w = *impl_;
  w.finish_growing();
  if (H5Fflush(w.file.get(), H5F_SCOPE_GLOBAL) < 0) fail(w.path, "/", "cannot flush");
  w.lcpl.reset();
  if (w.file.close() < 0) fail(w.path, "/", "cannot close temporary file '" + w.temp + "'");
  // Data must be on disk before the rename makes it visible, or a crash could leave a
  // truncated file under the final name.
  const int fd = ::open(w.temp.c_str(), O_RDONLY);
  if (fd < 0 || ::fsync(fd) != 0) {
    const int err = errno;
    if (fd >= 0) ::close(fd);
    throw Error(
        fmt::format("{}: cannot sync temporary file '{}': {}", w.path, w.temp, std::strerror(err)));
  }
  ::close(fd);
  std::error_code ec;
  fs::rename(w.temp, w.path, ec);
  if (ec) {
    throw Error(fmt::format("{}: cannot rename '{}' over it: {}", w.path, w.temp, ec.message()));
  }
  w.committed = true;
  // Best effort: persist the rename itself.
  fs::path folder = fs::path(w.path).parent_path();
  if (folder.empty()) folder = ".";
  const int dir = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY);
  if (dir >= 0) {
    (void)::fsync(dir);
    ::close(dir);
  }
}

// ------------------------------------------------------------------------------------------
// Reader

struct Reader::Impl {
  std::string path;
  Hid file;

  std::string object_path(const std::string& p) const {
    std::string obj = normalize(p);
    if (obj.empty()) throw Error(path + ": empty object path");
    return obj;
  }

  Hid open_dataset(const std::string& p) const {
    const std::string obj = object_path(p);
    const H5I_type_t type = object_type(file.get(), obj);
    if (type == H5I_BADID) fail(path, obj, "no such dataset");
    if (type != H5I_DATASET) fail(path, obj, "is not a dataset");
    Hid ds(H5Dopen2(file.get(), obj.c_str(), H5P_DEFAULT), H5Dclose);
    if (!ds.valid()) fail(path, obj, "cannot open dataset");
    return ds;
  }

  Hid open_attr(const std::string& object, const std::string& name) const {
    const std::string obj = object_path(object);
    if (!link_exists(file.get(), obj)) fail(path, obj, "no such group or dataset");
    const htri_t present = H5Aexists_by_name(file.get(), obj.c_str(), name.c_str(), H5P_DEFAULT);
    if (present < 0) fail(path, obj, "cannot look up attribute '" + name + "'");
    if (present == 0) fail(path, obj, "no attribute '" + name + "'");
    Hid a(H5Aopen_by_name(file.get(), obj.c_str(), name.c_str(), H5P_DEFAULT, H5P_DEFAULT),
          H5Aclose);
    if (!a.valid()) fail(path, obj, "cannot open attribute '" + name + "'");
    return a;
  }

  static std::size_t point_count(hid_t space) {
    const hssize_t n = H5Sget_simple_extent_npoints(space);
    return n < 0 ? 0 : static_cast<std::size_t>(n);
  }

  template <class T>
  std::vector<T> read_attr_numbers(const std::string& object, const std::string& name) const {
    constexpr Kind k = kind_of<T>();
    const std::string obj = object_path(object);
    Hid a = open_attr(obj, name);
    Hid type(H5Aget_type(a.get()), H5Tclose);
    Hid space(H5Aget_space(a.get()), H5Sclose);
    if (!type.valid() || !space.valid()) fail(path, obj, "cannot inspect attribute '" + name + "'");
    if (!converts_losslessly(type.get(), k)) {
      fail(path, obj,
           fmt::format("attribute '{}' is {}, which does not convert losslessly to {}", name,
                       describe(type.get()), kind_name(k)));
    }
    std::vector<T> out(point_count(space.get()));
    if (!out.empty() && H5Aread(a.get(), mem_type(k), out.data()) < 0) {
      fail(path, obj, "cannot read attribute '" + name + "'");
    }
    return out;
  }

  template <class T>
  T read_attr_scalar(const std::string& object, const std::string& name) const {
    std::vector<T> v = read_attr_numbers<T>(object, name);
    if (v.size() != 1) {
      fail(path, normalize(object),
           fmt::format("attribute '{}' has {} values, expected one", name, v.size()));
    }
    return v[0];
  }
};

Reader::Reader(const std::string& path) : impl_(std::make_unique<Impl>()) {
  silence_hdf5();
  impl_->path = path;
  std::error_code ec;
  const fs::file_status status = fs::status(path, ec);
  if (!fs::exists(status)) throw Error(path + ": no such file");
  if (fs::is_directory(status)) throw Error(path + ": is a folder, not an HDF5 file");
  if (H5Fis_hdf5(path.c_str()) <= 0) {
    H5Eclear2(H5E_DEFAULT);
    throw Error(path + ": not an HDF5 file");
  }
  Hid f(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
  if (!f.valid()) fail(path, "/", "cannot open");
  impl_->file = std::move(f);
}

Reader::~Reader() = default;
Reader::Reader(Reader&&) noexcept = default;
Reader& Reader::operator=(Reader&&) noexcept = default;

const std::string& Reader::path() const noexcept {
  return impl_->path;
}

bool Reader::exists(const std::string& path) const {
  const std::string obj = normalize(path);
  return !obj.empty() && link_exists(impl_->file.get(), obj);
}

bool Reader::is_group(const std::string& path) const {
  const std::string obj = normalize(path);
  return !obj.empty() && object_type(impl_->file.get(), obj) == H5I_GROUP;
}

bool Reader::is_dataset(const std::string& path) const {
  const std::string obj = normalize(path);
  return !obj.empty() && object_type(impl_->file.get(), obj) == H5I_DATASET;
}

std::vector<std::uint64_t> Reader::dims(const std::string& path) const {
  Hid ds = impl_->open_dataset(path);
  Hid space(H5Dget_space(ds.get()), H5Sclose);
  const int rank = space.valid() ? H5Sget_simple_extent_ndims(space.get()) : -1;
  if (rank < 0) fail(impl_->path, normalize(path), "cannot read the shape");
  std::vector<hsize_t> d(static_cast<std::size_t>(rank));
  if (rank > 0 && H5Sget_simple_extent_dims(space.get(), d.data(), nullptr) < 0) {
    fail(impl_->path, normalize(path), "cannot read the shape");
  }
  return {d.begin(), d.end()};
}

template <Element T>
std::vector<T> Reader::read(const std::string& path) const {
  constexpr Kind k = kind_of<T>();
  const std::string obj = impl_->object_path(path);
  Hid ds = impl_->open_dataset(obj);
  Hid type(H5Dget_type(ds.get()), H5Tclose);
  Hid space(H5Dget_space(ds.get()), H5Sclose);
  if (!type.valid() || !space.valid()) fail(impl_->path, obj, "cannot inspect dataset");
  if (!converts_losslessly(type.get(), k)) {
    fail(impl_->path, obj,
         fmt::format("dataset is {}, which does not convert losslessly to {}", describe(type.get()),
                     kind_name(k)));
  }
  std::vector<T> out(Impl::point_count(space.get()));
  if (!out.empty() &&
      H5Dread(ds.get(), mem_type(k), H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()) < 0) {
    fail(impl_->path, obj, "cannot read dataset");
  }
  return out;
}

template std::vector<float> Reader::read<float>(const std::string&) const;
template std::vector<double> Reader::read<double>(const std::string&) const;
template std::vector<std::int32_t> Reader::read<std::int32_t>(const std::string&) const;
template std::vector<std::int64_t> Reader::read<std::int64_t>(const std::string&) const;
template std::vector<std::uint8_t> Reader::read<std::uint8_t>(const std::string&) const;

std::vector<std::string> Reader::read_strings(const std::string& path) const {
  const std::string obj = impl_->object_path(path);
  Hid ds = impl_->open_dataset(obj);
  Hid type(H5Dget_type(ds.get()), H5Tclose);
  Hid space(H5Dget_space(ds.get()), H5Sclose);
  if (!type.valid() || !space.valid()) fail(impl_->path, obj, "cannot inspect dataset");
  if (H5Tget_class(type.get()) != H5T_STRING) {
    fail(impl_->path, obj, "dataset is " + describe(type.get()) + ", not strings");
  }
  return read_string_values(impl_->path, obj, type.get(), Impl::point_count(space.get()),
                            [&](hid_t mt, void* buf) {
                              return H5Dread(ds.get(), mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
                            });
}

namespace {

// File and memory dataspaces selecting elements [first, first + count) of a 1-D dataset.
struct RowSelection {
  Hid file;
  Hid memory;
  std::uint64_t per_row = 1;  // elements in one row (the product of the dimensions after the first)
};

/// Rows [first, first + count) along the first dimension, whole along the others (`one_d`: the
/// dataset must be 1-D).
RowSelection select_rows(const std::string& file_path, const std::string& obj, hid_t ds,
                         std::uint64_t first, std::uint64_t count, bool one_d) {
  RowSelection sel{Hid(H5Dget_space(ds), H5Sclose), Hid()};
  if (!sel.file.valid()) fail(file_path, obj, "cannot inspect dataset");
  const int rank = H5Sget_simple_extent_ndims(sel.file.get());
  if (rank < 1 || (one_d && rank != 1))
    fail(file_path, obj, one_d ? "is not 1-D" : "is a scalar, not rows");
  std::vector<hsize_t> dims(static_cast<std::size_t>(rank));
  H5Sget_simple_extent_dims(sel.file.get(), dims.data(), nullptr);
  const hsize_t n = dims[0];
  if (first > n || count > n - first)
    fail(file_path, obj,
         fmt::format("rows {}..{} pass the end ({} rows)", first, first + count, n));
  std::vector<hsize_t> start(dims.size(), 0);
  std::vector<hsize_t> size = dims;
  start[0] = first;
  size[0] = std::max<hsize_t>(count, 1);
  for (std::size_t t = 1; t < dims.size(); ++t) sel.per_row *= dims[t];
  sel.memory = Hid(H5Screate_simple(rank, size.data(), nullptr), H5Sclose);
  if (!sel.memory.valid() || H5Sselect_hyperslab(sel.file.get(), H5S_SELECT_SET, start.data(),
                                                 nullptr, size.data(), nullptr) < 0)
    fail(file_path, obj, "cannot select rows");
  return sel;
}

}  // namespace

template <Element T>
std::vector<T> Reader::read_rows(const std::string& path, std::uint64_t first,
                                 std::uint64_t count) const {
  constexpr Kind k = kind_of<T>();
  const std::string obj = impl_->object_path(path);
  Hid ds = impl_->open_dataset(obj);
  Hid type(H5Dget_type(ds.get()), H5Tclose);
  if (!type.valid()) fail(impl_->path, obj, "cannot inspect dataset");
  if (!converts_losslessly(type.get(), k)) {
    fail(impl_->path, obj,
         fmt::format("dataset is {}, which does not convert losslessly to {}", describe(type.get()),
                     kind_name(k)));
  }
  const RowSelection sel = select_rows(impl_->path, obj, ds.get(), first, count, false);
  std::vector<T> out(count * sel.per_row);
  if (count > 0 && H5Dread(ds.get(), mem_type(k), sel.memory.get(), sel.file.get(), H5P_DEFAULT,
                           out.data()) < 0) {
    fail(impl_->path, obj, "cannot read dataset");
  }
  return out;
}

template std::vector<float> Reader::read_rows<float>(const std::string&, std::uint64_t,
                                                     std::uint64_t) const;
template std::vector<double> Reader::read_rows<double>(const std::string&, std::uint64_t,
                                                       std::uint64_t) const;
template std::vector<std::int32_t> Reader::read_rows<std::int32_t>(const std::string&,
                                                                   std::uint64_t,
                                                                   std::uint64_t) const;
template std::vector<std::int64_t> Reader::read_rows<std::int64_t>(const std::string&,
                                                                   std::uint64_t,
                                                                   std::uint64_t) const;
template std::vector<std::uint8_t> Reader::read_rows<std::uint8_t>(const std::string&,
                                                                   std::uint64_t,
                                                                   std::uint64_t) const;

std::vector<std::string> Reader::read_string_rows(const std::string& path, std::uint64_t first,
                                                  std::uint64_t count) const {
  const std::string obj = impl_->object_path(path);
  Hid ds = impl_->open_dataset(obj);
  Hid type(H5Dget_type(ds.get()), H5Tclose);
  if (!type.valid()) fail(impl_->path, obj, "cannot inspect dataset");
  if (H5Tget_class(type.get()) != H5T_STRING) {
    fail(impl_->path, obj, "dataset is " + describe(type.get()) + ", not strings");
  }
  const RowSelection sel = select_rows(impl_->path, obj, ds.get(), first, count, true);
  if (count == 0) return {};
  return read_string_values(impl_->path, obj, type.get(), count, [&](hid_t mt, void* buf) {
    return H5Dread(ds.get(), mt, sel.memory.get(), sel.file.get(), H5P_DEFAULT, buf);
  });
}

bool Reader::has_attr(const std::string& object, const std::string& name) const {
  const std::string obj = normalize(object);
  if (obj.empty() || !link_exists(impl_->file.get(), obj)) return false;
  const htri_t r = H5Aexists_by_name(impl_->file.get(), obj.c_str(), name.c_str(), H5P_DEFAULT);
  if (r < 0) H5Eclear2(H5E_DEFAULT);
  return r > 0;
}

double Reader::attr_double(const std::string& object, const std::string& name) const {
  return impl_->read_attr_scalar<double>(object, name);
}

std::int64_t Reader::attr_int(const std::string& object, const std::string& name) const {
  return impl_->read_attr_scalar<std::int64_t>(object, name);
}

std::vector<double> Reader::attr_doubles(const std::string& object, const std::string& name) const {
  return impl_->read_attr_numbers<double>(object, name);
}

std::string Reader::attr_string(const std::string& object, const std::string& name) const {
  const std::string obj = impl_->object_path(object);
  Hid a = impl_->open_attr(obj, name);
  Hid type(H5Aget_type(a.get()), H5Tclose);
  Hid space(H5Aget_space(a.get()), H5Sclose);
  if (!type.valid() || !space.valid()) {
    fail(impl_->path, obj, "cannot inspect attribute '" + name + "'");
  }
  if (H5Tget_class(type.get()) != H5T_STRING) {
    fail(impl_->path, obj,
         fmt::format("attribute '{}' is {}, not a string", name, describe(type.get())));
  }
  const std::size_t n = Impl::point_count(space.get());
  if (n != 1) {
    fail(impl_->path, obj, fmt::format("attribute '{}' has {} values, expected one", name, n));
  }
  return read_string_values(impl_->path, obj, type.get(), 1,
                            [&](hid_t mt, void* buf) { return H5Aread(a.get(), mt, buf); })[0];
}

Table Reader::read_table(const std::string& path) const {
  const std::string obj = impl_->object_path(path);
  Hid ds = impl_->open_dataset(obj);
  Hid type(H5Dget_type(ds.get()), H5Tclose);
  Hid space(H5Dget_space(ds.get()), H5Sclose);
  if (!type.valid() || !space.valid()) fail(impl_->path, obj, "cannot inspect dataset");
  if (H5Tget_class(type.get()) != H5T_COMPOUND) {
    fail(impl_->path, obj, "dataset is " + describe(type.get()) + ", not a compound table");
  }
  const std::size_t rows = Impl::point_count(space.get());
  const int members = H5Tget_nmembers(type.get());
  if (members < 0) fail(impl_->path, obj, "cannot list the table's fields");

  Table table;
  for (unsigned j = 0; j < static_cast<unsigned>(members); ++j) {
    char* raw_name = H5Tget_member_name(type.get(), j);
    if (raw_name == nullptr) fail(impl_->path, obj, "cannot read a field name");
    std::string name(raw_name);
    H5free_memory(raw_name);
    Hid member(H5Tget_member_type(type.get(), j), H5Tclose);
    if (!member.valid()) fail(impl_->path, obj, "cannot read field '" + name + "'");

    // Read one member at a time through a one-member compound: HDF5 matches members by name.
    auto read_member = [&](hid_t value_type, void* buf) -> herr_t {
      Hid one(H5Tcreate(H5T_COMPOUND, H5Tget_size(value_type)), H5Tclose);
      if (!one.valid() || H5Tinsert(one.get(), name.c_str(), 0, value_type) < 0) return -1;
      return H5Dread(ds.get(), one.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
    };
    auto read_numbers = [&](auto tag) {
      using T = decltype(tag);
      constexpr Kind k = kind_of<T>();
      if (!converts_losslessly(member.get(), k)) {
        fail(impl_->path, obj,
             fmt::format("field '{}' is {}, which does not convert losslessly to {}", name,
                         describe(member.get()), kind_name(k)));
      }
      std::vector<T> values(rows);
      if (rows > 0 && read_member(mem_type(k), values.data()) < 0) {
        fail(impl_->path, obj, "cannot read field '" + name + "'");
      }
      return values;
    };

    TableField field;
    field.name = name;
    switch (H5Tget_class(member.get())) {
      case H5T_INTEGER:
        field.values = read_numbers(std::int64_t{});
        break;
      case H5T_FLOAT:
        field.values = read_numbers(double{});
        break;
      case H5T_STRING:
        field.values = read_string_values(impl_->path, obj, member.get(), rows, read_member);
        break;
      default:
        fail(impl_->path, obj,
             fmt::format("field '{}' is {}, not a number or string", name, describe(member.get())));
    }
    table.fields.push_back(std::move(field));
  }
  return table;
}

std::vector<std::string> Reader::list(const std::string& group) const {
  const std::string obj = impl_->object_path(group);
  const H5I_type_t type = object_type(impl_->file.get(), obj);
  if (type == H5I_BADID) fail(impl_->path, obj, "no such group");
  if (type != H5I_GROUP) fail(impl_->path, obj, "is not a group");
  Hid g(H5Gopen2(impl_->file.get(), obj.c_str(), H5P_DEFAULT), H5Gclose);
  H5G_info_t info;
  if (!g.valid() || H5Gget_info(g.get(), &info) < 0) fail(impl_->path, obj, "cannot open group");
  std::vector<std::string> names;
  names.reserve(info.nlinks);
  for (hsize_t i = 0; i < info.nlinks; ++i) {
    const ssize_t len =
        H5Lget_name_by_idx(g.get(), ".", H5_INDEX_NAME, H5_ITER_INC, i, nullptr, 0, H5P_DEFAULT);
    if (len < 0) fail(impl_->path, obj, "cannot list group");
    std::string name(static_cast<std::size_t>(len) + 1, '\0');
    if (H5Lget_name_by_idx(g.get(), ".", H5_INDEX_NAME, H5_ITER_INC, i, name.data(), name.size(),
                           H5P_DEFAULT) < 0) {
      fail(impl_->path, obj, "cannot list group");
    }
    name.resize(static_cast<std::size_t>(len));
    names.push_back(std::move(name));
  }
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace icp::h5
