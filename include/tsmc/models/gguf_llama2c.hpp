#pragma once
/// @file
/// @brief GGUF files from llama2.c material: the converter from a llama2.c checkpoint (and its
/// tokenizer.bin) to a GGUF "llama" model, and random Llama-family GGUF files of any shape and
/// tensor type for tests and benchmarks.
///
/// The converter writes what llama.cpp's own llama2.c converter writes where the formats meet:
/// architecture "llama", the hyperparameters under llama.*, RoPE base 10000 and RMSNorm epsilon
/// 1e-5 (llama2.c's constants), the weights under llama.cpp's tensor names ([out][in] matrices as
/// stored: llama2.c and llama.cpp's "llama" use the same interleaved RoPE pairs, so q and k need
/// no permutation), output.weight only for an unshared classifier; and, with a tokenizer, the
/// "llama" tokenizer section: tokens (llama2.c's spaces back to SentencePiece's U+2581, its
/// "\n<s>\n" and "\n</s>\n" back to "<s>" and "</s>"), scores, token types (unknown 0, control
/// BOS / EOS, byte tokens "<0xHH>", normal otherwise), BOS 1, EOS 2, unknown 0.

#include <tsmc/core/error.hpp>
#include <tsmc/core/random.hpp>
#include <tsmc/models/gguf.hpp>
#include <tsmc/models/llama2c_checkpoint.hpp>
#include <tsmc/models/llama2c_tokenizer.hpp>
#include <tsmc/models/token_type.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace tsmc::gguf {

/// @brief SentencePiece's word-boundary mark U+2581 ("▁") in UTF-8.
inline constexpr std::string_view sentencepiece_space = "\xE2\x96\x81";

/// @brief GGUF token types (tokenizer.ggml.token_type): tsmc::token_type under its older name here.
using token_kind = tsmc::token_type;

/// @brief The "llama" tokenizer section of a GGUF file for a llama2.c tokenizer (see the file
/// documentation), appended to `metadata`.
/// @param t the llama2.c tokenizer
/// @param metadata the metadata to append to
inline void add_llama_tokenizer(const llama2c::tokenizer& t, std::vector<std::pair<std::string, value>>& metadata) {
  std::vector<std::string> tokens(t.vocab_size());
  std::vector<float> scores(t.vocab_size());
  std::vector<std::int32_t> types(t.vocab_size());
  for (std::size_t i = 0; i < t.vocab_size(); ++i) {
    const auto id = static_cast<token>(i);
    std::string p = t.piece(id);
    if (id == llama2c::tokenizer::bos && p == "\n<s>\n") p = "<s>";
    if (id == llama2c::tokenizer::eos && p == "\n</s>\n") p = "</s>";
    std::string out;
    for (char c : p) {
      if (c == ' ')
        out += sentencepiece_space;
      else
        out += c;
    }
    tokens[i] = std::move(out);
    scores[i] = t.score(id);
    const bool is_byte = p.size() == 6 && p.rfind("<0x", 0) == 0 && p[5] == '>';
    types[i] = static_cast<std::int32_t>(i == 0                        ? token_kind::unknown
                                         : (id == llama2c::tokenizer::bos || id == llama2c::tokenizer::eos)
                                             ? token_kind::control
                                         : is_byte ? token_kind::byte
                                                   : token_kind::normal);
  }
  metadata.emplace_back("tokenizer.ggml.model", str("llama"));
  metadata.emplace_back("tokenizer.ggml.tokens", strings(std::move(tokens)));
  metadata.emplace_back("tokenizer.ggml.scores", f32s(scores));
  metadata.emplace_back("tokenizer.ggml.token_type", i32s(types));
  metadata.emplace_back("tokenizer.ggml.bos_token_id", u32(1));
  metadata.emplace_back("tokenizer.ggml.eos_token_id", u32(2));
  metadata.emplace_back("tokenizer.ggml.unknown_token_id", u32(0));
}

