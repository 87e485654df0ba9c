// The sampler against exact answers from enumeration: optimal twists give log Zhat = log Z in
// every run; E[Zhat] = Z; E[log Zhat] <= log Z <= E[conditional log Zhat]; the SMC measure is
// unbiased for Z sigma; reorder copies exactly the dead particles.
#include "smc/sampler_fixtures.hpp"

#include <catch2/catch.hpp>

#include <Eigen/Cholesky>

#include <map>
#include <tuple>

using namespace tsmc_test;

namespace {

template <class Scheme, class Trigger>
void check_optimal_twist_exact(bool end_token, Scheme scheme, Trigger trigger) {
  small_problem p(end_token);
  optimal_twist psi_star(p.solution);
  for (std::size_t particles : {1u, 4u, 16u}) {
    twisted_smc smc(p.model, psi_star, p.potential, p.options(particles, proposal_type::twisted), scheme, trigger);
    default_engine rng(11 + particles);
    for (int run = 0; run < 20; ++run) {
      const smc_result r = smc.run(p.problem.prompt, rng);
      REQUIRE(std::abs(r.log_z - p.solution.log_z()) < 1e-9);
      // Every incremental weight after the first is one: after the first step the log-weights
      // stay equal to the first step's, so every step's ESS is K.
      for (double ess : r.ess) REQUIRE(ess == Approx(static_cast<double>(particles)).epsilon(1e-12));
      // The twisted proposal is sigma itself: q(s_{1:T}) = sigma(s_{1:T}) for every particle.
      for (std::size_t k = 0; k < particles; ++k)
        REQUIRE(std::abs(r.log_proposal[k] - p.solution.log_sigma_of(r.sequences[k])) < 1e-9);
    }
  }
}

}  // namespace

TEST_CASE("optimal twists give log Zhat = log Z in every run, for any K, scheme and trigger", "[sampler]") {
  for (bool end_token : {false, true}) {
    CAPTURE(end_token);
    check_optimal_twist_exact(end_token, multinomial{}, always);
    check_optimal_twist_exact(end_token, systematic{}, always);
    check_optimal_twist_exact(end_token, stratified{}, ess_below(0.5));
    check_optimal_twist_exact(end_token, residual{}, always);
    check_optimal_twist_exact(end_token, ssp{}, ess_below(0.9));
    check_optimal_twist_exact(end_token, killing{}, always);
    check_optimal_twist_exact(end_token, multinomial{}, never);
  }
}

TEST_CASE("optimal twists are exact also when the potential has no next-token form", "[sampler]") {
  // psi*_T = phi is then the twist's own last step, corrected by phi / psi_T = 1.
  small_problem p(true);
  optimal_twist psi_star(p.solution);
  hide_next_token_form<random_potential> hidden(p.potential);
  twisted_smc smc(p.model, psi_star, hidden, p.options(8, proposal_type::twisted), systematic{}, always);
  default_engine rng(5);
  for (int run = 0; run < 20; ++run) REQUIRE(std::abs(smc.run(p.problem.prompt, rng).log_z - p.solution.log_z()) < 1e-9);
}

namespace {

/// Runs M independent runs and checks that the mean of Zhat / Z is 1 within z_limit standard
/// errors (the sample standard error of the mean; Zhat is bounded on these problems, so the CLT
/// applies at M = 3000).
template <class Twist, class Pot, class Scheme, class Trigger>
void check_unbiased(small_problem& p, Twist& twist, Pot& potential, proposal_type proposal, Scheme scheme,
                    Trigger trigger, std::size_t particles, std::uint64_t seed) {
  twisted_smc smc(p.model, twist, potential, p.options(particles, proposal), scheme, trigger);
  default_engine rng(seed);
  constexpr int runs = 3000;
  std::vector<double> ratio(runs);
  for (int m = 0; m < runs; ++m) ratio[m] = std::exp(smc.run(p.problem.prompt, rng).log_z - p.solution.log_z());
  const mean_estimate est = mean_and_standard_error(ratio);
  INFO("mean Zhat / Z = " << est.mean << " +- " << est.standard_error);
  REQUIRE(est.standard_error > 0.0);
  REQUIRE(std::abs(est.mean - 1.0) < z_limit * est.standard_error);
}

template <class Scheme>
void check_unbiased_all(Scheme scheme, std::uint64_t seed) {
  for (bool end_token : {false, true}) {
    small_problem p(end_token, 3);
    random_twist twist(99, 1.0);
    no_twist none;
    hide_next_token_form<random_potential> hidden(p.potential);
    for (proposal_type proposal : {proposal_type::base, proposal_type::twisted}) {
      CAPTURE(end_token, proposal == proposal_type::twisted);
      check_unbiased(p, twist, p.potential, proposal, scheme, always, 4, seed++);
      check_unbiased(p, twist, hidden, proposal, scheme, ess_below(0.5), 4, seed++);
      check_unbiased(p, none, p.potential, proposal, scheme, ess_below(0.7), 3, seed++);
    }
  }
}

}  // namespace

