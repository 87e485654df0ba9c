// Tests of tsmc::mlp_twist and its featurizers: psi = 1 at initialisation, rows of finished
// particles, the backward pass (dense and sparse) against central finite differences for every
// layer count and featurizer, records, errors, and a run of the sampler.
#include <tsmc/core/concepts.hpp>
#include <tsmc/core/random.hpp>
#include <tsmc/smc/sampler.hpp>
#include <tsmc/testing/toy_model.hpp>
#include <tsmc/testing/toy_potentials.hpp>
#include <tsmc/twists/features.hpp>
#include <tsmc/twists/mlp_twist.hpp>
#include <tsmc/twists/no_twist.hpp>
#include <tsmc/twists/trainable.hpp>

#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

using namespace tsmc;

namespace {

constexpr std::size_t vocab = 5;
constexpr std::size_t max_steps = 4;

// A tabular model that also exposes features(): a fixed, smooth function of each particle's
// generated prefix (its length and every token), K x d in float.
class featured_model {
 public:
  featured_model(std::size_t d, std::uint64_t seed) : base_(vocab, seed), d_(d) {}

  [[nodiscard]] std::size_t vocab_size() const { return base_.vocab_size(); }
  void start(std::span<const token> prompt, std::size_t particles) {
    base_.start(prompt, particles);
    refresh();
  }
  void log_probs(log_prob_ref out) { base_.log_probs(out); }
  void append(std::span<const token> tokens) {
    base_.append(tokens);
    refresh();
  }
  void reorder(std::span<const particle_index> ancestors) {
    base_.reorder(ancestors);
    refresh();
  }
  [[nodiscard]] const feature_matrix& features() const { return features_; }

  // Sets the particles' prefixes directly (for tests that build a step context by hand).
  void set_prefixes(const std::vector<token_sequence>& prefixes) {
    base_.start({}, prefixes.size());
    for (std::size_t k = 0; k < prefixes.size(); ++k) {
      prefix_of_.resize(prefixes.size());
    }
    prefix_of_ = prefixes;
    compute();
  }

  [[nodiscard]] std::size_t feature_size() const { return d_; }

 private:
  void refresh() {
    prefix_of_.assign(base_.prefixes().begin(), base_.prefixes().end());
    compute();
  }
  void compute() {
    features_.resize(static_cast<Eigen::Index>(prefix_of_.size()), static_cast<Eigen::Index>(d_));
    for (std::size_t k = 0; k < prefix_of_.size(); ++k) {
      double code = 1.0;
      for (std::size_t i = 0; i < prefix_of_[k].size(); ++i) code += 0.37 * static_cast<double>(i + 1) * (prefix_of_[k][i] + 1);
      for (std::size_t j = 0; j < d_; ++j)
        features_(static_cast<Eigen::Index>(k), static_cast<Eigen::Index>(j)) = static_cast<float>(
            std::sin(0.9 * static_cast<double>(j + 1) * code + 0.3 * static_cast<double>(prefix_of_[k].size())));
    }
  }

  testing::tabular_model base_;
  std::size_t d_;
  std::vector<token_sequence> prefix_of_;
  feature_matrix features_;
};

static_assert(ModelWithFeatures<featured_model>);

// The prefixes and flags of a hand-built step: lengths 0..3 (empty prefix, zero padding), one
// finished particle (row 2).
struct step_fixture {
  std::vector<token_sequence> prefixes{{}, {3}, {1, 4}, {2, 0, 4}, {4, 4, 1}};
  std::vector<std::uint8_t> active{1, 1, 0, 1, 1};
  std::vector<token> prompt{1};
  std::size_t step = 3;

