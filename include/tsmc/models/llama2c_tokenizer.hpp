#pragma once
/// @file
/// @brief The llama2.c tokenizer (tokenizer.bin): sentencepiece-style BPE by merge scores, with
/// byte fallback, encode and decode; and a writer for tokenizer files.
///
/// File layout (little-endian): int32 max_token_length, then per token: float32 score, int32
/// len, len bytes (not NUL-terminated). The vocabulary size is not stored: a tokenizer reads
/// entries to the end of the file, or exactly the count it is told. Token 1 is BOS, 2 is EOS,
/// and "<0xHH>" tokens are raw bytes, byte b being token b + 3.

#include <tsmc/core/error.hpp>
#include <tsmc/core/types.hpp>
#include <tsmc/models/llama2c_checkpoint.hpp>
#include <tsmc/models/token_type.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace tsmc::llama2c {

/// @brief The llama2.c tokenizer: a vocabulary of byte strings with merge scores.
template <class Lazy = void>
class basic_tokenizer {
 public:
  /// @brief The beginning-of-sequence token.
  static constexpr token bos = 1;
  /// @brief The end-of-sequence token.
  static constexpr token eos = 2;
  /// @brief Byte b is token b + byte_offset (byte fallback).
  static constexpr token byte_offset = 3;

  /// @brief Reads a tokenizer file.
  /// @param path tokenizer.bin
  /// @param vocab_size the number of entries to read (the model's V; then the file must end
  /// exactly after them), or std::nullopt to read entries to the end of the file
  /// @throw tsmc::runtime_error naming the file and the field on an unreadable, truncated or
  /// inconsistent file, or one whose entry count differs from vocab_size
  explicit basic_tokenizer(const std::filesystem::path& path, std::optional<std::size_t> vocab_size = std::nullopt) {
    constexpr const char* function = "llama2c::tokenizer::tokenizer";
    detail::require_little_endian(function);
    const std::string file = detail::quoted(path);
    std::ifstream in(path, std::ios::binary);
    if (!in) throw_runtime_error(function, file, "must be a readable file", "cannot open");
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::size_t at = 0;
    auto read_int = [&](const std::string& what) {
      if (bytes.size() - at < 4)
        throw_runtime_error(function, file + " " + what, "is truncated: 4 bytes needed",
                            std::to_string(bytes.size() - at) + " bytes left");
      const std::int32_t v = detail::read_le_int32(reinterpret_cast<const unsigned char*>(bytes.data() + at));
      at += 4;
      return v;
    };
    const std::int32_t max_len = read_int("max_token_length");
    if (max_len <= 0) throw_runtime_error(function, file + " max_token_length", "must be positive", max_len);
    max_token_length_ = static_cast<std::size_t>(max_len);
    // The number of whole entries in the file from `from` on (for a message about the count).
    const auto count_entries = [&](std::size_t from) {
      std::size_t n = 0;
      while (bytes.size() - from >= 8) {
        std::int32_t len = detail::read_le_int32(reinterpret_cast<const unsigned char*>(bytes.data() + from + 4));
        if (len < 0 || static_cast<std::size_t>(len) > bytes.size() - from - 8) break;
        from += 8 + static_cast<std::size_t>(len);
        ++n;
      }
      return n;
    };
    while (vocab_size ? pieces_.size() < *vocab_size : at < bytes.size()) {
      if (vocab_size && at == bytes.size())
        throw_runtime_error(function, file + " vocabulary size",
                            "must match the model's: the file has " + std::to_string(pieces_.size()) +
                                " tokens, the model needs " + std::to_string(*vocab_size) +
                                " (a tokenizer of another model?)",
                            pieces_.size());
      const std::string entry = "token " + std::to_string(pieces_.size());
      float score = 0.0f;
      const std::int32_t raw_score = read_int(entry + " score");
      std::memcpy(&score, &raw_score, sizeof score);
      if (!std::isfinite(score)) throw_runtime_error(function, file + " " + entry + " score", "must be finite", score);
      const std::int32_t len = read_int(entry + " len");
      if (len < 0 || len > max_len)
        throw_runtime_error(function, file + " " + entry + " len",
                            "must be in [0, max_token_length = " + std::to_string(max_len) + "]", len);
      if (bytes.size() - at < static_cast<std::size_t>(len))
        throw_runtime_error(function, file + " " + entry + " bytes",
                            "is truncated: " + std::to_string(len) + " bytes needed",
                            std::to_string(bytes.size() - at) + " bytes left");
      pieces_.emplace_back(bytes.data() + at, static_cast<std::size_t>(len));
      scores_.push_back(score);
      at += static_cast<std::size_t>(len);
    }
    if (vocab_size && at != bytes.size()) {
      const std::size_t more = count_entries(at);
      throw_runtime_error(function, file + " vocabulary size",
                          more > 0 ? "must match the model's: the file has " + std::to_string(pieces_.size() + more) +
                                         " tokens or more, the model needs " + std::to_string(*vocab_size) +
                                         " (a tokenizer of another model?)"
                                   : "must equal the expected " + std::to_string(*vocab_size) +
                                         " entries (the file has more data after them)",
                          std::to_string(bytes.size() - at) + " bytes left");
    }
    if (pieces_.empty()) throw_runtime_error(function, file + " vocabulary size", "must be positive", 0);
    if (pieces_.size() > static_cast<std::size_t>(std::numeric_limits<token>::max()))
      throw_runtime_error(function, file + " vocabulary size", "must fit a token id", pieces_.size());
    index();
  }

