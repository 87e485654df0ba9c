#pragma once
// Shared fixtures for the learning tests: an enumerable problem whose potential hides its
// next-token form (so psi_T is learned too), and helpers.

#include <tsmc/core/random.hpp>
#include <tsmc/learning/objectives.hpp>
#include <tsmc/learning/problem.hpp>
#include <tsmc/testing/enumeration.hpp>
#include <tsmc/testing/toy_model.hpp>
#include <tsmc/testing/toy_potentials.hpp>
#include <tsmc/twists/sigmoid_twist.hpp>
#include <tsmc/twists/tabular_twist.hpp>

#include <optional>
#include <utility>

namespace tsmc_test {

using namespace tsmc;
using namespace tsmc::testing;

/// V = 3 tokens, horizon 3 (or as given), an optional end token 2, a random model and a potential.
template <class Pot = random_potential>
struct learning_toy_t {
  toy_problem problem;
  tabular_model model;
  hide_next_token_form<Pot> potential;
  exact_solution solution;

  learning_toy_t(bool with_end_token, std::uint64_t seed, Pot pot, std::size_t vocab = 3, std::size_t horizon = 3)
      : problem{vocab, horizon, token_sequence{1, 0},
                with_end_token ? std::optional<token>(static_cast<token>(vocab - 1)) : std::nullopt},
        model(vocab, seed, 1.0),
        potential(std::move(pot)),
        solution(enumerate(problem, model, potential)) {}

  learning_toy_t(bool with_end_token, std::uint64_t seed)
    requires std::is_same_v<Pot, random_potential>
      : learning_toy_t(with_end_token, seed, random_potential(seed + 100, 1.0)) {}

  template <class Twist>
  learning_problem<tabular_model, Twist, hide_next_token_form<Pot>> learning(Twist& twist, std::size_t batch) {
    return {model, twist, potential, problem.prompt,
            learning_options{.batch = batch, .horizon = problem.horizon, .end_token = problem.end_token}};
  }
};

using learning_toy = learning_toy_t<>;

/// Sets every parameter of a tabular twist to scale * N(0, 1).
inline void randomize(tabular_twist& twist, std::uint64_t seed, double scale) {
  default_engine engine(seed);
  for (Eigen::Index i = 0; i < twist.values().size(); ++i) twist.values()[i] = scale * standard_normal(engine);
}

}  // namespace tsmc_test
