#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "../src/kmeans_internal.hpp"
#include "icp/error.hpp"
#include "icp/normalize.hpp"
#include "icp/parallel.hpp"
#include "test_tables.hpp"

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

icp::Column numeric(const std::string& name, std::vector<double> v) {
  icp::Column c;
  c.name = name;
  c.numeric.assign(v.begin(), v.end());
  return c;
}

icp::Column categorical(const std::string& name, std::vector<std::string> levels,
                        std::vector<std::int32_t> codes) {
  icp::Column c;
  c.name = name;
  c.type = icp::ColumnType::categorical;
  c.levels = std::move(levels);
  c.codes.assign(codes.begin(), codes.end());
  return c;
}

icp::Table table_of(std::vector<icp::Column> cols) {
  icp::Table t;
  t.source = "t.csv";
  t.rows = cols.front().size();
  t.columns = std::move(cols);
  return t;
}

icp::NumericFeature nf(const std::string& col, icp::Scaling s,
                       icp::Transform t = icp::Transform::none, double w = 1.0) {
  icp::NumericFeature f;
  f.column = col;
  f.scaling = s;
  f.transform = t;
  f.weight = w;
  return f;
}

TEST(Normalize, OutputNeedsNoCentredCopyInKMeans) {
  // k-means skips its centred copy of the data when every column mean is negligible against
  // the column's RMS; the pipeline relies on the normalizer's offsets for that.
  std::vector<double> a, b, d, e;
  std::vector<std::int32_t> codes;
  for (int i = 0; i < 5000; ++i) {
    a.push_back(1e6 + 37.0 * (i % 101) + (i % 7 == 0 ? kNaN : 0.0));
    b.push_back(std::exp(0.01 * (i % 613)));
    d.push_back(2000.0 + (i % 41));
    e.push_back(i % 11 == 0 ? kNaN : 3.0 * (i % 17));
    codes.push_back(i % 5 == 0 ? -1 : i % 3);
  }
  const auto t = table_of({numeric("a", a), numeric("b", b), numeric("d", d), numeric("e", e),
                           categorical("c", {"x", "y", "z"}, codes)});
  icp::NormalizeOptions o;
  o.numeric = {nf("a", icp::Scaling::zscore), nf("b", icp::Scaling::robust, icp::Transform::log1p),
               nf("d", icp::Scaling::minmax, icp::Transform::none, 0.5),
               nf("e", icp::Scaling::none)};
  icp::CategoricalFeature c;
  c.column = "c";
  o.categorical = {c};
  const auto m = icp::apply_normalizer(icp::fit_normalizer(t, o), t);
  const auto moments = icp::kmeans_detail::column_moments(m, icp::local_reducer());
  for (std::size_t j = 0; j < m.cols(); ++j) {
    EXPECT_LE(std::fabs(moments.mean[j]), 1e-6 * std::sqrt(moments.mean_square[j])) << j;
  }
  EXPECT_TRUE(icp::kmeans_detail::centred_enough(moments));
}

TEST(Normalize, ZscoreByHandAndCentred) {
  // x = 1,2,3,4: mean 2.5, population sd sqrt(1.25).
  const auto t = table_of({numeric("x", {1, 2, 3, 4})});
  icp::NormalizeOptions o;
  o.numeric = {nf("x", icp::Scaling::zscore, icp::Transform::none, 2.0)};
  const auto norm = icp::fit_normalizer(t, o);
  const auto m = icp::apply_normalizer(norm, t);
  ASSERT_EQ(m.cols(), 1u);
  const double sd = std::sqrt(1.25);
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(m(i, 0), 2.0 * (i + 1 - 2.5) / sd, 1e-6);
}

TEST(Normalize, RobustUsesMedianAndIqrThenCentres) {
  // x = 0,1,2,3,100: median 2, q1 1, q3 3 (type 7) -> (x-2)/2, then minus its mean.
  const auto t = table_of({numeric("x", {0, 1, 2, 3, 100})});
  icp::NormalizeOptions o;
  o.numeric = {nf("x", icp::Scaling::robust)};
  const auto norm = icp::fit_normalizer(t, o);
  EXPECT_DOUBLE_EQ(norm.features[0].center, 2.0);
  EXPECT_DOUBLE_EQ(norm.features[0].scale, 2.0);
  const auto m = icp::apply_normalizer(norm, t);
  const double mean = ((0 - 2) + (1 - 2) + (2 - 2) + (3 - 2) + (100 - 2)) / 2.0 / 5.0;
  EXPECT_NEAR(m(4, 0), 49.0 - mean, 1e-5);
  EXPECT_NEAR(m(0, 0), -1.0 - mean, 1e-6);
}

