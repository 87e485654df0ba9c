#pragma once
/// @file
/// @brief The library's exceptions and the argument checks that build their messages.
///
/// Every message names the function, the argument and the offending value, e.g.
/// "tsmc::ess_below: fraction must be in (0, 1], got 1.7".

#include <tsmc/core/types.hpp>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>

namespace tsmc {

/// @brief Thrown for bad input to a library function (a bad size, a probability outside [0, 1], ...).
class invalid_argument : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

/// @brief Thrown when a run meets a state it cannot continue from (a NaN from a model,
/// an exhausted rejection budget, a truncated file).
class runtime_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace detail {

/// Formats a value for an error message; numbers print with enough digits to be recognisable.
template <class T>
[[nodiscard]] std::string to_text(const T& value) {
  std::ostringstream out;
  out.precision(10);
  out << value;
  return out.str();
}

/// Builds "tsmc::<function>: <argument> <requirement>, got <value>".
template <class T>
[[nodiscard]] std::string message(std::string_view function, std::string_view argument,
                                  std::string_view requirement, const T& value) {
  std::string text = "tsmc::";
  text.append(function).append(": ").append(argument).append(" ").append(requirement);
  text.append(", got ").append(to_text(value));
  return text;
}

}  // namespace detail

/// @brief Throws tsmc::invalid_argument with the standard message.
/// @param function the public function's name without the "tsmc::" prefix
/// @param argument the argument's name
/// @param requirement what the argument must satisfy ("must be positive")
/// @param value the value received
/// @throw tsmc::invalid_argument always
template <class T>
[[noreturn]] void throw_invalid_argument(std::string_view function, std::string_view argument,
                                         std::string_view requirement, const T& value) {
  throw invalid_argument(detail::message(function, argument, requirement, value));
}

/// @brief Throws tsmc::runtime_error with the standard message.
/// @throw tsmc::runtime_error always
template <class T>
[[noreturn]] void throw_runtime_error(std::string_view function, std::string_view what,
                                      std::string_view requirement, const T& value) {
  throw runtime_error(detail::message(function, what, requirement, value));
}

/// @brief Checks a condition on an argument.
/// @throw tsmc::invalid_argument "tsmc::function: argument requirement, got value" if !condition
template <class T>
void check_argument(bool condition, std::string_view function, std::string_view argument,
                    std::string_view requirement, const T& value) {
  if (!condition) throw_invalid_argument(function, argument, requirement, value);
}

/// @brief Checks that a size equals the size it must match.
///
/// Both are compared as std::size_t, as a caller's static_cast would. The message, built only on
/// failure, reads "must equal <expected_name> <expected>".
/// @throw tsmc::invalid_argument "tsmc::function: argument must equal expected_name expected,
/// got value" if they differ
template <class T, class U>
void check_size(std::string_view function, std::string_view argument, const T& value, std::string_view expected_name,
                const U& expected) {
  if (static_cast<std::size_t>(value) != static_cast<std::size_t>(expected))
    throw_invalid_argument(function, argument,
                           "must equal " + std::string(expected_name) + " " + std::to_string(expected), value);
}

/// @brief Checks that a count is positive.
/// @throw tsmc::invalid_argument if value == 0
template <class T>
void check_positive(std::string_view function, std::string_view argument, const T& value) {
  check_argument(value > T{0}, function, argument, "must be positive", value);
}

/// @brief Checks that a number is finite (not NaN, not +-inf).
/// @throw tsmc::invalid_argument if value is NaN or infinite
template <class T>
void check_finite(std::string_view function, std::string_view argument, const T& value) {
  check_argument(std::isfinite(value), function, argument, "must be finite", value);
}

/// @brief Formats a token sequence as "[a, b, c]" for error messages.
[[nodiscard]] inline std::string tokens_text(std::span<const token> tokens) {
  std::string text = "[";
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    if (i > 0) text += ", ";
    text += std::to_string(tokens[i]);
  }
  return text + "]";
}

/// @brief Checks that every token lies in [0, vocab_size).
/// @throw tsmc::invalid_argument "tsmc::function: argument[i] must be in [0, V), got t" for the
/// first token outside the vocabulary
inline void check_tokens(std::span<const token> tokens, std::size_t vocab_size, std::string_view function,
                         std::string_view argument) {
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    const token t = tokens[i];
    if (t < 0 || static_cast<std::size_t>(t) >= vocab_size) {
      std::string name(argument);
      name.append("[").append(std::to_string(i)).append("]");
      throw_invalid_argument(function, name, "must be in [0, " + std::to_string(vocab_size) + ")", t);
    }
  }
}

/// @brief Checks that a probability-like fraction lies in (0, 1].
/// @throw tsmc::invalid_argument otherwise (NaN included)
inline void check_unit_fraction(std::string_view function, std::string_view argument, double value) {
  check_argument(value > 0.0 && value <= 1.0, function, argument, "must be in (0, 1]", value);
}

}  // namespace tsmc

/// @brief Internal invariant check, compiled out under NDEBUG. Not for user input: use the
/// check_* functions, which always run.
#ifdef NDEBUG
#define TSMC_ASSERT(condition) ((void)0)
#else
#define TSMC_ASSERT(condition)                                                                                 \
  ((condition) ? (void)0                                                                                       \
               : (std::fprintf(stderr, "tsmc internal assertion failed: %s at %s:%d\n", #condition, __FILE__,  \
                               __LINE__),                                                                      \
                  std::abort()))
#endif