  /// @brief Builds a tokenizer from vectors: the pieces' bytes and merge scores by id, as a file
  /// holds them (max_token_length is the longest piece, at least 1, as write_tokenizer writes it).
  /// @param pieces the tokens' bytes, by id
  /// @param scores the merge scores, by id
  /// @throw tsmc::invalid_argument if pieces is empty or too large for a token id, the sizes
  /// differ, or a score is not finite
  basic_tokenizer(std::vector<std::string> pieces, std::vector<float> scores)
      : pieces_(std::move(pieces)), scores_(std::move(scores)) {
    constexpr const char* function = "llama2c::tokenizer::tokenizer";
    check_positive(function, "pieces.size()", pieces_.size());
    check_size(function, "scores.size()", scores_.size(), "pieces.size()", pieces_.size());
    check_argument(pieces_.size() <= static_cast<std::size_t>(std::numeric_limits<token>::max()), function,
                   "pieces.size()", "must fit a token id", pieces_.size());
    for (std::size_t i = 0; i < scores_.size(); ++i)
      check_finite(function, "scores[" + std::to_string(i) + "]", scores_[i]);
    max_token_length_ = 1;
    for (const std::string& p : pieces_) max_token_length_ = std::max(max_token_length_, p.size());
    index();
  }

  /// @brief Builds a tokenizer from a SentencePiece BPE vocabulary (GGUF's tokenizer.ggml.model
  /// "llama": tokenizer.ggml.tokens, scores and token_type), as llama2.c's export.py converts one:
  /// each "\u2581" (SentencePiece's space) in a piece becomes ' '.
  ///
  /// The tokenizer's fixed ids must be the vocabulary's: BOS 1, EOS 2, byte b at b + 3.
  /// @param tokens the pieces, by id
  /// @param scores the merge scores, by id
  /// @param types the token types, by id, or empty (then unchecked)
  /// @param bos_id the vocabulary's BOS (tokenizer.ggml.bos_token_id)
  /// @param eos_id the vocabulary's EOS (tokenizer.ggml.eos_token_id)
  /// @throw tsmc::invalid_argument as the vector constructor does, or if types has another size,
  /// bos_id is not 1, eos_id is not 2, or a byte-typed token is not "<0xHH>" at id HH + 3
  [[nodiscard]] static basic_tokenizer from_sentencepiece(std::span<const std::string> tokens, std::span<const float> scores,
                                                    std::span<const token_type> types = {}, token bos_id = bos,
                                                    token eos_id = eos) {
    constexpr const char* function = "llama2c::tokenizer::from_sentencepiece";
    check_argument(bos_id == bos, function, "bos_id", "must be 1 (llama2.c's BOS)", bos_id);
    check_argument(eos_id == eos, function, "eos_id", "must be 2 (llama2.c's EOS)", eos_id);
    if (!types.empty()) {
      check_size(function, "types.size()", types.size(), "tokens.size()", tokens.size());
      for (std::size_t i = 0; i < types.size(); ++i) {
        if (types[i] != token_type::byte) continue;
        const std::optional<unsigned char> b = byte_of(tokens[i]);
        check_argument(b && i == static_cast<std::size_t>(*b) + byte_offset, function,
                       "tokens[" + std::to_string(i) + "]",
                       "must be \"<0xHH>\" at id HH + 3 (a byte-typed token)", "\"" + tokens[i] + "\"");
      }
    }
    std::vector<std::string> pieces;
    pieces.reserve(tokens.size());
    constexpr std::string_view sentencepiece_space = "\xE2\x96\x81";  // U+2581
    for (const std::string& t : tokens) {
      std::string p;
      p.reserve(t.size());
      for (std::size_t at = 0; at < t.size();) {
        if (std::string_view(t).substr(at, 3) == sentencepiece_space) {
          p += ' ';
          at += 3;
        } else {
          p += t[at++];
        }
      }
      pieces.push_back(std::move(p));
    }
    return basic_tokenizer(std::move(pieces), std::vector<float>(scores.begin(), scores.end()));
  }