  template <class Model>
  [[nodiscard]] step_context<Model> context(const Model& model) const {
    return step_context<Model>{.step = step, .horizon = max_steps, .prompt = prompt, .prefixes = prefixes,
                               .active = active, .model = model};
  }
  [[nodiscard]] std::size_t particles() const { return prefixes.size(); }
};

// Sets every parameter to N(0, scale^2) values (the output layer is zero at initialisation, which
// would make most gradients vanish).
template <class Twist>
void randomise(Twist& twist, std::uint64_t seed, double scale = 0.6) {
  default_engine engine(seed);
  for (parameter_block& b : twist.parameters())
    for (Eigen::Index i = 0; i < b.values.size(); ++i) b.values[i] = scale * standard_normal(engine);
}

[[nodiscard]] log_prob_matrix random_coefficients(std::size_t rows, std::uint64_t seed) {
  default_engine engine(seed);
  log_prob_matrix c(static_cast<Eigen::Index>(rows), static_cast<Eigen::Index>(vocab));
  for (Eigen::Index i = 0; i < c.size(); ++i) c.data()[i] = standard_normal(engine);
  return c;
}

// sum_{k,v} C(k, v) log psi(k, v) at the twist's current parameters (recording off).
template <class Twist, class Model>
[[nodiscard]] double weighted_sum(Twist& twist, const step_context<Model>& ctx, const log_prob_matrix& c) {
  log_prob_matrix out(c.rows(), c.cols());
  twist.log_twist(ctx, out);
  return (out.array() * c.array()).sum();
}

// Checks every parameter's accumulated gradient against central differences of
// sum C * log psi; the gradient must already be accumulated in the twist.
template <class Twist, class Model>
void check_against_finite_differences(Twist& twist, const step_context<Model>& ctx, const log_prob_matrix& c) {
  const bool was_recording = twist.recording();
  twist.set_recording(false);
  const double h = 1e-5;
  std::size_t checked = 0;
  double largest = 0.0;
  for (parameter_block& b : twist.parameters()) {
    for (Eigen::Index i = 0; i < b.values.size(); ++i) {
      const double saved = b.values[i];
      b.values[i] = saved + h;
      const double up = weighted_sum(twist, ctx, c);
      b.values[i] = saved - h;
      const double down = weighted_sum(twist, ctx, c);
      b.values[i] = saved;
      const double numeric = (up - down) / (2.0 * h);
      INFO("block " << b.name << " index " << i << ": analytic " << b.gradient[i] << " numeric " << numeric);
      REQUIRE(std::abs(b.gradient[i] - numeric) <= 1e-6 * std::max(1.0, std::abs(numeric)));
      largest = std::max(largest, std::abs(numeric));
      ++checked;
    }
  }
  REQUIRE(checked > 0);
  REQUIRE(largest > 1e-3);  // the check is not vacuous
  twist.set_recording(was_recording);
}

// Records the fixture's step, accumulates C densely and sparsely (as all K x V entries, in
// pieces with repeats) and checks both against finite differences.
template <class Twist, class Model>
void check_backward(Twist& twist, const Model& model, std::uint64_t seed) {
  step_fixture f;
  const auto ctx = f.context(model);
  randomise(twist, seed);
  log_prob_matrix c = random_coefficients(f.particles(), seed + 1);
  log_prob_matrix out(c.rows(), c.cols());
  twist.set_recording(true);
  twist.log_twist(ctx, out);
  REQUIRE(twist.has_record(f.step));

  SECTION("dense") {
    twist.zero_gradient();
    twist.accumulate_dense(f.step, c);
    check_against_finite_differences(twist, ctx, c);
  }
  SECTION("sparse, entries split and repeated") {
    std::vector<sparse_coefficient> entries;
    for (std::size_t k = 0; k < f.particles(); ++k)
      for (std::size_t v = 0; v < vocab; ++v) {
        const double value = c(static_cast<Eigen::Index>(k), static_cast<Eigen::Index>(v));
        entries.push_back({k, static_cast<token>(v), 0.25 * value});
        entries.push_back({k, static_cast<token>(v), 0.75 * value});
      }
    twist.zero_gradient();
    twist.accumulate_sparse(f.step, std::span<const sparse_coefficient>(entries).first(7));
    twist.accumulate_sparse(f.step, std::span<const sparse_coefficient>(entries).subspan(7));
    check_against_finite_differences(twist, ctx, c);
  }
  SECTION("sparse, a few entries") {
    const std::vector<sparse_coefficient> entries{{0, 1, 0.7}, {3, 4, -1.3}, {1, 1, 0.4}, {3, 4, 0.2}, {2, 0, 5.0}};
    log_prob_matrix sparse_c = log_prob_matrix::Zero(c.rows(), c.cols());
    for (const auto& e : entries) sparse_c(static_cast<Eigen::Index>(e.particle), e.candidate) += e.value;
    twist.zero_gradient();
    twist.accumulate_sparse(f.step, entries);
    check_against_finite_differences(twist, ctx, sparse_c);
  }
}

[[nodiscard]] prefix_features make_prefix_features(std::uint64_t seed) {
  return prefix_features(prefix_features_options{.vocab_size = vocab, .embedding_size = 3, .window = 2, .seed = seed});
}

[[nodiscard]] mlp_twist_options head_options(std::size_t layers) {
  return mlp_twist_options{.vocab_size = vocab, .max_steps = max_steps, .hidden_layers = layers, .width = 6, .seed = 7};
}

}  // namespace

