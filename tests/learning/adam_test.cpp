// Tests of tsmc::adam: steps computed by hand, convergence on a quadratic, global-norm clipping,
// the non-finite-gradient error (nothing changes), block checks, options validation and reset.
#include <tsmc/learning/adam.hpp>
#include <tsmc/twists/trainable.hpp>

#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

using namespace tsmc;

namespace {

// Parameters stored in plain vectors, exposed as blocks like a twist's.
struct toy_parameters {
  Eigen::VectorXd a = Eigen::VectorXd::Zero(2);
  Eigen::VectorXd ga = Eigen::VectorXd::Zero(2);
  Eigen::VectorXd b = Eigen::VectorXd::Zero(3);
  Eigen::VectorXd gb = Eigen::VectorXd::Zero(3);

  std::vector<parameter_block> blocks() {
    std::vector<parameter_block> out;
    out.push_back({"a", 2, 1, Eigen::Map<Eigen::VectorXd>(a.data(), 2), Eigen::Map<Eigen::VectorXd>(ga.data(), 2)});
    out.push_back({"b", 1, 3, Eigen::Map<Eigen::VectorXd>(b.data(), 3), Eigen::Map<Eigen::VectorXd>(gb.data(), 3)});
    return out;
  }
};

// One Adam step on a scalar, written out: the reference for the vectorised code.
struct scalar_adam {
  double m = 0.0;
  double v = 0.0;
  int n = 0;
  double step(double theta, double g, double lr, double b1 = 0.9, double b2 = 0.999, double eps = 1e-8) {
    ++n;
    m = b1 * m + (1.0 - b1) * g;
    v = b2 * v + (1.0 - b2) * g * g;
    const double m_hat = m / (1.0 - std::pow(b1, n));
    const double v_hat = v / (1.0 - std::pow(b2, n));
    return theta - lr * m_hat / (std::sqrt(v_hat) + eps);
  }
};

}  // namespace

TEST_CASE("adam's first step moves each parameter by the learning rate against its gradient's sign", "[learning]") {
  toy_parameters p;
  p.a << 0.5, -0.25;
  p.b << 1.0, 2.0, 3.0;
  p.ga << 2.0, -0.5;
  p.gb << 1e-3, -4.0, 0.0;
  adam opt(adam_options{.learning_rate = 0.1});
  auto blocks = p.blocks();
  opt.step(blocks);
  // With bias correction, m_hat = g and v_hat = g^2 after one step: the step is lr g / (|g| + eps).
  REQUIRE(p.a(0) == Approx(0.5 - 0.1 * 2.0 / (2.0 + 1e-8)).epsilon(1e-15));
  REQUIRE(p.a(1) == Approx(-0.25 + 0.1 * 0.5 / (0.5 + 1e-8)).epsilon(1e-15));
  REQUIRE(p.b(0) == Approx(1.0 - 0.1 * 1e-3 / (1e-3 + 1e-8)).epsilon(1e-15));
  REQUIRE(p.b(1) == Approx(2.0 + 0.1 * 4.0 / (4.0 + 1e-8)).epsilon(1e-15));
  REQUIRE(p.b(2) == 3.0);  // zero gradient, zero step
  REQUIRE(opt.steps() == 1);
  REQUIRE(opt.last_gradient_norm() == Approx(std::sqrt(4.0 + 0.25 + 1e-6 + 16.0)).epsilon(1e-14));
  // The gradients are left as they were.
  REQUIRE(p.ga(0) == 2.0);
}

TEST_CASE("adam's steps equal the update rule written out by hand", "[learning]") {
  toy_parameters p;
  p.a << 0.3, -1.2;
  p.b << 0.0, 0.7, -0.1;
  std::vector<scalar_adam> reference(5);
  std::vector<double> expected{0.3, -1.2, 0.0, 0.7, -0.1};
  const adam_options options{.learning_rate = 0.05, .beta1 = 0.8, .beta2 = 0.99, .epsilon = 1e-6};
  adam opt(options);
  for (int n = 0; n < 6; ++n) {
    // A gradient that changes from step to step.
    for (int i = 0; i < 2; ++i) p.ga(i) = std::sin(1.0 + n + 3 * i) * (i + 1);
    for (int i = 0; i < 3; ++i) p.gb(i) = std::cos(0.5 * n - i) * 0.1 * (i + 2);
    for (int i = 0; i < 5; ++i) {
      const double g = i < 2 ? p.ga(i) : p.gb(i - 2);
      expected[static_cast<std::size_t>(i)] =
          reference[static_cast<std::size_t>(i)].step(expected[static_cast<std::size_t>(i)], g, 0.05, 0.8, 0.99, 1e-6);
    }
    auto blocks = p.blocks();
    opt.step(blocks);
    for (int i = 0; i < 5; ++i) {
      const double got = i < 2 ? p.a(i) : p.b(i - 2);
      REQUIRE(got == Approx(expected[static_cast<std::size_t>(i)]).epsilon(1e-14).margin(1e-15));
    }
  }
}

