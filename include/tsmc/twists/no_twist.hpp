#pragma once
/// @file
/// @brief The trivial twist psi = 1: the twisted proposal becomes the base model and SMC becomes
/// bootstrap SMC with the potential as the final weight.

#include <tsmc/core/concepts.hpp>
#include <tsmc/core/types.hpp>

namespace tsmc {

/// @brief psi_t = 1 for every prefix and step (log psi = 0). The sampler recognises it through
/// `is_unit_twist` and skips the K x V twist pass altogether.
struct no_twist {
  /// @brief Marks the twist as identically one, so the sampler need not evaluate it.
  static constexpr bool is_unit_twist = true;

  /// @brief Writes log psi = 0 for every particle and candidate token.
  /// @param out K x V matrix to fill
  template <class Model>
  void log_twist(const step_context<Model>& /*ctx*/, log_prob_ref out) const {
    out.setZero();
  }
};

}  // namespace tsmc
