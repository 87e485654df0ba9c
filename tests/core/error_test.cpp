// Tests for <tsmc/core/error.hpp>: the exception types, the message format of every check
// helper, and TSMC_ASSERT.
//
// The dev preset builds Release (NDEBUG), where TSMC_ASSERT is ((void)0). To test the checking
// form, this file includes every standard header error.hpp uses first and then undefines NDEBUG
// just before error.hpp, so only the TSMC_ASSERT macro changes (no inline function differs
// between translation units).
#include <catch2/catch.hpp>

#include <cmath>
#include <cstddef>
#include <cstdlib>
#include <iostream>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string>
#include <span>
#include <string_view>
#include <type_traits>
#include <vector>

#include <tsmc/core/types.hpp>  // (and Eigen) before NDEBUG is undefined: only TSMC_ASSERT may change

#if defined(__unix__)
#include <csignal>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>
#endif

#undef NDEBUG
#include <tsmc/core/error.hpp>

namespace {

/// The message of the exception `f` throws as E; fails the test if it throws nothing.
template <class E, class F>
std::string message_of(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  FAIL("expected an exception");
  return {};
}

constexpr double qnan = std::numeric_limits<double>::quiet_NaN();
constexpr double pinf = std::numeric_limits<double>::infinity();

}  // namespace

TEST_CASE("tsmc exception types derive from the standard ones", "[core]") {
  STATIC_REQUIRE(std::is_base_of_v<std::invalid_argument, tsmc::invalid_argument>);
  STATIC_REQUIRE(std::is_base_of_v<std::logic_error, tsmc::invalid_argument>);
  STATIC_REQUIRE(std::is_base_of_v<std::runtime_error, tsmc::runtime_error>);
  STATIC_REQUIRE_FALSE(std::is_base_of_v<std::logic_error, tsmc::runtime_error>);
  STATIC_REQUIRE_FALSE(std::is_base_of_v<std::runtime_error, tsmc::invalid_argument>);

  CHECK_THROWS_AS(throw tsmc::invalid_argument("x"), std::invalid_argument);
  CHECK_THROWS_AS(throw tsmc::runtime_error("x"), std::runtime_error);
  CHECK_THROWS_WITH(throw tsmc::invalid_argument("some text"), "some text");
  CHECK_THROWS_WITH(throw tsmc::runtime_error("other text"), "other text");
}

TEST_CASE("throw_invalid_argument and throw_runtime_error build the standard message", "[core]") {
  CHECK(message_of<tsmc::invalid_argument>([] { tsmc::throw_invalid_argument("f", "arg", "must be positive", 0); }) ==
        "tsmc::f: arg must be positive, got 0");
  CHECK(message_of<tsmc::invalid_argument>(
            [] { tsmc::throw_invalid_argument("twisted_smc::run", "ess fraction", "must be in (0, 1]", 1.7); }) ==
        "tsmc::twisted_smc::run: ess fraction must be in (0, 1], got 1.7");
  CHECK(message_of<tsmc::runtime_error>(
            [] { tsmc::throw_runtime_error("load", "checkpoint", "must hold 12 bytes", std::size_t{5}); }) ==
        "tsmc::load: checkpoint must hold 12 bytes, got 5");
  CHECK(message_of<tsmc::runtime_error>(
            [] { tsmc::throw_runtime_error("step", "log_probs", "must not contain NaN", qnan); }) ==
        "tsmc::step: log_probs must not contain NaN, got nan");
  // Strings are values too.
  CHECK(message_of<tsmc::invalid_argument>(
            [] { tsmc::throw_invalid_argument("f", "name", "must be known", std::string("abc")); }) ==
        "tsmc::f: name must be known, got abc");
  // Ten significant digits: enough to recognise the value.
  CHECK(message_of<tsmc::invalid_argument>([] { tsmc::throw_invalid_argument("f", "x", "bad", 0.1234567890123); }) ==
        "tsmc::f: x bad, got 0.123456789");
  CHECK(message_of<tsmc::invalid_argument>([] { tsmc::throw_invalid_argument("f", "x", "bad", -pinf); }) ==
        "tsmc::f: x bad, got -inf");
  // The right types: invalid_argument is not a runtime_error and vice versa.
  CHECK_THROWS_AS(tsmc::throw_invalid_argument("f", "a", "r", 1), tsmc::invalid_argument);
  CHECK_THROWS_AS(tsmc::throw_runtime_error("f", "a", "r", 1), tsmc::runtime_error);
}

TEST_CASE("check_argument throws only when the condition is false", "[core]") {
  CHECK_NOTHROW(tsmc::check_argument(true, "f", "arg", "must hold", 3));
  CHECK_THROWS_AS(tsmc::check_argument(false, "f", "arg", "must hold", 3), tsmc::invalid_argument);
  CHECK_THROWS_WITH(tsmc::check_argument(false, "g", "count", "must be even", 3), "tsmc::g: count must be even, got 3");
}

TEST_CASE("check_positive", "[core]") {
  CHECK_NOTHROW(tsmc::check_positive("f", "arg", 1));
  CHECK_NOTHROW(tsmc::check_positive("f", "arg", std::size_t{7}));
  CHECK_NOTHROW(tsmc::check_positive("f", "arg", 1e-300));
  CHECK_THROWS_WITH(tsmc::check_positive("f", "arg", 0), "tsmc::f: arg must be positive, got 0");
  CHECK_THROWS_WITH(tsmc::check_positive("f", "arg", std::size_t{0}), "tsmc::f: arg must be positive, got 0");
  CHECK_THROWS_WITH(tsmc::check_positive("f", "arg", -2), "tsmc::f: arg must be positive, got -2");
  CHECK_THROWS_WITH(tsmc::check_positive("f", "arg", -0.5), "tsmc::f: arg must be positive, got -0.5");
  CHECK_THROWS_WITH(tsmc::check_positive("f", "arg", qnan), "tsmc::f: arg must be positive, got nan");
  CHECK_THROWS_AS(tsmc::check_positive("f", "arg", 0.0), std::invalid_argument);
}

