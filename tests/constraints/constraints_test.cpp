// The constraints layer: regular expressions compiled to minimal byte DFAs, lifted to a
// vocabulary (llama2.c's 32000-token tokenizer written by the project's writer, the word
// tokenizer) and checked against brute force; feasibility against enumeration; SMC with a regex
// target, a product with a soft classifier and feasibility x a learned twist against exact
// answers (E[Zhat] = Z, bounds bracketing log Z). Python's re is the regex peer in
// tests/constraints/regex_peer.py (its own ctest entry).
#include <tsmc/bounds/estimator.hpp>
#include <tsmc/constraints/combinators.hpp>
#include <tsmc/constraints/lexical.hpp>
#include <tsmc/constraints/regex.hpp>
#include <tsmc/constraints/token_bytes.hpp>
#include <tsmc/constraints/token_dfa.hpp>
#include <tsmc/core/statistics.hpp>
#include <tsmc/corpus/story_grammar.hpp>
#include <tsmc/learning/adam.hpp>
#include <tsmc/learning/objectives.hpp>
#include <tsmc/learning/problem.hpp>
#include <tsmc/learning/trainer.hpp>
#include <tsmc/models/llama2c_tokenizer.hpp>
#include <tsmc/models/word_tokenizer.hpp>
#include <tsmc/resampling/schemes.hpp>
#include <tsmc/resampling/triggers.hpp>
#include <tsmc/smc/sampler.hpp>
#include <tsmc/testing/enumeration.hpp>
#include <tsmc/testing/toy_model.hpp>
#include <tsmc/testing/toy_potentials.hpp>
#include <tsmc/twists/features.hpp>
#include <tsmc/twists/mlp_twist.hpp>
#include <tsmc/twists/no_twist.hpp>

#include "constraints/constraint_checks.hpp"

#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

using namespace tsmc;
using namespace tsmc::testing;
using tsmc_constraints_test::toy_words;
using Catch::Matchers::Contains;