TEST_CASE("E[Zhat] = Z: SIS, base and twisted proposals, with and without an end token", "[sampler]") {
  for (bool end_token : {false, true}) {
    small_problem p(end_token, 3);
    random_twist twist(99, 1.0);
    for (proposal_type proposal : {proposal_type::base, proposal_type::twisted}) {
      CAPTURE(end_token, proposal == proposal_type::twisted);
      check_unbiased(p, twist, p.potential, proposal, multinomial{}, never, 4, 1000);
    }
  }
}

TEST_CASE("E[Zhat] = Z with multinomial resampling, every step and by ESS", "[sampler]") { check_unbiased_all(multinomial{}, 2000); }
TEST_CASE("E[Zhat] = Z with systematic resampling", "[sampler]") { check_unbiased_all(systematic{}, 3000); }
TEST_CASE("E[Zhat] = Z with stratified resampling", "[sampler]") { check_unbiased_all(stratified{}, 4000); }
TEST_CASE("E[Zhat] = Z with residual resampling", "[sampler]") { check_unbiased_all(residual{}, 5000); }
TEST_CASE("E[Zhat] = Z with SSP resampling", "[sampler]") { check_unbiased_all(ssp{}, 6000); }
TEST_CASE("E[Zhat] = Z with killing resampling", "[sampler]") { check_unbiased_all(killing{}, 7000); }

TEST_CASE("E[log Zhat] <= log Z <= E[conditional log Zhat] for K = 1, 4, 16, 64", "[sampler]") {
  small_problem p(true, 21);
  random_twist twist(5, 1.5);
  enumeration_sampler exact(p.solution);
  const double log_z = p.solution.log_z();
  for (std::size_t particles : {1u, 4u, 16u, 64u}) {
    CAPTURE(particles);
    twisted_smc smc(p.model, twist, p.potential, p.options(particles, proposal_type::twisted), multinomial{},
                    always);
    default_engine rng(300 + particles);
    const int runs = particles >= 64 ? 300 : 1500;
    std::vector<double> lower(runs), upper(runs);
    for (int m = 0; m < runs; ++m) {
      lower[m] = smc.run(p.problem.prompt, rng).log_z;
      const token_sequence reference = exact.sample(rng);
      upper[m] = smc.run_conditional(p.problem.prompt, reference, rng).log_z;
    }
    const mean_estimate lb = mean_and_standard_error(lower);
    const mean_estimate ub = mean_and_standard_error(upper);
    INFO("lower " << lb.mean << " +- " << lb.standard_error << ", log Z " << log_z << ", upper " << ub.mean
                  << " +- " << ub.standard_error);
    REQUIRE(lb.mean < log_z + z_limit * lb.standard_error);
    REQUIRE(ub.mean > log_z - z_limit * ub.standard_error);
    if (particles == 1) {
      // The gap is large at K = 1: both sides resolve it strictly.
      REQUIRE(lb.mean + z_limit * lb.standard_error < log_z);
      REQUIRE(ub.mean - z_limit * ub.standard_error > log_z);
    }
  }
}

