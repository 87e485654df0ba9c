// Task potentials on the built-in world: the next-token form equals the sequence form on every
// candidate token; a threshold (red-teaming) target on the n-gram model has exact samples from
// the rejection sampler that all pass, and the bidirectional bounds at K = 1 and K = 256 bracket
// each other as they must; the infilling potential works on the n-gram model.
#include <catch2/catch.hpp>

#include <tsmc/bounds/estimator.hpp>
#include <tsmc/bounds/exact_samplers.hpp>
#include <tsmc/core/concepts.hpp>
#include <tsmc/core/log_math.hpp>
#include <tsmc/core/random.hpp>
#include <tsmc/corpus/story_grammar.hpp>
#include <tsmc/models/ngram.hpp>
#include <tsmc/models/word_tokenizer.hpp>
#include <tsmc/potentials/classifier.hpp>
#include <tsmc/potentials/task_potentials.hpp>
#include <tsmc/resampling/schemes.hpp>
#include <tsmc/resampling/triggers.hpp>
#include <tsmc/smc/sampler.hpp>
#include <tsmc/twists/no_twist.hpp>

#include <cmath>
#include <string>
#include <vector>

using namespace tsmc;

namespace {

/// The built-in world: a trigram model and classifiers of sentiment and of the rare attribute.
struct world {
  word_tokenizer vocabulary;
  std::vector<token_sequence> sentences;
  std::vector<std::size_t> sentiment, rare;
  ngram_model model;
  bag_of_words_classifier sentiment_classifier, rare_classifier;

  static world make() {
    const story_grammar grammar;
    word_tokenizer vocabulary(std::span<const std::string>(grammar.words()));
    std::vector<token_sequence> sentences;
    std::vector<std::size_t> sentiment, rare;
    for (const labelled_sentence& s : grammar.generate(3000, 41)) {
      sentences.push_back(vocabulary.encode(s.text));
      sentiment.push_back(static_cast<std::size_t>(s.label));
      rare.push_back(s.rare ? 1 : 0);
    }
    const std::size_t V = vocabulary.vocab_size();
    const bag_of_words_options options{.ignored = {word_tokenizer::end_token}};
    ngram_model model = ngram_model::train_kneser_ney(vocabulary, sentences, {.order = 3});
    bag_of_words_classifier s = bag_of_words_classifier::train(sentences, sentiment, 3, V, options);
    bag_of_words_classifier r = bag_of_words_classifier::train(sentences, rare, 2, V, options);
    return world{vocabulary, sentences, sentiment, rare, std::move(model), std::move(s), std::move(r)};
  }
};

const world& shared_world() {
  static const world w = world::make();
  return w;
}

/// Checks out(k, v) == log_potential(prefix_k + v) for every k and v, exactly.
template <class Pot>
void check_next_equals_sequence(Pot& potential, const ngram_model& model, const std::vector<token_sequence>& prefixes) {
  const std::size_t V = model.vocab_size();
  const std::vector<std::uint8_t> active(prefixes.size(), 1);
  const token_sequence prompt;
  const step_context<ngram_model> ctx{3, 4, prompt, prefixes, active, model};
  log_prob_matrix next(static_cast<Eigen::Index>(prefixes.size()), static_cast<Eigen::Index>(V));
  potential.log_potential_next(ctx, next);
  std::vector<token_sequence> extended;
  for (const token_sequence& p : prefixes)
    for (std::size_t v = 0; v < V; ++v) {
      extended.push_back(p);
      extended.back().push_back(static_cast<token>(v));
    }
  std::vector<double> sequence_form(extended.size());
  potential.log_potential(extended, sequence_form);
  std::size_t passing = 0;
  for (std::size_t k = 0; k < prefixes.size(); ++k)
    for (std::size_t v = 0; v < V; ++v) {
      const double x = next(static_cast<Eigen::Index>(k), static_cast<Eigen::Index>(v));
      REQUIRE(x == sequence_form[k * V + v]);
      passing += x == 0.0 ? 1 : 0;
    }
  (void)passing;
}

}  // namespace

