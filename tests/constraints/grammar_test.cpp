// Context-free grammar constraints: the GBNF parser's errors, the incremental Earley recogniser on
// hand cases (nullable rules, left and right recursion, repetition bounds, classes, UTF-8) and
// against compile_regex on regular grammars, the lifting to a vocabulary against brute force (the
// 32000-token llama2.c tokenizer written by the project's writer, the word tokenizer), feasibility
// against enumeration, and SMC with a grammar target against exact answers. Python's json module
// is the JSON grammar's peer in tests/constraints/json_peer.py (its own ctest entry).
#include <tsmc/bounds/estimator.hpp>
#include <tsmc/constraints/combinators.hpp>
#include <tsmc/constraints/grammar.hpp>
#include <tsmc/constraints/grammars.hpp>
#include <tsmc/constraints/regex.hpp>
#include <tsmc/constraints/token_bytes.hpp>
#include <tsmc/constraints/token_dfa.hpp>
#include <tsmc/core/statistics.hpp>
#include <tsmc/corpus/story_grammar.hpp>
#include <tsmc/models/llama2c_tokenizer.hpp>
#include <tsmc/models/word_tokenizer.hpp>
#include <tsmc/resampling/schemes.hpp>
#include <tsmc/resampling/triggers.hpp>
#include <tsmc/smc/sampler.hpp>
#include <tsmc/testing/enumeration.hpp>
#include <tsmc/testing/toy_model.hpp>
#include <tsmc/testing/toy_potentials.hpp>
#include <tsmc/twists/no_twist.hpp>

#include "constraints/constraint_checks.hpp"

#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
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

/// The same 32000-token llama2.c tokenizer as constraints_test.cpp (written with
/// llama2c::write_tokenizer and read back), with JSON's and arithmetic's characters added to the
/// random pieces' alphabet.
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
    const std::vector<std::string> alphabet = {"a", "e", "n", "s", "t", " ", " ", ",", ".", "é", "中", "😀", "\n",
                                               "{", "}", "[", "]", "\"", "\"", ":", "\\", "0", "1", "7", "-",
                                               "+", "*", "/", "(", ")", "E", "u", "true", "null"};
    default_engine rng(2027);
    while (pieces.size() < 32000) {
      std::string p;
      const std::size_t length = 1 + static_cast<std::size_t>(uniform01(rng) * 5);
      for (std::size_t i = 0; i < length; ++i) p += alphabet[static_cast<std::size_t>(uniform01(rng) * alphabet.size())];
      if (seen.insert(p).second) pieces.push_back(p);
    }
    std::vector<float> scores(pieces.size());
    for (std::size_t i = 0; i < pieces.size(); ++i) scores[i] = i < 259 ? 0.0f : static_cast<float>(pieces[i].size());
    const auto path = std::filesystem::temp_directory_path() / "tsmc_grammar_tokenizer_32000.bin";
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

/// The recogniser's verdict on every prefix of a text: dead (-1), live (0) or accepted (1).
std::vector<int> verdicts(const byte_grammar& g, std::string_view text) {
  std::vector<int> out;
  std::int32_t q = g.start;
  out.push_back(q == byte_grammar::dead ? -1 : g.accepts(q) ? 1 : 0);
  for (const char c : text) {
    q = g.step(q, static_cast<unsigned char>(c));
    out.push_back(q == byte_grammar::dead ? -1 : g.accepts(q) ? 1 : 0);
  }
  return out;
}

}  // namespace

// -------------------------------------------------------------------------------------------------
// The parser
// -------------------------------------------------------------------------------------------------

