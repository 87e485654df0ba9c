// Tests for <tsmc/core/log_math.hpp> at the extremes: all -inf, one finite value, +inf, spreads
// of 1e300, and NaN (a bug upstream: the range functions throw).
#include <tsmc/core/log_math.hpp>
#include <tsmc/core/types.hpp>

#include <Eigen/Core>
#include <catch2/catch.hpp>

#include <array>
#include <cmath>
#include <limits>
#include <span>
#include <vector>

using Catch::Matchers::WithinRel;

namespace {

constexpr double pinf = std::numeric_limits<double>::infinity();
constexpr double ninf = -pinf;
constexpr double qnan = std::numeric_limits<double>::quiet_NaN();
constexpr float finf = std::numeric_limits<float>::infinity();
constexpr float fnan = std::numeric_limits<float>::quiet_NaN();

/// A row-major single-precision matrix, as a model computing in float would hold its rows.
using float_rows = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

double lse(std::vector<double> v) { return tsmc::logsumexp(std::span<const double>(v)); }
double lse_f(std::vector<float> v) { return tsmc::logsumexp(std::span<const float>(v)); }

}  // namespace

TEST_CASE("neg_inf is the log of zero", "[core]") {
  STATIC_REQUIRE(tsmc::neg_inf == -std::numeric_limits<double>::infinity());
  CHECK(std::log(0.0) == tsmc::neg_inf);
}

// ---------------------------------------------------------------------------------------------
// log_add_exp
// ---------------------------------------------------------------------------------------------

TEST_CASE("log_add_exp: ordinary values", "[core]") {
  STATIC_REQUIRE(noexcept(tsmc::log_add_exp(0.0, 0.0)));
  CHECK_THAT(tsmc::log_add_exp(std::log(2.0), std::log(3.0)), WithinRel(std::log(5.0), 1e-15));
  CHECK_THAT(tsmc::log_add_exp(0.0, 0.0), WithinRel(std::log(2.0), 1e-15));
  CHECK(tsmc::log_add_exp(1.5, -2.25) == tsmc::log_add_exp(-2.25, 1.5));  // symmetric, bit for bit
  // No overflow or underflow far from 0.
  CHECK_THAT(tsmc::log_add_exp(1000.0, 1000.0), WithinRel(1000.0 + std::log(2.0), 1e-15));
  CHECK_THAT(tsmc::log_add_exp(-1000.0, -1000.0), WithinRel(-1000.0 + std::log(2.0), 1e-15));
  CHECK_THAT(tsmc::log_add_exp(800.0, 799.0), WithinRel(800.0 + std::log1p(std::exp(-1.0)), 1e-15));
  // A tiny addend keeps full relative accuracy: log(1 + e^-40) = e^-40 - e^-80 / 2.
  CHECK_THAT(tsmc::log_add_exp(0.0, -40.0), WithinRel(std::exp(-40.0), 1e-14));
}

TEST_CASE("log_add_exp: -inf operands are zeros", "[core]") {
  CHECK(tsmc::log_add_exp(ninf, ninf) == ninf);
  CHECK(tsmc::log_add_exp(3.5, ninf) == 3.5);
  CHECK(tsmc::log_add_exp(ninf, 3.5) == 3.5);
  CHECK(tsmc::log_add_exp(ninf, -1e300) == -1e300);
  CHECK(tsmc::log_add_exp(-1e300, ninf) == -1e300);
}

TEST_CASE("log_add_exp: +inf", "[core]") {
  CHECK(tsmc::log_add_exp(pinf, 3.0) == pinf);
  CHECK(tsmc::log_add_exp(3.0, pinf) == pinf);
  CHECK(tsmc::log_add_exp(pinf, pinf) == pinf);
  CHECK(tsmc::log_add_exp(pinf, ninf) == pinf);
  CHECK(tsmc::log_add_exp(ninf, pinf) == pinf);
}

