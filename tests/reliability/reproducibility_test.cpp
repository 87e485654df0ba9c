// [reliability] Reproducibility (issue 19, item 8): a seed gives bit-identical results across
// runs, across OpenMP thread counts and with or without the llama2.c cache's reorder
// optimisation; golden digests of a sampler run and of a short CTL training run are checked.
//
// The digests hash every bit of the results (FNV-1a 64 over the tokens and the doubles' bit
// patterns). They were recorded on x86-64 with glibc's libm (g++ 12 -O3 and clang 14 -O1 give
// the same bits: no FMA contraction on baseline x86-64); on another platform a mismatch prints
// the new digest, and the run-to-run and thread-count checks still apply.
//
// Per instruction set (issue 29): built for the host (TSMC_NATIVE, -march=native) the digests
// change, because Eigen's packets widen (4 or 8 doubles instead of 2, so its sums and exp round
// differently; -ffp-contract=off does not restore them: measured, the plain and conditional
// digests are the same with and without it, and the CTL digest changes again) and the compiler
// contracts a * b + c into FMAs. So a second set is recorded for one host: g++ -march=native on
// an AMD EPYC with AVX-512 (Zen 4, which g++ 12 calls znver3 plus AVX-512). Other non-baseline
// builds (another CPU's tuning, or clang, whose FMA contraction differs) print their digests and
// check only run-to-run and thread-count identity. TSMC_NATIVE is on by default (issue 29), so
// this is the set the project's own build on that machine checks.
#if defined(__AVX512F__) && defined(__AVX512DQ__) && defined(__FMA__) && defined(__znver3__) && !defined(__clang__)
#define TSMC_TEST_DIGEST_SET 1  // AVX-512 + FMA
#elif defined(__AVX__) || defined(__FMA__)
#define TSMC_TEST_DIGEST_SET 2  // another vector ISA: no recorded digests
#else
#define TSMC_TEST_DIGEST_SET 0  // baseline x86-64 (SSE2)
#endif

#include "learning/learning_fixtures.hpp"
#include "models/llama2c_test_support.hpp"
#include "smc/sampler_fixtures.hpp"

#include <tsmc/core/checksum.hpp>
#include <tsmc/learning/adam.hpp>
#include <tsmc/learning/objectives.hpp>
#include <tsmc/learning/trainer.hpp>
#include <tsmc/models/llama2c.hpp>
#include <tsmc/resampling/schemes.hpp>
#include <tsmc/resampling/triggers.hpp>
#include <tsmc/smc/sampler.hpp>
#include <tsmc/testing/toy_potentials.hpp>
#include <tsmc/twists/no_twist.hpp>
#include <tsmc/twists/tabular_twist.hpp>

#include <catch2/catch.hpp>

#include <bit>
#include <cstdint>
#include <iomanip>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace {

using namespace tsmc_test;

// FNV-1a 64 over a stream of 64-bit words (little-endian bytes).
class digest {
 public:
  void word(std::uint64_t w) {
    unsigned char bytes[8];
    for (int i = 0; i < 8; ++i) bytes[i] = static_cast<unsigned char>(w >> (8 * i));
    for (const unsigned char b : bytes) {
      h_ ^= b;
      h_ *= 0x100000001b3ULL;
    }
  }
  void number(double x) { word(std::bit_cast<std::uint64_t>(x)); }
  void numbers(const std::vector<double>& xs) {
    word(xs.size());
    for (const double x : xs) number(x);
  }
  void tokens(std::span<const token> t) {
    word(t.size());
    for (const token x : t) word(static_cast<std::uint64_t>(static_cast<std::uint32_t>(x)));
  }
  [[nodiscard]] std::uint64_t value() const { return h_; }

 private:
  std::uint64_t h_ = 0xcbf29ce484222325ULL;
};

// Every output of a run, bit for bit (timings excluded).
std::uint64_t digest_of(const smc_result& r) {
  digest d;
  d.word(r.sequences.size());
  for (const auto& s : r.sequences) d.tokens(s);
  d.numbers(r.log_weights);
  d.numbers(r.normalized_log_weights);
  d.numbers(r.log_proposal);
  d.number(r.log_z);
  d.numbers(r.ess);
  d.numbers(r.log_z_increments);
  d.word(r.resampled.size());
  for (const auto x : r.resampled) d.word(x);
  d.word(r.steps);
  return d.value();
}