TEST_CASE("compile_grammar: malformed grammars name the position and what was expected", "[constraints]") {
  REQUIRE_THROWS_AS(compile_grammar("root ::= \"a\"\nfoo = \"b\""), tsmc::invalid_argument);
  REQUIRE_THROWS_WITH(compile_grammar("root ::= \"a\"\nfoo = \"b\""),
                      "tsmc::compile_grammar: grammar at 2:5 expected '::=', got '='");
  REQUIRE_THROWS_WITH(compile_grammar("root ::= \"abc"),
                      "tsmc::compile_grammar: grammar at 1:14 expected '\"' closing the literal opened at 1:10, got "
                      "the end of the grammar");
  REQUIRE_THROWS_WITH(compile_grammar("root ::= item+\n# a comment\nitem ::= \"x\" | value"),
                      "tsmc::compile_grammar: grammar at 3:16 expected a rule defined in the grammar, got 'value' "
                      "(undefined)");
  REQUIRE_THROWS_WITH(compile_grammar("start ::= \"a\""),
                      "tsmc::compile_grammar: grammar expected a rule named 'root' (the start rule), got none");
  REQUIRE_THROWS_WITH(compile_grammar(""), Contains("expected a rule named 'root'"));
  REQUIRE_THROWS_WITH(compile_grammar("root ::= (\"a\" | \"b\""), Contains("grammar at 1:20 expected ')' closing the group opened at 1:10, got the end of the grammar"));
  REQUIRE_THROWS_WITH(compile_grammar("root ::= \"a\" )"), Contains("grammar at 1:14 expected a rule name starting the next rule"));
  REQUIRE_THROWS_WITH(compile_grammar("root ::= [z-a]"), Contains("grammar at 1:11 expected a range lo-hi with lo <= hi, got z-a"));
  REQUIRE_THROWS_WITH(compile_grammar("root ::= [abc"), Contains("grammar at 1:14 expected ']' closing the class opened at 1:10"));
  REQUIRE_THROWS_WITH(compile_grammar("root ::= []"), Contains("grammar at 1:11 expected a class member"));
  REQUIRE_THROWS_WITH(compile_grammar("root ::= \"a\"{3,2}"), Contains("grammar at 1:13 expected a repetition {m,n} with m <= n, got 3 > 2"));
  REQUIRE_THROWS_WITH(compile_grammar("root ::= \"a\"{1001}"), Contains("expected a repeat count of at most 1000"));
  REQUIRE_THROWS_WITH(compile_grammar("root ::= \"a\"{2"), Contains("grammar at 1:15 expected '}' closing the repetition opened at 1:13"));
  REQUIRE_THROWS_WITH(compile_grammar("root ::= \"a\"**"), Contains("grammar at 1:14 expected an element before a postfix operator"));
  REQUIRE_THROWS_WITH(compile_grammar("root ::= * \"a\""), Contains("grammar at 1:10 expected an element before a postfix operator"));
  REQUIRE_THROWS_WITH(compile_grammar("root ::= \"\\q\""), Contains("grammar at 1:11 expected a supported escape"));
  REQUIRE_THROWS_WITH(compile_grammar("root ::= \"\\ud800\""), Contains("grammar at 1:11 expected a code point in U+0000-U+10FFFF outside the surrogates"));
  REQUIRE_THROWS_WITH(compile_grammar("root ::= \"\\x4\""), Contains("grammar at 1:14 expected 2 hexadecimal digits"));
  REQUIRE_THROWS_WITH(compile_grammar("root ::= \"a\"\nroot ::= \"b\""),
                      Contains("grammar at 2:1 expected each rule defined once (rule 'root' is first defined at 1:1)"));
  REQUIRE_THROWS_WITH(compile_grammar("root ::= \"a\" ;"), Contains("grammar at 1:14 expected a literal \"...\", a class [...], '.', '(' or a rule name, got ';'"));
  REQUIRE_THROWS_WITH(compile_grammar("root ::= \"a\xFF\""), Contains("grammar at 1:12 expected valid UTF-8"));
  REQUIRE_THROWS_WITH(compile_grammar("r@ot ::= \"a\""), Contains("grammar at 1:2 expected '::=', got '@'"));
  REQUIRE_THROWS_WITH(compile_grammar("root ::= \"a\"\n  b"), Contains("grammar at 2:4 expected '::=', got the end of the grammar"));
  REQUIRE_THROWS_WITH(compile_grammar("root ::= \"a\"\n  \"b\""), Contains("grammar at 2:3 expected a rule name ([a-zA-Z0-9-]+), got '\"'"));
  // Well-formed: rules across lines, comments, left recursion, a grammar matching nothing.
  const byte_grammar lines = compile_grammar("root ::=\n  a\n  | b # comment\na ::= \"a\" (\n root\n )?\nb ::= b \"b\" | \"b\"");
  CHECK(lines.matches("aab"));
  CHECK(lines.matches("bb"));
  CHECK_NOTHROW(compile_grammar(grammars::json));
  CHECK_NOTHROW(compile_grammar(grammars::arithmetic));
}

