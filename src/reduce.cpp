#include "icp/reduce.hpp"

namespace icp {

namespace {
class LocalReducer final : public Reducer {
 public:
  void sum(std::span<double>) override {}
  void sum(std::span<std::int64_t>) override {}
  void min(std::span<double>) override {}
  void max(std::span<double>) override {}
  int rank() const noexcept override { return 0; }
  int size() const noexcept override { return 1; }
};
}  // namespace

Reducer& local_reducer() noexcept {
  static LocalReducer reducer;
  return reducer;
}

}  // namespace icp
