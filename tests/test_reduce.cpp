// The multi-process seam without MPI: P simulated processes (threads) exchange through a
// barrier, and a k-means fit split between them must give the bits of a one-process fit.
// tests/test_mpi.cpp does the same through the real program under mpirun.
#include <gtest/gtest.h>

#include <atomic>
#include <barrier>
#include <cstring>
#include <functional>
#include <thread>
#include <vector>

#include "icp/kmeans.hpp"
#include "icp/parallel.hpp"
#include "icp/reduce.hpp"
#include "test_bits.hpp"
#include "test_support.hpp"

namespace {

/// Shared mailbox of P simulated processes: each collective writes its part, waits for all,
/// reads every part, and waits again before the mailbox can be reused.
struct World {
  explicit World(int p) : size(p), sync(p), slot(static_cast<std::size_t>(p)) {}
  int size;
  std::barrier<> sync;
  std::vector<std::vector<char>> slot;
  std::atomic<int> row_gathers{0};  ///< gather_rows calls (each a copy of the data)
};

class SimReducer final : public icp::Reducer {
 public:
  SimReducer(World& w, int rank) : w_(w), rank_(rank) {}

  void sum(std::span<double> v) override {
    reduce(v, [](double a, double b) { return a + b; });
  }
  void sum(std::span<std::int64_t> v) override {
    reduce(v, [](std::int64_t a, std::int64_t b) { return a + b; });
  }
  void min(std::span<double> v) override {
    reduce(v, [](double a, double b) { return std::min(a, b); });
  }
  void max(std::span<double> v) override {
    reduce(v, [](double a, double b) { return std::max(a, b); });
  }
  std::vector<double> gather_chunks(std::vector<double> local, std::size_t) override {
    return concat(std::span<const double>(local));
  }
  icp::Matrix gather_rows(icp::MatrixView local) override {
    ++w_.row_gathers;
    std::vector<float> all = concat(std::span<const float>(local.data, local.rows * local.cols));
    icp::Matrix m(local.cols ? all.size() / local.cols : 0, local.cols);
    m.storage().assign(all.begin(), all.end());
    return m;
  }
  std::vector<float> gather(std::span<const float> local) override { return concat(local); }
  std::vector<double> gather(std::span<const double> local) override { return concat(local); }
  std::vector<std::int32_t> gather(std::span<const std::int32_t> local) override {
    return concat(local);
  }
  icp::Matrix scatter_rows(icp::MatrixView all, std::size_t total, std::size_t cols) override {
    std::vector<float> whole;
    if (rank_ == 0) whole.assign(all.data, all.data + total * cols);
    whole = from_root(std::span<const float>(whole));
    const icp::RowRange mine = icp::chunk_rows_of(total, rank_, w_.size);
    icp::Matrix out(mine.rows, cols);
    std::copy_n(whole.data() + mine.begin * cols, mine.rows * cols, out.data());
    return out;
  }
  void broadcast(std::span<std::int64_t> v) override {
    const auto got = from_root(std::span<const std::int64_t>(v));
    std::copy(got.begin(), got.end(), v.begin());
  }
  void broadcast(std::span<float> v) override {
    const auto got = from_root(std::span<const float>(v));
    std::copy(got.begin(), got.end(), v.begin());
  }
  int rank() const noexcept override { return rank_; }
  int size() const noexcept override { return w_.size; }

 private:
  template <class T>
  std::vector<std::vector<T>> exchange(std::span<const T> mine) {
    auto& s = w_.slot[static_cast<std::size_t>(rank_)];
    s.resize(mine.size_bytes());
    if (!mine.empty()) std::memcpy(s.data(), mine.data(), mine.size_bytes());
    w_.sync.arrive_and_wait();
    std::vector<std::vector<T>> all(w_.slot.size());
    for (std::size_t r = 0; r < all.size(); ++r) {
      all[r].resize(w_.slot[r].size() / sizeof(T));
      if (!all[r].empty()) std::memcpy(all[r].data(), w_.slot[r].data(), w_.slot[r].size());
    }
    w_.sync.arrive_and_wait();
    return all;
  }
  template <class T>
  std::vector<T> concat(std::span<const T> mine) {
    std::vector<T> out;
    for (auto& part : exchange(mine)) out.insert(out.end(), part.begin(), part.end());
    return out;
  }
  template <class T>
  std::vector<T> from_root(std::span<const T> mine) {
    return exchange(mine)[0];
  }
  template <class T, class Op>
  void reduce(std::span<T> v, Op op) {
    const auto all = exchange(std::span<const T>(v));
    for (std::size_t i = 0; i < v.size(); ++i) {
      T acc = all[0][i];
      for (std::size_t r = 1; r < all.size(); ++r) acc = op(acc, all[r][i]);
      v[i] = acc;
    }
  }

