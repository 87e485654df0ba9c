// llama2c_story: twisted SMC on a llama2.c checkpoint. Draws K continuations of a prompt from the
// model conditioned on a potential that rewards mentioning a word (phi = exp(bonus x the number
// of times the word's token appears: the last token of " word"), prints log Zhat and the
// heaviest stories.
//
//   ./build/dev/examples/llama2c_story stories15M.bin tokenizer.bin "Once upon a time" dog 64 48
//
// Arguments: checkpoint, tokenizer, prompt, word, particles K, horizon T (all optional after the
// first two). With no arguments it writes a tiny random checkpoint and a byte-level tokenizer to
// the temporary directory and runs on those (the ctest run; the text is then noise).
#include <tsmc/tsmc.hpp>
#include <tsmc/models/llama2c.hpp>
#include <tsmc/models/llama2c_tokenizer.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <numeric>
#include <string>
#include <vector>

namespace {

/// log phi(s) = bonus x (the number of times `target` occurs in the generated tokens).
struct mention_reward {
  tsmc::token target;
  double bonus;
  void log_potential(std::span<const tsmc::token_sequence> sequences, std::span<double> out) const {
    for (std::size_t k = 0; k < sequences.size(); ++k)
      out[k] = bonus * static_cast<double>(std::count(sequences[k].begin(), sequences[k].end(), target));
  }
};

/// A tiny random model and a byte-level tokenizer (specials, 256 byte tokens, " ").
void write_demo_files(const std::filesystem::path& model, const std::filesystem::path& tokenizer) {
  const tsmc::llama2c::config c{.dim = 32, .hidden_dim = 64, .n_layers = 2, .n_heads = 4, .n_kv_heads = 2,
                                .vocab_size = 260, .seq_len = 64};
  tsmc::llama2c::make_random_checkpoint(model, c, 1);
  std::vector<std::string> pieces{"<unk>", "\n<s>\n", "\n</s>\n"};
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    pieces.emplace_back(name);
  }
  pieces.emplace_back(" ");
  tsmc::llama2c::write_tokenizer(tokenizer, pieces, std::vector<float>(pieces.size(), 0.0f));
}

}  // namespace

int main(int argc, char** argv) {
  std::filesystem::path model_path, tokenizer_path, demo_dir;
  if (argc >= 3) {
    model_path = argv[1];
    tokenizer_path = argv[2];
  } else {
    demo_dir = std::filesystem::temp_directory_path() / "tsmc_llama2c_story_demo";
    std::filesystem::create_directories(demo_dir);
    model_path = demo_dir / "model.bin";
    tokenizer_path = demo_dir / "tokenizer.bin";
    write_demo_files(model_path, tokenizer_path);
  }
  const std::string prompt_text = argc >= 4 ? argv[3] : "Once upon a time";
  const std::string word = argc >= 5 ? argv[4] : "a";
  const std::size_t particles = argc >= 6 ? std::stoul(argv[5]) : 16;
  const std::size_t horizon = argc >= 7 ? std::stoul(argv[6]) : 24;

  tsmc::llama2c::model model(model_path);  // memory-mapped, validated against the file size
  const tsmc::llama2c::tokenizer tok(tokenizer_path, model.vocab_size());  // vocabularies must match
  const tsmc::token_sequence prompt = tok.encode(prompt_text, /*add_bos=*/true);
  const tsmc::token target = tok.encode(word, false).back();  // the word's last token (with its space)
  mention_reward phi{target, 1.0};
  tsmc::no_twist twist;

  // The TinyStories models end a story by emitting BOS (stories are delimited by BOS in training,
  // and llama2.c's own generation loop stops there), so BOS is the end token.
  tsmc::twisted_smc smc(model, twist, phi,
                        tsmc::smc_options{.particles = particles, .horizon = horizon,
                                          .proposal = tsmc::proposal_type::base, .end_token = tsmc::llama2c::tokenizer::bos},
                        tsmc::systematic{}, tsmc::ess_below(0.5));
  tsmc::default_engine rng(42);
  const tsmc::smc_result r = smc.run(prompt, rng);

  std::printf("model %s (dim %d, %d layers, V %zu, seq_len %zu), K = %zu, T = %zu\n", model_path.string().c_str(),
              model.configuration().dim, model.configuration().n_layers, model.vocab_size(), model.max_length(),
              particles, horizon);
  std::printf("log Zhat = %.4f, final ESS = %.2f, %zu slots copied by reorder\n", r.log_z, r.ess.back(),
              model.copied_slots());
  std::vector<std::size_t> order(r.sequences.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::sort(order.begin(), order.end(),
            [&](std::size_t a, std::size_t b) { return r.normalized_log_weights[a] > r.normalized_log_weights[b]; });
  for (std::size_t i = 0; i < std::min<std::size_t>(3, order.size()); ++i) {
    const std::size_t k = order[i];
    std::printf("--- weight %.3f\n%s%s\n", std::exp(r.normalized_log_weights[k]), tok.decode(prompt).c_str(),
                tok.decode(r.sequences[k], prompt.back()).c_str());
  }
  if (!demo_dir.empty()) std::filesystem::remove_all(demo_dir);
  return 0;
}