TEST_CASE("adam converges on a quadratic", "[learning]") {
  // loss = 1/2 sum_i c_i (theta_i - target_i)^2, very differently scaled coordinates.
  toy_parameters p;
  const Eigen::VectorXd target_a = (Eigen::VectorXd(2) << 1.5, -2.0).finished();
  const Eigen::VectorXd target_b = (Eigen::VectorXd(3) << 0.25, 3.0, -0.75).finished();
  const Eigen::VectorXd ca = (Eigen::VectorXd(2) << 100.0, 0.01).finished();
  const Eigen::VectorXd cb = (Eigen::VectorXd(3) << 1.0, 10.0, 0.1).finished();
  adam opt(adam_options{.learning_rate = 0.05});
  for (int n = 0; n < 3000; ++n) {
    p.ga = ca.cwiseProduct(p.a - target_a);
    p.gb = cb.cwiseProduct(p.b - target_b);
    auto blocks = p.blocks();
    opt.step(blocks);
  }
  REQUIRE((p.a - target_a).cwiseAbs().maxCoeff() < 1e-3);
  REQUIRE((p.b - target_b).cwiseAbs().maxCoeff() < 1e-3);
}

TEST_CASE("adam clips the global gradient norm across blocks", "[learning]") {
  // Adam's first step does not depend on the gradient's scale, so the check takes two steps:
  // a clipped gradient of norm 10 then an unclipped one of norm 0.5.
  toy_parameters clipped;
  toy_parameters scaled;
  adam with_clip(adam_options{.learning_rate = 0.1, .max_gradient_norm = 1.0});
  adam plain(adam_options{.learning_rate = 0.1});
  clipped.ga << 6.0, 0.0;
  clipped.gb << 0.0, 8.0, 0.0;  // norm 10 over both blocks
  scaled.ga << 0.6, 0.0;
  scaled.gb << 0.0, 0.8, 0.0;  // what clipping to 1 gives
  auto cb = clipped.blocks();
  auto sb = scaled.blocks();
  with_clip.step(cb);
  plain.step(sb);
  REQUIRE(with_clip.last_gradient_norm() == Approx(10.0).epsilon(1e-15));
  clipped.ga << 0.3, 0.0;
  clipped.gb << 0.0, 0.4, 0.0;  // norm 0.5: unchanged
  scaled.ga = clipped.ga;
  scaled.gb = clipped.gb;
  with_clip.step(cb);
  plain.step(sb);
  for (int i = 0; i < 2; ++i) REQUIRE(clipped.a(i) == Approx(scaled.a(i)).epsilon(1e-13).margin(1e-16));
  for (int i = 0; i < 3; ++i) REQUIRE(clipped.b(i) == Approx(scaled.b(i)).epsilon(1e-13).margin(1e-16));

  // Without clipping the same two gradients give a different second step.
  toy_parameters unclipped;
  adam none(adam_options{.learning_rate = 0.1});
  auto ub = unclipped.blocks();
  unclipped.ga << 6.0, 0.0;
  unclipped.gb << 0.0, 8.0, 0.0;
  none.step(ub);
  unclipped.ga << 0.3, 0.0;
  unclipped.gb << 0.0, 0.4, 0.0;
  none.step(ub);
  REQUIRE(std::abs(unclipped.b(1) - clipped.b(1)) > 1e-3);
}

