// Compile-time tests of <tsmc/core/concepts.hpp>: every concept accepts a minimal conforming
// type and rejects types that lack (or mistype) each required member. The sub-concepts are
// checked too, since they are what names the missing member in a compiler error.
#include <tsmc/core/concepts.hpp>

#include <catch2/catch.hpp>

#include <Eigen/Core>

#include <cstddef>
#include <random>
#include <span>
#include <string>
#include <vector>

namespace {

using tsmc::log_prob_ref;
using tsmc::particle_index;
using tsmc::token;
using tsmc::token_sequence;

// ---------------------------------------------------------------------------------------------
// Language models
// ---------------------------------------------------------------------------------------------

/// The minimum a LanguageModel needs.
struct minimal_model {
  [[nodiscard]] std::size_t vocab_size() const { return 4; }
  void start(std::span<const token>, std::size_t) {}
  void log_probs(log_prob_ref) {}
  void append(std::span<const token>) {}
  void reorder(std::span<const particle_index>) {}
};

struct model_without_vocab_size {
  void start(std::span<const token>, std::size_t) {}
  void log_probs(log_prob_ref) {}
  void append(std::span<const token>) {}
  void reorder(std::span<const particle_index>) {}
};

struct model_without_start {
  [[nodiscard]] std::size_t vocab_size() const { return 4; }
  void log_probs(log_prob_ref) {}
  void append(std::span<const token>) {}
  void reorder(std::span<const particle_index>) {}
};

struct model_without_log_probs {
  [[nodiscard]] std::size_t vocab_size() const { return 4; }
  void start(std::span<const token>, std::size_t) {}
  void append(std::span<const token>) {}
  void reorder(std::span<const particle_index>) {}
};

struct model_without_append {
  [[nodiscard]] std::size_t vocab_size() const { return 4; }
  void start(std::span<const token>, std::size_t) {}
  void log_probs(log_prob_ref) {}
  void reorder(std::span<const particle_index>) {}
};

struct model_without_reorder {
  [[nodiscard]] std::size_t vocab_size() const { return 4; }
  void start(std::span<const token>, std::size_t) {}
  void log_probs(log_prob_ref) {}
  void append(std::span<const token>) {}
};

/// Mistyped members: each has the right name and the wrong signature.
struct model_with_mutable_vocab_size : minimal_model {
  std::size_t vocab_size() { return 4; }  // not callable on a const model
};
struct model_with_string_vocab_size : minimal_model {
  [[nodiscard]] std::string vocab_size() const { return "4"; }
};
struct model_with_float_log_probs : minimal_model {
  // The K x V matrix must be the library's row-major type; a column-major single-precision
  // matrix cannot bind to it.
  void log_probs(Eigen::Ref<Eigen::MatrixXf>) {}
};
struct model_with_wide_tokens : minimal_model {
  void append(std::span<const long long>) {}
};
struct model_with_size_t_ancestors : minimal_model {
  void reorder(std::span<const std::size_t>) {}
};

/// Generic members are fine.
struct generic_model {
  [[nodiscard]] int vocab_size() const { return 4; }  // any type convertible to size_t
  void start(auto, auto) {}
  void log_probs(auto&&) {}
  void append(auto) {}
  void reorder(auto) {}
};

/// A LanguageModel with features().
struct model_with_features : minimal_model {
  tsmc::feature_matrix hidden;
  [[nodiscard]] const tsmc::feature_matrix& features() const { return hidden; }
};
struct model_with_mutable_features : minimal_model {
  tsmc::feature_matrix hidden;
  tsmc::feature_matrix& features() { return hidden; }  // not callable on a const model
};
struct model_with_int_features : minimal_model {
  [[nodiscard]] int features() const { return 0; }
};
struct features_without_model {  // features() alone does not make a model
  tsmc::feature_matrix hidden;
  [[nodiscard]] const tsmc::feature_matrix& features() const { return hidden; }
};

// ---------------------------------------------------------------------------------------------
// Twists, potentials, proposals, samplers
// ---------------------------------------------------------------------------------------------

struct minimal_twist {
  void log_twist(const tsmc::step_context<minimal_model>&, log_prob_ref) {}
};
struct generic_twist {
  template <class Model>
  void log_twist(const tsmc::step_context<Model>&, log_prob_ref) const {}
};
struct twist_without_log_twist {
  void log_proposal(const tsmc::step_context<minimal_model>&, log_prob_ref) {}
};
struct twist_with_wrong_output {
  void log_twist(const tsmc::step_context<minimal_model>&, Eigen::MatrixXd&) {}
};
struct twist_for_another_model {
  void log_twist(const tsmc::step_context<generic_model>&, log_prob_ref) {}
};

struct minimal_potential {
  void log_potential(std::span<const token_sequence>, std::span<double>) {}
};
struct potential_without_log_potential {
  void log_potential_next(const tsmc::step_context<minimal_model>&, log_prob_ref) {}
};
struct potential_with_vector_output {
  void log_potential(std::span<const token_sequence>, std::vector<double>&) {}
};
struct potential_with_single_sequence {
  double log_potential(const token_sequence&) { return 0.0; }
};
struct next_token_potential {
  void log_potential(std::span<const token_sequence>, std::span<double>) {}
  void log_potential_next(const tsmc::step_context<minimal_model>&, log_prob_ref) {}
};

struct minimal_proposal {
  void log_proposal(const tsmc::step_context<minimal_model>&, log_prob_ref) {}
};
struct generic_proposal {
  template <class Model>
  void log_proposal(const tsmc::step_context<Model>&, log_prob_ref) {}
};

struct minimal_sampler {
  token_sequence sample(tsmc::default_engine&) { return {}; }
};
struct generic_sampler {
  template <class Engine>
  token_sequence sample(Engine&) {
    return {};
  }
};
struct mt19937_only_sampler {
  token_sequence sample(std::mt19937&) { return {}; }
};
struct sampler_returning_one_token {
  token sample(tsmc::default_engine&) { return 0; }
};
struct sampler_without_sample {
  token_sequence draw(tsmc::default_engine&) { return {}; }
};

// ---------------------------------------------------------------------------------------------
// Engines
// ---------------------------------------------------------------------------------------------

struct engine_without_range {
  using result_type = unsigned;
  unsigned operator()() { return 0; }
};
struct engine_with_signed_results {
  using result_type = int;
  static constexpr int min() { return 0; }
  static constexpr int max() { return 100; }
  int operator()() { return 0; }
};
struct engine_with_runtime_range {
  using result_type = unsigned;
  static unsigned min() { return 0; }  // not constexpr
  static unsigned max() { return 100; }
  unsigned operator()() { return 0; }
};
struct minimal_engine {
  using result_type = unsigned;
  static constexpr unsigned min() { return 0; }
  static constexpr unsigned max() { return 100; }
  unsigned operator()() { return 0; }
};

}  // namespace

