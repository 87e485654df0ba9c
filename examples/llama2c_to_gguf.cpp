// llama2c_to_gguf: converts a llama2.c checkpoint (and its tokenizer.bin) to a GGUF file that
// tsmc::gguf::model (the example programs' --gguf) and llama.cpp read: architecture "llama",
// matrices in F32 (the default; the model then gives the llama2.c model's log-probs bit for bit),
// F16, BF16 or Q8_0, the tokenizer as a "llama" (SentencePiece) section.
//
//   ./build/dev/examples/llama2c_to_gguf --checkpoint stories15M.bin --tokenizer tokenizer.bin
//       --out stories15M.gguf [--type q8_0]      (one command line)
#include "program_support.hpp"

#include <tsmc/models/gguf.hpp>
#include <tsmc/models/gguf_llama2c.hpp>
#include <tsmc/models/gguf_model.hpp>

#include <chrono>
#include <cstdio>
#include <exception>
#include <map>
#include <stdexcept>
#include <string>

int main(int argc, char** argv) {
  std::string checkpoint, tokenizer, out, type = "f32";
  tsmc_examples::program p("llama2c_to_gguf", "llama2c_to_gguf: a llama2.c checkpoint (+ tokenizer.bin) as a GGUF file");
  p.input("--checkpoint", checkpoint, "the llama2.c checkpoint (.bin)")->required();
  p.input("--tokenizer", tokenizer, "its tokenizer.bin (optional: without it the file has no tokenizer)");
  p.output("--out", out, "the GGUF file to write (replaced atomically: a failed write leaves the old file)")->required();
  p.text("--type", type, "the matrices' type", {"f32", "f16", "bf16", "q8_0"});
  if (const auto status = p.parse(argc, argv)) return *status;
  const std::map<std::string, std::uint32_t> types{{"f32", 0}, {"f16", 1}, {"bf16", 30}, {"q8_0", 8}};
  return p.run([&] {
    const auto begin = std::chrono::steady_clock::now();
    try {
      tsmc::gguf::convert_llama2c(checkpoint, tokenizer, out, types.at(type));
    } catch (const std::exception& e) {  // name the options whose files did not convert
      throw std::runtime_error("--checkpoint " + tsmc_examples::quote_value(checkpoint) +
                               (tokenizer.empty() ? "" : " with --tokenizer " + tsmc_examples::quote_value(tokenizer)) +
                               " to --out " + tsmc_examples::quote_value(out) + ": " + e.what());
    }
    const tsmc::gguf::model m{std::filesystem::path(out)};  // read back: the file is a loadable model
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
    std::printf("wrote %s: %s, %zu tensors, %.1f MB of weights (%s), vocab %zu, dim %zu, %zu layers, in %.2f s\n",
                out.c_str(), m.architecture().c_str(), m.source()->tensors().size(),
                static_cast<double>(m.weight_bytes()) / 1e6, type.c_str(), m.vocab_size(), m.feature_dim(),
                m.transformer_config().n_layers, seconds);
    return 0;
  });
}