TEST(Normalize, Log1pIsSignedAndMinmax) {
  EXPECT_DOUBLE_EQ(icp::signed_log1p(-std::exp(1.0) + 1.0), -1.0);
  const auto t = table_of({numeric("x", {0, std::exp(2.0) - 1.0})});
  icp::NormalizeOptions o;
  o.numeric = {nf("x", icp::Scaling::minmax, icp::Transform::log1p)};
  const auto m = icp::apply_normalizer(icp::fit_normalizer(t, o), t);
  EXPECT_NEAR(m(0, 0), -0.5, 1e-6);  // minmax to [0,1], centred
  EXPECT_NEAR(m(1, 0), 0.5, 1e-6);
}

TEST(Normalize, MissingImputedWithMedianAndFlagged) {
  const auto t = table_of({numeric("x", {1, kNaN, 3, 5})});
  icp::NormalizeOptions o;
  o.numeric = {nf("x", icp::Scaling::none)};
  o.missing.flag = true;
  o.missing.flag_weight = 0.5;
  const auto norm = icp::fit_normalizer(t, o);
  ASSERT_EQ(norm.names(), (std::vector<std::string>{"x", "x__missing"}));
  const auto m = icp::apply_normalizer(norm, t);
  // Imputed 3 (median of 1,3,5); mean of (1,3,3,5) = 3.
  EXPECT_NEAR(m(1, 0), 0.0, 1e-6);
  EXPECT_NEAR(m(0, 0), -2.0, 1e-6);
  EXPECT_NEAR(m(1, 1), 0.5 - 0.125, 1e-6);
  EXPECT_NEAR(m(0, 1), -0.125, 1e-6);
}

TEST(Normalize, OneHotKeepsTopLevelsPoolsOtherAndScalesByWeight) {
  // a x3, b x2, c x1, d x1 ; keep 2 -> a, b, other{c,d}
  const auto t = table_of({categorical("ind", {"a", "b", "c", "d"}, {0, 0, 0, 1, 1, 2, 3})});
  icp::NormalizeOptions o;
  icp::CategoricalFeature cf;
  cf.column = "ind";
  cf.max_levels = 2;
  cf.weight = 2.0;
  o.categorical = {cf};
  const auto norm = icp::fit_normalizer(t, o);
  ASSERT_EQ(norm.names(), (std::vector<std::string>{"ind=a", "ind=b", "ind=other"}));
  const auto m = icp::apply_normalizer(norm, t);
  // Two accounts with different levels are `weight` apart.
  double d2 = 0;
  for (std::size_t j = 0; j < 3; ++j) d2 += std::pow(double(m(0, j)) - m(3, j), 2);
  EXPECT_NEAR(std::sqrt(d2), 2.0, 1e-6);
  // Same level -> same row; c and d share "other".
  for (std::size_t j = 0; j < 3; ++j) EXPECT_EQ(m(5, j), m(6, j));
  // Centred: every column sums to ~0.
  for (std::size_t j = 0; j < 3; ++j) {
    double s = 0;
    for (std::size_t i = 0; i < 7; ++i) s += m(i, j);
    EXPECT_NEAR(s, 0.0, 1e-5);
  }
}

TEST(Normalize, UnseenLevelGoesToOtherOnNewData) {
  const auto t = table_of({categorical("ind", {"a", "b", "c"}, {0, 0, 1, 2})});
  icp::NormalizeOptions o;
  icp::CategoricalFeature cf;
  cf.column = "ind";
  cf.max_levels = 1;
  o.categorical = {cf};
  const auto norm = icp::fit_normalizer(t, o);
  const auto fresh = table_of({categorical("ind", {"zzz", "a"}, {0, 1})});
  const auto m = icp::apply_normalizer(norm, fresh);
  const auto ref = icp::apply_normalizer(norm, t);
  for (std::size_t j = 0; j < m.cols(); ++j) {
    EXPECT_EQ(m(0, j), ref(2, j)) << j;  // zzz behaves like pooled b
    EXPECT_EQ(m(1, j), ref(0, j)) << j;  // a is a, whatever its code in the new file
  }
}

TEST(Normalize, ConstantColumnDoesNotDivideByZero) {
  const auto t = table_of({numeric("x", {7, 7, 7})});
  for (auto s : {icp::Scaling::zscore, icp::Scaling::robust, icp::Scaling::minmax}) {
    icp::NormalizeOptions o;
    o.numeric = {nf("x", s)};
    const auto m = icp::apply_normalizer(icp::fit_normalizer(t, o), t);
    for (int i = 0; i < 3; ++i) EXPECT_EQ(m(i, 0), 0.0f);
  }
}