TEST_CASE("LanguageModel: a minimal model, and each missing member", "[core]") {
  STATIC_REQUIRE(tsmc::LanguageModel<minimal_model>);
  STATIC_REQUIRE(tsmc::LanguageModel<generic_model>);
  STATIC_REQUIRE(tsmc::LanguageModel<model_with_features>);

  STATIC_REQUIRE_FALSE(tsmc::LanguageModel<model_without_vocab_size>);
  STATIC_REQUIRE_FALSE(tsmc::LanguageModel<model_without_start>);
  STATIC_REQUIRE_FALSE(tsmc::LanguageModel<model_without_log_probs>);
  STATIC_REQUIRE_FALSE(tsmc::LanguageModel<model_without_append>);
  STATIC_REQUIRE_FALSE(tsmc::LanguageModel<model_without_reorder>);
  STATIC_REQUIRE_FALSE(tsmc::LanguageModel<int>);
  STATIC_REQUIRE_FALSE(tsmc::LanguageModel<minimal_twist>);

  // The sub-concept that fails is the one for the missing member, and only that one.
  STATIC_REQUIRE_FALSE(tsmc::HasVocabulary<model_without_vocab_size>);
  STATIC_REQUIRE(tsmc::StartsParticles<model_without_vocab_size>);
  STATIC_REQUIRE_FALSE(tsmc::StartsParticles<model_without_start>);
  STATIC_REQUIRE(tsmc::HasVocabulary<model_without_start>);
  STATIC_REQUIRE_FALSE(tsmc::EmitsLogProbs<model_without_log_probs>);
  STATIC_REQUIRE(tsmc::AppendsTokens<model_without_log_probs>);
  STATIC_REQUIRE_FALSE(tsmc::AppendsTokens<model_without_append>);
  STATIC_REQUIRE(tsmc::ReordersParticles<model_without_append>);
  STATIC_REQUIRE_FALSE(tsmc::ReordersParticles<model_without_reorder>);
  STATIC_REQUIRE(tsmc::EmitsLogProbs<model_without_reorder>);
  STATIC_REQUIRE(tsmc::HasVocabulary<minimal_model>);
  STATIC_REQUIRE(tsmc::StartsParticles<minimal_model>);
  STATIC_REQUIRE(tsmc::EmitsLogProbs<minimal_model>);
  STATIC_REQUIRE(tsmc::AppendsTokens<minimal_model>);
  STATIC_REQUIRE(tsmc::ReordersParticles<minimal_model>);
}

