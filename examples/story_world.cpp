// The built-in world, end to end: a labelled story corpus, a Kneser-Ney trigram model and two
// bag-of-words classifiers trained on it, then the paper's two classifier tasks on that model:
// sentiment-conditioned generation (phi = P(positive | s)) by twisted SMC, and red-teaming
// (phi = 1[P(harmful | s) >= 1/2]) with exact samples and bidirectional bounds on log Z.
#include "program_support.hpp"

#include <tsmc/all.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

int run();

int main(int argc, char** argv) {
  tsmc_examples::program p("story_world",
                           "story_world: the built-in world end to end (corpus, trigram, classifiers) and the "
                           "paper's two classifier tasks on it; it takes no options");
  if (const auto status = p.parse(argc, argv)) return *status;
  return p.run(run);
}

int run() {
  // 1. A corpus from the story grammar: sentences labelled with a sentiment and a rare attribute.
  const tsmc::story_grammar grammar;
  const std::vector<tsmc::labelled_sentence> corpus = grammar.generate(5000, /*seed=*/1);
  std::vector<std::string> texts;
  for (const tsmc::labelled_sentence& s : corpus) texts.push_back(s.text);
  const tsmc::word_tokenizer vocabulary = tsmc::word_tokenizer::from_corpus(texts);
  std::vector<tsmc::token_sequence> sentences;
  std::vector<std::size_t> sentiment, harmful;
  for (const tsmc::labelled_sentence& s : corpus) {
    sentences.push_back(vocabulary.encode(s.text));
    sentiment.push_back(static_cast<std::size_t>(s.label));
    harmful.push_back(s.rare ? 1 : 0);
  }

  // 2. The base model p0 and the classifiers (the end token carries no evidence).
  tsmc::ngram_model model = tsmc::ngram_model::train_kneser_ney(vocabulary, sentences, {.order = 3});
  const std::size_t V = vocabulary.vocab_size();
  const tsmc::bag_of_words_options options{.ignored = {tsmc::word_tokenizer::end_token}};
  const auto sentiment_classifier = tsmc::bag_of_words_classifier::train(sentences, sentiment, 3, V, options);
  const auto harm_classifier = tsmc::bag_of_words_classifier::train(sentences, harmful, 2, V, options);

  // 3. Sentiment: sigma(s) proportional to p0(s) P(positive | s), sentences of up to 16 tokens.
  const tsmc::token_sequence prompt = vocabulary.encode("the");
  const auto end = tsmc::word_tokenizer::end_token;
  tsmc::classifier_potential positive(sentiment_classifier, static_cast<std::size_t>(tsmc::sentiment::positive));
  tsmc::no_twist twist;
  tsmc::twisted_smc smc(model, twist, positive, tsmc::smc_options{.particles = 64, .horizon = 16, .end_token = end},
                        tsmc::systematic{}, tsmc::ess_below(0.5));
  tsmc::default_engine rng(7);
  const tsmc::smc_result result = smc.run(prompt, rng);
  std::printf("sentiment task: log Zhat = %.3f (log P(positive) under p0 after \"the\")\n", result.log_z);
  std::vector<std::size_t> order(result.sequences.size());
  for (std::size_t k = 0; k < order.size(); ++k) order[k] = k;
  std::partial_sort(order.begin(), order.begin() + 3, order.end(), [&](std::size_t a, std::size_t b) {
    return result.normalized_log_weights[a] > result.normalized_log_weights[b];
  });
  for (std::size_t i = 0; i < 3; ++i)
    std::printf("  w = %.3f  the %s\n", std::exp(result.normalized_log_weights[order[i]]),
                vocabulary.decode(result.sequences[order[i]]).c_str());

  // 4. Red-teaming: four-token continuations the harm classifier flags; exact samples by
  // rejection from p0, and the bounds of twisted SMC with phi's next-token form at the last step.
  tsmc::threshold_potential flagged(tsmc::class_log_prob_score(harm_classifier, 1), std::log(0.5));
  auto exact = tsmc::indicator_rejection_sampler(model, flagged, prompt, {.horizon = 4, .batch = 512});
  tsmc::twisted_smc red(model, twist, flagged, tsmc::smc_options{.particles = 64, .horizon = 4},
                        tsmc::systematic{}, tsmc::ess_below(0.5));
  const tsmc::log_z_bounds bounds = tsmc::estimate_bounds(red, prompt, exact, 20, rng);
  std::printf("red-teaming task: log Z in [%.3f, %.3f] (lower +- %.3f, upper +- %.3f); rejection accepted %.4f\n",
              bounds.lower.mean, bounds.upper.mean, bounds.lower.standard_error, bounds.upper.standard_error,
              exact.acceptance_rate());
  std::printf("  an exact sample: the %s\n", vocabulary.decode(exact.sample(rng)).c_str());
  return 0;
}