// Consistency: the weighted particles target sigma. The unbiased form is exact at any K:
// E[Zhat sum_k W_k 1{s_k = s}] = Z sigma(s), tested per sequence and jointly (chi-square).
TEST_CASE("the SMC measure is unbiased for Z sigma: E[Zhat sum_k W_k 1{s_k = s}] = Z sigma(s)", "[sampler]") {
  for (bool end_token : {false, true}) {
    CAPTURE(end_token);
    small_problem p(end_token, 41);
    random_twist twist(17, 1.0);
    twisted_smc smc(p.model, twist, p.potential, p.options(8, proposal_type::twisted), systematic{},
                    ess_below(0.5));
    default_engine rng(77);
    const auto sequences = p.solution.sequences();
    std::map<token_sequence, std::size_t> index;
    for (std::size_t i = 0; i < sequences.size(); ++i) index[sequences[i]] = i;
    constexpr int runs = 6000;
    std::vector<std::vector<double>> mass(sequences.size(), std::vector<double>(runs, 0.0));
    for (int m = 0; m < runs; ++m) {
      const smc_result r = smc.run(p.problem.prompt, rng);
      const double z_ratio = std::exp(r.log_z - p.solution.log_z());
      for (std::size_t k = 0; k < r.sequences.size(); ++k)
        mass[index.at(r.sequences[k])][m] += z_ratio * std::exp(r.normalized_log_weights[k]);
    }
    // Bonferroni over at most 39 sequences: |z| < 6 per cell gives 39 * 2e-9 < 1e-7.
    const auto d = static_cast<Eigen::Index>(sequences.size());
    Eigen::VectorXd deviation(d);
    for (std::size_t i = 0; i < sequences.size(); ++i) {
      const mean_estimate est = mean_and_standard_error(mass[i]);
      const double sigma = std::exp(p.solution.log_sigma()[i]);
      INFO("sequence " << i << ": estimate " << est.mean << " +- " << est.standard_error << ", sigma " << sigma);
      REQUIRE(std::abs(est.mean - sigma) < 6.0 * est.standard_error + 1e-12);
      deviation[static_cast<Eigen::Index>(i)] = est.mean - sigma;
    }
    // Jointly: Hotelling's T^2 = M dev' S^-1 dev of the mean vector against sigma is chi-square
    // with d degrees of freedom for large M (the per-run vectors are bounded, M = 6000 >> d).
    // Threshold: the Wilson-Hilferty chi-square quantile at normal z = 5 (tail 2.9e-7).
    Eigen::MatrixXd centred(runs, d);
    for (Eigen::Index i = 0; i < d; ++i) {
      const double mean = deviation[i] + std::exp(p.solution.log_sigma()[static_cast<std::size_t>(i)]);
      for (int m = 0; m < runs; ++m) centred(m, i) = mass[static_cast<std::size_t>(i)][static_cast<std::size_t>(m)] - mean;
    }
    const Eigen::MatrixXd covariance = centred.transpose() * centred / (runs - 1.0);
    const double t2 = runs * deviation.dot(covariance.ldlt().solve(deviation));
    const double df = static_cast<double>(d);
    const double quantile = df * std::pow(1.0 - 2.0 / (9.0 * df) + 5.0 * std::sqrt(2.0 / (9.0 * df)), 3.0);
    INFO("Hotelling T^2 = " << t2 << " against the chi-square(" << d << ") quantile " << quantile);
    REQUIRE(t2 < quantile);
  }
}

TEST_CASE("reorder copies exactly one slot per dead particle", "[sampler]") {
  small_problem p(false, 5, 4);
  random_twist twist(3, 2.0);
  struct dead_counter {
    std::size_t dead = 0;
    void on_resample(std::size_t /*step*/, std::span<const particle_index> ancestors) {
      std::vector<int> survives(ancestors.size(), 0);
      for (auto a : ancestors) survives[a] = 1;
      for (std::size_t k = 0; k < ancestors.size(); ++k) {
        dead += survives[k] ? 0 : 1;
        REQUIRE((!survives[k] || ancestors[k] == k));  // survivors keep their slot
      }
    }
  };
  twisted_smc smc(p.model, twist, p.potential, p.options(32, proposal_type::twisted), multinomial{}, always);
  default_engine rng(8);
  for (int run = 0; run < 10; ++run) {
    dead_counter counter;
    (void)smc.run(p.problem.prompt, rng, counter);
    REQUIRE(counter.dead > 0);
    REQUIRE(p.model.copies() == counter.dead);
  }
}