namespace {

constexpr double minus_inf = -std::numeric_limits<double>::infinity();
/// Five standard errors: a two-sided false-alarm rate of 5.7e-7 per assertion.
constexpr double z_limit = 5.0;

/// A 32000-token llama2.c tokenizer written with llama2c::write_tokenizer and read back:
/// specials, the 256 byte tokens, " " + every prefix of the story grammar's words, then random
/// pieces over letters, space, punctuation and 2-, 3- and 4-byte UTF-8 characters.
const llama2c::tokenizer& tokenizer_32000() {
  static const llama2c::tokenizer tok = [] {
    std::vector<std::string> pieces = {"<unk>", "\n<s>\n", "\n</s>\n"};
    for (int b = 0; b < 256; ++b) {
      char name[8];
      std::snprintf(name, sizeof name, "<0x%02X>", b);
      pieces.emplace_back(name);
    }
    std::set<std::string> seen(pieces.begin(), pieces.end());
    for (const std::string& w : story_grammar{}.words())
      for (std::size_t n = 1; n <= w.size(); ++n) {
        std::string p(1, ' ');
        p += w.substr(0, n);
        if (seen.insert(p).second) pieces.push_back(p);
        if (seen.insert(w.substr(0, n)).second) pieces.push_back(w.substr(0, n));
      }
    const std::vector<std::string> alphabet = {"a", "b", "c", "d", "e", "n", "o", "s", "t", " ", " ", ",",
                                               ".", "é", "ж", "中", "😀", "x", "y", "z", "\n"};
    default_engine rng(2026);
    while (pieces.size() < 32000) {
      std::string p;
      const std::size_t length = 1 + static_cast<std::size_t>(uniform01(rng) * 6);
      for (std::size_t i = 0; i < length; ++i) p += alphabet[static_cast<std::size_t>(uniform01(rng) * alphabet.size())];
      if (seen.insert(p).second) pieces.push_back(p);
    }
    std::vector<float> scores(pieces.size());
    for (std::size_t i = 0; i < pieces.size(); ++i) scores[i] = i < 259 ? 0.0f : static_cast<float>(pieces[i].size());
    const auto path = std::filesystem::temp_directory_path() / "tsmc_constraints_tokenizer_32000.bin";
    llama2c::write_tokenizer(path, pieces, scores);
    llama2c::tokenizer read(path, 32000);
    std::filesystem::remove(path);
    return read;
  }();
  return tok;
}

/// The story grammar's words as a word tokenizer.
const word_tokenizer& story_words() {
  static const word_tokenizer tok = [] {
    const std::vector<std::string> words = story_grammar{}.words();
    return word_tokenizer(std::span<const std::string>(words));
  }();
  return tok;
}

/// Every candidate of every prefix tried: the cached (trie) next state equals the direct one,
/// and its deadness / acceptance equals running the DFA on the tokenizer's own decode.
template <class Decode>
void check_lifted_against_brute_force(token_dfa& c, const Decode& decode, std::uint64_t seed, std::size_t prefixes,
                                      std::size_t max_length, std::size_t& alive_candidates,
                                      std::size_t& accepted_candidates) {
  default_engine rng(seed);
  const std::size_t V = c.vocab_size();
  for (std::size_t p = 0; p < prefixes; ++p) {
    token_sequence prefix;
    const std::size_t length = static_cast<std::size_t>(uniform01(rng) * static_cast<double>(max_length + 1));
    for (std::size_t i = 0; i < length; ++i) {
      // Mostly tokens that keep the DFA alive (so deep states are tried), sometimes any token.
      const std::span<const token_dfa::state> next = c.next_states(c.run(prefix));
      std::vector<token> alive;
      for (std::size_t v = 0; v < V; ++v)
        if (next[v] != token_dfa::dead) alive.push_back(static_cast<token>(v));
      if (alive.empty() || uniform01(rng) < 0.1)
        prefix.push_back(static_cast<token>(uniform01(rng) * static_cast<double>(V)));
      else
        prefix.push_back(alive[static_cast<std::size_t>(uniform01(rng) * static_cast<double>(alive.size()))]);
    }
    CAPTURE(prefix);
    const token_dfa::state s = c.run(prefix);
    const std::span<const token_dfa::state> next = c.next_states(s);
    token_sequence extended = prefix;
    extended.push_back(0);
    std::size_t mismatches = 0;
    for (std::size_t v = 0; v < V; ++v) {
      extended.back() = static_cast<token>(v);
      const token_dfa::state direct = c.run(extended);
      const std::string text = decode(extended);
      const std::int32_t q = c.dfa().run(c.dfa().start, text);
      const bool ok = next[v] == direct && (direct == token_dfa::dead) == (q == byte_dfa::dead) &&
                      c.accepts(direct) == c.dfa().accepts(q);
      if (!ok && ++mismatches <= 3) {
        INFO("candidate " << v << ", text \"" << text << "\"");
        CHECK(ok);
      }
      alive_candidates += direct != token_dfa::dead;
      accepted_candidates += c.accepts(direct);
    }
    REQUIRE(mismatches == 0);
  }
}

}  // namespace

// -------------------------------------------------------------------------------------------------
// Regular expressions
// -------------------------------------------------------------------------------------------------

