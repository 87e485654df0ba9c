// expect: tsmc::make_token_byte_table: the tokenizer must expose its tokens' bytes
// A tokenizer with ids but no byte strings cannot carry a byte-level constraint.
#include <tsmc/constraints/token_bytes.hpp>

#include <cstddef>
#include <string>

struct ids_only_tokenizer {
  [[nodiscard]] std::size_t vocab_size() const { return 4; }
  [[nodiscard]] std::string decode(tsmc::token) const { return "x"; }
};

int main() { (void)tsmc::make_token_byte_table(ids_only_tokenizer{}); }
