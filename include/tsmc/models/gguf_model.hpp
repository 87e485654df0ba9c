#pragma once
/// @file
/// @brief tsmc::gguf::model: a Llama-family transformer read from a GGUF file (architectures
/// "llama": Llama 2 / 3, TinyLlama, SmolLM; and "qwen2": q/k/v biases, neox RoPE), the GGUF
/// loader of tsmc::transformer::engine; and the tokenizer settings the file's metadata names.
///
/// Hyperparameters come from the metadata ({arch}.embedding_length, .block_count,
/// .feed_forward_length, .attention.head_count, .attention.head_count_kv (default head_count),
/// .context_length, .rope.freq_base (default 10000), .attention.layer_norm_rms_epsilon (default
/// 1e-5), .rope.dimension_count (if present, must equal head_size)); the vocabulary is
/// token_embd.weight's second dimension. Weights are the tensors token_embd, blk.N.attn_norm,
/// attn_q, attn_k, attn_v, attn_output, ffn_norm, ffn_gate (w1), ffn_down (w2), ffn_up (w3),
/// output_norm, output (absent: tied to token_embd), the biases blk.N.attn_q/k/v.bias where the
/// file has them (qwen2 has), and rope_freqs (per-pair frequency divisors, Llama 3.1+) when present.
///
/// Matrices of type F32 are used in place (the file's mapping is their storage); F16, BF16 and
/// Q8_0 also stay in the mapping at their own size, and the engine dequantises them in tiles of
/// 64 rows into a per-thread float buffer right before each float GEMM (see
/// transformer::engine). 1-D tensors (norm weights, biases, rope_freqs) of any of the four types
/// are converted to float at load. Any other tensor type is an error naming the tensor and the type.

#include <tsmc/core/concepts.hpp>
#include <tsmc/core/error.hpp>
#include <tsmc/core/types.hpp>
#include <tsmc/models/bpe_tokenizer.hpp>
#include <tsmc/models/gguf.hpp>
#include <tsmc/models/llama2c_tokenizer.hpp>
#include <tsmc/models/token_type.hpp>
#include <tsmc/models/transformer.hpp>
#include <tsmc/models/weight_formats.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tsmc::gguf {

/// @brief Options of a GGUF model.
struct model_options {
  /// @brief The longest sequence (prompt + generation) the model accepts; 0 (the default) takes
  /// the file's context_length. A smaller value saves the RoPE table and the attention buffers
  /// (a real model's context_length can be 128k positions).
  std::size_t max_length = 0;
};

/// @brief The special tokens the metadata names (absent keys are std::nullopt).
struct special_tokens {
  std::optional<token> bos;      ///< tokenizer.ggml.bos_token_id
  std::optional<token> eos;      ///< tokenizer.ggml.eos_token_id
  std::optional<token> eot;      ///< tokenizer.ggml.eot_token_id
  std::optional<token> eom;      ///< tokenizer.ggml.eom_token_id
  std::optional<token> unknown;  ///< tokenizer.ggml.unknown_token_id
  std::optional<token> padding;  ///< tokenizer.ggml.padding_token_id
  /// @brief EOS, EOT and EOM, where present and distinct: the sampler's default end tokens.
  [[nodiscard]] std::vector<token> end_tokens() const {
    std::vector<token> out;
    for (const auto& t : {eos, eot, eom})
      if (t && std::find(out.begin(), out.end(), *t) == out.end()) out.push_back(*t);
    return out;
  }
};