  /// @brief The number of tokens V.
  [[nodiscard]] std::size_t vocab_size() const noexcept { return pieces_.size(); }
  /// @brief The file's max_token_length.
  [[nodiscard]] std::size_t max_token_length() const noexcept { return max_token_length_; }
  /// @brief The bytes of token t.
  /// @throw tsmc::invalid_argument if t is outside [0, V)
  [[nodiscard]] const std::string& piece(token t) const {
    check_token(t, "llama2c::tokenizer::piece");
    return pieces_[static_cast<std::size_t>(t)];
  }
  /// @brief The merge score of token t.
  /// @throw tsmc::invalid_argument if t is outside [0, V)
  [[nodiscard]] float score(token t) const {
    check_token(t, "llama2c::tokenizer::score");
    return scores_[static_cast<std::size_t>(t)];
  }
  /// @brief The token whose bytes are `text`, if any (the lowest id when several are).
  [[nodiscard]] std::optional<token> find(std::string_view text) const {
    const auto it = lookup_.find(std::string(text));
    if (it == lookup_.end()) return std::nullopt;
    return it->second;
  }

  /// @brief Encodes UTF-8 text by the llama2.c procedure: optional BOS; for non-empty text the
  /// token of " " (the dummy prefix space); each UTF-8 code point's token, or its bytes' tokens
  /// (b + 3) when the code point is absent; then, repeatedly, the adjacent pair whose
  /// concatenation is a token with the highest score (the leftmost on ties) merges into it,
  /// until no pair merges; optional EOS.
  /// @param text the text (bytes; a code point is a lead byte and up to 3 continuation bytes)
  /// @param add_bos prepend BOS (1)
  /// @param add_eos append EOS (2)
  /// @return the token ids
  /// @throw tsmc::invalid_argument if byte fallback needs a byte token beyond the vocabulary
  [[nodiscard]] token_sequence encode(std::string_view text, bool add_bos = true, bool add_eos = false) const {
    constexpr const char* function = "llama2c::tokenizer::encode";
    token_sequence out;
    out.reserve(text.size() + 3);
    if (add_bos) out.push_back(bos);
    token_sequence ids;
    ids.reserve(text.size() + 1);
    if (!text.empty()) push_piece(" ", ids, function);
    for (std::size_t i = 0; i < text.size();) {
      std::size_t n = 1;  // the code point: a lead byte and the continuation bytes 10xxxxxx after it (4 bytes at most)
      while (i + n < text.size() && n < 4 && (static_cast<unsigned char>(text[i + n]) & 0xC0) == 0x80) ++n;
      push_piece(text.substr(i, n), ids, function);
      i += n;
    }
    std::string joined;
    while (true) {
      float best_score = -std::numeric_limits<float>::infinity();
      std::size_t best_at = ids.size();
      token best_id = -1;
      for (std::size_t i = 0; i + 1 < ids.size(); ++i) {
        joined = pieces_[static_cast<std::size_t>(ids[i])];
        joined += pieces_[static_cast<std::size_t>(ids[i + 1])];
        const auto it = lookup_.find(joined);
        if (it != lookup_.end() && scores_[static_cast<std::size_t>(it->second)] > best_score) {
          best_score = scores_[static_cast<std::size_t>(it->second)];
          best_at = i;
          best_id = it->second;
        }
      }
      if (best_at == ids.size()) break;
      ids[best_at] = best_id;
      ids.erase(ids.begin() + static_cast<std::ptrdiff_t>(best_at) + 1);
    }
    out.insert(out.end(), ids.begin(), ids.end());
    if (add_eos) out.push_back(eos);
    return out;
  }

  /// @brief The text of token t following token prev: a byte token "<0xHH>" gives its byte,
  /// a piece after BOS loses one leading space (the dummy prefix), BOS and EOS give nothing.
  /// @param prev the previous token (BOS for the first token of a text)
  /// @param t the token
  /// @return its bytes
  /// @throw tsmc::invalid_argument if t is outside [0, V)
  [[nodiscard]] std::string decode(token prev, token t) const {
    check_token(t, "llama2c::tokenizer::decode");
    if (t == bos || t == eos) return {};
    std::string_view p = pieces_[static_cast<std::size_t>(t)];
    if (prev == bos && !p.empty() && p.front() == ' ') p.remove_prefix(1);
    if (const std::optional<unsigned char> b = byte_of(p)) return std::string(1, static_cast<char>(*b));
    return std::string(p);
  }