TEST_CASE("log_add_exp: spreads of 1e300", "[core]") {
  CHECK(tsmc::log_add_exp(1e300, -1e300) == 1e300);
  CHECK(tsmc::log_add_exp(-1e300, 1e300) == 1e300);
  CHECK(tsmc::log_add_exp(1e300, 1e300) == 1e300);  // + log 2 is below ulp(1e300)
  CHECK(tsmc::log_add_exp(-1e300, -1e300) == -1e300);
  CHECK(tsmc::log_add_exp(0.0, -1e300) == 0.0);
  CHECK(tsmc::log_add_exp(std::numeric_limits<double>::max(), std::numeric_limits<double>::max()) ==
        std::numeric_limits<double>::max());
  CHECK(tsmc::log_add_exp(std::numeric_limits<double>::lowest(), 0.0) == 0.0);
}

TEST_CASE("log_add_exp: NaN in either operand gives NaN", "[core]") {
  for (double other : {0.0, 1e300, -1e300, pinf, ninf, qnan}) {
    INFO("other " << other);
    CHECK(std::isnan(tsmc::log_add_exp(qnan, other)));
    CHECK(std::isnan(tsmc::log_add_exp(other, qnan)));
  }
}

// ---------------------------------------------------------------------------------------------
// log1mexp
// ---------------------------------------------------------------------------------------------

TEST_CASE("log1mexp: accurate near 0 and near -inf", "[core]") {
  // Near 0: 1 - exp(x) = -expm1(x) ~ -x; log(1 - e^-1e-20) = log(1e-20) to double precision.
  CHECK_THAT(tsmc::log1mexp(-1e-20), WithinRel(std::log(1e-20), 1e-15));
  CHECK_THAT(tsmc::log1mexp(-1e-300), WithinRel(std::log(1e-300), 1e-15));
  CHECK_THAT(tsmc::log1mexp(-std::numeric_limits<double>::denorm_min()),
             WithinRel(std::log(std::numeric_limits<double>::denorm_min()), 1e-15));
  // Near -inf: log(1 - e^x) = -e^x - e^{2x}/2 - ...
  CHECK_THAT(tsmc::log1mexp(-50.0), WithinRel(-std::exp(-50.0), 1e-15));
  CHECK_THAT(tsmc::log1mexp(-700.0), WithinRel(-std::exp(-700.0), 1e-15));
  CHECK(tsmc::log1mexp(-1e300) == 0.0);
  CHECK(tsmc::log1mexp(ninf) == 0.0);
  // In the middle, and on both sides of the branch point -log 2.
  CHECK_THAT(tsmc::log1mexp(std::log(0.25)), WithinRel(std::log(0.75), 1e-15));
  CHECK_THAT(tsmc::log1mexp(-1.0), WithinRel(std::log(1.0 - std::exp(-1.0)), 1e-15));
  const double ln_half = -0.6931471805599453;
  CHECK_THAT(tsmc::log1mexp(ln_half), WithinRel(std::log(0.5), 1e-15));
  CHECK_THAT(tsmc::log1mexp(std::nextafter(ln_half, 0.0)), WithinRel(std::log(0.5), 1e-15));
  CHECK_THAT(tsmc::log1mexp(std::nextafter(ln_half, -1.0)), WithinRel(std::log(0.5), 1e-15));
  // It inverts itself: log1mexp(log1mexp(x)) = x.
  for (double x : {-1e-5, -0.1, -0.5, -2.0, -10.0}) CHECK_THAT(tsmc::log1mexp(tsmc::log1mexp(x)), WithinRel(x, 1e-10));
}

TEST_CASE("log1mexp: x = 0 gives -inf, x > 0 and NaN throw", "[core]") {
  CHECK(tsmc::log1mexp(0.0) == ninf);
  CHECK(tsmc::log1mexp(-0.0) == ninf);
  CHECK_THROWS_WITH(tsmc::log1mexp(0.5), "tsmc::log1mexp: x must be <= 0, got 0.5");
  CHECK_THROWS_AS(tsmc::log1mexp(std::numeric_limits<double>::denorm_min()), tsmc::invalid_argument);
  CHECK_THROWS_AS(tsmc::log1mexp(pinf), tsmc::invalid_argument);
  CHECK_THROWS_WITH(tsmc::log1mexp(qnan), "tsmc::log1mexp: x must be <= 0, got nan");
}

// ---------------------------------------------------------------------------------------------
// logsumexp over spans
// ---------------------------------------------------------------------------------------------