// -------------------------------------------------------------------------------------------------
// The recogniser
// -------------------------------------------------------------------------------------------------

TEST_CASE("byte_grammar: nullable rules (Aycock-Horspool), left and right recursion", "[constraints]") {
  // The case a plain Earley completer gets wrong: a nullable rule completed in the column where an
  // item waits on it for the second time.
  const byte_grammar twice = compile_grammar("root ::= a a \"b\"\na ::= \"\"");
  CHECK(twice.matches("b"));
  CHECK_FALSE(twice.matches(""));
  const byte_grammar deep = compile_grammar("root ::= a a a a\na ::= \"x\" | e\ne ::= \"\" | e e");
  for (const char* t : {"", "x", "xx", "xxx", "xxxx"}) CHECK(deep.matches(t));
  CHECK_FALSE(deep.matches("xxxxx"));
  const byte_grammar mixed = compile_grammar("root ::= n \"a\" n \"b\" n\nn ::= (\"\" | \"c\") (\"\")*");
  for (const char* t : {"ab", "cab", "acb", "abc", "cacbc"}) CHECK(mixed.matches(t));
  for (const char* t : {"", "a", "ccab", "ba"}) CHECK_FALSE(mixed.matches(t));

  // Left recursion: a long text reaches a fixed set of states.
  const byte_grammar left = compile_grammar("root ::= root \"a\" | \"b\"");
  CHECK(left.matches("b"));
  CHECK(left.matches("baaaa"));
  CHECK_FALSE(left.matches("ab"));
  CHECK_FALSE(left.matches(""));
  CHECK(left.matches("b" + std::string(5000, 'a')));
  CHECK(left.state_count() <= 3);
  // Right recursion works too (its states grow with the text: documented).
  const byte_grammar right = compile_grammar("root ::= \"a\" root | \"\"");
  CHECK(right.matches("aaaa"));
  CHECK_FALSE(right.matches("aab"));
  // Both at once, and an ambiguous grammar (S ::= S S | "x").
  const byte_grammar both = compile_grammar("root ::= \"(\" root \")\" | root root | \"\"");
  for (const char* t : {"", "()", "(())()", "((()())())"}) CHECK(both.matches(t));
  for (const char* t : {"(", ")(", "(()"}) CHECK_FALSE(both.matches(t));
  const byte_grammar ambiguous = compile_grammar("root ::= root root | \"x\"");
  CHECK(ambiguous.matches(std::string(40, 'x')));
  CHECK_FALSE(ambiguous.matches(""));
  // Repetition bounds.
  const byte_grammar bounds = compile_grammar("root ::= \"a\"{2,3} \"b\"{2,} \"c\"{,1} \"d\"{2} (\"e\" \"f\"?){0,2}");
  CHECK(bounds.matches("aabbdd"));
  CHECK(bounds.matches("aaabbbbcdd"));
  CHECK(bounds.matches("aabbddeef"));
  CHECK(bounds.matches("aabbddefe"));
  CHECK_FALSE(bounds.matches("abbdd"));
  CHECK_FALSE(bounds.matches("aaaabbdd"));
  CHECK_FALSE(bounds.matches("aabdd"));
  CHECK_FALSE(bounds.matches("aabbccdd"));
  CHECK_FALSE(bounds.matches("aabbd"));
  CHECK_FALSE(bounds.matches("aabbddeee"));
}

