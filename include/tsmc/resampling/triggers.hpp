#pragma once
/// @file
/// @brief When to resample: always, never, when the ESS falls below a fraction of the particle
/// count, and their compositions with && and ||.
///
///     auto when = tsmc::ess_below(0.5) || tsmc::always;   // a composed trigger, a value type
///     if (when(tsmc::resampling_state{.ess = ess, .particles = k, .step = t, .horizon = T})) ...

#include <tsmc/core/error.hpp>

#include <concepts>
#include <cstddef>
#include <type_traits>
#include <utility>

namespace tsmc {

/// @brief What a trigger sees before a resampling decision.
struct resampling_state {
  double ess = 0.0;           ///< effective sample size of the current weights, in [0, particles]
  std::size_t particles = 0;  ///< K, the number of particles
  std::size_t step = 0;       ///< the current step t (1-based)
  std::size_t horizon = 0;    ///< T, the maximum number of steps
};

/// @brief A trigger: a copyable value type with `bool operator()(const resampling_state&) const`.
template <class T>
concept ResamplingTrigger = std::copy_constructible<T> && requires(const T& trigger, const resampling_state& state) {
  { trigger(state) } -> std::convertible_to<bool>;
};

/// @brief Resamples at every step.
struct always_trigger {
  /// @brief Always true.
  /// @return true
  [[nodiscard]] constexpr bool operator()(const resampling_state&) const noexcept { return true; }
};

/// @brief Never resamples (sequential importance sampling).
struct never_trigger {
  /// @brief Always false.
  /// @return false
  [[nodiscard]] constexpr bool operator()(const resampling_state&) const noexcept { return false; }
};

/// @brief The trigger that always fires.
inline constexpr always_trigger always{};
/// @brief The trigger that never fires.
inline constexpr never_trigger never{};

/// @brief Fires when ess < fraction * particles. Build it with tsmc::ess_below, which checks the
/// fraction. With fraction = 1 it fires unless the weights are exactly uniform.
struct ess_below_trigger {
  double fraction = 0.5;  ///< in (0, 1]

  /// @brief Whether the ESS is below the threshold.
  /// @param state the current state
  /// @return state.ess < fraction * state.particles
  [[nodiscard]] constexpr bool operator()(const resampling_state& state) const noexcept {
    return state.ess < fraction * static_cast<double>(state.particles);
  }
};

/// @brief The adaptive trigger ess < fraction * K.
/// @param fraction the threshold as a fraction of the particle count, in (0, 1]
/// @return the trigger
/// @throw tsmc::invalid_argument "tsmc::ess_below: fraction must be in (0, 1], got 1.7" otherwise
[[nodiscard]] inline ess_below_trigger ess_below(double fraction) {
  check_unit_fraction("ess_below", "fraction", fraction);
  return ess_below_trigger{fraction};
}

/// @brief Fires when both triggers fire (left evaluated first, short-circuit).
/// @tparam Left a ResamplingTrigger
/// @tparam Right a ResamplingTrigger
template <ResamplingTrigger Left, ResamplingTrigger Right>
struct all_of_trigger {
  Left left;    ///< first trigger
  Right right;  ///< second trigger

  /// @brief left(state) && right(state).
  /// @param state the current state
  /// @return whether both fire
  [[nodiscard]] constexpr bool operator()(const resampling_state& state) const {
    return static_cast<bool>(left(state)) && static_cast<bool>(right(state));
  }
};

/// @brief Fires when either trigger fires (left evaluated first, short-circuit).
/// @tparam Left a ResamplingTrigger
/// @tparam Right a ResamplingTrigger
template <ResamplingTrigger Left, ResamplingTrigger Right>
struct any_of_trigger {
  Left left;    ///< first trigger
  Right right;  ///< second trigger

  /// @brief left(state) || right(state).
  /// @param state the current state
  /// @return whether at least one fires
  [[nodiscard]] constexpr bool operator()(const resampling_state& state) const {
    return static_cast<bool>(left(state)) || static_cast<bool>(right(state));
  }
};

namespace detail {
/// A trigger type that operator&& / operator|| may take: a ResamplingTrigger that is not itself
/// convertible to bool (so bools, pointers and boolean-like classes keep their built-in meaning).
template <class T>
concept composable_trigger = ResamplingTrigger<std::remove_cvref_t<T>> && !std::convertible_to<T, bool>;
}  // namespace detail

/// @brief Composes two triggers: fires when both fire.
/// @param left a trigger
/// @param right a trigger
/// @return an all_of_trigger holding copies of both
template <class Left, class Right>
  requires detail::composable_trigger<Left> && detail::composable_trigger<Right>
[[nodiscard]] constexpr auto operator&&(Left&& left, Right&& right) {
  return all_of_trigger<std::remove_cvref_t<Left>, std::remove_cvref_t<Right>>{std::forward<Left>(left),
                                                                                std::forward<Right>(right)};
}

/// @brief Composes two triggers: fires when either fires.
/// @param left a trigger
/// @param right a trigger
/// @return an any_of_trigger holding copies of both
template <class Left, class Right>
  requires detail::composable_trigger<Left> && detail::composable_trigger<Right>
[[nodiscard]] constexpr auto operator||(Left&& left, Right&& right) {
  return any_of_trigger<std::remove_cvref_t<Left>, std::remove_cvref_t<Right>>{std::forward<Left>(left),
                                                                               std::forward<Right>(right)};
}

}  // namespace tsmc