namespace detail {

/// The weight type of a tensor the engine can use, or an error naming the tensor and its type.
[[nodiscard]] inline transformer::weight_type supported_type(const file& f, const tensor_info& t) {
  switch (t.type) {
    case 0: return transformer::weight_type::f32;
    case 1: return transformer::weight_type::f16;
    case 8: return transformer::weight_type::q8_0;
    case 30: return transformer::weight_type::bf16;
    default:
      throw_runtime_error("gguf::model", quoted(f.path()) + " tensor '" + t.name + "' type",
                          "must be F32, F16, BF16 or Q8_0 (other types are not supported)", type_name(t.type));
  }
}

/// A token id from an integer metadata key, checked against the vocabulary.
[[nodiscard]] inline std::optional<token> token_key(const file& f, const char* key, std::size_t vocab) {
  const value* v = f.find(key);
  if (v == nullptr) return std::nullopt;
  if (!v->is_integer() || v->integer < 0 || static_cast<std::uint64_t>(v->integer) >= vocab)
    throw_runtime_error("gguf::model", quoted(f.path()) + " key " + key,
                        "must be a token id in [0, " + std::to_string(vocab) + ")", file::describe(*v));
  return static_cast<token>(v->integer);
}

/// What the model keeps alive: the file and the float copies of the 1-D tensors.
struct model_storage {
  std::shared_ptr<const file> source;
  std::vector<std::vector<float>> vectors;
};

/// Builds the engine's config and views from a file (every check before any use).
class loader {
 public:
  loader(std::shared_ptr<const file> f, const model_options& options) : f_(std::move(f)), options_(options) {
    check_argument(f_ != nullptr, "gguf::model::model", "file", "must not be null", "nullptr");
    storage_ = std::make_shared<model_storage>();
    storage_->source = f_;
    load();
  }
  transformer::config config;
  transformer::weights_view weights;
  std::string architecture;
  special_tokens specials;
  std::shared_ptr<model_storage> storage_;

 private:
  [[nodiscard]] std::string where(const std::string& what) const { return quoted(f_->path()) + " " + what; }
  [[noreturn]] void fail(const std::string& what, const std::string& requirement, const std::string& got) const {
    throw_runtime_error("gguf::model", where(what), requirement, got);
  }
  [[nodiscard]] std::size_t positive_key(const std::string& key) const {
    const std::uint64_t v = f_->require_unsigned(key);
    if (v == 0 || v > (std::uint64_t{1} << 31)) fail("key " + key, "must be in 1..2^31", std::to_string(v));
    return static_cast<std::size_t>(v);
  }
  [[nodiscard]] const tensor_info& tensor(const std::string& name) {
    const tensor_info* t = f_->find_tensor(name);
    if (t == nullptr) fail("tensor '" + name + "'", "is required", "absent");
    used_.insert(name);
    return *t;
  }
  void check_shape(const tensor_info& t, std::vector<std::uint64_t> dims) const {
    if (t.dims != dims) {
      auto show = [](const std::vector<std::uint64_t>& d) {
        std::string s = "[";
        for (std::size_t i = 0; i < d.size(); ++i) s += (i ? ", " : "") + std::to_string(d[i]);
        return s + "]";
      };
      fail("tensor '" + t.name + "' shape", "must be " + show(dims) + " (ne[0] first)", show(t.dims));
    }
  }
  [[nodiscard]] transformer::matrix_view matrix(const std::string& name, std::size_t rows, std::size_t cols) {
    const tensor_info& t = tensor(name);
    check_shape(t, {cols, rows});
    const transformer::weight_type type = supported_type(*f_, t);
    if (type == transformer::weight_type::q8_0 && cols % transformer::q8_0_block != 0)
      fail("tensor '" + name + "' shape", "must have ne[0] a multiple of 32 for Q8_0", std::to_string(cols));
    return transformer::matrix_view{.type = type, .data = f_->data(t), .rows = rows, .cols = cols};
  }
  // A 1-D tensor of n entries as floats owned by the storage; null if optional and absent.
  const float* vector(const std::string& name, std::size_t n, bool required = true) {
    const tensor_info* t = f_->find_tensor(name);
    if (t == nullptr) {
      if (required) fail("tensor '" + name + "'", "is required", "absent");
      return nullptr;
    }
    used_.insert(name);
    check_shape(*t, {n});
    const transformer::weight_type type = supported_type(*f_, *t);
    if (type == transformer::weight_type::q8_0 && n % transformer::q8_0_block != 0)
      fail("tensor '" + name + "' shape", "must have ne[0] a multiple of 32 for Q8_0", std::to_string(n));
    std::vector<float>& out = storage_->vectors.emplace_back(n);
    transformer::dequantize_rows(transformer::matrix_view{.type = type, .data = f_->data(*t), .rows = 1, .cols = n}, 0,
                                 1, out.data());
    return out.data();
  }