TEST_CASE("compile_regex: minimal DFAs and full-match semantics", "[constraints]") {
  // (a|b)*abb: the textbook minimal DFA has 4 states (no dead state counted here).
  CHECK(compile_regex("(a|b)*abb").state_count() == 4);
  CHECK(compile_regex("[ab]*").state_count() == 1);
  CHECK(compile_regex("a*a*a*").state_count() == 1);
  CHECK(compile_regex("(a|ab)(c|bcd)(d*)").state_count() == compile_regex("(abc|abcd|acd|abbcd)d*").state_count());
  const byte_dfa d = compile_regex("(a|b)*abb");
  CHECK(d.matches("abb"));
  CHECK(d.matches("babaabb"));
  CHECK_FALSE(d.matches("abba"));
  CHECK_FALSE(d.matches(""));
  // A pattern that matches nothing has no live state.
  CHECK(compile_regex("[^\\s\\S]").start == byte_dfa::dead);
  CHECK_FALSE(compile_regex("[^\\s\\S]").matches(""));
  CHECK(compile_regex("").matches(""));
  CHECK_FALSE(compile_regex("").matches("a"));
  // UTF-8: code points, ranges across encoding lengths, negated classes; invalid UTF-8 never matches.
  const byte_dfa u = compile_regex("[α-ω]+ [^a-z]{2}.");
  CHECK_FALSE(u.matches("λόγος"));
  CHECK(u.matches("λογ ж😀x"));
  CHECK_FALSE(u.matches("λογ ab x"));
  CHECK_FALSE(u.matches("λογ ж\xF0\x9F\x98x"));  // a truncated 4-byte sequence
  CHECK(compile_regex("\\u4e2d.\\x41").matches("中\xC3\xA9" "A"));
  CHECK_FALSE(compile_regex(".").matches("\n"));
  CHECK(compile_regex("[^a]").matches("\n"));
  CHECK_FALSE(compile_regex(".").matches("\xED\xA0\x80"));  // an encoded surrogate is not UTF-8
  CHECK(compile_regex("a{2,3}").matches("aaa"));
  CHECK_FALSE(compile_regex("a{2,3}").matches("aaaa"));
  CHECK(compile_regex("a{,2}b{2,}").matches("bbb"));
  CHECK(compile_regex(regex_escape("a.b*(c)?")).matches("a.b*(c)?"));
}

TEST_CASE("compile_regex: a malformed pattern names the position and what was expected", "[constraints]") {
  REQUIRE_THROWS_AS(compile_regex("(ab"), tsmc::invalid_argument);
  REQUIRE_THROWS_WITH(compile_regex("(ab"),
                      "tsmc::compile_regex: pattern at position 3 expected ')' closing the group opened at position 0, "
                      "got the end of the pattern");
  REQUIRE_THROWS_WITH(compile_regex("ab)"), Contains("pattern at position 2 expected a quantifier, '|' or the end"));
  REQUIRE_THROWS_WITH(compile_regex("a**"), Contains("pattern at position 2 expected an atom before a quantifier"));
  REQUIRE_THROWS_WITH(compile_regex("[z-a]"), Contains("pattern at position 1 expected a range lo-hi with lo <= hi, got z-a"));
  REQUIRE_THROWS_WITH(compile_regex("x{3,2}"), Contains("pattern at position 1 expected a quantifier {m,n} with m <= n, got 3 > 2"));
  REQUIRE_THROWS_WITH(compile_regex("ab\\q"), Contains("pattern at position 2 expected a supported escape"));
  REQUIRE_THROWS_WITH(compile_regex("[abc"), Contains("pattern at position 4 expected ']' closing the class opened at position 0"));
  REQUIRE_THROWS_WITH(compile_regex("^a"), Contains("anchors are not supported"));
  REQUIRE_THROWS_WITH(compile_regex("a\xFF"), Contains("pattern at position 1 expected valid UTF-8"));
  REQUIRE_THROWS_WITH(compile_regex("a{1001}"), Contains("expected a repeat count of at most 1000"));
}

// -------------------------------------------------------------------------------------------------
// Lifting to a vocabulary
// -------------------------------------------------------------------------------------------------

TEST_CASE("token_byte_table reproduces the tokenizers' decode, context rules included", "[constraints]") {
  const llama2c::tokenizer& tok = tokenizer_32000();
  const token_byte_table table = make_token_byte_table(tok);
  REQUIRE(table.vocab_size() == 32000);
  default_engine rng(4);
  for (int trial = 0; trial < 300; ++trial) {
    token_sequence s;
    const std::size_t n = static_cast<std::size_t>(uniform01(rng) * 8);
    for (std::size_t i = 0; i < n; ++i) {
      // BOS, EOS and byte tokens often, to exercise the restart and byte fallback.
      const double u = uniform01(rng);
      s.push_back(u < 0.1 ? token{1} : u < 0.15 ? token{2} : u < 0.4 ? static_cast<token>(3 + uniform01(rng) * 256)
                                                                      : static_cast<token>(uniform01(rng) * 32000));
    }
    CAPTURE(s);
    REQUIRE(table.decode(s) == tok.decode(s));
    REQUIRE(table.decode(s, text_mode::middle) == tok.decode(s, llama2c::tokenizer::eos));
  }
  const word_tokenizer& words = story_words();
  const token_byte_table wtable = make_token_byte_table(words);
  for (int trial = 0; trial < 300; ++trial) {
    token_sequence s;
    const std::size_t n = static_cast<std::size_t>(uniform01(rng) * 6);
    for (std::size_t i = 0; i < n; ++i) s.push_back(static_cast<token>(uniform01(rng) * words.vocab_size()));
    CAPTURE(s);
    REQUIRE(wtable.decode(s) == words.decode(s));
  }
}

