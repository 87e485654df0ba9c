// libFuzzer target: a llama2.c checkpoint file, read into memory and memory-mapped; a loaded
// checkpoint's first and last weights are read (the whole layout must lie inside the file).
#include "fuzz_support.hpp"

#include <tsmc/models/llama2c_checkpoint.hpp>

#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto path = tsmc_fuzz::write_input(data, size, ".bin");
  tsmc_fuzz::expect_load_or_tsmc_error([&] {
    const tsmc::llama2c::checkpoint read(path, tsmc::llama2c::load_mode::read);
    const auto e = read.token_embedding();
    volatile float sink = e(0, 0) + e(e.rows() - 1, e.cols() - 1);
    (void)sink;
  });
  tsmc_fuzz::expect_load_or_tsmc_error([&] {
    const tsmc::llama2c::checkpoint mapped(path, tsmc::llama2c::load_mode::map);
    (void)mapped.configuration();
  });
  return 0;
}
