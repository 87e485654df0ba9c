// write_example_models: model files for trying the example programs' --arpa and --llama2c options
// without downloading anything (the ctest entries example.<program>.arpa and .llama2c use them).
//
//   builtin.arpa              the built-in world's Kneser-Ney trigram (make_world(--corpus), as the
//                             programs build it), written as an ARPA file
//   tiny.bin, tiny_tokenizer.bin
//                             a random-weight llama2.c checkpoint (dim 32, 2 layers) and a BPE
//                             tokenizer whose pieces are the built-in grammar's words: specials,
//                             the 256 byte tokens, the words' characters, and " " + every prefix
//                             of every word with score = its length, so that encode() merges each
//                             word into one token " word"
//   tiny_gpt2.gguf            the same shape as a GGUF file with a byte-level BPE ("gpt2")
//                             tokenizer: the 256 byte symbols, merges that make " word" one token
//                             for every grammar word, "<|endoftext|>" as EOS and "<|eot|>" as
//                             EOT (the programs end a sequence at either)
//   with --stories15m-shape, also stories15M_shape.bin and tokenizer_32000.bin: random weights in
//                             the shape of Karpathy's stories15M.bin (dim 288, hidden 768, 6 layers,
//                             6 heads, vocab 32000, seq_len 256) and a 32000-token tokenizer (the
//                             grammar's pieces, then filler pieces), which cost what the real model
//                             costs per step: for timing the programs with --llama2c
//
// The random checkpoints generate noise; they exercise the code paths and give the run times.
//
//   ./build/dev/examples/write_example_models --out models
//   ./build/dev/examples/flagship --arpa models/builtin.arpa
//   ./build/dev/examples/red_team --llama2c models/tiny.bin --tokenizer models/tiny_tokenizer.bin --updates 10
//   ./build/dev/examples/write_example_models --out models --stories15m-shape
#include "example_world.hpp"
#include "program_support.hpp"

#include <tsmc/models/bpe_tokenizer.hpp>
#include <tsmc/models/gguf.hpp>
#include <tsmc/models/gguf_llama2c.hpp>
#include <tsmc/models/gguf_model.hpp>
#include <tsmc/models/llama2c_checkpoint.hpp>
#include <tsmc/models/llama2c_tokenizer.hpp>
#include <tsmc/all.hpp>

#include <CLI/CLI.hpp>

#include <cstdio>
#include <exception>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

namespace {

/// The grammar's tokenizer pieces and scores, padded with filler pieces up to `vocab` (0: no padding).
void grammar_pieces(std::size_t vocab, std::vector<std::string>& pieces, std::vector<float>& scores) {
  pieces = {"<unk>", "\n<s>\n", "\n</s>\n"};
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    pieces.emplace_back(name);
  }
  std::vector<std::string> words = tsmc::story_grammar{}.words();
  words.emplace_back(".");
  std::set<std::string> chars{" "}, prefixes;
  for (const std::string& w : words) {
    for (const char c : w) chars.insert(std::string(1, c));
    for (std::size_t n = 1; n <= w.size(); ++n) {
      std::string p(1, ' ');  // appended, not " " + string: GCC 12 warns (-Wrestrict) on that form
      p += w.substr(0, n);
      prefixes.insert(p);
    }
  }
  for (const std::string& c : chars) pieces.push_back(c);
  for (const std::string& p : prefixes)
    if (p.size() > 1 && chars.count(p) == 0) pieces.push_back(p);
  scores.assign(pieces.size(), 0.0f);
  for (std::size_t i = 3 + 256; i < pieces.size(); ++i) scores[i] = static_cast<float>(pieces[i].size());
  for (std::size_t i = pieces.size(); i < vocab; ++i) {
    char name[16];
    std::snprintf(name, sizeof name, "<f%05zu>", i);
    pieces.emplace_back(name);
    scores.push_back(-1.0f);
  }
}

/// A byte-level BPE vocabulary (GGUF "gpt2") for the grammar: the 256 byte symbols, then for
/// every word w the merges (" " + w[0..n)) + w[n], so that " w" is one token, then
/// "<|endoftext|>" (control: EOS) and "<|eot|>" (control: EOT; both end a sequence).
void grammar_bpe(std::vector<std::string>& tokens, std::vector<tsmc::token_type>& types, std::vector<std::string>& merges) {
  tokens.clear();
  types.clear();
  merges.clear();
  for (unsigned b = 0; b < 256; ++b) {
    tokens.push_back(tsmc::gpt2_bytes_to_unicode_text(std::string(1, static_cast<char>(b))));
    types.push_back(tsmc::token_type::normal);
  }
  std::set<std::string> made;
  std::vector<std::string> words = tsmc::story_grammar{}.words();
  words.emplace_back(".");
  for (const std::string& w : words) {
    std::string left(1, ' ');
    for (const char c : w) {
      std::string merged = left;
      merged += c;
      if (made.insert(merged).second) {
        merges.push_back(tsmc::gpt2_bytes_to_unicode_text(left) + " " +
                         tsmc::gpt2_bytes_to_unicode_text(std::string(1, c)));
        tokens.push_back(tsmc::gpt2_bytes_to_unicode_text(merged));
        types.push_back(tsmc::token_type::normal);
      }
      left = merged;
    }
  }
  tokens.emplace_back("<|endoftext|>");
  types.push_back(tsmc::token_type::control);
  tokens.emplace_back("<|eot|>");
  types.push_back(tsmc::token_type::control);
}

}  // namespace

