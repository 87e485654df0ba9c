#pragma once
/// @file
/// @brief Byte-level BPE (GGUF's tokenizer.ggml.model = "gpt2"; GPT-2, Llama 3, Qwen2, SmolLM2):
/// the GPT-2 byte-to-unicode map, merges by rank, a pre-tokenizer named by tokenizer.ggml.pre,
/// control and user-defined tokens, BOS / EOS / EOT.
///
/// Encoding: the text is made well-formed UTF-8 (each maximal ill-formed subpart becomes U+FFFD,
/// as a peer's UTF-8 decoder does before it sees the text); user-defined tokens, and control
/// tokens when asked, are cut out where they occur (leftmost, then longest); the rest is split by
/// the pre-tokenizer into words; each word's bytes become symbols (the token of each byte's
/// byte-to-unicode code point) and the adjacent pair with the lowest merge rank (the leftmost on
/// ties) is merged until none has a rank. With the Llama 3 pre-tokenizer a word that is itself a
/// token is that token without merging (Hugging Face's ignore_merges, as llama.cpp does).
/// Decoding concatenates token_bytes().

#include <tsmc/core/error.hpp>
#include <tsmc/core/types.hpp>
#include <tsmc/models/pretokenizer.hpp>
#include <tsmc/models/token_type.hpp>
#include <tsmc/models/unicode.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <queue>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace tsmc {

namespace detail {

/// GPT-2's bytes_to_unicode: the printable bytes ('!'..'~', U+00A1..U+00AC, U+00AE..U+00FF) stand
/// for themselves; the other 68 bytes, in increasing order, for U+0100, U+0101, ...
[[nodiscard]] constexpr std::array<char32_t, 256> make_gpt2_byte_to_unicode() noexcept {
  std::array<char32_t, 256> map{};
  char32_t next = 256;
  for (unsigned b = 0; b < 256; ++b) {
    const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    map[b] = printable ? static_cast<char32_t>(b) : next++;
  }
  return map;
}

inline constexpr std::array<char32_t, 256> gpt2_byte_to_unicode_table = make_gpt2_byte_to_unicode();

}  // namespace detail

/// @brief GPT-2's byte-to-unicode map: the code point that byte b is written as in a byte-level
/// BPE vocabulary (' ' is U+0120 'Ġ', '\\n' is U+010A 'Ċ').
[[nodiscard]] constexpr char32_t gpt2_byte_to_unicode(unsigned char b) noexcept {
  return detail::gpt2_byte_to_unicode_table[b];
}

/// @brief The inverse of gpt2_byte_to_unicode: the byte that code point cp writes, if any.
[[nodiscard]] constexpr std::optional<unsigned char> gpt2_unicode_to_byte(char32_t cp) noexcept {
  if (cp < 0x21 || cp > 0x143) return std::nullopt;
  if (cp < 0x100) {
    if ((cp >= 0x7F && cp <= 0xA0) || cp == 0xAD) return std::nullopt;
    return static_cast<unsigned char>(cp);
  }
  for (unsigned b = 0; b < 256; ++b)
    if (detail::gpt2_byte_to_unicode_table[b] == cp) return static_cast<unsigned char>(b);
  return std::nullopt;
}

/// @brief Bytes written in a byte-level vocabulary's alphabet ("a b" -> "aĠb"), as UTF-8.
[[nodiscard]] inline std::string gpt2_bytes_to_unicode_text(std::string_view bytes) {
  std::string out;
  out.reserve(2 * bytes.size());
  for (const char c : bytes) append_utf8(out, gpt2_byte_to_unicode(static_cast<unsigned char>(c)));
  return out;
}

/// @brief The bytes a byte-level vocabulary string stands for ("aĠb" -> "a b"), or nullopt if
/// a code point of it is outside the map's image (or it is ill-formed UTF-8).
[[nodiscard]] inline std::optional<std::string> gpt2_unicode_text_to_bytes(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t at = 0, length = 0; at < text.size(); at += length) {
    const char32_t cp = decode_utf8(text, at, length);
    const std::optional<unsigned char> b = gpt2_unicode_to_byte(cp);
    if (!b || (cp == replacement_character && text.substr(at, length) != "\xEF\xBF\xBD")) return std::nullopt;
    out += static_cast<char>(*b);
  }
  return out;
}

