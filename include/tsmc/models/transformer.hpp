#pragma once
/// @file
/// @brief tsmc::transformer::engine: the batched K-particle transformer of the Llama family
/// (RMSNorm, RoPE, grouped-query attention, SwiGLU; optional q/k/v biases) with a per-slot KV
/// cache, shared by the loaders of the model formats (tsmc::llama2c::model for llama2.c
/// checkpoints, the GGUF loader for llama.cpp files).
///
/// A loader hands the engine a config (the shape and the hyperparameters) and a weights_view
/// (pointers into storage the loader keeps alive, plus an owner pointer the engine holds); the
/// engine owns the KV cache and the work buffers. Every step applies each weight matrix to all K
/// particles at once (one float32 matrix-matrix product per weight, Eigen, split into column
/// tiles by tsmc::detail::tiled_product so that results do not depend on the thread count);
/// attention reads each slot's own cache. log_probs writes rows normalised in double (the float
/// logits' logsumexp taken in double), which the sampler takes as exact. features() is the final
/// normalised hidden state, K x dim.

#include <tsmc/core/concepts.hpp>
#include <tsmc/core/error.hpp>
#include <tsmc/core/log_math.hpp>
#include <tsmc/core/parallel.hpp>
#include <tsmc/core/types.hpp>
#include <tsmc/models/weight_formats.hpp>

#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace tsmc::transformer {

/// @brief A K x V matrix of float logits, row-major.
using logit_matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// @brief How RoPE pairs the entries of a head.
enum class rope_style {
  interleaved,  ///< pairs (2i, 2i + 1): llama2.c, and llama.cpp's "normal" RoPE (architecture llama)
  neox,         ///< pairs (i, i + head_size / 2): llama.cpp's "neox" RoPE (architecture qwen2)
};

/// @brief The shape and hyperparameters of a transformer.
///
/// head_size = dim / n_heads must be even; n_kv_heads divides n_heads (fewer key/value heads than
/// query heads: grouped-query attention). The loaders check this before building an engine.
struct config {
  std::size_t dim = 0;          ///< model width d
  std::size_t hidden_dim = 0;   ///< feed-forward width
  std::size_t n_layers = 0;     ///< transformer blocks
  std::size_t n_heads = 0;      ///< query heads
  std::size_t n_kv_heads = 0;   ///< key/value heads
  std::size_t vocab_size = 0;   ///< V
  std::size_t seq_len = 0;      ///< the longest sequence accepted (prompt + generation)
  double rope_freq_base = 10000.0;  ///< RoPE angle of pair i at position p: p * base^(-2i / head_size)
  float rms_epsilon = 1e-5f;        ///< added to the mean square in RMSNorm
  rope_style rope = rope_style::interleaved;  ///< how RoPE pairs a head's entries
  /// @brief Empty, or head_size / 2 divisors of the pairs' frequencies (Llama 3.1's rope_freqs):
  /// pair i turns by p * base^(-2i / head_size) / factor_i.
  std::vector<float> rope_freq_factors;

  /// @brief dim / n_heads.
  [[nodiscard]] std::size_t head_size() const noexcept { return dim / n_heads; }
  /// @brief n_kv_heads * head_size(), the width of the keys and values.
  [[nodiscard]] std::size_t kv_dim() const noexcept { return n_kv_heads * head_size(); }
};

/// @brief The weights of one transformer block. Norm weights and biases are float32 (dim or
/// the projection's width); the biases are null when the architecture has none.
struct layer_view {
  const float* rms_att = nullptr;  ///< attention RMSNorm weight (dim)
  matrix_view wq;                  ///< dim x dim
  matrix_view wk;                  ///< kv_dim x dim
  matrix_view wv;                  ///< kv_dim x dim
  matrix_view wo;                  ///< dim x dim
  const float* bq = nullptr;       ///< query bias (dim) or null
  const float* bk = nullptr;       ///< key bias (kv_dim) or null
  const float* bv = nullptr;       ///< value bias (kv_dim) or null
  const float* rms_ffn = nullptr;  ///< feed-forward RMSNorm weight (dim)
  matrix_view w1;                  ///< gate, hidden x dim
  matrix_view w2;                  ///< down, dim x hidden
  matrix_view w3;                  ///< up, hidden x dim
};

/// @brief Every weight of a transformer, as views into a loader's storage.
struct weights_view {
  matrix_view token_embedding;      ///< V x dim
  std::vector<layer_view> layers;   ///< n_layers blocks
  const float* rms_final = nullptr; ///< final RMSNorm weight (dim)
  matrix_view classifier;           ///< V x dim (the token embedding's view when tied)
};

