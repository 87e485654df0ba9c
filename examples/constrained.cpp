// constrained: sample continuations that satisfy a hard constraint, a regular expression over the
// generated text and / or "contains one of these words", or a context-free grammar (GBNF), on the built-in world (a Kneser-Ney
// trigram over the story grammar's words) or on a llama2.c checkpoint with its tokenizer.
//
// The constraint is lifted to the model's vocabulary (tsmc::token_dfa); twisted SMC runs with the
// feasibility twist (psi = 0 exactly where no continuation within the tokens left can match) and
// the constraint's exact potential. Printed: the acceptance rate of plain sampling (rejection from
// p0, whose accepted draws are exact samples of the target), ESS, bounds on log Z (SMC runs and
// conditional runs seeded with those exact samples), samples with their weights, and the cost per
// generated token with and without the constraint.
//
//   ./build/dev/examples/constrained --contains dog,cat
//   ./build/dev/examples/constrained --regex "the [a-z ]*(dog|cat)[a-z ]*" --horizon 12
//   ./build/dev/examples/constrained --grammar arithmetic --llama2c stories15M.bin --tokenizer tokenizer.bin
//   ./build/dev/examples/constrained --llama2c stories15M.bin --tokenizer tokenizer.bin
//       --regex " [A-Za-z ,]*(dog|cat)[A-Za-z ,]*\." --horizon 40
//
// The regex applies to the generated text alone: for the word models the words joined by spaces
// (no leading space), for llama2.c the pieces as they follow the prompt (a leading space kept).
// A constraint that no continuation within the horizon can satisfy is an error before sampling.
#include "example_models.hpp"
#include "example_world.hpp"

#include <tsmc/constraints/grammar.hpp>
#include <tsmc/constraints/grammars.hpp>
#include <tsmc/constraints/lexical.hpp>
#include <tsmc/constraints/regex.hpp>
#include <tsmc/constraints/token_bytes.hpp>
#include <tsmc/constraints/token_dfa.hpp>
#include <tsmc/all.hpp>

#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <type_traits>
#include <vector>

namespace {

struct settings {
  std::size_t corpus = 5000;
  std::string regex;
  std::string grammar;
  std::vector<std::string> contains;
  std::size_t horizon = 12;
  std::size_t particles = 64;
  std::size_t runs = 20;
  std::size_t samples = 5;
  std::size_t rejection_budget = 200'000;
  std::uint64_t seed = 7;
  std::string csv, json;
  tsmc_examples::model_options model;
};

/// A cheap potential for the unconstrained comparison run (phi = 1).
struct unit_potential {
  void log_potential(std::span<const tsmc::token_sequence>, std::span<double> out) const {
    std::fill(out.begin(), out.end(), 0.0);
  }
};

}  // namespace

template <class World>
int run(const tsmc_examples::program& p, const settings& s, World& w);

template <class World, class Lifted>
int run_constrained(const tsmc_examples::program& p, const settings& s, World& w, Lifted& constraint,
                    const std::string& what);

