#pragma once
/// @file
/// @brief The bounds, KL and sweep estimators with one random stream per run: run m draws from
/// an engine seeded by (seed, m) alone, so any subset of the runs can be computed anywhere (another
/// thread, another MPI rank) and the estimate is the same as one process running them all. The
/// distributed layer (tsmc/distributed/bounds.hpp) splits these runs over MPI ranks; these
/// single-process forms are its reference, and useful on their own when runs must be reproducible
/// one by one.
///
/// Streams: run m of the bounds draws from default_engine(stream_seed(seed, bounds_stream, m));
/// batch j of the KL's proposal samples from (seed, kl_proposal_stream, j) and exact sample i
/// from (seed, kl_exact_stream, i); the sweep's i-th K uses the seed stream_seed(seed,
/// sweep_stream, i) for its bounds.
///
/// Exact samplers: a run's draws must depend on its engine alone. The enumeration and
/// single-sample samplers are stateless; a rejection_sampler buffers accepted draws, so each run
/// draws through a fresh copy of the sampler as passed (which must have an empty buffer, and
/// whose batch is best kept small: the rest of a copy's accepted batch is discarded).

#include <tsmc/bounds/estimator.hpp>
#include <tsmc/bounds/exact_samplers.hpp>
#include <tsmc/bounds/kl.hpp>
#include <tsmc/bounds/report.hpp>
#include <tsmc/bounds/sweep.hpp>
#include <tsmc/core/error.hpp>
#include <tsmc/core/random.hpp>
#include <tsmc/resampling/triggers.hpp>
#include <tsmc/smc/options.hpp>
#include <tsmc/smc/sampler.hpp>
#include <tsmc/twists/no_twist.hpp>

#include <algorithm>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace tsmc {

namespace detail {

/// An exact sampler that buffers accepted draws (rejection_sampler): its next sample depends on
/// earlier calls, not only on the engine passed.
template <class Exact>
concept buffering_exact_sampler = requires(const Exact& e) {
  { e.queued() } -> std::convertible_to<std::size_t>;
};

/// Checks that a buffering exact sampler comes with an empty buffer (its copies are then fresh).
template <class Exact>
void check_fresh_exact_sampler(const Exact& exact, const char* function) {
  if constexpr (buffering_exact_sampler<Exact>)
    check_argument(exact.queued() == 0, function, "exact.queued()",
                   "must be 0: the seeded estimators draw each run's exact sample from a fresh copy of the sampler "
                   "as passed, which must not hold draws of an earlier stream",
                   exact.queued());
}

/// One exact sample drawn from `rng` alone: a buffering sampler draws through a fresh copy of
/// itself (so that no run sees another run's draws); any other sampler directly.
template <class Exact, RandomEngine Engine>
[[nodiscard]] token_sequence seeded_exact_sample(Exact& exact, Engine& rng) {
  if constexpr (buffering_exact_sampler<Exact> && std::copy_constructible<Exact>) {
    Exact fresh = exact;
    return fresh.sample(rng);
  } else {
    return exact.sample(rng);
  }
}

}  // namespace detail

/// @brief The stream tags of the seeded estimators (the `step` argument of stream_seed): distinct
/// from each other and far above any sampler step.
inline constexpr std::uint64_t bounds_stream = 0x626f756e64730001ULL;       ///< bounds run m
inline constexpr std::uint64_t kl_proposal_stream = 0x6b6c2d7130000001ULL;  ///< KL proposal batch j
inline constexpr std::uint64_t kl_exact_stream = 0x6b6c2d7330000001ULL;     ///< KL exact sample i
inline constexpr std::uint64_t sweep_stream = 0x7377656570000001ULL;        ///< sweep's i-th K

/// @brief The engine of item `index` of stream `tag` under `seed`.
[[nodiscard]] constexpr default_engine seeded_engine(std::uint64_t seed, std::uint64_t tag, std::uint64_t index) noexcept {
  return default_engine(stream_seed(seed, tag, index));
}

