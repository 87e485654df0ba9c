// llama2c_story: twisted SMC on a llama2.c checkpoint. Draws K continuations of a prompt from the
// model conditioned on a potential that rewards mentioning a word (phi = exp(bonus x the number
// of times the word's token appears: the last token of " word"), prints log Zhat and the
// heaviest stories.
//
//   ./build/dev/examples/llama2c_story --checkpoint stories15M.bin --tokenizer tokenizer.bin
//       --prompt "Once upon a time" --word dog --particles 64 --horizon 48
//
// Without --checkpoint and --tokenizer (they go together) it writes a tiny random checkpoint and a
// byte-level tokenizer into a fresh directory of its own under the temporary directory (two runs
// at once do not meet), runs on those and removes the directory, also after an error (the ctest
// run; the text is then noise).
#include "program_support.hpp"

#include <tsmc/all.hpp>
#include <tsmc/models/llama2c.hpp>
#include <tsmc/models/llama2c_tokenizer.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <numeric>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
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

/// A fresh directory of this run's own (mkdtemp), removed with everything in it when the object
/// goes out of scope, however the program ends.
class scratch_directory {
 public:
  scratch_directory() {
    std::string pattern = (std::filesystem::temp_directory_path() / "tsmc_llama2c_story.XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr)
      throw std::runtime_error("cannot create a temporary directory from the pattern " + pattern);
    path_ = pattern;
  }
  scratch_directory(const scratch_directory&) = delete;
  scratch_directory& operator=(const scratch_directory&) = delete;
  ~scratch_directory() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  [[nodiscard]] const std::filesystem::path& path() const noexcept { return path_; }

 private:
  std::filesystem::path path_;
};

struct settings {
  std::string checkpoint, tokenizer;  // empty: the demo files
  std::string prompt = "Once upon a time";
  std::string word = "a";
  std::size_t particles = 16;
  std::size_t horizon = 24;
};

int run(const settings& s) {
  std::optional<scratch_directory> demo;
  std::filesystem::path model_path = s.checkpoint, tokenizer_path = s.tokenizer;
  if (s.checkpoint.empty()) {
    demo.emplace();
    model_path = demo->path() / "model.bin";
    tokenizer_path = demo->path() / "tokenizer.bin";
    write_demo_files(model_path, tokenizer_path);
  }
  const std::size_t particles = s.particles, horizon = s.horizon;

  // A file that does not load is reported with the option that named it.
  auto named = [](const std::string& option, const std::filesystem::path& path, auto load) {
    try {
      return load();
    } catch (const std::exception& e) {
      throw std::runtime_error(option + " " + tsmc_examples::quote_value(path.string()) + ": " + e.what());
    }
  };
  tsmc::llama2c::model model = named("--checkpoint", model_path, [&] { return tsmc::llama2c::model(model_path); });
  const tsmc::llama2c::tokenizer tok = named("--tokenizer", tokenizer_path, [&] {
    return tsmc::llama2c::tokenizer(tokenizer_path, model.vocab_size());  // vocabularies must match
  });
  const tsmc::token_sequence prompt = tok.encode(s.prompt, /*add_bos=*/true);
  if (prompt.size() + horizon > model.max_length())
    throw tsmc_examples::option_error("--horizon " + std::to_string(horizon) + " after the prompt's " +
                                      std::to_string(prompt.size()) + " tokens exceeds the model's seq_len " +
                                      std::to_string(model.max_length()));
  const tsmc::token_sequence word_tokens = tok.encode(s.word, false);
  if (word_tokens.empty())
    throw tsmc_examples::option_error("--word " + tsmc_examples::quote_value(s.word) + " has no tokens");
  const tsmc::token target = word_tokens.back();  // the word's last token (with its space)
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
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  settings s;
  tsmc_examples::program p("llama2c_story",
                           "llama2c_story: twisted SMC on a llama2.c checkpoint with a potential that rewards "
                           "mentioning a word; prints log Zhat and the heaviest stories");
  CLI::Option* checkpoint = p.input("--checkpoint", s.checkpoint,
                                    "the llama2.c checkpoint (e.g. stories15M.bin; without it: a tiny random model)");
  CLI::Option* tokenizer = p.input("--tokenizer", s.tokenizer, "the checkpoint's tokenizer.bin (needs --checkpoint)");
  checkpoint->needs(tokenizer);
  tokenizer->needs(checkpoint);
  p.text("--prompt", s.prompt, "the prompt text");
  p.text("--word", s.word, "the word whose mentions the potential rewards");
  p.count("--particles", s.particles, 1, tsmc_examples::limits::particles_max, "K, the particles");
  p.count("--horizon", s.horizon, 1, tsmc_examples::limits::horizon_max,
          "T, tokens after the prompt (the prompt's tokens + T within the model's seq_len)");
  if (const auto status = p.parse(argc, argv)) return *status;
  return p.run([&] { return run(s); });
}