TEST_CASE("LanguageModel: mistyped members are rejected", "[core]") {
  STATIC_REQUIRE_FALSE(tsmc::HasVocabulary<model_with_mutable_vocab_size>);
  STATIC_REQUIRE_FALSE(tsmc::LanguageModel<model_with_mutable_vocab_size>);
  STATIC_REQUIRE_FALSE(tsmc::HasVocabulary<model_with_string_vocab_size>);
  STATIC_REQUIRE_FALSE(tsmc::EmitsLogProbs<model_with_float_log_probs>);
  STATIC_REQUIRE_FALSE(tsmc::LanguageModel<model_with_float_log_probs>);
  STATIC_REQUIRE_FALSE(tsmc::AppendsTokens<model_with_wide_tokens>);
  STATIC_REQUIRE_FALSE(tsmc::ReordersParticles<model_with_size_t_ancestors>);
}

TEST_CASE("ModelWithFeatures", "[core]") {
  STATIC_REQUIRE(tsmc::ModelWithFeatures<model_with_features>);
  STATIC_REQUIRE_FALSE(tsmc::ModelWithFeatures<minimal_model>);
  STATIC_REQUIRE_FALSE(tsmc::ModelWithFeatures<model_with_mutable_features>);
  STATIC_REQUIRE_FALSE(tsmc::ModelWithFeatures<model_with_int_features>);
  STATIC_REQUIRE_FALSE(tsmc::ModelWithFeatures<features_without_model>);
}

TEST_CASE("TwistFunction", "[core]") {
  STATIC_REQUIRE(tsmc::TwistFunction<minimal_twist, minimal_model>);
  STATIC_REQUIRE(tsmc::TwistFunction<generic_twist, minimal_model>);
  STATIC_REQUIRE(tsmc::TwistFunction<generic_twist, generic_model>);
  STATIC_REQUIRE_FALSE(tsmc::TwistFunction<twist_without_log_twist, minimal_model>);
  STATIC_REQUIRE_FALSE(tsmc::TwistFunction<twist_with_wrong_output, minimal_model>);
  STATIC_REQUIRE(tsmc::TwistFunction<twist_for_another_model, generic_model>);
  STATIC_REQUIRE_FALSE(tsmc::TwistFunction<twist_for_another_model, minimal_model>);
  STATIC_REQUIRE_FALSE(tsmc::TwistFunction<minimal_model, minimal_model>);
}

TEST_CASE("Potential and NextTokenPotential", "[core]") {
  STATIC_REQUIRE(tsmc::Potential<minimal_potential>);
  STATIC_REQUIRE(tsmc::Potential<next_token_potential>);
  STATIC_REQUIRE_FALSE(tsmc::Potential<potential_without_log_potential>);
  STATIC_REQUIRE_FALSE(tsmc::Potential<potential_with_vector_output>);
  STATIC_REQUIRE_FALSE(tsmc::Potential<potential_with_single_sequence>);
  STATIC_REQUIRE_FALSE(tsmc::Potential<minimal_model>);

  STATIC_REQUIRE(tsmc::NextTokenPotential<next_token_potential, minimal_model>);
  STATIC_REQUIRE_FALSE(tsmc::NextTokenPotential<next_token_potential, generic_model>);  // another model's context
  STATIC_REQUIRE_FALSE(tsmc::NextTokenPotential<minimal_potential, minimal_model>);
  // log_potential_next without log_potential is not a potential at all.
  STATIC_REQUIRE_FALSE(tsmc::NextTokenPotential<potential_without_log_potential, minimal_model>);
}

