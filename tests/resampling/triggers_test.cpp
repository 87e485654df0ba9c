// Tests of the resampling triggers and their composition.

#include <catch2/catch.hpp>

#include <tsmc/resampling/triggers.hpp>

#include <limits>

namespace {
template <class A, class B>
concept can_and = requires(A a, B b) { a && b; };
template <class A, class B>
concept can_or = requires(A a, B b) { a || b; };
struct not_a_trigger {};
}  // namespace

TEST_CASE("trigger concepts", "[resampling]") {
  STATIC_REQUIRE(tsmc::ResamplingTrigger<tsmc::always_trigger>);
  STATIC_REQUIRE(tsmc::ResamplingTrigger<tsmc::never_trigger>);
  STATIC_REQUIRE(tsmc::ResamplingTrigger<tsmc::ess_below_trigger>);
  STATIC_REQUIRE(tsmc::ResamplingTrigger<decltype(tsmc::always && tsmc::ess_below(0.5))>);
  const auto custom = [](const tsmc::resampling_state& s) { return s.step % 2 == 0; };
  STATIC_REQUIRE(tsmc::ResamplingTrigger<decltype(custom)>);
  STATIC_REQUIRE_FALSE(tsmc::ResamplingTrigger<int>);
  STATIC_REQUIRE_FALSE(tsmc::ResamplingTrigger<not_a_trigger>);
  // The operators do not hijack other types.
  STATIC_REQUIRE(can_and<tsmc::always_trigger, tsmc::never_trigger>);
  STATIC_REQUIRE(can_or<tsmc::always_trigger, tsmc::ess_below_trigger>);
  STATIC_REQUIRE_FALSE(can_and<tsmc::always_trigger, bool>);
  STATIC_REQUIRE_FALSE(can_or<bool, tsmc::never_trigger>);
  STATIC_REQUIRE_FALSE(can_and<tsmc::always_trigger, not_a_trigger>);
  STATIC_REQUIRE(std::is_same_v<decltype(true && false), bool>);
}

TEST_CASE("always, never and ess_below", "[resampling]") {
  const tsmc::resampling_state low{.ess = 10.0, .particles = 100, .step = 3, .horizon = 20};
  const tsmc::resampling_state high{.ess = 90.0, .particles = 100, .step = 3, .horizon = 20};
  const tsmc::resampling_state edge{.ess = 50.0, .particles = 100, .step = 3, .horizon = 20};
  STATIC_REQUIRE(tsmc::always(tsmc::resampling_state{}));
  STATIC_REQUIRE_FALSE(tsmc::never(tsmc::resampling_state{}));
  const auto half = tsmc::ess_below(0.5);
  CHECK(half(low));
  CHECK_FALSE(half(high));
  CHECK_FALSE(half(edge));  // strictly below
  CHECK(tsmc::ess_below(1.0)(high));
  CHECK_FALSE(tsmc::ess_below(1.0)({.ess = 100.0, .particles = 100, .step = 1, .horizon = 1}));
}

TEST_CASE("ess_below rejects fractions outside (0, 1]", "[resampling]") {
  CHECK_THROWS_WITH(tsmc::ess_below(1.7), "tsmc::ess_below: fraction must be in (0, 1], got 1.7");
  CHECK_THROWS_WITH(tsmc::ess_below(0.0), "tsmc::ess_below: fraction must be in (0, 1], got 0");
  CHECK_THROWS_WITH(tsmc::ess_below(-0.5), "tsmc::ess_below: fraction must be in (0, 1], got -0.5");
  CHECK_THROWS_AS(tsmc::ess_below(std::numeric_limits<double>::quiet_NaN()), tsmc::invalid_argument);
  CHECK_NOTHROW(tsmc::ess_below(1.0));
  CHECK_NOTHROW(tsmc::ess_below(1e-9));
}

TEST_CASE("triggers compose with && and ||", "[resampling]") {
  const tsmc::resampling_state low{.ess = 10.0, .particles = 100, .step = 4, .horizon = 20};
  const tsmc::resampling_state high{.ess = 90.0, .particles = 100, .step = 4, .horizon = 20};
  constexpr auto both = tsmc::always && tsmc::never;
  constexpr auto either = tsmc::always || tsmc::never;
  STATIC_REQUIRE_FALSE(both(tsmc::resampling_state{}));
  STATIC_REQUIRE(either(tsmc::resampling_state{}));
  const auto even_step = [](const tsmc::resampling_state& s) { return s.step % 2 == 0; };
  const auto adaptive_on_even = tsmc::ess_below(0.5) && tsmc::any_of_trigger<decltype(even_step), tsmc::never_trigger>{
                                                            even_step, tsmc::never};
  CHECK(adaptive_on_even(low));
  CHECK_FALSE(adaptive_on_even(high));
  CHECK_FALSE(adaptive_on_even({.ess = 10.0, .particles = 100, .step = 5, .horizon = 20}));
  const auto nested = (tsmc::ess_below(0.2) || tsmc::ess_below(0.95)) && (tsmc::never || tsmc::always);
  CHECK(nested(high));
  CHECK_FALSE(nested({.ess = 99.0, .particles = 100, .step = 1, .horizon = 2}));
}