TEST_CASE("byte_grammar: dead exactly where no continuation is accepted; classes and UTF-8", "[constraints]") {
  // Rules that never terminate are removed: "y" is dead at once, not a live prefix.
  const byte_grammar loop = compile_grammar("root ::= \"x\" | \"y\" forever\nforever ::= \"z\" forever");
  CHECK(verdicts(loop, "x") == std::vector<int>{0, 1});
  CHECK(verdicts(loop, "y") == std::vector<int>{0, -1});
  CHECK(compile_grammar("root ::= a\na ::= \"x\" a").start == byte_grammar::dead);
  CHECK(compile_grammar("root ::= [^\\x00-\\U0010FFFF] | \"\" [^\\x00-\\U0010FFFF]").start == byte_grammar::dead);
  CHECK(verdicts(compile_grammar("root ::= \"ab\" \"c\"?"), "abcd") == std::vector<int>{0, 0, 1, 1, -1});

  // UTF-8: code points, ranges across encoding lengths, negated classes; invalid UTF-8 never matches.
  const byte_grammar u = compile_grammar("root ::= [α-ω]+ \" \" [^a-z]{2} .");
  CHECK_FALSE(u.matches("λόγος"));
  CHECK(u.matches("λογ ж😀x"));
  CHECK(u.matches("λογ ж😀\n"));  // '.' is any code point, a newline included
  CHECK_FALSE(u.matches("λογ ab x"));
  CHECK_FALSE(u.matches("λογ ж\xF0\x9F\x98x"));  // a truncated 4-byte sequence
  CHECK_FALSE(compile_grammar("root ::= .").matches("\xED\xA0\x80"));  // an encoded surrogate
  CHECK_FALSE(compile_grammar("root ::= .").matches("\xC0\x80"));      // overlong
  CHECK(compile_grammar("root ::= \"\\u4e2d\" . \"\\x41\\U0001F600\"").matches("中\xC3\xA9" "A😀"));
  CHECK(compile_grammar("root ::= [\\]\\[\\-\\^\"]+").matches("][-^\""));
  CHECK(compile_grammar("root ::= [a-]+").matches("a-a"));
  CHECK(compile_grammar("root ::= [^\\n]*").matches("ab\xE4\xB8\xAD"));
  CHECK_FALSE(compile_grammar("root ::= [^\\n]*").matches("a\nb"));
}

TEST_CASE("byte_grammar agrees with compile_regex on regular grammars (matches and dead prefixes)", "[constraints]") {
  const std::vector<std::pair<const char*, const char*>> pairs = {
      {"root ::= (\"a\" | \"b\")* \"abb\"", "(a|b)*abb"},
      {"root ::= [^é]* \"é\" [ab ]*", "[^é]*é[ab ]*"},
      {"root ::= w (\" \" w)*\nw ::= \"cat\" | \"dog\"", "(cat|dog)( (cat|dog))*"},
      {"root ::= \"\"", ""},
      {"root ::= [ab]{2,4}", "[ab]{2,4}"},
      {"root ::= [^\\n]* \"\\n\" [^\\n]*", ".*\\n.*"},
      {"root ::= x x?\nx ::= \"a\"+ | \"ab\" \"x_\"*", "(a+|ab(x_)*)(a+|ab(x_)*)?"},
      {"root ::= (\"é\" | \" \"){1,3} \".\"?", "(é| ){1,3}\\.?"},
  };
  const std::vector<std::string> alphabet = {"a", "b", "ab", " ", " ", "\n", "é", "x_", ".", "cat", "dog", "\xC3"};
  default_engine rng(21);
  std::size_t matched = 0;
  for (const auto& [gbnf, pattern] : pairs) {
    CAPTURE(gbnf, pattern);
    const byte_grammar g = compile_grammar(gbnf);
    const byte_dfa d = compile_regex(pattern);
    for (int i = 0; i < 400; ++i) {
      std::string t;
      const auto n = static_cast<std::size_t>(uniform01(rng) * 7);
      for (std::size_t k = 0; k < n; ++k) t += alphabet[static_cast<std::size_t>(uniform01(rng) * alphabet.size())];
      CAPTURE(t);
      std::int32_t q = g.start, r = d.start;
      REQUIRE((q == byte_grammar::dead) == (r == byte_dfa::dead));
      for (const char c : t) {
        q = g.step(q, static_cast<unsigned char>(c));
        r = d.step(r, static_cast<unsigned char>(c));
        REQUIRE((q == byte_grammar::dead) == (r == byte_dfa::dead));
        REQUIRE(g.accepts(q) == d.accepts(r));
      }
      matched += d.accepts(r);
    }
  }
  CHECK(matched > 100);
}

