#pragma once
/// @file
/// @brief The approximate twist of the toy-problem programs (bounds_sweep, distributed_bounds):
/// the optimal twist psi* with multiplicative noise, log psi = log psi* + noise, a stand-in for a
/// learned twist whose quality is known.

#include <tsmc/core/concepts.hpp>
#include <tsmc/core/types.hpp>
#include <tsmc/testing/enumeration.hpp>
#include <tsmc/testing/toy_potentials.hpp>

namespace tsmc_examples {

/// @brief log psi = log psi* + the random twist's log values (stateless: no per-particle hooks).
struct noisy_twist {
  tsmc::testing::optimal_twist exact;  ///< psi*, from the enumerated problem
  tsmc::testing::random_twist noise;   ///< the multiplicative noise
  tsmc::log_prob_matrix scratch{};     ///< the noise's rows

  /// @brief out(k, v) = log psi*(prefix_k + v) + noise(prefix_k + v).
  template <class Model>
  void log_twist(const tsmc::step_context<Model>& ctx, tsmc::log_prob_ref out) {
    exact.log_twist(ctx, out);
    scratch.resize(out.rows(), out.cols());
    noise.log_twist(ctx, scratch);
    out += scratch;
  }
};

}  // namespace tsmc_examples
