#include "mpi_reducer.hpp"

#include <mpi.h>

#include <climits>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "icp/error.hpp"

namespace icp::mpi {

namespace {

void check(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, text, &len);
  throw Error(std::string("MPI ") + what + ": " + std::string(text, static_cast<std::size_t>(len)));
}

/// MPI counts are int: fail clearly rather than wrap. Matrices travel as rows (a derived type of
/// `cols` floats), so their limit is INT_MAX rows, not INT_MAX floats (49M rows at d = 44).
int as_count(std::size_t n, const char* what) {
  if (n > static_cast<std::size_t>(INT_MAX))
    throw Error(std::string("MPI ") + what + ": " + std::to_string(n) +
                " elements exceed one message (INT_MAX); use more processes or fewer rows");
  return static_cast<int>(n);
}

/// One matrix row as an MPI datatype, freed with the scope.
struct RowType {
  explicit RowType(std::size_t cols) {
    check(MPI_Type_contiguous(as_count(cols, "row type"), MPI_FLOAT, &type), "row type");
    check(MPI_Type_commit(&type), "row type");
  }
  ~RowType() { MPI_Type_free(&type); }
  RowType(const RowType&) = delete;
  RowType& operator=(const RowType&) = delete;
  MPI_Datatype type = MPI_DATATYPE_NULL;
};

class MpiReducer final : public Reducer {
 public:
  MpiReducer() {
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
  }

  void sum(std::span<double> v) override { allreduce(v.data(), v.size(), MPI_DOUBLE, MPI_SUM); }
  void sum(std::span<std::int64_t> v) override {
    allreduce(v.data(), v.size(), MPI_INT64_T, MPI_SUM);
  }
  void min(std::span<double> v) override { allreduce(v.data(), v.size(), MPI_DOUBLE, MPI_MIN); }
  void max(std::span<double> v) override { allreduce(v.data(), v.size(), MPI_DOUBLE, MPI_MAX); }

  std::vector<double> gather_chunks(std::vector<double> local, std::size_t) override {
    std::vector<double> out;
    allgatherv(local.data(), local.size(), out, MPI_DOUBLE, "gather_chunks");
    return out;
  }
  Matrix gather_rows(MatrixView local) override {
    const Layout layout = gather_layout(local.rows, "gather_rows");
    Matrix out = Matrix::uninitialized(layout.total, local.cols);  // every row received below
    if (local.cols == 0) return out;
    RowType row(local.cols);
    gather_into(local.data, layout, out.data(), row.type, "gather_rows");
    return out;
  }
  std::vector<float> gather(std::span<const float> local) override {
    std::vector<float> out;
    allgatherv(local.data(), local.size(), out, MPI_FLOAT, "gather");
    return out;
  }
  std::vector<double> gather(std::span<const double> local) override {
    std::vector<double> out;
    allgatherv(local.data(), local.size(), out, MPI_DOUBLE, "gather");
    return out;
  }
  std::vector<std::int32_t> gather(std::span<const std::int32_t> local) override {
    std::vector<std::int32_t> out;
    allgatherv(local.data(), local.size(), out, MPI_INT32_T, "gather");
    return out;
  }
  Matrix scatter_rows(MatrixView all, std::size_t total_rows, std::size_t cols) override {
    std::vector<int> counts(static_cast<std::size_t>(size_)), displs(counts.size());
    for (int r = 0; r < size_; ++r) {
      const RowRange range = chunk_rows_of(total_rows, r, size_);
      counts[static_cast<std::size_t>(r)] = as_count(range.rows, "scatter_rows");
      displs[static_cast<std::size_t>(r)] = as_count(range.begin, "scatter_rows");
    }
    const RowRange mine = chunk_rows_of(total_rows, rank_, size_);
    Matrix out = Matrix::uninitialized(mine.rows, cols);  // every row received below
    if (cols == 0) return out;
    RowType row(cols);
    check(MPI_Scatterv(rank_ == 0 ? all.data : nullptr, counts.data(), displs.data(), row.type,
                       out.data(), counts[static_cast<std::size_t>(rank_)], row.type, 0,
                       MPI_COMM_WORLD),
          "scatter_rows");
    return out;
  }
  void broadcast(std::span<std::int64_t> v) override {
    check(MPI_Bcast(v.data(), as_count(v.size(), "broadcast"), MPI_INT64_T, 0, MPI_COMM_WORLD),
          "broadcast");
  }
  void broadcast(std::span<float> v) override {
    check(MPI_Bcast(v.data(), as_count(v.size(), "broadcast"), MPI_FLOAT, 0, MPI_COMM_WORLD),
          "broadcast");
  }
  int rank() const noexcept override { return rank_; }
  int size() const noexcept override { return size_; }

 private:
  void allreduce(void* data, std::size_t n, MPI_Datatype type, MPI_Op op) {
    check(MPI_Allreduce(MPI_IN_PLACE, data, as_count(n, "allreduce"), type, op, MPI_COMM_WORLD),
          "allreduce");
  }

  /// Every process's count of items, where its items go in the gathered whole, and the total.
  struct Layout {
    int mine = 0;
    std::vector<int> counts, displs;
    std::size_t total = 0;
  };
  Layout gather_layout(std::size_t n, const char* what) {
    Layout l;
    l.mine = as_count(n, what);
    l.counts.resize(static_cast<std::size_t>(size_));
    l.displs.resize(l.counts.size());
    check(MPI_Allgather(&l.mine, 1, MPI_INT, l.counts.data(), 1, MPI_INT, MPI_COMM_WORLD), what);
    for (std::size_t r = 0; r < l.counts.size(); ++r) {
      l.displs[r] = as_count(l.total, what);
      l.total += static_cast<std::size_t>(l.counts[r]);
    }
    as_count(l.total, what);
    return l;
  }
  void gather_into(const void* data, const Layout& l, void* out, MPI_Datatype type,
                   const char* what) {
    check(MPI_Allgatherv(data, l.mine, type, out, l.counts.data(), l.displs.data(), type,
                         MPI_COMM_WORLD),
          what);
  }

  template <class T, class Vector>
  void allgatherv(const T* data, std::size_t n, Vector& out, MPI_Datatype type, const char* what) {
    const Layout layout = gather_layout(n, what);
    out.resize(layout.total);
    gather_into(data, layout, out.data(), type, what);
  }

  int rank_ = 0;
  int size_ = 1;
};

}  // namespace

bool launched() noexcept {
  // OpenMPI's mpirun, PMIx launchers (srun --mpi=pmix) and MPICH's Hydra respectively.
  return std::getenv("OMPI_COMM_WORLD_SIZE") != nullptr || std::getenv("PMIX_RANK") != nullptr ||
         std::getenv("PMI_SIZE") != nullptr;
}

Session::Session() {
  int provided = 0;
  MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
  // Errors come back as codes (turned into icp::Error) instead of killing the job unexplained.
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  reducer_ = std::make_unique<MpiReducer>();
  MPI_Comm node;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
  MPI_Comm_size(node, &local_size_);
  MPI_Comm_free(&node);
}

Session::~Session() {
  MPI_Finalize();
}

void Session::abort(int code) noexcept {
  MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code);
}

}  // namespace icp::mpi