  void load() {
    const file& f = *f_;
    architecture = f.require_string("general.architecture");
    if (architecture != "llama" && architecture != "qwen2")
      fail("key general.architecture", "must be a supported architecture (llama, qwen2)", "'" + architecture + "'");
    const std::string a = architecture + ".";
    config.dim = positive_key(a + "embedding_length");
    config.hidden_dim = positive_key(a + "feed_forward_length");
    config.n_layers = positive_key(a + "block_count");
    config.n_heads = positive_key(a + "attention.head_count");
    config.n_kv_heads = f.find(a + "attention.head_count_kv") ? positive_key(a + "attention.head_count_kv") : config.n_heads;
    const std::size_t context = positive_key(a + "context_length");
    config.seq_len = options_.max_length == 0 ? context : std::min(context, options_.max_length);
    if (f.find(a + "rope.freq_base")) {
      config.rope_freq_base = f.require_number(a + "rope.freq_base");
      if (!(config.rope_freq_base > 1.0) || !std::isfinite(config.rope_freq_base))
        fail("key " + a + "rope.freq_base", "must be finite and > 1", std::to_string(config.rope_freq_base));
    }
    if (f.find(a + "attention.layer_norm_rms_epsilon")) {
      const double eps = f.require_number(a + "attention.layer_norm_rms_epsilon");
      if (!(eps > 0.0 && eps < 1.0))
        fail("key " + a + "attention.layer_norm_rms_epsilon", "must be in (0, 1)", std::to_string(eps));
      config.rms_epsilon = static_cast<float>(eps);
    }
    config.rope = architecture == "qwen2" ? transformer::rope_style::neox : transformer::rope_style::interleaved;
    if (config.dim % config.n_heads != 0)
      fail("key " + a + "attention.head_count", "must divide embedding_length = " + std::to_string(config.dim),
           std::to_string(config.n_heads));
    if (config.n_heads % config.n_kv_heads != 0)
      fail("key " + a + "attention.head_count_kv", "must divide head_count = " + std::to_string(config.n_heads),
           std::to_string(config.n_kv_heads));
    if (config.head_size() % 2 != 0)
      fail("key " + a + "attention.head_count",
           "must leave an even head size (RoPE rotates pairs), embedding_length " + std::to_string(config.dim) +
               " gives " + std::to_string(config.head_size()),
           std::to_string(config.n_heads));
    if (const value* rd = f.find(a + "rope.dimension_count"))
      if (!rd->is_integer() || rd->unsigned_integer != config.head_size())
        fail("key " + a + "rope.dimension_count",
             "must equal the head size " + std::to_string(config.head_size()) + " (partial RoPE is not supported)",
             file::describe(*rd));
    if (const value* scaling = f.find(a + "rope.scaling.type"))
      if (scaling->type != value_type::string || scaling->text != "none")
        fail("key " + a + "rope.scaling.type", "must be 'none' (RoPE scaling is not supported)", file::describe(*scaling));

    // The vocabulary: token_embd's rows; the output layer, the vocab_size key and the
    // tokenizer's tokens must agree with it.
    const tensor_info& embd = tensor("token_embd.weight");
    if (embd.dims.size() != 2 || embd.dims[0] != config.dim)
      fail("tensor 'token_embd.weight' shape", "must be [embedding_length " + std::to_string(config.dim) + ", vocab]",
           std::to_string(embd.dims[0]) + (embd.dims.size() > 1 ? ", " + std::to_string(embd.dims[1]) : ""));
    if (embd.dims[1] > static_cast<std::uint64_t>(std::numeric_limits<token>::max()))
      fail("tensor 'token_embd.weight' shape", "must have a vocabulary that fits a token id", std::to_string(embd.dims[1]));
    config.vocab_size = static_cast<std::size_t>(embd.dims[1]);
    if (const value* vs = f.find(a + "vocab_size"))
      if (!vs->is_integer() || vs->unsigned_integer != config.vocab_size)
        fail("key " + a + "vocab_size", "must equal token_embd.weight's vocabulary " + std::to_string(config.vocab_size),
             file::describe(*vs));
    if (const value* tokens = f.find("tokenizer.ggml.tokens"))
      if (tokens->type != value_type::array || tokens->element_type != value_type::string ||
          tokens->strings.size() != config.vocab_size)
        fail("key tokenizer.ggml.tokens",
             "must be an array of strings with one entry per row of token_embd.weight (" +
                 std::to_string(config.vocab_size) + ")",
             file::describe(*tokens));

    const std::size_t D = config.dim, H = config.hidden_dim, KV = config.kv_dim(), V = config.vocab_size;
    weights.token_embedding = matrix("token_embd.weight", V, D);
    // One layer at a time, each only once its tensors are found: block_count is the file's word,
    // and a huge one must fail at its first missing tensor, not allocate block_count layers first.
    weights.layers.clear();
    for (std::size_t l = 0; l < config.n_layers; ++l) {
      const std::string b = "blk." + std::to_string(l) + ".";
      transformer::layer_view& layer = weights.layers.emplace_back();
      layer.rms_att = vector(b + "attn_norm.weight", D);
      layer.wq = matrix(b + "attn_q.weight", D, D);
      layer.wk = matrix(b + "attn_k.weight", KV, D);
      layer.wv = matrix(b + "attn_v.weight", KV, D);
      layer.wo = matrix(b + "attn_output.weight", D, D);
      const bool qwen = architecture == "qwen2";
      layer.bq = vector(b + "attn_q.bias", D, qwen);
      layer.bk = vector(b + "attn_k.bias", KV, qwen);
      layer.bv = vector(b + "attn_v.bias", KV, qwen);
      layer.rms_ffn = vector(b + "ffn_norm.weight", D);
      layer.w1 = matrix(b + "ffn_gate.weight", H, D);
      layer.w2 = matrix(b + "ffn_down.weight", D, H);
      layer.w3 = matrix(b + "ffn_up.weight", H, D);
    }
    weights.rms_final = vector("output_norm.weight", D);
    if (const tensor_info* out = f.find_tensor("output.weight")) {
      if (out->dims.size() == 2 && out->dims[0] == D && out->dims[1] != V)
        fail("tensor 'output.weight' shape",
             "must have one row per token of token_embd.weight (vocabulary " + std::to_string(V) + ")",
             std::to_string(out->dims[1]) + " rows");
      weights.classifier = matrix("output.weight", V, D);
    } else {
      weights.classifier = weights.token_embedding;  // tied
    }
    if (const float* factors = vector("rope_freqs.weight", config.head_size() / 2, false)) {
      config.rope_freq_factors.assign(factors, factors + config.head_size() / 2);
      for (float x : config.rope_freq_factors)
        if (!(x > 0.0f) || !std::isfinite(x))
          fail("tensor 'rope_freqs.weight'", "must hold positive finite factors", std::to_string(x));
    }

    // Like llama.cpp, a tensor the architecture does not use is an error (a misspelt name would
    // otherwise go unnoticed: a misspelt output.weight would silently tie the classifier).
    for (const tensor_info& t : f.tensors())
      if (used_.count(t.name) == 0)
        fail("tensor '" + t.name + "'", "must be one that a " + architecture + " model uses", "an unexpected tensor");

    specials.bos = token_key(f, "tokenizer.ggml.bos_token_id", V);
    specials.eos = token_key(f, "tokenizer.ggml.eos_token_id", V);
    specials.eot = token_key(f, "tokenizer.ggml.eot_token_id", V);
    specials.eom = token_key(f, "tokenizer.ggml.eom_token_id", V);
    specials.unknown = token_key(f, "tokenizer.ggml.unknown_token_id", V);
    specials.padding = token_key(f, "tokenizer.ggml.padding_token_id", V);
  }

