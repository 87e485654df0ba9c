#pragma once
// Shared fixtures of the MPI tests: an enumerable toy problem (exact log Z), a communicator, and
// bit-level comparisons.

#include <tsmc/core/random.hpp>
#include <tsmc/distributed/communicator.hpp>
#include <tsmc/smc/stateless_model.hpp>
#include <tsmc/testing/enumeration.hpp>
#include <tsmc/testing/toy_model.hpp>
#include <tsmc/testing/toy_potentials.hpp>

#include <bit>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <vector>

namespace tsmc_mpi_test {

using namespace tsmc;
using namespace tsmc::testing;

/// The bits of a double (so that tests compare estimates bit for bit, NaN and -inf included).
inline std::uint64_t bits(double x) { return std::bit_cast<std::uint64_t>(x); }

/// Whether two spans of doubles are equal bit for bit.
inline bool same_bits(std::span<const double> a, std::span<const double> b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size_bytes()) == 0);
}

/// V = 4 tokens (3 is the end token), horizon 4, prompt {1, 0}: a random model and a random
/// potential, enumerated exactly.
struct toy {
  toy_problem problem{4, 4, token_sequence{1, 0}, token{3}};
  tabular_model model;
  random_potential potential;
  exact_solution solution;
  enumeration_sampler exact;

  explicit toy(std::uint64_t seed = 7)
      : model(4, seed, 1.0), potential(seed + 100, 1.0), solution(enumerate(problem, model, potential)),
        exact(solution) {}
};

}  // namespace tsmc_mpi_test
