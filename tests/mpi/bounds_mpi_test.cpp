// Distributed bounds, KL and sweep estimation: with R ranks, each run from its own stream, the
// estimates equal one process's seeded estimates bit for bit (run counts that R does not divide
// included); a rank that throws aborts the job with its message (the hidden [.abort] case, run by
// ctest with a pass expression on that message).
#include <catch2/catch.hpp>

#include "mpi/mpi_fixtures.hpp"

#include <tsmc/bounds/exact_samplers.hpp>
#include <tsmc/bounds/seeded.hpp>
#include <tsmc/distributed/bounds.hpp>
#include <tsmc/resampling/schemes.hpp>
#include <tsmc/resampling/triggers.hpp>
#include <tsmc/smc/sampler.hpp>
#include <tsmc/twists/no_twist.hpp>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <vector>

using namespace tsmc_mpi_test;

namespace {

void require_same(const bound_estimate& a, const bound_estimate& b) {
  CHECK(bits(a.mean) == bits(b.mean));
  CHECK(bits(a.standard_error) == bits(b.standard_error));
  CHECK(bits(a.low) == bits(b.low));
  CHECK(bits(a.high) == bits(b.high));
  CHECK(a.runs == b.runs);
  CHECK(bits(a.zero_fraction) == bits(b.zero_fraction));
}

void require_same(const log_z_bounds& a, const log_z_bounds& b) {
  require_same(a.lower, b.lower);
  require_same(a.upper, b.upper);
  CHECK(bits(a.lower_ess) == bits(b.lower_ess));
  CHECK(bits(a.upper_ess) == bits(b.upper_ess));
}

}  // namespace

TEST_CASE("distributed bounds equal one process's seeded bounds bit for bit", "[mpi]") {
  distributed::communicator comm;
  toy t;
  no_twist none;
  const smc_options options{.particles = 8, .horizon = t.problem.horizon, .end_token = t.problem.end_token};
  twisted_smc smc(t.model, none, t.potential, options, systematic{}, ess_below(0.5));
  for (const std::size_t runs : {1u, 13u, 40u}) {
    const log_z_bounds one = estimate_bounds_seeded(smc, t.problem.prompt, t.exact, runs, 2024);
    const log_z_bounds many = distributed::estimate_bounds(comm, smc, t.problem.prompt, t.exact, runs, 2024);
    INFO("runs " << runs << ", ranks " << comm.size());
    require_same(many, one);
    CHECK(many.lower.runs == runs);
  }
  // The runs are distinct draws (no stream is shared): 40 runs of K = 8 give 40 different log Zhat.
  const bounds_run_values v = bounds_runs(smc, t.problem.prompt, t.exact, 0, 40, 2024);
  std::vector<double> sorted = v.lower;
  std::sort(sorted.begin(), sorted.end());
  CHECK(std::adjacent_find(sorted.begin(), sorted.end()) == sorted.end());
  // ... and they estimate the right thing: lower - 5 se <= log Z <= upper + 5 se (false alarm < 1e-6).
  const log_z_bounds b = distributed::estimate_bounds(comm, smc, t.problem.prompt, t.exact, 400, 99);
  CHECK(b.lower.mean - 5.0 * b.lower.standard_error <= t.solution.log_z());
  CHECK(b.upper.mean + 5.0 * b.upper.standard_error >= t.solution.log_z());
}

TEST_CASE("a buffering exact sampler (rejection) gives each run its own stream's draws", "[mpi]") {
  distributed::communicator comm;
  const token_sequence prompt{1, 2};
  tabular_model model(4, 2024, 1.5);
  auto classifier = soft_classifier::random(4, 7, 1.5, -2.0, 1.0);
  auto exact = class_rejection_sampler(model, classifier, prompt, {.horizon = 3, .batch = 16});
  no_twist none;
  twisted_smc smc(model, none, classifier, smc_options{.particles = 4, .horizon = 3}, systematic{}, always_trigger{});
  const log_z_bounds one = estimate_bounds_seeded(smc, prompt, exact, 11, 3);
  const log_z_bounds many = distributed::estimate_bounds(comm, smc, prompt, exact, 11, 3);
  require_same(many, one);
  CHECK(exact.queued() == 0);  // the sampler passed is left as it was
  default_engine engine(1);
  (void)exact.sample(engine);
  CHECK_THROWS_WITH(estimate_bounds_seeded(smc, prompt, exact, 11, 3), Catch::Contains("exact.queued() must be 0"));
}