  std::shared_ptr<const file> f_;
  model_options options_;
  std::set<std::string> used_;
};

}  // namespace detail

/// @brief A Llama-family GGUF model over K particles driven in lock-step (models
/// tsmc::ModelWithFeatures): the GGUF loader of tsmc::transformer::engine, which documents the
/// state and the calls (start, append, log_probs, logits, reorder, reserve, features).
///
/// Error messages name the functions "gguf::model::start" and so on; loading errors name the
/// file, the key or tensor, and the value. Several models may share one parsed file (the
/// shared_ptr constructor); the file's mapping is the weights' storage.
template <class Lazy = void>
class basic_model : public transformer::basic_engine<Lazy> {
 public:
  /// @brief A model over a parsed file (shared, not copied).
  /// @param source the parsed GGUF file
  /// @param options the model's options (max_length)
  /// @throw tsmc::invalid_argument if source is null; tsmc::runtime_error naming the file and
  /// the key or tensor if the file is not a supported Llama-family model
  explicit basic_model(std::shared_ptr<const file> source, const model_options& options = {})
      : basic_model(detail::loader(std::move(source), options)) {}

  /// @brief Parses a GGUF file and builds a model over it.
  /// @param path the .gguf file
  /// @param options the model's options (max_length)
  /// @param mode how the file's bytes are loaded (memory-mapped by default)
  /// @throw tsmc::runtime_error naming the file and the field, key or tensor on a bad file
  explicit basic_model(const std::filesystem::path& path, const model_options& options = {},
                 load_mode mode = load_mode::automatic)
      : basic_model(std::make_shared<const file>(path, mode), options) {}