int main(int argc, char** argv) {
  settings s;
  tsmc_examples::program p("constrained",
                           "constrained: twisted SMC whose samples satisfy a regular expression and / or contain one "
                           "of given words; acceptance rate of plain sampling, ESS, bounds on log Z, samples, cost "
                           "per token");
  using tsmc_examples::limits;
  CLI::Option* regex = p.app().add_option("--regex", s.regex,
                     "the generated text must match this regular expression fully (syntax: "
                     "include/tsmc/constraints/regex.hpp)");
  CLI::Option* contains =
      p.app()
          .add_option("--contains", s.contains, "the generated text must contain one of these words or phrases")
          ->delimiter(',');
  CLI::Option* grammar = p.text("--grammar", s.grammar,
                                "the generated text must match this context-free grammar (GBNF, "
                                "include/tsmc/constraints/grammar.hpp): 'json', 'arithmetic' (the grammars of "
                                "include/tsmc/constraints/grammars.hpp) or a .gbnf file");
  grammar->excludes(contains);
  grammar->excludes(regex);
  p.count("--horizon", s.horizon, 1, limits::horizon_max, "T, the most generated tokens");
  p.count("--particles", s.particles, 1, limits::particles_max, "K");
  p.count("--runs", s.runs, 1, limits::runs_max, "SMC runs (and conditional runs) for the bounds");
  p.count("--samples", s.samples, 0, limits::samples_max, "samples to print");
  p.count("--rejection-budget", s.rejection_budget, 1, limits::rejection_budget_max,
          "the most plain p0 draws for the acceptance rate and the exact samples");
  p.count("--corpus", s.corpus, limits::corpus_min, limits::corpus_max, "sentences of the built-in corpus");
  p.seed("--seed", s.seed, "random seed");
  p.output("--csv", s.csv, "write the summary as CSV");
  p.output("--json", s.json, "write the summary and the samples as JSON");
  tsmc_examples::add_model_options(p, s.model);
  if (const auto status = p.parse(argc, argv)) return *status;
  if (s.regex.empty() && s.contains.empty() && s.grammar.empty()) s.contains = {"dog", "cat"};
  return tsmc_examples::with_model(p, s.model, s.corpus, s.horizon, [&](auto& w) { return run(p, s, w); });
}

