// Constraints on the llama2.c model at the stories15M shape (dim 288, 6 layers, vocab 32000,
// random weights written once to a temporary file) with a 32000-token tokenizer (specials, the 256
// byte tokens, letter / space / punctuation / UTF-8 pieces), K = 64 particles:
//   model_step/K:64             one model step: log_probs (K x V) and append (the baseline)
//   next_token_form/K:64        the regex's exact next-token form for all K particles (dfa_potential::
//                               log_potential_next: each particle's lifted state from its prefix and
//                               its K x V row from the cached next-state rows), warm cache
//   brute_force_mask/K:64       the same mask by brute force: every token's decoded bytes run through
//                               the DFA from each particle's state (K x V DFA runs)
//   trie_rows/K:64              the cache-cold cost: one trie walk per particle's state (no cache)
//   base_smc/K:64/T:64          a whole base-SMC run (q = p0, no twist), systematic at ESS < K/2,
//                               potential: a cheap sequence potential
//   constrained_smc/K:64/T:64   the same run constrained: feasibility_twist<no_twist> and the regex's
//                               dfa_potential (its next-token form at the last step)
// Prefixes for the mask cases: 64 prefixes of 12 tokens drawn along live tokens of the regex.
// After the table: CPU-time ratios to the baseline measured in the same run (next_token_form,
// brute_force_mask and trie_rows to model_step; constrained_smc to base_smc; brute_force_mask to
// next_token_form as a second row is printed by --benchmark_filter on it).
// Goals (issue 25): next_token_form <= 0.05 x model_step; brute_force_mask >= 20 x next_token_form;
// constrained_smc <= 1.1 x base_smc.
//   ./build/dev/benchmarks/bench_constraints --benchmark_min_time=0.05
#include "ratio_reporter.hpp"

#include <tsmc/constraints/regex.hpp>
#include <tsmc/constraints/token_bytes.hpp>
#include <tsmc/constraints/token_dfa.hpp>
#include <tsmc/core/random.hpp>
#include <tsmc/models/llama2c.hpp>
#include <tsmc/models/llama2c_tokenizer.hpp>
#include <tsmc/resampling/schemes.hpp>
#include <tsmc/resampling/triggers.hpp>
#include <tsmc/smc/sampler.hpp>
#include <tsmc/twists/no_twist.hpp>

#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <set>
#include <string>
#include <system_error>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace {

using tsmc::llama2c::config;

const config stories15m{.dim = 288, .hidden_dim = 768, .n_layers = 6, .n_heads = 6, .n_kv_heads = 6,
                        .vocab_size = 32000, .seq_len = 256, .shared_classifier = true};
const config tiny{.dim = 16, .hidden_dim = 32, .n_layers = 1, .n_heads = 2, .n_kv_heads = 2, .vocab_size = 32000,
                  .seq_len = 80, .shared_classifier = true};

/// The regular expression of every case: a story sentence.
constexpr const char* pattern = "(Once upon a time|One day), [a-z]+( [a-z,]+){2,40}\\.( [A-Za-z ,]+\\.)?";

/// Files written once per process to the temporary directory and removed at exit.
class shared_files {
 public:
  explicit shared_files(const config& c) {
    const std::string stamp =
        std::to_string(static_cast<unsigned long long>(std::chrono::steady_clock::now().time_since_epoch().count()));
    model_path_ = std::filesystem::temp_directory_path() / ("tsmc_bench_constraints_" + std::to_string(c.dim) + "_" + stamp + ".bin");
    tokenizer_path_ = std::filesystem::temp_directory_path() / ("tsmc_bench_constraints_tok_" + stamp + ".bin");
    tsmc::llama2c::make_random_checkpoint(model_path_, c, 2024);
    weights_ = std::make_shared<const tsmc::llama2c::checkpoint>(model_path_);
    std::vector<std::string> pieces = {"<unk>", "\n<s>\n", "\n</s>\n"};
    for (int b = 0; b < 256; ++b) {
      char name[8];
      std::snprintf(name, sizeof name, "<0x%02X>", b);
      pieces.emplace_back(name);
    }
    std::set<std::string> seen(pieces.begin(), pieces.end());
    const std::vector<std::string> alphabet = {"a", "b", "c", "d", "e", "h", "i", "n", "o", "r", "s", "t", "u",
                                               " ", " ", " ", ",", ".", "O", "T", "é", "ж", "中", "\n"};
    tsmc::default_engine rng(2026);
    for (const char* w : {" Once", " upon", " a", " time", " One", " day", ",", "."})
      if (seen.insert(w).second) pieces.emplace_back(w);
    while (pieces.size() < 32000) {
      std::string p;
      const std::size_t length = 1 + static_cast<std::size_t>(tsmc::uniform01(rng) * 7);
      for (std::size_t i = 0; i < length; ++i)
        p += alphabet[static_cast<std::size_t>(tsmc::uniform01(rng) * static_cast<double>(alphabet.size()))];
      if (seen.insert(p).second) pieces.push_back(p);
    }
    std::vector<float> scores(pieces.size(), 0.0f);
    tsmc::llama2c::write_tokenizer(tokenizer_path_, pieces, scores);
    tokenizer_ = std::make_unique<tsmc::llama2c::tokenizer>(tokenizer_path_, 32000);
  }
  shared_files(const shared_files&) = delete;
  shared_files& operator=(const shared_files&) = delete;
  ~shared_files() {
    weights_.reset();
    std::error_code ec;
    std::filesystem::remove(model_path_, ec);
    std::filesystem::remove(tokenizer_path_, ec);
  }
  [[nodiscard]] const std::shared_ptr<const tsmc::llama2c::checkpoint>& weights() const { return weights_; }
  [[nodiscard]] const tsmc::llama2c::tokenizer& tokenizer() const { return *tokenizer_; }