/// @brief The batched transformer over K particles driven in lock-step (models
/// tsmc::ModelWithFeatures); the loaders' model classes derive from it.
///
/// State: a KV cache per slot (n_layers x length x kv_dim keys and values), the length shared by
/// all slots, and the final normalised hidden state of each slot's last token (features()).
///
/// * start(prompt, K) runs the prompt once, as one sequence (slot 0; up to 64 positions per
///   pass, each weight applied to all of them in one GEMM, attention causal among them), then
///   copies its cache rows and hidden state into the other K - 1 slots. The prompt must be
///   non-empty (Llama-family models begin with BOS); start({}) throws.
/// * append(tokens) runs one token per slot through the network at position length(): one GEMM
///   per weight for all K slots, the new keys and values written straight into the cache.
/// * log_probs(out) computes the logits of the K slots (one GEMM with the classifier) and writes
///   log-softmax rows in double; log_probs(out, active) computes only the active rows and leaves
///   the other rows of out untouched.
/// * logit_rows(active) (tsmc::EmitsLogitRows, what the sampler calls) computes the active rows'
///   float logits and hands over pointers to them: the same distribution as log_probs, without
///   the K x V double rows.
/// * reorder(ancestors) copies the cache rows and hidden state of slot ancestors[k] into slot k
///   where ancestors[k] != k only (slot-stable ancestors: the dead slots), counted by
///   copied_slots() and copied_rows(); any ancestor vector is handled (a non-slot-stable one
///   through a snapshot of the sources). set_plain_reorder(true) copies every slot from a
///   snapshot instead, the reference form the optimisation is checked against (bit-identical).
///
/// The cache grows by doubling (never beyond seq_len) as the sequence lengthens, copying its rows
/// when it grows; reserve(n) allocates room for n positions at once. The weights are held through
/// the owner pointer given at construction, so several engines (say one per thread) share one
/// copy. Error messages name the function as "<name>::start" etc., with the name the loader gives.
template <class Lazy = void>
class basic_engine {
 public:
  /// @brief An engine over a loader's weights.
  /// @param shape the config (validated by the loader)
  /// @param weights views into storage that `owner` keeps alive
  /// @param owner the storage's owner, held for the engine's lifetime
  /// @param name the class name used in error messages, e.g. "llama2c::model"
  basic_engine(const config& shape, weights_view weights, std::shared_ptr<const void> owner, const std::string& name)
      : config_(shape), view_(std::move(weights)), owner_(std::move(owner)),
        name_start_(name + "::start"), name_log_probs_(name + "::log_probs"), name_logits_(name + "::logits"),
        name_append_(name + "::append"), name_reorder_(name + "::reorder"), name_reserve_(name + "::reserve") {
    init();
  }

  /// @brief The vocabulary size V.
  [[nodiscard]] std::size_t vocab_size() const noexcept { return vocab_; }
  /// @brief The config's seq_len: the longest prompt + generation (prompt + horizon) accepted.
  [[nodiscard]] std::size_t max_length() const noexcept { return seq_len_; }
  /// @brief The width d of features().
  [[nodiscard]] std::size_t feature_dim() const noexcept { return dim_; }
  /// @brief The transformer's config.
  [[nodiscard]] const config& transformer_config() const noexcept { return config_; }
  /// @brief The weights' views.
  [[nodiscard]] const weights_view& weights_views() const noexcept { return view_; }
  /// @brief The number of particles K of the current run (0 before start).
  [[nodiscard]] std::size_t particles() const noexcept { return particles_; }
  /// @brief The number of positions in every slot's cache (prompt + appended tokens).
  [[nodiscard]] std::size_t length() const noexcept { return length_; }
  /// @brief The number of positions the cache has room for.
  [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }
  /// @brief Slots copied by reorder since the last start (one per k with ancestors[k] != k; all K
  /// per reorder with set_plain_reorder(true)).
  [[nodiscard]] std::size_t copied_slots() const noexcept { return copied_slots_; }
  /// @brief Cache rows copied by reorder since the last start; a row is one slot's key and value
  /// vectors (2 kv_dim floats) at one layer and one position.
  [[nodiscard]] std::size_t copied_rows() const noexcept { return copied_rows_; }

  /// @brief Chooses how reorder moves the cache: false (the default) copies only the slots whose
  /// ancestor is another slot, in place when no source is itself overwritten (slot-stable
  /// ancestors, what the sampler passes); true is the plain reference form, which snapshots the
  /// whole cache and hidden state and copies every slot k from the snapshot of slot ancestors[k].
  /// Both give bit-identical states (tests/reliability/reproducibility_test.cpp); the plain form
  /// costs K slot copies and a snapshot per reorder and is meant for checking the optimisation.
  /// @param plain use the plain reorder
  void set_plain_reorder(bool plain) noexcept { plain_reorder_ = plain; }
  /// @brief Whether reorder uses the plain form (see set_plain_reorder).
  [[nodiscard]] bool plain_reorder() const noexcept { return plain_reorder_; }

  /// @brief The final normalised hidden state of each slot's last token, K x dim (row k feeds
  /// the classifier for particle k's next token).
  [[nodiscard]] const feature_matrix& features() const noexcept { return features_; }

  /// @brief Makes room for `positions` cache positions per slot for the current K (before or
  /// after start; start keeps the room when K does not change).
  /// @param positions at most max_length()
  /// @throw tsmc::invalid_argument if positions > max_length()
  void reserve(std::size_t positions) {
    check_argument(positions <= seq_len_, name_reserve_, "positions",
                   "must be <= max_length() " + std::to_string(seq_len_), positions);
    if (positions > capacity_) grow(positions, true);
  }