TEST(Normalize, ErrorsForAbsentOrEmptyColumns) {
  const auto t = table_of({numeric("x", {kNaN, kNaN})});
  icp::NormalizeOptions o;
  o.numeric = {nf("x", icp::Scaling::zscore)};
  EXPECT_THROW((void)icp::fit_normalizer(t, o), icp::Error);
  o.numeric = {nf("y", icp::Scaling::zscore)};
  EXPECT_THROW((void)icp::fit_normalizer(t, o), icp::Error);
}

TEST(Normalize, SameBitsAtOneAndTwoThreads) {
  // Several numeric features, fitted concurrently at 2 threads: same specs in the same order.
  std::vector<double> v(50000), w(50000), u(50000);
  for (std::size_t i = 0; i < v.size(); ++i) {
    v[i] = std::sin(double(i)) * 1e4 + double(i % 97);
    w[i] = i % 11 == 0 ? kNaN : std::cos(double(i)) * 3.0 + double(i % 13);
    u[i] = double(i % 1000) * 0.5;
  }
  const auto t = table_of({numeric("x", v), numeric("y", w), numeric("z", u)});
  icp::NormalizeOptions o;
  o.numeric = {nf("x", icp::Scaling::zscore, icp::Transform::log1p), nf("y", icp::Scaling::robust),
               nf("z", icp::Scaling::minmax)};
  o.missing.flag = true;
  icp::set_threads(1);
  const icp::Normalizer n1 = icp::fit_normalizer(t, o);
  icp::set_threads(2);
  const icp::Normalizer n2 = icp::fit_normalizer(t, o);
  ASSERT_EQ(n1.features.size(), 4u);  // x, y, y__missing, z
  ASSERT_EQ(n2.features.size(), n1.features.size());
  for (std::size_t j = 0; j < n1.features.size(); ++j) {
    EXPECT_EQ(n1.features[j].name, n2.features[j].name);
    EXPECT_EQ(0, std::memcmp(&n1.features[j].center, &n2.features[j].center, sizeof(double)));
    EXPECT_EQ(0, std::memcmp(&n1.features[j].scale, &n2.features[j].scale, sizeof(double)));
    EXPECT_EQ(0, std::memcmp(&n1.features[j].offset, &n2.features[j].offset, sizeof(double)));
  }
  EXPECT_EQ(n1.features[2].name, "y__missing");
  // The first bad feature in job order is the one reported, whichever thread meets it first.
  icp::NormalizeOptions bad = o;
  bad.numeric = {nf("x", icp::Scaling::zscore), nf("nope1", icp::Scaling::zscore),
                 nf("nope2", icp::Scaling::zscore)};
  try {
    (void)icp::fit_normalizer(t, bad);
    ADD_FAILURE() << "missing columns must throw";
  } catch (const icp::Error& e) {
    EXPECT_NE(std::string(e.what()).find("nope1"), std::string::npos) << e.what();
  }
  icp::set_threads(1);
  o.missing.flag = false;
  o.numeric = {nf("x", icp::Scaling::zscore, icp::Transform::log1p)};
  icp::set_threads(1);
  const auto a = icp::apply_normalizer(icp::fit_normalizer(t, o), t);
  icp::set_threads(2);
  const auto b = icp::apply_normalizer(icp::fit_normalizer(t, o), t);
  ASSERT_EQ(a.storage().size(), b.storage().size());
  EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.storage().size() * sizeof(float)));
}

}  // namespace

