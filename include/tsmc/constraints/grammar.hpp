#pragma once
/// @file
/// @brief Context-free grammar constraints: a GBNF parser (llama.cpp's grammar syntax), an
/// incremental Earley recogniser over bytes whose chart columns are interned (so it behaves like a
/// lazily built DFA over the prefixes it meets), and its lifting to a vocabulary (token_grammar,
/// grammar_potential) through the same token_automaton as token_dfa.
///
/// Syntax (GBNF, as llama.cpp's grammars; the decoded text must be matched fully by `root`):
/// - rules `name ::= alternatives`; names are `[a-zA-Z0-9-]+`; `root` is the start rule; each
///   rule is defined once; a rule ends at the end of its line, except inside parentheses and
///   after `::=` or `|` (as llama.cpp), and a line starting with `|` continues the alternatives
///   (an extension);
/// - alternatives separated by `|`, each a sequence of elements (an empty sequence matches "");
/// - elements: a literal `"..."`, a class `[...]` or `[^...]` (code points and ranges `a-z`,
///   also non-ASCII; a negated class matches any code point outside it, `\n` included), `.` (any
///   code point, `\n` included), a rule name, a group `( alternatives )`;
/// - escapes in literals and classes: `\n \t \r \\ \" \[ \] \- \^`, `\xHH`, `\uHHHH`,
///   `\UHHHHHHHH` (the code point, as UTF-8);
/// - postfix operators after an element: `*`, `+`, `?`, `{m}`, `{m,}`, `{m,n}`, `{,n}` with counts
///   up to max_grammar_repeat (one operator per element: group to stack them);
/// - spaces and tabs separate symbols (newlines too where a rule may span lines); `#` starts a
///   comment to the end of the line.
/// Rules may be recursive in any way, left recursion and nullable rules included. The text is
/// UTF-8: characters and classes are code points encoded as their UTF-8 byte sequences (the
/// surrogates U+D800-DFFF are never matched), so a text that is not valid UTF-8 is matched only
/// where the grammar's own bytes allow it (never, unless a literal or class spells such bytes,
/// which the syntax cannot). Malformed input is a tsmc::invalid_argument naming the position
/// (line:column, the column in bytes, both from 1) and what was expected, as
/// "tsmc::compile_grammar: grammar at 3:7 expected '::=', got '='"; so are a reference to an
/// undefined rule (at the reference) and a grammar without `root`.
///
/// Recognition: the grammar is compiled to a context-free grammar over byte-range terminals
/// (`x*` and `x+` become left-recursive rules, `{m,n}` m copies and a nested optional chain).
/// Symbols that derive no text (a class with no code point, a rule that never terminates) are
/// removed first, so every live Earley item can still be completed: a state is dead exactly when
/// no continuation of the text is accepted (viable-prefix detection is exact). Nullable rules use
/// Aycock and Horspool's fix (an item waiting on a nullable symbol also moves past it when it is
/// predicted), so completions of empty spans are never needed. A state is one Earley column: its
/// unfinished items, each with its origin as an interned node (the items of the origin column that
/// a completion there can reach: those waiting on the item's rule, closed under the items begun in
/// that column), or "this column", plus whether the text so far is accepted. Equal columns get
/// equal ids, and each state's transition on each byte is cached: texts that differ only inside a
/// repetition (`[a-z]*`, a JSON string's characters, an array's elements) reach the same state.
/// The states still grow with the distinct nesting contexts met (a JSON text nested k deep has a
/// state per stack of open arrays / objects / keys): 6,328 random JSON documents nested up to 6
/// deep intern about 100,000 states (about 200 MB). Right recursion over a long text
/// (`chars ::= char chars | ""`) makes a new state per byte: write `char*` instead. At most
/// max_grammar_states states are interned; past that a step throws tsmc::runtime_error.
///
/// Lifting: token_grammar = token_automaton<byte_grammar> (token_dfa.hpp): lifted states
/// (grammar state, text_mode), one trie walk per lifted state for its next-state row,
/// grammar_potential with the exact next-token form, and the exact feasibility G_r, usable as
/// feasibility_twist<Twist, token_grammar>. G_r is exact but explores every distinct lifted state
/// reachable within the tokens left (a trie walk each), which for deep grammars (nested brackets)
/// can be costly on long horizons; the potential alone only needs satisfiable(T) once.

#include <tsmc/constraints/regex.hpp>
#include <tsmc/constraints/token_bytes.hpp>
#include <tsmc/constraints/token_dfa.hpp>
#include <tsmc/core/error.hpp>
#include <tsmc/core/types.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

