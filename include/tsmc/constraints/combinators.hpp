#pragma once
/// @file
/// @brief Potentials built from potentials: the product (log phi = sum of the parts' log phi),
/// the tempered potential (beta log phi), and all_of / any_of of indicator potentials.
///
/// Next-token form: a combination has log_potential_next exactly when every part declares one
/// (then the sampler's twisted proposal uses psi_T = phi exactly at the last step). When a part
/// has none, the combination has none either, and the sampler falls back to the sequence form:
/// phi of the finished sequences, with the twist's psi_T and the correction phi / psi_T (see
/// sampler.hpp). This is decided at compile time (detail::declares_log_potential_next).

#include <tsmc/core/concepts.hpp>
#include <tsmc/core/error.hpp>
#include <tsmc/core/types.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <span>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace tsmc {

namespace detail {

/// The sum of log phi (a product of potentials; all_of for indicators).
struct sum_combine {
  static double apply(double a, double b) noexcept { return a + b; }
  template <class A, class B>
  static void apply_rows(A&& acc, const B& x) {
    acc += x;
  }
};

/// The largest log phi (any_of for indicators: phi = 1 if any part is 1).
struct max_combine {
  static double apply(double a, double b) noexcept { return std::max(a, b); }
  template <class A, class B>
  static void apply_rows(A&& acc, const B& x) {
    acc = acc.cwiseMax(x);
  }
};

/// Every part declares log_potential_next.
template <class... Parts>
inline constexpr bool all_declare_next = (declares_log_potential_next<std::remove_cvref_t<Parts>> && ...);

/// The next-token form of a combination, present only when every part has one.
template <class Derived, bool HasNext>
struct combined_next {};

template <class Derived>
struct combined_next<Derived, true> {
  /// @brief log phi(prefix_k + v) for every candidate v: the parts' next-token forms combined.
  template <class Model>
  void log_potential_next(const step_context<Model>& ctx, log_prob_ref out) {
    static_cast<Derived*>(this)->combine_next(ctx, out);
  }
};

}  // namespace detail

/// @brief Potentials combined value by value: Combine::apply over the parts' log phi.
/// @tparam Combine detail::sum_combine (product) or detail::max_combine (any_of)
/// @tparam Parts the potentials, held by value (a reference type holds a reference)
template <class Combine, class... Parts>
class combined_potential
    : public detail::combined_next<combined_potential<Combine, Parts...>, detail::all_declare_next<Parts...>> {
  static_assert(sizeof...(Parts) >= 1, "tsmc::combined_potential: combine at least one potential");
  static_assert((Potential<std::remove_cvref_t<Parts>> && ...),
                "tsmc::combined_potential: every part must model tsmc::Potential (log_potential(sequences, out))");
  friend struct detail::combined_next<combined_potential<Combine, Parts...>, detail::all_declare_next<Parts...>>;

 public:
  /// @brief Whether the combination has the exact next-token form (every part has one).
  static constexpr bool has_next_token_form = detail::all_declare_next<Parts...>;

  /// @brief Combines the parts.
  explicit combined_potential(Parts... parts) : parts_(std::forward<Parts>(parts)...) {}

  /// @brief log phi of finished sequences: the parts' values combined.
  void log_potential(std::span<const token_sequence> sequences, std::span<double> out) {
    scratch_.resize(out.size());
    bool first = true;
    std::apply(
        [&](auto&... part) {
          (
              [&](auto& p) {
                if (first) {
                  p.log_potential(sequences, out);
                  first = false;
                } else {
                  p.log_potential(sequences, std::span<double>(scratch_));
                  for (std::size_t i = 0; i < out.size(); ++i) out[i] = Combine::apply(out[i], scratch_[i]);
                }
              }(part),
              ...);
        },
        parts_);
  }

  /// @brief The parts.
  [[nodiscard]] std::tuple<Parts...>& parts() noexcept { return parts_; }

 private:
  template <class Model>
  void combine_next(const step_context<Model>& ctx, log_prob_ref out) {
    bool first = true;
    std::apply(
        [&](auto&... part) {
          (
              [&](auto& p) {
                if (first) {
                  p.log_potential_next(ctx, out);
                  first = false;
                } else {
                  if (next_scratch_.rows() != out.rows() || next_scratch_.cols() != out.cols())
                    next_scratch_.resize(out.rows(), out.cols());
                  p.log_potential_next(ctx, next_scratch_);
                  for (Eigen::Index k = 0; k < out.rows(); ++k) {
                    if (!ctx.active.empty() && !ctx.active[static_cast<std::size_t>(k)]) continue;
                    Combine::apply_rows(out.row(k).array(), next_scratch_.row(k).array());
                  }
                }
              }(part),
              ...);
        },
        parts_);
  }

  std::tuple<Parts...> parts_;
  std::vector<double> scratch_;
  log_prob_matrix next_scratch_;
};