int main(int argc, char** argv) {
  std::string out = "example_models";
  std::size_t corpus = 5000;
  bool stories_shape = false;
  std::uint64_t seed = 1;
  tsmc_examples::program p("write_example_models",
                           "write_example_models: an ARPA export of the built-in trigram and random-weight llama2.c "
                           "checkpoints with grammar tokenizers, for the example programs' --arpa and --llama2c "
                           "options");
  p.text("--out", out, "the directory to write into (created; its parent must exist)");
  p.count("--corpus", corpus, tsmc_examples::limits::corpus_min, tsmc_examples::limits::corpus_max,
          "sentences of the built-in corpus of the exported trigram (the programs' --corpus for a byte-identical "
          "run)");
  p.app().add_flag("--stories15m-shape", stories_shape,
                   "also write stories15M_shape.bin (random weights, dim 288, 6 layers, 6 heads, vocab 32000, "
                   "seq_len 256: about 60 MB) and tokenizer_32000.bin");
  p.seed("--seed", seed, "the random weights' seed");
  p.rule([&] { return tsmc_examples::output_directory_problem("--out", out); });
  if (const auto status = p.parse(argc, argv)) return *status;
  return p.run([&] {
    const std::filesystem::path dir(out);
    std::filesystem::create_directories(dir);
    tsmc_examples::make_world(corpus).model.save_arpa((dir / "builtin.arpa").string());
    std::printf("wrote %s (the built-in trigram, %zu sentences)\n", (dir / "builtin.arpa").string().c_str(), corpus);

    std::vector<std::string> pieces;
    std::vector<float> scores;
    grammar_pieces(0, pieces, scores);
    tsmc::llama2c::write_tokenizer(dir / "tiny_tokenizer.bin", pieces, scores);
    const tsmc::llama2c::config tiny{.dim = 32, .hidden_dim = 64, .n_layers = 2, .n_heads = 4, .n_kv_heads = 2,
                                     .vocab_size = static_cast<std::int32_t>(pieces.size()), .seq_len = 64};
    tsmc::llama2c::make_random_checkpoint(dir / "tiny.bin", tiny, seed);
    std::printf("wrote %s and %s (random weights, dim 32, 2 layers, vocab %zu, seq_len 64)\n",
                (dir / "tiny.bin").string().c_str(), (dir / "tiny_tokenizer.bin").string().c_str(), pieces.size());

    // The same shape as a GGUF file with a byte-level BPE ("gpt2") tokenizer section.
    {
      std::vector<std::string> tokens, merges;
      std::vector<tsmc::token_type> types;
      grammar_bpe(tokens, types, merges);
      tsmc::llama2c::config shape = tiny;
      shape.vocab_size = static_cast<std::int32_t>(tokens.size());
      tsmc::gguf::contents file = tsmc::gguf::random_model(shape, seed);
      std::erase_if(file.metadata, [](const auto& kv) { return kv.first.rfind("tokenizer.", 0) == 0; });
      const auto eos = static_cast<tsmc::token>(tokens.size() - 2), eot = static_cast<tsmc::token>(tokens.size() - 1);
      const std::size_t vocab = tokens.size();
      tsmc::gguf::add_gpt2_tokenizer(std::move(tokens), types, std::move(merges),
                                     {.pre = "gpt2", .eos = eos, .eot = eot, .add_bos = false}, file.metadata);
      tsmc::gguf::write_file(dir / "tiny_gpt2.gguf", file);
      std::printf("wrote %s (random weights, dim 32, 2 layers, vocab %zu, a gpt2 byte-level BPE tokenizer)\n",
                  (dir / "tiny_gpt2.gguf").string().c_str(), vocab);
    }

    if (stories_shape) {
      grammar_pieces(32000, pieces, scores);
      tsmc::llama2c::write_tokenizer(dir / "tokenizer_32000.bin", pieces, scores);
      const tsmc::llama2c::config shape{.dim = 288, .hidden_dim = 768, .n_layers = 6, .n_heads = 6, .n_kv_heads = 6,
                                        .vocab_size = 32000, .seq_len = 256};
      tsmc::llama2c::make_random_checkpoint(dir / "stories15M_shape.bin", shape, seed);
      std::printf("wrote %s and %s (random weights in the shape of stories15M.bin: dim 288, 6 layers, 6 heads, "
                  "vocab 32000, seq_len 256)\n",
                  (dir / "stories15M_shape.bin").string().c_str(), (dir / "tokenizer_32000.bin").string().c_str());
    }
    return 0;
  });
}
