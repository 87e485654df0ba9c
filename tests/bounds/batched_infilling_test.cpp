// tsmc::batched_infilling_potential: phi(s) = p0(o | prompt, s) computed in one batched pass of a
// LanguageModel per sequence length. On the n-gram model it equals tsmc::infilling_potential
// (single queries) for a shuffled batch of sequences of mixed lengths; on a random llama2.c
// checkpoint it equals a reference that runs the model one sequence at a time (K = 1), to float
// rounding. Used by examples/infilling on llama2.c checkpoints.
#include <catch2/catch.hpp>

#include "../models/llama2c_test_support.hpp"

#include <tsmc/bounds/batched_infilling.hpp>
#include <tsmc/bounds/exact_samplers.hpp>
#include <tsmc/core/random.hpp>
#include <tsmc/corpus/story_grammar.hpp>
#include <tsmc/models/llama2c.hpp>
#include <tsmc/models/ngram.hpp>
#include <tsmc/models/word_tokenizer.hpp>

#include <cmath>
#include <string>
#include <vector>

using namespace tsmc;

namespace {

/// Sequences of lengths 0..4 in a scrambled order (so that groups by length are not contiguous).
std::vector<token_sequence> mixed_lengths(std::size_t vocab, std::size_t count, std::uint64_t seed) {
  default_engine rng(seed);
  std::vector<token_sequence> out(count);
  for (std::size_t k = 0; k < count; ++k) {
    const std::size_t length = (k * 7 + 3) % 5;
    for (std::size_t t = 0; t < length; ++t)
      out[k].push_back(static_cast<token>(3 + static_cast<std::size_t>(uniform01(rng) * static_cast<double>(vocab - 3))));
  }
  return out;
}

}  // namespace

TEST_CASE("batched infilling potential equals the single-query one on the n-gram model", "[bounds][examples]") {
  const story_grammar grammar;
  const word_tokenizer vocabulary(std::span<const std::string>(grammar.words()));
  std::vector<token_sequence> sentences;
  for (const labelled_sentence& s : grammar.generate(1500, 5)) sentences.push_back(vocabulary.encode(s.text));
  const ngram_model single = ngram_model::train_kneser_ney(vocabulary, sentences, {.order = 3});
  ngram_model batched_model = single;
  const token_sequence prompt = vocabulary.encode("the");
  const token_sequence observation = vocabulary.encode("the cat sat");
  infilling_potential<ngram_model> reference(single, prompt, observation);
  batched_infilling_potential<ngram_model> batched(batched_model, prompt, observation);

  const std::vector<token_sequence> sequences = mixed_lengths(vocabulary.vocab_size(), 23, 9);
  std::vector<double> expected(sequences.size()), got(sequences.size());
  reference.log_potential(sequences, expected);
  batched.log_potential(sequences, got);
  for (std::size_t k = 0; k < sequences.size(); ++k) {
    INFO("sequence " << k << " of length " << sequences[k].size());
    REQUIRE(std::isfinite(expected[k]));
    REQUIRE(got[k] == Approx(expected[k]).epsilon(1e-13).margin(1e-13));
  }
  // A one-token observation: no append after the prompt and sequence.
  const token_sequence one = vocabulary.encode("dog");
  infilling_potential<ngram_model> reference1(single, prompt, one);
  batched_infilling_potential<ngram_model> batched1(batched_model, prompt, one);
  reference1.log_potential(sequences, expected);
  batched1.log_potential(sequences, got);
  for (std::size_t k = 0; k < sequences.size(); ++k) REQUIRE(got[k] == Approx(expected[k]).epsilon(1e-13));

  std::vector<double> wrong(sequences.size() + 1);
  REQUIRE_THROWS_AS(batched.log_potential(sequences, wrong), tsmc::invalid_argument);
  REQUIRE_THROWS_AS(batched_infilling_potential<ngram_model>(batched_model, prompt, token_sequence{}),
                    tsmc::invalid_argument);
  REQUIRE_THROWS_AS(batched_infilling_potential<ngram_model>(batched_model, prompt, token_sequence{100000}),
                    tsmc::invalid_argument);
}

TEST_CASE("batched infilling potential on a llama2.c model equals one sequence at a time", "[bounds][examples]") {
  const llama2c_test::temp_dir dir;
  const tsmc::llama2c::config c = llama2c_test::tiny_shared();
  tsmc::llama2c::make_random_checkpoint(dir.file("m.bin"), c, 17);
  tsmc::llama2c::model sampler_model(dir.file("m.bin"));
  tsmc::llama2c::model query(sampler_model.weights());  // shares the weights
  const token_sequence prompt{1, 5};
  const token_sequence observation{7, 11, 4};
  batched_infilling_potential<tsmc::llama2c::model> batched(query, prompt, observation);

  const std::vector<token_sequence> sequences = mixed_lengths(sampler_model.vocab_size(), 13, 21);
  std::vector<double> got(sequences.size());
  batched.log_potential(sequences, got);
  const auto V = static_cast<Eigen::Index>(sampler_model.vocab_size());
  log_prob_matrix row(1, V);
  for (std::size_t k = 0; k < sequences.size(); ++k) {
    sampler_model.start(prompt, 1);
    for (const token t : sequences[k]) sampler_model.append(std::span<const token>(&t, 1));
    double expected = 0.0;
    for (const token o : observation) {
      sampler_model.log_probs(row);
      expected += row(0, o);
      sampler_model.append(std::span<const token>(&o, 1));
    }
    INFO("sequence " << k << " of length " << sequences[k].size());
    REQUIRE(got[k] == Approx(expected).epsilon(1e-5).margin(1e-5));
  }
  // Too long for the checkpoint's seq_len: the model says so.
  const std::vector<token_sequence> too_long{token_sequence(static_cast<std::size_t>(c.seq_len), 3)};
  std::vector<double> one(1);
  REQUIRE_THROWS(batched.log_potential(too_long, one));
}