/// @brief The hyperparameter keys of a "llama" (or "qwen2") model.
/// @param architecture "llama" or "qwen2"
/// @param c the shape (seq_len becomes context_length)
/// @param freq_base RoPE base
/// @param epsilon RMSNorm epsilon
/// @param metadata the metadata to append to (general.architecture first)
inline void add_hyperparameters(const std::string& architecture, const llama2c::config& c, float freq_base,
                                float epsilon, std::vector<std::pair<std::string, value>>& metadata) {
  const std::string a = architecture + ".";
  metadata.emplace_back("general.architecture", str(architecture));
  metadata.emplace_back("general.name", str("tsmc " + architecture + " test model"));
  metadata.emplace_back("general.alignment", u32(static_cast<std::uint32_t>(default_alignment)));
  metadata.emplace_back(a + "context_length", u32(static_cast<std::uint32_t>(c.seq_len)));
  metadata.emplace_back(a + "embedding_length", u32(static_cast<std::uint32_t>(c.dim)));
  metadata.emplace_back(a + "block_count", u32(static_cast<std::uint32_t>(c.n_layers)));
  metadata.emplace_back(a + "feed_forward_length", u32(static_cast<std::uint32_t>(c.hidden_dim)));
  metadata.emplace_back(a + "attention.head_count", u32(static_cast<std::uint32_t>(c.n_heads)));
  metadata.emplace_back(a + "attention.head_count_kv", u32(static_cast<std::uint32_t>(c.n_kv_heads)));
  metadata.emplace_back(a + "rope.dimension_count", u32(static_cast<std::uint32_t>(c.head_size())));
  metadata.emplace_back(a + "rope.freq_base", f32(freq_base));
  metadata.emplace_back(a + "attention.layer_norm_rms_epsilon", f32(epsilon));
}

/// @brief The GGUF contents of a llama2.c checkpoint (and tokenizer), matrices stored as `type`.
/// @param ckpt the checkpoint
/// @param tok the tokenizer, or null for a file without a tokenizer section
/// @param type F32 (0), F16 (1), BF16 (30) or Q8_0 (8) for the matrices (norm weights stay F32;
/// Q8_0 needs dim and hidden_dim multiples of 32)
/// @return the contents
/// @throw tsmc::invalid_argument if the type is not one of the four, Q8_0 does not fit the
/// shape, or the tokenizer's vocabulary differs from the checkpoint's
[[nodiscard]] inline contents llama2c_contents(const llama2c::checkpoint& ckpt, const llama2c::tokenizer* tok,
                                               std::uint32_t type = 0) {
  constexpr const char* function = "gguf::llama2c_contents";
  const llama2c::config& c = ckpt.configuration();
  check_argument(type == 0 || type == 1 || type == 8 || type == 30, function, "type",
                 "must be F32, F16, BF16 or Q8_0", type_name(type));
  if (type == 8)
    check_argument(c.dim % 32 == 0 && c.hidden_dim % 32 == 0, function, "type",
                   "must be Q8_0 only for dim and hidden_dim multiples of 32, got dim " + std::to_string(c.dim) +
                       " and hidden_dim " + std::to_string(c.hidden_dim),
                   "Q8_0");
  if (tok != nullptr)
    check_size(function, "tokenizer vocab_size()", tok->vocab_size(), "the checkpoint's vocab_size",
               static_cast<std::size_t>(c.vocab_size));
  contents out;
  add_hyperparameters("llama", c, 10000.0f, 1e-5f, out.metadata);
  if (tok != nullptr) add_llama_tokenizer(*tok, out.metadata);
  auto mat = [&](std::string name, const llama2c::checkpoint::matrix_view& m) {
    out.tensors.push_back(encode_tensor(std::move(name), {static_cast<std::uint64_t>(m.cols()), static_cast<std::uint64_t>(m.rows())},
                                        type, std::span<const float>(m.data(), static_cast<std::size_t>(m.size()))));
  };
  auto vec = [&](std::string name, const llama2c::checkpoint::vector_view& v) {
    out.tensors.push_back(encode_tensor(std::move(name), {static_cast<std::uint64_t>(v.size())}, 0,
                                        std::span<const float>(v.data(), static_cast<std::size_t>(v.size()))));
  };
  mat("token_embd.weight", ckpt.token_embedding());
  for (std::size_t l = 0; l < static_cast<std::size_t>(c.n_layers); ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    vec(b + "attn_norm.weight", ckpt.rms_att(l));
    mat(b + "attn_q.weight", ckpt.wq(l));
    mat(b + "attn_k.weight", ckpt.wk(l));
    mat(b + "attn_v.weight", ckpt.wv(l));
    mat(b + "attn_output.weight", ckpt.wo(l));
    vec(b + "ffn_norm.weight", ckpt.rms_ffn(l));
    mat(b + "ffn_gate.weight", ckpt.w1(l));
    mat(b + "ffn_down.weight", ckpt.w2(l));
    mat(b + "ffn_up.weight", ckpt.w3(l));
  }
  vec("output_norm.weight", ckpt.rms_final());
  if (!c.shared_classifier) mat("output.weight", ckpt.wcls());
  return out;
}