TEST_CASE("the JSON and arithmetic grammars on hand cases; their states stay few", "[constraints]") {
  const byte_grammar json = compile_grammar(grammars::json);
  for (const char* t : {"0", "-0.5e+10", "\"\"", "\"a\\\"b\\u00e9\\n\"", " [1, 2 , {\"k\": [true, false, null]}]\n",
                        "{}", "[]", "{\"a\":{\"b\":[]}}", "\"中😀\"", "1E5", "\t\r\n null \t"})
    CHECK(json.matches(t));
  for (const char* t : {"", "01", "-", "1.", ".5", "+1", "[1,]", "{\"a\"}", "{a:1}", "\"\\x\"", "\"\n\"", "NaN",
                        "Infinity", "[1 2]", "tru", "\"a", "{\"a\":1,}", "\"\\u12g4\""})
    CHECK_FALSE(json.matches(t));
  // A long string or number reaches a fixed set of states.
  const std::size_t before = json.state_count();
  CHECK(json.matches("[\"" + std::string(20000, 'x') + "\", " + std::string(20000, '7') + "]"));
  CHECK(json.state_count() < before + 40);

  const byte_grammar arith = compile_grammar(grammars::arithmetic);
  for (const char* t : {"1", "1+2", " 12 * (3 - 4) / 5 ", "((7))", "1 -2*3", "0/0"}) CHECK(arith.matches(t));
  for (const char* t : {"", "+1", "1+", "(1", "1)", "1 2", "()", "-1", "1**2"}) CHECK_FALSE(arith.matches(t));
}

// -------------------------------------------------------------------------------------------------
// Lifting to a vocabulary
// -------------------------------------------------------------------------------------------------

namespace {

/// Every candidate of every prefix tried: the cached (trie) next state equals the direct one, and
/// its deadness / acceptance equals running the recogniser byte by byte on the tokenizer's own
/// decode of prefix + candidate.
template <class Decode>
void check_lifted_against_brute_force(token_grammar& c, const Decode& decode, std::uint64_t seed, std::size_t prefixes,
                                      std::size_t max_length, std::size_t& alive_candidates,
                                      std::size_t& accepted_candidates) {
  default_engine rng(seed);
  const std::size_t V = c.vocab_size();
  for (std::size_t p = 0; p < prefixes; ++p) {
    token_sequence prefix;
    const std::size_t length = static_cast<std::size_t>(uniform01(rng) * static_cast<double>(max_length + 1));
    for (std::size_t i = 0; i < length; ++i) {
      // Mostly tokens that keep the grammar alive (so deep states are tried), sometimes any token.
      const std::span<const token_grammar::state> next = c.next_states(c.run(prefix));
      std::vector<token> alive;
      for (std::size_t v = 0; v < V; ++v)
        if (next[v] != token_grammar::dead) alive.push_back(static_cast<token>(v));
      if (alive.empty() || uniform01(rng) < 0.1)
        prefix.push_back(static_cast<token>(uniform01(rng) * static_cast<double>(V)));
      else
        prefix.push_back(alive[static_cast<std::size_t>(uniform01(rng) * static_cast<double>(alive.size()))]);
    }
    CAPTURE(prefix);
    const token_grammar::state s = c.run(prefix);
    const std::span<const token_grammar::state> next = c.next_states(s);
    const std::vector<token_grammar::state> row(next.begin(), next.end());  // run() below may grow caches
    token_sequence extended = prefix;
    extended.push_back(0);
    std::size_t mismatches = 0;
    const byte_grammar& g = c.automaton();
    for (std::size_t v = 0; v < V; ++v) {
      extended.back() = static_cast<token>(v);
      const token_grammar::state direct = c.run(extended);
      const std::string text = decode(extended);
      std::int32_t q = g.start;
      for (const char ch : text) q = g.step(q, static_cast<unsigned char>(ch));
      const bool ok = row[v] == direct && (direct == token_grammar::dead) == (q == byte_grammar::dead) &&
                      c.accepts(direct) == g.accepts(q);
      if (!ok && ++mismatches <= 3) {
        INFO("candidate " << v << ", text \"" << text << "\"");
        CHECK(ok);
      }
      alive_candidates += direct != token_grammar::dead;
      accepted_candidates += c.accepts(direct);
    }
    REQUIRE(mismatches == 0);
  }
}

}  // namespace

