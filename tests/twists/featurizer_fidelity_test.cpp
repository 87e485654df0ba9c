// [fidelity] A twist head that sees what the target needs (issue 27, item 6): on the n-gram,
// whose features see only the last N - 1 words, a target that looks at the whole sequence needs a
// summary of the whole prefix; model_and_prefix_features gives the head both.
#include "learning/learning_fixtures.hpp"

#include <tsmc/learning/adam.hpp>
#include <tsmc/learning/trainer.hpp>
#include <tsmc/models/ngram.hpp>
#include <tsmc/models/word_tokenizer.hpp>
#include <tsmc/testing/proposal_kl.hpp>
#include <tsmc/twists/features.hpp>
#include <tsmc/twists/mlp_twist.hpp>

#include <catch2/catch.hpp>

#include <vector>

using namespace tsmc_test;

namespace {

/// A bigram model over the words a b c d e x trained on 300 sentences drawn with a fixed seed,
/// x rare (3%): its features see only the last word.
tsmc::ngram_model rare_word_bigram() {
  const word_tokenizer vocabulary{std::vector<std::string>{"a", "b", "c", "d", "e", "x"}};
  const std::vector<double> p{0.25, 0.25, 0.2, 0.15, 0.12, 0.03};
  default_engine rng(27);
  std::vector<token_sequence> sentences;
  for (int i = 0; i < 300; ++i) {
    token_sequence s;
    const std::size_t length = 3 + static_cast<std::size_t>(uniform01(rng) * 6.0);
    for (std::size_t j = 0; j < length; ++j) {
      double u = uniform01(rng), c = 0.0;
      std::size_t w = 0;
      while (w + 1 < p.size() && u >= (c += p[w])) ++w;
      s.push_back(static_cast<token>(3 + w));
    }
    sentences.push_back(std::move(s));
  }
  return tsmc::ngram_model::train_kneser_ney(vocabulary, std::span<const token_sequence>(sentences), {.order = 2});
}

}  // namespace

TEST_CASE("model_and_prefix_features: CTL on a non-local target (x anywhere) cuts the exact KL(sigma || q) 3x",
          "[fidelity][featurizer]") {
  // phi = 1{x occurs among the T = 5 words}. The bigram's features see only the last word, so a
  // head on them cannot know that x occurred earlier; the prefix summary can. Exact KLs by
  // enumeration of all 9^5 sequences; deterministic training (fixed seeds, one thread's arithmetic).
  tsmc::ngram_model model = rare_word_bigram();
  const std::size_t V = model.vocab_size(), T = 5;
  const token x = model.vocabulary().id("x");
  pattern_indicator target(token_sequence{x});
  const toy_problem problem{V, T, token_sequence{}, std::nullopt};
  const exact_solution solution = enumerate(problem, model, target);
  enumeration_sampler exact(solution);
  mlp_twist twist(make_model_and_prefix_features(model.feature_dimension(),
                                                 {.vocab_size = V, .embedding_size = 8, .window = 1, .seed = 3}),
                  {.vocab_size = V, .max_steps = T, .hidden_layers = 1, .width = 32, .seed = 5});
  twisted_smc smc(model, twist, target, smc_options{.particles = 1, .horizon = T, .proposal = proposal_type::twisted});
  const double before = exact_proposal_kls(solution, smc).sigma_q;
  learning_problem lp(model, twist, target, std::span<const token>(problem.prompt),
                      learning_options{.batch = 64, .horizon = T});
  tsmc::ctl objective(exact, 64);
  adam optimizer(adam_options{.learning_rate = 0.01});
  default_engine rng(11);
  (void)train(lp, objective, optimizer, training_options{.updates = 300}, rng);
  const double after = exact_proposal_kls(solution, smc).sigma_q;
  INFO("KL(sigma || q): no twist " << before << ", after CTL " << after << ", log Z " << solution.log_z());
  CHECK(before > 1.0);
  CHECK(after < before / 3.0);
}
