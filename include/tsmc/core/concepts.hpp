#pragma once
/// @file
/// @brief The user's types as C++20 concepts: LanguageModel, TwistFunction, Potential,
/// ProposalModel and ExactSampler, and the step_context every per-step hook receives.
///
/// Each concept is built from small named sub-concepts, so a compiler error names the missing
/// member. Optional hooks (features(), a twist's start/append/reorder, a potential's
/// log_potential_next, ...) are detected with requires-expressions where they are used; each has
/// a documented fallback.

#include <tsmc/core/random.hpp>
#include <tsmc/core/types.hpp>

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <span>

namespace tsmc {

/// @brief What a twist, a proposal or a next-token potential sees at step t of a run.
///
/// At step t (1-based) particle k has generated prefixes[k] = s_{1:t-1} after the prompt, and
/// the hook scores every candidate s_t. Finished particles (end token emitted) have
/// active[k] == 0; their rows are ignored by the sampler, so a hook may skip them.
/// @tparam Model the language model type of the run
template <class Model>
struct step_context {
  std::size_t step = 1;                        ///< t, 1-based: the token being proposed is s_t
  std::size_t horizon = 1;                     ///< T, the maximum number of generated tokens
  std::span<const token> prompt;               ///< s_0, shared by all particles
  std::span<const token_sequence> prefixes;    ///< K generated prefixes s_{1:t-1}
  std::span<const std::uint8_t> active;        ///< K flags: 1 while particle k is still generating
  const Model& model;                          ///< the model, positioned after the prefixes
};

// ---------------------------------------------------------------------------------------------
// LanguageModel
// ---------------------------------------------------------------------------------------------

/// @brief Has `vocab_size()`: the number of tokens V.
template <class M>
concept HasVocabulary = requires(const M& m) {
  { m.vocab_size() } -> std::convertible_to<std::size_t>;
};

/// @brief Has `start(prompt, K)`: positions K particles after the prompt.
template <class M>
concept StartsParticles = requires(M& m, std::span<const token> prompt, std::size_t particles) {
  m.start(prompt, particles);
};

/// @brief Has `log_probs(out)`: writes the K x V normalised next-token log-probabilities.
template <class M>
concept EmitsLogProbs = requires(M& m, log_prob_ref out) { m.log_probs(out); };

/// @brief Has `append(tokens)`: tokens[k] extends particle k.
template <class M>
concept AppendsTokens = requires(M& m, std::span<const token> tokens) { m.append(tokens); };

/// @brief Has `reorder(ancestors)`: slot k takes the state of slot ancestors[k].
///
/// Ancestors are slot-stable (see resampling/ancestors.hpp): ancestors[k] == k for every slot
/// whose particle survives, so an implementation copies state only where ancestors[k] != k.
template <class M>
concept ReordersParticles = requires(M& m, std::span<const particle_index> ancestors) {
  m.reorder(ancestors);
};

/// @brief A batched, stateful language model driven in lock-step over K particles, like a
/// decoder with a KV cache.
///
/// Required: vocab_size(), start(prompt, K), log_probs(out K x V), append(tokens),
/// reorder(ancestors). Optional: features() returning a K x d matrix (read by twist heads),
/// max_length() (the longest prompt + generation the model accepts; checked before a run).
template <class M>
concept LanguageModel =
    HasVocabulary<M> && StartsParticles<M> && EmitsLogProbs<M> && AppendsTokens<M> && ReordersParticles<M>;

/// @brief A LanguageModel that also exposes its last hidden state, one row per particle.
template <class M>
concept ModelWithFeatures = LanguageModel<M> && requires(const M& m) {
  { m.features() } -> std::convertible_to<Eigen::Ref<const feature_matrix>>;
};

// ---------------------------------------------------------------------------------------------
// TwistFunction
// ---------------------------------------------------------------------------------------------

/// @brief A twist: `log_twist(ctx, out)` writes out(k, v) = log psi_t(prefix_k, v) for every
/// candidate token v (Zhao et al. 2024, Eq. 14).
///
/// Optional hooks, with the LanguageModel's meaning: vocab_size() (checked against the model),
/// start(prompt, K), append(tokens), reorder(ancestors), for twists that keep per-particle state.
/// Twists are defined up to a positive constant per step.
template <class W, class Model>
concept TwistFunction = requires(W& w, const step_context<Model>& ctx, log_prob_ref out) {
  w.log_twist(ctx, out);
};

// ---------------------------------------------------------------------------------------------
// Potential
// ---------------------------------------------------------------------------------------------

/// @brief A potential: `log_potential(sequences, out)` writes log phi of K finished sequences
/// (generated tokens only, without the prompt). -inf (phi = 0) is allowed.
///
/// Optional: `log_potential_next(ctx, out)` scoring every candidate last token at once (K x V);
/// then the twisted proposal uses psi_T = phi exactly at the last step.
template <class P>
concept Potential = requires(P& p, std::span<const token_sequence> sequences, std::span<double> out) {
  p.log_potential(sequences, out);
};

/// @brief A Potential that can also score every candidate next token at once.
template <class P, class Model>
concept NextTokenPotential = Potential<P> && requires(P& p, const step_context<Model>& ctx, log_prob_ref out) {
  p.log_potential_next(ctx, out);
};

// ---------------------------------------------------------------------------------------------
// ProposalModel
// ---------------------------------------------------------------------------------------------

/// @brief A user-supplied proposal q: `log_proposal(ctx, out)` writes the K x V normalised
/// next-token log-probabilities log q(. | prefix_k) (Zhao et al. 2024, Eq. 10).
template <class Q, class Model>
concept ProposalModel = requires(Q& q, const step_context<Model>& ctx, log_prob_ref out) {
  q.log_proposal(ctx, out);
};

// ---------------------------------------------------------------------------------------------
// ExactSampler
// ---------------------------------------------------------------------------------------------

/// @brief A provider of exact samples from the target sigma: `sample(rng)` returns one
/// sequence of generated tokens drawn exactly from sigma (for a fixed prompt).
/// @tparam Engine the random engine it is called with
template <class S, class Engine = default_engine>
concept ExactSampler = RandomEngine<Engine> && requires(S& s, Engine& rng) {
  { s.sample(rng) } -> std::convertible_to<token_sequence>;
};

}  // namespace tsmc