template <class World>
int run(const tsmc_examples::program& p, const settings& s, World& w) {
  using model_type = std::remove_cvref_t<decltype(w.model)>;
  constexpr bool is_transformer = !std::is_same_v<model_type, tsmc::ngram_model>;  // --llama2c or --gguf
  if (!w.builtin) std::printf("%s\n", w.description.c_str());
  tsmc::token_byte_table table = w.token_bytes();
  std::vector<tsmc::token> ends;  // the world's end token (</s>, BOS or the GGUF EOS), if it has one
  if (w.end_token) ends.push_back(*w.end_token);
  ends.insert(ends.end(), w.end_tokens.begin(), w.end_tokens.end());
  // After a transformer's prompt the continuation keeps its first piece's leading space.
  const tsmc::text_mode mode = is_transformer ? tsmc::text_mode::middle : tsmc::text_mode::start;
  if (!s.grammar.empty()) {
    // A context-free grammar, recognised by Earley over bytes and lifted to the model's tokens.
    std::string text;
    if (s.grammar == "json") {
      text = tsmc::grammars::json;
    } else if (s.grammar == "arithmetic") {
      text = tsmc::grammars::arithmetic;
    } else {
      std::ifstream in(s.grammar, std::ios::binary);
      if (!in) throw tsmc_examples::option_error("--grammar " + tsmc_examples::quote_value(s.grammar) +
                                                 " is not 'json', 'arithmetic' or a readable file");
      text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
    const auto compile = [&] {
      try {
        return tsmc::compile_grammar(text);
      } catch (const tsmc::invalid_argument& e) {
        throw tsmc_examples::option_error("--grammar " + tsmc_examples::quote_value(s.grammar) + ": " + e.what());
      }
    };
    tsmc::token_grammar constraint(compile(), std::move(table), ends, mode);
    return run_constrained(p, s, w, constraint, "matches the grammar " + s.grammar);
  }
  // A regular expression and / or contains-words as a byte DFA, lifted to the model's tokens.
  tsmc::byte_dfa dfa = s.regex.empty() ? tsmc::contains_any(s.contains) : tsmc::compile_regex(s.regex);
  if (!s.regex.empty() && !s.contains.empty()) dfa = tsmc::intersection(dfa, tsmc::contains_any(s.contains));
  tsmc::token_dfa constraint(std::move(dfa), std::move(table), ends, mode);
  const std::string what = (s.regex.empty() ? std::string() : "matches /" + s.regex + "/") +
                           (!s.regex.empty() && !s.contains.empty() ? " and " : "") +
                           (s.contains.empty() ? std::string() : "contains one of " + [&] {
                             std::string j;
                             for (const auto& c : s.contains) j += (j.empty() ? "" : ", ") + c;
                             return j;
                           }());
  return run_constrained(p, s, w, constraint, what);
}

/// The program's work for one lifted constraint (a token_dfa or a token_grammar).
template <class World, class Lifted>
int run_constrained(const tsmc_examples::program& p, const settings& s, World& w, Lifted& constraint,
                    const std::string& what) {
  using model_type = std::remove_cvref_t<decltype(w.model)>;
  constexpr bool is_transformer = !std::is_same_v<model_type, tsmc::ngram_model>;
  constraint.check_satisfiable(s.horizon, "constrained");
  std::printf("constraint: the continuation of \"%s\" (at most %zu %s) %s\n", w.prompt_text.c_str(), s.horizon,
              is_transformer ? "tokens" : "words", what.c_str());

  tsmc::default_engine rng(s.seed);
  const tsmc::smc_options base_options{.particles = s.particles, .horizon = s.horizon,
                                       .proposal = tsmc::proposal_type::base, .end_token = w.end_token,
                                       .end_tokens = w.end_tokens,
                                       .check_normalization = true};
  tsmc::smc_options twisted_options = base_options;
  twisted_options.proposal = tsmc::proposal_type::twisted;

  // Plain sampling: rejection from p0 (the acceptance rate; accepted draws are exact samples).
  tsmc::lifted_potential<Lifted> phi(constraint);
  auto exact = tsmc::indicator_rejection_sampler(
      w.model, phi, w.prompt,
      {.horizon = s.horizon, .end_token = w.end_token, .end_tokens = w.end_tokens, .batch = w.sampler_batch,
       .budget = s.rejection_budget});
  std::vector<tsmc::token_sequence> exact_samples;
  try {
    for (std::size_t m = 0; m < s.runs; ++m) exact_samples.push_back(exact.sample(rng));
  } catch (const tsmc::runtime_error&) {
    // Budget spent: the acceptance rate is still known; the upper bound uses the samples found.
  }
  std::printf("plain sampling: %.5f of %zu p0 draws satisfy the constraint\n", exact.acceptance_rate(), exact.draws());

  // Constrained twisted SMC.
  tsmc::feasibility_twist<tsmc::no_twist, Lifted> twist(constraint, tsmc::no_twist{});
  tsmc::twisted_smc smc(w.model, twist, phi, twisted_options, tsmc::systematic{}, tsmc::ess_below(0.5));
  std::vector<double> lower, upper;
  double ess = 0.0, constrained_seconds = 0.0;
  tsmc::smc_result last;
  for (std::size_t m = 0; m < s.runs; ++m) {
    const auto t0 = std::chrono::steady_clock::now();
    last = smc.run(w.prompt, rng);
    constrained_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    lower.push_back(last.log_z);
    ess += last.ess.empty() ? 0.0 : last.ess.back();
  }
  for (const tsmc::token_sequence& reference : exact_samples)
    upper.push_back(smc.run_conditional(w.prompt, reference, rng).log_z);
  const tsmc::bound_estimate lb = tsmc::summarize_bound(lower);
  const bool have_upper = !upper.empty();
  const tsmc::bound_estimate ub = have_upper ? tsmc::summarize_bound(upper) : tsmc::bound_estimate{};

  // The same runs without the constraint: base proposal, no twist, phi = 1.
  tsmc::no_twist none;
  unit_potential unit;
  tsmc::twisted_smc plain(w.model, none, unit, base_options, tsmc::systematic{}, tsmc::ess_below(0.5));
  double plain_seconds = 0.0;
  for (std::size_t m = 0; m < s.runs; ++m) {
    const auto t0 = std::chrono::steady_clock::now();
    (void)plain.run(w.prompt, rng);
    plain_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  const double per_token = 1e6 / static_cast<double>(s.runs * s.particles * s.horizon);
  std::printf("twisted SMC with feasibility, K = %zu, %zu runs: final ESS %.1f (mean); log Z in [%.3f +- %.3f, %s]\n",
              s.particles, s.runs, ess / static_cast<double>(s.runs), lb.mean, lb.standard_error,
              have_upper ? (std::to_string(ub.mean) + " +- " + std::to_string(ub.standard_error)).c_str()
                         : "no exact sample within the rejection budget");
  std::printf("cost per generated token: %.2f us constrained, %.2f us unconstrained (ratio %.2f)\n",
              constrained_seconds * per_token, plain_seconds * per_token, constrained_seconds / plain_seconds);
  std::printf("samples (the last run's particles, heaviest first):\n");
  std::vector<std::size_t> order(last.sequences.size());
  for (std::size_t k = 0; k < order.size(); ++k) order[k] = k;
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return last.normalized_log_weights[a] > last.normalized_log_weights[b];
  });
  std::size_t satisfied = 0, shown = 0;
  std::string json_samples;
  for (std::size_t i = 0; i < std::min(s.samples, order.size()); ++i) {
    const std::size_t k = order[i];
    const tsmc::token_sequence& seq = last.sequences[k];
    const double weight = std::exp(last.normalized_log_weights[k]);
    if (!(weight > 0.0)) break;  // all particles of the run had zero weight
    ++shown;
    const bool ok = constraint.accepts(constraint.run(seq));
    satisfied += ok;
    const std::string text = w.tokens_text(seq);
    std::printf("  [w = %.3g%s] %s\n", weight, ok ? "" : ", VIOLATES", text.c_str());
    json_samples += std::string(json_samples.empty() ? "" : ", ") + "{\"text\": " + tsmc_examples::json_string(text) +
                    ", \"weight\": " + tsmc_examples::json_number(weight) + ", \"satisfies\": " + (ok ? "true" : "false") +
                    "}";
  }
  using tsmc_examples::csv_number;
  using tsmc_examples::json_number;
  p.write_output("--csv", s.csv, [&](std::ostream& csv) {
    csv << "acceptance_rate,plain_draws,ess,lower,lower_se,upper,upper_se,us_per_token_constrained,"
           "us_per_token_unconstrained\n";
    csv << csv_number(exact.acceptance_rate()) << ',' << exact.draws() << ','
        << csv_number(ess / static_cast<double>(s.runs)) << ',' << csv_number(lb.mean) << ','
        << csv_number(lb.standard_error) << ',' << (have_upper ? csv_number(ub.mean) : "") << ','
        << (have_upper ? csv_number(ub.standard_error) : "") << ',' << csv_number(constrained_seconds * per_token)
        << ',' << csv_number(plain_seconds * per_token) << '\n';
  });
  p.write_output("--json", s.json, [&](std::ostream& json) {
    json << "{\"acceptance_rate\": " << json_number(exact.acceptance_rate()) << ", \"plain_draws\": " << exact.draws()
         << ", \"ess\": " << json_number(ess / static_cast<double>(s.runs)) << ", \"lower\": " << json_number(lb.mean)
         << ", \"lower_se\": " << json_number(lb.standard_error)
         << ", \"upper\": " << (have_upper ? json_number(ub.mean) : "null")
         << ", \"upper_se\": " << (have_upper ? json_number(ub.standard_error) : "null")
         << ", \"us_per_token_constrained\": " << json_number(constrained_seconds * per_token)
         << ", \"us_per_token_unconstrained\": " << json_number(plain_seconds * per_token)
         << ", \"samples\": [" << json_samples << "]}\n";
  });
  // Every weighted particle of a run with feasibility satisfies the constraint.
  return satisfied == shown ? 0 : 1;
}