TEST_CASE("check_size compares sizes as std::size_t and names what they must equal", "[core]") {
  CHECK_NOTHROW(tsmc::check_size("f", "out.size()", std::size_t{3}, "values.size()", std::size_t{3}));
  CHECK_NOTHROW(tsmc::check_size("f", "out.rows()", std::ptrdiff_t{4}, "the number of prefixes", std::size_t{4}));
  CHECK_THROWS_WITH(tsmc::check_size("f", "out.size()", std::size_t{2}, "values.size()", std::size_t{3}),
                    "tsmc::f: out.size() must equal values.size() 3, got 2");
  CHECK_THROWS_WITH(tsmc::check_size("f", "out.rows()", std::ptrdiff_t{-1}, "the number of prefixes", std::size_t{4}),
                    "tsmc::f: out.rows() must equal the number of prefixes 4, got -1");
  CHECK_THROWS_AS(tsmc::check_size("f", "n", 5, "K", 6), std::invalid_argument);
}

TEST_CASE("check_finite", "[core]") {
  CHECK_NOTHROW(tsmc::check_finite("f", "x", 0.0));
  CHECK_NOTHROW(tsmc::check_finite("f", "x", -1e308));
  CHECK_NOTHROW(tsmc::check_finite("f", "x", 3.0f));
  CHECK_THROWS_WITH(tsmc::check_finite("h", "x", qnan), "tsmc::h: x must be finite, got nan");
  CHECK_THROWS_WITH(tsmc::check_finite("h", "x", pinf), "tsmc::h: x must be finite, got inf");
  CHECK_THROWS_WITH(tsmc::check_finite("h", "x", -pinf), "tsmc::h: x must be finite, got -inf");
  CHECK_THROWS_AS(tsmc::check_finite("h", "x", std::numeric_limits<float>::infinity()), tsmc::invalid_argument);
}

TEST_CASE("check_unit_fraction accepts exactly (0, 1]", "[core]") {
  CHECK_NOTHROW(tsmc::check_unit_fraction("f", "p", 1.0));
  CHECK_NOTHROW(tsmc::check_unit_fraction("f", "p", 0.5));
  CHECK_NOTHROW(tsmc::check_unit_fraction("f", "p", std::numeric_limits<double>::denorm_min()));
  CHECK_THROWS_WITH(tsmc::check_unit_fraction("ess_below", "fraction", 1.7),
                    "tsmc::ess_below: fraction must be in (0, 1], got 1.7");
  CHECK_THROWS_WITH(tsmc::check_unit_fraction("f", "p", 0.0), "tsmc::f: p must be in (0, 1], got 0");
  CHECK_THROWS_WITH(tsmc::check_unit_fraction("f", "p", -0.25), "tsmc::f: p must be in (0, 1], got -0.25");
  CHECK_THROWS_WITH(tsmc::check_unit_fraction("f", "p", qnan), "tsmc::f: p must be in (0, 1], got nan");
  CHECK_THROWS_AS(tsmc::check_unit_fraction("f", "p", std::nextafter(1.0, 2.0)), tsmc::invalid_argument);
  CHECK_THROWS_AS(tsmc::check_unit_fraction("f", "p", pinf), tsmc::invalid_argument);
}

TEST_CASE("TSMC_ASSERT is an expression and passes a true condition", "[core]") {
  int evaluated = 0;
  TSMC_ASSERT(1 + 1 == 2);
  (void)(TSMC_ASSERT(++evaluated > 0), 0);  // usable inside an expression
  CHECK(evaluated == 1);                    // evaluated exactly once
}

#if defined(__unix__)
TEST_CASE("TSMC_ASSERT aborts on a false condition in debug builds", "[core]") {
  const pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    // The child: silence it, and undo Catch's fatal-signal handler so the abort is plain.
    const int null = open("/dev/null", O_WRONLY);
    if (null >= 0) {
      dup2(null, STDOUT_FILENO);
      dup2(null, STDERR_FILENO);
    }
    std::signal(SIGABRT, SIG_DFL);
    TSMC_ASSERT(1 + 1 == 3);
    _exit(0);
  }
  int status = 0;
  REQUIRE(waitpid(child, &status, 0) == child);
  CHECK(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGABRT);
}
#endif

TEST_CASE("tokens_text and check_tokens format and check token sequences", "[core]") {
  const std::vector<tsmc::token> tokens{3, 0, 7};
  CHECK(tsmc::tokens_text(tokens) == "[3, 0, 7]");
  CHECK(tsmc::tokens_text(std::vector<tsmc::token>{}) == "[]");
  CHECK_NOTHROW(tsmc::check_tokens(tokens, 8, "f", "tokens"));
  CHECK_THROWS_WITH(tsmc::check_tokens(tokens, 7, "f", "tokens"), "tsmc::f: tokens[2] must be in [0, 7), got 7");
  CHECK_THROWS_WITH(tsmc::check_tokens(std::vector<tsmc::token>{-1}, 7, "f", "prompt"),
                    "tsmc::f: prompt[0] must be in [0, 7), got -1");
  CHECK_THROWS_AS(tsmc::check_tokens(tokens, 7, "f", "tokens"), tsmc::invalid_argument);
}