  /// @brief Runs the prompt once and positions K particles after it.
  /// @param prompt the prompt s_0 (non-empty; Llama-family models start from BOS)
  /// @param particles K
  /// @throw tsmc::invalid_argument if particles is 0, the prompt is empty or longer than
  /// max_length(), or a token is outside [0, V)
  void start(std::span<const token> prompt, std::size_t particles) {
    const std::string& function = name_start_;
    check_positive(function, "particles", particles);
    check_argument(!prompt.empty(), function, "prompt.size()",
                   "must be positive (llama2.c models start from BOS: pass {1})", prompt.size());
    check_argument(prompt.size() <= seq_len_, function, "prompt.size()",
                   "must be <= max_length() " + std::to_string(seq_len_), prompt.size());
    check_tokens(prompt, vocab_, function, "prompt");
    const std::size_t want = std::min(seq_len_, std::max(capacity_, prompt.size() + growth_slack));
    if (particles != particles_ || want != capacity_) {
      particles_ = particles;
      capacity_ = 0;
      grow(want, false);
    }
    resize_work(particles, std::min(prompt.size(), prefill_chunk));
    length_ = 0;
    copied_slots_ = 0;
    copied_rows_ = 0;
    logits_ready_ = false;
    // The prompt, as one sequence in slot 0, up to prefill_chunk positions per pass (each
    // weight applied to the chunk's positions in one GEMM, attention causal within the chunk).
    for (std::size_t from = 0; from < prompt.size(); from += prefill_chunk) {
      const std::size_t n = std::min(prefill_chunk, prompt.size() - from);
      forward(prompt.subspan(from, n), n, true);
      length_ += n;
    }
    final_norm(static_cast<Eigen::Index>((prompt.size() - 1) % prefill_chunk), 0);  // the last chunk's last row
    // Copy slot 0's rows and hidden state into every other slot.
    const std::size_t row = kv_dim_ * length_;
    for (std::size_t l = 0; l < layers_; ++l)
      for (std::size_t k = 1; k < particles_; ++k) {
        std::memcpy(key_row(l, k, 0), key_row(l, 0, 0), row * sizeof(float));
        std::memcpy(value_row(l, k, 0), value_row(l, 0, 0), row * sizeof(float));
      }
    for (std::size_t k = 1; k < particles_; ++k) features_.row(static_cast<Eigen::Index>(k)) = features_.row(0);
  }

  /// @brief Writes the K x V next-token log-probabilities, each row the log-softmax of the float
  /// logits computed in double.
  /// @param out K x V
  /// @throw tsmc::invalid_argument if out is not K x V or start has not been called
  void log_probs(log_prob_ref out) {
    check_out(out, name_log_probs_);
    compute_logits(nullptr);
    const auto K = static_cast<std::int64_t>(particles_);
    tsmc::detail::parallel_for(K, particles_ * vocab_ >= parallel_entries ? tsmc::detail::parallel_threads() : 1,
                               [&](std::int64_t k, int) {
                                 write_row(out, static_cast<std::size_t>(k), static_cast<std::size_t>(k));
                               });
  }

  /// @brief Writes the log-probabilities of the active rows only (active[k] != 0); the other
  /// rows of out are left as they were and cost nothing.
  /// @param out K x V
  /// @param active K flags
  /// @throw tsmc::invalid_argument if out is not K x V, active.size() != K or start has not been called
  void log_probs(log_prob_ref out, std::span<const std::uint8_t> active) {
    const std::string& function = name_log_probs_;
    check_out(out, function);
    check_size(function, "active.size()", active.size(), "the number of particles", particles_);
    compute_logits(&active);
    packed_rows_.clear();
    for (std::size_t k = 0; k < particles_; ++k)
      if (active[k]) packed_rows_.push_back(k);
    const auto n = static_cast<std::int64_t>(packed_rows_.size());
    tsmc::detail::parallel_for(
        n, packed_rows_.size() * vocab_ >= parallel_entries ? tsmc::detail::parallel_threads() : 1,
        [&](std::int64_t i, int) { write_row(out, packed_rows_[static_cast<std::size_t>(i)], static_cast<std::size_t>(i)); });
  }

  /// @brief The hook of tsmc::EmitsLogitRows: computes the float logits of the active rows only
  /// (active[k] != 0; one GEMM with the classifier over them) and returns K pointers to them, V
  /// floats each, nullptr where active[k] == 0. They point into the engine's buffer and are
  /// valid until its next call. The distribution is the one log_probs writes:
  /// log p0(v) = l_v - tsmc::logit_row_normalizer(l), so the sampler, which uses this hook
  /// instead of log_probs, gives the same numbers without the K x V double rows being written.
  /// @param active K flags
  /// @throw tsmc::invalid_argument if active.size() != K or start has not been called
  std::span<const float* const> logit_rows(std::span<const std::uint8_t> active) {
    if (particles_ == 0 || active.size() != particles_) {  // the name is built on failure only
      const std::string function = class_name() + "::logit_rows";
      check_started(function);
      check_size(function, "active.size()", active.size(), "the number of particles", particles_);
    }
    compute_logits(&active);
    row_pointers_.assign(particles_, nullptr);
    Eigen::Index packed = 0;
    for (std::size_t k = 0; k < particles_; ++k)
      if (active[k]) row_pointers_[k] = logits_.row(packed++).data();
    return {row_pointers_.data(), row_pointers_.size()};
  }

  /// @brief Writes the K x V float logits (the classifier times features()).
  /// @param out K x V
  /// @throw tsmc::invalid_argument if out is not K x V or start has not been called
  void logits(Eigen::Ref<logit_matrix> out) {
    const std::string& function = name_logits_;
    check_started(function);
    check_size(function, "out.rows()", out.rows(), "the number of particles", particles_);
    check_size(function, "out.cols()", out.cols(), "the vocabulary size", vocab_);
    compute_logits(nullptr);
    out = logits_.topRows(static_cast<Eigen::Index>(particles_));
  }