TEST_CASE("logsumexp of a span<double>", "[core]") {
  SECTION("ordinary values") {
    CHECK_THAT(lse({0.0, std::log(2.0), std::log(3.0), std::log(4.0)}), WithinRel(std::log(10.0), 1e-15));
    CHECK(lse({2.5}) == 2.5);
    CHECK_THAT(lse({1000.0, 1000.0, 1000.0}), WithinRel(1000.0 + std::log(3.0), 1e-15));  // no overflow
    CHECK_THAT(lse({-1000.0, -1000.0}), WithinRel(-1000.0 + std::log(2.0), 1e-15));       // no underflow
    const std::array<double, 3> a{1.0, 2.0, 3.0};
    CHECK_THAT(tsmc::logsumexp(a), WithinRel(std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0)), 1e-15));
  }
  SECTION("empty and all -inf give -inf") {
    CHECK(tsmc::logsumexp(std::span<const double>{}) == ninf);
    CHECK(lse({ninf}) == ninf);
    CHECK(lse({ninf, ninf, ninf}) == ninf);
  }
  SECTION("one finite value among -inf gives that value exactly") {
    CHECK(lse({ninf, 3.0, ninf}) == 3.0);
    CHECK(lse({ninf, -1e300}) == -1e300);
    CHECK(lse({1e300, ninf}) == 1e300);
  }
  SECTION("+inf gives +inf") {
    CHECK(lse({0.0, pinf, ninf}) == pinf);
    CHECK(lse({pinf, pinf}) == pinf);
    CHECK(lse({ninf, pinf}) == pinf);
  }
  SECTION("spreads of 1e300") {
    CHECK(lse({1e300, -1e300}) == 1e300);
    CHECK(lse({-1e300, 1e300, 0.0}) == 1e300);
    CHECK(lse({-1e300, -1e300}) == -1e300);
    CHECK(lse({0.0, -1e300}) == 0.0);
    CHECK(lse({std::numeric_limits<double>::max(), std::numeric_limits<double>::lowest()}) ==
          std::numeric_limits<double>::max());
  }
  SECTION("NaN throws, naming tsmc::logsumexp") {
    CHECK_THROWS_AS(lse({0.0, qnan}), tsmc::invalid_argument);
    CHECK_THROWS_WITH(lse({qnan}), "tsmc::logsumexp: values must not contain NaN, got nan");
    CHECK_THROWS_WITH(lse({pinf, qnan}), Catch::Contains("tsmc::logsumexp"));  // NaN wins over +inf
    CHECK_THROWS_WITH(lse({ninf, ninf, qnan}), Catch::Contains("tsmc::logsumexp"));
  }
}

TEST_CASE("logsumexp of a span<float> accumulates in double", "[core]") {
  CHECK_THAT(lse_f({0.0f, std::log(2.0f), std::log(3.0f), std::log(4.0f)}), WithinRel(std::log(10.0), 1e-7));
  CHECK(tsmc::logsumexp(std::span<const float>{}) == ninf);
  CHECK(lse_f({-finf, -finf}) == ninf);
  CHECK(lse_f({-finf, 1.5f}) == 1.5);
  CHECK(lse_f({0.0f, finf}) == pinf);
  const float big = std::numeric_limits<float>::max();
  CHECK(lse_f({big, -big}) == static_cast<double>(big));
  // Beyond float's range once summed: 1e5 values of 88 sum to e^88 * 1e5 > FLT_MAX, no overflow.
  std::vector<float> many(100000, 88.0f);
  CHECK_THAT(lse_f(many), WithinRel(88.0 + std::log(1e5), 1e-12));
  CHECK_THROWS_WITH(lse_f({1.0f, fnan}), "tsmc::logsumexp: values must not contain NaN, got nan");
}

// ---------------------------------------------------------------------------------------------
// logsumexp of Eigen objects, row_logsumexp
// ---------------------------------------------------------------------------------------------