namespace tsmc {

/// @brief The largest count a `{m,n}` operator accepts.
inline constexpr std::size_t max_grammar_repeat = 1000;

/// @brief The largest number of Earley states (interned chart columns) a byte_grammar builds.
inline constexpr std::size_t max_grammar_states = 200'000;

class byte_grammar;
[[nodiscard]] byte_grammar compile_grammar(std::string_view gbnf);

namespace detail::grammar {

/// A context-free grammar over byte ranges: a symbol >= 0 is a nonterminal, -(t + 1) terminal t.
struct cfg {
  std::vector<std::pair<unsigned char, unsigned char>> terminals;
  std::map<std::pair<unsigned char, unsigned char>, std::int32_t> terminal_index;
  std::vector<std::int32_t> lhs;
  std::vector<std::vector<std::int32_t>> rhs;
  std::size_t nonterminals = 0;

  std::int32_t add_nonterminal() { return static_cast<std::int32_t>(nonterminals++); }
  std::int32_t terminal(unsigned char lo, unsigned char hi) {
    const auto key = std::make_pair(lo, hi);
    const auto it = terminal_index.find(key);
    if (it != terminal_index.end()) return -(it->second + 1);
    const auto t = static_cast<std::int32_t>(terminals.size());
    terminals.push_back(key);
    terminal_index.emplace(key, t);
    return -(t + 1);
  }
  void add(std::int32_t nt, std::vector<std::int32_t> symbols) {
    lhs.push_back(nt);
    rhs.push_back(std::move(symbols));
  }
};

/// A recursive-descent GBNF parser producing a cfg.
class parser {
 public:
  parser(std::string_view text, cfg& g) : text_(text), g_(g) {}

  /// Parses the grammar; returns the nonterminal of `root`.
  std::int32_t parse() {
    skip_space();
    while (!at_end()) {
      const std::size_t name_at = pos_;
      const std::string name = identifier("expected a rule name ([a-zA-Z0-9-]+)");
      skip_blanks();
      if (text_.substr(pos_, 3) != "::=") fail("expected '::='", quoted(pos_));
      pos_ += 3;
      const std::int32_t nt = rule(name, name_at);
      rule_info& info = rules_[name];
      if (info.defined) fail_at(name_at, "expected each rule defined once (rule '" + name + "' is first defined at " + where(info.defined_at) + ")", "'" + name + "' again");
      info.defined = true;
      info.defined_at = name_at;
      alternatives(nt, 0);
      skip_space();
      if (!at_end() && (peek() == ')' || peek() == '|'))
        fail("expected a rule name starting the next rule (an unmatched ')'?)", quoted(pos_));
    }
    for (const auto& [name, info] : rules_)
      if (!info.defined) fail_at(info.first_use, "expected a rule defined in the grammar", "'" + name + "' (undefined)");
    const auto root = rules_.find("root");
    if (root == rules_.end() || !root->second.defined)
      throw_invalid_argument("compile_grammar", "grammar", "expected a rule named 'root' (the start rule)", "none");
    return root->second.id;
  }

 private:
  struct rule_info {
    std::int32_t id = 0;
    bool defined = false;
    std::size_t defined_at = 0, first_use = 0;
  };

  [[nodiscard]] std::string where(std::size_t at) const {
    std::size_t line = 1, column = 1;
    for (std::size_t i = 0; i < at && i < text_.size(); ++i) {
      if (text_[i] == '\n') {
        ++line;
        column = 1;
      } else {
        ++column;
      }
    }
    return std::to_string(line) + ":" + std::to_string(column);
  }
  [[noreturn]] void fail(std::string_view expected, const std::string& got) const { fail_at(pos_, expected, got); }
  [[noreturn]] void fail_at(std::size_t at, std::string_view expected, const std::string& got) const {
    throw_invalid_argument("compile_grammar", "grammar at " + where(at), expected, got);
  }
  [[nodiscard]] std::string quoted(std::size_t at) const {
    if (at >= text_.size()) return "the end of the grammar";
    if (text_[at] == '\n') return "a newline";
    return regex::quoted_character(text_, at);
  }
  [[nodiscard]] bool at_end() const { return pos_ >= text_.size(); }
  [[nodiscard]] char peek() const { return text_[pos_]; }
  static bool name_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
  }

  /// Spaces, tabs, newlines and comments.
  void skip_space() {
    while (!at_end()) {
      const char c = peek();
      if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
        ++pos_;
      } else if (c == '#') {
        while (!at_end() && peek() != '\n') ++pos_;
      } else {
        break;
      }
    }
  }
  /// Spaces and tabs only (between a rule's name and '::=').
  void skip_blanks() {
    while (!at_end() && (peek() == ' ' || peek() == '\t')) ++pos_;
  }
  /// Whether a rule definition `name ::=` starts at pos_.
  [[nodiscard]] bool at_rule_start() const {
    std::size_t i = pos_;
    while (i < text_.size() && name_char(text_[i])) ++i;
    if (i == pos_) return false;
    while (i < text_.size() && (text_[i] == ' ' || text_[i] == '\t')) ++i;
    return text_.substr(i, 3) == "::=";
  }