TEST_CASE("lifted next states equal brute force on the 32000-token llama2.c tokenizer", "[constraints]") {
  const llama2c::tokenizer& tok = tokenizer_32000();
  const auto decode = [&tok](const token_sequence& s) { return tok.decode(s); };
  std::size_t alive = 0, accepted = 0;
  for (const char* pattern : {"Once upon a time,( [a-z]+)+\\.", "[^\\n]*(é|ж)[a-z ]*", "(the|a) [a-z ]{0,12}😀?"}) {
    CAPTURE(pattern);
    token_dfa c = make_regex_constraint(pattern, tok, {llama2c::tokenizer::eos});
    check_lifted_against_brute_force(c, decode, 11, 6, 6, alive, accepted);
  }
  // The prefixes tried are not trivial: many candidates live, some accepted.
  CHECK(alive > 1000);
  CHECK(accepted > 10);
}

TEST_CASE("lifted next states equal brute force on the word tokenizer", "[constraints]") {
  const word_tokenizer& words = story_words();
  const auto decode = [&words](const token_sequence& s) { return words.decode(s); };
  std::size_t alive = 0, accepted = 0;
  for (const char* pattern : {"[a-z]+( [a-z]+)*", "([a-z]+ ){2,5}[a-z]+", "[^e]*"}) {
    CAPTURE(pattern);
    token_dfa c = make_regex_constraint(pattern, words, {word_tokenizer::end_token});
    check_lifted_against_brute_force(c, decode, 12, 20, 6, alive, accepted);
  }
  CHECK(alive > 100);
  CHECK(accepted > 10);
}

TEST_CASE("feasibility equals enumeration of every continuation within the horizon", "[constraints]") {
  const word_tokenizer words = toy_words();
  const std::size_t V = words.vocab_size();
  for (const bool with_end : {false, true}) {
    for (const char* pattern : {"a( b| ab)*( ba)?", "(ab|ba)( a)*", "b a b a"}) {
      for (std::size_t T : {1u, 2u, 3u, 4u}) {
        CAPTURE(with_end, pattern, T);
        token_dfa c = make_regex_constraint(pattern, words, with_end ? std::vector<token>{2} : std::vector<token>{});
        tsmc_constraints_test::check_feasibility_by_enumeration(c, V, T, with_end);
      }
    }
  }
}

// -------------------------------------------------------------------------------------------------
// SMC with constraints against exact answers
// -------------------------------------------------------------------------------------------------

namespace {

/// The enumerable toy: V = 7 (toy_words), horizon 4, end token </s>, a random tabular model.
struct regex_toy {
  word_tokenizer words = toy_words();
  toy_problem problem{7, 4, token_sequence{1}, token{2}};
  tabular_model model{7, 5, 1.0};
  token_dfa constraint;

  explicit regex_toy(const char* pattern) : constraint(make_regex_constraint(pattern, words, {2})) {}