/// @brief What a byte-level BPE tokenizer is built with besides its vocabulary and merges (the
/// GGUF keys in brackets).
struct bpe_options {
  /// The pre-tokenizer's name (tokenizer.ggml.pre): see pretokenizer_from_name.
  std::string pre = "gpt2";
  /// The beginning-of-sequence token (tokenizer.ggml.bos_token_id), if any.
  std::optional<token> bos = std::nullopt;
  /// The end-of-sequence token (tokenizer.ggml.eos_token_id), if any.
  std::optional<token> eos = std::nullopt;
  /// The end-of-turn token (tokenizer.ggml.eot_token_id), if any.
  std::optional<token> eot = std::nullopt;
  /// Whether encode() prepends BOS by default (tokenizer.ggml.add_bos_token).
  bool add_bos = false;
};

/// @brief Per-call choices of bpe_tokenizer::encode.
struct bpe_encode_options {
  /// Prepend BOS; nullopt: the tokenizer's bpe_options::add_bos.
  std::optional<bool> add_bos = std::nullopt;
  /// Cut control tokens' texts ("<|endoftext|>") out of the text as those tokens (as Hugging Face
  /// tokenizers do with special added tokens, and llama.cpp with parse_special); false: they are
  /// ordinary text. User-defined tokens are always cut out.
  bool parse_special = false;
};

/// @brief A byte-level BPE tokenizer built from plain vectors (GGUF's tokenizer.ggml.tokens,
/// token_type, merges and pre).
class bpe_tokenizer {
 public:
  /// @brief Builds the tokenizer.
  /// @param tokens each token's vocabulary string by id: byte-level text ("Ġthe") for normal
  /// tokens, the literal text for control and user-defined ones ("<|endoftext|>")
  /// @param types each token's type by id, or empty for all normal
  /// @param merges the merges by rank, each "a b" (two tokens separated by one space; a space at
  /// position 0 belongs to a); the first of duplicated merges counts
  /// @param options the pre-tokenizer's name, BOS / EOS / EOT and add_bos
  /// @throw tsmc::invalid_argument if tokens is empty or too large for a token id, types has
  /// another size, a merge is not two tokens whose concatenation is a token, the pre-tokenizer
  /// is unknown, or BOS / EOS / EOT is outside the vocabulary
  bpe_tokenizer(std::vector<std::string> tokens, std::vector<token_type> types, std::span<const std::string> merges,
                bpe_options options = {})
      : tokens_(std::move(tokens)),
        types_(std::move(types)),
        options_(std::move(options)),
        pretokenizer_(find_pretokenizer(options_.pre).value_or(pretokenizer::gpt2)) {
    constexpr const char* function = "bpe_tokenizer::bpe_tokenizer";
    check_argument(find_pretokenizer(options_.pre).has_value(), function, "options.pre",
                   "must be one of " + std::string(pretokenizer_names), "\"" + options_.pre + "\"");
    check_positive(function, "tokens.size()", tokens_.size());
    check_argument(tokens_.size() <= static_cast<std::size_t>(std::numeric_limits<token>::max()), function,
                   "tokens.size()", "must fit a token id", tokens_.size());
    if (types_.empty()) types_.assign(tokens_.size(), token_type::normal);
    check_size(function, "types.size()", types_.size(), "tokens.size()", tokens_.size());
    for (std::size_t i = 0; i < types_.size(); ++i)
      check_argument(is_token_type(static_cast<std::int32_t>(types_[i])), function,
                     "types[" + std::to_string(i) + "]", "must be a token_type (0 to 6)",
                     static_cast<std::int32_t>(types_[i]));
    for (const auto& [name, id] : {std::pair{"options.bos", options_.bos}, std::pair{"options.eos", options_.eos},
                                   std::pair{"options.eot", options_.eot}})
      if (id)
        check_argument(*id >= 0 && static_cast<std::size_t>(*id) < tokens_.size(), function, name,
                       "must be in [0, " + std::to_string(tokens_.size()) + ")", *id);
    ignore_merges_ = pretokenizer_ == pretokenizer::llama3;

    lookup_.reserve(tokens_.size());
    bytes_.resize(tokens_.size());
    for (std::size_t i = tokens_.size(); i-- > 0;) lookup_[tokens_[i]] = static_cast<token>(i);  // first id wins
    for (std::size_t i = 0; i < tokens_.size(); ++i) {
      const std::string& text = tokens_[i];
      switch (types_[i]) {
        case token_type::control: break;  // no text
        case token_type::user_defined:
          bytes_[i] = text;
          if (!text.empty()) {
            specials_.push_back(static_cast<token>(i));
            has_user_defined_ = true;
          }
          break;
        default: {
          // A normal token's string is byte-level text; one that is not (a hand-added token typed
          // normal) stands for its own UTF-8, as Hugging Face's ByteLevel decoder leaves it.
          const std::optional<unsigned char> raw = types_[i] == token_type::byte ? byte_of(text) : std::nullopt;
          if (raw) {
            bytes_[i] = std::string(1, static_cast<char>(*raw));
          } else {
            std::optional<std::string> b = gpt2_unicode_text_to_bytes(text);
            bytes_[i] = b ? std::move(*b) : text;
          }
        }
      }
      if (types_[i] == token_type::control && !text.empty()) specials_.push_back(static_cast<token>(i));
    }
    for (unsigned b = 0; b < 256; ++b) {
      std::string text;
      append_utf8(text, gpt2_byte_to_unicode(static_cast<unsigned char>(b)));
      const auto it = lookup_.find(text);
      byte_token_[b] = it == lookup_.end() ? -1 : it->second;
    }
    merges_.reserve(merges.size());
    for (std::size_t rank = 0; rank < merges.size(); ++rank) {
      const std::string& merge = merges[rank];
      const std::size_t space = merge.size() < 2 ? std::string::npos : merge.find(' ', 1);
      const auto part = [&](std::string_view text) -> token {
        const auto it = lookup_.find(std::string(text));
        if (it == lookup_.end())
          throw_invalid_argument(function, "merges[" + std::to_string(rank) + "]",
                                 "must be two tokens separated by a space whose concatenation is a token",
                                 "\"" + merge + "\" (\"" + std::string(text) + "\" is not a token)");
        return it->second;
      };
      if (space == std::string::npos)
        throw_invalid_argument(function, "merges[" + std::to_string(rank) + "]",
                               "must be two tokens separated by a space whose concatenation is a token",
                               "\"" + merge + "\"");
      const token left = part(std::string_view(merge).substr(0, space));
      const token right = part(std::string_view(merge).substr(space + 1));
      const token merged = part(merge.substr(0, space) + merge.substr(space + 1));
      merges_.try_emplace(pair_key(left, right), merge_rule{static_cast<std::uint32_t>(rank), merged});
    }
    // Leftmost-longest matching of special texts: the bytes that start one, and longest first.
    for (const token t : specials_) special_first_[static_cast<unsigned char>(tokens_[static_cast<std::size_t>(t)][0])] = true;
    std::sort(specials_.begin(), specials_.end(), [&](token a, token b) {
      return tokens_[static_cast<std::size_t>(a)].size() > tokens_[static_cast<std::size_t>(b)].size();
    });
  }