 private:
  std::filesystem::path model_path_, tokenizer_path_;
  std::shared_ptr<const tsmc::llama2c::checkpoint> weights_;
  std::unique_ptr<tsmc::llama2c::tokenizer> tokenizer_;
};

const shared_files& files(bool small) {
  if (small) {
    static const shared_files instance(tiny);
    return instance;
  }
  static const shared_files instance(stories15m);
  return instance;
}

bool is_small(const benchmark::State& state) { return state.range(1) != 0; }

/// K prefixes of `length` tokens along live tokens of the constraint (a fixed seed).
std::vector<tsmc::token_sequence> live_prefixes(tsmc::token_dfa& c, std::size_t K, std::size_t length) {
  tsmc::default_engine rng(5);
  std::vector<tsmc::token_sequence> prefixes(K);
  for (auto& p : prefixes) {
    for (std::size_t i = 0; i < length; ++i) {
      const auto next = c.next_states(c.run(p));
      std::vector<tsmc::token> live;
      for (std::size_t v = 0; v < next.size(); ++v)
        if (next[v] != tsmc::token_dfa::dead && !c.is_end(static_cast<tsmc::token>(v))) live.push_back(static_cast<tsmc::token>(v));
      if (live.empty()) break;
      p.push_back(live[static_cast<std::size_t>(tsmc::uniform01(rng) * static_cast<double>(live.size()))]);
    }
  }
  return prefixes;
}

const std::vector<tsmc::token> prompt{1};

void model_step_case(benchmark::State& state) {
  const auto K = static_cast<std::size_t>(state.range(0));
  tsmc::llama2c::model m(files(is_small(state)).weights());
  tsmc::log_prob_matrix out(static_cast<Eigen::Index>(K), static_cast<Eigen::Index>(m.vocab_size()));
  std::vector<tsmc::token> tokens(K, 5);
  m.start(prompt, K);
  std::size_t length = 1;
  for (auto _ : state) {
    if (length + 1 >= m.max_length()) {
      state.PauseTiming();
      m.start(prompt, K);
      length = 1;
      state.ResumeTiming();
    }
    m.log_probs(out);
    m.append(tokens);
    ++length;
    benchmark::DoNotOptimize(out.data());
  }
}

/// The mask cases share a constraint and its prefixes.
struct mask_fixture {
  tsmc::token_dfa constraint;
  std::vector<tsmc::token_sequence> prefixes;
  std::vector<std::uint8_t> active;
  explicit mask_fixture(bool small, std::size_t K)
      : constraint(tsmc::make_regex_constraint(pattern, files(small).tokenizer(), {tsmc::llama2c::tokenizer::eos})),
        prefixes(live_prefixes(constraint, K, 12)),
        active(K, 1) {}
};

void next_token_form_case(benchmark::State& state) {
  const auto K = static_cast<std::size_t>(state.range(0));
  const bool small = is_small(state);
  mask_fixture f(small, K);
  tsmc::llama2c::model m(files(small).weights());
  tsmc::dfa_potential phi(f.constraint);
  tsmc::log_prob_matrix out(static_cast<Eigen::Index>(K), 32000);
  const tsmc::step_context<tsmc::llama2c::model> ctx{13, 64, prompt, f.prefixes, f.active, m};
  phi.log_potential_next(ctx, out);  // fills the cache
  for (auto _ : state) {
    phi.log_potential_next(ctx, out);
    benchmark::DoNotOptimize(out.data());
  }
}

