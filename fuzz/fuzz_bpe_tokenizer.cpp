// libFuzzer target: byte-level BPE on arbitrary bytes (ill-formed UTF-8 included). A fixed small
// vocabulary (the 256 byte symbols, merges, a control and a user-defined token) encodes the input
// with each pre-tokenizer, with and without special tokens; the pre-tokenizer's words must cover
// the input, and decode(encode(text)) must be the text made well-formed UTF-8.
#include <tsmc/models/bpe_tokenizer.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

namespace {

const std::vector<tsmc::bpe_tokenizer>& tokenizers() {
  static const std::vector<tsmc::bpe_tokenizer> all = [] {
    std::vector<std::string> tokens;
    std::vector<tsmc::token_type> types;
    std::vector<std::string> merges;
    for (unsigned b = 0; b < 256; ++b) {
      tokens.push_back(tsmc::gpt2_bytes_to_unicode_text(std::string(1, static_cast<char>(b))));
      types.push_back(tsmc::token_type::normal);
    }
    const auto merge = [&](const std::string& a, const std::string& b) {
      merges.push_back(tsmc::gpt2_bytes_to_unicode_text(a) + " " + tsmc::gpt2_bytes_to_unicode_text(b));
      tokens.push_back(tsmc::gpt2_bytes_to_unicode_text(a + b));
      types.push_back(tsmc::token_type::normal);
    };
    merge(" ", "t");
    merge("h", "e");
    merge(" t", "he");
    merge("\xEF", "\xBF");
    merge("\xEF\xBF", "\xBD");
    merge("a", "a");
    merge("aa", "aa");
    tokens.push_back("<|end|>");
    types.push_back(tsmc::token_type::control);
    tokens.push_back("<u>");
    types.push_back(tsmc::token_type::user_defined);
    const auto eos = static_cast<tsmc::token>(tokens.size() - 2);
    std::vector<tsmc::bpe_tokenizer> out;
    for (const char* pre : {"gpt2", "llama-bpe", "qwen2"})
      out.emplace_back(tokens, types, merges, tsmc::bpe_options{.pre = pre, .eos = eos});
    return out;
  }();
  return all;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size < 4096 ? size : 4096);
  const std::string valid = tsmc::to_valid_utf8(text);
  if (tsmc::to_valid_utf8(valid) != valid) std::abort();  // well-formed text stays as it is
  for (const tsmc::bpe_tokenizer& t : tokenizers()) {
    std::string joined;
    for (const std::string_view w : tsmc::pretokenize(t.pre(), text)) {
      if (w.empty()) std::abort();
      joined += w;
    }
    if (joined != text) std::abort();
    if (t.decode(t.encode(text)) != valid) std::abort();
    (void)t.encode(text, {.parse_special = true});
  }
  return 0;
}
