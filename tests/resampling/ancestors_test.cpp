// Tests of slot-stable ancestors and index-order ancestors.

#include <catch2/catch.hpp>

#include <tsmc/resampling/ancestors.hpp>
#include <tsmc/resampling/schemes.hpp>

#include "resampling/resampling_test_support.hpp"

#include <algorithm>
#include <cstddef>
#include <vector>

using tsmc::particle_index;

TEST_CASE("slot_stable_ancestors: a worked example", "[resampling]") {
  const std::vector<particle_index> counts{0, 3, 0, 1, 1, 1};
  std::vector<particle_index> ancestors(6);
  tsmc::slot_stable_ancestors(counts, ancestors);
  CHECK(ancestors == std::vector<particle_index>{1, 1, 1, 3, 4, 5});
  const std::vector<particle_index> same{1, 1, 1};
  std::vector<particle_index> identity(3);
  tsmc::slot_stable_ancestors(same, identity);
  CHECK(identity == std::vector<particle_index>{0, 1, 2});
  const std::vector<particle_index> one{1};
  std::vector<particle_index> single(1, 7);
  tsmc::slot_stable_ancestors(one, single);
  CHECK(single[0] == 0);
  const std::vector<particle_index> last_takes_all{0, 0, 0, 4};
  std::vector<particle_index> a4(4);
  tsmc::slot_stable_ancestors(last_takes_all, a4);
  CHECK(a4 == std::vector<particle_index>{3, 3, 3, 3});
}

TEST_CASE("slot_stable_ancestors: survivors keep their slot, multiset equals counts, moves equal deaths",
          "[resampling]") {
  tsmc::default_engine rng{12};
  tsmc::multinomial scheme;
  for (std::size_t k : {1u, 2u, 9u, 64u, 1000u}) {
    for (double sigma : {0.1, 1.0, 3.0}) {
      const auto w = tsmc_test::random_weights(k, sigma, k * 7 + 1);
      std::vector<particle_index> counts(k), ancestors(k);
      for (int rep = 0; rep < 20; ++rep) {
        scheme.offspring(w, k, counts, rng);
        tsmc::slot_stable_ancestors(counts, ancestors);
        std::vector<particle_index> seen(k, 0);
        std::size_t moved = 0, dead = 0;
        for (std::size_t i = 0; i < k; ++i) {
          REQUIRE(ancestors[i] < k);
          ++seen[ancestors[i]];
          if (counts[i] >= 1) REQUIRE(ancestors[i] == i);
          moved += ancestors[i] != i ? 1u : 0u;
          dead += counts[i] == 0 ? 1u : 0u;
        }
        REQUIRE(seen == counts);
        REQUIRE(moved == dead);
      }
    }
  }
}

namespace {

// The definition walked directly: the m-th dead slot takes the m-th extra copy.
std::vector<particle_index> walked_slot_stable_ancestors(const std::vector<particle_index>& counts) {
  std::vector<particle_index> ancestors(counts.size());
  std::size_t dead = 0;
  for (std::size_t i = 0; i < counts.size(); ++i) ancestors[i] = static_cast<particle_index>(i);
  for (std::size_t i = 0; i < counts.size(); ++i) {
    for (particle_index extra = 1; extra < counts[i]; ++extra) {
      while (counts[dead] != 0) ++dead;
      ancestors[dead++] = static_cast<particle_index>(i);
    }
  }
  return ancestors;
}

}  // namespace

TEST_CASE("slot_stable_ancestors equals the direct walk, with a reused workspace of any past size",
          "[resampling]") {
  // Shapes that stress the marks: one particle takes all (first, middle, last), alternating
  // 2 and 0, long runs of deaths before and after the copies, and random counts from every
  // dispersion. One workspace serves all calls, so stale marks from larger calls are present.
  std::vector<std::vector<particle_index>> cases{{1}, {2, 0}, {0, 2}, {5, 0, 0, 0, 0}, {0, 0, 5, 0, 0}, {0, 0, 0, 0, 5},
                                                 {2, 0, 2, 0, 2, 0}, {0, 0, 3, 1, 0, 2, 0, 2}, {0, 0, 0, 1, 1, 4}};
  tsmc::default_engine rng{2024};
  tsmc::multinomial multinomial;
  tsmc::systematic systematic;
  for (std::size_t k : {3u, 17u, 256u, 5000u, 40u}) {
    for (double sigma : {0.1, 1.0, 3.0, 6.0}) {
      const auto w = tsmc_test::random_weights(k, sigma, k * 13 + 5);
      std::vector<particle_index> counts(k);
      multinomial.offspring(w, k, counts, rng);
      cases.push_back(counts);
      systematic.offspring(w, k, counts, rng);
      cases.push_back(counts);
    }
  }
  std::vector<particle_index> workspace;
  for (const auto& counts : cases) {
    std::vector<particle_index> ancestors(counts.size(), 12345);
    tsmc::slot_stable_ancestors(counts, ancestors, workspace);
    REQUIRE(ancestors == walked_slot_stable_ancestors(counts));
    std::vector<particle_index> fresh(counts.size());
    tsmc::slot_stable_ancestors(counts, fresh);
    REQUIRE(fresh == ancestors);
  }
  CHECK(workspace.size() == 5000);
}

TEST_CASE("slot_stable_ancestors rejects bad sizes and sums", "[resampling]") {
  std::vector<particle_index> ancestors(3);
  const std::vector<particle_index> too_many{2, 2, 0};
  const std::vector<particle_index> four{1, 1, 1, 1};
  CHECK_THROWS_WITH(tsmc::slot_stable_ancestors(too_many, ancestors),
                    "tsmc::slot_stable_ancestors: sum(counts) must equal counts.size() 3, got 4");
  CHECK_THROWS_WITH(tsmc::slot_stable_ancestors(four, ancestors),
                    "tsmc::slot_stable_ancestors: ancestors.size() must equal counts.size() 4, got 3");
  const std::vector<particle_index> too_few{1, 0, 0};
  CHECK_THROWS_AS(tsmc::slot_stable_ancestors(too_few, ancestors), tsmc::invalid_argument);
}

TEST_CASE("ancestors_from_counts writes index order and checks the size", "[resampling]") {
  const std::vector<particle_index> counts{2, 0, 1, 3};
  std::vector<particle_index> ancestors(6);
  tsmc::ancestors_from_counts(counts, ancestors);
  CHECK(ancestors == std::vector<particle_index>{0, 0, 2, 3, 3, 3});
  std::vector<particle_index> wrong(5);
  CHECK_THROWS_WITH(tsmc::ancestors_from_counts(counts, wrong),
                    "tsmc::ancestors_from_counts: ancestors.size() must equal sum(counts) 6, got 5");
}
