// libFuzzer target: the ARPA reader; a loaded model writes itself out again.
#include "fuzz_support.hpp"

#include <tsmc/models/ngram.hpp>

#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  tsmc_fuzz::expect_load_or_tsmc_error([&] {
    std::istringstream in(std::string(reinterpret_cast<const char*>(data), size));
    const tsmc::ngram_model model = tsmc::ngram_model::read_arpa(in);
    std::ostringstream out;
    model.write_arpa(out);
  });
  return 0;
}
