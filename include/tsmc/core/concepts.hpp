#pragma once
/// @file
/// @brief The user's types as C++20 concepts: LanguageModel, TwistFunction, Potential,
/// ProposalModel and ExactSampler, and the step_context every per-step hook receives.
///
/// Each concept is built from small named sub-concepts, so a compiler error names the missing
/// member. Optional hooks (features(), a twist's start/append/reorder, a potential's
/// log_potential_next, ...) are detected with requires-expressions where they are used; each has
/// a documented fallback. A member *named* like an optional hook that the sampler cannot call
/// (a near miss, such as reorder(const std::vector<particle_index>&)) is a compile error with the
/// signature to write (the detail::*_ok traits below, asserted by twisted_smc).

#include <tsmc/core/random.hpp>
#include <tsmc/core/types.hpp>

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <span>
#include <type_traits>

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

/// @brief The optional hook `logit_rows(active)`: the model hands the sampler its float logits
/// instead of writing K x V normalised double rows (models/transformer.hpp implements it).
///
/// It computes the next-token logits of the particles with active[k] != 0 and returns K row
/// pointers (V floats each; nullptr where active[k] == 0), valid until the model's next call.
/// The model's distribution is then, by definition, p0(v) = exp(l_v - log sum_u exp(l_u)) with
/// the logits l widened to double and the normaliser taken in double (tsmc::logit_row_normalizer,
/// exactly what a log_probs that writes log-softmax rows in double computes), so the weights
/// are the same numbers either way. The sampler uses the hook instead of log_probs when the
/// model has it (runs with a user proposal keep log_probs): the model's exp pass over the row
/// and the sampler's then become one pass (base proposal), or the K x V double rows are never
/// written (twisted proposal). See docs/architecture.md, "Precision".
template <class M>
concept EmitsLogitRows = requires(M& m, std::span<const std::uint8_t> active) {
  { m.logit_rows(active) } -> std::same_as<std::span<const float* const>>;
};

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
// Optional hooks: near misses
// ---------------------------------------------------------------------------------------------
//
// The sampler calls an optional hook only when it is callable exactly as the sampler calls it, so
// a hook with a slightly wrong signature would be skipped without a word (a twist whose reorder
// takes a std::vector falls out of step with its particles). These traits find the members that
// are *named* like a hook, whatever their signature, so that twisted_smc can reject a name it
// cannot call with a static_assert that says the signature to write.