  /// @brief The parsed file.
  [[nodiscard]] const std::shared_ptr<const file>& source() const noexcept { return source_; }
  /// @brief general.architecture ("llama" or "qwen2").
  [[nodiscard]] const std::string& architecture() const noexcept { return architecture_; }
  /// @brief The special tokens the metadata names.
  [[nodiscard]] const special_tokens& specials() const noexcept { return specials_; }
  /// @brief The bytes of weight matrices the model reads (the file's tensors in their stored
  /// types; the classifier counted once when tied), the figure the benchmark reports per type.
  [[nodiscard]] std::uint64_t weight_bytes() const noexcept {
    std::uint64_t n = 0;
    for (const tensor_info& t : source_->tensors()) n += t.bytes;
    return n;
  }

 private:
  explicit basic_model(detail::loader&& l)
      : transformer::basic_engine<Lazy>(l.config, std::move(l.weights), l.storage_, "gguf::model"),
        source_(l.storage_->source), architecture_(std::move(l.architecture)), specials_(l.specials) {}

  std::shared_ptr<const file> source_;
  std::string architecture_;
  special_tokens specials_;
};

/// @brief The library's model: basic_model is a template only so that its member functions (and
/// the engine's) are compiled in the translation units that use them (docs/architecture.md,
/// "Compile weight").
using model = basic_model<>;

static_assert(ModelWithFeatures<model>, "tsmc::gguf::model must model tsmc::ModelWithFeatures");