TEST_CASE("mlp_twist models TrainableTwist for the models its featurizer supports", "[learning]") {
  STATIC_REQUIRE(TrainableTwist<mlp_twist<model_features>, featured_model>);
  STATIC_REQUIRE(!TrainableTwist<mlp_twist<model_features>, testing::tabular_model>);  // no features()
  STATIC_REQUIRE(TrainableTwist<mlp_twist<prefix_features>, testing::tabular_model>);
  STATIC_REQUIRE(TrainableTwist<mlp_twist<conditional_features<prefix_features>>, testing::tabular_model>);
  STATIC_REQUIRE(TrainableTwist<mlp_twist<conditional_features<model_features>>, featured_model>);
  STATIC_REQUIRE(TrainableFeaturizer<prefix_features>);
  STATIC_REQUIRE(TrainableFeaturizer<conditional_features<model_features>>);
  STATIC_REQUIRE(!TrainableFeaturizer<model_features>);
}

TEST_CASE("mlp_twist starts at psi = 1 exactly, for every layer count and featurizer", "[learning]") {
  step_fixture f;
  featured_model model(4, 3);
  model.set_prefixes(f.prefixes);
  testing::tabular_model plain(vocab, 3);
  for (std::size_t layers = 0; layers <= 3; ++layers) {
    mlp_twist a(model_features(4), head_options(layers));
    mlp_twist b(make_prefix_features(1), head_options(layers));
    conditional_features<prefix_features> cond(make_prefix_features(2),
                                               conditional_features_options{.vocab_size = vocab, .observation_length = 2});
    const std::vector<token> observation{3, 1};
    cond.set_observation(observation);
    mlp_twist c(std::move(cond), head_options(layers));
    log_prob_matrix out = log_prob_matrix::Constant(static_cast<Eigen::Index>(f.particles()), vocab, 9.0);
    a.log_twist(f.context(model), out);
    REQUIRE(out.isZero(0.0));
    out.setConstant(9.0);
    b.log_twist(f.context(plain), out);
    REQUIRE(out.isZero(0.0));
    out.setConstant(9.0);
    c.log_twist(f.context(plain), out);
    REQUIRE(out.isZero(0.0));
  }
}

TEST_CASE("mlp_twist writes 0 in the rows of finished particles and they contribute no gradient", "[learning]") {
  step_fixture f;
  featured_model model(4, 3);
  model.set_prefixes(f.prefixes);
  for (std::size_t layers = 0; layers <= 2; ++layers) {
    mlp_twist twist(model_features(4), head_options(layers));
    randomise(twist, 11);
    log_prob_matrix out(static_cast<Eigen::Index>(f.particles()), vocab);
    twist.set_recording(true);
    twist.log_twist(f.context(model), out);
    REQUIRE(out.row(2).isZero(0.0));
    REQUIRE(!out.row(1).isZero(0.0));

    log_prob_matrix c = random_coefficients(f.particles(), 5);
    twist.zero_gradient();
    twist.accumulate_dense(f.step, c);
    std::vector<Eigen::VectorXd> with_row;
    for (auto& b : twist.parameters()) with_row.push_back(b.gradient);
    c.row(2).setConstant(std::nan(""));  // even NaN there is ignored
    twist.zero_gradient();
    twist.accumulate_dense(f.step, c);
    auto blocks = twist.parameters();
    for (std::size_t i = 0; i < blocks.size(); ++i) REQUIRE(blocks[i].gradient == with_row[i]);

    twist.zero_gradient();
    const std::vector<sparse_coefficient> on_finished{{2, 1, 3.0}, {2, 4, -1.0}};
    twist.accumulate_sparse(f.step, on_finished);
    for (auto& b : twist.parameters()) REQUIRE(b.gradient.isZero(0.0));
  }
  SECTION("an empty active span means every particle is active") {
    mlp_twist twist(model_features(4), head_options(1));
    randomise(twist, 12);
    step_fixture all = f;
    all.active.clear();
    log_prob_matrix out(static_cast<Eigen::Index>(f.particles()), vocab);
    twist.log_twist(all.context(model), out);
    REQUIRE(!out.row(2).isZero(0.0));
  }
}

