// Steady state allocates nothing: once a resampler (and its scheme's workspace) has seen a size,
// further calls of that size make no heap allocation. Global operator new is replaced in this
// binary by a counting one (malloc underneath), so the count covers every allocation the calls
// could make, including those of std::vector growth inside the library.

#include <catch2/catch.hpp>

#include <tsmc/resampling/resampler.hpp>

#include "resampling/resampling_test_support.hpp"

#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdlib>
#include <new>
#include <type_traits>
#include <vector>

// AddressSanitizer brings its own operator new and delete; replacing them there mixes the two
// (ASan reports alloc-dealloc-mismatch), so under ASan the count is not taken.
#if defined(__SANITIZE_ADDRESS__)
#define TSMC_TEST_COUNT_ALLOCATIONS 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TSMC_TEST_COUNT_ALLOCATIONS 0
#endif
#endif
#ifndef TSMC_TEST_COUNT_ALLOCATIONS
#define TSMC_TEST_COUNT_ALLOCATIONS 1
#endif

namespace {
std::atomic<std::size_t> heap_allocations{0};
}  // namespace

#if TSMC_TEST_COUNT_ALLOCATIONS
// Out of line: inlined, g++ 12 sees free() on a pointer from operator new and warns
// (-Wmismatched-new-delete), although both sides here are malloc and free.
[[gnu::noinline]] void* operator new(std::size_t size) {
  heap_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
[[gnu::noinline]] void operator delete(void* p) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete(void* p, std::size_t) noexcept { std::free(p); }
#endif

using tsmc::particle_index;

TEMPLATE_TEST_CASE("resampler: repeated calls of one size allocate nothing", "[resampling]", tsmc::systematic,
                   tsmc::stratified, tsmc::multinomial, tsmc::residual, tsmc_test::residual_multinomial, tsmc::ssp,
                   tsmc::killing) {
  if (TSMC_TEST_COUNT_ALLOCATIONS == 0) {
    WARN("allocations are not counted under AddressSanitizer");
    return;
  }
  constexpr std::size_t k = 2000;
  std::vector<std::vector<double>> log_weights;  // prepared before counting
  for (std::uint64_t set = 0; set < 8; ++set) {
    const auto w = tsmc_test::random_weights(k, 0.5 + static_cast<double>(set) * 0.5, 40 + set);
    std::vector<double> l(k);
    for (std::size_t i = 0; i < k; ++i) l[i] = std::log(w[i]);
    log_weights.push_back(std::move(l));
  }
  tsmc::resampler<TestType> r;
  tsmc::default_engine rng{5};
  std::vector<particle_index> same(k), fewer(k / 2 + 3);
  r.resample(log_weights[0], same, rng);  // grow every buffer once
  if constexpr (tsmc_test::allows_any_n<TestType>) r.resample(log_weights[0], fewer, rng);  // (killing: n == K)
  if constexpr (std::is_same_v<TestType, tsmc::multinomial>) r.resample_conditional(log_weights[0], same, rng);
  const std::size_t before = heap_allocations.load();
  for (int call = 0; call < 100; ++call) {
    const auto& l = log_weights[static_cast<std::size_t>(call) % log_weights.size()];
    r.resample(l, same, rng);
    if constexpr (std::is_same_v<TestType, tsmc::multinomial>) r.resample_conditional(l, same, rng);
    if constexpr (tsmc_test::allows_any_n<TestType>) r.resample(l, fewer, rng);
  }
  CHECK(heap_allocations.load() - before == 0);
  // The counter counts. (A direct call: clang may elide a new-expression whose memory is unused.)
  const std::size_t at = heap_allocations.load();
  void* block = ::operator new(64);
  ::operator delete(block);
  CHECK(heap_allocations.load() - at == 1);
}
