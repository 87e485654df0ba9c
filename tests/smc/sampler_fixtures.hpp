#pragma once
// Shared fixtures for the sampler tests: small enumerable problems and run helpers.

#include <tsmc/core/statistics.hpp>
#include <tsmc/resampling/schemes.hpp>
#include <tsmc/resampling/triggers.hpp>
#include <tsmc/smc/sampler.hpp>
#include <tsmc/testing/enumeration.hpp>
#include <tsmc/testing/toy_model.hpp>
#include <tsmc/testing/toy_potentials.hpp>
#include <tsmc/twists/no_twist.hpp>

#include <cmath>
#include <optional>
#include <vector>

namespace tsmc_test {

using namespace tsmc;
using namespace tsmc::testing;

/// An enumerable problem: V = 3 tokens, horizon 3, an optional end token 2.
struct small_problem {
  toy_problem problem;
  tabular_model model;
  random_potential potential;
  exact_solution solution;

  explicit small_problem(bool with_end_token, std::uint64_t seed = 7, std::size_t horizon = 3)
      : problem{3, horizon, token_sequence{1, 0}, with_end_token ? std::optional<token>(2) : std::nullopt},
        model(3, seed, 1.0),
        potential(seed + 100, 1.0),
        solution(enumerate(problem, model, potential)) {}

  [[nodiscard]] smc_options options(std::size_t particles, proposal_type proposal) const {
    return smc_options{.particles = particles, .horizon = problem.horizon, .proposal = proposal,
                       .end_token = problem.end_token};
  }
};

/// Five standard deviations of a normal: two-sided tail 5.7e-7 (one-sided 2.9e-7), the false-alarm
/// budget of one assertion; Bonferroni-divided thresholds are derived from it where several
/// comparisons share an assertion.
inline constexpr double z_limit = 5.0;

}  // namespace tsmc_test