  World& w_;
  int rank_;
};

/// Blobs around `k` centres in `d` dimensions with a large common offset (the data is centred
/// before clustering, which the distributed column means must reproduce).
icp::Matrix blobs(std::size_t n, std::size_t d, std::size_t k, unsigned seed) {
  icp::Matrix x(n, d);
  icp_test::Lcg rng{seed};
  auto next = [&] { return rng.next(); };
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t c = i % k;
    for (std::size_t j = 0; j < d; ++j)
      x(i, j) = static_cast<float>(1000.0 + 4.0 * static_cast<double>((c * 7 + j * 3) % 11) +
                                   (next() - 0.5));
  }
  return x;
}

/// Runs `fit` on P simulated processes, each given its chunk-aligned run of rows of x.
std::vector<icp::KMeansResult> fit_split(const icp::Matrix& x, int p, const icp::KMeansOptions& o,
                                         int* row_gathers = nullptr) {
  World w(p);
  std::vector<icp::KMeansResult> out(static_cast<std::size_t>(p));
  std::vector<std::thread> ranks;
  for (int r = 0; r < p; ++r) {
    ranks.emplace_back([&, r] {
      SimReducer red(w, r);
      const icp::Matrix mine = red.scatter_rows(x.view(), x.rows(), x.cols());
      icp::KMeansOptions local = o;
      if (!o.sample_weight.empty()) {  // each process weighs its own rows
        const icp::RowRange rows = icp::chunk_rows_of(x.rows(), r, p);
        const auto b = o.sample_weight.begin() + static_cast<std::ptrdiff_t>(rows.begin);
        local.sample_weight.assign(b, b + static_cast<std::ptrdiff_t>(rows.rows));
      }
      out[static_cast<std::size_t>(r)] = icp::kmeans_fit(mine.view(), local, red);
    });
  }
  for (auto& t : ranks) t.join();
  if (row_gathers != nullptr) *row_gathers = w.row_gathers.load();
  return out;
}

using icp_test::same_bits;

void expect_same_fit(const icp::KMeansResult& one, const std::vector<icp::KMeansResult>& parts,
                     const std::string& what) {
  std::vector<std::int32_t> labels;
  std::vector<float> dist;
  for (const auto& p : parts) {
    labels.insert(labels.end(), p.assignment.begin(), p.assignment.end());
    dist.insert(dist.end(), p.distance.begin(), p.distance.end());
    EXPECT_EQ(p.centroids.storage(), one.centroids.storage()) << what;
    EXPECT_TRUE(same_bits(p.inertia, one.inertia))
        << what << ": " << p.inertia << " vs " << one.inertia;
    EXPECT_EQ(p.sizes, one.sizes) << what;
    EXPECT_EQ(p.iterations, one.iterations) << what;
    ASSERT_EQ(p.history.size(), one.history.size()) << what;
    for (std::size_t i = 0; i < one.history.size(); ++i) {
      EXPECT_TRUE(same_bits(p.history[i].inertia, one.history[i].inertia)) << what << " it " << i;
      EXPECT_TRUE(same_bits(p.history[i].shift, one.history[i].shift)) << what << " it " << i;
      EXPECT_EQ(p.history[i].changed, one.history[i].changed) << what << " it " << i;
      EXPECT_EQ(p.history[i].relocated, one.history[i].relocated) << what << " it " << i;
    }
  }
  EXPECT_EQ(labels, one.assignment) << what;
  EXPECT_EQ(dist, one.distance) << what;
}

}  // namespace

TEST(Reduce, ChunkRowsCoverEveryRowOnceInWholeChunks) {
  for (const std::size_t n : {0u, 1u, 4095u, 4096u, 4097u, 5u * 4096u + 7u, 100000u}) {
    for (int p = 1; p <= 7; ++p) {
      std::size_t next = 0;
      for (int r = 0; r < p; ++r) {
        const icp::RowRange range = icp::chunk_rows_of(n, r, p);
        EXPECT_EQ(range.begin, next) << n << " rows, " << p << " processes, rank " << r;
        if (range.rows > 0) {
          EXPECT_EQ(range.begin % icp::kReduceChunkRows, 0u);
        }
        // Processes differ by at most one chunk.
        EXPECT_LE(range.rows, (icp::chunk_count(n) + p - 1) / p * icp::kReduceChunkRows);
        next = range.begin + range.rows;
      }
      EXPECT_EQ(next, n) << n << " rows, " << p << " processes";
    }
  }
}

