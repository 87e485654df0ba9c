// smc_options' normalisation checks: every row off by default, the first row of each run on by
// default, tolerance validated.
#include <catch2/catch.hpp>

#include <tsmc/smc/options.hpp>

#include <cmath>
#include <limits>
#include <string>

using namespace tsmc;

TEST_CASE("options: check_normalization (every row) is off by default, the first row's check on, tolerance 1e-6",
          "[usability]") {
  const smc_options o{.particles = 4, .horizon = 3};
  REQUIRE_FALSE(o.check_normalization);
  REQUIRE(o.check_first_row);
  REQUIRE(o.normalization_tolerance == 1e-6);
  REQUIRE_NOTHROW(validate(o, 5, "f"));
  REQUIRE_NOTHROW(validate(smc_options{.particles = 4, .horizon = 3, .check_normalization = true}, 5, "f"));
}

TEST_CASE("options: the normalization tolerance must be positive and finite", "[usability]") {
  const auto message = [](double tolerance) -> std::string {
    try {
      validate(smc_options{.particles = 4, .horizon = 3, .check_normalization = true,
                           .normalization_tolerance = tolerance},
               5, "twisted_smc");
    } catch (const tsmc::invalid_argument& e) {
      return e.what();
    }
    return "no tsmc::invalid_argument";
  };
  REQUIRE(message(0.0) == "tsmc::twisted_smc: options.normalization_tolerance must be positive and finite, got 0");
  REQUIRE(message(-1e-3) ==
          "tsmc::twisted_smc: options.normalization_tolerance must be positive and finite, got -0.001");
  REQUIRE(message(std::numeric_limits<double>::infinity()) ==
          "tsmc::twisted_smc: options.normalization_tolerance must be positive and finite, got inf");
  REQUIRE(message(std::nan("")).find("options.normalization_tolerance must be positive and finite, got nan") !=
          std::string::npos);
  // checked whether or not the check is on: a bad value is a bug either way
  REQUIRE_THROWS_AS(validate(smc_options{.particles = 4, .horizon = 3, .normalization_tolerance = 0.0}, 5, "f"),
                    tsmc::invalid_argument);
}