TEST_CASE("distributed KL estimates equal one process's seeded estimates bit for bit", "[mpi]") {
  distributed::communicator comm;
  toy t;
  no_twist none;
  for (const proposal_type proposal : {proposal_type::base, proposal_type::twisted}) {
    const kl_options options{.horizon = t.problem.horizon, .proposal = proposal, .end_token = t.problem.end_token,
                             .proposal_samples = 101, .exact_samples = 37, .batch = 16};
    const auto log_z = log_z_reference::known(t.solution.log_z());
    const kl_estimate one = estimate_kl_seeded(t.model, none, t.potential, t.problem.prompt, t.exact, log_z, options, 5);
    const kl_estimate many =
        distributed::estimate_kl(comm, t.model, none, t.potential, t.problem.prompt, t.exact, log_z, options, 5);
    require_same(many.f_q, one.f_q);
    require_same(many.g_q, one.g_q);
    CHECK(many.f_q.runs == 101);
    CHECK(many.g_q.runs == 37);
    CHECK(bits(many.q_sigma.value) == bits(one.q_sigma.value));
    CHECK(bits(many.sigma_q.value) == bits(one.sigma_q.value));
  }
}

TEST_CASE("a distributed sweep over K equals one process's seeded sweep", "[mpi]") {
  distributed::communicator comm;
  toy t;
  no_twist none;
  const smc_options base{.particles = 1, .horizon = t.problem.horizon, .end_token = t.problem.end_token};
  const sweep_options options{.particles = {1, 4, 16}, .runs = 9, .method = "SMC"};
  const auto one = sweep_particles_seeded(t.model, none, t.potential, base, multinomial{}, always_trigger{},
                                          t.problem.prompt, t.exact, options, 11);
  const auto many = distributed::sweep_particles(comm, t.model, none, t.potential, base, multinomial{},
                                                 always_trigger{}, t.problem.prompt, t.exact, options, 11);
  REQUIRE(many.size() == one.size());
  for (std::size_t i = 0; i < one.size(); ++i) {
    CHECK(many[i].particles == one[i].particles);
    require_same(many[i].bounds, one[i].bounds);
  }
}

TEST_CASE("distributed estimators reject bad sizes on every rank before communicating", "[mpi]") {
  distributed::communicator comm;
  toy t;
  no_twist none;
  twisted_smc smc(t.model, none, t.potential,
                  smc_options{.particles = 4, .horizon = t.problem.horizon, .end_token = t.problem.end_token});
  CHECK_THROWS_WITH(distributed::estimate_bounds(comm, smc, t.problem.prompt, t.exact, 0, 1),
                    "tsmc::distributed::estimate_bounds: runs must be positive, got 0");
}

namespace {
/// An exact sampler that throws on one rank (the [.abort] case).
struct failing_on_rank {
  const enumeration_sampler* inner;
  std::size_t failing_rank;
  std::size_t rank;
  template <class Engine>
  token_sequence sample(Engine& rng) const {
    if (rank == failing_rank) throw tsmc::runtime_error("planted failure in the exact sampler");
    return inner->sample(rng);
  }
};
}  // namespace

// Run by ctest as `mpirun -np 2 tsmc_mpi_tests "[.abort]"`: rank 1 throws inside its runs; the job
// must end (not hang) with rank 1's message.
TEST_CASE("a rank that throws aborts the job with its message", "[.abort]") {
  distributed::communicator comm;
  toy t;
  no_twist none;
  twisted_smc smc(t.model, none, t.potential,
                  smc_options{.particles = 4, .horizon = t.problem.horizon, .end_token = t.problem.end_token});
  failing_on_rank exact{&t.exact, comm.size() - 1, comm.rank()};
  (void)distributed::estimate_bounds(comm, smc, t.problem.prompt, exact, 8, 1);
  FAIL("not reached: the job must have been aborted");
}