/// @brief The per-run values of some runs of the bounds estimator: log Zhat of the ordinary and
/// the conditional run, and their last ESS, in run order.
struct bounds_run_values {
  std::vector<double> lower;      ///< log Zhat of each ordinary run
  std::vector<double> upper;      ///< log Zhat of each conditional run
  std::vector<double> lower_ess;  ///< ESS after the last step of each ordinary run
  std::vector<double> upper_ess;  ///< ESS after the last step of each conditional run
};

/// @brief Runs m in [first, last) of the seeded bounds estimator: for each, an ordinary run, then
/// an exact sample and a conditional run seeded with it, all drawing from run m's engine.
/// @throw tsmc::invalid_argument if first > last, or as estimate_bounds
template <class Sampler, class Exact>
  requires BoundsSampler<Sampler, default_engine> && ExactSampler<Exact, default_engine>
[[nodiscard]] bounds_run_values bounds_runs(Sampler& smc, std::span<const token> prompt, Exact& exact,
                                            std::size_t first, std::size_t last, std::uint64_t seed) {
  check_argument(first <= last, "bounds_runs", "first", "must not exceed last " + std::to_string(last), first);
  const smc_options& options = smc.options();
  detail::check_exact_target(exact, prompt, options.horizon, options.end_token, options.end_tokens, "bounds_runs");
  detail::check_fresh_exact_sampler(exact, "bounds_runs");
  bounds_run_values out;
  const std::size_t n = last - first;
  out.lower.reserve(n);
  out.upper.reserve(n);
  out.lower_ess.reserve(n);
  out.upper_ess.reserve(n);
  for (std::size_t m = first; m < last; ++m) {
    default_engine rng = seeded_engine(seed, bounds_stream, m);
    const smc_result plain = smc.run(prompt, rng);
    out.lower.push_back(plain.log_z);
    out.lower_ess.push_back(plain.ess.empty() ? 0.0 : plain.ess.back());
    const token_sequence reference = detail::seeded_exact_sample(exact, rng);
    const smc_result conditional = smc.run_conditional(prompt, std::span<const token>(reference), rng);
    out.upper.push_back(conditional.log_z);
    out.upper_ess.push_back(conditional.ess.empty() ? 0.0 : conditional.ess.back());
  }
  return out;
}

/// @brief The bounds from the per-run values of all M runs (in run order): the estimate
/// estimate_bounds makes from them. The ESS means are sums in run order divided by M.
/// @param values the M runs' values (M > 0)
/// @param seconds the wall time to report
/// @throw tsmc::invalid_argument if there are no runs or the four vectors differ in length
[[nodiscard]] inline log_z_bounds summarize_bounds(const bounds_run_values& values, double seconds) {
  constexpr const char* function = "summarize_bounds";
  const std::size_t runs = values.lower.size();
  check_positive(function, "values.lower.size()", runs);
  check_size(function, "values.upper.size()", values.upper.size(), "values.lower.size()", runs);
  check_size(function, "values.lower_ess.size()", values.lower_ess.size(), "values.lower.size()", runs);
  check_size(function, "values.upper_ess.size()", values.upper_ess.size(), "values.lower.size()", runs);
  log_z_bounds out;
  out.lower = summarize_bound(values.lower);
  out.upper = summarize_bound(values.upper);
  double lower_ess = 0.0, upper_ess = 0.0;
  for (std::size_t m = 0; m < runs; ++m) {
    lower_ess += values.lower_ess[m];
    upper_ess += values.upper_ess[m];
  }
  out.lower_ess = lower_ess / static_cast<double>(runs);
  out.upper_ess = upper_ess / static_cast<double>(runs);
  out.seconds = seconds;
  return out;
}

/// @brief estimate_bounds (Zhao et al. 2024, Prop. 5.1) with one random stream per run (see the
/// file's documentation): the same estimate however the runs are split.
/// @param smc the sampler
/// @param prompt s_0
/// @param exact the exact sampler from sigma
/// @param runs M > 0
/// @param seed the seed of the runs' streams
/// @return the two bounds
/// @throw tsmc::invalid_argument if runs is 0, or as estimate_bounds
template <class Sampler, class Exact>
  requires BoundsSampler<Sampler, default_engine> && ExactSampler<Exact, default_engine>