std::string hex(std::uint64_t x) { return "0x" + detail::checksum_hex(x); }

void set_threads(int n) {
#ifdef _OPENMP
  omp_set_num_threads(n);
#else
  (void)n;
#endif
}

int max_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

// A toy problem with V = 5 tokens, horizon 6, end token 4, a random twist and resampling.
struct toy_run {
  toy_problem problem{5, 6, token_sequence{1, 0}, token{4}};
  tabular_model model{5, 21, 1.0};
  random_potential potential{22, 1.0};
  random_twist twist{23, 0.7};

  std::uint64_t plain(std::uint64_t seed) {
    twisted_smc smc(model, twist, potential, smc_options{.particles = 64, .horizon = 6, .end_token = 4}, systematic{},
                    ess_below(0.6));
    default_engine rng(seed);
    const smc_result r = smc.run(problem.prompt, rng);
    REQUIRE(std::count(r.resampled.begin(), r.resampled.end(), std::uint8_t{1}) > 0);
    return digest_of(r);
  }
  std::uint64_t conditional(std::uint64_t seed) {
    twisted_smc smc(model, twist, potential, smc_options{.particles = 64, .horizon = 6, .end_token = 4}, systematic{},
                    ess_below(0.6));
    default_engine rng(seed);
    const token_sequence reference{0, 2, 3, 4};
    return digest_of(smc.run_conditional(problem.prompt, reference, rng));
  }
};

// Parameters after `updates` CTL updates on the learning toy (tabular twist, Adam), hashed.
std::uint64_t ctl_digest(std::size_t updates, std::uint64_t seed) {
  learning_toy toy(true, 31);
  tabular_twist twist(3, 3);
  auto problem = toy.learning(twist, 32);
  ctl<> objective;
  adam optimizer(adam_options{.learning_rate = 0.05});
  default_engine rng(seed);
  const training_history h = train(problem, objective, optimizer, training_options{.updates = updates}, rng);
  REQUIRE(h.records.size() == updates);
  digest d;
  for (const auto& b : twist.parameters())
    for (Eigen::Index i = 0; i < b.values.size(); ++i) d.number(b.values[i]);
  for (const auto& r : h.records) d.number(r.loss);
  return d.value();
}

}  // namespace

TEST_CASE("golden digests of a twisted SMC run and a conditional run, any run or thread count", "[reliability]") {
  const int saved = max_threads();
  toy_run toy;
  set_threads(1);
  const std::uint64_t plain1 = toy.plain(2024), conditional1 = toy.conditional(2025);
  CHECK(toy.plain(2024) == plain1);  // run to run, same process
  CHECK(toy.conditional(2025) == conditional1);
  set_threads(2);
  CHECK(toy.plain(2024) == plain1);
  CHECK(toy.conditional(2025) == conditional1);
  set_threads(saved);
  CHECK(toy.plain(2026) != plain1);  // the digest sees the seed
  INFO("plain " << hex(plain1) << ", conditional " << hex(conditional1));
#if TSMC_TEST_DIGEST_SET == 0
  CHECK(plain1 == 0xa398de8c69703f21ULL);
  CHECK(conditional1 == 0x28938da9430ace36ULL);
#elif TSMC_TEST_DIGEST_SET == 1
  CHECK(plain1 == 0xfab93848425f5102ULL);
  CHECK(conditional1 == 0xa7aed277bd9bbb53ULL);
#else
  WARN("no golden digests recorded for this instruction set: plain " << hex(plain1) << ", conditional "
                                                                       << hex(conditional1));
#endif
}

