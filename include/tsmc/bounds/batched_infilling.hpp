#pragma once
/// @file
/// @brief tsmc::batched_infilling_potential: the infilling potential phi(s) = p0(o | prompt, s)
/// (Zhao et al. 2024, Section 1 and Table 4) computed for a batch of sequences in one pass of a
/// batched LanguageModel, for models without a single-query form (llama2.c checkpoints). The
/// single-query form is tsmc::infilling_potential in bounds/exact_samplers.hpp, with the joint
/// sampler that draws the observations.

#include <tsmc/core/concepts.hpp>
#include <tsmc/core/error.hpp>
#include <tsmc/core/types.hpp>

#include <algorithm>
#include <cstddef>
#include <span>
#include <vector>

namespace tsmc {

/// @brief The infilling potential phi(s) = p0(o | prompt, s) of tsmc::infilling_potential,
/// computed for a whole batch of sequences at once with a batched LanguageModel: for a model
/// that has no single-query form (a transformer such as tsmc::llama2c::model), or where one
/// batched pass is cheaper than K x c queries.
///
/// log_potential groups the sequences by length; for each group of n sequences of length L it
/// runs the model once over n slots: start(prompt, n), L appends of the sequences' tokens, then
/// for j = 1..c: log_probs, adding log p0(o_j | prompt, s, o_{<j}) to each slot, and append o_j
/// (not after the last). That is L + c - 1 batched steps per group instead of c single queries
/// per sequence, and the model must accept prompt + L + c - 1 tokens.
///
/// The model must be a second instance, not the sampler's (the sampler's model is mid-run when
/// the potential is called); a llama2.c model shares its weights: llama2c::model(m.weights()).
/// Holds a pointer to the model (it must outlive the potential).
/// @tparam Model a LanguageModel
template <class Model>
class batched_infilling_potential {
  static_assert(LanguageModel<Model>, "tsmc::batched_infilling_potential: Model must model tsmc::LanguageModel");

 public:
  /// @brief The potential of one observation.
  /// @param model the query model: a LanguageModel instance that no sampler is using
  /// @param prompt s_0 (copied)
  /// @param observation o, the continuation (copied)
  /// @throw tsmc::invalid_argument if the observation is empty or has a token outside [0, V)
  batched_infilling_potential(Model& model, std::span<const token> prompt, std::span<const token> observation)
      : model_(&model), prompt_(prompt.begin(), prompt.end()), observation_(observation.begin(), observation.end()) {
    constexpr const char* function = "batched_infilling_potential::batched_infilling_potential";
    check_positive(function, "observation.size()", observation_.size());
    check_tokens(observation_, model.vocab_size(), function, "observation");
  }

  /// @brief out[k] = log phi(sequences[k]) = sum_j log p0(o_j | prompt, sequences[k], o_{<j}).
  /// @throw tsmc::invalid_argument if out.size() != sequences.size(); the model's exceptions
  /// (a token outside [0, V), a sequence too long for the model)
  void log_potential(std::span<const token_sequence> sequences, std::span<double> out) const {
    check_size("batched_infilling_potential::log_potential", "out.size()", out.size(), "sequences.size()",
               sequences.size());
    std::vector<std::size_t> order(sequences.size());
    for (std::size_t k = 0; k < order.size(); ++k) order[k] = k;
    std::stable_sort(order.begin(), order.end(),
                     [&](std::size_t a, std::size_t b) { return sequences[a].size() < sequences[b].size(); });
    for (std::size_t from = 0; from < order.size();) {
      std::size_t to = from + 1;
      while (to < order.size() && sequences[order[to]].size() == sequences[order[from]].size()) ++to;
      score_group(sequences, std::span<const std::size_t>(order).subspan(from, to - from), out);
      from = to;
    }
  }

  /// @brief The observation o.
  [[nodiscard]] std::span<const token> observation() const noexcept { return observation_; }