  /// @brief The number of tokens V.
  [[nodiscard]] std::size_t vocab_size() const noexcept { return tokens_.size(); }
  /// @brief The pre-tokenizer.
  [[nodiscard]] pretokenizer pre() const noexcept { return pretokenizer_; }
  /// @brief Whether a word that is a token skips merging (the Llama 3 pre-tokenizer's vocabularies).
  [[nodiscard]] bool ignore_merges() const noexcept { return ignore_merges_; }
  /// @brief The number of distinct merges.
  [[nodiscard]] std::size_t merge_count() const noexcept { return merges_.size(); }
  /// @brief BOS, if the vocabulary has one.
  [[nodiscard]] std::optional<token> bos() const noexcept { return options_.bos; }
  /// @brief EOS, if the vocabulary has one.
  [[nodiscard]] std::optional<token> eos() const noexcept { return options_.eos; }
  /// @brief EOT (end of turn), if the vocabulary has one.
  [[nodiscard]] std::optional<token> eot() const noexcept { return options_.eot; }
  /// @brief Whether encode() prepends BOS by default.
  [[nodiscard]] bool add_bos() const noexcept { return options_.add_bos; }
  /// @brief The tokens that end a text: EOS, then EOT when it is another token (the sampler's
  /// default end tokens for a GGUF model).
  [[nodiscard]] token_sequence end_tokens() const {
    token_sequence out;
    if (options_.eos) out.push_back(*options_.eos);
    if (options_.eot && options_.eot != options_.eos) out.push_back(*options_.eot);
    return out;
  }