TEST_CASE("golden digest of a short CTL training run: its parameters after 8 updates", "[reliability]") {
  const int saved = max_threads();
  set_threads(1);
  const std::uint64_t one = ctl_digest(8, 77);
  CHECK(ctl_digest(8, 77) == one);
  set_threads(2);
  CHECK(ctl_digest(8, 77) == one);
  set_threads(saved);
  CHECK(ctl_digest(7, 77) != one);
  INFO("CTL " << hex(one));
#if TSMC_TEST_DIGEST_SET == 0
  CHECK(one == 0xe19f42fb335fcc89ULL);  // issue 27: CTL reports sum_t log Zhat_t (was + T log K)
#elif TSMC_TEST_DIGEST_SET == 1
  CHECK(one == 0x7bcd87c471f37878ULL);  // recorded with g++ 12 -O3 -march=native after issue 27's loss change
#else
  WARN("no golden digest recorded for this instruction set: CTL " << hex(one));
#endif
}

TEST_CASE("llama2c: plain and optimised cache reorders give bit-identical runs", "[reliability]") {
  llama2c_test::temp_dir dir;
  const auto path = dir.file("reorder.bin");
  tsmc::llama2c::make_random_checkpoint(path, llama2c_test::tiny_gqa_unshared(), 13, 2.0);
  const auto weights = std::make_shared<const tsmc::llama2c::checkpoint>(path);
  const token_sequence prompt{1, 5, 9};
  struct cheap_potential {
    void log_potential(std::span<const token_sequence> s, std::span<double> out) const {
      for (std::size_t k = 0; k < s.size(); ++k) out[k] = -0.3 * static_cast<double>(s[k].back() % 5);
    }
  };
  const auto runs = [&](bool plain, int threads, std::size_t& copied) {
    set_threads(threads);
    tsmc::llama2c::model m(weights);
    m.set_plain_reorder(plain);
    no_twist none;
    cheap_potential phi;
    twisted_smc smc(m, none, phi, smc_options{.particles = 24, .horizon = 12}, multinomial{}, always);
    default_engine rng(8);
    const smc_result r = smc.run(prompt, rng);
    copied = m.copied_slots();
    const smc_result c = smc.run_conditional(prompt, r.sequences[3], rng);
    copied += m.copied_slots();
    return std::pair{digest_of(r), digest_of(c)};
  };
  const int saved = max_threads();
  std::size_t copied_fast = 0, copied_plain = 0, ignored = 0;
  const auto fast = runs(false, 1, copied_fast);
  const auto plain = runs(true, 1, copied_plain);
  const auto fast2 = runs(false, 2, ignored);
  const auto plain2 = runs(true, 2, ignored);
  set_threads(saved);
  CHECK(copied_fast > 0);                  // the optimised form copied some dead slots...
  CHECK(copied_plain == 24 * 2 * 11);      // ...the plain form every slot at each of 11 reorders per run
  CHECK(plain.first == fast.first);        // plain run
  CHECK(plain.second == fast.second);      // conditional run
  CHECK(fast2 == fast);
  CHECK(plain2 == fast);

  // The models' states themselves after reorders with slot-stable ancestors, a permutation (a
  // source overwritten: the snapshot path) and the identity: the hidden states (features()) and
  // the next log-probabilities (which read the caches) agree bit for bit.
  tsmc::llama2c::model a(weights), b(weights);
  b.set_plain_reorder(true);
  for (auto* m : {&a, &b}) {
    m->start(prompt, 4);
    m->append(token_sequence{3, 4, 5, 6});
    m->append(token_sequence{7, 8, 9, 10});
  }
  for (const std::vector<particle_index>& ancestors :
       {std::vector<particle_index>{0, 0, 2, 2}, std::vector<particle_index>{3, 2, 1, 0},
        std::vector<particle_index>{0, 1, 2, 3}}) {
    a.reorder(ancestors);
    b.reorder(ancestors);
    CHECK(a.features() == b.features());
    a.append(token_sequence{11, 12, 13, 14});
    b.append(token_sequence{11, 12, 13, 14});
    log_prob_matrix la(4, a.vocab_size()), lb(4, b.vocab_size());
    a.log_probs(la);
    b.log_probs(lb);
    CHECK(la == lb);
    a.reorder(ancestors);  // now without an append after it: the features are what the next log_probs reads
    b.reorder(ancestors);
    CHECK(a.features() == b.features());
    a.log_probs(la);
    b.log_probs(lb);
    CHECK(la == lb);
  }
}
