#pragma once
/// @file
/// @brief Distributed bounds, KL and sweep estimation: the runs of the seeded estimators
/// (tsmc/bounds/seeded.hpp) split over MPI ranks in contiguous blocks, each run with its own
/// random stream (seed, run), the per-run values gathered on rank 0 in run order and summarised
/// there, and the summary broadcast: every rank returns the estimate one process gets running
/// all the runs with the same seed, bit for bit.
///
/// Cost: the runs are independent, so the only communication is one gather of 4 doubles per run
/// and a broadcast of the summary per estimate; the speed-up is the number of ranks as long as
/// each rank has many runs.

#include <tsmc/bounds/seeded.hpp>
#include <tsmc/distributed/communicator.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace tsmc::distributed {

namespace detail {

/// Gathers the ranks' blocks of per-run values on rank 0 (in rank order = run order).
inline bounds_run_values gather_runs(communicator& comm, const bounds_run_values& local) {
  bounds_run_values all;
  all.lower = comm.gather(local.lower);
  all.upper = comm.gather(local.upper);
  all.lower_ess = comm.gather(local.lower_ess);
  all.upper_ess = comm.gather(local.upper_ess);
  return all;
}

}  // namespace detail

/// @brief estimate_bounds_seeded (Zhao et al. 2024, Prop. 5.1) with its M runs split over the
/// ranks: rank r runs block_range::of(M, r, R), each run m from its own stream (seed, m); the
/// values are gathered on rank 0, summarised there and broadcast. Call it on every rank with the
/// same arguments (same sampler configuration, prompt, exact sampler, runs and seed).
/// @param comm the ranks
/// @param smc this rank's sampler
/// @param prompt s_0
/// @param exact this rank's exact sampler from sigma
/// @param runs M > 0
/// @param seed the seed of the runs' streams
/// @return on every rank, the bounds one process computes with estimate_bounds_seeded(..., runs,
/// seed), bit for bit (seconds: rank 0's wall time)
/// @throw tsmc::invalid_argument if runs is 0 (on every rank, before any communication); an
/// exception inside a rank's runs aborts the job with that rank's message (run_or_abort)
template <class Sampler, class Exact>
  requires BoundsSampler<Sampler, default_engine> && ExactSampler<Exact, default_engine>
[[nodiscard]] log_z_bounds estimate_bounds(communicator& comm, Sampler& smc, std::span<const token> prompt,
                                           Exact& exact, std::size_t runs, std::uint64_t seed) {
  constexpr const char* function = "distributed::estimate_bounds";
  check_positive(function, "runs", runs);
  const auto start = std::chrono::steady_clock::now();
  const block_range mine = block_range::of(runs, comm.rank(), comm.size());
  const bounds_run_values local =
      run_or_abort(comm, function, [&] { return bounds_runs(smc, prompt, exact, mine.begin, mine.end, seed); });
  const bounds_run_values all = detail::gather_runs(comm, local);
  log_z_bounds out;
  if (comm.is_root())
    out = summarize_bounds(all, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  comm.broadcast(out);
  return out;
}

/// @brief estimate_kl_seeded (Eq. 23) with its proposal batches and exact samples split over the
/// ranks (each in contiguous blocks), gathered on rank 0 in order, summarised there and
/// broadcast: the estimate one process gets with the same seed, bit for bit.
/// @throw as estimate_kl (on every rank, before any communication); an exception inside a
/// rank's runs aborts the job with that rank's message
template <class Model, class Twist, class Pot, class Exact>
  requires ExactSampler<Exact, default_engine>
[[nodiscard]] kl_estimate estimate_kl(communicator& comm, Model& model, Twist& twist, Pot& potential,
                                      std::span<const token> prompt, Exact& exact, const log_z_reference& log_z,
                                      const kl_options& options, std::uint64_t seed) {
  constexpr const char* function = "distributed::estimate_kl";
  tsmc::detail::check_kl_arguments(function, log_z, options);
  const auto start = std::chrono::steady_clock::now();
  const block_range batches = block_range::of(kl_proposal_batches(options), comm.rank(), comm.size());
  const block_range exacts = block_range::of(options.exact_samples, comm.rank(), comm.size());
  const kl_sample_values local = run_or_abort(comm, function, [&] {
    return kl_samples_seeded(model, twist, potential, prompt, exact, options, batches.begin, batches.end, exacts.begin,
                             exacts.end, seed);
  });
  const std::vector<double> f_values = comm.gather(local.f_values);
  const std::vector<double> g_values = comm.gather(local.g_values);
  kl_estimate out;
  if (comm.is_root()) {
    out = combine_kl(summarize_bound(f_values), summarize_bound(g_values), log_z);
    out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  comm.broadcast(out);
  return out;
}

/// @brief sweep_particles_seeded (Figure 3) with each K's runs split over the ranks
/// (distributed::estimate_bounds with the seed stream_seed(seed, sweep_stream, i) for the i-th K):
/// on every rank, the reports one process computes, bit for bit (seconds aside).
/// @throw as sweep_particles (on every rank, before any communication)
template <class Model, class Twist, class Pot, class Scheme, class Trigger, class Exact>
[[nodiscard]] std::vector<bounds_report> sweep_particles(communicator& comm, Model& model, Twist& twist,
                                                         Pot& potential, smc_options base, const Scheme& scheme,
                                                         const Trigger& trigger, std::span<const token> prompt,
                                                         Exact& exact, const sweep_options& options,
                                                         std::uint64_t seed,
                                                         const std::optional<kl_estimate>& kl = std::nullopt) {
  constexpr const char* function = "distributed::sweep_particles";
  tsmc::detail::check_sweep_options(function, options);
  std::vector<bounds_report> out;
  for (std::size_t i = 0; i < options.particles.size(); ++i) {
    base.particles = options.particles[i];
    using sampler = twisted_smc<Model, Twist, Pot, Scheme, Trigger>;
    std::optional<sampler> smc;
    run_or_abort(comm, function, [&] { smc.emplace(model, twist, potential, base, scheme, trigger); });
    const log_z_bounds b =
        distributed::estimate_bounds(comm, *smc, prompt, exact, options.runs, stream_seed(seed, sweep_stream, i));
    out.push_back(make_report(options.method, options.particles[i], scheme, trigger, b, kl));
  }
  return out;
}

}  // namespace tsmc::distributed
