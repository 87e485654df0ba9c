#pragma once
/// @file
/// @brief Shared by the example programs (flagship, red_team, sentiment, infilling): the built-in
/// world (a story-grammar corpus, its word tokenizer, a Kneser-Ney trigram model and two
/// bag-of-words classifiers), and small helpers for the programs' tables and outputs.
#include <tsmc/tsmc.hpp>

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

namespace tsmc_examples {

/// @brief The built-in world: corpus, vocabulary, p0 and the classifiers trained on the corpus.
struct world {
  tsmc::word_tokenizer vocabulary;                  ///< words of the corpus
  std::vector<tsmc::token_sequence> sentences;      ///< the encoded corpus
  tsmc::ngram_model model;                          ///< p0: Kneser-Ney trigram model
  tsmc::bag_of_words_classifier sentiment;          ///< 3 classes (tsmc::sentiment)
  tsmc::bag_of_words_classifier harmful;            ///< 2 classes: 1 = the rare "harmful" attribute
};

/// @brief Builds the world from `corpus_size` grammar sentences (seeded, deterministic).
inline world make_world(std::size_t corpus_size, std::uint64_t seed = 1) {
  const tsmc::story_grammar grammar;
  const std::vector<tsmc::labelled_sentence> corpus = grammar.generate(corpus_size, seed);
  std::vector<std::string> texts;
  for (const tsmc::labelled_sentence& s : corpus) texts.push_back(s.text);
  tsmc::word_tokenizer vocabulary = tsmc::word_tokenizer::from_corpus(texts);
  std::vector<tsmc::token_sequence> sentences;
  std::vector<std::size_t> sentiment, harmful;
  for (const tsmc::labelled_sentence& s : corpus) {
    sentences.push_back(vocabulary.encode(s.text));
    sentiment.push_back(static_cast<std::size_t>(s.label));
    harmful.push_back(s.rare ? 1 : 0);
  }
  tsmc::ngram_model model = tsmc::ngram_model::train_kneser_ney(vocabulary, sentences, {.order = 3});
  const std::size_t V = vocabulary.vocab_size();
  const tsmc::bag_of_words_options options{.ignored = {tsmc::word_tokenizer::end_token}};
  auto sentiment_classifier = tsmc::bag_of_words_classifier::train(sentences, sentiment, 3, V, options);
  auto harm_classifier = tsmc::bag_of_words_classifier::train(sentences, harmful, 2, V, options);
  return world{std::move(vocabulary), std::move(sentences), std::move(model), std::move(sentiment_classifier),
               std::move(harm_classifier)};
}

/// @brief A number for JSON: null when not finite.
inline std::string json_number(double x) {
  if (!std::isfinite(x)) return "null";
  char b[64];
  std::snprintf(b, sizeof b, "%.10g", x);
  return b;
}

/// @brief A number for CSV: inf / -inf / nan spelled out.
inline std::string csv_number(double x) {
  char b[64];
  std::snprintf(b, sizeof b, "%.10g", x);
  return b;
}

/// @brief Escapes a string for JSON.
inline std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

}  // namespace tsmc_examples
