// libFuzzer target: a llama2.c tokenizer file; a loaded tokenizer encodes the input's own bytes
// as text and decodes the result.
#include "fuzz_support.hpp"

#include <tsmc/models/llama2c_tokenizer.hpp>

#include <cstddef>
#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto path = tsmc_fuzz::write_input(data, size, ".tok");
  tsmc_fuzz::expect_load_or_tsmc_error([&] {
    const tsmc::llama2c::tokenizer t(path);
    const std::string_view text(reinterpret_cast<const char*>(data), size < 256 ? size : 256);
    const tsmc::token_sequence tokens = t.encode(text, true, true);
    (void)t.decode(tokens);
  });
  return 0;
}