  /// @brief Token t's vocabulary string ("Ġthe", "<|endoftext|>").
  /// @throw tsmc::invalid_argument if t is outside [0, V)
  [[nodiscard]] const std::string& token_text(token t) const {
    check_token(t, "bpe_tokenizer::token_text");
    return tokens_[static_cast<std::size_t>(t)];
  }
  /// @brief The bytes token t adds to decoded text: the byte-level string mapped back to bytes
  /// ("Ġthe" -> " the"), a user-defined token's text, a byte token's byte, nothing for a control
  /// token. decode(tokens) is the concatenation of these.
  /// @throw tsmc::invalid_argument if t is outside [0, V)
  [[nodiscard]] const std::string& token_bytes(token t) const {
    check_token(t, "bpe_tokenizer::token_bytes");
    return bytes_[static_cast<std::size_t>(t)];
  }
  /// @brief Token t's type.
  /// @throw tsmc::invalid_argument if t is outside [0, V)
  [[nodiscard]] token_type type(token t) const {
    check_token(t, "bpe_tokenizer::type");
    return types_[static_cast<std::size_t>(t)];
  }
  /// @brief The token whose vocabulary string is `text`, if any (the lowest id when several are).
  [[nodiscard]] std::optional<token> find(std::string_view text) const {
    const auto it = lookup_.find(std::string(text));
    if (it == lookup_.end()) return std::nullopt;
    return it->second;
  }

  /// @brief Encodes text (any bytes; see the file's description).
  /// @param text the text
  /// @param options BOS and special-token parsing
  /// @return the token ids
  /// @throw tsmc::invalid_argument if BOS is asked for and the vocabulary has none, or a byte of
  /// the text has no token in the vocabulary
  [[nodiscard]] token_sequence encode(std::string_view text, bpe_encode_options options = {}) const {
    constexpr const char* function = "bpe_tokenizer::encode";
    token_sequence out;
    out.reserve(text.size() / 2 + 2);
    if (options.add_bos.value_or(options_.add_bos)) {
      check_argument(options_.bos.has_value(), function, "options.add_bos",
                     "needs a BOS token (bpe_options::bos)", "true");
      out.push_back(*options_.bos);
    }
    const std::string valid = to_valid_utf8(text);
    const std::string_view all = valid;
    if (options.parse_special ? specials_.empty() : !has_user_defined_) {
      encode_text(all, out, function);
      return out;
    }
    std::size_t start = 0;  // the start of the text not yet encoded
    for (std::size_t at = 0; at < all.size();) {
      const std::optional<token> special = special_at(all, at, options.parse_special);
      if (!special) {
        ++at;
        continue;
      }
      encode_text(all.substr(start, at - start), out, function);
      out.push_back(*special);
      at += tokens_[static_cast<std::size_t>(*special)].size();
      start = at;
    }
    encode_text(all.substr(start), out, function);
    return out;
  }

  /// @brief The text of a token sequence: the concatenation of token_bytes().
  /// @throw tsmc::invalid_argument if a token is outside [0, V)
  [[nodiscard]] std::string decode(std::span<const token> tokens) const {
    std::string out;
    for (const token t : tokens) out += token_bytes(t);
    return out;
  }

  /// @brief Checks that a model's vocabulary is this tokenizer's.
  /// @param model_vocab_size the model's V
  /// @param function the caller's name for the message
  /// @throw tsmc::invalid_argument if the sizes differ
  void check_vocabulary(std::size_t model_vocab_size, std::string_view function = "bpe_tokenizer") const {
    check_size(function, "tokenizer vocab_size()", tokens_.size(), "the model's vocab_size()", model_vocab_size);
  }

 private:
  struct merge_rule {
    std::uint32_t rank;
    token merged;
  };

