#include <catch2/catch.hpp>
#include <tsmc/tsmc.hpp>
TEST_CASE("smoke", "[core]") { CHECK(tsmc::version_major == 0); }