TEST_CASE("adam throws on a non-finite gradient and changes nothing", "[learning]") {
  toy_parameters p;
  p.a << 1.0, 2.0;
  p.b << 3.0, 4.0, 5.0;
  p.ga << 0.5, 0.5;
  p.gb << 0.5, 0.5, 0.5;
  adam opt(adam_options{.learning_rate = 0.1});
  auto blocks = p.blocks();
  opt.step(blocks);
  const Eigen::VectorXd a1 = p.a;
  const Eigen::VectorXd b1 = p.b;
  for (const double bad : {std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity(),
                           -std::numeric_limits<double>::infinity()}) {
    p.ga << 1.0, 1.0;
    p.gb << 1.0, 1.0, bad;  // the first block is fine: it must not move either
    REQUIRE_THROWS_AS(opt.step(blocks), tsmc::runtime_error);
    REQUIRE_THROWS_WITH(opt.step(blocks), Catch::Matchers::Contains("adam::step") &&
                                              Catch::Matchers::Contains("block 'b'") &&
                                              Catch::Matchers::Contains("index 2"));
    REQUIRE(p.a == a1);
    REQUIRE(p.b == b1);
    REQUIRE(opt.steps() == 1);
  }
  // The moments were not touched: the next good step equals that of an optimiser that never saw
  // the bad gradient.
  toy_parameters q;
  q.a << 1.0, 2.0;
  q.b << 3.0, 4.0, 5.0;
  q.ga << 0.5, 0.5;
  q.gb << 0.5, 0.5, 0.5;
  adam clean(adam_options{.learning_rate = 0.1});
  auto qb = q.blocks();
  clean.step(qb);
  p.ga << -0.2, 0.1;
  p.gb << 0.3, -0.4, 0.05;
  q.ga = p.ga;
  q.gb = p.gb;
  opt.step(blocks);
  clean.step(qb);
  REQUIRE(p.a == q.a);
  REQUIRE(p.b == q.b);
}

TEST_CASE("adam validates its options, checks the blocks against the first step, and resets", "[learning]") {
  using Catch::Matchers::Contains;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  REQUIRE_THROWS_WITH(adam(adam_options{.learning_rate = 0.0}), Contains("learning_rate"));
  REQUIRE_THROWS_WITH(adam(adam_options{.learning_rate = -1.0}), Contains("learning_rate"));
  REQUIRE_THROWS_WITH(adam(adam_options{.learning_rate = nan}), Contains("learning_rate"));
  REQUIRE_THROWS_AS(adam(adam_options{.learning_rate = std::numeric_limits<double>::infinity()}), tsmc::invalid_argument);
  REQUIRE_THROWS_WITH(adam(adam_options{.beta1 = 1.0}), Contains("beta1"));
  REQUIRE_THROWS_WITH(adam(adam_options{.beta1 = -0.1}), Contains("beta1"));
  REQUIRE_THROWS_WITH(adam(adam_options{.beta2 = 1.0}), Contains("beta2"));
  REQUIRE_THROWS_WITH(adam(adam_options{.beta2 = nan}), Contains("beta2"));
  REQUIRE_THROWS_WITH(adam(adam_options{.epsilon = 0.0}), Contains("epsilon"));
  REQUIRE_THROWS_WITH(adam(adam_options{.max_gradient_norm = -1.0}), Contains("max_gradient_norm"));
  REQUIRE_NOTHROW(adam(adam_options{.beta1 = 0.0, .beta2 = 0.0}));

  toy_parameters p;
  p.ga << 1.0, 1.0;
  adam opt;
  auto blocks = p.blocks();
  opt.step(blocks);
  auto fewer = blocks;
  fewer.pop_back();
  REQUIRE_THROWS_WITH(opt.step(fewer), Contains("number of blocks"));
  Eigen::VectorXd longer = Eigen::VectorXd::Zero(4);
  Eigen::VectorXd longer_g = Eigen::VectorXd::Zero(4);
  // (parameter_block's maps copy data on assignment: build the vector anew instead.)
  std::vector<parameter_block> resized{blocks[0], parameter_block{"b", 1, 4, Eigen::Map<Eigen::VectorXd>(longer.data(), 4),
                                                                  Eigen::Map<Eigen::VectorXd>(longer_g.data(), 4)}};
  REQUIRE_THROWS_WITH(opt.step(resized), Contains("block 'b'") && Contains("size"));
  auto renamed = blocks;
  renamed[0].name = "c";
  REQUIRE_THROWS_WITH(opt.step(renamed), Contains("name"));
  auto inconsistent = blocks;
  inconsistent[0].rows = 3;
  REQUIRE_THROWS_WITH(opt.step(inconsistent), Contains("rows x cols"));

  // After reset the moments are sized afresh and the next step is a first step again.
  opt.reset();
  REQUIRE(opt.steps() == 0);
  p.a.setZero();
  p.ga << 3.0, -1.0;
  opt.step(resized);  // a different layout is accepted after reset
  REQUIRE(opt.steps() == 1);
  auto again = p.blocks();
  opt.reset();
  p.a.setZero();
  opt.step(again);
  REQUIRE(p.a(0) == Approx(-1e-3).epsilon(1e-7));
  REQUIRE(p.a(1) == Approx(1e-3).epsilon(1e-7));
}