  /// @brief Extends slot k by tokens[k]: one forward step of all K slots at position length().
  /// @param tokens K tokens
  /// @throw tsmc::invalid_argument if start has not been called, tokens.size() != K, a token is
  /// outside [0, V), or the sequence already has max_length() positions
  void append(std::span<const token> tokens) {
    const std::string& function = name_append_;
    check_started(function);
    check_size(function, "tokens.size()", tokens.size(), "the number of particles", particles_);
    check_tokens(tokens, vocab_, function, "tokens");
    check_argument(length_ < seq_len_, function, "length()",
                   "must be < max_length() " + std::to_string(seq_len_) + " to append", length_);
    if (length_ + 1 > capacity_) grow(std::min(seq_len_, std::max(2 * capacity_, length_ + 1)), true);
    forward(tokens, particles_, false);
    for (std::size_t k = 0; k < particles_; ++k) final_norm(static_cast<Eigen::Index>(k), static_cast<Eigen::Index>(k));
    ++length_;
    logits_ready_ = false;
  }

  /// @brief Appends slot `slot`'s state to `out`: the cache length (8 bytes), then for every layer
  /// the slot's key and value rows of every cached position, then its hidden state (features()
  /// row), all in the host's byte order. The slot-state hook of tsmc::SlotStateModel (the
  /// distributed sampler ships particles between ranks with it): layers x length x 2 kv_dim + dim
  /// floats per slot.
  /// @throw tsmc::invalid_argument before start or if slot is not a particle of the current run
  void export_slot(std::size_t slot, std::vector<std::byte>& out) const {
    const std::string function = class_name() + "::export_slot";
    check_argument(particles_ > 0, function, "the model", "must be started before export_slot", "not started");
    check_argument(slot < particles_, function, "slot", "must be < the number of particles " + std::to_string(particles_),
                   slot);
    const std::size_t row = kv_dim_ * length_ * sizeof(float);
    const std::uint64_t length = length_;
    const auto* l = reinterpret_cast<const std::byte*>(&length);
    out.insert(out.end(), l, l + sizeof length);
    out.reserve(out.size() + layers_ * 2 * row + dim_ * sizeof(float));
    for (std::size_t layer = 0; layer < layers_; ++layer) {
      const auto* k = reinterpret_cast<const std::byte*>(keys_.data() + offset(layer, slot, 0));
      const auto* v = reinterpret_cast<const std::byte*>(values_.data() + offset(layer, slot, 0));
      out.insert(out.end(), k, k + row);
      out.insert(out.end(), v, v + row);
    }
    const feature_matrix::ConstRowXpr hidden = features_.row(static_cast<Eigen::Index>(slot));
    for (Eigen::Index c = 0; c < hidden.size(); ++c) {
      const float x = hidden(c);
      const auto* b = reinterpret_cast<const std::byte*>(&x);
      out.insert(out.end(), b, b + sizeof x);
    }
  }

  /// @brief Makes slot `slot`'s state the one export_slot wrote (by this engine or a copy over the
  /// same weights in another process), at the same cache length.
  /// @throw tsmc::invalid_argument before start, if slot is not a particle of the current run, or
  /// if bytes was not written at this engine's shape and cache length
  void import_slot(std::size_t slot, std::span<const std::byte> bytes) {
    const std::string function = class_name() + "::import_slot";
    check_argument(particles_ > 0, function, "the model", "must be started before import_slot", "not started");
    check_argument(slot < particles_, function, "slot", "must be < the number of particles " + std::to_string(particles_),
                   slot);
    const std::size_t row = kv_dim_ * length_ * sizeof(float);
    const std::size_t expected = sizeof(std::uint64_t) + layers_ * 2 * row + dim_ * sizeof(float);
    check_argument(bytes.size() == expected, function, "bytes.size()",
                   "must be " + std::to_string(expected) + " (this shape at cache length " + std::to_string(length_) +
                       ")",
                   bytes.size());
    std::uint64_t length = 0;
    std::memcpy(&length, bytes.data(), sizeof length);
    check_argument(length == length_, function, "the slot's cache length",
                   "must equal this model's " + std::to_string(length_), length);
    const std::byte* at = bytes.data() + sizeof length;
    for (std::size_t layer = 0; layer < layers_; ++layer) {
      std::memcpy(key_row(layer, slot, 0), at, row);
      at += row;
      std::memcpy(value_row(layer, slot, 0), at, row);
      at += row;
    }
    for (Eigen::Index c = 0; c < static_cast<Eigen::Index>(dim_); ++c, at += sizeof(float)) {
      float x = 0.0f;
      std::memcpy(&x, at, sizeof x);
      features_(static_cast<Eigen::Index>(slot), c) = x;
    }
    logits_ready_ = false;
  }