  std::string identifier(std::string_view expected) {
    const std::size_t at = pos_;
    while (!at_end() && name_char(peek())) ++pos_;
    if (pos_ == at) fail(expected, quoted(pos_));
    return std::string(text_.substr(at, pos_ - at));
  }

  /// The nonterminal of a rule name, allocated on first mention.
  std::int32_t rule(const std::string& name, std::size_t at) {
    const auto it = rules_.find(name);
    if (it != rules_.end()) return it->second.id;
    rule_info info;
    info.id = g_.add_nonterminal();
    info.first_use = at;
    rules_.emplace(name, info);
    return info.id;
  }

  void alternatives(std::int32_t nt, std::size_t depth) {
    if (depth > 200) fail("expected groups nested at most 200 deep", quoted(pos_));
    for (;;) {
      g_.add(nt, sequence(depth));
      skip_space();
      if (at_end() || peek() != '|') return;
      ++pos_;
    }
  }

  /// A sequence; at the top level (depth 0) it ends at the end of its line.
  std::vector<std::int32_t> sequence(std::size_t depth) {
    std::vector<std::int32_t> out;
    skip_space();  // after '::=' or '|' a sequence may start on the next line
    for (;;) {
      if (at_end() || peek() == '|' || peek() == ')' || peek() == '\n' || peek() == '\r' || at_rule_start()) return out;
      element(out, depth);
      skip_inline(depth);
    }
  }

  /// Whitespace and comments within a rule: newlines too inside a group, not at the top level.
  void skip_inline(std::size_t depth) {
    if (depth > 0) {
      skip_space();
      return;
    }
    while (!at_end()) {
      const char c = peek();
      if (c == ' ' || c == '\t') {
        ++pos_;
      } else if (c == '#') {
        while (!at_end() && peek() != '\n') ++pos_;
      } else {
        break;
      }
    }
  }

  /// One element with its postfix operator, appended to out.
  void element(std::vector<std::int32_t>& out, std::size_t depth) {
    std::vector<std::int32_t> atom_symbols = atom(depth);
    skip_inline(depth);
    if (at_end()) {
      out.insert(out.end(), atom_symbols.begin(), atom_symbols.end());
      return;
    }
    const char c = peek();
    if (c != '*' && c != '+' && c != '?' && c != '{') {
      out.insert(out.end(), atom_symbols.begin(), atom_symbols.end());
      return;
    }
    const std::size_t op_at = pos_;
    std::size_t min = 0, max = 0;
    constexpr std::size_t unbounded = static_cast<std::size_t>(-1);
    ++pos_;
    if (c == '*') {
      max = unbounded;
    } else if (c == '+') {
      min = 1;
      max = unbounded;
    } else if (c == '?') {
      max = 1;
    } else {
      skip_blanks();
      const bool has_min = !at_end() && peek() >= '0' && peek() <= '9';
      min = has_min ? count() : 0;
      skip_blanks();
      if (!at_end() && peek() == ',') {
        ++pos_;
        skip_blanks();
        max = (!at_end() && peek() >= '0' && peek() <= '9') ? count() : unbounded;
        skip_blanks();
      } else {
        if (!has_min) fail("expected a count after '{'", quoted(pos_));
        max = min;
      }
      if (at_end() || peek() != '}') fail("expected '}' closing the repetition opened at " + where(op_at), quoted(pos_));
      ++pos_;
      if (max != unbounded && max < min)
        fail_at(op_at, "expected a repetition {m,n} with m <= n", std::to_string(min) + " > " + std::to_string(max));
    }
    skip_inline(depth);
    if (!at_end() && (peek() == '*' || peek() == '+' || peek() == '?' || peek() == '{'))
      fail("expected an element before a postfix operator (group the element to repeat it again)", quoted(pos_));
    // The atom as one symbol.
    std::int32_t x = 0;
    if (atom_symbols.size() == 1) {
      x = atom_symbols[0];
    } else {
      x = g_.add_nonterminal();
      g_.add(x, std::move(atom_symbols));
    }
    for (std::size_t i = 0; i < min; ++i) out.push_back(x);
    if (max == unbounded) {
      // R ::= R x | "": left recursion keeps the Earley states of a long repetition equal.
      const std::int32_t r = g_.add_nonterminal();
      g_.add(r, {r, x});
      g_.add(r, {});
      out.push_back(r);
    } else if (max > min) {
      // O_1 ::= x | "", O_k ::= x O_{k-1} | "": at most max - min more, unambiguously.
      std::int32_t chain = g_.add_nonterminal();
      g_.add(chain, {x});
      g_.add(chain, {});
      for (std::size_t k = 2; k <= max - min; ++k) {
        const std::int32_t next = g_.add_nonterminal();
        g_.add(next, {x, chain});
        g_.add(next, {});
        chain = next;
      }
      out.push_back(chain);
    }
  }

