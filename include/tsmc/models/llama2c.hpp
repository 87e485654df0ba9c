#pragma once
/// @file
/// @brief tsmc::llama2c::model: a llama2.c transformer (Llama-2 architecture: RMSNorm, RoPE,
/// grouped-query attention, SwiGLU) as a batched tsmc::LanguageModel with a per-slot KV cache.
///
/// The model is the llama2.c loader of the shared transformer engine
/// (tsmc::transformer::engine, models/transformer.hpp): the checkpoint's header becomes the
/// engine's config (RoPE base 10000, RMSNorm epsilon 1e-5, interleaved RoPE pairs, no biases) and
/// its arrays the engine's weight views. Every step applies each weight matrix to all K particles
/// at once (one float32 matrix-matrix product per weight, Eigen); attention reads each slot's own
/// cache. log_probs writes rows normalised in double (the float logits' logsumexp taken in
/// double), which the sampler takes as exact. features() is the final normalised hidden state,
/// K x dim.

#include <tsmc/core/concepts.hpp>
#include <tsmc/core/error.hpp>
#include <tsmc/models/llama2c_checkpoint.hpp>
#include <tsmc/models/transformer.hpp>

#include <cstddef>
#include <filesystem>
#include <memory>
#include <utility>

namespace tsmc::llama2c {

/// @brief A K x V matrix of float logits, row-major.
using logit_matrix = transformer::logit_matrix;

namespace detail {

/// The engine's config for a checkpoint's header.
[[nodiscard]] inline transformer::config engine_config(const config& c) {
  return transformer::config{.dim = static_cast<std::size_t>(c.dim),
                             .hidden_dim = static_cast<std::size_t>(c.hidden_dim),
                             .n_layers = static_cast<std::size_t>(c.n_layers),
                             .n_heads = static_cast<std::size_t>(c.n_heads),
                             .n_kv_heads = static_cast<std::size_t>(c.n_kv_heads),
                             .vocab_size = static_cast<std::size_t>(c.vocab_size),
                             .seq_len = static_cast<std::size_t>(c.seq_len),
                             .rope_freq_base = 10000.0,
                             .rms_epsilon = 1e-5f,
                             .rope = transformer::rope_style::interleaved,
                             .rope_freq_factors = {}};
}

/// The engine's weight views into a checkpoint (float32 throughout).
[[nodiscard]] inline transformer::weights_view engine_weights(const checkpoint& w) {
  auto view = [](const checkpoint::matrix_view& m) {
    return transformer::matrix_view{.type = transformer::weight_type::f32,
                                    .data = m.data(),
                                    .rows = static_cast<std::size_t>(m.rows()),
                                    .cols = static_cast<std::size_t>(m.cols())};
  };
  transformer::weights_view out;
  out.token_embedding = view(w.token_embedding());
  const auto layers = static_cast<std::size_t>(w.configuration().n_layers);
  out.layers.resize(layers);
  for (std::size_t l = 0; l < layers; ++l) {
    transformer::layer_view& layer = out.layers[l];
    layer.rms_att = w.rms_att(l).data();
    layer.wq = view(w.wq(l));
    layer.wk = view(w.wk(l));
    layer.wv = view(w.wv(l));
    layer.wo = view(w.wo(l));
    layer.rms_ffn = w.rms_ffn(l).data();
    layer.w1 = view(w.w1(l));
    layer.w2 = view(w.w2(l));
    layer.w3 = view(w.w3(l));
  }
  out.rms_final = w.rms_final().data();
  out.classifier = view(w.wcls());
  return out;
}

/// The checkpoint, checked non-null for llama2c::model's constructor.
[[nodiscard]] inline const std::shared_ptr<const checkpoint>& non_null(const std::shared_ptr<const checkpoint>& w) {
  check_argument(w != nullptr, "llama2c::model::model", "weights", "must not be null", "nullptr");
  return w;
}

}  // namespace detail

/// @brief A llama2.c model over K particles driven in lock-step (models tsmc::ModelWithFeatures):
/// the llama2.c loader of tsmc::transformer::engine, which documents the state and the calls
/// (start, append, log_probs, logits, reorder, reserve, features, set_plain_reorder).
///
/// Error messages name the functions "llama2c::model::start" and so on. The model holds the
/// checkpoint through a shared pointer, so several models (say one per thread, or a sampler's and
/// an exact sampler's) share one copy of the weights.
template <class Lazy = void>
class basic_model : public transformer::basic_engine<Lazy> {
 public:
  /// @brief A model over a loaded checkpoint (shared, not copied).
  /// @param weights the checkpoint
  /// @throw tsmc::invalid_argument if weights is null
  explicit basic_model(std::shared_ptr<const checkpoint> weights)
      : transformer::basic_engine<Lazy>(detail::engine_config(detail::non_null(weights)->configuration()),
                            detail::engine_weights(*detail::non_null(weights)), weights, "llama2c::model"),
        weights_(std::move(weights)) {}

  /// @brief Loads a checkpoint file and builds a model over it.
  /// @param path the .bin file
  /// @param mode how the weights are loaded (memory-mapped by default)
  /// @throw tsmc::runtime_error naming the file and the field on a bad file
  explicit basic_model(const std::filesystem::path& path, load_mode mode = load_mode::automatic)
      : basic_model(std::make_shared<const checkpoint>(path, mode)) {}

  /// @brief The checkpoint's config.
  [[nodiscard]] const config& configuration() const noexcept { return weights_->configuration(); }
  /// @brief The shared checkpoint.
  [[nodiscard]] const std::shared_ptr<const checkpoint>& weights() const noexcept { return weights_; }

 private:
  std::shared_ptr<const checkpoint> weights_;
};

/// @brief The library's model: basic_model is a template only so that its member functions (and
/// the engine's) are compiled in the translation units that use them (docs/architecture.md,
/// "Compile weight").
using model = basic_model<>;

static_assert(ModelWithFeatures<model>, "tsmc::llama2c::model must model tsmc::ModelWithFeatures");

}  // namespace tsmc::llama2c