TEST_CASE("task potentials model Potential, and NextTokenPotential where their score allows", "[world]") {
  using bow = bag_of_words_classifier;
  STATIC_REQUIRE(NextTokenPotential<classifier_potential<bow>, ngram_model>);
  STATIC_REQUIRE(NextTokenPotential<threshold_potential<class_log_prob_score<bow>>, ngram_model>);
  const auto user = [](std::span<const token> s) { return static_cast<double>(s.size()); };
  STATIC_REQUIRE(Potential<threshold_potential<function_score<decltype(user)>>>);
  STATIC_REQUIRE_FALSE(NextTokenPotential<threshold_potential<function_score<decltype(user)>>, ngram_model>);
}

TEST_CASE("task potentials: the next-token form equals the sequence form on every candidate", "[world]") {
  const world& w = shared_world();
  const std::vector<token_sequence> prefixes{
      {}, token_sequence(w.sentences[0].begin(), w.sentences[0].begin() + 4), w.sentences[1], w.sentences[2]};
  for (const double beta : {1.0, 0.7, 0.0}) {
    classifier_potential positive(w.sentiment_classifier, 2, beta);
    check_next_equals_sequence(positive, w.model, prefixes);
  }
  // Thresholds where some candidates pass and some do not, one of them exactly a candidate's
  // score (so >= and > differ).
  token_sequence tie = prefixes[1];
  tie.push_back(w.vocabulary.id("hit"));
  const double tie_score = class_log_prob_score(w.rare_classifier, 1).score(tie);
  for (const double threshold : {std::log(0.5), std::log(0.9), -0.01, tie_score}) {
    threshold_potential harmful(class_log_prob_score(w.rare_classifier, 1), threshold);
    check_next_equals_sequence(harmful, w.model, prefixes);
  }
  // The sequence form agrees with the classifier directly.
  classifier_potential half(w.sentiment_classifier, 0, 0.5);
  std::vector<double> out(1);
  half.log_potential(std::span<const token_sequence>(&w.sentences[5], 1), out);
  REQUIRE(out[0] == 0.5 * w.sentiment_classifier.log_class_probs(w.sentences[5])[0]);
  // A user score.
  threshold_potential longer(function_score([](std::span<const token> s) { return static_cast<double>(s.size()); }), 3.0);
  longer.log_potential(std::span<const token_sequence>(&prefixes[1], 1), out);
  REQUIRE(out[0] == 0.0);
  longer.log_potential(std::span<const token_sequence>(&prefixes[0], 1), out);
  REQUIRE(out[0] == neg_inf);
  REQUIRE_THROWS_AS(classifier_potential(w.sentiment_classifier, 3), tsmc::invalid_argument);
  REQUIRE_THROWS_AS(classifier_potential(w.sentiment_classifier, 0, -1.0), tsmc::invalid_argument);
  REQUIRE_THROWS_AS(threshold_potential(class_log_prob_score(w.rare_classifier, 1), std::nan("")), tsmc::invalid_argument);
}