  [[nodiscard]] static std::uint64_t pair_key(token a, token b) noexcept {
    return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(a)) << 32) | static_cast<std::uint32_t>(b);
  }

  void check_token(token t, const char* function) const {
    check_argument(t >= 0 && static_cast<std::size_t>(t) < tokens_.size(), function, "token",
                   "must be in [0, " + std::to_string(tokens_.size()) + ")", t);
  }

  // "<0xHH>" -> the byte HH.
  [[nodiscard]] static std::optional<unsigned char> byte_of(std::string_view p) {
    if (p.size() != 6 || p.substr(0, 3) != "<0x" || p[5] != '>') return std::nullopt;
    const auto hex = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      return -1;
    };
    const int hi = hex(p[3]), lo = hex(p[4]);
    if (hi < 0 || lo < 0) return std::nullopt;
    return static_cast<unsigned char>(hi * 16 + lo);
  }

  // The special token whose text starts at text[at] (the longest), if any.
  [[nodiscard]] std::optional<token> special_at(std::string_view text, std::size_t at, bool parse_special) const {
    if (!special_first_[static_cast<unsigned char>(text[at])]) return std::nullopt;
    for (const token t : specials_) {
      const std::string& s = tokens_[static_cast<std::size_t>(t)];
      if (types_[static_cast<std::size_t>(t)] == token_type::control && !parse_special) continue;
      if (text.substr(at, s.size()) == s) return t;
    }
    return std::nullopt;
  }

  // Pre-tokenizes text and appends each word's tokens.
  void encode_text(std::string_view text, token_sequence& out, const char* function) const {
    if (text.empty()) return;
    for (const std::string_view word : pretokenize(pretokenizer_, text)) encode_word(word, out, function);
  }

  // BPE on one word: lowest rank first, leftmost on ties (a heap of candidate pairs, stale
  // entries skipped when popped).
  void encode_word(std::string_view word, token_sequence& out, const char* function) const {
    if (ignore_merges_) {
      if (const auto it = lookup_.find(gpt2_bytes_to_unicode_text(word)); it != lookup_.end()) {
        out.push_back(it->second);
        return;
      }
    }
    struct symbol {
      token id;
      std::ptrdiff_t prev, next;  // -1: none
    };
    std::vector<symbol> symbols(word.size());
    for (std::size_t i = 0; i < word.size(); ++i) {
      const auto b = static_cast<unsigned char>(word[i]);
      check_argument(byte_token_[b] >= 0, function, "text",
                     "needs the token of each byte (byte-level BPE), but the vocabulary has none for byte",
                     static_cast<int>(b));
      symbols[i] = {byte_token_[b], static_cast<std::ptrdiff_t>(i) - 1,
                    i + 1 < word.size() ? static_cast<std::ptrdiff_t>(i) + 1 : -1};
    }
    struct candidate {
      std::uint32_t rank;
      std::ptrdiff_t left;
      token left_id, right_id;
      bool operator>(const candidate& o) const noexcept {
        return rank != o.rank ? rank > o.rank : left > o.left;
      }
    };
    std::priority_queue<candidate, std::vector<candidate>, std::greater<>> heap;
    const auto push = [&](std::ptrdiff_t left) {
      if (left < 0 || symbols[static_cast<std::size_t>(left)].next < 0) return;
      const symbol& a = symbols[static_cast<std::size_t>(left)];
      const symbol& b = symbols[static_cast<std::size_t>(a.next)];
      if (const auto it = merges_.find(pair_key(a.id, b.id)); it != merges_.end())
        heap.push({it->second.rank, left, a.id, b.id});
    };
    for (std::size_t i = 0; i + 1 < symbols.size(); ++i) push(static_cast<std::ptrdiff_t>(i));
    while (!heap.empty()) {
      const candidate c = heap.top();
      heap.pop();
      symbol& a = symbols[static_cast<std::size_t>(c.left)];
      if (a.id != c.left_id || a.next < 0 || symbols[static_cast<std::size_t>(a.next)].id != c.right_id) continue;
      symbol& b = symbols[static_cast<std::size_t>(a.next)];
      a.id = merges_.at(pair_key(c.left_id, c.right_id)).merged;
      a.next = b.next;
      if (b.next >= 0) symbols[static_cast<std::size_t>(b.next)].prev = c.left;
      b.id = -1;  // dead
      push(a.prev);
      push(c.left);
    }
    for (std::ptrdiff_t i = 0; i >= 0; i = symbols[static_cast<std::size_t>(i)].next)
      out.push_back(symbols[static_cast<std::size_t>(i)].id);
  }

  std::vector<std::string> tokens_;
  std::vector<token_type> types_;
  bpe_options options_;
  pretokenizer pretokenizer_;
  bool ignore_merges_ = false;
  bool has_user_defined_ = false;
  std::vector<std::string> bytes_;
  std::unordered_map<std::string, token> lookup_;
  std::unordered_map<std::uint64_t, merge_rule> merges_;
  std::array<token, 256> byte_token_{};
  std::vector<token> specials_;  // control and user-defined tokens with text, longest first
  std::array<bool, 256> special_first_{};  // the first bytes of their texts
};

}  // namespace tsmc