TEST(Reduce, KMeansSplitBetweenProcessesHasTheBitsOfOneProcess) {
  icp::set_threads(1);
  const icp::Matrix x = blobs(5 * icp::kReduceChunkRows + 123, 6, 5, 11);
  struct Case {
    icp::KMeansAlgorithm algorithm;
    icp::KMeansInit init;
    const char* name;
  };
  const Case cases[] = {
      {icp::KMeansAlgorithm::lloyd, icp::KMeansInit::kmeanspp, "lloyd/kmeans++"},
      {icp::KMeansAlgorithm::hamerly, icp::KMeansInit::kmeans_parallel, "hamerly/kmeans||"},
      {icp::KMeansAlgorithm::yinyang, icp::KMeansInit::random, "yinyang/random"},
      {icp::KMeansAlgorithm::minibatch, icp::KMeansInit::kmeanspp, "minibatch/kmeans++"},
  };
  for (const Case& c : cases) {
    icp::KMeansOptions o;
    o.k = 12;
    o.max_iter = 30;
    o.n_init = 2;
    o.seed = 5;
    o.algorithm = c.algorithm;
    o.init = c.init;
    const icp::KMeansResult one = icp::kmeans_fit(x.view(), o);
    ASSERT_GT(one.iterations, 1) << c.name;
    for (const int p : {2, 3, 4}) {
      expect_same_fit(one, fit_split(x, p, o), std::string(c.name) + " on " + std::to_string(p));
    }
  }
  icp::set_threads(0);
}

TEST(Reduce, SeedingWithoutACopyOfTheData) {
  // Every seeding of the exact algorithms shares chunk sums, potentials and the drawn rows, never
  // the data: the fit on 3 processes gathers no rows, and still has the bits of one process.
  // Duplicated rows (fewer distinct points than k) exercise the draws once every row sits on a
  // centre; there the empty clusters' relocation gathers rows (by design, and rare), so only the
  // bits are checked.
  icp::set_threads(1);
  icp::Matrix x(3 * icp::kReduceChunkRows + 50, 2);
  for (std::size_t i = 0; i < x.rows(); ++i) {
    x(i, 0) = static_cast<float>(i % 4);
    x(i, 1) = -0.0f;
  }
  for (const auto init :
       {icp::KMeansInit::kmeanspp, icp::KMeansInit::kmeans_parallel, icp::KMeansInit::random}) {
    for (const auto& [data, k] :
         {std::pair{blobs(5 * icp::kReduceChunkRows + 7, 4, 6, 3), 9}, std::pair{x, 6}}) {
      icp::KMeansOptions o;
      o.k = k;
      o.seed = 21;
      o.max_iter = 5;
      o.init = init;
      const icp::KMeansResult one = icp::kmeans_fit(data.view(), o);
      int gathers = -1;
      const auto parts = fit_split(data, 3, o, &gathers);
      const std::string what = std::string(icp::to_string(init)) + " k = " + std::to_string(k);
      if (k == 9) {
        EXPECT_EQ(gathers, 0) << what;
      }
      expect_same_fit(one, parts, what);
    }
  }
  icp::set_threads(0);
}

TEST(Reduce, WeightedKMeansSplitBetweenProcessesHasTheBitsOfOneProcess) {
  icp::set_threads(1);
  const icp::Matrix x = blobs(4 * icp::kReduceChunkRows + 321, 5, 6, 23);
  icp::KMeansOptions o;
  o.k = 10;
  o.max_iter = 20;
  o.algorithm = icp::KMeansAlgorithm::yinyang;
  o.sample_weight.resize(x.rows());
  for (std::size_t i = 0; i < x.rows(); ++i)
    o.sample_weight[i] = static_cast<float>((i * 7) % 5) * 0.5f;  // zeros included
  const icp::KMeansResult one = icp::kmeans_fit(x.view(), o);
  for (const int p : {2, 3})
    expect_same_fit(one, fit_split(x, p, o), "weighted, " + std::to_string(p));
  icp::set_threads(0);
}

