// libFuzzer target: a GGUF file, parsed read into memory and memory-mapped; a parsed file's
// tensors are touched at their first and last byte (each must lie inside the file), and a file
// that loads as a Llama-family model runs one step on one particle (every weight it reads must
// lie inside the file, every shape agree with the metadata).
#include "fuzz_support.hpp"

#include <tsmc/models/gguf.hpp>
#include <tsmc/models/gguf_model.hpp>

#include <cstddef>
#include <cstdint>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto path = tsmc_fuzz::write_input(data, size, ".gguf");
  tsmc_fuzz::expect_load_or_tsmc_error([&] {
    const tsmc::gguf::file read(path, tsmc::gguf::load_mode::read);
    unsigned sink = 0;
    for (const tsmc::gguf::tensor_info& t : read.tensors())
      if (t.bytes > 0) sink += read.data(t)[0] + read.data(t)[t.bytes - 1];
    volatile unsigned keep = sink;
    (void)keep;
  });
  tsmc_fuzz::expect_load_or_tsmc_error([&] {
    auto mapped = std::make_shared<const tsmc::gguf::file>(path, tsmc::gguf::load_mode::map);
    // Small models only: a fuzzed header may describe a huge (valid) model.
    tsmc::gguf::model m(mapped, tsmc::gguf::model_options{.max_length = 4});
    if (m.vocab_size() * m.feature_dim() > (1u << 22)) return;
    const std::vector<tsmc::token> prompt{0};
    m.start(prompt, 1);
    tsmc::log_prob_matrix out(1, static_cast<Eigen::Index>(m.vocab_size()));
    m.log_probs(out);
  });
  return 0;
}