TEST_CASE("lifted grammar next states equal brute force on the 32000-token llama2.c tokenizer", "[constraints]") {
  const llama2c::tokenizer& tok = tokenizer_32000();
  const auto decode = [&tok](const token_sequence& s) { return tok.decode(s); };
  std::size_t alive = 0, accepted = 0;
  const std::string story = "root ::= \"Once upon a time\" (\",\" | \".\") (\" \" [a-z]+)* \".\"";
  for (const std::string_view gbnf : {grammars::json, grammars::arithmetic, std::string_view(story)}) {
    CAPTURE(gbnf);
    token_grammar c = make_grammar_constraint(gbnf, tok, {llama2c::tokenizer::eos});
    check_lifted_against_brute_force(c, decode, 31, 6, 6, alive, accepted);
  }
  CHECK(alive > 1000);
  CHECK(accepted > 10);
}

TEST_CASE("lifted grammar next states equal brute force on the word tokenizer", "[constraints]") {
  const word_tokenizer& words = story_words();
  const auto decode = [&words](const token_sequence& s) { return words.decode(s); };
  std::size_t alive = 0, accepted = 0;
  for (const char* gbnf : {"root ::= [a-z]+ | \"the \" root | root \" and \" root | root \" .\"",
                           "root ::= w (\" \" w){1,4}\nw ::= [a-z]+ | \"(\" | \")\"", "root ::= [^e]*"}) {
    CAPTURE(gbnf);
    token_grammar c = make_grammar_constraint(gbnf, words, {word_tokenizer::end_token});
    check_lifted_against_brute_force(c, decode, 32, 20, 6, alive, accepted);
  }
  CHECK(alive > 100);
  CHECK(accepted > 10);
}

TEST_CASE("grammar feasibility equals enumeration of every continuation within the horizon", "[constraints]") {
  const word_tokenizer words = toy_words();
  const std::size_t V = words.vocab_size();
  for (const bool with_end : {false, true}) {
    for (const char* gbnf : {"root ::= \"a \" root \" b\" | \"ab\"", "root ::= x | x \" \" root\nx ::= \"ab\" | \"ba\"",
                             "root ::= (\"a\" | \"b\") \" \" root \" \" (\"a\" | \"b\") | \"ba\""}) {
      for (std::size_t T : {1u, 2u, 3u, 4u}) {
        CAPTURE(with_end, gbnf, T);
        token_grammar c = make_grammar_constraint(gbnf, words, with_end ? std::vector<token>{2} : std::vector<token>{});
        tsmc_constraints_test::check_feasibility_by_enumeration(c, V, T, with_end);
      }
    }
  }
}

// -------------------------------------------------------------------------------------------------
// SMC with a grammar target against exact answers
// -------------------------------------------------------------------------------------------------

namespace {

/// The enumerable toy: V = 7 (toy_words), horizon 4, end token </s>, a random tabular model.
struct grammar_toy {
  word_tokenizer words = toy_words();
  toy_problem problem{7, 4, token_sequence{1}, token{2}};
  tabular_model model{7, 5, 1.0};
  token_grammar constraint;

  explicit grammar_toy(std::string_view gbnf) : constraint(make_grammar_constraint(gbnf, words, {2})) {}

  [[nodiscard]] smc_options options(std::size_t particles, proposal_type proposal) const {
    return smc_options{.particles = particles, .horizon = 4, .proposal = proposal, .end_token = 2,
                       .check_normalization = true};
  }
};

/// A context-free (not regular) target: a^n x b^n around a core word, or a list of words.
constexpr std::string_view toy_grammar = "root ::= \"a \" root \" b\" | x | x \" \" x\nx ::= \"ab\" | \"ba\"";

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
  REQUIRE((b.lower.mean == minus_inf || b.lower.mean - z_limit * b.lower.standard_error < solution.log_z()));
  REQUIRE(b.upper.mean + z_limit * b.upper.standard_error > solution.log_z());
}

}  // namespace

TEST_CASE("SMC with a grammar target: E[Zhat] = Z and the bounds bracket log Z (base; feasibility-twisted)",
          "[constraints]") {
  grammar_toy toy(toy_grammar);
  grammar_potential phi(toy.constraint);
  const exact_solution solution = enumerate(toy.problem, toy.model, phi);
  INFO("Z = " << std::exp(solution.log_z()));
  REQUIRE(solution.log_z() > std::log(1e-3));
  REQUIRE(solution.log_z() < std::log(0.5));
  {
    no_twist none;
    twisted_smc smc(toy.model, none, phi, toy.options(4, proposal_type::base), multinomial{}, ess_below(0.5));
    check_unbiased_and_bounds(smc, solution, toy.problem.prompt, 1100);
  }
  {
    feasibility_twist<no_twist, token_grammar> feasible(toy.constraint, no_twist{});
    twisted_smc smc(toy.model, feasible, phi, toy.options(4, proposal_type::twisted), systematic{}, ess_below(0.5));
    check_unbiased_and_bounds(smc, solution, toy.problem.prompt, 1200);
    // With feasibility no particle is ever dead: every run has Zhat > 0.
    default_engine rng(15);
    for (int m = 0; m < 200; ++m) REQUIRE(smc.run(toy.problem.prompt, rng).log_z > minus_inf);
  }
}