TEST_CASE("mlp_twist's backward pass matches finite differences with model_features", "[learning]") {
  featured_model model(4, 3);
  model.set_prefixes(step_fixture{}.prefixes);
  for (std::size_t layers = 0; layers <= 2; ++layers) {
    DYNAMIC_SECTION("hidden layers " << layers) {
      mlp_twist twist(model_features(4), head_options(layers));
      check_backward(twist, model, 100 + layers);
    }
  }
}

TEST_CASE("mlp_twist's backward pass matches finite differences with prefix_features", "[learning]") {
  testing::tabular_model model(vocab, 3);
  for (std::size_t layers = 0; layers <= 2; ++layers) {
    DYNAMIC_SECTION("hidden layers " << layers) {
      mlp_twist twist(make_prefix_features(4), head_options(layers));
      check_backward(twist, model, 200 + layers);
    }
  }
}

TEST_CASE("mlp_twist's backward pass matches finite differences with conditional_features", "[learning]") {
  const std::vector<token> observation{2, 2, 0};
  const conditional_features_options obs{.vocab_size = vocab, .observation_length = 3, .embedding_size = 2, .seed = 9};
  for (std::size_t layers = 0; layers <= 2; ++layers) {
    DYNAMIC_SECTION("over prefix_features, hidden layers " << layers) {
      testing::tabular_model model(vocab, 3);
      conditional_features<prefix_features> features(make_prefix_features(5), obs);
      features.set_observation(observation);
      mlp_twist twist(std::move(features), head_options(layers));
      check_backward(twist, model, 300 + layers);
    }
    DYNAMIC_SECTION("over model_features, hidden layers " << layers) {
      featured_model model(4, 3);
      model.set_prefixes(step_fixture{}.prefixes);
      conditional_features<model_features> features(model_features(4), obs);
      features.set_observation(observation);
      mlp_twist twist(std::move(features), head_options(layers));
      check_backward(twist, model, 400 + layers);
    }
  }
}

TEST_CASE("mlp_twist has a 3-hidden-layer head whose gradient matches finite differences", "[learning]") {
  featured_model model(4, 3);
  model.set_prefixes(step_fixture{}.prefixes);
  mlp_twist twist(model_features(4), head_options(3));
  REQUIRE(twist.parameters().size() == 8);
  check_backward(twist, model, 500);
}

TEST_CASE("prefix_features pools the whole prefix and embeds the last tokens", "[learning]") {
  prefix_features pf = make_prefix_features(3);
  const Eigen::MatrixXd e = [&] {
    auto blocks = pf.parameters();
    REQUIRE(blocks.size() == 1);
    REQUIRE(blocks[0].name == "prefix.embedding");
    REQUIRE(blocks[0].rows == 3);
    REQUIRE(blocks[0].cols == static_cast<Eigen::Index>(vocab));
    return Eigen::MatrixXd(Eigen::Map<Eigen::MatrixXd>(blocks[0].values.data(), 3, vocab));
  }();
  step_fixture f;
  testing::tabular_model model(vocab, 3);
  twist_feature_matrix out(static_cast<Eigen::Index>(f.particles()), 9);
  pf.features(f.context(model), out);
  REQUIRE(pf.feature_size() == 9);
  REQUIRE(out.row(0).isZero(0.0));  // empty prefix
  // {3}: mean E[3], last E[3], then padding.
  REQUIRE(out.row(1).segment(0, 3).transpose() == e.col(3));
  REQUIRE(out.row(1).segment(3, 3).transpose() == e.col(3));
  REQUIRE(out.row(1).segment(6, 3).isZero(0.0));
  // {2, 0, 4}: mean of three, then E[4], E[0].
  const Eigen::VectorXd mean = (e.col(2) + e.col(0) + e.col(4)) / 3.0;
  REQUIRE(out.row(3).segment(0, 3).transpose().isApprox(mean, 1e-15));
  REQUIRE(out.row(3).segment(3, 3).transpose() == e.col(4));
  REQUIRE(out.row(3).segment(6, 3).transpose() == e.col(0));
  // Whole prefix: changing the first token changes the features (through the mean).
  step_fixture g = f;
  g.prefixes[3][0] = 1;
  twist_feature_matrix other(out.rows(), out.cols());
  pf.features(g.context(model), other);
  REQUIRE(other.row(3) != out.row(3));
}

