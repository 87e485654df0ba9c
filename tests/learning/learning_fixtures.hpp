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

#include <map>
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

  /// @param tabulate precompute the model's rows for every prefix (a faster model for long training runs)
  learning_toy_t(bool with_end_token, std::uint64_t seed, Pot pot, std::size_t vocab = 3, std::size_t horizon = 3,
                 bool tabulate = false)
      : problem{vocab, horizon, token_sequence{1, 0},
                with_end_token ? std::optional<token>(static_cast<token>(vocab - 1)) : std::nullopt},
        model(tabulate ? tabulated(tabular_model(vocab, seed, 1.0), problem) : tabular_model(vocab, seed, 1.0)),
        potential(std::move(pot)),
        solution(enumerate(problem, model, potential)) {}

  learning_toy_t(bool with_end_token, std::uint64_t seed)
    requires std::is_same_v<Pot, random_potential>
      : learning_toy_t(with_end_token, seed, random_potential(seed + 100, 1.0)) {}

  /// The same model as an explicit table over every prefix shorter than the horizon.
  static tabular_model tabulated(const tabular_model& random, const toy_problem& problem) {
    std::map<token_sequence, std::vector<double>> table;
    std::vector<double> row(problem.vocab_size);
    token_sequence prefix;
    auto visit = [&](auto&& self) -> void {
      random.next_log_probs(problem.prompt, prefix, row);
      auto& probabilities = table[prefix];
      for (double x : row) probabilities.push_back(std::exp(x));
      if (prefix.size() + 1 >= problem.horizon) return;
      for (token v = 0; v < static_cast<token>(problem.vocab_size); ++v) {
        if (problem.end_token && v == *problem.end_token) continue;
        prefix.push_back(v);
        self(self);
        prefix.pop_back();
      }
    };
    visit(visit);
    return tabular_model::from_table(problem.vocab_size, std::move(table), table_precision::exact);
  }

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