TEST_CASE("logsumexp of Eigen vectors and matrices", "[core]") {
  SECTION("vectors, double and float") {
    Eigen::VectorXd v(4);
    v << 0.0, std::log(2.0), std::log(3.0), std::log(4.0);
    CHECK_THAT(tsmc::logsumexp(v), WithinRel(std::log(10.0), 1e-15));
    CHECK(tsmc::logsumexp(v) == lse({v[0], v[1], v[2], v[3]}));  // same arithmetic as the span overload
    Eigen::VectorXf f = v.cast<float>();
    CHECK_THAT(tsmc::logsumexp(f), WithinRel(std::log(10.0), 1e-7));
    Eigen::RowVectorXd r = v.transpose();
    CHECK(tsmc::logsumexp(r) == tsmc::logsumexp(v));
    CHECK_THAT(tsmc::logsumexp(v.head(2)), WithinRel(std::log(3.0), 1e-15));  // an expression
    CHECK_THAT(tsmc::logsumexp(v.array() - 5.0), WithinRel(std::log(10.0) - 5.0, 1e-15));
  }
  SECTION("matrices: all coefficients, either storage order") {
    Eigen::MatrixXd m(2, 3);
    m << 0.0, 1.0, 2.0, 3.0, 4.0, 5.0;
    double expected = 0;
    for (int i = 0; i < 6; ++i) expected += std::exp(static_cast<double>(i));
    CHECK_THAT(tsmc::logsumexp(m), WithinRel(std::log(expected), 1e-15));
    const float_rows rm = m.cast<float>();
    CHECK_THAT(tsmc::logsumexp(rm), WithinRel(std::log(expected), 1e-7));
    const tsmc::log_prob_matrix rd = m;  // the library's row-major K x V type
    CHECK(tsmc::logsumexp(rd) == tsmc::logsumexp(m));
    CHECK_THAT(tsmc::logsumexp(m.row(1)), WithinRel(std::log(std::exp(3.0) + std::exp(4.0) + std::exp(5.0)), 1e-15));
    CHECK_THAT(tsmc::logsumexp(m.col(0)), WithinRel(std::log(1.0 + std::exp(3.0)), 1e-15));
    const tsmc::const_log_prob_ref ref(rd);
    CHECK(tsmc::logsumexp(ref) == tsmc::logsumexp(rd));
    CHECK(tsmc::logsumexp(Eigen::Ref<const float_rows>(rm)) == tsmc::logsumexp(rm));
  }
  SECTION("empty, all -inf, one finite, +inf, 1e300 spread") {
    CHECK(tsmc::logsumexp(Eigen::VectorXd()) == ninf);
    CHECK(tsmc::logsumexp(Eigen::MatrixXd(0, 3)) == ninf);
    CHECK(tsmc::logsumexp(Eigen::MatrixXd::Constant(2, 2, ninf)) == ninf);
    Eigen::MatrixXd m = Eigen::MatrixXd::Constant(2, 2, ninf);
    m(1, 0) = -7.25;
    CHECK(tsmc::logsumexp(m) == -7.25);
    m(0, 1) = pinf;
    CHECK(tsmc::logsumexp(m) == pinf);
    Eigen::Vector3d s(1e300, -1e300, 0.0);
    CHECK(tsmc::logsumexp(s) == 1e300);
    CHECK(tsmc::logsumexp(Eigen::Vector2d(-1e300, -1e300)) == -1e300);
    CHECK(tsmc::logsumexp(Eigen::VectorXf::Constant(3, -finf)) == ninf);
  }
  SECTION("NaN throws, naming tsmc::logsumexp") {
    Eigen::MatrixXd m = Eigen::MatrixXd::Zero(2, 2);
    m(1, 1) = qnan;
    CHECK_THROWS_WITH(tsmc::logsumexp(m), "tsmc::logsumexp: values must not contain NaN, got nan");
    float_rows f = float_rows::Constant(2, 2, -finf);
    f(0, 1) = fnan;
    CHECK_THROWS_AS(tsmc::logsumexp(f), tsmc::invalid_argument);
  }
}