 protected:
  /// row[v] = log p0(o | prompt, prefix, v) for every candidate v in one batched pass over V slots:
  /// start(prompt, V), the prefix's tokens appended to every slot, candidate v to slot v, then the
  /// observation's c tokens as in score_group (prefix.size() + c batched steps).
  template <class Row>
  void score_candidates(std::span<const token> prefix, Row&& row) const {
    const std::size_t V = model_->vocab_size();
    model_->start(std::span<const token>(prompt_), V);
    column_.resize(V);
    for (const token x : prefix) {
      std::fill(column_.begin(), column_.end(), x);
      model_->append(std::span<const token>(column_));
    }
    for (std::size_t v = 0; v < V; ++v) column_[v] = static_cast<token>(v);
    model_->append(std::span<const token>(column_));
    rows_.resize(static_cast<Eigen::Index>(V), static_cast<Eigen::Index>(V));
    total_.assign(V, 0.0);
    for (std::size_t j = 0; j < observation_.size(); ++j) {
      model_->log_probs(log_prob_ref(rows_));
      const auto o = static_cast<Eigen::Index>(observation_[j]);
      for (std::size_t v = 0; v < V; ++v) total_[v] += rows_(static_cast<Eigen::Index>(v), o);
      if (j + 1 == observation_.size()) break;
      std::fill(column_.begin(), column_.end(), observation_[j]);
      model_->append(std::span<const token>(column_));
    }
    for (std::size_t v = 0; v < V; ++v) row(static_cast<Eigen::Index>(v)) = total_[v];
  }

  /// The query model's vocabulary size.
  [[nodiscard]] std::size_t vocab_size() const { return model_->vocab_size(); }

 private:
  /// Scores sequences[group[i]] (all of one length) in one batched pass of the model.
  void score_group(std::span<const token_sequence> sequences, std::span<const std::size_t> group,
                   std::span<double> out) const {
    const std::size_t n = group.size(), length = sequences[group[0]].size();
    const auto vocab = static_cast<Eigen::Index>(model_->vocab_size());
    model_->start(std::span<const token>(prompt_), n);
    column_.resize(n);
    for (std::size_t t = 0; t < length; ++t) {
      for (std::size_t i = 0; i < n; ++i) column_[i] = sequences[group[i]][t];
      model_->append(std::span<const token>(column_));
    }
    rows_.resize(static_cast<Eigen::Index>(n), vocab);
    total_.assign(n, 0.0);
    for (std::size_t j = 0; j < observation_.size(); ++j) {
      model_->log_probs(log_prob_ref(rows_));
      const auto o = static_cast<Eigen::Index>(observation_[j]);
      for (std::size_t i = 0; i < n; ++i) total_[i] += rows_(static_cast<Eigen::Index>(i), o);
      if (j + 1 == observation_.size()) break;
      std::fill(column_.begin(), column_.end(), observation_[j]);
      model_->append(std::span<const token>(column_));
    }
    for (std::size_t i = 0; i < n; ++i) out[group[i]] = total_[i];
  }

  Model* model_;
  token_sequence prompt_;
  token_sequence observation_;
  mutable token_sequence column_;
  mutable log_prob_matrix rows_;
  mutable std::vector<double> total_;
};

/// @brief batched_infilling_potential with a next-token form: log_potential_next scores every
/// candidate last token, so that the twisted proposal uses psi_T = phi exactly at the last step
/// (Zhao et al. 2024, Section 3: "where a potential can be evaluated for every next token cheaply,
/// psi_T = phi exactly and the correction is 1") on any batched LanguageModel, with no learned
/// psi_T and no final correction phi / psi_T.
///
/// Cost: for each of the K prefixes, one batched pass of the query model over V slots
/// (t - 1 + c steps, see score_candidates): K x V times the work of scoring one sequence. Cheap for
/// word-level models with small vocabularies (the n-gram, the toys); for a transformer with tens of
/// thousands of tokens, prefer batched_infilling_potential (psi_T learned) unless exactness of the
/// last step matters more than time. A separate class, so that choosing the cost is explicit.
/// @tparam Model a LanguageModel
template <class Model>
class batched_infilling_next_potential : public batched_infilling_potential<Model> {
 public:
  using batched_infilling_potential<Model>::batched_infilling_potential;

  /// @brief out(k, v) = log p0(o | prompt, prefixes[k], v) for every candidate v; rows of finished
  /// particles (ctx.active[k] == 0) are 0 (the sampler does not read them).
  /// @throw tsmc::invalid_argument if out is not K x V; the model's exceptions
  template <class SamplerModel>
  void log_potential_next(const step_context<SamplerModel>& ctx, log_prob_ref out) const {
    constexpr const char* function = "batched_infilling_next_potential::log_potential_next";
    check_size(function, "out.rows()", out.rows(), "the number of prefixes", ctx.prefixes.size());
    check_size(function, "out.cols()", out.cols(), "the query model's vocab_size()", this->vocab_size());
    for (std::size_t k = 0; k < ctx.prefixes.size(); ++k) {
      const auto row = static_cast<Eigen::Index>(k);
      if (!ctx.active.empty() && ctx.active[k] == 0) {
        out.row(row).setZero();
        continue;
      }
      this->score_candidates(std::span<const token>(ctx.prefixes[k]), out.row(row));
    }
  }
};

}  // namespace tsmc
