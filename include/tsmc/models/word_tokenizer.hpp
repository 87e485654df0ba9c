#pragma once
/// @file
/// @brief A word-level tokenizer: text is split into words and punctuation marks (lower-cased,
/// unless the vocabulary has cased words: see tsmc::word_case), and each word maps to a token id
/// of a vocabulary built from a corpus (or given as a word list, e.g. an ARPA file's unigrams).
///
/// Ids 0, 1 and 2 are always the special tokens `<unk>` (any word outside the vocabulary),
/// `<s>` (sentence start, only ever a context) and `</s>` (end of sentence, the end token of a
/// generation); the corpus's words follow. These are the names ARPA files use, so a vocabulary
/// read from a KenLM or SRILM model keeps them.

#include <tsmc/core/error.hpp>
#include <tsmc/core/types.hpp>

#include <algorithm>
#include <cctype>
#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace tsmc {

/// @brief How a word_tokenizer treats letter case in the text it encodes.
enum class word_case {
  automatic,  ///< keep the case when a vocabulary word has an upper-case ASCII letter, else lower-case
  lower,      ///< lower-case ASCII letters (a vocabulary of lower-cased text)
  keep,       ///< keep the text's case
};

/// @brief Splits text into words: ASCII letters are lower-cased (unless lower_case is false),
/// whitespace separates words, and each of the marks `. , ! ? ; : " ( )` is a word of its own.
/// Apostrophes and hyphens stay inside words ("don't", "well-known").
/// @param text any text
/// @param lower_case whether to lower-case ASCII letters
/// @return the words in order (no empty strings)
[[nodiscard]] inline std::vector<std::string> split_words(std::string_view text, bool lower_case = true) {
  std::vector<std::string> words;
  std::string current;
  const auto flush = [&] {
    if (!current.empty()) words.push_back(std::move(current));
    current.clear();
  };
  for (const char raw : text) {
    const auto c = static_cast<unsigned char>(raw);
    if (std::isspace(c)) {
      flush();
    } else if (std::string_view(".,!?;:\"()").find(raw) != std::string_view::npos) {
      flush();
      words.emplace_back(1, raw);
    } else {
      current.push_back(lower_case ? static_cast<char>(std::tolower(c)) : raw);
    }
  }
  flush();
  return words;
}

/// @brief A word vocabulary with encode and decode.
///
/// Token ids: 0 = `<unk>`, 1 = `<s>`, 2 = `</s>`, then the vocabulary's words. Encoding maps a
/// word outside the vocabulary to `<unk>` (find() and unknown_words() say which ones would be);
/// decoding joins words with single spaces. A vocabulary with cased words ("The", "Alice", as
/// a model trained on cased text has) keeps the case of the text it encodes (word_case).
template <class Lazy = void>
class basic_word_tokenizer {
 public:
  /// @brief The id of `<unk>`.
  static constexpr token unknown_token = 0;
  /// @brief The id of `<s>`.
  static constexpr token start_token = 1;
  /// @brief The id of `</s>`.
  static constexpr token end_token = 2;

  /// @brief A vocabulary of the three special tokens only.
  basic_word_tokenizer() { add_specials(); }

  /// @brief A vocabulary of the given words, in the given order after the special tokens.
  ///
  /// Special names in the list are skipped (they already have ids 0-2).
  /// @param words the words (distinct, non-empty, without whitespace)
  /// @param letters how encode treats case: automatic (the default) keeps it when a word has an
  /// upper-case ASCII letter
  /// @throw tsmc::invalid_argument if a word is empty, contains whitespace or repeats
  explicit basic_word_tokenizer(std::span<const std::string> words, word_case letters = word_case::automatic) {
    add_specials();
    bool cased = false;
    for (const std::string& w : words) {
      if (w == "<unk>" || w == "<s>" || w == "</s>") continue;
      add_word(w, "word_tokenizer::word_tokenizer");
      cased = cased || std::any_of(w.begin(), w.end(), [](char c) { return c >= 'A' && c <= 'Z'; });
    }
    keeps_case_ = letters == word_case::keep || (letters == word_case::automatic && cased);
  }

  /// @brief Builds a vocabulary from sentences: every word that occurs at least min_count times,
  /// most frequent first (ties alphabetically), so equal corpora give equal ids.
  /// @param sentences the corpus, one sentence per string (split with split_words)
  /// @param min_count the least number of occurrences a word needs (>= 1)
  /// @param max_words the most words kept besides the special tokens (0: no limit)
  /// @return the tokenizer
  /// @throw tsmc::invalid_argument if min_count is 0
  [[nodiscard]] static basic_word_tokenizer from_corpus(std::span<const std::string> sentences, std::size_t min_count = 1,
                                                  std::size_t max_words = 0) {
    check_positive("word_tokenizer::from_corpus", "min_count", min_count);
    std::unordered_map<std::string, std::size_t> counts;
    for (const std::string& s : sentences)
      for (std::string& w : split_words(s)) ++counts[std::move(w)];
    std::vector<std::pair<std::string, std::size_t>> ranked;
    for (auto& [w, c] : counts)
      if (c >= min_count && w != "<unk>" && w != "<s>" && w != "</s>") ranked.emplace_back(w, c);
    std::sort(ranked.begin(), ranked.end(),
              [](const auto& a, const auto& b) { return a.second != b.second ? a.second > b.second : a.first < b.first; });
    if (max_words > 0 && ranked.size() > max_words) ranked.resize(max_words);
    std::vector<std::string> words;
    words.reserve(ranked.size());
    for (auto& r : ranked) words.push_back(std::move(r.first));
    return basic_word_tokenizer(std::span<const std::string>(words));
  }