TEST_CASE("conditional_features keeps each record's observation", "[learning]") {
  testing::tabular_model model(vocab, 3);
  const conditional_features_options obs{.vocab_size = vocab, .observation_length = 2, .embedding_size = 2, .seed = 4};
  conditional_features<prefix_features> features(make_prefix_features(6), obs);
  const std::vector<token> first{1, 3};
  features.set_observation(first);
  mlp_twist twist(std::move(features), head_options(1));
  randomise(twist, 21);
  step_fixture f;
  log_prob_matrix out(static_cast<Eigen::Index>(f.particles()), vocab);
  twist.set_recording(true);
  twist.log_twist(f.context(model), out);
  const log_prob_matrix c = random_coefficients(f.particles(), 8);
  twist.zero_gradient();
  twist.accumulate_dense(f.step, c);
  std::vector<Eigen::VectorXd> expected;
  for (auto& b : twist.parameters()) expected.push_back(b.gradient);
  // A new observation set after the run does not change that run's gradient.
  const std::vector<token> second{0, 0};
  twist.featurizer().set_observation(second);
  twist.zero_gradient();
  twist.accumulate_dense(f.step, c);
  auto blocks = twist.parameters();
  for (std::size_t i = 0; i < blocks.size(); ++i) REQUIRE(blocks[i].gradient == expected[i]);
  // ...and its forward pass does change.
  log_prob_matrix changed(out.rows(), out.cols());
  twist.log_twist(f.context(model), changed);
  REQUIRE(changed != out);
}

TEST_CASE("mlp_twist keeps one record per step, replaced by a second call and forgotten by clear_recording",
          "[learning]") {
  featured_model model(4, 3);
  step_fixture f;
  model.set_prefixes(f.prefixes);
  mlp_twist twist(model_features(4), head_options(1));
  randomise(twist, 31);
  log_prob_matrix out(static_cast<Eigen::Index>(f.particles()), vocab);
  twist.log_twist(f.context(model), out);  // not recording
  REQUIRE(!twist.has_record(f.step));
  twist.set_recording(true);
  for (std::size_t t = 1; t <= max_steps; ++t) {
    step_fixture g = f;
    g.step = t;
    twist.log_twist(g.context(model), out);
  }
  for (std::size_t t = 1; t <= max_steps; ++t) REQUIRE(twist.has_record(t));
  REQUIRE(!twist.has_record(0));
  REQUIRE(!twist.has_record(max_steps + 1));
  REQUIRE(twist.recorded_rows(2) == f.particles());

  // Replacing step 3's record with 2 particles: coefficients must now be 2 x V.
  step_fixture small = f;
  small.prefixes.resize(2);
  small.active.resize(2);
  featured_model model2(4, 3);
  model2.set_prefixes(small.prefixes);
  log_prob_matrix out2(2, vocab);
  twist.log_twist(small.context(model2), out2);
  REQUIRE(twist.recorded_rows(f.step) == 2);
  REQUIRE_THROWS_AS(twist.accumulate_dense(f.step, random_coefficients(f.particles(), 1)), tsmc::invalid_argument);
  twist.accumulate_dense(f.step, random_coefficients(2, 1));

  twist.clear_recording();
  for (std::size_t t = 1; t <= max_steps; ++t) REQUIRE(!twist.has_record(t));
}

