#pragma once
/// @file
/// @brief The kinds of vocabulary entries, numbered as GGUF's tokenizer.ggml.token_type stores them.

#include <cstdint>

namespace tsmc {

/// @brief What a vocabulary entry is (GGUF's tokenizer.ggml.token_type values, as llama.cpp
/// numbers them).
enum class token_type : std::int32_t {
  undefined = 0,     ///< no type given: read as normal
  normal = 1,        ///< an ordinary piece of text
  unknown = 2,       ///< the unknown token
  control = 3,       ///< a control token (BOS, EOS, <|eot_id|>, ...): no text
  user_defined = 4,  ///< a token added by hand, matched verbatim in text
  unused = 5,        ///< a reserved, unused entry
  byte = 6,          ///< a raw byte, written "<0xHH>"
};

/// @brief Whether v is one of token_type's values (0 to 6).
[[nodiscard]] constexpr bool is_token_type(std::int32_t v) noexcept { return v >= 0 && v <= 6; }

}  // namespace tsmc