namespace detail {

// "Has a member named X" for any member (overloaded, template, data), by the member-detector
// idiom: a class deriving from T and from a class with a member X finds X ambiguously exactly when
// T has a member X too. Final classes cannot be derived from; for them only a single,
// non-template member is found (&T::X). The disjunction keeps the probe away from final classes.
struct named_start { int start; };
struct named_append { int append; };
struct named_reorder { int reorder; };
struct named_vocab_size { int vocab_size; };
struct named_max_length { int max_length; };
struct named_log_potential_next { int log_potential_next; };
struct named_logit_rows { int logit_rows; };
struct named_on_step { int on_step; };
struct named_on_resample { int on_resample; };
struct named_on_finish { int on_finish; };

template <class T, class Name>
struct name_probe : T, Name {};

/// @brief T (a class) has a member named `start`, whatever its signature.
template <class T>
concept declares_start =
    std::is_class_v<T> && ((std::is_final_v<T> && requires { &T::start; }) ||
                           (!std::is_final_v<T> && !requires { &name_probe<T, named_start>::start; }));
/// @brief T (a class) has a member named `append`, whatever its signature.
template <class T>
concept declares_append =
    std::is_class_v<T> && ((std::is_final_v<T> && requires { &T::append; }) ||
                           (!std::is_final_v<T> && !requires { &name_probe<T, named_append>::append; }));
/// @brief T (a class) has a member named `reorder`, whatever its signature.
template <class T>
concept declares_reorder =
    std::is_class_v<T> && ((std::is_final_v<T> && requires { &T::reorder; }) ||
                           (!std::is_final_v<T> && !requires { &name_probe<T, named_reorder>::reorder; }));
/// @brief T (a class) has a member named `vocab_size`, whatever it is.
template <class T>
concept declares_vocab_size =
    std::is_class_v<T> && ((std::is_final_v<T> && requires { &T::vocab_size; }) ||
                           (!std::is_final_v<T> && !requires { &name_probe<T, named_vocab_size>::vocab_size; }));
/// @brief T (a class) has a member named `max_length`, whatever it is.
template <class T>
concept declares_max_length =
    std::is_class_v<T> && ((std::is_final_v<T> && requires { &T::max_length; }) ||
                           (!std::is_final_v<T> && !requires { &name_probe<T, named_max_length>::max_length; }));
/// @brief T (a class) has a member named `log_potential_next`, whatever its signature.
template <class T>
concept declares_log_potential_next =
    std::is_class_v<T> &&
    ((std::is_final_v<T> && requires { &T::log_potential_next; }) ||
     (!std::is_final_v<T> && !requires { &name_probe<T, named_log_potential_next>::log_potential_next; }));

/// @brief T (a class) has a member named `logit_rows`, whatever its signature.
template <class T>
concept declares_logit_rows =
    std::is_class_v<T> && ((std::is_final_v<T> && requires { &T::logit_rows; }) ||
                           (!std::is_final_v<T> && !requires { &name_probe<T, named_logit_rows>::logit_rows; }));

/// @brief T (a class) has a member named `on_step`, whatever its signature.
template <class T>
concept declares_on_step =
    std::is_class_v<T> && ((std::is_final_v<T> && requires { &T::on_step; }) ||
                           (!std::is_final_v<T> && !requires { &name_probe<T, named_on_step>::on_step; }));
/// @brief T (a class) has a member named `on_resample`, whatever its signature.
template <class T>
concept declares_on_resample =
    std::is_class_v<T> && ((std::is_final_v<T> && requires { &T::on_resample; }) ||
                           (!std::is_final_v<T> && !requires { &name_probe<T, named_on_resample>::on_resample; }));
/// @brief T (a class) has a member named `on_finish`, whatever its signature.
template <class T>
concept declares_on_finish =
    std::is_class_v<T> && ((std::is_final_v<T> && requires { &T::on_finish; }) ||
                           (!std::is_final_v<T> && !requires { &name_probe<T, named_on_finish>::on_finish; }));

/// @brief W's start is callable as the sampler calls it: w.start(prompt, K).
template <class W>
concept hook_start_callable = requires(W& w, std::span<const token> prompt, const std::size_t particles) {
  w.start(prompt, particles);
};
/// @brief W's append is callable as the sampler calls it: w.append(span of K tokens).
template <class W>
concept hook_append_callable = requires(W& w) { w.append(std::span<const token>{}); };
/// @brief W's reorder is callable as the sampler calls it: w.reorder(span of K ancestors).
template <class W>
concept hook_reorder_callable = requires(W& w) { w.reorder(std::span<const particle_index>{}); };
/// @brief W's vocab_size is callable as the sampler calls it and gives a size.
template <class W>
concept hook_vocab_size_callable = requires(W& w) {
  { w.vocab_size() } -> std::convertible_to<std::size_t>;
};
/// @brief M's max_length is callable as the sampler calls it and gives a size.
template <class M>
concept hook_max_length_callable = requires(M& m) {
  { m.max_length() } -> std::convertible_to<std::size_t>;
};

/// @brief Each of start / append / reorder that W names is callable as the sampler calls it.
template <class W>
inline constexpr bool twist_start_ok = !declares_start<W> || hook_start_callable<W>;
/// @copydoc twist_start_ok
template <class W>
inline constexpr bool twist_append_ok = !declares_append<W> || hook_append_callable<W>;
/// @copydoc twist_start_ok
template <class W>
inline constexpr bool twist_reorder_ok = !declares_reorder<W> || hook_reorder_callable<W>;
/// @brief W names vocab_size only as a callable returning a size.
template <class W>
inline constexpr bool twist_vocab_size_ok = !declares_vocab_size<W> || hook_vocab_size_callable<W>;
/// @brief A twist with per-particle state has append and reorder together, and start with them:
/// with append but no reorder its state misses the resampling moves (and falls out of step with
/// its particles), with reorder but no append it misses the tokens drawn, and without start it
/// is never sized for K. start alone (resetting per-run state, such as a cache) is fine.
template <class W>
inline constexpr bool twist_state_complete =
    (declares_append<W> == declares_reorder<W>) && (!declares_append<W> || declares_start<W>);
/// @brief M names max_length only as a callable returning a size.
template <class M>
inline constexpr bool model_max_length_ok = !declares_max_length<M> || hook_max_length_callable<M>;
/// @brief M names logit_rows only in the form the sampler calls (EmitsLogitRows).
template <class M>
inline constexpr bool model_logit_rows_ok = !declares_logit_rows<M> || EmitsLogitRows<M>;
/// @brief An observer's hooks (on_step(report), on_resample(step, ancestors), on_finish(result))
/// are each either absent or callable as the sampler calls them. Report and Result are the
/// sampler's step_report and smc_result (defined with the sampler, hence parameters here).
template <class O, class Report, class Result>
inline constexpr bool observer_hooks_ok =
    (!declares_on_step<O> || requires(O& o, const Report& r) { o.on_step(r); }) &&
    (!declares_on_resample<O> ||
     requires(O& o, std::size_t step) { o.on_resample(step, std::span<const particle_index>{}); }) &&
    (!declares_on_finish<O> || requires(O& o, const Result& r) { o.on_finish(r); });

/// @brief P names log_potential_next only in the form the sampler calls (NextTokenPotential).
template <class P, class Model>
inline constexpr bool potential_next_ok = !declares_log_potential_next<P> || NextTokenPotential<P, Model>;

}  // namespace detail

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