TEST_CASE("mlp_twist rejects bad options, unrecorded steps and bad shapes with clear errors", "[learning]") {
  using Catch::Matchers::Contains;
  REQUIRE_THROWS_WITH((mlp_twist(model_features(4), mlp_twist_options{.vocab_size = 0, .max_steps = 3})),
                      Contains("vocab_size"));
  REQUIRE_THROWS_WITH((mlp_twist(model_features(4), mlp_twist_options{.vocab_size = 3, .max_steps = 0})),
                      Contains("max_steps"));
  REQUIRE_THROWS_WITH((mlp_twist(model_features(4), mlp_twist_options{.vocab_size = 3, .max_steps = 3, .hidden_layers = 4})),
                      Contains("hidden_layers"));
  REQUIRE_THROWS_WITH(
      (mlp_twist(model_features(4), mlp_twist_options{.vocab_size = 3, .max_steps = 3, .hidden_layers = 1, .width = 0})),
      Contains("width"));
  REQUIRE_THROWS_AS(model_features(0), tsmc::invalid_argument);
  REQUIRE_THROWS_AS(prefix_features(prefix_features_options{.vocab_size = 0}), tsmc::invalid_argument);
  REQUIRE_THROWS_AS(prefix_features(prefix_features_options{.vocab_size = 3, .embedding_size = 0}), tsmc::invalid_argument);

  featured_model model(4, 3);
  step_fixture f;
  model.set_prefixes(f.prefixes);
  mlp_twist twist(model_features(4), head_options(1));
  log_prob_matrix out(static_cast<Eigen::Index>(f.particles()), vocab);

  // Unrecorded step: the message names the function and the step.
  REQUIRE_THROWS_AS(twist.accumulate_dense(2, random_coefficients(f.particles(), 1)), tsmc::invalid_argument);
  REQUIRE_THROWS_WITH(twist.accumulate_dense(2, random_coefficients(f.particles(), 1)),
                      Contains("accumulate_dense") && Contains("step") && Contains("got 2"));
  const std::vector<sparse_coefficient> one{{0, 0, 1.0}};
  REQUIRE_THROWS_WITH(twist.accumulate_sparse(3, one), Contains("accumulate_sparse") && Contains("got 3"));

  twist.set_recording(true);
  twist.log_twist(f.context(model), out);
  // Bad coefficient shapes.
  REQUIRE_THROWS_WITH(twist.accumulate_dense(f.step, log_prob_matrix::Zero(4, vocab)),
                      Contains("accumulate_dense") && Contains("rows"));
  REQUIRE_THROWS_WITH(twist.accumulate_dense(f.step, log_prob_matrix::Zero(5, vocab + 1)), Contains("cols"));
  const std::vector<sparse_coefficient> bad_particle{{5, 0, 1.0}};
  REQUIRE_THROWS_WITH(twist.accumulate_sparse(f.step, bad_particle), Contains("particle"));
  const std::vector<sparse_coefficient> bad_candidate{{0, 5, 1.0}};
  REQUIRE_THROWS_WITH(twist.accumulate_sparse(f.step, bad_candidate), Contains("candidate"));
  const std::vector<sparse_coefficient> negative{{0, -1, 1.0}};
  REQUIRE_THROWS_AS(twist.accumulate_sparse(f.step, negative), tsmc::invalid_argument);

  // Steps outside [1, max_steps], a wrong output shape, a wrong active size.
  step_fixture g = f;
  g.step = 0;
  REQUIRE_THROWS_WITH(twist.log_twist(g.context(model), out), Contains("ctx.step"));
  g.step = max_steps + 1;
  REQUIRE_THROWS_WITH(twist.log_twist(g.context(model), out), Contains("ctx.step"));
  log_prob_matrix wide(static_cast<Eigen::Index>(f.particles()), vocab + 1);
  REQUIRE_THROWS_WITH(twist.log_twist(f.context(model), wide), Contains("out.cols()"));
  g = f;
  g.active.pop_back();
  REQUIRE_THROWS_WITH(twist.log_twist(g.context(model), out), Contains("ctx.active.size()"));

  // A feature size that differs from the model's.
  mlp_twist wrong_d(model_features(3), head_options(0));
  REQUIRE_THROWS_WITH(wrong_d.log_twist(f.context(model), out),
                      Contains("model_features::features") && Contains("feature_size") && Contains("got 4"));
  // A model vocabulary that differs from the twist's.
  mlp_twist wrong_v(model_features(4), mlp_twist_options{.vocab_size = vocab + 1, .max_steps = max_steps});
  log_prob_matrix out6(static_cast<Eigen::Index>(f.particles()), vocab + 1);
  REQUIRE_THROWS_WITH(wrong_v.log_twist(f.context(model), out6), Contains("vocab_size"));

  // A conditional featurizer without an observation; a wrong-length observation.
  conditional_features<prefix_features> cond(make_prefix_features(1),
                                             conditional_features_options{.vocab_size = vocab, .observation_length = 2});
  const std::vector<token> three{1, 2, 3};
  REQUIRE_THROWS_WITH(cond.set_observation(three), Contains("observation.size()"));
  const std::vector<token> outside{1, 7};
  REQUIRE_THROWS_AS(cond.set_observation(outside), tsmc::invalid_argument);
  mlp_twist no_obs(std::move(cond), head_options(0));
  testing::tabular_model plain(vocab, 3);
  REQUIRE_THROWS_WITH(no_obs.log_twist(f.context(plain), out), Contains("set_observation"));
}

