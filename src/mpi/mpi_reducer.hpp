// icp::Reducer over MPI_COMM_WORLD, and the MPI lifetime of one `icp` process. Built only with
// -DICP_MPI=ON and linked only into the icp program: the library (icp::core) never sees MPI.
#pragma once

#include <memory>

#include "icp/reduce.hpp"

namespace icp::mpi {

/// Whether this process was started by an MPI launcher (mpirun, srun): the launcher's rank
/// variables are set. A plain `icp run` never initializes MPI.
bool launched() noexcept;

/// MPI_Init_thread (funneled: only the main thread calls MPI; OpenMP and oneTBB threads never do)
/// on construction, MPI_Finalize on destruction.
class Session {
 public:
  Session();
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
  Reducer& reducer() noexcept { return *reducer_; }
  /// Processes of this job on this node (to share the cores without oversubscribing them).
  int local_size() const noexcept { return local_size_; }
  /// Ends every process of the job with `code` (a failing rank must not leave the others
  /// waiting in a collective, and no rank writes output after another failed).
  [[noreturn]] void abort(int code) noexcept;

 private:
  std::unique_ptr<Reducer> reducer_;
  int local_size_ = 1;
};

}  // namespace icp::mpi