  std::size_t count() {
    const std::size_t at = pos_;
    std::size_t v = 0;
    while (!at_end() && peek() >= '0' && peek() <= '9') {
      v = v * 10 + static_cast<std::size_t>(peek() - '0');
      ++pos_;
      if (v > max_grammar_repeat)
        fail_at(at, "expected a repeat count of at most " + std::to_string(max_grammar_repeat), std::to_string(v) + "...");
    }
    return v;
  }

  /// An atom's symbols (a literal's bytes; one symbol otherwise).
  std::vector<std::int32_t> atom(std::size_t depth) {
    const char c = peek();
    if (c == '"') {
      const std::size_t open = pos_++;
      std::vector<std::int32_t> symbols;
      for (;;) {
        if (at_end()) fail("expected '\"' closing the literal opened at " + where(open), quoted(pos_));
        if (peek() == '"') {
          ++pos_;
          return symbols;
        }
        const std::uint32_t cp = peek() == '\\' ? escape() : code_point();
        for (const char b : regex::encode_utf8(cp)) {
          const auto u = static_cast<unsigned char>(b);
          symbols.push_back(g_.terminal(u, u));
        }
      }
    }
    if (c == '[') return {code_point_class(bracket())};
    if (c == '.') {
      ++pos_;
      return {code_point_class(regex::complement({}))};
    }
    if (c == '(') {
      const std::size_t open = pos_++;
      const std::int32_t nt = g_.add_nonterminal();
      alternatives(nt, depth + 1);
      if (at_end() || peek() != ')') fail("expected ')' closing the group opened at " + where(open), quoted(pos_));
      ++pos_;
      return {nt};
    }
    if (name_char(c)) {
      const std::size_t at = pos_;
      const std::string name = identifier("expected a rule name");
      return {rule(name, at)};
    }
    if (c == '*' || c == '+' || c == '?' || c == '{') fail("expected an element before a postfix operator", quoted(pos_));
    fail("expected a literal \"...\", a class [...], '.', '(' or a rule name", quoted(pos_));
  }

  /// A nonterminal deriving exactly the UTF-8 encodings of a set of code points.
  std::int32_t code_point_class(const regex::code_point_set& set) {
    const std::int32_t nt = g_.add_nonterminal();
    std::vector<regex::byte_range_sequence> seqs;
    for (const auto& r : set) regex::utf8_sequences(r.first, r.second, seqs);
    for (const regex::byte_range_sequence& seq : seqs) {
      std::vector<std::int32_t> symbols;
      for (const auto& [lo, hi] : seq) symbols.push_back(g_.terminal(lo, hi));
      g_.add(nt, std::move(symbols));
    }
    return nt;
  }

  regex::code_point_set bracket() {
    const std::size_t open = pos_++;
    bool negate = false;
    if (!at_end() && peek() == '^') {
      negate = true;
      ++pos_;
    }
    regex::code_point_set members;
    bool first = true;
    for (;;) {
      if (at_end()) fail("expected ']' closing the class opened at " + where(open), quoted(pos_));
      if (peek() == ']') {
        if (first) fail("expected a class member (escape a literal ']' as \\])", quoted(pos_));
        ++pos_;
        break;
      }
      first = false;
      const std::size_t member_at = pos_;
      const std::uint32_t lo = peek() == '\\' ? escape() : code_point();
      if (!at_end() && peek() == '-' && pos_ + 1 < text_.size() && text_[pos_ + 1] != ']') {
        ++pos_;
        const std::uint32_t hi = peek() == '\\' ? escape() : code_point();
        if (hi < lo) fail_at(member_at, "expected a range lo-hi with lo <= hi", std::string(text_.substr(member_at, pos_ - member_at)));
        if (lo <= 0xDFFF && hi >= 0xD800) {
          // A range across the surrogates keeps the code points around them.
          if (lo < 0xD800) members.emplace_back(lo, 0xD7FF);
          if (hi > 0xDFFF) members.emplace_back(0xE000, hi);
        } else {
          members.emplace_back(lo, hi);
        }
      } else {
        members.emplace_back(lo, lo);
      }
    }
    return negate ? regex::complement(members) : regex::normalized(members);
  }