  /// @brief Slot k takes the state of slot ancestors[k] (cache rows 0..length()-1 of every
  /// layer, and the hidden state), copied only where ancestors[k] != k.
  /// @param ancestors K indices in [0, K)
  /// @throw tsmc::invalid_argument if start has not been called, ancestors.size() != K or an
  /// index is outside [0, K)
  void reorder(std::span<const particle_index> ancestors) {
    const std::string& function = name_reorder_;
    check_started(function);
    check_size(function, "ancestors.size()", ancestors.size(), "the number of particles", particles_);
    bool in_place = true;
    std::size_t copies = 0;
    for (std::size_t k = 0; k < particles_; ++k) {
      const particle_index a = ancestors[k];
      if (a >= particles_)
        throw_invalid_argument(function, "ancestors[" + std::to_string(k) + "]",
                               "must be < " + std::to_string(particles_), a);
      if (a != k) {
        ++copies;
        in_place = in_place && ancestors[a] == a;
      }
    }
    const std::size_t row = kv_dim_ * length_;
    if (plain_reorder_) {
      // The reference form: every slot from a snapshot, whatever its ancestor.
      const std::vector<float> keys = keys_, values = values_;
      const feature_matrix hidden = features_;
      for (std::size_t l = 0; l < layers_; ++l)
        for (std::size_t k = 0; k < particles_; ++k) {
          std::memcpy(key_row(l, k, 0), keys.data() + offset(l, ancestors[k], 0), row * sizeof(float));
          std::memcpy(value_row(l, k, 0), values.data() + offset(l, ancestors[k], 0), row * sizeof(float));
        }
      for (std::size_t k = 0; k < particles_; ++k)
        features_.row(static_cast<Eigen::Index>(k)) = hidden.row(static_cast<Eigen::Index>(ancestors[k]));
      copied_slots_ += particles_;
      copied_rows_ += particles_ * layers_ * length_;
      logits_ready_ = false;
      return;
    }
    if (copies == 0) return;
    if (in_place) {
      for (std::size_t l = 0; l < layers_; ++l)
        for (std::size_t k = 0; k < particles_; ++k)
          if (ancestors[k] != k) {
            std::memcpy(key_row(l, k, 0), key_row(l, ancestors[k], 0), row * sizeof(float));
            std::memcpy(value_row(l, k, 0), value_row(l, ancestors[k], 0), row * sizeof(float));
          }
      for (std::size_t k = 0; k < particles_; ++k)
        if (ancestors[k] != k)
          features_.row(static_cast<Eigen::Index>(k)) = features_.row(static_cast<Eigen::Index>(ancestors[k]));
    } else {
      // A source is itself overwritten: copy from snapshots of the old cache and hidden state.
      const std::vector<float> keys = keys_, values = values_;
      const feature_matrix hidden = features_;
      for (std::size_t l = 0; l < layers_; ++l)
        for (std::size_t k = 0; k < particles_; ++k)
          if (ancestors[k] != k) {
            std::memcpy(key_row(l, k, 0), keys.data() + offset(l, ancestors[k], 0), row * sizeof(float));
            std::memcpy(value_row(l, k, 0), values.data() + offset(l, ancestors[k], 0), row * sizeof(float));
          }
      for (std::size_t k = 0; k < particles_; ++k)
        if (ancestors[k] != k)
          features_.row(static_cast<Eigen::Index>(k)) = hidden.row(static_cast<Eigen::Index>(ancestors[k]));
    }
    copied_slots_ += copies;
    copied_rows_ += copies * layers_ * length_;
    logits_ready_ = false;
  }

 private:
  using row_matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  using strided_rows = Eigen::Map<row_matrix, 0, Eigen::OuterStride<>>;
  using const_strided_rows = Eigen::Map<const row_matrix, 0, Eigen::OuterStride<>>;
  using matrix_map = Eigen::Map<const row_matrix>;
  using vector_map = Eigen::Map<const Eigen::VectorXf>;

  static constexpr std::size_t growth_slack = 64;   // positions added to the prompt's at start
  static constexpr std::size_t prefill_chunk = 64;  // prompt positions per forward pass at start
  static constexpr std::size_t parallel_entries = 65536;  // K x V entries from which rows go parallel
  static constexpr std::size_t dequant_rows = 64;  // rows of a non-float32 weight dequantised per tile

  void init() {
    const config& c = config_;
    dim_ = c.dim;
    hidden_ = c.hidden_dim;
    layers_ = c.n_layers;
    heads_ = c.n_heads;
    kv_heads_ = c.n_kv_heads;
    head_size_ = c.head_size();
    kv_dim_ = c.kv_dim();
    vocab_ = c.vocab_size;
    seq_len_ = c.seq_len;
    rms_epsilon_ = c.rms_epsilon;
    auto quantized = [](const matrix_view& m) { return m.type != weight_type::f32; };
    quantized_ = quantized(view_.token_embedding) || quantized(view_.classifier);
    for (const layer_view& l : view_.layers)
      quantized_ = quantized_ || quantized(l.wq) || quantized(l.wk) || quantized(l.wv) || quantized(l.wo) ||
                   quantized(l.w1) || quantized(l.w2) || quantized(l.w3);
    // RoPE table: cos and sin of pos * base^(-i / head_size) for even i, computed in double.
    const std::size_t half = head_size_ / 2;
    rope_cos_.resize(seq_len_ * half);
    rope_sin_.resize(seq_len_ * half);
    for (std::size_t pos = 0; pos < seq_len_; ++pos)
      for (std::size_t j = 0; j < half; ++j) {
        double freq = std::pow(c.rope_freq_base, -static_cast<double>(2 * j) / static_cast<double>(head_size_));
        if (!c.rope_freq_factors.empty()) freq /= static_cast<double>(c.rope_freq_factors[j]);
        const double angle = static_cast<double>(pos) * freq;
        rope_cos_[pos * half + j] = static_cast<float>(std::cos(angle));
        rope_sin_[pos * half + j] = static_cast<float>(std::sin(angle));
      }
  }

  void check_started(const std::string& function) const {
    check_argument(particles_ > 0, function, "start", "must be called first", "no run started");
  }

  void check_out(const log_prob_ref& out, const std::string& function) const {
    check_started(function);
    check_size(function, "out.rows()", out.rows(), "the number of particles", particles_);
    check_size(function, "out.cols()", out.cols(), "the vocabulary size", vocab_);
  }