TEST_CASE("an untrained mlp_twist in twisted_smc gives the run of the untwisted proposal", "[learning]") {
  testing::tabular_model model(vocab, 17);
  // Hidden next-token form: the sampler takes psi_T from the twist too, so every step is recorded.
  testing::hide_next_token_form potential(testing::random_potential(23, 1.0));
  mlp_twist twist(prefix_features(prefix_features_options{.vocab_size = vocab, .embedding_size = 4}),
                  mlp_twist_options{.vocab_size = vocab, .max_steps = 4, .hidden_layers = 1, .width = 8});
  no_twist none;
  const smc_options options{.particles = 16, .horizon = 4, .proposal = proposal_type::twisted};
  twisted_smc with_head(model, twist, potential, options, systematic{}, ess_below(0.5));
  twisted_smc without(model, none, potential, options, systematic{}, ess_below(0.5));
  const std::vector<token> prompt{1};
  default_engine a(3);
  default_engine b(3);
  twist.set_recording(true);
  const smc_result r1 = with_head.run(prompt, a);
  const smc_result r2 = without.run(prompt, b);
  REQUIRE(r1.sequences == r2.sequences);
  for (std::size_t k = 0; k < r1.log_weights.size(); ++k) REQUIRE(r1.log_weights[k] == Approx(r2.log_weights[k]).margin(1e-12));
  for (std::size_t t = 1; t <= 4; ++t) REQUIRE(twist.has_record(t));
}

// ---------------------------------------------------------------------------------------------
// The low-rank output layer (mlp_twist_options::output_rank)
// ---------------------------------------------------------------------------------------------

namespace {

[[nodiscard]] mlp_twist_options low_rank_options(std::size_t layers, std::size_t rank) {
  mlp_twist_options o = head_options(layers);
  o.output_rank = rank;
  return o;
}

}  // namespace

TEST_CASE("a low-rank mlp_twist has the factor block, starts at psi = 1 and zeroes finished rows", "[learning]") {
  step_fixture f;
  featured_model model(4, 3);
  model.set_prefixes(f.prefixes);
  for (std::size_t layers = 0; layers <= 2; ++layers) {
    INFO("hidden layers " << layers);
    mlp_twist twist(model_features(4), low_rank_options(layers, 2));
    const auto blocks = twist.parameters();
    REQUIRE(blocks.size() == 2 * layers + 3);
    const auto& factor = blocks[2 * layers];
    const auto& weight = blocks[2 * layers + 1];
    CHECK(factor.name == "head.output.factor");
    CHECK(factor.rows == static_cast<Eigen::Index>(layers == 0 ? 4 + max_steps : 6));
    CHECK(factor.cols == 2);
    CHECK(!factor.values.isZero(0.0));  // drawn, so that B gets a gradient at the first update
    CHECK(weight.name == "head.output.weight");
    CHECK(weight.rows == 2);
    CHECK(weight.cols == static_cast<Eigen::Index>(vocab));
    CHECK(blocks[2 * layers + 2].name == "head.output.bias");

    log_prob_matrix out = log_prob_matrix::Constant(static_cast<Eigen::Index>(f.particles()), vocab, 9.0);
    twist.log_twist(f.context(model), out);
    CHECK(out.isZero(0.0));

    randomise(twist, 21 + layers);
    twist.set_recording(true);
    twist.log_twist(f.context(model), out);
    CHECK(out.row(2).isZero(0.0));
    CHECK(!out.row(1).isZero(0.0));

    // The finished row contributes nothing, even NaN there; zero_gradient clears every block.
    log_prob_matrix c = random_coefficients(f.particles(), 5);
    twist.zero_gradient();
    twist.accumulate_dense(f.step, c);
    std::vector<Eigen::VectorXd> with_row;
    for (auto& b : twist.parameters()) with_row.push_back(b.gradient);
    CHECK(!with_row[2 * layers].isZero(0.0));  // the factor has a gradient
    twist.accumulate_dense(f.step, c);           // a second call adds (x + x == 2 x exactly)
    auto twice = twist.parameters();
    for (std::size_t i = 0; i < twice.size(); ++i) CHECK(twice[i].gradient == 2.0 * with_row[i]);
    c.row(2).setConstant(std::nan(""));
    twist.zero_gradient();
    for (auto& b : twist.parameters()) CHECK(b.gradient.isZero(0.0));
    twist.accumulate_dense(f.step, c);
    auto after = twist.parameters();
    for (std::size_t i = 0; i < after.size(); ++i) CHECK(after[i].gradient == with_row[i]);
    twist.zero_gradient();
    const std::vector<sparse_coefficient> on_finished{{2, 1, 3.0}, {2, 4, -1.0}};
    twist.accumulate_sparse(f.step, on_finished);
    for (auto& b : twist.parameters()) CHECK(b.gradient.isZero(0.0));
  }
}