  std::uint32_t hex(std::size_t digits) {
    std::uint32_t v = 0;
    for (std::size_t i = 0; i < digits; ++i) {
      const char h = at_end() ? '\0' : peek();
      std::uint32_t d = 0;
      if (h >= '0' && h <= '9') d = static_cast<std::uint32_t>(h - '0');
      else if (h >= 'a' && h <= 'f') d = static_cast<std::uint32_t>(h - 'a' + 10);
      else if (h >= 'A' && h <= 'F') d = static_cast<std::uint32_t>(h - 'A' + 10);
      else fail("expected " + std::to_string(digits) + " hexadecimal digits", quoted(pos_));
      v = v * 16 + d;
      ++pos_;
    }
    return v;
  }

  /// An escape at pos_ ('\\'), as a code point.
  std::uint32_t escape() {
    const std::size_t at = pos_++;
    if (at_end()) fail_at(at, "expected a character after '\\'", "the end of the grammar");
    const char c = peek();
    ++pos_;
    std::uint32_t v = 0;
    switch (c) {
      case 'n': return '\n';
      case 't': return '\t';
      case 'r': return '\r';
      case '\\': case '"': case '[': case ']': case '-': case '^': return static_cast<std::uint32_t>(c);
      case 'x': v = hex(2); break;
      case 'u': v = hex(4); break;
      case 'U': v = hex(8); break;
      default:
        fail_at(at, "expected a supported escape (\\n \\t \\r \\\\ \\\" \\[ \\] \\- \\^ \\xHH \\uHHHH \\UHHHHHHHH)", quoted(at + 1));
    }
    if (v > regex::max_code_point || (v >= 0xD800 && v <= 0xDFFF))
      fail_at(at, "expected a code point in U+0000-U+10FFFF outside the surrogates", std::string(text_.substr(at, pos_ - at)));
    return v;
  }

  /// One UTF-8 code point of the grammar text at pos_.
  std::uint32_t code_point() {
    const std::size_t at = pos_;
    std::uint32_t c = 0;
    std::string problem;
    if (!regex::decode_code_point(text_, pos_, c, problem)) fail_at(at, "expected valid UTF-8", problem);
    return c;
  }

  std::string_view text_;
  cfg& g_;
  std::size_t pos_ = 0;
  std::map<std::string, rule_info> rules_;
};

/// Hash of an interned column's key.
struct key_hash {
  std::size_t operator()(const std::vector<std::uint64_t>& v) const noexcept {
    std::uint64_t h = 0x9E3779B97F4A7C15ull ^ v.size();
    for (const std::uint64_t x : v) {
      h ^= x + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2);
      h *= 0xBF58476D1CE4E5B9ull;
    }
    return static_cast<std::size_t>(h ^ (h >> 31));
  }
};

}  // namespace detail::grammar

/// @brief A compiled grammar with its incremental Earley recogniser over bytes (see the file's
/// description): states are int32 ids (interned chart columns), byte_grammar::dead (-1) when no
/// continuation can be accepted. Models tsmc::ByteAutomaton like byte_dfa, so token_automaton
/// lifts it.
///
/// Not thread-safe: step fills the state table on use (its const members change mutable caches).
class byte_grammar {
 public:
  /// @brief The dead state: no accepted text extends the prefix.
  static constexpr std::int32_t dead = -1;

  /// @brief The state of the empty text (dead for a grammar that matches nothing).
  std::int32_t start = dead;

  /// @brief The state after byte b from state q (dead stays dead); built and cached on first use.
  /// @throw tsmc::runtime_error if a new state would exceed max_grammar_states
  [[nodiscard]] std::int32_t step(std::int32_t q, unsigned char b) const {
    if (q == dead) return dead;
    const auto qi = static_cast<std::size_t>(q);
    if (next_[qi].empty()) next_[qi].assign(256, unknown);
    const std::int32_t cached = next_[qi][b];
    if (cached != unknown) return cached;
    const std::int32_t r = compute_step(q, b);
    next_[qi][b] = r;  // next_ may have grown in compute_step: index again
    return r;
  }

  /// @brief The state after the bytes from state q (dead stays dead).
  /// @throw tsmc::runtime_error as step
  [[nodiscard]] std::int32_t run(std::int32_t q, std::string_view bytes) const {
    for (const char c : bytes) {
      if (q == dead) return dead;
      q = step(q, static_cast<unsigned char>(c));
    }
    return q;
  }

  /// @brief Whether the text that led to q is accepted (never for dead).
  [[nodiscard]] bool accepts(std::int32_t q) const noexcept {
    return q != dead && columns_[static_cast<std::size_t>(q)].accepting;
  }

  /// @brief Whether the whole text is matched by root.
  /// @throw tsmc::runtime_error as step
  [[nodiscard]] bool matches(std::string_view text) const { return accepts(run(start, text)); }