  [[nodiscard]] smc_options options(std::size_t particles, proposal_type proposal) const {
    return smc_options{.particles = particles, .horizon = 4, .proposal = proposal, .end_token = 2,
                       .check_normalization = true};
  }
};

/// M runs: the mean of Zhat / Z is 1 within z_limit standard errors; then M bound runs, whose
/// lower and upper means bracket log Z within z_limit standard errors.
template <class Sampler>
void check_unbiased_and_bounds(Sampler& smc, const exact_solution& solution, std::span<const token> prompt,
                               std::uint64_t seed, int runs = 3000, std::size_t bound_runs = 300) {
  default_engine rng(seed);
  std::vector<double> ratio(static_cast<std::size_t>(runs));
  std::size_t zeros = 0;
  for (double& r : ratio) {
    const smc_result result = smc.run(prompt, rng);
    r = std::exp(result.log_z - solution.log_z());
    zeros += result.log_z == minus_inf;
  }
  const mean_estimate est = mean_and_standard_error(ratio);
  INFO("log Z = " << solution.log_z() << ", mean Zhat / Z = " << est.mean << " +- " << est.standard_error
                  << ", runs with Zhat = 0: " << zeros);
  REQUIRE(est.standard_error > 0.0);
  REQUIRE(std::abs(est.mean - 1.0) < z_limit * est.standard_error);
  enumeration_sampler exact(solution);
  const log_z_bounds b = estimate_bounds(smc, prompt, exact, bound_runs, rng);
  INFO("bounds [" << b.lower.mean << " +- " << b.lower.standard_error << ", " << b.upper.mean << " +- "
                  << b.upper.standard_error << "]");
  // A lower bound of -inf (some run with Zhat = 0) is vacuous but valid.
  REQUIRE((b.lower.mean == minus_inf || b.lower.mean - z_limit * b.lower.standard_error < solution.log_z()));
  REQUIRE(b.upper.mean + z_limit * b.upper.standard_error > solution.log_z());
}

}  // namespace

TEST_CASE("SMC with a regex target: E[Zhat] = Z and the bounds bracket log Z (base; feasibility-twisted)",
          "[constraints]") {
  regex_toy toy("a( b| ab)*( ba)?");
  dfa_potential phi(toy.constraint);
  const exact_solution solution = enumerate(toy.problem, toy.model, phi);
  INFO("Z = " << std::exp(solution.log_z()));
  REQUIRE(solution.log_z() > std::log(1e-3));
  REQUIRE(solution.log_z() < std::log(0.5));
  {
    no_twist none;
    twisted_smc smc(toy.model, none, phi, toy.options(4, proposal_type::base), multinomial{}, ess_below(0.5));
    check_unbiased_and_bounds(smc, solution, toy.problem.prompt, 100);
  }
  {
    feasibility_twist<no_twist> feasible(toy.constraint, no_twist{});
    twisted_smc smc(toy.model, feasible, phi, toy.options(4, proposal_type::twisted), systematic{}, ess_below(0.5));
    check_unbiased_and_bounds(smc, solution, toy.problem.prompt, 200);
    // With feasibility no particle is ever dead: every run has Zhat > 0.
    default_engine rng(5);
    for (int m = 0; m < 200; ++m) REQUIRE(smc.run(toy.problem.prompt, rng).log_z > minus_inf);
  }
}

TEST_CASE("SMC with a product of a regex and a soft classifier: E[Zhat] = Z, bounds bracket log Z", "[constraints]") {
  regex_toy toy("(a|b|ab|ba)( (a|b|ab|ba))*");
  auto phi = product(dfa_potential(toy.constraint), soft_classifier::random(7, 3, 1.5));
  STATIC_REQUIRE(decltype(phi)::has_next_token_form);
  const exact_solution solution = enumerate(toy.problem, toy.model, phi);
  feasibility_twist<random_twist> twist(toy.constraint, random_twist(8, 0.5));
  twisted_smc smc(toy.model, twist, phi, toy.options(4, proposal_type::twisted), stratified{}, ess_below(0.6));
  check_unbiased_and_bounds(smc, solution, toy.problem.prompt, 300);
  // The same product without the classifier's next-token form falls back to the sequence form.
  auto hidden = product(dfa_potential(toy.constraint), hide_next_token_form(soft_classifier::random(7, 3, 1.5)));
  STATIC_REQUIRE_FALSE(decltype(hidden)::has_next_token_form);
  twisted_smc smc_hidden(toy.model, twist, hidden, toy.options(4, proposal_type::twisted), stratified{},
                         ess_below(0.6));
  check_unbiased_and_bounds(smc_hidden, solution, toy.problem.prompt, 400);
}

