#include <gtest/gtest.h>
#include <hdf5.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "icp/error.hpp"
#include "icp/hdf5.hpp"
#include "test_bits.hpp"

namespace {

namespace fs = std::filesystem;
using icp::h5::Reader;
using icp::h5::Table;
using icp::h5::TableField;
using icp::h5::Writer;

// A fresh folder per test, removed afterwards.
class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    path_ = fs::temp_directory_path() /
            ("icp_h5_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::permissions(path_, fs::perms::owner_all, fs::perm_options::add, ec);
    fs::remove_all(path_, ec);
  }
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  const fs::path& path() const { return path_; }
  std::vector<std::string> entries() const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(path_)) out.push_back(e.path().filename());
    std::sort(out.begin(), out.end());
    return out;
  }

 private:
  fs::path path_;
};

// Runs f, expects icp::Error, and returns its message.
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const icp::Error& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("unexpected exception type: ") + e.what();
  }
  return "no exception";
}

using icp_test::same_bits;

// Raw HDF5 handles for the tests that inspect storage or create types Writer never writes.
struct RawFile {
  hid_t id;
  explicit RawFile(const std::string& path, bool create = false)
      : id(create ? H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT)
                  : H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT)) {}
  ~RawFile() {
    if (id >= 0) H5Fclose(id);
  }
};

void raw_write(hid_t file, const char* name, hid_t type, const std::vector<hsize_t>& dims,
               const void* data) {
  hid_t space = H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr);
  hid_t ds = H5Dcreate2(file, name, type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  ASSERT_GE(ds, 0);
  ASSERT_GE(H5Dwrite(ds, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), 0);
  H5Dclose(ds);
  H5Sclose(space);
}

bool command_exists(const std::string& name) {
  return std::system(("command -v " + name + " > /dev/null 2>&1").c_str()) == 0;
}