TEST(Reduce, EmptyClusterRelocationSplitBetweenProcessesMatchesOneProcess) {
  icp::set_threads(1);
  const icp::Matrix x = blobs(3 * icp::kReduceChunkRows + 77, 4, 3, 3);
  icp::KMeansOptions o;
  o.k = 4;
  o.max_iter = 10;
  o.init = icp::KMeansInit::file;
  o.initial_centroids = icp::Matrix(4, 4);
  for (std::size_t j = 0; j < 4; ++j) {
    for (std::size_t t = 0; t < 4; ++t) {
      // Three centres on the data, one far from every row: its cluster starts empty.
      o.initial_centroids(j, t) = j < 3 ? x(j, t) : 5000.0f;
    }
  }
  const icp::KMeansResult one = icp::kmeans_fit(x.view(), o);
  ASSERT_FALSE(one.history.empty());
  ASSERT_GT(one.history.front().relocated, 0) << "the far centre should have been refilled";
  for (const int p : {2, 3})
    expect_same_fit(one, fit_split(x, p, o), std::to_string(p) + " processes");
  icp::set_threads(0);
}

TEST(Reduce, CheckpointStopAndResumeAcrossProcessCounts) {
  icp::set_threads(1);
  const icp::Matrix x = blobs(4 * icp::kReduceChunkRows + 500, 5, 7, 19);
  icp::KMeansOptions o;
  o.k = 9;
  o.n_init = 2;
  o.tol = 0.0;
  o.max_iter = 25;
  o.algorithm = icp::KMeansAlgorithm::hamerly;
  const icp::KMeansResult plain = icp::kmeans_fit(x.view(), o);
  ASSERT_GT(plain.iterations, 4);

  // Two processes; only rank 1 is "signalled", on its 4th poll (restart 1 is still running or
  // restart 2 has begun): both must stop after the same iteration, with the whole state.
  World w(2);
  std::vector<std::vector<icp::KMeansCheckpoint>> saved(2);
  std::vector<int> stopped(2, 0);
  std::vector<std::thread> ranks;
  for (int r = 0; r < 2; ++r) {
    ranks.emplace_back([&, r] {
      SimReducer red(w, r);
      const icp::Matrix mine = red.scatter_rows(x.view(), x.rows(), x.cols());
      int polls = 0;
      icp::KMeansOptions with = o;
      with.stop_requested = [&, r] { return r == 1 && ++polls == 4; };
      with.on_checkpoint = [&, r](const icp::KMeansCheckpoint& c) {
        saved[static_cast<std::size_t>(r)].push_back(c);
      };
      try {
        (void)icp::kmeans_fit(mine.view(), with, red);
      } catch (const icp::Interrupted&) {
        stopped[static_cast<std::size_t>(r)] = 1;
      }
    });
  }
  for (auto& t : ranks) t.join();
  ASSERT_EQ(stopped, (std::vector<int>{1, 1}));
  ASSERT_EQ(saved[0].size(), 1u);
  ASSERT_EQ(saved[1].size(), 1u);
  const icp::KMeansCheckpoint& state = saved[0][0];
  EXPECT_EQ(state.iteration, saved[1][0].iteration);
  EXPECT_EQ(state.assignment, saved[1][0].assignment);
  ASSERT_EQ(state.assignment.size(), x.rows()) << "labels of every process, gathered";

  // The same stop on one process saves the same state.
  int polls = 0;
  std::vector<icp::KMeansCheckpoint> single;
  icp::KMeansOptions one = o;
  one.stop_requested = [&] { return ++polls == 4; };
  one.on_checkpoint = [&](const icp::KMeansCheckpoint& c) { single.push_back(c); };
  EXPECT_THROW((void)icp::kmeans_fit(x.view(), one), icp::Interrupted);
  ASSERT_EQ(single.size(), 1u);
  EXPECT_EQ(single[0].restart, state.restart);
  EXPECT_EQ(single[0].iteration, state.iteration);
  EXPECT_EQ(single[0].centroids.storage(), state.centroids.storage());
  EXPECT_EQ(single[0].assignment, state.assignment);

  // Resumed on three processes, the fit ends with the bits of the uninterrupted one.
  icp::KMeansOptions again = o;
  again.resume = &state;
  expect_same_fit(plain, fit_split(x, 3, again), "resumed on 3 processes");
  icp::set_threads(0);
}