  /// @brief V, the number of tokens (special tokens included).
  [[nodiscard]] std::size_t vocab_size() const noexcept { return words_.size(); }

  /// @brief The id of a word, or `<unk>`'s id when it is not in the vocabulary.
  [[nodiscard]] token id(std::string_view word) const {
    const auto it = ids_.find(std::string(word));
    return it == ids_.end() ? unknown_token : it->second;
  }

  /// @brief The id of a word, or nothing when it is not in the vocabulary (where id() gives
  /// `<unk>`'s id).
  [[nodiscard]] std::optional<token> find(std::string_view word) const {
    const auto it = ids_.find(std::string(word));
    if (it == ids_.end()) return std::nullopt;
    return it->second;
  }

  /// @brief The words of a text (as encode splits it) that are not in the vocabulary, in order,
  /// each once: what encode would read as `<unk>`.
  [[nodiscard]] std::vector<std::string> unknown_words(std::string_view text) const {
    std::vector<std::string> unknown;
    for (std::string& w : split_words(text, !keeps_case_))
      if (!contains(w) && std::find(unknown.begin(), unknown.end(), w) == unknown.end()) unknown.push_back(std::move(w));
    return unknown;
  }

  /// @brief Whether encode keeps the case of the text (see word_case).
  [[nodiscard]] bool keeps_case() const noexcept { return keeps_case_; }

  /// @brief Whether a word is in the vocabulary.
  [[nodiscard]] bool contains(std::string_view word) const { return ids_.count(std::string(word)) > 0; }

  /// @brief The word of a token id.
  /// @throw tsmc::invalid_argument if id is outside [0, V)
  [[nodiscard]] const std::string& word(token id) const {
    check_argument(id >= 0 && static_cast<std::size_t>(id) < words_.size(), "word_tokenizer::word", "id",
                   "must be in [0, " + std::to_string(words_.size()) + ")", id);
    return words_[static_cast<std::size_t>(id)];
  }

  /// @brief All words, indexed by id.
  [[nodiscard]] std::span<const std::string> words() const noexcept { return words_; }

  /// @brief Encodes text: split_words (lower-casing unless keeps_case()), then each word's id
  /// (`<unk>` for unknown words).
  /// @param text the text
  /// @param append_end whether to append `</s>`
  /// @return the token ids
  [[nodiscard]] token_sequence encode(std::string_view text, bool append_end = false) const {
    token_sequence out;
    for (const std::string& w : split_words(text, !keeps_case_)) out.push_back(id(w));
    if (append_end) out.push_back(end_token);
    return out;
  }

  /// @brief Decodes token ids into words joined by single spaces.
  /// @param tokens ids in [0, V)
  /// @param stop_at_end whether to stop at the first `</s>` (not written)
  /// @return the text
  /// @throw tsmc::invalid_argument if a token is outside [0, V)
  [[nodiscard]] std::string decode(std::span<const token> tokens, bool stop_at_end = true) const {
    check_tokens(tokens, words_.size(), "word_tokenizer::decode", "tokens");
    std::string out;
    for (const token t : tokens) {
      if (stop_at_end && t == end_token) break;
      if (!out.empty()) out.push_back(' ');
      out += words_[static_cast<std::size_t>(t)];
    }
    return out;
  }

  /// @brief Equal vocabularies (same words with the same ids).
  [[nodiscard]] friend bool operator==(const basic_word_tokenizer& a, const basic_word_tokenizer& b) { return a.words_ == b.words_; }

 private:
  void add_specials() {
    words_ = {"<unk>", "<s>", "</s>"};
    ids_ = {{"<unk>", unknown_token}, {"<s>", start_token}, {"</s>", end_token}};
  }

  void add_word(const std::string& w, const char* function) {
    check_argument(!w.empty(), function, "words", "must not contain an empty word", "\"\"");
    check_argument(std::none_of(w.begin(), w.end(), [](char c) { return std::isspace(static_cast<unsigned char>(c)); }),
                   function, "words", "must not contain whitespace", "\"" + w + "\"");
    const auto [it, inserted] = ids_.emplace(w, static_cast<token>(words_.size()));
    check_argument(inserted, function, "words", "must be distinct", "\"" + w + "\" twice");
    words_.push_back(w);
  }

  std::vector<std::string> words_;
  std::unordered_map<std::string, token> ids_;
  bool keeps_case_ = false;
};

/// @brief The library's word_tokenizer: basic_word_tokenizer is a template only so that its member
/// functions are compiled in the translation units that use them (docs/architecture.md, "Compile weight").
using word_tokenizer = basic_word_tokenizer<>;

}  // namespace tsmc