/// @brief Converts a llama2.c checkpoint (and optionally its tokenizer.bin) to a GGUF file.
/// @param checkpoint_path the llama2.c .bin
/// @param tokenizer_path tokenizer.bin, or empty for a file without a tokenizer section
/// @param out_path the .gguf to write
/// @param type the matrices' type: F32 (0, the default), F16 (1), BF16 (30) or Q8_0 (8)
/// @throw as llama2c::checkpoint, llama2c::tokenizer, llama2c_contents and write_file
inline void convert_llama2c(const std::filesystem::path& checkpoint_path, const std::filesystem::path& tokenizer_path,
                            const std::filesystem::path& out_path, std::uint32_t type = 0) {
  const llama2c::checkpoint ckpt(checkpoint_path);
  std::optional<llama2c::tokenizer> tok;
  if (!tokenizer_path.empty())
    tok.emplace(tokenizer_path, static_cast<std::size_t>(ckpt.configuration().vocab_size));
  write_file(out_path, llama2c_contents(ckpt, tok ? &*tok : nullptr, type));
}

/// @brief What random_model writes.
struct random_model_options {
  std::string architecture = "llama";  ///< "llama" or "qwen2" (qwen2: q/k/v biases)
  std::uint32_t type = 0;              ///< matrices' type: F32 0, F16 1, BF16 30, Q8_0 8
  float freq_base = 10000.0f;          ///< RoPE base
  float epsilon = 1e-5f;               ///< RMSNorm epsilon
  double scale = 1.0;                  ///< weights' scale (as llama2c::random_weights)
  bool bias = true;                    ///< qwen2: write the biases (false: a file missing them)
  std::uint32_t version = 3;           ///< GGUF version
};

