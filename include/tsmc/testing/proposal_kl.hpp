#pragma once
/// @file
/// @brief Exact KL divergences between sigma and the proposal of a sampler, on an enumerable
/// problem: the sampler's own forced run along every finished sequence gives log q(s) exactly as
/// its runs compute it (Zhao et al. 2024, Eq. 23 with exact expectations).

#include <tsmc/core/error.hpp>
#include <tsmc/core/log_math.hpp>
#include <tsmc/core/random.hpp>
#include <tsmc/core/types.hpp>
#include <tsmc/testing/enumeration.hpp>

#include <cmath>
#include <limits>
#include <span>
#include <vector>

namespace tsmc::testing {

/// @brief Both directions of the KL between a proposal q and sigma, in nats.
struct exact_kls {
  double q_sigma = 0.0;  ///< KL(q || sigma) = sum_s q(s) log(q(s) / sigma(s)); +inf where sigma = 0 < q
  double sigma_q = 0.0;  ///< KL(sigma || q) = sum_s sigma(s) log(sigma(s) / q(s)); +inf where q = 0 < sigma
  double q_mass = 0.0;   ///< sum_s q(s) over the enumerated sequences (1 up to rounding)
};

/// @brief The exact KLs of a sampler's proposal (its configured proposal type, with its twist as
/// it is now) against sigma: one forced run along every finished sequence of the problem.
/// @param solution an enumerated problem with Z > 0, whose prompt, horizon and end token the sampler shares
/// @param smc a twisted_smc over the problem's model, twist and potential
/// @throw tsmc::invalid_argument if Z = 0 or the sampler's horizon or end token differs
template <class Sampler>
[[nodiscard]] exact_kls exact_proposal_kls(const exact_solution& solution, Sampler& smc) {
  constexpr const char* function = "testing::exact_proposal_kls";
  check_argument(solution.log_z() > neg_inf, function, "log Z", "must be finite (sigma is undefined when Z = 0)",
                 solution.log_z());
  check_size(function, "smc.options().horizon", smc.options().horizon, "the problem's horizon", solution.horizon());
  check_argument(smc.options().end_token == solution.problem().end_token, function, "smc.options().end_token",
                 "must equal the problem's end token", smc.options().end_token.value_or(-1));
  check_argument(smc.options().end_tokens == solution.problem().end_tokens, function, "smc.options().end_tokens",
                 "must equal the problem's end tokens; its size is", smc.options().end_tokens.size());
  default_engine rng(0);  // the forced run draws no token; its seed is unused
  const std::span<const token_sequence> sequences = solution.sequences();
  const auto result = smc.run_forced(solution.prompt(), sequences, rng);
  const auto log_sigma = solution.log_sigma();
  exact_kls out;
  constexpr double inf = std::numeric_limits<double>::infinity();
  for (std::size_t i = 0; i < sequences.size(); ++i) {
    const double lq = result.log_proposal[i];
    const double ls = log_sigma[i];
    if (lq > neg_inf) {
      out.q_mass += std::exp(lq);
      out.q_sigma = ls > neg_inf ? out.q_sigma + std::exp(lq) * (lq - ls) : inf;
    }
    if (ls > neg_inf) out.sigma_q = lq > neg_inf ? out.sigma_q + std::exp(ls) * (ls - lq) : inf;
  }
  return out;
}

}  // namespace tsmc::testing