/// @brief The tokenizer a GGUF file's "llama" section describes (SentencePiece BPE by merge
/// scores with byte fallback), as a tsmc::llama2c::tokenizer: the pieces of
/// tokenizer.ggml.tokens with U+2581 turned into spaces, the scores of tokenizer.ggml.scores.
///
/// The llama2.c tokenizer fixes BOS = 1, EOS = 2 and byte b = token b + 3 (as Llama 2,
/// TinyLlama and every llama2.c model have them); a file whose ids differ is refused. Control
/// tokens keep their text ("<s>", "</s>"): encode never produces them unless the text spells
/// them, a difference from llama.cpp, which never matches control tokens in text.
/// @param f the parsed file
/// @param vocab_size the model's vocabulary (the tokens array must have this many entries)
/// @return the tokenizer
/// @throw tsmc::runtime_error naming the file and the key if tokenizer.ggml.model is absent or
/// not "llama", the tokens or scores are missing or of the wrong size, or the ids differ
[[nodiscard]] inline llama2c::tokenizer llama_tokenizer(const file& f, std::size_t vocab_size) {
  constexpr const char* function = "gguf::llama_tokenizer";
  const std::string where = detail::quoted(f.path());
  const value* model_key = f.find("tokenizer.ggml.model");
  if (model_key == nullptr || model_key->type != value_type::string || model_key->text != "llama")
    throw_runtime_error(function, where + " key tokenizer.ggml.model",
                        "must be 'llama' (SentencePiece BPE; a 'gpt2' file's tokenizer is gguf::gpt2_tokenizer)",
                        model_key == nullptr ? std::string("absent") : file::describe(*model_key));
  const value* tokens = f.find("tokenizer.ggml.tokens");
  if (tokens == nullptr || tokens->type != value_type::array || tokens->element_type != value_type::string ||
      tokens->strings.size() != vocab_size)
    throw_runtime_error(function, where + " key tokenizer.ggml.tokens",
                        "must be an array of " + std::to_string(vocab_size) + " strings (the model's vocabulary)",
                        tokens == nullptr ? std::string("absent") : file::describe(*tokens));
  const value* scores = f.find("tokenizer.ggml.scores");
  if (scores == nullptr || scores->type != value_type::array || scores->element_type != value_type::float32 ||
      scores->numbers.size() != vocab_size)
    throw_runtime_error(function, where + " key tokenizer.ggml.scores",
                        "must be an array of " + std::to_string(vocab_size) + " float32 (one per token)",
                        scores == nullptr ? std::string("absent") : file::describe(*scores));
  for (const auto& [key, id] : {std::pair<const char*, std::uint64_t>{"tokenizer.ggml.bos_token_id", 1},
                                {"tokenizer.ggml.eos_token_id", 2}})
    if (const value* v = f.find(key))
      if (!v->is_integer() || v->unsigned_integer != id)
        throw_runtime_error(function, where + " key " + key,
                            "must be " + std::to_string(id) + " (the llama2.c tokenizer's fixed id)", file::describe(*v));
  std::vector<std::string> pieces(vocab_size);
  std::vector<float> score(vocab_size);
  static constexpr std::string_view mark = "\xE2\x96\x81";  // U+2581
  for (std::size_t i = 0; i < vocab_size; ++i) {
    const std::string& t = tokens->strings[i];
    std::string& p = pieces[i];
    for (std::size_t at = 0; at < t.size();) {
      if (t.compare(at, mark.size(), mark) == 0) {
        p += ' ';
        at += mark.size();
      } else {
        p += t[at++];
      }
    }
    score[i] = static_cast<float>(scores->numbers[i]);
    // "<0xHH>" must be token HH + 3 (the llama2.c tokenizer's byte fallback).
    auto hex = [](char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F') || (c >= 'a' && c <= 'f'); };
    if (p.size() == 6 && p.rfind("<0x", 0) == 0 && p[5] == '>' && hex(p[3]) && hex(p[4])) {
      const unsigned long byte = std::stoul(p.substr(3, 2), nullptr, 16);
      if (byte + llama2c::tokenizer::byte_offset != i)
        throw_runtime_error(function, where + " key tokenizer.ggml.tokens[" + std::to_string(i) + "]",
                            "must be the byte token of id byte + 3 (byte fallback as llama2.c)", "'" + p + "'");
    }
  }
  return llama2c::tokenizer(std::move(pieces), std::move(score));
}

/// @brief The tokenizer a GGUF file's "gpt2" section describes (byte-level BPE: GPT-2, Llama 3,
/// Qwen2, SmolLM2) as a tsmc::bpe_tokenizer: tokenizer.ggml.tokens, token_type (optional: all
/// normal without it), merges, pre (optional: "gpt2" without it, as llama.cpp's default), the
/// BOS / EOS / EOT ids and add_bos_token (optional: false).
/// @param f the parsed file
/// @param vocab_size the model's vocabulary (the tokens array must have this many entries)
/// @return the tokenizer
/// @throw tsmc::runtime_error naming the file and the key if tokenizer.ggml.model is absent or
/// not "gpt2", a key has the wrong type or size, or the tokenizer refuses the vectors (an unknown
/// pre-tokenizer, a merge that is not two tokens, an id outside the vocabulary: its message is kept)
[[nodiscard]] inline bpe_tokenizer gpt2_tokenizer(const file& f, std::size_t vocab_size) {
  constexpr const char* function = "gguf::gpt2_tokenizer";
  const std::string where = detail::quoted(f.path());
  auto describe = [](const value* v) { return v == nullptr ? std::string("absent") : file::describe(*v); };
  const value* model_key = f.find("tokenizer.ggml.model");
  if (model_key == nullptr || model_key->type != value_type::string || model_key->text != "gpt2")
    throw_runtime_error(function, where + " key tokenizer.ggml.model",
                        "must be 'gpt2' (byte-level BPE; a 'llama' file's tokenizer is gguf::llama_tokenizer)",
                        describe(model_key));
  const value* tokens = f.find("tokenizer.ggml.tokens");
  if (tokens == nullptr || tokens->type != value_type::array || tokens->element_type != value_type::string ||
      tokens->strings.size() != vocab_size)
    throw_runtime_error(function, where + " key tokenizer.ggml.tokens",
                        "must be an array of " + std::to_string(vocab_size) + " strings (the model's vocabulary)",
                        describe(tokens));
  const value* merges = f.find("tokenizer.ggml.merges");
  if (merges == nullptr || merges->type != value_type::array || merges->element_type != value_type::string)
    throw_runtime_error(function, where + " key tokenizer.ggml.merges", "must be an array of strings (\"a b\" by rank)",
                        describe(merges));
  std::vector<token_type> types;
  if (const value* t = f.find("tokenizer.ggml.token_type")) {
    const bool integers = t->type == value_type::array && t->element_type != value_type::string &&
                          t->element_type != value_type::array && t->element_type != value_type::boolean &&
                          t->element_type != value_type::float32 && t->element_type != value_type::float64;
    if (!integers || t->numbers.size() != vocab_size)
      throw_runtime_error(function, where + " key tokenizer.ggml.token_type",
                          "must be an array of " + std::to_string(vocab_size) + " integers (one per token)", describe(t));
    types.resize(vocab_size);
    for (std::size_t i = 0; i < vocab_size; ++i) {
      const std::int64_t k = t->integers[i];
      if (k < 0 || k > 6)
        throw_runtime_error(function, where + " key tokenizer.ggml.token_type[" + std::to_string(i) + "]",
                            "must be a token type from 0 to 6", k);
      types[i] = static_cast<token_type>(k);
    }
  }
  bpe_options options;
  if (const value* pre = f.find("tokenizer.ggml.pre")) {
    if (pre->type != value_type::string)
      throw_runtime_error(function, where + " key tokenizer.ggml.pre", "must be a string", describe(pre));
    options.pre = pre->text;
  }
  auto id = [&](const char* key) -> std::optional<token> {
    const value* v = f.find(key);
    if (v == nullptr) return std::nullopt;
    if (!v->is_integer() || v->integer < 0 || static_cast<std::uint64_t>(v->integer) >= vocab_size)
      throw_runtime_error(function, where + " key " + key,
                          "must be a token id in [0, " + std::to_string(vocab_size) + ")", describe(v));
    return static_cast<token>(v->integer);
  };
  options.bos = id("tokenizer.ggml.bos_token_id");
  options.eos = id("tokenizer.ggml.eos_token_id");
  options.eot = id("tokenizer.ggml.eot_token_id");
  if (const value* add = f.find("tokenizer.ggml.add_bos_token")) {
    if (add->type != value_type::boolean)
      throw_runtime_error(function, where + " key tokenizer.ggml.add_bos_token", "must be a bool", describe(add));
    options.add_bos = add->unsigned_integer != 0;
  }
  try {
    return bpe_tokenizer(tokens->strings, std::move(types), merges->strings, std::move(options));
  } catch (const invalid_argument& e) {
    throw_runtime_error(function, where + " tokenizer section", "must describe a byte-level BPE tokenizer", e.what());
  }
}

/// @brief The "gpt2" tokenizer section of a GGUF file (what gpt2_tokenizer reads), appended to
/// `metadata`: for test files and converters.
/// @param tokens each token's vocabulary string (byte-level text, or a special token's text)
/// @param types each token's type (or empty: no token_type key)
/// @param merges the merges by rank ("a b")
/// @param options the pre-tokenizer's name, BOS / EOS / EOT and add_bos
/// @param metadata the metadata to append to
inline void add_gpt2_tokenizer(std::vector<std::string> tokens, std::span<const token_type> types,
                               std::vector<std::string> merges, const bpe_options& options,
                               std::vector<std::pair<std::string, value>>& metadata) {
  metadata.emplace_back("tokenizer.ggml.model", str("gpt2"));
  metadata.emplace_back("tokenizer.ggml.pre", str(options.pre));
  metadata.emplace_back("tokenizer.ggml.tokens", strings(std::move(tokens)));
  if (!types.empty()) {
    std::vector<std::int32_t> t(types.size());
    for (std::size_t i = 0; i < types.size(); ++i) t[i] = static_cast<std::int32_t>(types[i]);
    metadata.emplace_back("tokenizer.ggml.token_type", i32s(t));
  }
  metadata.emplace_back("tokenizer.ggml.merges", strings(std::move(merges)));
  if (options.bos) metadata.emplace_back("tokenizer.ggml.bos_token_id", u32(static_cast<std::uint32_t>(*options.bos)));
  if (options.eos) metadata.emplace_back("tokenizer.ggml.eos_token_id", u32(static_cast<std::uint32_t>(*options.eos)));
  if (options.eot) metadata.emplace_back("tokenizer.ggml.eot_token_id", u32(static_cast<std::uint32_t>(*options.eot)));
  metadata.emplace_back("tokenizer.ggml.add_bos_token", boolean(options.add_bos));
}

}  // namespace tsmc::gguf