TEST_CASE("threshold target on the n-gram world: exact rejection samples, bounds at K = 1 and K = 256 bracket", "[world]") {
  const world& w = shared_world();
  ngram_model model = w.model;  // the sampler drives its own copy
  // Red-teaming: continuations of "the" that the classifier finds harmful, P(harmful | s) >= 1/2.
  threshold_potential harmful(class_log_prob_score(w.rare_classifier, 1), std::log(0.5));
  const token_sequence prompt{w.vocabulary.id("the")};
  constexpr std::size_t T = 4, M = 40;
  auto exact = indicator_rejection_sampler(model, harmful, prompt, {.horizon = T, .batch = 512, .budget = 2'000'000});
  default_engine rng(77);
  // Every exact sample passes.
  for (int i = 0; i < 20; ++i) {
    const token_sequence s = exact.sample(rng);
    REQUIRE(s.size() == T);
    REQUIRE(harmful.passes(s));
  }
  no_twist none;
  const auto bounds_at = [&](std::size_t K) {
    twisted_smc smc(model, none, harmful, smc_options{.particles = K, .horizon = T, .proposal = proposal_type::twisted},
                    systematic{}, ess_below(0.5));
    return estimate_bounds(smc, prompt, exact, M, rng);
  };
  const log_z_bounds one = bounds_at(1), many = bounds_at(256);
  const double rate = exact.acceptance_rate();
  const auto draws = static_cast<double>(exact.draws());
  // log Z estimated by the acceptance rate of the rejection sampler, with its standard error.
  const double log_rate = std::log(rate), log_rate_se = std::sqrt((1.0 - rate) / (rate * draws));
  INFO("acceptance " << rate << " over " << draws << " draws; K=1 [" << one.lower.mean << " +- " << one.lower.standard_error
                     << ", " << one.upper.mean << " +- " << one.upper.standard_error << "]; K=256 [" << many.lower.mean
                     << " +- " << many.lower.standard_error << ", " << many.upper.mean << " +- "
                     << many.upper.standard_error << "]");
  REQUIRE(rate > 0.0);
  REQUIRE(std::isfinite(one.lower.mean));  // psi_T = phi: every particle has a passing candidate
  REQUIRE(std::isfinite(many.lower.mean));
  // E lower_1 <= E lower_256 <= log Z <= E upper_256 <= E upper_1, each at 5.33 combined standard
  // errors (one-sided 5e-8 per comparison).
  constexpr double z = 5.33;
  const auto below = [&](const bound_estimate& a, const bound_estimate& b) {
    return a.mean <= b.mean + z * std::hypot(a.standard_error, b.standard_error);
  };
  REQUIRE(below(one.lower, many.lower));
  REQUIRE(below(many.lower, many.upper));
  REQUIRE(below(many.upper, one.upper));
  REQUIRE(many.lower.mean <= log_rate + z * std::hypot(many.lower.standard_error, log_rate_se));
  REQUIRE(log_rate <= many.upper.mean + z * std::hypot(many.upper.standard_error, log_rate_se));
  // K = 256 is tighter than K = 1.
  REQUIRE(many.gap() < one.gap());
  WARN("threshold target: acceptance " << rate << " (log " << log_rate << "); K=1 bounds [" << one.lower.mean << ", "
                                        << one.upper.mean << "], K=256 [" << many.lower.mean << ", " << many.upper.mean
                                        << "]");
}

TEST_CASE("infilling on the n-gram model: the potential is log p0(o | prompt, s)", "[world]") {
  const world& w = shared_world();
  const token_sequence prompt{w.vocabulary.id("the")};
  const token_sequence observation{w.vocabulary.id("the"), w.vocabulary.id("cat")};
  infilling_potential<ngram_model> potential(w.model, prompt, observation);
  const token_sequence s{w.vocabulary.id("fox"), w.vocabulary.id("saw")};
  token_sequence history = prompt;
  history.insert(history.end(), s.begin(), s.end());
  const double expected = w.model.log_prob(history, observation[0]) + [&] {
    token_sequence h = history;
    h.push_back(observation[0]);
    return w.model.log_prob(h, observation[1]);
  }();
  REQUIRE(potential.log_value(s) == Approx(expected).epsilon(1e-13));
  // The joint sampler runs on it too.
  ngram_model model = w.model;
  infilling_joint_sampler joint(model, prompt, {.horizon = 2, .continuation = 2, .batch = 8});
  default_engine rng(3);
  const infilling_sample draw = joint.draw(rng);
  REQUIRE(draw.prefix.size() == 2);
  REQUIRE(draw.observation.size() == 2);
}