/// @brief The product of potentials: log phi = sum of the parts' log phi.
template <class... Parts>
using product_potential = combined_potential<detail::sum_combine, Parts...>;

/// @brief The product of potentials (copies of the parts; pass std::ref-like wrappers or use
/// product_potential<P&...> to hold references).
template <class... Parts>
[[nodiscard]] product_potential<Parts...> product(Parts... parts) {
  return product_potential<Parts...>(std::move(parts)...);
}

/// @brief all_of indicators: phi = 1 iff every part is 1 (the product of indicator potentials,
/// whose log phi is 0 or -inf).
template <class... Parts>
[[nodiscard]] product_potential<Parts...> all_of(Parts... parts) {
  return product_potential<Parts...>(std::move(parts)...);
}

/// @brief any_of indicators: phi = 1 iff some part is 1 (log phi = the largest part's; for
/// general potentials, the largest phi).
template <class... Parts>
using any_of_potential = combined_potential<detail::max_combine, Parts...>;

/// @brief any_of indicators (copies of the parts).
template <class... Parts>
[[nodiscard]] any_of_potential<Parts...> any_of(Parts... parts) {
  return any_of_potential<Parts...>(std::move(parts)...);
}

namespace detail {

/// beta * x with beta * (-inf) = -inf (beta > 0).
inline double temper(double beta, double x) noexcept {
  return x == -std::numeric_limits<double>::infinity() ? x : beta * x;
}

template <class Derived, bool HasNext>
struct tempered_next {};

template <class Derived>
struct tempered_next<Derived, true> {
  /// @brief beta log phi(prefix_k + v) for every candidate v.
  template <class Model>
  void log_potential_next(const step_context<Model>& ctx, log_prob_ref out) {
    auto& self = *static_cast<Derived*>(this);
    self.part().log_potential_next(ctx, out);
    const double beta = self.beta();
    for (Eigen::Index k = 0; k < out.rows(); ++k) {
      if (!ctx.active.empty() && !ctx.active[static_cast<std::size_t>(k)]) continue;
      for (Eigen::Index v = 0; v < out.cols(); ++v) out(k, v) = temper(beta, out(k, v));
    }
  }
};

}  // namespace detail

/// @brief A tempered potential: log phi = beta log phi_part (phi^beta), beta > 0.
/// Has the next-token form exactly when the part has.
template <class Part>
class tempered_potential
    : public detail::tempered_next<tempered_potential<Part>, detail::all_declare_next<Part>> {
  static_assert(Potential<std::remove_cvref_t<Part>>, "tsmc::tempered_potential: Part must model tsmc::Potential");

 public:
  /// @brief Whether the tempered potential has the exact next-token form.
  static constexpr bool has_next_token_form = detail::all_declare_next<Part>;

  /// @brief phi_part^beta.
  /// @throw tsmc::invalid_argument unless beta is finite and > 0
  tempered_potential(Part part, double beta) : part_(std::forward<Part>(part)), beta_(beta) {
    check_argument(std::isfinite(beta) && beta > 0.0, "tempered_potential::tempered_potential", "beta",
                   "must be finite and > 0", beta);
  }

  /// @brief beta log phi of finished sequences.
  void log_potential(std::span<const token_sequence> sequences, std::span<double> out) {
    part_.log_potential(sequences, out);
    for (double& x : out) x = detail::temper(beta_, x);
  }

  /// @brief beta.
  [[nodiscard]] double beta() const noexcept { return beta_; }
  /// @brief The part.
  [[nodiscard]] std::remove_reference_t<Part>& part() noexcept { return part_; }

 private:
  Part part_;
  double beta_;
};

}  // namespace tsmc