[[nodiscard]] log_z_bounds estimate_bounds_seeded(Sampler& smc, std::span<const token> prompt, Exact& exact,
                                                  std::size_t runs, std::uint64_t seed) {
  check_positive("estimate_bounds_seeded", "runs", runs);
  const auto start = std::chrono::steady_clock::now();
  const bounds_run_values values = bounds_runs(smc, prompt, exact, 0, runs, seed);
  return summarize_bounds(values, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
}

/// @brief The number of SIS batches the KL estimator runs for its proposal samples:
/// ceil(proposal_samples / batch).
[[nodiscard]] constexpr std::size_t kl_proposal_batches(const kl_options& options) noexcept {
  return options.batch == 0 ? 0 : (options.proposal_samples + options.batch - 1) / options.batch;
}

/// @brief The per-sample values of some of the seeded KL estimator's samples.
struct kl_sample_values {
  std::vector<double> f_values;  ///< log sigma~ / q at proposal samples (batches in order)
  std::vector<double> g_values;  ///< log sigma~ / q at exact samples (in order)
};

namespace detail {
/// Checks estimate_kl's sizes and log Z (as estimate_kl does).
inline void check_kl_arguments(const char* function, const log_z_reference& log_z, const kl_options& options) {
  check_positive(function, "options.horizon", options.horizon);
  check_positive(function, "options.proposal_samples", options.proposal_samples);
  check_positive(function, "options.exact_samples", options.exact_samples);
  check_positive(function, "options.batch", options.batch);
  check_finite(function, "log_z.value", log_z.value);
}
/// kl_samples_seeded's runs with the twist given (no_twist for the base proposal).
template <class Model, class Twist, class Pot, class Exact>
[[nodiscard]] kl_sample_values kl_sample_runs(Model& model, Twist& twist, Pot& potential,
                                                      std::span<const token> prompt, Exact& exact,
                                                      const kl_options& options, std::size_t batch_first,
                                                      std::size_t batch_last, std::size_t exact_first,
                                                      std::size_t exact_last, std::uint64_t seed) {
  using sis = twisted_smc<Model, Twist, Pot, multinomial, never_trigger>;
  const auto sis_options = [&](std::size_t particles) {
    return smc_options{.particles = particles, .horizon = options.horizon, .proposal = options.proposal,
                       .end_token = options.end_token, .end_tokens = options.end_tokens};
  };
  kl_sample_values out;
  for (std::size_t j = batch_first; j < batch_last; ++j) {
    const std::size_t k = std::min(options.batch, options.proposal_samples - j * options.batch);
    sis smc(model, twist, potential, sis_options(k));
    default_engine rng = seeded_engine(seed, kl_proposal_stream, j);
    const smc_result r = smc.run(prompt, rng);
    out.f_values.insert(out.f_values.end(), r.log_weights.begin(), r.log_weights.end());
  }
  if (exact_first < exact_last) {
    sis single(model, twist, potential, sis_options(1));
    out.g_values.reserve(exact_last - exact_first);
    for (std::size_t i = exact_first; i < exact_last; ++i) {
      default_engine rng = seeded_engine(seed, kl_exact_stream, i);
      const token_sequence reference = detail::seeded_exact_sample(exact, rng);
      out.g_values.push_back(single.run_conditional(prompt, std::span<const token>(reference), rng).log_weights[0]);
    }
  }
  return out;
}

}  // namespace detail

/// @brief Some of the seeded KL estimator's samples (Eq. 23): proposal batches [batch_first,
/// batch_last) (batch j draws min(batch, proposal_samples - j batch) SIS particles from its own
/// engine) and exact samples [exact_first, exact_last) (sample i, and its K = 1 conditional run,
/// from its own engine). The base proposal runs without the twist, as estimate_kl.
/// @throw tsmc::invalid_argument on a range outside the options' sizes, or as estimate_kl
template <class Model, class Twist, class Pot, class Exact>
  requires ExactSampler<Exact, default_engine>
[[nodiscard]] kl_sample_values kl_samples_seeded(Model& model, Twist& twist, Pot& potential,
                                                 std::span<const token> prompt, Exact& exact,
                                                 const kl_options& options, std::size_t batch_first,
                                                 std::size_t batch_last, std::size_t exact_first,
                                                 std::size_t exact_last, std::uint64_t seed) {
  constexpr const char* function = "kl_samples_seeded";
  const std::size_t batches = kl_proposal_batches(options);
  check_argument(batch_first <= batch_last && batch_last <= batches, function, "[batch_first, batch_last)",
                 "must lie in [0, " + std::to_string(batches) + "]", batch_last);
  check_argument(exact_first <= exact_last && exact_last <= options.exact_samples, function,
                 "[exact_first, exact_last)", "must lie in [0, options.exact_samples]", exact_last);
  detail::check_exact_target(exact, prompt, options.horizon, options.end_token, options.end_tokens, function);
  detail::check_fresh_exact_sampler(exact, function);
  if (options.proposal == proposal_type::base) {
    no_twist none;
    return detail::kl_sample_runs(model, none, potential, prompt, exact, options, batch_first, batch_last, exact_first,
                                  exact_last, seed);
  }
  return detail::kl_sample_runs(model, twist, potential, prompt, exact, options, batch_first, batch_last, exact_first,
                                exact_last, seed);
}

/// @brief estimate_kl (Eq. 23) with one random stream per proposal batch and per exact sample:
/// the same estimate however the samples are split.
/// @throw as estimate_kl
template <class Model, class Twist, class Pot, class Exact>
  requires ExactSampler<Exact, default_engine>
[[nodiscard]] kl_estimate estimate_kl_seeded(Model& model, Twist& twist, Pot& potential, std::span<const token> prompt,
                                             Exact& exact, const log_z_reference& log_z, const kl_options& options,
                                             std::uint64_t seed) {
  detail::check_kl_arguments("estimate_kl_seeded", log_z, options);
  const auto start = std::chrono::steady_clock::now();
  const kl_sample_values v = kl_samples_seeded(model, twist, potential, prompt, exact, options, 0,
                                               kl_proposal_batches(options), 0, options.exact_samples, seed);
  kl_estimate out = combine_kl(summarize_bound(v.f_values), summarize_bound(v.g_values), log_z);
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return out;
}

namespace detail {

/// @brief The checks of a sweep's options, as sweep_particles makes them: at least one K, each K
/// and the run count positive; the messages name `function`.
inline void check_sweep_options(const char* function, const sweep_options& options) {
  check_positive(function, "options.particles.size()", options.particles.size());
  check_positive(function, "options.runs", options.runs);
  for (std::size_t i = 0; i < options.particles.size(); ++i)
    check_positive(function, "options.particles[" + std::to_string(i) + "]", options.particles[i]);
}

}  // namespace detail

/// @brief sweep_particles (Figure 3) with seeded bounds: the i-th K's bounds are
/// estimate_bounds_seeded with the seed stream_seed(seed, sweep_stream, i).
/// @throw as sweep_particles
template <class Model, class Twist, class Pot, class Scheme, class Trigger, class Exact>
[[nodiscard]] std::vector<bounds_report> sweep_particles_seeded(Model& model, Twist& twist, Pot& potential,
                                                                smc_options base, const Scheme& scheme,
                                                                const Trigger& trigger, std::span<const token> prompt,
                                                                Exact& exact, const sweep_options& options,
                                                                std::uint64_t seed,
                                                                const std::optional<kl_estimate>& kl = std::nullopt) {
  detail::check_sweep_options("sweep_particles_seeded", options);
  std::vector<bounds_report> out;
  for (std::size_t i = 0; i < options.particles.size(); ++i) {
    base.particles = options.particles[i];
    twisted_smc<Model, Twist, Pot, Scheme, Trigger> smc(model, twist, potential, base, scheme, trigger);
    const log_z_bounds b = estimate_bounds_seeded(smc, prompt, exact, options.runs, stream_seed(seed, sweep_stream, i));
    out.push_back(make_report(options.method, options.particles[i], scheme, trigger, b, kl));
  }
  return out;
}

}  // namespace tsmc