int exit_code(int status) {
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// ---------------------------------------------------------------------------------------------

TEST(H5RoundTrip, EveryNumericType) {
  TempDir dir;
  const std::string path = dir.file("types.h5");
  const std::vector<float> f = {0.0f,
                                -0.0f,
                                1.5f,
                                -2.25f,
                                std::numeric_limits<float>::max(),
                                std::numeric_limits<float>::lowest(),
                                std::numeric_limits<float>::denorm_min(),
                                std::numeric_limits<float>::infinity(),
                                std::numeric_limits<float>::quiet_NaN()};
  const std::vector<double> d = {0.1, -1e300, std::numeric_limits<double>::denorm_min(),
                                 std::numeric_limits<double>::quiet_NaN(), 3.0};
  const std::vector<std::int32_t> i32 = {std::numeric_limits<std::int32_t>::min(), -1, 0, 7,
                                         std::numeric_limits<std::int32_t>::max()};
  const std::vector<std::int64_t> i64 = {std::numeric_limits<std::int64_t>::min(), -1, 0,
                                         std::int64_t{1} << 53 | 1,
                                         std::numeric_limits<std::int64_t>::max()};
  const std::vector<std::uint8_t> u8 = {0, 1, 65, 128, 255};
  {
    Writer w(path);
    w.write("/f32", f);
    w.write("/f64", d);
    w.write("/i32", i32);
    w.write("/i64", i64);
    w.write("u8", u8);  // no leading slash: relative to the root
    w.commit();
  }
  Reader r(path);
  EXPECT_TRUE(same_bits(r.read<float>("/f32"), f));
  EXPECT_TRUE(same_bits(r.read<double>("/f64"), d));
  EXPECT_EQ(r.read<std::int32_t>("/i32"), i32);
  EXPECT_EQ(r.read<std::int64_t>("/i64"), i64);
  EXPECT_EQ(r.read<std::uint8_t>("/u8"), u8);
  EXPECT_EQ(r.dims("/f32"), (std::vector<std::uint64_t>{f.size()}));
  EXPECT_EQ(r.dims("/u8"), (std::vector<std::uint64_t>{5}));

  // Stored as fixed little-endian types of the written width.
  RawFile raw(path);
  hid_t ds = H5Dopen2(raw.id, "/i32", H5P_DEFAULT);
  hid_t type = H5Dget_type(ds);
  EXPECT_GT(H5Tequal(type, H5T_STD_I32LE), 0);
  H5Tclose(type);
  H5Dclose(ds);
}

TEST(H5RoundTrip, TwoDimensionalKeepsShapeAndRowMajorOrder) {
  TempDir dir;
  const std::string path = dir.file("m.h5");
  // value = 10 * row + col, so the order is visible in the values themselves.
  std::vector<float> m;
  for (int i = 0; i < 3; ++i) {
    for (int j = 0; j < 4; ++j) m.push_back(static_cast<float>(10 * i + j));
  }
  {
    Writer w(path);
    w.write("/m", m, {3, 4});
    w.write("/cube", std::vector<std::int32_t>{1, 2, 3, 4, 5, 6, 7, 8}, {2, 2, 2});
    w.commit();
  }
  Reader r(path);
  EXPECT_EQ(r.dims("/m"), (std::vector<std::uint64_t>{3, 4}));
  EXPECT_EQ(r.dims("/cube"), (std::vector<std::uint64_t>{2, 2, 2}));
  const std::vector<float> back = r.read<float>("/m");
  ASSERT_EQ(back.size(), 12u);
  EXPECT_EQ(back[1 * 4 + 2], 12.0f);
  EXPECT_EQ(back[2 * 4 + 3], 23.0f);
  EXPECT_EQ(back, m);
}

TEST(H5RoundTrip, DimsThatDoNotMatchTheDataThrow) {
  TempDir dir;
  Writer w(dir.file("x.h5"));
  const std::vector<float> v(6, 1.0f);
  const std::string msg = error_of([&] { w.write("/bad", v, {4, 2}); });
  EXPECT_NE(msg.find("/bad"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[4, 2]"), std::string::npos) << msg;
}

TEST(H5RoundTrip, EmptyDatasets) {
  TempDir dir;
  const std::string path = dir.file("empty.h5");
  {
    Writer w(path);
    w.write("/f", std::vector<float>{});
    w.write("/m", std::vector<double>{}, {0, 5});
    w.write_strings("/s", {});
    Table t;
    TableField a;
    a.name = "a";
    a.values = std::vector<std::int64_t>{};
    TableField b;
    b.name = "b";
    b.values = std::vector<std::string>{};
    t.fields = {a, b};
    w.write_table("/t", t);
    w.commit();
  }
  Reader r(path);
  EXPECT_TRUE(r.read<float>("/f").empty());
  EXPECT_EQ(r.dims("/f"), (std::vector<std::uint64_t>{0}));
  EXPECT_TRUE(r.read<double>("/m").empty());
  EXPECT_EQ(r.dims("/m"), (std::vector<std::uint64_t>{0, 5}));
  EXPECT_TRUE(r.read_strings("/s").empty());
  const Table t = r.read_table("/t");
  ASSERT_EQ(t.fields.size(), 2u);
  EXPECT_EQ(t.fields[0].name, "a");
  EXPECT_EQ(t.rows(), 0u);
  EXPECT_TRUE(std::holds_alternative<std::vector<std::string>>(t.fields[1].values));
}

TEST(H5Convert, LosslessWideningIsAllowed) {
  TempDir dir;
  const std::string path = dir.file("c.h5");
  {
    Writer w(path);
    w.write("/i32", std::vector<std::int32_t>{-5, 2000000000});
    w.write("/f32", std::vector<float>{0.1f});
    w.write("/u8", std::vector<std::uint8_t>{200});
    w.commit();
  }
  Reader r(path);
  EXPECT_EQ(r.read<std::int64_t>("/i32"), (std::vector<std::int64_t>{-5, 2000000000}));
  EXPECT_EQ(r.read<double>("/i32"), (std::vector<double>{-5.0, 2e9}));
  EXPECT_EQ(r.read<double>("/f32"), (std::vector<double>{static_cast<double>(0.1f)}));
  EXPECT_EQ(r.read<std::int32_t>("/u8"), (std::vector<std::int32_t>{200}));
  EXPECT_EQ(r.read<float>("/u8"), (std::vector<float>{200.0f}));
}

TEST(H5Convert, LossyConversionsThrowNamingDatasetAndType) {
  TempDir dir;
  const std::string path = dir.file("c.h5");
  {
    Writer w(path);
    w.write("/grp/f64", std::vector<double>{0.1});
    w.write("/i64", std::vector<std::int64_t>{1});
    w.write("/f32", std::vector<float>{1.0f});
    w.write("/i32", std::vector<std::int32_t>{1});
    w.write_strings("/s", {"x"});
    w.commit();
  }
  Reader r(path);
  std::string msg = error_of([&] { r.read<float>("/grp/f64"); });
  EXPECT_NE(msg.find("/grp/f64"), std::string::npos) << msg;
  EXPECT_NE(msg.find("float64"), std::string::npos) << msg;
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
  msg = error_of([&] { r.read<double>("/i64"); });
  EXPECT_NE(msg.find("int64"), std::string::npos) << msg;
  msg = error_of([&] { r.read<std::int32_t>("/f32"); });
  EXPECT_NE(msg.find("float32"), std::string::npos) << msg;
  EXPECT_NE(error_of([&] { r.read<std::uint8_t>("/i32"); }).find("/i32"), std::string::npos);
  EXPECT_NE(error_of([&] { r.read<std::int32_t>("/i64"); }).find("/i64"), std::string::npos);
  msg = error_of([&] { r.read<float>("/s"); });
  EXPECT_NE(msg.find("string"), std::string::npos) << msg;
  msg = error_of([&] { r.read_strings("/f32"); });
  EXPECT_NE(msg.find("not strings"), std::string::npos) << msg;
}

TEST(H5Convert, ForeignTypesAndFixedLengthStrings) {
  TempDir dir;
  const std::string path = dir.file("foreign.h5");
  {
    RawFile raw(path, true);
    const std::int16_t i16[] = {-32768, 32767};
    raw_write(raw.id, "/i16", H5T_NATIVE_INT16, {2}, i16);
    const std::uint32_t u32[] = {4000000000u};
    raw_write(raw.id, "/u32", H5T_NATIVE_UINT32, {1}, u32);
    // Fixed-length, NUL-padded, as numpy 'S8' arrays are stored.
    hid_t fixed = H5Tcopy(H5T_C_S1);
    H5Tset_size(fixed, 8);
    H5Tset_strpad(fixed, H5T_STR_NULLPAD);
    const char text[] = "ab\0\0\0\0\0\0abcdefgh";
    raw_write(raw.id, "/fixed", fixed, {2}, text);
    H5Tclose(fixed);
  }
  Reader r(path);
  EXPECT_EQ(r.read<float>("/i16"), (std::vector<float>{-32768.0f, 32767.0f}));
  EXPECT_EQ(r.read<std::int32_t>("/i16"), (std::vector<std::int32_t>{-32768, 32767}));
  EXPECT_EQ(r.read<std::int64_t>("/u32"), (std::vector<std::int64_t>{4000000000}));
  EXPECT_EQ(r.read<double>("/u32"), (std::vector<double>{4e9}));
  EXPECT_NE(error_of([&] { r.read<std::int32_t>("/u32"); }).find("uint32"), std::string::npos);
  EXPECT_EQ(r.read_strings("/fixed"), (std::vector<std::string>{"ab", "abcdefgh"}));
}

TEST(H5Strings, Utf8CommasQuotesAndNewlinesRoundTrip) {
  TempDir dir;
  const std::string path = dir.file("s.h5");
  const std::vector<std::string> v = {"plain",
                                      "a,b,c",
                                      "Z\xC3\xBCrich",
                                      "\xE6\x9D\xB1\xE4\xBA\xAC",  // Tokyo in kanji
                                      "\xF0\x9F\x99\x82",          // U+1F642
                                      "",
                                      "say \"hi\"",
                                      "two\nlines"};
  {
    Writer w(path);
    w.write_strings("/ids", v);
    w.commit();
  }
  Reader r(path);
  EXPECT_EQ(r.read_strings("/ids"), v);
  // Short values: fixed-length UTF-8, NUL-padded to the longest ("two\nlines", 9 bytes), which
  // h5py's asstr() decodes like variable-length.
  RawFile raw(path);
  hid_t ds = H5Dopen2(raw.id, "/ids", H5P_DEFAULT);
  hid_t type = H5Dget_type(ds);
  EXPECT_EQ(H5Tis_variable_str(type), 0);
  EXPECT_EQ(H5Tget_size(type), 9u);
  EXPECT_EQ(H5Tget_strpad(type), H5T_STR_NULLPAD);
  EXPECT_EQ(H5Tget_cset(type), H5T_CSET_UTF8);
  H5Tclose(type);
  H5Dclose(ds);
}

TEST(H5Strings, LongValuesStayVariableLength) {
  TempDir dir;
  const std::string path = dir.file("s.h5");
  // One value over 64 bytes would pad every row to its length: the column stays variable-length.
  const std::vector<std::string> v = {"short", std::string(65, 'x'), "", "Z\xC3\xBCrich"};
  {
    Writer w(path);
    w.write_strings("/text", v);
    w.write_strings("/edge", {std::string(64, 'y'), "z"});  // exactly 64 bytes: still fixed
    w.commit();
  }
  Reader r(path);
  EXPECT_EQ(r.read_strings("/text"), v);
  EXPECT_EQ(r.read_strings("/edge"), (std::vector<std::string>{std::string(64, 'y'), "z"}));
  RawFile raw(path);
  for (const auto& [name, variable] : {std::pair{"/text", true}, std::pair{"/edge", false}}) {
    hid_t ds = H5Dopen2(raw.id, name, H5P_DEFAULT);
    hid_t type = H5Dget_type(ds);
    EXPECT_EQ(H5Tis_variable_str(type) > 0, variable) << name;
    EXPECT_EQ(H5Tget_cset(type), H5T_CSET_UTF8) << name;
    H5Tclose(type);
    H5Dclose(ds);
  }
}

TEST(H5Strings, InvalidUtf8AndEmbeddedNulAreRejected) {
  TempDir dir;
  Writer w(dir.file("s.h5"));
  std::string msg = error_of([&] { w.write_strings("/bad", {"ok", "caf\xE9"}); });  // Latin-1
  EXPECT_NE(msg.find("/bad"), std::string::npos) << msg;
  EXPECT_NE(msg.find("string 1"), std::string::npos) << msg;
  EXPECT_NE(error_of([&] { w.write_strings("/ov", {"\xC0\xAF"}); }).find("UTF-8"),
            std::string::npos);  // overlong '/'
  msg = error_of([&] { w.write_strings("/nul", {std::string("a\0b", 3)}); });
  EXPECT_NE(msg.find("NUL"), std::string::npos) << msg;
}

// Layout and filters of a dataset, read with the raw API.
struct Storage {
  H5D_layout_t layout = H5D_LAYOUT_ERROR;
  std::vector<hsize_t> chunk;
  bool shuffle = false;
  bool deflate = false;
  hsize_t bytes = 0;
};

Storage storage_of(const std::string& path, const char* name) {
  Storage s;
  RawFile raw(path);
  hid_t ds = H5Dopen2(raw.id, name, H5P_DEFAULT);
  hid_t dcpl = H5Dget_create_plist(ds);
  s.layout = H5Pget_layout(dcpl);
  if (s.layout == H5D_CHUNKED) {
    s.chunk.resize(8);
    s.chunk.resize(static_cast<std::size_t>(H5Pget_chunk(dcpl, 8, s.chunk.data())));
  }
  const int n = H5Pget_nfilters(dcpl);
  for (int i = 0; i < n; ++i) {
    unsigned flags = 0;
    std::size_t nelem = 0;
    unsigned config = 0;
    const H5Z_filter_t f = H5Pget_filter2(dcpl, static_cast<unsigned>(i), &flags, &nelem, nullptr,
                                          0, nullptr, &config);
    s.shuffle = s.shuffle || f == H5Z_FILTER_SHUFFLE;
    s.deflate = s.deflate || f == H5Z_FILTER_DEFLATE;
  }
  s.bytes = H5Dget_storage_size(ds);
  H5Pclose(dcpl);
  H5Dclose(ds);
  return s;
}

TEST(H5Chunked, LargeDatasetsAreChunkedAndCompressed) {
  TempDir dir;
  const std::string path = dir.file("big.h5");
  const std::size_t n = 100000;
  std::vector<float> big(n);
  for (std::size_t i = 0; i < n; ++i) big[i] = static_cast<float>(i % 1000) * 0.5f;
  std::vector<std::int32_t> wide(40000 * 2);
  for (std::size_t i = 0; i < wide.size(); ++i) wide[i] = static_cast<std::int32_t>(i / 7);
  {
    Writer w(path);
    w.write("/big", big);
    w.write("/wide", wide, {40000, 2});
    w.write("/below", std::vector<float>(65535, 1.0f));
    w.write("/at", std::vector<float>(65536, 1.0f));
    w.commit();
  }
  const Storage s = storage_of(path, "/big");
  EXPECT_EQ(s.layout, H5D_CHUNKED);
  EXPECT_TRUE(s.deflate);
  EXPECT_TRUE(s.shuffle);
  EXPECT_LT(s.bytes, n * sizeof(float) / 2) << "repetitive data should compress well";
  const Storage sw = storage_of(path, "/wide");
  EXPECT_EQ(sw.layout, H5D_CHUNKED);
  ASSERT_EQ(sw.chunk.size(), 2u);
  EXPECT_EQ(sw.chunk[1], 2u) << "a chunk holds whole rows";
  EXPECT_EQ(storage_of(path, "/below").layout, H5D_CONTIGUOUS);
  EXPECT_EQ(storage_of(path, "/at").layout, H5D_CHUNKED);

  Reader r(path);
  EXPECT_EQ(r.read<float>("/big"), big);
  EXPECT_EQ(r.read<std::int32_t>("/wide"), wide);
  EXPECT_EQ(r.dims("/wide"), (std::vector<std::uint64_t>{40000, 2}));
}

// Writes `data` to `name` in a new file with HDF5's own filter pipeline (H5Dwrite through a
// shuffle + deflate creation list with the given chunk shape): the reference for the chunks
// the Writer filters itself.
template <class T>
void write_with_hdf5_filters(const std::string& file, const char* name, const std::vector<T>& data,
                             const std::vector<hsize_t>& dims, const std::vector<hsize_t>& chunk,
                             hid_t type, unsigned level) {
  const hid_t f = H5Fcreate(file.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  const hid_t space = H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr);
  const hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
  H5Pset_chunk(dcpl, static_cast<int>(chunk.size()), chunk.data());
  H5Pset_shuffle(dcpl);
  H5Pset_deflate(dcpl, level);
  const hid_t ds = H5Dcreate2(f, name, type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
  ASSERT_GE(H5Dwrite(ds, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data.data()), 0);
  H5Dclose(ds);
  H5Pclose(dcpl);
  H5Sclose(space);
  H5Fclose(f);
}

// Every stored chunk of `name` in both files, as raw (filtered) bytes with its filter mask.
std::vector<std::vector<unsigned char>> raw_chunks(const std::string& file, const char* name,
                                                   std::vector<hsize_t>& chunk_out) {
  std::vector<std::vector<unsigned char>> out;
  const hid_t f = H5Fopen(file.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  const hid_t ds = H5Dopen2(f, name, H5P_DEFAULT);
  const hid_t space = H5Dget_space(ds);
  const int rank = H5Sget_simple_extent_ndims(space);
  std::vector<hsize_t> dims(static_cast<std::size_t>(rank));
  H5Sget_simple_extent_dims(space, dims.data(), nullptr);
  const hid_t dcpl = H5Dget_create_plist(ds);
  chunk_out.assign(static_cast<std::size_t>(rank), 0);
  H5Pget_chunk(dcpl, rank, chunk_out.data());
  for (hsize_t row = 0; row < dims[0]; row += chunk_out[0]) {
    std::vector<hsize_t> offset(static_cast<std::size_t>(rank), 0);
    offset[0] = row;
    hsize_t bytes = 0;
    EXPECT_GE(H5Dget_chunk_storage_size(ds, offset.data(), &bytes), 0);
    std::vector<unsigned char> buf(bytes);
    std::uint32_t mask = 0xFFFFFFFF;
    EXPECT_GE(H5Dread_chunk(ds, H5P_DEFAULT, offset.data(), &mask, buf.data()), 0);
    EXPECT_EQ(mask, 0u) << "every filter applied to the chunk at row " << row;
    out.push_back(std::move(buf));
  }
  H5Pclose(dcpl);
  H5Sclose(space);
  H5Dclose(ds);
  H5Fclose(f);
  return out;
}

// A zlib-format stream inflated with zlib (what H5Z's deflate filter calls on read); empty when
// it does not inflate.
std::vector<unsigned char> inflated(const std::vector<unsigned char>& stream) {
  std::vector<unsigned char> out(std::size_t{4} << 20);
  uLongf size = static_cast<uLongf>(out.size());
  if (uncompress(out.data(), &size, stream.data(), static_cast<uLong>(stream.size())) != Z_OK) {
    return {};
  }
  out.resize(size);
  return out;
}

TEST(H5Chunked, ParallelFilteredChunksInflateToTheBytesHdf5Stores) {
  TempDir dir;
  const std::string ours = dir.file("ours.h5");
  // Sizes chosen so that the last chunk of each is partial (stored full size, padded).
  const std::size_t n = 1000003;
  std::vector<float> f(n);
  for (std::size_t i = 0; i < n; ++i) f[i] = std::sin(static_cast<float>(i) * 0.001f) * 100.0f;
  std::vector<std::uint8_t> bytes(1200001);
  for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<std::uint8_t>(i * 31 % 7);
  std::vector<std::int64_t> matrix(70001 * 3);
  for (std::size_t i = 0; i < matrix.size(); ++i)
    matrix[i] = static_cast<std::int64_t>(i * i % 977);
  // Short strings are fixed-length: a block of bytes filtered in parallel like the numbers.
  std::vector<std::string> ids(200001);  // 7 bytes each: three chunks, the last partial
  for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = "A" + std::to_string(i * 7919 % 100003);
  {
    Writer w(ours);
    w.write("/f", f);
    w.write("/bytes", bytes);
    w.write("/matrix", matrix, {70001, 3});
    w.write_strings("/ids", ids);
    w.commit();
  }
  Reader r(ours);
  EXPECT_EQ(r.read<float>("/f"), f);
  EXPECT_EQ(r.read<std::uint8_t>("/bytes"), bytes);
  EXPECT_EQ(r.read<std::int64_t>("/matrix"), matrix);
  EXPECT_EQ(storage_of(ours, "/ids").layout, H5D_CHUNKED);
  EXPECT_EQ(r.read_strings("/ids"), ids);

  const auto compare = [&](const char* name, const auto& data, const std::vector<hsize_t>& dims,
                           hid_t type) {
    std::vector<hsize_t> chunk;
    const auto got = raw_chunks(ours, name, chunk);
    ASSERT_GT(got.size(), 1u) << name << ": a test of several chunks";
    const std::string theirs = dir.file(std::string("hdf5") + (name + 1) + ".h5");
    write_with_hdf5_filters(theirs, name, data, dims, chunk, type, 1);
    std::vector<hsize_t> their_chunk;
    const auto want = raw_chunks(theirs, name, their_chunk);
    ASSERT_EQ(got.size(), want.size()) << name;
    // Our deflate is not zlib's, so the stored bytes differ; what they inflate to (with zlib,
    // as HDF5's filter does) is the shuffled chunk HDF5 stores, byte for byte.
    for (std::size_t c = 0; c < got.size(); ++c) {
      EXPECT_EQ(inflated(got[c]), inflated(want[c]))
          << name << ": chunk " << c << " of " << got.size();
    }
  };
  compare("/f", f, {n}, H5T_NATIVE_FLOAT);
  compare("/bytes", bytes, {bytes.size()}, H5T_NATIVE_UINT8);
  compare("/matrix", matrix, {70001, 3}, H5T_NATIVE_INT64);
  std::size_t longest = 0;
  for (const std::string& s : ids) longest = std::max(longest, s.size());
  std::vector<char> padded(ids.size() * longest, '\0');
  for (std::size_t i = 0; i < ids.size(); ++i)
    std::copy(ids[i].begin(), ids[i].end(),
              padded.begin() + static_cast<std::ptrdiff_t>(i * longest));
  const hid_t text = H5Tcopy(H5T_C_S1);
  H5Tset_size(text, longest);
  H5Tset_cset(text, H5T_CSET_UTF8);
  H5Tset_strpad(text, H5T_STR_NULLPAD);
  compare("/ids", padded, {ids.size()}, text);
  H5Tclose(text);
}

TEST(H5Chunked, DataDeflateBarelyShrinksIsStoredWithItsFiltersSkipped) {
  // Random float bits: deflate cannot shrink the mantissa bytes. The dataset keeps its declared
  // pipeline (shuffle, deflate), every chunk is stored raw with both filters masked off, and
  // HDF5's own reader (which honours the masks) reads the values back; a compressible dataset
  // in the same file keeps deflate on every chunk.
  TempDir dir;
  const std::string path = dir.file("noise.h5");
  std::mt19937 gen(9);
  std::uniform_real_distribution<float> u(0.0f, 100.0f);
  std::vector<float> noise(300007);
  for (float& v : noise) v = u(gen);
  std::vector<float> smooth(300007);
  for (std::size_t i = 0; i < smooth.size(); ++i) smooth[i] = static_cast<float>(i / 1000);
  {
    Writer w(path);
    w.write("/noise", noise);
    w.write("/smooth", smooth);
    w.commit();
  }
  Reader r(path);
  EXPECT_EQ(r.read<float>("/noise"), noise);
  EXPECT_EQ(r.read<float>("/smooth"), smooth);
  const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  for (const char* name : {"/noise", "/smooth"}) {
    const hid_t ds = H5Dopen2(f, name, H5P_DEFAULT);
    const hid_t dcpl = H5Dget_create_plist(ds);
    ASSERT_EQ(H5Pget_nfilters(dcpl), 2) << name;
    hsize_t chunk = 0;
    H5Pget_chunk(dcpl, 1, &chunk);
    std::size_t seen = 0;
    for (hsize_t row = 0; row < 300007; row += chunk, ++seen) {
      hsize_t bytes = 0;
      ASSERT_GE(H5Dget_chunk_storage_size(ds, &row, &bytes), 0);
      std::vector<unsigned char> buf(bytes);
      std::uint32_t mask = 0;
      ASSERT_GE(H5Dread_chunk(ds, H5P_DEFAULT, &row, &mask, buf.data()), 0);
      if (std::string(name) == "/noise") {
        EXPECT_EQ(mask, 0x3u) << "row " << row;
        EXPECT_EQ(bytes, chunk * sizeof(float));
      } else {
        EXPECT_EQ(mask, 0u) << "row " << row;
        EXPECT_LT(bytes, chunk * sizeof(float) / 4);
      }
    }
    EXPECT_GT(seen, 1u) << name << ": several chunks";
    H5Pclose(dcpl);
    H5Dclose(ds);
  }
  H5Fclose(f);
}

TEST(H5Append, BlocksReadBackAsOneWriteAndRowRangesReadSlices) {
  TempDir dir;
  const std::string path = dir.file("grow.h5");
  // Block sizes: a chunk-aligned start (parallel filtered chunks), a start inside a chunk (rows
  // wait for a whole chunk), a single row, an empty block; strings variable and fixed-length.
  const std::vector<std::size_t> blocks = {70000, 1, 0, 65536, 12345};
  std::vector<float> all;
  std::vector<std::int32_t> pairs;
  std::vector<std::string> names;
  {
    icp::h5::Writer w(path);
    for (const std::size_t rows : blocks) {
      std::vector<float> f(rows);
      std::vector<std::int32_t> p(rows * 2);
      std::vector<std::string> s(rows);
      for (std::size_t i = 0; i < rows; ++i) {
        f[i] = static_cast<float>(all.size() + i) * 0.25f - 7.0f;
        p[2 * i] = static_cast<std::int32_t>(all.size() + i);
        p[2 * i + 1] = -p[2 * i];
        s[i] = "id-" + std::to_string(all.size() + i);
      }
      w.append("/g/f", std::span<const float>(f));
      w.append("/g/pairs", std::span<const std::int32_t>(p), 2);
      w.append_strings("/g/s", s);
      w.append_strings("/g/fixed", s, 9);  // "id-" and at most six digits
      all.insert(all.end(), f.begin(), f.end());
      pairs.insert(pairs.end(), p.begin(), p.end());
      names.insert(names.end(), s.begin(), s.end());
    }
    EXPECT_NE(error_of([&] {
                w.append("/g/pairs", std::span<const std::int32_t>(pairs), 4);
              }).find("created with 2"),
              std::string::npos);
    EXPECT_NE(
        error_of([&] { w.append_strings("/g/fixed", {"0123456789"}, 9); }).find("longer than"),
        std::string::npos);
    w.commit();
  }
  const icp::h5::Reader rd(path);
  EXPECT_EQ(rd.read_strings("/g/fixed"), names);
  {
    // Fixed-length, so compressed like numbers (a variable-length string is a heap reference).
    const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
    const hid_t ds = H5Dopen2(f, "/g/fixed", H5P_DEFAULT);
    const hid_t type = H5Dget_type(ds);
    EXPECT_EQ(H5Tis_variable_str(type), 0);
    EXPECT_EQ(H5Tget_size(type), 9u);
    const hid_t dcpl = H5Dget_create_plist(ds);
    EXPECT_GE(H5Pget_nfilters(dcpl), 1);
    H5Pclose(dcpl);
    H5Tclose(type);
    H5Dclose(ds);
    H5Fclose(f);
  }
  EXPECT_TRUE(same_bits(rd.read<float>("/g/f"), all));
  EXPECT_EQ(rd.read<std::int32_t>("/g/pairs"), pairs);
  EXPECT_EQ(rd.dims("/g/pairs"), (std::vector<std::uint64_t>{all.size(), 2}));
  EXPECT_EQ(rd.read_strings("/g/s"), names);
  const auto slice = rd.read_rows<float>("/g/f", 69999, 3);
  EXPECT_TRUE(same_bits(slice, std::vector<float>(all.begin() + 69999, all.begin() + 70002)));
  EXPECT_EQ(rd.read_string_rows("/g/s", 70000, 2),
            (std::vector<std::string>{names[70000], names[70001]}));
  EXPECT_TRUE(rd.read_rows<double>("/g/f", all.size(), 0).empty());
  EXPECT_NE(
      error_of([&] { (void)rd.read_rows<float>("/g/f", all.size() - 1, 2); }).find("pass the end"),
      std::string::npos);
  // Rows of an n x 2 dataset come whole, row-major.
  EXPECT_EQ(rd.read_rows<std::int32_t>("/g/pairs", 70000, 2),
            (std::vector<std::int32_t>(pairs.begin() + 140000, pairs.begin() + 140004)));
  EXPECT_NE(error_of([&] {
              (void)rd.read_rows<std::int32_t>("/g/pairs", all.size(), 1);
            }).find("pass the end"),
            std::string::npos);
}

TEST(H5Append, UnevenBlocksStoreNoMoreThanOneWrite) {
  // Blocks that end inside chunks: the rows wait for whole chunks, so the file holds each chunk
  // once, compressed, as one write of everything would (a chunk written padded and then patched
  // through HDF5 would leave its first version behind and cost a second deflate).
  TempDir dir;
  const std::string path = dir.file("uneven.h5");
  std::vector<std::int64_t> all(1000003);
  std::mt19937_64 rng(3);
  for (auto& v : all) v = static_cast<std::int64_t>(rng() % 1000000);
  {
    icp::h5::Writer w(path);
    w.write("/whole", std::span<const std::int64_t>(all));
    for (std::size_t first = 0, b = 0; first < all.size(); ++b) {
      const std::size_t rows = std::min<std::size_t>(all.size() - first, 1000 + 7919 * (b % 13));
      w.append("/blocks", std::span<const std::int64_t>(all).subspan(first, rows));
      first += rows;
    }
    w.commit();
  }
  const icp::h5::Reader rd(path);
  EXPECT_EQ(rd.read<std::int64_t>("/blocks"), all);
  const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  auto stored = [&](const char* name) {
    const hid_t ds = H5Dopen2(f, name, H5P_DEFAULT);
    const hsize_t bytes = H5Dget_storage_size(ds);
    H5Dclose(ds);
    return static_cast<double>(bytes);
  };
  const double whole = stored("/whole");
  EXPECT_LT(stored("/blocks"), 1.0001 * whole) << stored("/blocks") / whole;
  H5Fclose(f);
  EXPECT_LT(static_cast<double>(std::filesystem::file_size(path)), 2.05 * whole + 65536);
}

TEST(H5Attr, EveryTypeOnRootGroupAndDataset) {
  TempDir dir;
  const std::string path = dir.file("a.h5");
  const std::vector<double> tiers = {0.01, 0.05, 0.1, 0.25};
  std::vector<double> large(20000);  // 160 KB: beyond the 64 KiB of compact attribute storage
  for (std::size_t i = 0; i < large.size(); ++i) large[i] = static_cast<double>(i) / 3.0;
  {
    Writer w(path);
    w.write("/seg/size", std::vector<std::int64_t>{3, 4});
    w.attr("/", "format_version", std::int64_t{1});
    w.attr("/", "created_by",
           "icp \xE2\x80\x94 Gr\xC3\xBC\xC3\x9F"
           "e, world");
    w.attr("/seg", "inertia", 12.5);
    w.attr("/seg", "k", 2);  // int: stored as int64
    w.attr("/seg", "converged", true);
    w.attr("/seg", "min", std::numeric_limits<std::int64_t>::min());
    w.attr("/seg/size", "tiers", tiers);
    w.attr("/seg/size", "none", std::span<const double>{});
    w.attr("/seg/size", "large", large);
    w.attr("/seg", "inertia", 7.25);  // replaces the first value
    w.commit();
  }
  Reader r(path);
  EXPECT_EQ(r.attr_int("/", "format_version"), 1);
  EXPECT_EQ(r.attr_string("/", "created_by"),
            "icp \xE2\x80\x94 Gr\xC3\xBC\xC3\x9F"
            "e, world");
  EXPECT_EQ(r.attr_double("/seg", "inertia"), 7.25);
  EXPECT_EQ(r.attr_int("/seg", "k"), 2);
  EXPECT_EQ(r.attr_int("/seg", "converged"), 1);
  EXPECT_EQ(r.attr_int("/seg", "min"), std::numeric_limits<std::int64_t>::min());
  EXPECT_EQ(r.attr_doubles("/seg/size", "tiers"), tiers);
  EXPECT_TRUE(r.attr_doubles("/seg/size", "none").empty());
  EXPECT_EQ(r.attr_doubles("/seg/size", "large"), large);
  EXPECT_TRUE(r.has_attr("/seg", "k"));
  EXPECT_FALSE(r.has_attr("/seg", "nope"));
  EXPECT_FALSE(r.has_attr("/missing", "k"));

  std::string msg = error_of([&] { r.attr_int("/seg", "inertia"); });
  EXPECT_NE(msg.find("float64"), std::string::npos) << msg;
  msg = error_of([&] { r.attr_double("/seg", "nope"); });
  EXPECT_NE(msg.find("/seg"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'nope'"), std::string::npos) << msg;
  msg = error_of([&] { r.attr_double("/seg/size", "tiers"); });
  EXPECT_NE(msg.find("4 values"), std::string::npos) << msg;
  msg = error_of([&] { r.attr_string("/seg", "k"); });
  EXPECT_NE(msg.find("not a string"), std::string::npos) << msg;
}

TEST(H5Attr, MissingObjectAndOutOfRangeIntegerThrow) {
  TempDir dir;
  Writer w(dir.file("a.h5"));
  std::string msg = error_of([&] { w.attr("/nowhere", "x", 1.0); });
  EXPECT_NE(msg.find("/nowhere"), std::string::npos) << msg;
  msg = error_of([&] { w.attr("/", "big", std::numeric_limits<std::uint64_t>::max()); });
  EXPECT_NE(msg.find("'big'"), std::string::npos) << msg;
}

Table sample_table() {
  Table t;
  TableField id;
  id.name = "id";
  id.values = std::vector<std::string>{"acme, inc.", "Soci\xC3\xA9t\xC3\xA9", ""};
  TableField count;
  count.name = "count";
  count.values = std::vector<std::int64_t>{std::numeric_limits<std::int64_t>::min(), 0, 42};
  TableField score;
  score.name = "score";
  score.values = std::vector<double>{0.5, -1.25, 1e-300};
  t.fields = {id, count, score};
  return t;
}

TEST(H5Table, AllFieldTypesRoundTripInOrder) {
  TempDir dir;
  const std::string path = dir.file("t.h5");
  const Table t = sample_table();
  {
    Writer w(path);
    w.write_table("/icp/summary", t);
    w.commit();
  }
  Reader r(path);
  EXPECT_EQ(r.dims("/icp/summary"), (std::vector<std::uint64_t>{3}));
  const Table back = r.read_table("/icp/summary");
  ASSERT_EQ(back.fields.size(), 3u);
  EXPECT_EQ(back.fields[0].name, "id");
  EXPECT_EQ(back.fields[1].name, "count");
  EXPECT_EQ(back.fields[2].name, "score");
  EXPECT_EQ(std::get<std::vector<std::string>>(back.fields[0].values),
            std::get<std::vector<std::string>>(t.fields[0].values));
  EXPECT_EQ(std::get<std::vector<std::int64_t>>(back.fields[1].values),
            std::get<std::vector<std::int64_t>>(t.fields[1].values));
  EXPECT_EQ(std::get<std::vector<double>>(back.fields[2].values),
            std::get<std::vector<double>>(t.fields[2].values));
  EXPECT_EQ(back.rows(), 3u);
}

TEST(H5Table, InvalidTablesAreRejected) {
  TempDir dir;
  const std::string path = dir.file("t.h5");
  Writer w(path);
  Table t = sample_table();
  std::get<std::vector<double>>(t.fields[2].values).pop_back();
  std::string msg = error_of([&] { w.write_table("/t", t); });
  EXPECT_NE(msg.find("'score' has 2 rows"), std::string::npos) << msg;
  t = sample_table();
  t.fields[2].name = "id";
  EXPECT_NE(error_of([&] { w.write_table("/t", t); }).find("duplicate field 'id'"),
            std::string::npos);
  EXPECT_NE(error_of([&] { w.write_table("/t", Table{}); }).find("at least one field"),
            std::string::npos);
  w.write("/plain", std::vector<float>{1.0f});
  w.commit();
  Reader r(path);
  msg = error_of([&] { r.read_table("/plain"); });
  EXPECT_NE(msg.find("not a compound table"), std::string::npos) << msg;
}

TEST(H5Groups, NestedGroupsExistsAndList) {
  TempDir dir;
  const std::string path = dir.file("g.h5");
  {
    Writer w(path);
    w.group("/a/b/c");
    w.group("/a/b");  // existing: no-op
    w.write("/x/y/z", std::vector<float>{1.0f});
    for (const char* name : {"/names/zeta", "/names/alpha", "/names/Beta", "/names/mid"}) {
      w.write(name, std::vector<std::uint8_t>{1});
    }
    EXPECT_NE(error_of([&] { w.group("/x/y/z"); }).find("not a group"), std::string::npos);
    const std::string msg = error_of([&] { w.write("/x/y/z", std::vector<float>{2.0f}); });
    EXPECT_NE(msg.find("already exists"), std::string::npos) << msg;
    w.commit();
  }
  Reader r(path);
  EXPECT_TRUE(r.exists("/"));
  EXPECT_TRUE(r.exists("/a/b/c"));
  EXPECT_TRUE(r.is_group("/a/b/c"));
  EXPECT_TRUE(r.is_dataset("/x/y/z"));
  EXPECT_FALSE(r.is_group("/x/y/z"));
  EXPECT_FALSE(r.exists("/a/missing/deep"));
  EXPECT_FALSE(r.exists("/x/y/z/below_a_dataset"));
  EXPECT_EQ(r.list("/"), (std::vector<std::string>{"a", "names", "x"}));
  EXPECT_EQ(r.list("/a/b"), (std::vector<std::string>{"c"}));
  EXPECT_TRUE(r.list("/a/b/c").empty());
  // Bytewise: upper case sorts before lower case.
  EXPECT_EQ(r.list("names"), (std::vector<std::string>{"Beta", "alpha", "mid", "zeta"}));
  EXPECT_NE(error_of([&] { r.list("/x/y/z"); }).find("not a group"), std::string::npos);
  EXPECT_NE(error_of([&] { r.list("/nope"); }).find("/nope"), std::string::npos);
}

TEST(H5Atomic, WithoutCommitNothingIsLeft) {
  TempDir dir;
  const std::string path = dir.file("out.h5");
  std::string temp;
  {
    Writer w(path);
    temp = w.temp_path();
    EXPECT_EQ(temp.rfind(path + ".tmp-", 0), 0u) << temp;
    EXPECT_EQ(temp.substr(temp.rfind('-') + 1), std::to_string(::getpid())) << temp;
    w.write("/x", std::vector<float>(10, 1.0f));
    EXPECT_TRUE(fs::exists(temp));
    EXPECT_FALSE(fs::exists(path));
  }
  EXPECT_FALSE(fs::exists(path));
  EXPECT_FALSE(fs::exists(temp));
  EXPECT_TRUE(dir.entries().empty());

  // The same when the run fails with an exception.
  try {
    Writer w(path);
    w.write("/x", std::vector<float>(10, 1.0f));
    throw std::runtime_error("stage failed");
  } catch (const std::runtime_error&) {
  }
  EXPECT_TRUE(dir.entries().empty());
}

TEST(H5Atomic, TemporaryFilesOfDeadProcessesOnThisHostAreRemoved) {
  TempDir dir;
  const std::string path = dir.file("out.h5");
  std::string own;
  { own = Writer(path).temp_path(); }
  // "<path>.tmp-<host>-<pid>": the part before the pid names this host.
  const std::string mine = own.substr(0, own.rfind('-') + 1);
  // A pid that is surely gone: a child that has exited and been reaped.
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  ASSERT_GT(child, 0);
  ::waitpid(child, nullptr, 0);
  const std::string dead = mine + std::to_string(child);
  const std::string alive = mine + std::to_string(::getppid());
  const std::string other_host = path + ".tmp-elsewhere-" + std::to_string(child);
  const std::string other_file =
      dir.file("other.h5") + ".tmp-" + mine.substr(path.size() + 5) + std::to_string(child);
  for (const auto& f : {dead, alive, other_host, other_file}) std::ofstream(f) << "x";
  {
    Writer w(path);
    w.write("/x", std::vector<float>(3, 1.0f));
    w.commit();
  }
  EXPECT_FALSE(fs::exists(dead)) << "left by a process of this host that is gone";
  EXPECT_TRUE(fs::exists(alive)) << "its process still runs";
  EXPECT_TRUE(fs::exists(other_host)) << "another node's pid says nothing here";
  EXPECT_TRUE(fs::exists(other_file)) << "another output's temporary file";
  EXPECT_TRUE(fs::exists(path));
}

TEST(H5Atomic, ExistingFileIsReplacedOnlyOnCommit) {
  TempDir dir;
  const std::string path = dir.file("out.h5");
  {
    Writer w(path);
    w.attr("/", "version", std::int64_t{1});
    w.commit();
  }
  {
    Writer w(path);
    w.attr("/", "version", std::int64_t{2});
    EXPECT_EQ(Reader(path).attr_int("/", "version"), 1) << "old file intact while writing";
  }
  EXPECT_EQ(Reader(path).attr_int("/", "version"), 1) << "old file intact after a failed run";
  {
    Writer w(path);
    w.attr("/", "version", std::int64_t{3});
    Writer moved = std::move(w);  // ownership moves; the moved-from Writer cleans up nothing
    moved.commit();
    EXPECT_TRUE(moved.committed());
  }
  EXPECT_EQ(Reader(path).attr_int("/", "version"), 3);
  EXPECT_EQ(dir.entries(), (std::vector<std::string>{"out.h5"}));
}

TEST(H5Atomic, NoWritesAfterCommit) {
  TempDir dir;
  Writer w(dir.file("out.h5"));
  w.commit();
  EXPECT_NE(error_of([&] { w.write("/x", std::vector<float>{1.0f}); }).find("committed"),
            std::string::npos);
  EXPECT_NE(error_of([&] { w.commit(); }).find("committed"), std::string::npos);
}

TEST(H5Errors, MissingOrBadOutputFolderIsNamed) {
  TempDir dir;
  const std::string missing = dir.file("no_such_folder");
  std::string msg = error_of([&] { Writer w(missing + "/out.h5"); });
  EXPECT_NE(msg.find("no_such_folder"), std::string::npos) << msg;
  EXPECT_NE(msg.find("does not exist"), std::string::npos) << msg;

  const std::string plain = dir.file("plain.txt");
  std::ofstream(plain) << "x";
  msg = error_of([&] { Writer w(plain + "/out.h5"); });
  EXPECT_NE(msg.find("plain.txt"), std::string::npos) << msg;
  EXPECT_NE(msg.find("not a folder"), std::string::npos) << msg;
}

TEST(H5Errors, UnwritableFolderIsNamed) {
  TempDir dir;
  // Root ignores permission bits, so as root use /proc, where nobody can create files.
  std::string folder;
  if (::geteuid() == 0) {
    folder = "/proc";
  } else {
    folder = dir.file("readonly");
    fs::create_directory(folder);
    fs::permissions(folder, fs::perms::owner_read | fs::perms::owner_exec);
  }
  const std::string msg = error_of([&] { Writer w(folder + "/out.h5"); });
  EXPECT_NE(msg.find("folder '" + folder + "'"), std::string::npos) << msg;
  EXPECT_FALSE(fs::exists(folder + "/out.h5"));
  if (::geteuid() != 0) fs::permissions(folder, fs::perms::owner_all);
}

TEST(H5Errors, MissingDatasetIsNamed) {
  TempDir dir;
  const std::string path = dir.file("r.h5");
  {
    Writer w(path);
    w.write("/seg/size", std::vector<std::int64_t>{1});
    w.commit();
  }
  Reader r(path);
  std::string msg = error_of([&] { r.read<float>("/seg/nope"); });
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
  EXPECT_NE(msg.find("/seg/nope"), std::string::npos) << msg;
  EXPECT_NE(msg.find("no such dataset"), std::string::npos) << msg;
  EXPECT_NE(error_of([&] { r.read_strings("/a/b/c"); }).find("/a/b/c"), std::string::npos);
  EXPECT_NE(error_of([&] { r.read_table("/t"); }).find("/t"), std::string::npos);
  EXPECT_NE(error_of([&] { r.dims("/d"); }).find("/d"), std::string::npos);
  msg = error_of([&] { r.read<float>("/seg"); });
  EXPECT_NE(msg.find("not a dataset"), std::string::npos) << msg;
}

TEST(H5Errors, NonHdf5AndMissingFilesAreRejected) {
  TempDir dir;
  const std::string csv = dir.file("accounts.csv");
  std::ofstream(csv) << "id,acv\n1,2\n";
  std::string msg = error_of([&] { Reader r(csv); });
  EXPECT_NE(msg.find(csv + ": not an HDF5 file"), std::string::npos) << msg;
  const std::string empty = dir.file("empty.h5");
  std::ofstream(empty).close();
  EXPECT_NE(error_of([&] { Reader r(empty); }).find("not an HDF5 file"), std::string::npos);
  msg = error_of([&] { Reader r(dir.file("absent.h5")); });
  EXPECT_NE(msg.find("absent.h5: no such file"), std::string::npos) << msg;
}

// Open file-bound identifiers (files, groups, datasets, named types, attributes), by kind.
// Dataspaces, transient types and property lists have no public counter (H5Inmembers refuses
// library types); they are held by the same RAII wrapper as these.
std::vector<ssize_t> open_ids() {
  std::vector<ssize_t> counts;
  for (unsigned kind :
       {H5F_OBJ_FILE, H5F_OBJ_GROUP, H5F_OBJ_DATASET, H5F_OBJ_DATATYPE, H5F_OBJ_ATTR}) {
    counts.push_back(H5Fget_obj_count(H5F_OBJ_ALL, kind));
  }
  return counts;
}

void exercise_everything(const std::string& path) {
  {
    Writer w(path);
    w.write("/g/f", std::vector<float>(70000, 1.0f));
    w.write_strings("/g/s", {"a", "b"});
    w.write_table("/g/t", sample_table());
    w.attr("/g", "x", 1.0);
    w.attr("/g", "s", "text");
    w.attr("/g", "v", std::vector<double>{1.0, 2.0});
    error_of([&] { w.write("/g/f", std::vector<float>{1.0f}); });
    error_of([&] { w.attr("/missing", "x", 1.0); });
    error_of([&] { w.write_strings("/bad", {"\xFF"}); });
    w.commit();
  }
  {
    Writer abandoned(path + ".other");
    abandoned.write("/x", std::vector<double>{1.0});
  }
  Reader r(path);
  (void)r.read<float>("/g/f");
  (void)r.read_strings("/g/s");
  (void)r.read_table("/g/t");
  (void)r.attr_string("/g", "s");
  (void)r.attr_doubles("/g", "v");
  (void)r.list("/g");
  error_of([&] { r.read<std::int32_t>("/g/f"); });
  error_of([&] { r.read<float>("/g/nope"); });
  error_of([&] { r.attr_int("/g", "x"); });
  error_of([&] { r.list("/g/f"); });
}

TEST(H5Handles, NoIdentifierLeaksOnSuccessOrError) {
  TempDir dir;
  const std::vector<ssize_t> before = open_ids();
  exercise_everything(dir.file("run.h5"));
  EXPECT_EQ(open_ids(), before) << "file, group, dataset, named type, attribute";
}

// A file with every kind of object, for the external tools.
void write_everything(const std::string& path) {
  Writer w(path);
  w.write_strings("/ids", {"a,b", "Z\xC3\xBCrich", "\xE6\x9D\xB1\xE4\xBA\xAC", ""});
  w.write("/m", std::vector<float>{0.5f, -1.25f, 3.0f, 1e-3f, 7.0f, -0.0f}, {2, 3});
  w.write("/big", std::vector<float>(70000, 2.0f));
  w.write_table("/t", sample_table());
  w.attr("/", "note", "r\xC3\xA9sum\xC3\xA9");
  w.attr("/m", "scale", 2.5);
  w.attr("/m", "n", std::int64_t{6});
  w.commit();
}

TEST(H5Tools, H5dumpReadsTheHeader) {
  if (!command_exists("h5dump")) GTEST_SKIP() << "h5dump not installed (package hdf5-tools)";
  TempDir dir;
  const std::string path = dir.file("all.h5");
  write_everything(path);
  const std::string out = dir.file("dump.txt");
  const int status = std::system(("h5dump -H -p '" + path + "' > '" + out + "' 2>&1").c_str());
  std::stringstream text;
  text << std::ifstream(out).rdbuf();
  ASSERT_EQ(exit_code(status), 0) << text.str();
  EXPECT_NE(text.str().find("H5T_CSET_UTF8"), std::string::npos) << text.str();
  EXPECT_NE(text.str().find("DEFLATE"), std::string::npos) << text.str();
}

// The first interpreter that can import h5py, or "".
std::string python_with_h5py() {
  for (const char* py : {"python3", "/usr/bin/python3"}) {
    const std::string cmd = std::string(py) + " -c 'import h5py, numpy' > /dev/null 2>&1";
    if (std::system(cmd.c_str()) == 0) return py;
  }
  return "";
}

TEST(H5Tools, H5pyReadsStringsMatrixAndTable) {
  const std::string python = python_with_h5py();
  if (python.empty()) GTEST_SKIP() << "h5py not importable (Debian package python3-h5py)";
  TempDir dir;
  const std::string path = dir.file("all.h5");
  write_everything(path);
  // Expected values are written out by hand, independently of the C++ vectors above.
  const std::string script = dir.file("check.py");
  std::ofstream(script) << R"PY(
import sys, h5py, numpy as np
f = h5py.File(sys.argv[1], 'r')
errors = []
def check(cond, what):
    if not cond: errors.append(what)
ids = f['ids']
check(h5py.check_string_dtype(ids.dtype).encoding == 'utf-8', 'ids not utf-8')
check(list(ids.asstr()[()]) == ['a,b', 'Z\u00fcrich', '\u6771\u4eac', ''], 'ids %r' % (ids[()],))
m = f['m'][()]
check(m.dtype == np.float32 and m.shape == (2, 3), 'm dtype/shape %s %s' % (m.dtype, m.shape))
want = np.array([[0.5, -1.25, 3.0], [1e-3, 7.0, -0.0]], dtype=np.float32)
check(np.array_equal(m, want), 'm %r' % m)
check(f['m'].attrs['scale'] == 2.5 and f['m'].attrs['n'] == 6, 'm attrs')
check(f.attrs['note'] == 'r\u00e9sum\u00e9', 'note %r' % (f.attrs['note'],))
check(f['big'].compression == 'gzip' and f['big'].shuffle, 'big filters')
t = f['t'][()]
check(t.dtype.names == ('id', 'count', 'score'), 'table fields %r' % (t.dtype.names,))
ids = [x.decode('utf-8') for x in t['id']]
check(ids == ['acme, inc.', 'Soci\u00e9t\u00e9', ''], 'id %r' % t['id'])
check(list(t['count']) == [-2**63, 0, 42], 'count %r' % t['count'])
check(list(t['score']) == [0.5, -1.25, 1e-300], 'score %r' % t['score'])
for e in errors: print(e)
sys.exit(1 if errors else 0)
)PY";
  const std::string out = dir.file("py.txt");
  const int status =
      std::system((python + " '" + script + "' '" + path + "' > '" + out + "' 2>&1").c_str());
  std::stringstream text;
  text << std::ifstream(out).rdbuf();
  EXPECT_EQ(exit_code(status), 0) << text.str();
}

}  // namespace