  /// @brief The number of states interned so far.
  [[nodiscard]] std::size_t state_count() const noexcept { return columns_.size(); }

  /// @brief The number of productions of the compiled byte-level grammar (after removing those
  /// that derive no text).
  [[nodiscard]] std::size_t production_count() const noexcept { return lhs_.size(); }

 private:
  friend byte_grammar compile_grammar(std::string_view gbnf);

  static constexpr std::int32_t unknown = -2;
  static constexpr std::uint32_t self = 0;  // origin field of an item begun in its own column

  struct column {
    std::vector<std::uint64_t> items;  // unfinished items, sorted
    bool accepting = false;
  };

  // An item packs the production (20 bits), the dot (12 bits) and the origin (32 bits): self = 0
  // for an item begun in the column (or node) that holds it, else 1 + the id of an interned
  // origin node. The origin node of an item [A -> ... , i] is not all of column i but only what a
  // completion of A there can reach: the items of column i waiting on A and, for those begun in
  // column i themselves (origin self), the items waiting on their left-hand sides, to closure.
  // Texts that differ in what is no longer reachable (the digits of an earlier array element)
  // then share states.
  [[nodiscard]] static std::uint64_t pack(std::size_t p, std::size_t dot, std::uint32_t origin) noexcept {
    return (static_cast<std::uint64_t>(p) << 44) | (static_cast<std::uint64_t>(dot) << 32) | origin;
  }
  [[nodiscard]] static std::size_t production(std::uint64_t item) noexcept { return static_cast<std::size_t>(item >> 44); }
  [[nodiscard]] static std::size_t dot(std::uint64_t item) noexcept { return static_cast<std::size_t>((item >> 32) & 0xFFF); }
  [[nodiscard]] static std::uint32_t origin(std::uint64_t item) noexcept { return static_cast<std::uint32_t>(item); }

  void add(std::uint64_t item) const {
    if (seen_.insert(item).second) work_.push_back(item);
  }

  /// Earley's predictor and completer to closure over work_, then the column interned (or dead).
  std::int32_t close_and_intern() const {
    bool accepting = false;
    while (!work_.empty()) {
      const std::uint64_t item = work_.back();
      work_.pop_back();
      const std::size_t p = production(item), d = dot(item);
      const std::uint32_t o = origin(item);
      const std::vector<std::int32_t>& rhs = rhs_[p];
      if (d == rhs.size()) {
        if (p == start_production_) accepting = true;
        // An empty span (origin self): its lhs is nullable, and every item waiting on it moved
        // past it when predicted (Aycock and Horspool), so there is nothing to complete.
        if (o == self) continue;
        const std::int32_t B = lhs_[p];
        const std::size_t node = o - 1;  // the origin node: the items waiting on B where the item began
        for (std::size_t k = 0; k < nodes_[node].size(); ++k) {
          const std::uint64_t parent = nodes_[node][k];  // nodes_ may grow in sub_node: index again
          const std::size_t pp = production(parent), pd = dot(parent);
          if (rhs_[pp][pd] != B) continue;
          const std::uint32_t po = origin(parent);
          add(pack(pp, pd + 1, po == self ? sub_node(node_key(node), lhs_[pp]) : po));
        }
      } else if (const std::int32_t sym = rhs[d]; sym >= 0) {
        for (const std::int32_t q : productions_of_[static_cast<std::size_t>(sym)]) add(pack(static_cast<std::size_t>(q), 0, self));
        if (nullable_[static_cast<std::size_t>(sym)]) add(pack(p, d + 1, o));
      }
    }
    key_.clear();
    for (const std::uint64_t item : seen_)
      if (dot(item) < rhs_[production(item)].size()) key_.push_back(item);
    seen_.clear();
    if (key_.empty() && !accepting) return dead;
    std::sort(key_.begin(), key_.end());
    if (accepting) key_.push_back(~std::uint64_t{0});  // sorts after every item: part of the key
    if (const auto it = index_.find(key_); it != index_.end()) return it->second;
    if (columns_.size() >= max_grammar_states)
      throw_runtime_error("byte_grammar::step", "the number of Earley states",
                          "must stay at most max_grammar_states = " + std::to_string(max_grammar_states) +
                              " (a grammar nesting without bound, such as right recursion over a long text; "
                              "write x* for repetitions)",
                          columns_.size() + 1);
    const auto id = static_cast<std::int32_t>(columns_.size());
    index_.emplace(key_, id);
    column c;
    c.accepting = accepting;
    c.items.assign(key_.begin(), key_.end() - (accepting ? 1 : 0));
    columns_.push_back(std::move(c));
    next_.emplace_back();
    return id;
  }