  // Work rows: max(K, prompt rows per pass); features_, packed_ and logits_ have K rows.
  void resize_work(std::size_t k, std::size_t prefill_rows) {
    const auto K = static_cast<Eigen::Index>(k);
    const auto W = static_cast<Eigen::Index>(std::max(k, prefill_rows));
    x_.resize(W, static_cast<Eigen::Index>(dim_));
    xb_.resize(W, static_cast<Eigen::Index>(dim_));
    q_.resize(W, static_cast<Eigen::Index>(dim_));
    attn_.resize(W, static_cast<Eigen::Index>(dim_));
    h1_.resize(W, static_cast<Eigen::Index>(hidden_));
    h3_.resize(W, static_cast<Eigen::Index>(hidden_));
    features_.resize(K, static_cast<Eigen::Index>(dim_));
    packed_.resize(K, static_cast<Eigen::Index>(dim_));
    logits_.resize(K, static_cast<Eigen::Index>(vocab_));
    scores_.clear();
    ensure_scores();
  }

  // One attention scores buffer (seq_len x heads per kv head) per thread that may run (parallel_for slots).
  void ensure_scores() {
    const auto threads = static_cast<std::size_t>(tsmc::detail::parallel_threads());
    while (scores_.size() < threads)
      scores_.emplace_back(static_cast<Eigen::Index>(seq_len_), static_cast<Eigen::Index>(heads_ / kv_heads_));
    if (quantized_)
      while (dequant_.size() < threads)
        dequant_.emplace_back(dequant_rows * std::max(dim_, hidden_));
  }

  // Cache layout: [layer][slot][position][kv_dim], so one slot's rows of a layer are contiguous.
  [[nodiscard]] std::size_t offset(std::size_t l, std::size_t k, std::size_t pos) const noexcept {
    return ((l * particles_ + k) * capacity_ + pos) * kv_dim_;
  }
  [[nodiscard]] float* key_row(std::size_t l, std::size_t k, std::size_t pos) noexcept {
    return keys_.data() + offset(l, k, pos);
  }
  [[nodiscard]] float* value_row(std::size_t l, std::size_t k, std::size_t pos) noexcept {
    return values_.data() + offset(l, k, pos);
  }

  // Resizes the cache to `positions` per slot for particles_ slots, keeping rows 0..length_-1
  // when `keep` is set.
  void grow(std::size_t positions, bool keep) {
    const std::size_t old_capacity = capacity_;
    const std::size_t total = layers_ * particles_ * positions * kv_dim_;
    if (!keep || old_capacity == 0 || length_ == 0) {
      keys_.resize(total);
      values_.resize(total);
      capacity_ = positions;
      return;
    }
    std::vector<float> keys(total), values(total);
    const std::size_t row = length_ * kv_dim_;
    for (std::size_t l = 0; l < layers_; ++l)
      for (std::size_t k = 0; k < particles_; ++k) {
        const std::size_t from = ((l * particles_ + k) * old_capacity) * kv_dim_;
        const std::size_t to = ((l * particles_ + k) * positions) * kv_dim_;
        std::memcpy(keys.data() + to, keys_.data() + from, row * sizeof(float));
        std::memcpy(values.data() + to, values_.data() + from, row * sizeof(float));
      }
    keys_.swap(keys);
    values_.swap(values);
    capacity_ = positions;
  }

  // rmsnorm of the first n rows of in into out: out_i = w_i x_i / sqrt(mean(x^2) + eps).
  void rmsnorm(const row_matrix& in, const float* weight, row_matrix& out, std::size_t n) const {
    const vector_map w(weight, static_cast<Eigen::Index>(dim_));
    const float inv_dim = 1.0f / static_cast<float>(dim_);
    for (std::size_t k = 0; k < n; ++k) {
      const auto r = static_cast<Eigen::Index>(k);
      const float scale = 1.0f / std::sqrt(in.row(r).squaredNorm() * inv_dim + rms_epsilon_);
      out.row(r).array() = in.row(r).array() * w.transpose().array() * scale;
    }
  }

  // RoPE on the first `width` entries of a row at position pos.
  void rope(float* v, std::size_t width, std::size_t pos) const noexcept {
    const std::size_t half = head_size_ / 2;
    const float* c = rope_cos_.data() + pos * half;
    const float* s = rope_sin_.data() + pos * half;
    if (config_.rope == rope_style::neox) {
      // Pairs (j, j + half) of each head.
      for (std::size_t h = 0; h < width; h += head_size_)
        for (std::size_t j = 0; j < half; ++j) {
          const float a = v[h + j], b = v[h + j + half];
          v[h + j] = a * c[j] - b * s[j];
          v[h + j + half] = a * s[j] + b * c[j];
        }
      return;
    }
    for (std::size_t i = 0; i < width; i += 2) {
      const std::size_t j = (i % head_size_) / 2;
      const float a = v[i], b = v[i + 1];
      v[i] = a * c[j] - b * s[j];
      v[i + 1] = a * s[j] + b * c[j];
    }
  }

  // Final RMS norm of residual row r into features_ row k.
  void final_norm(Eigen::Index r, Eigen::Index k) {
    const vector_map w(view_.rms_final, static_cast<Eigen::Index>(dim_));
    const float scale =
        1.0f / std::sqrt(x_.row(r).squaredNorm() / static_cast<float>(dim_) + rms_epsilon_);
    features_.row(k).array() = x_.row(r).array() * w.transpose().array() * scale;
  }