void brute_force_mask_case(benchmark::State& state) {
  const auto K = static_cast<std::size_t>(state.range(0));
  mask_fixture f(is_small(state), K);
  const tsmc::byte_dfa& dfa = f.constraint.dfa();
  const tsmc::token_byte_table& table = f.constraint.table();
  tsmc::log_prob_matrix out(static_cast<Eigen::Index>(K), 32000);
  for (auto _ : state) {
    for (std::size_t k = 0; k < K; ++k) {
      // The particle's text state (text_mode::middle after 12 tokens), then every candidate's bytes.
      const std::int32_t q = dfa.run(dfa.start, table.decode(f.prefixes[k]));
      for (std::size_t v = 0; v < 32000; ++v) {
        const std::int32_t after = dfa.run(q, table.bytes[v]);
        out(static_cast<Eigen::Index>(k), static_cast<Eigen::Index>(v)) =
            after == tsmc::byte_dfa::dead ? -std::numeric_limits<double>::infinity() : 0.0;
      }
    }
    benchmark::DoNotOptimize(out.data());
  }
}

void trie_rows_case(benchmark::State& state) {
  const auto K = static_cast<std::size_t>(state.range(0));
  const bool small = is_small(state);
  mask_fixture f(small, K);
  std::vector<tsmc::token_dfa::state> states(K);
  for (std::size_t k = 0; k < K; ++k) states[k] = f.constraint.run(f.prefixes[k]);
  for (auto _ : state) {
    state.PauseTiming();
    tsmc::token_dfa fresh = tsmc::make_regex_constraint(pattern, files(small).tokenizer(), {tsmc::llama2c::tokenizer::eos});
    state.ResumeTiming();
    for (std::size_t k = 0; k < K; ++k) benchmark::DoNotOptimize(fresh.next_states(states[k]).data());
    state.PauseTiming();
    { tsmc::token_dfa gone = std::move(fresh); }
    state.ResumeTiming();
  }
}

/// A cheap sequence potential for the unconstrained run.
struct cheap_potential {
  void log_potential(std::span<const tsmc::token_sequence> s, std::span<double> out) const {
    for (std::size_t k = 0; k < s.size(); ++k) out[k] = s[k].empty() ? 0.0 : -0.1 * static_cast<double>(s[k].back() % 7);
  }
};

void base_smc_case(benchmark::State& state) {
  const auto K = static_cast<std::size_t>(state.range(0));
  const std::size_t T = is_small(state) ? 16 : 64;
  tsmc::llama2c::model m(files(is_small(state)).weights());
  tsmc::no_twist none;
  cheap_potential phi;
  tsmc::twisted_smc smc(m, none, phi, tsmc::smc_options{.particles = K, .horizon = T, .proposal = tsmc::proposal_type::base,
                                                         .end_token = tsmc::llama2c::tokenizer::eos},
                        tsmc::systematic{}, tsmc::ess_below(0.5));
  tsmc::default_engine rng(3);
  for (auto _ : state) {
    const tsmc::smc_result r = smc.run(prompt, rng);
    benchmark::DoNotOptimize(r.log_z);
    state.counters["steps"] = static_cast<double>(r.steps);
  }
}

/// A constraint every valid UTF-8 text meets: with it a constrained run makes the same number of
/// steps as the base run (the story pattern's runs end early: most random-model particles die),
/// so the ratio to base_smc is the constraint's cost per step (the lifted rows, the feasibility
/// twist's gather, the potential's next-token form).
constexpr const char* permissive_pattern = "[^\\x00]*";

template <const char* const* Pattern>
void constrained_smc_case(benchmark::State& state) {
  const auto K = static_cast<std::size_t>(state.range(0));
  const bool small = is_small(state);
  const std::size_t T = small ? 16 : 64;
  tsmc::llama2c::model m(files(small).weights());
  tsmc::token_dfa c = tsmc::make_regex_constraint(*Pattern, files(small).tokenizer(), {tsmc::llama2c::tokenizer::eos});
  tsmc::feasibility_twist<tsmc::no_twist> twist(c, tsmc::no_twist{});
  tsmc::dfa_potential phi(c);
  tsmc::twisted_smc smc(m, twist, phi, tsmc::smc_options{.particles = K, .horizon = T, .proposal = tsmc::proposal_type::base,
                                                          .end_token = tsmc::llama2c::tokenizer::eos},
                        tsmc::systematic{}, tsmc::ess_below(0.5));
  tsmc::default_engine rng(3);
  for (auto _ : state) {
    const tsmc::smc_result r = smc.run(prompt, rng);
    benchmark::DoNotOptimize(r.log_z);
    state.counters["cached_states"] = static_cast<double>(c.cached_states());
    state.counters["steps"] = static_cast<double>(r.steps);
  }
}