/// @brief The contents of a random Llama-family model of shape c (seq_len = context_length;
/// c.shared_classifier: no output.weight): llama2c::random_weights(c, seed, scale) in llama.cpp's
/// tensor names, plus uniform(-scale/4, scale/4) q/k/v biases for qwen2, and a small tokenizer
/// section ("llama" model: pieces "<unk>", "<s>", "</s>", the 256 byte tokens where V allows,
/// then "t<i>").
/// @param c the shape
/// @param seed the seed
/// @param options architecture, type, hyperparameters
/// @throw tsmc::invalid_argument as llama2c::random_weights and encode_tensor
[[nodiscard]] inline contents random_model(const llama2c::config& c, std::uint64_t seed,
                                           const random_model_options& options = {}) {
  const std::vector<float> w = llama2c::random_weights(c, seed, options.scale);
  const llama2c::detail::layout lay = llama2c::detail::make_layout(c);
  contents out;
  out.version = options.version;
  add_hyperparameters(options.architecture, c, options.freq_base, options.epsilon, out.metadata);
  const auto V = static_cast<std::size_t>(c.vocab_size);
  std::vector<std::string> tokens(V);
  std::vector<float> scores(V);
  std::vector<std::int32_t> types(V, static_cast<std::int32_t>(token_kind::normal));
  for (std::size_t i = 0; i < V; ++i) {
    if (i == 0) tokens[i] = "<unk>";
    else if (i == 1) tokens[i] = "<s>";
    else if (i == 2) tokens[i] = "</s>";
    else if (i < 259) {
      static constexpr char hex[] = "0123456789ABCDEF";
      tokens[i] = std::string("<0x") + hex[(i - 3) / 16] + hex[(i - 3) % 16] + ">";
      types[i] = static_cast<std::int32_t>(token_kind::byte);
    } else {
      tokens[i] = "t" + std::to_string(i);
    }
    scores[i] = -static_cast<float>(i);
  }
  if (V > 0) types[0] = static_cast<std::int32_t>(token_kind::unknown);
  for (std::size_t i = 1; i < std::min<std::size_t>(V, 3); ++i) types[i] = static_cast<std::int32_t>(token_kind::control);
  out.metadata.emplace_back("tokenizer.ggml.model", str("llama"));
  out.metadata.emplace_back("tokenizer.ggml.tokens", strings(std::move(tokens)));
  out.metadata.emplace_back("tokenizer.ggml.scores", f32s(scores));
  out.metadata.emplace_back("tokenizer.ggml.token_type", i32s(types));
  out.metadata.emplace_back("tokenizer.ggml.bos_token_id", u32(1));
  out.metadata.emplace_back("tokenizer.ggml.eos_token_id", u32(2));

  const auto D = static_cast<std::uint64_t>(c.dim), H = static_cast<std::uint64_t>(c.hidden_dim),
             KV = static_cast<std::uint64_t>(c.kv_dim()), Vn = static_cast<std::uint64_t>(c.vocab_size);
  auto mat = [&](std::string name, std::uint64_t at, std::uint64_t rows, std::uint64_t cols) {
    out.tensors.push_back(encode_tensor(std::move(name), {cols, rows}, options.type,
                                        std::span<const float>(w.data() + at, static_cast<std::size_t>(rows * cols))));
  };
  auto vec = [&](std::string name, std::uint64_t at, std::uint64_t n) {
    out.tensors.push_back(encode_tensor(std::move(name), {n}, 0, std::span<const float>(w.data() + at, static_cast<std::size_t>(n))));
  };
  default_engine rng(seed ^ 0x9e3779b97f4a7c15ull);
  auto bias = [&](std::string name, std::uint64_t n) {
    std::vector<float> b(static_cast<std::size_t>(n));
    for (float& x : b) x = static_cast<float>(options.scale * 0.25 * (2.0 * uniform01(rng) - 1.0));
    out.tensors.push_back(encode_tensor(std::move(name), {n}, 0, b));
  };
  mat("token_embd.weight", lay.token_embedding, Vn, D);
  for (std::uint64_t l = 0; l < static_cast<std::uint64_t>(c.n_layers); ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    vec(b + "attn_norm.weight", lay.rms_att + l * D, D);
    mat(b + "attn_q.weight", lay.wq + l * D * D, D, D);
    mat(b + "attn_k.weight", lay.wk + l * KV * D, KV, D);
    mat(b + "attn_v.weight", lay.wv + l * KV * D, KV, D);
    mat(b + "attn_output.weight", lay.wo + l * D * D, D, D);
    if (options.architecture == "qwen2" && options.bias) {
      bias(b + "attn_q.bias", D);
      bias(b + "attn_k.bias", KV);
      bias(b + "attn_v.bias", KV);
    }
    vec(b + "ffn_norm.weight", lay.rms_ffn + l * D, D);
    mat(b + "ffn_gate.weight", lay.w1 + l * H * D, H, D);
    mat(b + "ffn_down.weight", lay.w2 + l * D * H, D, H);
    mat(b + "ffn_up.weight", lay.w3 + l * H * D, H, D);
  }
  vec("output_norm.weight", lay.rms_final, D);
  if (!c.shared_classifier) mat("output.weight", lay.wcls, Vn, D);
  return out;
}

}  // namespace tsmc::gguf