namespace {

void expect_same_bits(const icp::Normalizer& a, const icp::Normalizer& b, const std::string& what) {
  ASSERT_EQ(a.features.size(), b.features.size()) << what;
  for (std::size_t j = 0; j < a.features.size(); ++j) {
    const auto& x = a.features[j];
    const auto& y = b.features[j];
    EXPECT_EQ(x.name, y.name) << what;
    EXPECT_EQ(x.kind, y.kind) << what;
    EXPECT_EQ(x.levels, y.levels) << what << ": " << x.name;
    for (auto field :
         {&icp::FeatureSpec::center, &icp::FeatureSpec::scale, &icp::FeatureSpec::impute,
          &icp::FeatureSpec::weight, &icp::FeatureSpec::offset}) {
      EXPECT_EQ(0, std::memcmp(&(x.*field), &(y.*field), sizeof(double)))
          << what << ": " << x.name << " " << x.*field << " vs " << y.*field;
    }
  }
}

TEST(NormalizeStreamed, SameBitsAsTheWholeTableForAnyBlocks) {
  // Sums whose chunks span blocks, quartiles of skewed and tied columns, levels first seen in a
  // late block, a level that becomes "other", missing cells everywhere.
  std::mt19937_64 gen(99);
  auto uniform = [&gen] { return static_cast<double>(gen() >> 11) * 0x1.0p-53; };
  const std::size_t n = 23456;
  std::vector<double> rev(n), emp(n), visits(n), flat(n);
  std::vector<std::int32_t> ind(n), country(n);
  std::vector<std::string> ind_levels, country_levels = {"US", "DE", "FR", "GB", "JP", "BR"};
  for (int l = 0; l < 40; ++l) ind_levels.push_back("industry" + std::to_string(l));
  for (std::size_t i = 0; i < n; ++i) {
    const double u = uniform();
    rev[i] = i % 9 == 0 ? kNaN : std::exp(10.0 + 6.0 * u) * (i % 50 == 0 ? -1.0 : 1.0);
    emp[i] = i % 4 == 0 ? kNaN : std::floor(1.0 + 5000.0 * u * u);
    visits[i] = static_cast<double>(i % 7);  // heavy ties
    flat[i] = i < n / 2 ? kNaN : 3.5;        // constant where present
    // Codes in first-appearance order: industry39 appears only in the last rows.
    ind[i] = i % 13 == 0 ? -1 : static_cast<std::int32_t>(i > n - 100 ? 39 : (i * 7) % 39);
    country[i] = static_cast<std::int32_t>(std::min<std::size_t>(5, i % 11));
  }
  std::vector<std::string> ind_seen;
  std::vector<std::int32_t> ind_codes(n);
  std::vector<std::int32_t> map(40, -1);
  for (std::size_t i = 0; i < n; ++i) {
    if (ind[i] < 0) {
      ind_codes[i] = -1;
      continue;
    }
    auto& m = map[static_cast<std::size_t>(ind[i])];
    if (m < 0) {
      m = static_cast<std::int32_t>(ind_seen.size());
      ind_seen.push_back(ind_levels[static_cast<std::size_t>(ind[i])]);
    }
    ind_codes[i] = m;
  }
  const auto t =
      table_of({numeric("revenue", rev), numeric("employees", emp), numeric("visits", visits),
                numeric("flat", flat), categorical("industry", ind_seen, ind_codes),
                categorical("country", country_levels, country)});
  icp::NormalizeOptions o;
  o.numeric = {nf("revenue", icp::Scaling::robust, icp::Transform::log1p),
               nf("employees", icp::Scaling::zscore, icp::Transform::none, 2.0),
               nf("visits", icp::Scaling::robust), nf("flat", icp::Scaling::minmax)};
  icp::CategoricalFeature ci;
  ci.column = "industry";
  ci.max_levels = 12;
  icp::CategoricalFeature cc;
  cc.column = "country";
  o.categorical = {ci, cc};
  for (const bool flag : {false, true}) {
    o.missing.flag = flag;
    o.missing.numeric = flag ? icp::NumericImpute::mean : icp::NumericImpute::median;
    const icp::Normalizer whole = icp::fit_normalizer(t, o);
    for (const auto& sizes : std::vector<std::vector<std::size_t>>{
             {n}, {4096}, {1000}, {4095, 4097, 1}, {7, 10000, 333}}) {
      int scans = 0;
      int passes = 0;
      const icp::Normalizer streamed =
          icp::fit_normalizer_streamed(icp_test::scan_of(t, sizes, &scans), o, &passes);
      EXPECT_EQ(passes, scans);
      EXPECT_GE(passes, 2);  // counts, then deviations (the quartiles' buckets are kept whole)
      expect_same_bits(whole, streamed, "blocks of " + std::to_string(sizes.front()));
    }
  }
  // Same messages as the whole-table fit.
  icp::NormalizeOptions bad = o;
  bad.numeric = {nf("nope", icp::Scaling::zscore)};
  int scans = 0;
  EXPECT_THROW((void)icp::fit_normalizer_streamed(icp_test::scan_of(t, {1000}, &scans), bad),
               icp::Error);
  bad.numeric = {nf("flat", icp::Scaling::zscore)};
  bad.categorical.clear();
  const auto empty = table_of({numeric("flat", {kNaN, kNaN, kNaN})});
  try {
    (void)icp::fit_normalizer_streamed(icp_test::scan_of(empty, {2}, &scans), bad);
    ADD_FAILURE() << "a column with no value must throw";
  } catch (const icp::Error& e) {
    EXPECT_NE(std::string(e.what()).find("'flat' has no value"), std::string::npos) << e.what();
  }
}

}  // namespace