  // dst = lhs * w^T (dst += when accumulate): w is the [out][in] weight, dst's columns its rows.
  // Float32 weights go straight into tiled_product. Other types are dequantised in tiles of
  // dequant_rows rows of w (a fixed split, so each entry is summed the same way whatever the
  // thread count) into a per-thread float buffer, each tile one float GEMM into its columns.
  template <class Dst, class Lhs>
  void apply(Dst&& dst, const Lhs& lhs, const matrix_view& w, bool accumulate = false) {
    if (w.type == weight_type::f32) {
      const matrix_map m(static_cast<const float*>(w.data), static_cast<Eigen::Index>(w.rows),
                         static_cast<Eigen::Index>(w.cols));
      tsmc::detail::tiled_product(std::forward<Dst>(dst), lhs, m.transpose(), accumulate);
      return;
    }
    if (dst.rows() == 0 || w.rows == 0) return;
    const auto tiles = static_cast<std::int64_t>((w.rows + dequant_rows - 1) / dequant_rows);
    const bool parallel =
        static_cast<double>(dst.rows()) * static_cast<double>(w.rows) * static_cast<double>(w.cols) >= 100000.0;
    tsmc::detail::parallel_for(tiles, parallel ? static_cast<int>(dequant_.size()) : 1, [&](std::int64_t i, int slot) {
      std::vector<float>& buffer = dequant_[static_cast<std::size_t>(slot)];
      const std::size_t from = static_cast<std::size_t>(i) * dequant_rows;
      const std::size_t n = std::min(dequant_rows, w.rows - from);
      dequantize_rows(w, from, n, buffer.data());
      const matrix_map tile(buffer.data(), static_cast<Eigen::Index>(n), static_cast<Eigen::Index>(w.cols));
      auto out = dst.middleCols(static_cast<Eigen::Index>(from), static_cast<Eigen::Index>(n));
      if (accumulate)
        out.noalias() += lhs * tile.transpose();
      else
        out.noalias() = lhs * tile.transpose();
    });
  }

  // Adds a bias row to the first n rows of a strided block (no-op for a null bias).
  template <class Rows>
  static void add_bias(Rows&& rows, const float* bias) {
    if (bias == nullptr) return;
    const vector_map b(bias, rows.cols());
    for (Eigen::Index r = 0; r < rows.rows(); ++r) rows.row(r) += b.transpose();
  }

  // One forward pass of n rows of tokens, leaving the residual stream in x_ rows 0..n-1 and the
  // new keys and values in the cache. Decoding (prefill == false): row k is slot k at position
  // length_. Prefill: row r is slot 0 at position length_ + r (attention causal within the rows).
  void forward(std::span<const token> tokens, std::size_t n, bool prefill) {
    const weights_view& w = view_;
    const auto N = static_cast<Eigen::Index>(n);
    if (w.token_embedding.type == weight_type::f32) {
      const matrix_map emb(static_cast<const float*>(w.token_embedding.data), static_cast<Eigen::Index>(vocab_),
                           static_cast<Eigen::Index>(dim_));
      for (std::size_t r = 0; r < n; ++r) x_.row(static_cast<Eigen::Index>(r)) = emb.row(tokens[r]);
    } else {
      for (std::size_t r = 0; r < n; ++r)
        dequantize_rows(w.token_embedding, static_cast<std::size_t>(tokens[r]), 1, x_.row(static_cast<Eigen::Index>(r)).data());
    }
    const auto kv = static_cast<Eigen::Index>(kv_dim_);
    // Rows of the new keys/values in the cache: consecutive slots, or consecutive positions.
    const auto stride = static_cast<Eigen::Index>(prefill ? kv_dim_ : capacity_ * kv_dim_);
    const std::size_t rep = heads_ / kv_heads_;
    const auto hs = static_cast<Eigen::Index>(head_size_);
    const auto R = static_cast<Eigen::Index>(rep);
    const float inv_sqrt_hs = 1.0f / std::sqrt(static_cast<float>(head_size_));
    ensure_scores();
    auto slot_of = [&](std::size_t r) { return prefill ? std::size_t{0} : r; };
    auto position_of = [&](std::size_t r) { return prefill ? length_ + r : length_; };

    for (std::size_t l = 0; l < layers_; ++l) {
      const layer_view& layer = w.layers[l];
      rmsnorm(x_, layer.rms_att, xb_, n);
      const auto xb = xb_.topRows(N);
      apply(q_.topRows(N), xb, layer.wq);
      strided_rows k_new(key_row(l, 0, length_), N, kv, Eigen::OuterStride<>(stride));
      strided_rows v_new(value_row(l, 0, length_), N, kv, Eigen::OuterStride<>(stride));
      apply(k_new, xb, layer.wk);
      apply(v_new, xb, layer.wv);
      add_bias(q_.topRows(N), layer.bq);
      add_bias(k_new, layer.bk);
      add_bias(v_new, layer.bv);
      for (std::size_t r = 0; r < n; ++r) {
        rope(q_.row(static_cast<Eigen::Index>(r)).data(), dim_, position_of(r));
        rope(key_row(l, slot_of(r), position_of(r)), kv_dim_, position_of(r));
      }
      // Attention: per row and kv head g, the rep query heads sharing it form an R x hs block.
      // Rows are independent (each reads its own slot's cache): decoding runs them in parallel,
      // each thread with its own scores buffer, so results do not depend on the thread count.
      const auto rows = static_cast<std::int64_t>(n);
      const bool parallel_rows = !prefill && n * (length_ + 1) * dim_ >= parallel_entries;
      tsmc::detail::parallel_for(rows, parallel_rows ? static_cast<int>(scores_.size()) : 1, [&](std::int64_t rs, int slot) {
        const auto r = static_cast<std::size_t>(rs);
        Eigen::MatrixXf& scores_buffer = scores_[static_cast<std::size_t>(slot)];
        const std::size_t k = slot_of(r);
        const auto T = static_cast<Eigen::Index>(position_of(r) + 1);
        for (std::size_t g = 0; g < kv_heads_; ++g) {
          const_strided_rows keys(key_row(l, k, 0) + g * head_size_, T, hs, Eigen::OuterStride<>(kv));
          const_strided_rows values(value_row(l, k, 0) + g * head_size_, T, hs, Eigen::OuterStride<>(kv));
          Eigen::Map<const row_matrix> query(q_.row(static_cast<Eigen::Index>(r)).data() + g * rep * head_size_, R, hs);
          Eigen::Map<row_matrix> out(attn_.row(static_cast<Eigen::Index>(r)).data() + g * rep * head_size_, R, hs);
          auto scores = scores_buffer.topRows(T);
          scores.noalias() = keys * query.transpose();  // T x R
          for (Eigen::Index c = 0; c < R; ++c) {
            auto col = scores.col(c).array();
            col *= inv_sqrt_hs;
            const float max = col.maxCoeff();
            col = (col - max).exp();
            col *= 1.0f / col.sum();
          }
          out.noalias() = scores.transpose() * values;  // R x hs
        }
      });
      apply(x_.topRows(N), attn_.topRows(N), layer.wo, true);
      rmsnorm(x_, layer.rms_ffn, xb_, n);
      apply(h1_.topRows(N), xb, layer.w1);
      apply(h3_.topRows(N), xb, layer.w3);
      auto h1 = h1_.topRows(N).array();
      h1 = h1 / (1.0f + (-h1).exp()) * h3_.topRows(N).array();
      apply(x_.topRows(N), h1_.topRows(N), layer.w2, true);
    }
  }