TEST_CASE("SMC with a product of a grammar, a regex and a soft classifier: E[Zhat] = Z, bounds bracket log Z",
          "[constraints]") {
  grammar_toy toy(toy_grammar);
  token_dfa no_ba = make_regex_constraint("(a|b|ab)( (a|b|ab))*", toy.words, {2});  // no word "ba"
  auto phi = product(grammar_potential(toy.constraint), dfa_potential(no_ba), soft_classifier::random(7, 3, 1.5));
  STATIC_REQUIRE(decltype(phi)::has_next_token_form);
  const exact_solution solution = enumerate(toy.problem, toy.model, phi);
  INFO("Z = " << std::exp(solution.log_z()));
  REQUIRE(solution.log_z() > std::log(1e-3));
  feasibility_twist<random_twist, token_grammar> twist(toy.constraint, random_twist(8, 0.5));
  twisted_smc smc(toy.model, twist, phi, toy.options(4, proposal_type::twisted), stratified{}, ess_below(0.6));
  check_unbiased_and_bounds(smc, solution, toy.problem.prompt, 1300);

  // The product's next-token form equals its sequence form for every prefix and candidate.
  const std::vector<token_sequence> prefixes = {{}, {3}, {5}, {3, 5}, {6, 3}, {0}, {3, 3, 5}};
  std::vector<std::uint8_t> active(prefixes.size(), 1);
  const step_context<tabular_model> ctx{1, 4, toy.problem.prompt, prefixes, active, toy.model};
  log_prob_matrix next(static_cast<Eigen::Index>(prefixes.size()), 7);
  phi.log_potential_next(ctx, next);
  std::size_t finite = 0;
  for (std::size_t k = 0; k < prefixes.size(); ++k)
    for (token v = 0; v < 7; ++v) {
      token_sequence seq = prefixes[k];
      seq.push_back(v);
      double expected = 0.0;
      phi.log_potential(std::span<const token_sequence>(&seq, 1), std::span<double>(&expected, 1));
      INFO("prefix " << k << ", candidate " << v);
      const double got = next(static_cast<Eigen::Index>(k), v);
      if (expected == minus_inf) {
        REQUIRE(got == minus_inf);
      } else {
        REQUIRE(got == Approx(expected).margin(1e-12));
        ++finite;
      }
    }
  CHECK(finite >= 3);
}

TEST_CASE("an unsatisfiable grammar is an error before sampling", "[constraints]") {
  grammar_toy toy("root ::= \"a \" root | \"b b b b b\"");  // at least five words
  grammar_potential phi(toy.constraint);
  feasibility_twist<no_twist, token_grammar> twist(toy.constraint, no_twist{});
  twisted_smc smc(toy.model, twist, phi, toy.options(4, proposal_type::twisted));
  default_engine rng(1);
  REQUIRE_THROWS_WITH(smc.run(toy.problem.prompt, rng),
                      Contains("tsmc::feasibility_twist::log_twist: constraint must be satisfiable within the horizon "
                               "(no finished sequence of at most 4 tokens is accepted)"));
  const std::vector<token_sequence> prefixes = {{}};
  std::vector<std::uint8_t> active(1, 1);
  const step_context<tabular_model> ctx{4, 4, toy.problem.prompt, prefixes, active, toy.model};
  log_prob_matrix next(1, 7);
  REQUIRE_THROWS_WITH(phi.log_potential_next(ctx, next),
                      Contains("tsmc::grammar_potential::log_potential_next: constraint must be satisfiable"));
  REQUIRE_FALSE(toy.constraint.satisfiable(4));
  REQUIRE(toy.constraint.satisfiable(5));
}