TEST_CASE("row_logsumexp", "[core]") {
  SECTION("each row, double and row-major float") {
    Eigen::MatrixXd m(3, 3);
    m << 0.0, std::log(2.0), std::log(3.0),  //
        ninf, ninf, ninf,                    // a row of zeros: -inf, no exception
        1e300, -1e300, ninf;                 // 1e300 spread
    std::vector<double> out(3);
    tsmc::row_logsumexp(m, out);
    CHECK_THAT(out[0], WithinRel(std::log(6.0), 1e-15));
    CHECK(out[1] == ninf);
    CHECK(out[2] == 1e300);
    float_rows f(2, 4);
    f << 0.0f, 0.0f, 0.0f, 0.0f,  //
        1.0f, -finf, 2.0f, 3.0f;
    std::vector<double> fo(2);
    tsmc::row_logsumexp(f, fo);
    CHECK_THAT(fo[0], WithinRel(std::log(4.0), 1e-7));
    CHECK_THAT(fo[1], WithinRel(std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0)), 1e-7));
    // Agrees with logsumexp of each row, on an expression (a block) too.
    std::vector<double> bo(2);
    tsmc::row_logsumexp(m.topRows(2), bo);
    CHECK(bo[0] == out[0]);
    CHECK(bo[1] == out[1]);
  }
  SECTION("no columns: every row is -inf; no rows: nothing to write") {
    std::vector<double> out(2, 1.0);
    tsmc::row_logsumexp(Eigen::MatrixXd(2, 0), out);
    CHECK(out[0] == ninf);
    CHECK(out[1] == ninf);
    CHECK_NOTHROW(tsmc::row_logsumexp(Eigen::MatrixXd(0, 3), std::span<double>{}));
  }
  SECTION("size mismatch throws") {
    Eigen::MatrixXd m = Eigen::MatrixXd::Zero(3, 2);
    std::vector<double> out(2);
    CHECK_THROWS_WITH(tsmc::row_logsumexp(m, out),
                      "tsmc::row_logsumexp: out.size() must equal the number of rows 3, got 2");
    std::vector<double> longer(4);
    CHECK_THROWS_AS(tsmc::row_logsumexp(m, longer), tsmc::invalid_argument);
  }
  SECTION("NaN throws") {
    Eigen::MatrixXd m = Eigen::MatrixXd::Zero(2, 2);
    m(1, 0) = qnan;
    std::vector<double> out(2);
    CHECK_THROWS_WITH(tsmc::row_logsumexp(m, out), Catch::Contains("tsmc::row_logsumexp") && Catch::Contains("NaN"));
  }
}

// ---------------------------------------------------------------------------------------------
// log_mean_exp
// ---------------------------------------------------------------------------------------------

TEST_CASE("log_mean_exp", "[core]") {
  std::vector<double> zeros(4, 0.0);
  CHECK(tsmc::log_mean_exp(zeros) == 0.0);
  std::vector<double> v{std::log(2.0), std::log(4.0)};
  CHECK_THAT(tsmc::log_mean_exp(v), WithinRel(std::log(3.0), 1e-15));
  std::vector<double> one_finite{ninf, 5.0, ninf, ninf};
  CHECK_THAT(tsmc::log_mean_exp(one_finite), WithinRel(5.0 - std::log(4.0), 1e-15));
  std::vector<double> all_ninf(3, ninf);
  CHECK(tsmc::log_mean_exp(all_ninf) == ninf);
  std::vector<double> spread{1e300, -1e300};
  CHECK(tsmc::log_mean_exp(spread) == 1e300);
  std::vector<double> plus_inf{0.0, pinf};
  CHECK(tsmc::log_mean_exp(plus_inf) == pinf);
  CHECK_THROWS_WITH(tsmc::log_mean_exp(std::span<const double>{}),
                    "tsmc::log_mean_exp: values.size() must be positive, got 0");
  std::vector<double> with_nan{0.0, qnan};
  CHECK_THROWS_AS(tsmc::log_mean_exp(with_nan), tsmc::invalid_argument);
}

// ---------------------------------------------------------------------------------------------
// log_softmax, softmax
// ---------------------------------------------------------------------------------------------