constexpr const char* const story_pattern_ref = pattern;
constexpr const char* const permissive_pattern_ref = permissive_pattern;

}  // namespace

BENCHMARK(model_step_case)->Name("model_step")->ArgNames({"K", "small"})->Args({64, 0});
BENCHMARK(next_token_form_case)->Name("next_token_form")->ArgNames({"K", "small"})->Args({64, 0});
BENCHMARK(brute_force_mask_case)->Name("brute_force_mask")->ArgNames({"K", "small"})->Args({64, 0});
BENCHMARK(trie_rows_case)->Name("trie_rows")->ArgNames({"K", "small"})->Args({64, 0});
BENCHMARK(base_smc_case)->Name("base_smc")->ArgNames({"K", "small"})->Args({64, 0})->Unit(benchmark::kMillisecond);
BENCHMARK(constrained_smc_case<&story_pattern_ref>)->Name("constrained_smc")->ArgNames({"K", "small"})->Args({64, 0})->Unit(benchmark::kMillisecond);
BENCHMARK(constrained_smc_case<&permissive_pattern_ref>)->Name("permissive_smc")->ArgNames({"K", "small"})->Args({64, 0})->Unit(benchmark::kMillisecond);
// Smoke cases (the ctest filter selects these): a tiny model (V = 32000 still), K = 16.
BENCHMARK(model_step_case)->Name("smoke_model_step")->Args({16, 1});
BENCHMARK(next_token_form_case)->Name("smoke_next_token_form")->Args({16, 1});
BENCHMARK(brute_force_mask_case)->Name("smoke_brute_force_mask")->Args({16, 1});
BENCHMARK(constrained_smc_case<&story_pattern_ref>)->Name("smoke_constrained_smc")->Args({16, 1});

int main(int argc, char** argv) {
  tsmc_bench::initialize(
      &argc, argv,
      "bench_constraints: a regex constraint on the llama2.c model at the stories15M shape (random weights,\n"
      "V = 32000, a 32000-token tokenizer), K = 64 particles.\n"
      "  model_step/K:64/small:0        one model step, log_probs + append (the baseline)\n"
      "  next_token_form/K:64/small:0   the regex's exact next-token form for K particles (cached rows)\n"
      "  brute_force_mask/K:64/small:0  the same mask by running every token's bytes through the DFA\n"
      "  trie_rows/K:64/small:0         cold rows: one trie walk per particle state (no cache)\n"
      "  base_smc/K:64/small:0          a base-SMC run, T = 64, no twist, a cheap potential\n"
      "  constrained_smc/K:64/small:0   the same run with feasibility_twist<no_twist> and the regex potential\n"
      "                                 (its particles die early on the random model: fewer steps)\n"
      "  permissive_smc/K:64/small:0    the same with a regex every text meets: as many steps as base_smc\n"
      "  smoke_*/16/1              the same code on a tiny model (ctest smoke run)\n"
      "After the table: CPU-time ratios to the baseline measured in the same run.\n"
      "Goals: next_token_form <= 0.05 x model_step; brute_force_mask >= 20 x next_token_form;\n"
      "constrained_smc (as permissive_smc, the like-for-like run) <= 1.1 x base_smc. Single-threaded (omp_set_num_threads(1)).\n"
      "Typical: bench_constraints --benchmark_min_time=0.05");
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
#ifdef _OPENMP
  omp_set_num_threads(1);
#endif
  using baseline = tsmc_bench::ratio_reporter::baseline;
  tsmc_bench::ratio_reporter reporter([](const std::string& name) -> baseline {
    const auto slash = name.find('/');
    const std::string family = name.substr(0, slash), rest = name.substr(slash);
    if (family == "next_token_form" || family == "trie_rows") return {"model_step" + rest, 1.0};
    if (family == "brute_force_mask") return {"next_token_form" + rest, 1.0};
    if (family == "constrained_smc" || family == "permissive_smc") return {"base_smc" + rest, 1.0};
    if (family == "smoke_next_token_form") return {"smoke_model_step" + rest, 1.0};
    if (family == "smoke_brute_force_mask") return {"smoke_next_token_form" + rest, 1.0};
    return {};
  });
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
}