  /// @brief The text of a token sequence: the concatenation of decode(prev, t) over it.
  /// @param tokens the tokens (e.g. encode's output, or a prompt followed by a sample)
  /// @param prev the token before the first one (BOS by default: a text's start)
  /// @return the text
  /// @throw tsmc::invalid_argument if a token is outside [0, V)
  [[nodiscard]] std::string decode(std::span<const token> tokens, token prev = bos) const {
    std::string out;
    for (const token t : tokens) {
      out += decode(prev, t);
      prev = t;
    }
    return out;
  }

  /// @brief Checks that a model's vocabulary is this tokenizer's (the point where they meet).
  /// @param model_vocab_size the model's V
  /// @param function the caller's name for the message
  /// @throw tsmc::invalid_argument if the sizes differ
  void check_vocabulary(std::size_t model_vocab_size, std::string_view function = "llama2c::tokenizer") const {
    check_size(function, "tokenizer vocab_size()", pieces_.size(), "the model's vocab_size()", model_vocab_size);
  }

 private:
  void check_token(token t, const char* function) const {
    check_argument(t >= 0 && static_cast<std::size_t>(t) < pieces_.size(), function, "token",
                   "must be in [0, " + std::to_string(pieces_.size()) + ")", t);
  }

  // "<0xHH>" -> the byte HH.
  [[nodiscard]] static std::optional<unsigned char> byte_of(std::string_view p) {
    if (p.size() != 6 || p.substr(0, 3) != "<0x" || p[5] != '>') return std::nullopt;
    auto hex = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      return -1;
    };
    const int hi = hex(p[3]), lo = hex(p[4]);
    if (hi < 0 || lo < 0) return std::nullopt;
    return static_cast<unsigned char>(hi * 16 + lo);
  }

  // The token of `piece`, else its bytes' tokens.
  void push_piece(std::string_view piece, token_sequence& ids, const char* function) const {
    if (const auto it = lookup_.find(std::string(piece)); it != lookup_.end()) {
      ids.push_back(it->second);
      return;
    }
    for (const char c : piece) {
      const token id = static_cast<token>(static_cast<unsigned char>(c)) + byte_offset;
      check_argument(static_cast<std::size_t>(id) < pieces_.size(), function, "text",
                     "needs byte token " + std::to_string(id) + " (byte fallback) within the vocabulary of " +
                         std::to_string(pieces_.size()),
                     static_cast<int>(static_cast<unsigned char>(c)));
      ids.push_back(id);
    }
  }

  void index() {
    for (std::size_t i = pieces_.size(); i-- > 0;) lookup_[pieces_[i]] = static_cast<token>(i);  // first id wins
  }

  std::size_t max_token_length_ = 0;
  std::vector<std::string> pieces_;
  std::vector<float> scores_;
  std::unordered_map<std::string, token> lookup_;
};

/// @brief The library's tokenizer: basic_tokenizer is a template only so that its member
/// functions are compiled in the translation units that use them (docs/architecture.md, "Compile weight").
using tokenizer = basic_tokenizer<>;

/// @brief Writes a tokenizer file (max_token_length is the longest piece, at least 1).
/// @param path the file to create or overwrite
/// @param pieces the tokens' bytes, by id
/// @param scores the merge scores, by id
/// @throw tsmc::invalid_argument if the sizes differ or a piece is too long for an int32;
/// tsmc::runtime_error if the file cannot be written
inline void write_tokenizer(const std::filesystem::path& path, std::span<const std::string> pieces,
                            std::span<const float> scores) {
  constexpr const char* function = "llama2c::write_tokenizer";
  detail::require_little_endian(function);
  check_size(function, "scores.size()", scores.size(), "pieces.size()", pieces.size());
  std::size_t longest = 1;
  for (const std::string& p : pieces) longest = std::max(longest, p.size());
  check_argument(longest <= static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max()), function, "pieces",
                 "must be shorter than 2^31 bytes", longest);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  const auto max_len = static_cast<std::int32_t>(longest);
  out.write(reinterpret_cast<const char*>(&max_len), sizeof max_len);
  for (std::size_t i = 0; i < pieces.size(); ++i) {
    const auto len = static_cast<std::int32_t>(pieces[i].size());
    out.write(reinterpret_cast<const char*>(&scores[i]), sizeof(float));
    out.write(reinterpret_cast<const char*>(&len), sizeof len);
    out.write(pieces[i].data(), static_cast<std::streamsize>(pieces[i].size()));
  }
  out.close();
  if (!out) throw_runtime_error(function, detail::quoted(path), "could not be written", "a write error");
}

}  // namespace tsmc::llama2c
