// Allocation for large per-row arrays: matrices and the account table's typed columns.
#pragma once

#include <cstddef>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>

namespace icp {

/// std::allocator that default-initializes instead of value-initializing: a vector of floats
/// sized without a value leaves its fresh pages untouched, so the parallel loop that first writes
/// them spreads the page faults (the kernel zeroes every fresh page) over the threads. Filling a
/// 1.8 GB matrix with zeros on one thread was more than half of the normalize stage at 10M rows.
///
/// Blocks of at least kHugeBlockBytes are aligned to 2 MiB and offered to the kernel as
/// transparent huge pages (madvise; Linux's default THP mode): one fault per 2 MiB instead of
/// per 4 KiB, and far fewer TLB misses when k-means and knn read rows out of order.
inline constexpr std::size_t kHugeBlockBytes = std::size_t{32} << 20;
namespace detail {
void* allocate_huge(std::size_t bytes);
void deallocate_huge(void* p) noexcept;
}  // namespace detail

template <class T>
struct DefaultInitAllocator : std::allocator<T> {
  template <class U>
  struct rebind {
    using other = DefaultInitAllocator<U>;
  };
  DefaultInitAllocator() noexcept = default;
  template <class U>
  DefaultInitAllocator(const DefaultInitAllocator<U>&) noexcept {}  // NOLINT: as std::allocator
  T* allocate(std::size_t n) {
    if (n >= kHugeBlockBytes / sizeof(T)) {
      if (n > static_cast<std::size_t>(-1) / sizeof(T)) throw std::bad_array_new_length();
      return static_cast<T*>(detail::allocate_huge(n * sizeof(T)));
    }
    return std::allocator<T>::allocate(n);
  }
  void deallocate(T* p, std::size_t n) noexcept {
    if (n >= kHugeBlockBytes / sizeof(T)) {
      detail::deallocate_huge(p);
      return;
    }
    std::allocator<T>::deallocate(p, n);
  }
  template <class U>
  void construct(U* p) noexcept(std::is_nothrow_default_constructible_v<U>) {
    ::new (static_cast<void*>(p)) U;
  }
  template <class U, class... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
};

}  // namespace icp