TEST_CASE("SMC with feasibility times a CTL-trained MLP twist: E[Zhat] = Z, bounds bracket log Z", "[constraints]") {
  regex_toy toy("a( b| ab)*( ba)?");
  dfa_potential phi(toy.constraint);
  const exact_solution solution = enumerate(toy.problem, toy.model, phi);
  using twist_type = mlp_twist<prefix_features>;
  twist_type learned(prefix_features(prefix_features_options{.vocab_size = 7, .embedding_size = 4, .seed = 1}),
                     mlp_twist_options{.vocab_size = 7, .max_steps = 4, .hidden_layers = 1, .width = 8, .seed = 2});
  {
    // CTL with exact positives, on the potential alone (feasibility is multiplied in afterwards).
    learning_problem lp(toy.model, learned, phi, toy.problem.prompt,
                        learning_options{.batch = 32, .horizon = 4, .end_token = 2});
    enumeration_sampler exact(solution);
    tsmc::ctl objective(exact, 32);
    adam optimizer(adam_options{.learning_rate = 0.05});
    default_engine rng(77);
    (void)train(lp, objective, optimizer, training_options{.updates = 30}, rng);
  }
  feasibility_twist<twist_type&> twist(toy.constraint, learned);
  twisted_smc smc(toy.model, twist, phi, toy.options(4, proposal_type::twisted), multinomial{}, ess_below(0.5));
  check_unbiased_and_bounds(smc, solution, toy.problem.prompt, 500, 2000, 200);
}

TEST_CASE("an unsatisfiable constraint is an error before sampling", "[constraints]") {
  regex_toy toy("a b a b a");  // five words: no text of at most 4 tokens matches
  dfa_potential phi(toy.constraint);
  feasibility_twist<no_twist> twist(toy.constraint, no_twist{});
  twisted_smc smc(toy.model, twist, phi, toy.options(4, proposal_type::twisted));
  default_engine rng(1);
  REQUIRE_THROWS_WITH(smc.run(toy.problem.prompt, rng),
                      Contains("tsmc::feasibility_twist::log_twist: constraint must be satisfiable within the horizon "
                               "(no finished sequence of at most 4 tokens is accepted)"));
  REQUIRE_FALSE(toy.constraint.satisfiable(4));
  REQUIRE(toy.constraint.satisfiable(5));
}

TEST_CASE("combinators: sum, max and tempering of log phi; next-token forms combine exactly", "[constraints]") {
  regex_toy toy("(a|b|ab|ba)( (a|b|ab|ba))*");
  regex_toy other("a( b| ab)*( ba)?");
  const soft_classifier soft = soft_classifier::random(7, 9, 1.0);
  auto prod = product(dfa_potential(toy.constraint), soft);
  auto either = any_of(dfa_potential(toy.constraint), dfa_potential(other.constraint));
  auto both = all_of(dfa_potential(toy.constraint), dfa_potential(other.constraint));
  tempered_potential<soft_classifier> tempered(soft, 0.5);
  STATIC_REQUIRE(decltype(either)::has_next_token_form);
  STATIC_REQUIRE(tempered_potential<soft_classifier>::has_next_token_form);
  STATIC_REQUIRE_FALSE(tempered_potential<hide_next_token_form<soft_classifier>>::has_next_token_form);
  REQUIRE_THROWS_WITH(tempered_potential<soft_classifier>(soft, 0.0), Contains("beta must be finite and > 0, got 0"));

  // Sequence form against the parts.
  const std::vector<token_sequence> seqs = {{3}, {3, 4}, {5, 6, 3, 2}, {4, 3, 6}, {0, 3}, {6, 5}};
  std::vector<double> a(seqs.size()), b(seqs.size()), s(seqs.size()), out(seqs.size());
  soft_classifier soft_copy = soft;
  dfa_potential(toy.constraint).log_potential(seqs, a);
  dfa_potential(other.constraint).log_potential(seqs, b);
  soft_copy.log_potential(seqs, s);
  prod.log_potential(seqs, out);
  for (std::size_t i = 0; i < seqs.size(); ++i) CHECK(out[i] == a[i] + s[i]);
  either.log_potential(seqs, out);
  for (std::size_t i = 0; i < seqs.size(); ++i) CHECK(out[i] == std::max(a[i], b[i]));
  both.log_potential(seqs, out);
  for (std::size_t i = 0; i < seqs.size(); ++i) CHECK(out[i] == a[i] + b[i]);
  tempered.log_potential(seqs, out);
  for (std::size_t i = 0; i < seqs.size(); ++i) CHECK(out[i] == 0.5 * s[i]);

  // Next-token form: for every prefix and candidate, equal to the sequence form of prefix + v.
  const std::vector<token_sequence> prefixes = {{}, {3}, {3, 4}, {5, 3}, {0}};
  std::vector<std::uint8_t> active(prefixes.size(), 1);
  const step_context<tabular_model> ctx{1, 4, toy.problem.prompt, prefixes, active, toy.model};
  log_prob_matrix next(static_cast<Eigen::Index>(prefixes.size()), 7);
  const auto check_next = [&](auto& potential, const char* name) {
    potential.log_potential_next(ctx, next);
    for (std::size_t k = 0; k < prefixes.size(); ++k)
      for (token v = 0; v < 7; ++v) {
        token_sequence seq = prefixes[k];
        seq.push_back(v);
        double expected = 0.0;
        potential.log_potential(std::span<const token_sequence>(&seq, 1), std::span<double>(&expected, 1));
        INFO(name << ": prefix " << k << ", candidate " << v);
        const double got = next(static_cast<Eigen::Index>(k), v);
        if (expected == minus_inf)
          REQUIRE(got == minus_inf);
        else
          REQUIRE(got == Approx(expected).margin(1e-12));
      }
  };
  check_next(prod, "product");
  check_next(either, "any_of");
  check_next(both, "all_of");
  check_next(tempered, "tempered");
}

