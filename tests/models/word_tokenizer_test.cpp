// The word tokenizer: splitting, special ids, vocabulary order, encode/decode, bad input.
#include <catch2/catch.hpp>

#include <tsmc/core/error.hpp>
#include <tsmc/models/word_tokenizer.hpp>

#include <string>
#include <vector>

using namespace tsmc;

TEST_CASE("split_words: lower case, punctuation separate, apostrophes kept", "[world]") {
  REQUIRE(split_words("The Fox's hat, red!  (Big)\n") ==
          std::vector<std::string>{"the", "fox's", "hat", ",", "red", "!", "(", "big", ")"});
  REQUIRE(split_words("   ").empty());
}

TEST_CASE("word_tokenizer: special ids, frequency order, encode and decode", "[world]") {
  const std::vector<std::string> corpus{"the cat sat .", "the dog sat .", "a cat"};
  const word_tokenizer tok = word_tokenizer::from_corpus(corpus);
  REQUIRE(tok.word(0) == "<unk>");
  REQUIRE(tok.word(1) == "<s>");
  REQUIRE(tok.word(2) == "</s>");
  // Counts: . 2, cat 2, sat 2, the 2, a 1, dog 1 (ties alphabetical).
  REQUIRE(std::vector<std::string>(tok.words().begin() + 3, tok.words().end()) ==
          std::vector<std::string>{".", "cat", "sat", "the", "a", "dog"});
  REQUIRE(tok.vocab_size() == 9);
  const token_sequence ids = tok.encode("The cat ate .", true);
  REQUIRE(ids == token_sequence{6, 4, word_tokenizer::unknown_token, 3, word_tokenizer::end_token});
  REQUIRE(tok.decode(ids) == "the cat <unk> .");
  REQUIRE(tok.decode(ids, false) == "the cat <unk> . </s>");
  REQUIRE(word_tokenizer::from_corpus(corpus, 2).vocab_size() == 7);
  REQUIRE(word_tokenizer::from_corpus(corpus, 1, 2).vocab_size() == 5);
}

TEST_CASE("word_tokenizer: bad input", "[world]") {
  const std::vector<std::string> repeated{"a", "b", "a"};
  REQUIRE_THROWS_AS(word_tokenizer(repeated), tsmc::invalid_argument);
  const std::vector<std::string> spaced{"a b"};
  REQUIRE_THROWS_AS(word_tokenizer(spaced), tsmc::invalid_argument);
  const word_tokenizer tok;
  REQUIRE_THROWS_AS(tok.word(3), tsmc::invalid_argument);
  REQUIRE_THROWS_AS(tok.decode(token_sequence{5}), tsmc::invalid_argument);
  REQUIRE_THROWS_AS(word_tokenizer::from_corpus(std::vector<std::string>{}, 0), tsmc::invalid_argument);
}