TEST_CASE("log_softmax and softmax: ordinary values", "[core]") {
  const std::vector<double> v{0.0, std::log(2.0), std::log(3.0), std::log(4.0)};
  std::vector<double> lo(4), p(4);
  tsmc::log_softmax(v, lo);
  tsmc::softmax(v, p);
  for (std::size_t i = 0; i < 4; ++i) {
    const double expected = static_cast<double>(i + 1) / 10.0;
    CHECK_THAT(lo[i], WithinRel(std::log(expected), 1e-14));
    CHECK_THAT(p[i], WithinRel(expected, 1e-14));
  }
  // Invariant to a constant shift.
  std::vector<double> shifted(4), ps(4);
  for (std::size_t i = 0; i < 4; ++i) shifted[i] = v[i] - 123.5;
  tsmc::softmax(shifted, ps);
  for (std::size_t i = 0; i < 4; ++i) CHECK_THAT(ps[i], WithinRel(p[i], 1e-13));
  // One element: probability 1.
  std::vector<double> single{-42.0}, single_out(1);
  tsmc::softmax(single, single_out);
  CHECK(single_out[0] == 1.0);
}

TEST_CASE("log_softmax and softmax may alias", "[core]") {
  std::vector<double> v{0.0, std::log(2.0), std::log(3.0), std::log(4.0)};
  std::vector<double> expected(4);
  tsmc::log_softmax(v, expected);
  std::vector<double> inplace = v;
  tsmc::log_softmax(inplace, inplace);
  CHECK(inplace == expected);
  std::vector<double> probs(4);
  tsmc::softmax(v, probs);
  inplace = v;
  tsmc::softmax(inplace, inplace);
  CHECK(inplace == probs);
}

TEST_CASE("log_softmax and softmax at the extremes", "[core]") {
  SECTION("one finite value among -inf") {
    std::vector<double> v{ninf, 5.0, ninf}, lo(3), p(3);
    tsmc::log_softmax(v, lo);
    tsmc::softmax(v, p);
    CHECK(lo == std::vector<double>{ninf, 0.0, ninf});
    CHECK(p == std::vector<double>{0.0, 1.0, 0.0});
  }
  SECTION("1e300 spread") {
    std::vector<double> v{1e300, -1e300}, lo(2), p(2);
    tsmc::log_softmax(v, lo);
    tsmc::softmax(v, p);
    CHECK(lo[0] == 0.0);
    CHECK(lo[1] == -2e300);
    CHECK(p == std::vector<double>{1.0, 0.0});
  }
  SECTION("huge equal values still normalise (log 2 is below ulp(1e300))") {
    for (double c : {1e17, 1e300, -1e300}) {
      INFO("c = " << c);
      std::vector<double> v{c, c}, lo(2), p(2);
      tsmc::log_softmax(v, lo);
      tsmc::softmax(v, p);
      CHECK_THAT(lo[0], WithinRel(-std::log(2.0), 1e-15));
      CHECK_THAT(p[0], WithinRel(0.5, 1e-15));
      CHECK_THAT(p[1], WithinRel(0.5, 1e-15));
    }
  }
  SECTION("all -inf, +inf, NaN, empty and a size mismatch throw") {
    std::vector<double> out(3);
    std::vector<double> all_ninf(3, ninf);
    CHECK_THROWS_WITH(tsmc::log_softmax(all_ninf, out),
                      "tsmc::log_softmax: logsumexp(values) must be finite (all -inf or a +inf cannot be "
                      "normalised), got -inf");
    CHECK_THROWS_AS(tsmc::softmax(all_ninf, out), tsmc::invalid_argument);
    std::vector<double> plus_inf{0.0, pinf, 1.0};
    CHECK_THROWS_WITH(tsmc::log_softmax(plus_inf, out), Catch::Contains("got inf"));
    CHECK_THROWS_AS(tsmc::softmax(plus_inf, out), tsmc::invalid_argument);
    std::vector<double> with_nan{0.0, qnan, 1.0};
    CHECK_THROWS_WITH(tsmc::log_softmax(with_nan, out), Catch::Contains("NaN") && Catch::Contains("got nan"));
    CHECK_THROWS_AS(tsmc::softmax(with_nan, out), tsmc::invalid_argument);
    CHECK_THROWS_WITH(tsmc::log_softmax(std::span<const double>{}, std::span<double>{}),
                      "tsmc::log_softmax: values.size() must be positive, got 0");
    std::vector<double> two(2);
    CHECK_THROWS_WITH(tsmc::log_softmax(plus_inf, two), "tsmc::log_softmax: out.size() must equal values.size() 3, got 2");
    CHECK_THROWS_AS(tsmc::softmax(plus_inf, two), tsmc::invalid_argument);
  }
}