TEST_CASE("a low-rank mlp_twist computes log psi = (x A) B + b", "[learning]") {
  step_fixture f;
  featured_model model(4, 3);
  model.set_prefixes(f.prefixes);
  // A linear head (no hidden layer): x = [features, onehot(t)], W_0 = A B.
  mlp_twist twist(model_features(4), low_rank_options(0, 2));
  randomise(twist, 31);
  auto blocks = twist.parameters();
  const Eigen::Map<Eigen::MatrixXd> A(blocks[0].values.data(), blocks[0].rows, blocks[0].cols);
  const Eigen::Map<Eigen::MatrixXd> B(blocks[1].values.data(), blocks[1].rows, blocks[1].cols);
  const Eigen::VectorXd b = blocks[2].values;
  log_prob_matrix out(static_cast<Eigen::Index>(f.particles()), vocab);
  twist.log_twist(f.context(model), out);
  for (Eigen::Index k = 0; k < static_cast<Eigen::Index>(f.particles()); ++k) {
    if (!f.active[static_cast<std::size_t>(k)]) continue;
    Eigen::VectorXd x = Eigen::VectorXd::Zero(4 + max_steps);
    for (Eigen::Index j = 0; j < 4; ++j) x(j) = model.features()(k, j);
    x(4 + static_cast<Eigen::Index>(f.step) - 1) = 1.0;
    const Eigen::VectorXd expected = B.transpose() * (A.transpose() * x) + b;
    for (Eigen::Index v = 0; v < static_cast<Eigen::Index>(vocab); ++v) CHECK(out(k, v) == Approx(expected(v)).epsilon(1e-12));
  }
}

TEST_CASE("a low-rank mlp_twist's backward pass matches finite differences for every block", "[learning]") {
  for (std::size_t layers = 0; layers <= 2; ++layers) {
    DYNAMIC_SECTION("model_features, hidden layers " << layers) {
      featured_model model(4, 3);
      model.set_prefixes(step_fixture{}.prefixes);
      mlp_twist twist(model_features(4), low_rank_options(layers, 2));
      check_backward(twist, model, 600 + layers);
    }
    DYNAMIC_SECTION("prefix_features (trainable), hidden layers " << layers) {
      testing::tabular_model model(vocab, 3);
      mlp_twist twist(make_prefix_features(6), low_rank_options(layers, 3));
      check_backward(twist, model, 700 + layers);
    }
  }
}

TEST_CASE("a low-rank mlp_twist with a float output product agrees with the double one", "[learning]") {
  step_fixture f;
  featured_model model(4, 3);
  model.set_prefixes(f.prefixes);
  mlp_twist exact(model_features(4), low_rank_options(1, 2));
  mlp_twist_options o = low_rank_options(1, 2);
  o.float_output = true;
  mlp_twist fast(model_features(4), o);
  randomise(exact, 41);
  randomise(fast, 41);
  log_prob_matrix a(static_cast<Eigen::Index>(f.particles()), vocab), b(a.rows(), a.cols());
  exact.log_twist(f.context(model), a);
  fast.log_twist(f.context(model), b);
  CHECK((a - b).cwiseAbs().maxCoeff() < 1e-5);
  CHECK(a != b);  // the float path was taken
}

TEST_CASE("mlp_twist rejects an output rank above min(fan_in, V), naming the option and the value", "[learning]") {
  using Catch::Matchers::Contains;
  // Linear head: fan_in = d + max_steps = 8, V = 5: at most 5.
  REQUIRE_NOTHROW(mlp_twist(model_features(4), low_rank_options(0, 5)));
  REQUIRE_THROWS_WITH(mlp_twist(model_features(4), low_rank_options(0, 6)),
                      Contains("mlp_twist::mlp_twist") && Contains("options.output_rank") && Contains("got 6") &&
                          Contains("vocab_size 5"));
  // One hidden layer of width 6, V = 12: at most 6.
  mlp_twist_options wide = low_rank_options(1, 7);
  wide.vocab_size = 12;
  REQUIRE_THROWS_WITH(mlp_twist(model_features(4), wide),
                      Contains("options.output_rank") && Contains("got 7") && Contains("fan_in of the output layer 6"));
  REQUIRE_THROWS_AS(mlp_twist(model_features(4), wide), tsmc::invalid_argument);
}