TEST_CASE("ProposalModel", "[core]") {
  STATIC_REQUIRE(tsmc::ProposalModel<minimal_proposal, minimal_model>);
  STATIC_REQUIRE(tsmc::ProposalModel<generic_proposal, generic_model>);
  STATIC_REQUIRE(tsmc::ProposalModel<twist_without_log_twist, minimal_model>);  // it has log_proposal
  STATIC_REQUIRE_FALSE(tsmc::ProposalModel<minimal_proposal, generic_model>);
  STATIC_REQUIRE_FALSE(tsmc::ProposalModel<minimal_twist, minimal_model>);
  STATIC_REQUIRE_FALSE(tsmc::ProposalModel<minimal_model, minimal_model>);
}

TEST_CASE("ExactSampler", "[core]") {
  STATIC_REQUIRE(tsmc::ExactSampler<minimal_sampler>);
  STATIC_REQUIRE(tsmc::ExactSampler<minimal_sampler, tsmc::xoshiro256ss>);
  STATIC_REQUIRE(tsmc::ExactSampler<generic_sampler>);
  STATIC_REQUIRE(tsmc::ExactSampler<generic_sampler, std::mt19937>);
  STATIC_REQUIRE(tsmc::ExactSampler<mt19937_only_sampler, std::mt19937>);
  STATIC_REQUIRE_FALSE(tsmc::ExactSampler<mt19937_only_sampler>);
  STATIC_REQUIRE_FALSE(tsmc::ExactSampler<minimal_sampler, std::mt19937>);
  STATIC_REQUIRE_FALSE(tsmc::ExactSampler<sampler_returning_one_token>);
  STATIC_REQUIRE_FALSE(tsmc::ExactSampler<sampler_without_sample>);
  STATIC_REQUIRE_FALSE(tsmc::ExactSampler<generic_sampler, int>);  // int is not an engine
}

TEST_CASE("RandomEngine", "[core]") {
  STATIC_REQUIRE(tsmc::RandomEngine<tsmc::xoshiro256ss>);
  STATIC_REQUIRE(tsmc::RandomEngine<tsmc::xoshiro256ss&>);  // references are looked through
  STATIC_REQUIRE(tsmc::RandomEngine<std::mt19937>);
  STATIC_REQUIRE(tsmc::RandomEngine<std::mt19937_64>);
  STATIC_REQUIRE(tsmc::RandomEngine<std::minstd_rand&>);
  STATIC_REQUIRE(tsmc::RandomEngine<std::ranlux24>);
  STATIC_REQUIRE(tsmc::RandomEngine<minimal_engine>);
  STATIC_REQUIRE_FALSE(tsmc::RandomEngine<int>);
  STATIC_REQUIRE_FALSE(tsmc::RandomEngine<double>);
  STATIC_REQUIRE_FALSE(tsmc::RandomEngine<engine_without_range>);
  STATIC_REQUIRE_FALSE(tsmc::RandomEngine<engine_with_signed_results>);
  STATIC_REQUIRE_FALSE(tsmc::RandomEngine<engine_with_runtime_range>);
  STATIC_REQUIRE_FALSE(tsmc::RandomEngine<std::normal_distribution<double>>);
}

TEST_CASE("step_context carries the step, the prefixes and the model", "[core]") {
  const minimal_model model;
  const std::vector<token> prompt{1, 2};
  const std::vector<token_sequence> prefixes{{3}, {0}};
  const std::vector<std::uint8_t> active{1, 0};
  const tsmc::step_context<minimal_model> ctx{
      .step = 2, .horizon = 5, .prompt = prompt, .prefixes = prefixes, .active = active, .model = model};
  CHECK(ctx.step == 2);
  CHECK(ctx.horizon == 5);
  CHECK(ctx.prompt.size() == 2);
  CHECK(ctx.prefixes[0] == token_sequence{3});
  CHECK(ctx.active[1] == 0);
  CHECK(&ctx.model == &model);
  CHECK(ctx.model.vocab_size() == 4);
  // Defaults: step 1 of a horizon of 1.
  const tsmc::step_context<minimal_model> first{.prompt = {}, .prefixes = {}, .active = {}, .model = model};
  CHECK(first.step == 1);
  CHECK(first.horizon == 1);
  CHECK(first.prefixes.empty());
}