// -------------------------------------------------------------------------------------------------
// DFA operations and lexical constraints
// -------------------------------------------------------------------------------------------------

namespace {

/// Random UTF-8 texts over a small alphabet (words, spaces, a newline, a 2-byte character).
std::string random_text(default_engine& rng, std::size_t max_pieces) {
  static const std::vector<std::string> alphabet = {"a", "b", "ab", " ", " ", "\n", "é", "x_", ".", "cat", "dog"};
  std::string s;
  const auto n = static_cast<std::size_t>(uniform01(rng) * static_cast<double>(max_pieces + 1));
  for (std::size_t i = 0; i < n; ++i) s += alphabet[static_cast<std::size_t>(uniform01(rng) * alphabet.size())];
  return s;
}

bool is_word_byte(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}
bool is_space_byte(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

bool brute_contains(const std::string& text, const std::vector<std::string>& phrases) {
  for (const std::string& p : phrases)
    for (std::size_t i = text.find(p); i != std::string::npos; i = text.find(p, i + 1)) {
      const bool left = i == 0 || !is_word_byte(text[i - 1]);
      const bool right = i + p.size() == text.size() || !is_word_byte(text[i + p.size()]);
      if (left && right) return true;
    }
  return false;
}

std::size_t brute_words(const std::string& text) {
  std::size_t n = 0;
  for (std::size_t i = 0; i < text.size(); ++i)
    if (!is_space_byte(text[i]) && (i == 0 || is_space_byte(text[i - 1]))) ++n;
  return n;
}

std::size_t brute_characters(const std::string& text) {
  return static_cast<std::size_t>(std::count_if(text.begin(), text.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

bool brute_ends_at_stop(const std::string& text, const std::vector<std::string>& stops) {
  std::size_t first_end = std::string::npos;
  for (const std::string& p : stops)
    if (const std::size_t i = text.find(p); i != std::string::npos) first_end = std::min(first_end, i + p.size());
  return first_end == text.size();
}

}  // namespace

TEST_CASE("complement and intersection of DFAs agree with the DFAs on random texts", "[constraints]") {
  const std::vector<std::string> patterns = {"(a|b)*abb", "[^é]*é[ab ]*", "(cat|dog)( (cat|dog))*", "", "[ab]{2,4}",
                                             ".*\\n.*", "[^\\s\\S]"};
  default_engine rng(8);
  for (const std::string& pa : patterns)
    for (const std::string& pb : patterns) {
      CAPTURE(pa, pb);
      const byte_dfa a = compile_regex(pa), b = compile_regex(pb);
      const byte_dfa not_a = complement(a), both = intersection(a, b);
      for (int i = 0; i < 200; ++i) {
        const std::string t = random_text(rng, 6);
        CAPTURE(t);
        REQUIRE(not_a.matches(t) == !a.matches(t));
        REQUIRE(both.matches(t) == (a.matches(t) && b.matches(t)));
      }
      REQUIRE(complement(not_a).state_count() == a.state_count());  // minimal both ways
      REQUIRE_FALSE(not_a.matches("\xFF") == a.matches("\xFF"));    // invalid UTF-8: rejected by a, accepted by not_a
    }
}

TEST_CASE("lexical constraints equal brute force on random texts", "[constraints]") {
  const std::vector<std::string> phrases = {"cat", "ab a", "x_"};
  const std::vector<std::string> stops = {"dog", ".\n"};
  const byte_dfa contains = contains_any(phrases), excludes = excludes_all(phrases), stop = ends_at_stop(stops);
  const byte_dfa words = length_in_words(2, 4), words0 = length_in_words(0, 1), chars = length_in_characters(3, 7);
  default_engine rng(9);
  std::size_t hits[5] = {0, 0, 0, 0, 0};
  for (int i = 0; i < 4000; ++i) {
    const std::string t = random_text(rng, 8);
    CAPTURE(t);
    const bool c = brute_contains(t, phrases);
    REQUIRE(contains.matches(t) == c);
    REQUIRE(excludes.matches(t) == !c);
    REQUIRE(stop.matches(t) == brute_ends_at_stop(t, stops));
    const std::size_t w = brute_words(t), n = brute_characters(t);
    REQUIRE(words.matches(t) == (w >= 2 && w <= 4));
    REQUIRE(words0.matches(t) == (w <= 1));
    REQUIRE(chars.matches(t) == (n >= 3 && n <= 7));
    hits[0] += c;
    hits[1] += stop.matches(t);
    hits[2] += w >= 2 && w <= 4;
    hits[3] += n >= 3 && n <= 7;
    hits[4] += w <= 1;
  }
  for (std::size_t h : hits) CHECK(h > 50);  // both outcomes are exercised
  REQUIRE_THROWS_WITH(contains_any(std::vector<std::string>{}), Contains("tsmc::contains_any: phrases.size() must be positive, got 0"));
  REQUIRE_THROWS_WITH(length_in_words(3, 2), Contains("tsmc::length_in_words: [min, max] must have min <= max"));
}

TEST_CASE("SMC with 'contains a word' and a token-length bound: E[Zhat] = Z, bounds bracket log Z", "[constraints]") {
  regex_toy toy("(a|b|ab|ba)( (a|b|ab|ba))*");
  const std::vector<std::string> word = {"ab"};
  token_dfa contains(contains_any(word), make_token_byte_table(toy.words), {2});
  auto phi = product(dfa_potential(contains), token_length_potential(2, 4, {2}));
  const exact_solution solution = enumerate(toy.problem, toy.model, phi);
  INFO("Z = " << std::exp(solution.log_z()));
  REQUIRE(solution.log_z() > std::log(1e-3));
  feasibility_twist<no_twist> twist(contains, no_twist{});
  twisted_smc smc(toy.model, twist, phi, toy.options(4, proposal_type::twisted), systematic{}, ess_below(0.5));
  check_unbiased_and_bounds(smc, solution, toy.problem.prompt, 600);
}

TEST_CASE("TokenizerWithBytes: llama2.c and word tokenizers, types with token_bytes; not a tokenizer without bytes",
          "[constraints]") {
  struct with_bytes {
    std::size_t vocab_size() const { return 2; }
    std::string_view token_bytes(token t) const { return t == 0 ? "x" : "yz"; }
  };
  struct without_bytes {
    std::size_t vocab_size() const { return 2; }
    std::string decode(token) const { return "x"; }
  };
  STATIC_REQUIRE(TokenizerWithBytes<llama2c::tokenizer>);
  STATIC_REQUIRE(TokenizerWithBytes<word_tokenizer>);
  STATIC_REQUIRE(TokenizerWithBytes<with_bytes>);
  STATIC_REQUIRE_FALSE(TokenizerWithBytes<without_bytes>);
  const token_byte_table t = make_token_byte_table(with_bytes{});
  REQUIRE(t.decode(token_sequence{1, 0, 1}) == "yzxyz");
}