  // Logits of every slot (active == nullptr) or of the active ones packed in order.
  void compute_logits(const std::span<const std::uint8_t>* active) {
    ensure_scores();  // the per-thread buffers, should the thread count have grown since the last step
    const matrix_view& wcls = view_.classifier;
    if (active == nullptr) {
      if (logits_ready_) return;
      apply(logits_, features_, wcls);
      logits_ready_ = true;
      return;
    }
    std::size_t n = 0;
    for (std::size_t k = 0; k < particles_; ++k)
      if ((*active)[k]) packed_.row(static_cast<Eigen::Index>(n++)) = features_.row(static_cast<Eigen::Index>(k));
    const auto N = static_cast<Eigen::Index>(n);
    if (n > 0) apply(logits_.topRows(N), packed_.topRows(N), wcls);
    logits_ready_ = false;  // rows are packed: not the full matrix
  }

  // out.row(k) = log-softmax of logits_ row `from`, normalised in double (logit_row_normalizer:
  // the distribution logit_rows hands over, bit for bit).
  void write_row(log_prob_ref& out, std::size_t k, std::size_t from) const {
    const auto logit = logits_.row(static_cast<Eigen::Index>(from));
    const double lse = logit_row_normalizer(logit.data(), vocab_);
    out.row(static_cast<Eigen::Index>(k)).array() = logit.array().cast<double>() - lse;
  }

  config config_;
  weights_view view_;
  std::shared_ptr<const void> owner_;
  // The class name given at construction (name_reorder_ less its "::reorder").
  [[nodiscard]] std::string class_name() const { return name_reorder_.substr(0, name_reorder_.size() - 9); }
  std::string name_start_, name_log_probs_, name_logits_, name_append_, name_reorder_, name_reserve_;
  std::size_t dim_ = 0, hidden_ = 0, layers_ = 0, heads_ = 0, kv_heads_ = 0, head_size_ = 0, kv_dim_ = 0,
              vocab_ = 0, seq_len_ = 0;
  float rms_epsilon_ = 1e-5f;
  std::vector<float> rope_cos_, rope_sin_;

  std::size_t particles_ = 0;
  std::size_t length_ = 0;
  std::size_t capacity_ = 0;
  std::vector<float> keys_, values_;
  row_matrix x_, xb_, q_, attn_, h1_, h3_, packed_;
  feature_matrix features_;
  logit_matrix logits_;
  bool quantized_ = false;  // some weight matrix is not float32: dequant_ buffers are needed
  std::vector<std::vector<float>> dequant_;  // one dequantised tile (dequant_rows x cols) per parallel_for slot
  std::vector<Eigen::MatrixXf> scores_;  // one per parallel_for slot; column-major: softmax runs down contiguous columns
  std::vector<std::size_t> packed_rows_;  // the active slots of log_probs(out, active), in order
  std::vector<const float*> row_pointers_;  // what logit_rows returns: slot k's row of logits_, or nullptr
  bool logits_ready_ = false;
  bool plain_reorder_ = false;
  std::size_t copied_slots_ = 0;
  std::size_t copied_rows_ = 0;
};

/// @brief The library's engine: basic_engine is a template only so that its member functions
/// (the GEMMs above all) are compiled in the translation units that use them (docs/architecture.md,
/// "Compile weight").
using engine = basic_engine<>;

static_assert(ModelWithFeatures<engine>, "tsmc::transformer::engine must model tsmc::ModelWithFeatures");
static_assert(EmitsLogitRows<engine>, "tsmc::transformer::engine must have the logit_rows hook");

}  // namespace tsmc::transformer