  /// Earley's scanner on byte b from column q, then closure.
  std::int32_t compute_step(std::int32_t q, unsigned char b) const {
    const auto qi = static_cast<std::size_t>(q);
    for (const std::uint64_t item : columns_[qi].items) {
      const std::size_t p = production(item), d = dot(item);
      const std::int32_t sym = rhs_[p][d];
      if (sym >= 0) continue;
      const auto& [lo, hi] = terminals_[static_cast<std::size_t>(-sym - 1)];
      if (b < lo || b > hi) continue;
      const std::uint32_t o = origin(item);
      add(pack(p, d + 1, o == self ? sub_node(column_key(q), lhs_[p]) : o));
    }
    return close_and_intern();
  }

  // Keys for the sub_node cache: a column or a node, and a nonterminal.
  [[nodiscard]] static std::uint64_t column_key(std::int32_t q) noexcept { return static_cast<std::uint64_t>(q) << 1; }
  [[nodiscard]] static std::uint64_t node_key(std::size_t n) noexcept { return (static_cast<std::uint64_t>(n) << 1) | 1; }

  /// 1 + the id of the origin node for items [A -> ..., here] begun in a column (or a node): its
  /// items waiting on A, closed under "an item begun here also needs the items waiting on its lhs".
  std::uint32_t sub_node(std::uint64_t where, std::int32_t A) const {
    const auto cached = sub_node_cache_.find(std::make_pair(where, A));
    if (cached != sub_node_cache_.end()) return cached->second;
    const std::vector<std::uint64_t> items = (where & 1) ? nodes_[static_cast<std::size_t>(where >> 1)]
                                                         : columns_[static_cast<std::size_t>(where >> 1)].items;
    std::vector<std::int32_t> wanted{A};
    std::vector<std::uint8_t> wanted_seen(productions_of_.size(), 0);
    wanted_seen[static_cast<std::size_t>(A)] = 1;
    std::vector<std::uint64_t> node;
    for (std::size_t w = 0; w < wanted.size(); ++w) {
      for (const std::uint64_t item : items) {
        if (rhs_[production(item)][dot(item)] != wanted[w]) continue;
        node.push_back(item);
        const auto lhs = static_cast<std::size_t>(lhs_[production(item)]);
        if (origin(item) == self && !wanted_seen[lhs]) {
          wanted_seen[lhs] = 1;
          wanted.push_back(lhs_[production(item)]);
        }
      }
    }
    std::sort(node.begin(), node.end());
    node.erase(std::unique(node.begin(), node.end()), node.end());
    std::uint32_t id = 0;
    if (const auto it = node_index_.find(node); it != node_index_.end()) {
      id = it->second;
    } else {
      id = static_cast<std::uint32_t>(nodes_.size()) + 1;
      node_index_.emplace(node, id);
      nodes_.push_back(std::move(node));
    }
    sub_node_cache_.emplace(std::make_pair(where, A), id);
    return id;
  }

  std::vector<std::pair<unsigned char, unsigned char>> terminals_;
  std::vector<std::int32_t> lhs_;
  std::vector<std::vector<std::int32_t>> rhs_;
  std::vector<std::vector<std::int32_t>> productions_of_;
  std::vector<std::uint8_t> nullable_;
  std::size_t start_production_ = 0;

  struct pair_hash {
    std::size_t operator()(const std::pair<std::uint64_t, std::int32_t>& k) const noexcept {
      return static_cast<std::size_t>((k.first * 0x9E3779B97F4A7C15ull) ^ static_cast<std::uint64_t>(k.second));
    }
  };

  mutable std::vector<column> columns_;
  mutable std::vector<std::vector<std::uint64_t>> nodes_;
  mutable std::unordered_map<std::vector<std::uint64_t>, std::uint32_t, detail::grammar::key_hash> node_index_;
  mutable std::unordered_map<std::pair<std::uint64_t, std::int32_t>, std::uint32_t, pair_hash> sub_node_cache_;
  mutable std::vector<std::vector<std::int32_t>> next_;
  mutable std::unordered_map<std::vector<std::uint64_t>, std::int32_t, detail::grammar::key_hash> index_;
  mutable std::unordered_set<std::uint64_t> seen_;
  mutable std::vector<std::uint64_t> work_, key_;
};

