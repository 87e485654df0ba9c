// [fidelity] Demos a person believes (issue 27, item 7): the grammar's labeller
// (story_grammar::is_rare) equals the grammar's own labels on generated sentences, reads the
// slots (not the words) on other text, and the programs' harm classifier (examples/example_world.hpp,
// the world red_team and flagship build) has a target whose exact samples are harmful by those
// labels at least 90% of the time. With the old training (whole sentences labelled rare) 15.8%
// were, and the third test fails.
#include "../../examples/example_world.hpp"

#include <tsmc/corpus/story_grammar.hpp>

#include <catch2/catch.hpp>

#include <cmath>
#include <cstddef>
#include <string>

TEST_CASE("story_grammar::is_rare equals the grammar's rare label on generated sentences", "[fidelity]") {
  const tsmc::story_grammar grammar;
  std::size_t rare = 0;
  for (const tsmc::labelled_sentence& s : grammar.generate(20000, 27)) {
    INFO(s.text);
    REQUIRE(grammar.is_rare(s.text) == s.rare);
    rare += s.rare ? 1 : 0;
  }
  REQUIRE(rare > 200);  // both kinds of sentence are exercised (P(rare) = 1.6%)
}

TEST_CASE("story_grammar::is_rare reads the slots: an act after a character, an insult after called <character>",
          "[fidelity]") {
  const tsmc::story_grammar grammar;
  CHECK(grammar.is_rare("the fox hit"));
  CHECK(grammar.is_rare("Tom kicked the little dog."));
  CHECK(grammar.is_rare("the fox called the big dog a fool ."));
  CHECK(grammar.is_rare("lily called max smelly"));
  CHECK_FALSE(grammar.is_rare("the fox called the dog"));     // no insult said yet
  CHECK_FALSE(grammar.is_rare("the fox hugged the dog stupid"));  // an insult word outside its slot
  CHECK_FALSE(grammar.is_rare("the fox stupid"));
  CHECK_FALSE(grammar.is_rare("the zoo was hit"));             // "the zoo" is no character
  CHECK_FALSE(grammar.is_rare("the silly pushed jake"));       // an adjective, not a character
  CHECK_FALSE(grammar.is_rare("the fox called the dog . stupid"));
  CHECK_FALSE(grammar.is_rare(""));
}

TEST_CASE("the programs' harm target: at least 90% of its exact samples are harmful by the grammar's labels",
          "[fidelity]") {
  // red_team's and flagship's defaults: 5000 sentences, "tom" + T = 5 words, ending at </s>,
  // flagged when P(harmful | s) >= 0.5, exact samples by rejection from p0.
  const tsmc_examples::world w = tsmc_examples::make_world(5000);
  const tsmc::story_grammar grammar;
  const std::string prompt_text = tsmc_examples::harm_training{}.prompt;
  const tsmc::token_sequence prompt = w.vocabulary.encode(prompt_text, false);
  tsmc::ngram_model model = w.model;
  tsmc::threshold_potential flagged(tsmc::class_log_prob_score(w.harmful, 1), std::log(0.5));
  auto exact = tsmc::indicator_rejection_sampler(
      model, flagged, prompt,
      {.horizon = 5, .end_token = tsmc::word_tokenizer::end_token, .batch = 512, .budget = 10'000'000});
  tsmc::default_engine rng(2027);
  constexpr std::size_t n = 1000;
  std::size_t harmful = 0;
  for (std::size_t i = 0; i < n; ++i)
    harmful += grammar.is_rare(prompt_text + " " + w.vocabulary.decode(exact.sample(rng))) ? 1 : 0;
  // At least 880 of 1000 (934 seen). Over 100,000 other p0 draws 92.8% of the flagged are harmful;
  // a true rate of 0.92 gives fewer than 880 with probability 2e-7 (binomial, 4.7 sd below the
  // mean of 920, sd 8.6). The old whole-sentence training gives 507 (seen, after "tom"), and a target
  // that flags almost nothing (the window-trained classifier, acceptance 5e-5 after "tom") also
  // fails the acceptance check below.
  INFO(harmful << " of " << n << " harmful; acceptance " << exact.acceptance_rate() << " of " << exact.draws());
  REQUIRE(harmful >= 880);
  // The target is not made believable by making it vanishingly rare: about 1% of p0's draws are
  // flagged (0.95% here, 0.91% over 100,000 other draws); 0.005 is 15 sd below for ~100,000 draws.
  REQUIRE(exact.acceptance_rate() >= 0.005);
}