/// @brief Compiles a GBNF grammar (the syntax in this file's description) to an incremental
/// byte-level recogniser: grammar.matches(text) says whether root derives the whole UTF-8 text.
/// @param gbnf the grammar, UTF-8
/// @return the recogniser (its states are built lazily, on use)
/// @throw tsmc::invalid_argument "tsmc::compile_grammar: grammar at L:C expected ..., got ..." for
/// malformed input or a reference to an undefined rule; "... grammar expected a rule named 'root'"
/// when root is missing; also for a grammar too large for the item encoding
[[nodiscard]] inline byte_grammar compile_grammar(std::string_view gbnf) {
  detail::grammar::cfg g;
  const std::int32_t root = detail::grammar::parser(gbnf, g).parse();
  const std::int32_t start_symbol = g.add_nonterminal();
  g.add(start_symbol, {root});
  const std::size_t N = g.nonterminals;

  // Productive symbols (those deriving some text), to a fixed point; then only productions made
  // of productive symbols are kept, so that every live Earley item can be completed.
  std::vector<std::uint8_t> productive(N, 0);
  const auto symbol_productive = [&](std::int32_t s) { return s < 0 || productive[static_cast<std::size_t>(s)] != 0; };
  for (bool changed = true; changed;) {
    changed = false;
    for (std::size_t p = 0; p < g.lhs.size(); ++p) {
      const auto A = static_cast<std::size_t>(g.lhs[p]);
      if (productive[A]) continue;
      if (std::all_of(g.rhs[p].begin(), g.rhs[p].end(), symbol_productive)) {
        productive[A] = 1;
        changed = true;
      }
    }
  }
  byte_grammar out;
  out.terminals_ = g.terminals;
  out.productions_of_.resize(N);
  for (std::size_t p = 0; p < g.lhs.size(); ++p) {
    if (!std::all_of(g.rhs[p].begin(), g.rhs[p].end(), symbol_productive)) continue;
    if (!productive[static_cast<std::size_t>(g.lhs[p])]) continue;
    check_argument(g.rhs[p].size() < 4096, "compile_grammar", "grammar",
                   "must have sequences of at most 4095 bytes and symbols (split a long literal)", g.rhs[p].size());
    if (g.lhs[p] == start_symbol) out.start_production_ = out.lhs_.size();
    out.productions_of_[static_cast<std::size_t>(g.lhs[p])].push_back(static_cast<std::int32_t>(out.lhs_.size()));
    out.lhs_.push_back(g.lhs[p]);
    out.rhs_.push_back(std::move(g.rhs[p]));
  }
  check_argument(out.lhs_.size() < (std::size_t{1} << 20), "compile_grammar", "grammar",
                 "must compile to fewer than 2^20 byte-level productions", out.lhs_.size());
  // Nullable symbols, to a fixed point.
  out.nullable_.assign(N, 0);
  for (bool changed = true; changed;) {
    changed = false;
    for (std::size_t p = 0; p < out.lhs_.size(); ++p) {
      const auto A = static_cast<std::size_t>(out.lhs_[p]);
      if (out.nullable_[A]) continue;
      if (std::all_of(out.rhs_[p].begin(), out.rhs_[p].end(),
                      [&](std::int32_t s) { return s >= 0 && out.nullable_[static_cast<std::size_t>(s)] != 0; })) {
        out.nullable_[A] = 1;
        changed = true;
      }
    }
  }
  if (!productive[static_cast<std::size_t>(start_symbol)]) return out;  // matches nothing: start stays dead
  out.add(byte_grammar::pack(out.start_production_, 0, byte_grammar::self));
  out.start = out.close_and_intern();
  return out;
}

/// @brief token_grammar's names.
template <>
struct lift_names<byte_grammar> {
  static constexpr std::string_view lifted = "token_grammar";         ///< the lifted class
  static constexpr std::string_view potential = "grammar_potential";  ///< its potential
};

/// @brief A grammar lifted to a vocabulary: lifted states (grammar state, text_mode), cached
/// next-state rows by one trie walk per lifted state, exact feasibility (token_dfa.hpp).
using token_grammar = token_automaton<byte_grammar>;

/// @brief The potential of a token_grammar: phi = 1 where root matches the decoded text, with the
/// exact next-token form (the same members as dfa_potential; combinators accept it).
using grammar_potential = lifted_potential<token_grammar>;

/// @brief Builds a token_grammar for a GBNF grammar over a tokenizer.
/// @param gbnf the grammar (compile_grammar's syntax); root must match the decoded generated text
/// @param tokenizer a TokenizerWithBytes (llama2c::tokenizer, word_tokenizer, ...)
/// @param end_tokens the sampler's end tokens
/// @param initial_mode see token_automaton's constructor
/// @throw tsmc::invalid_argument for a malformed grammar (naming the position) or bad end tokens
template <class Tokenizer>
[[nodiscard]] token_grammar make_grammar_constraint(std::string_view gbnf, const Tokenizer& tokenizer,
                                                    std::vector<token> end_tokens = {},
                                                    text_mode initial_mode = text_mode::start) {
  return token_grammar(compile_grammar(gbnf), make_token_byte_table(tokenizer), std::move(end_tokens), initial_mode);
}

}  // namespace tsmc
