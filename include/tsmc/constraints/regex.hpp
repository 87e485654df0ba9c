#pragma once
/// @file
/// @brief Regular expressions compiled to a minimal byte-level DFA: a parser for a documented
/// syntax, Thompson's construction of an NFA over bytes (code points expanded to their UTF-8
/// byte sequences), the subset construction, and Moore's partition refinement.
///
/// Syntax (a subset of Python's `re`, with its meaning; the match is always a full match of the
/// whole text, as `re.fullmatch(pattern, text, re.ASCII)`; the text is UTF-8):
/// - a literal: any code point other than the metacharacters `\ . [ ] ( ) { } * + ? | ^ $`;
/// - an escape: `\` followed by one of those metacharacters or `-` `/` `"` `'` space (itself),
///   `\n` `\t` `\r` `\f` `\v` `\0` (not followed by a digit), `\xHH` and `\uHHHH` (the code point, as UTF-8),
///   `\d` `\w` `\s` and `\D` `\W` `\S` (ASCII classes: [0-9], [A-Za-z0-9_], [ \t\n\r\f\v]);
/// - `.`: any code point except `\n`;
/// - a class `[...]`: code points and ranges `a-z` (also non-ASCII, such as `α-ω`), escapes
///   (including `\d` ...), negated by a leading `^` (any code point outside it, `\n` included);
///   `-` is literal first or last; `]`, `[` and `\` must be escaped inside a class;
/// - groups `( ... )` and `(?: ... )`, alternation `|` (empty branches allowed);
/// - quantifiers after an atom: `*`, `+`, `?`, `{m}`, `{m,}`, `{m,n}`, `{,n}` with counts up to
///   max_regex_repeat; a quantifier may not follow another (no lazy or possessive forms).
/// Anything else (anchors `^` `$`, backreferences, lookarounds, flags, a lone `{`) is rejected
/// with tsmc::invalid_argument naming the position (in bytes) and what was expected.
///
/// Code points are those of UTF-8 text: U+0000 to U+10FFFF without the surrogates; a text that
/// is not valid UTF-8 never matches.

#include <tsmc/core/error.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tsmc {

/// @brief The largest count a `{m,n}` quantifier accepts.
inline constexpr std::size_t max_regex_repeat = 1000;

/// @brief The largest number of DFA states compile_regex builds before giving up.
inline constexpr std::size_t max_regex_dfa_states = 200'000;

/// @brief A deterministic finite automaton over bytes: 256 transitions per state, with
/// dead (no accepting state reachable) as byte_dfa::dead.
struct byte_dfa {
  /// @brief The dead state: no accepting state is reachable (transitions into it are -1).
  static constexpr std::int32_t dead = -1;

  std::vector<std::int32_t> next;        ///< next[256 q + b]: the state after byte b from state q
  std::vector<std::uint8_t> accepting;   ///< accepting[q]: 1 where q accepts
  std::int32_t start = dead;             ///< the start state (dead for a pattern matching nothing)

  /// @brief The number of live states (the dead state excluded).
  [[nodiscard]] std::size_t state_count() const noexcept { return accepting.size(); }

  /// @brief The state after byte b from state q (dead stays dead).
  [[nodiscard]] std::int32_t step(std::int32_t q, unsigned char b) const noexcept {
    return q == dead ? dead : next[static_cast<std::size_t>(q) * 256 + b];
  }

  /// @brief The state after the bytes from state q (dead stays dead).
  [[nodiscard]] std::int32_t run(std::int32_t q, std::string_view bytes) const noexcept {
    for (const char c : bytes) {
      if (q == dead) return dead;
      q = next[static_cast<std::size_t>(q) * 256 + static_cast<unsigned char>(c)];
    }
    return q;
  }

  /// @brief Whether q is an accepting state (never for dead).
  [[nodiscard]] bool accepts(std::int32_t q) const noexcept {
    return q != dead && accepting[static_cast<std::size_t>(q)] != 0;
  }

  /// @brief Whether the whole text matches.
  [[nodiscard]] bool matches(std::string_view text) const noexcept { return accepts(run(start, text)); }
};

namespace detail::regex {

/// A set of code points as sorted, disjoint, non-adjacent closed intervals.
using code_point_set = std::vector<std::pair<std::uint32_t, std::uint32_t>>;

inline constexpr std::uint32_t max_code_point = 0x10FFFF;

/// The UTF-8 character of `text` starting at `at` in single quotes ("'x'"), for the parsers'
/// messages (at < text.size()).
[[nodiscard]] inline std::string quoted_character(std::string_view text, std::size_t at) {
  std::size_t len = 1;
  const auto c = static_cast<unsigned char>(text[at]);
  if (c >= 0xC0) len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
  // Appended piece by piece: GCC 12 at -O3 warns (-Wrestrict, a false positive) on "'" + string.
  std::string q(1, '\'');
  q.append(text.substr(at, len));
  q.push_back('\'');
  return q;
}

/// Decodes one well-formed UTF-8 code point of `text` at `pos` and advances `pos` past it (the
/// regex and grammar parsers' reading of their own text). Ill-formed input (a bad lead byte, a
/// truncated, overlong or surrogate sequence, a value above U+10FFFF) returns false with
/// `problem` saying which; `pos` is then somewhere inside the sequence.
[[nodiscard]] inline bool decode_code_point(std::string_view text, std::size_t& pos, std::uint32_t& out,
                                            std::string& problem) {
  const auto c0 = static_cast<unsigned char>(text[pos++]);
  if (c0 < 0x80) {
    out = c0;
    return true;
  }
  std::size_t n = 0;
  std::uint32_t c = 0;
  if (c0 >= 0xC2 && c0 <= 0xDF) {
    n = 1;
    c = c0 & 0x1F;
  } else if (c0 >= 0xE0 && c0 <= 0xEF) {
    n = 2;
    c = c0 & 0x0F;
  } else if (c0 >= 0xF0 && c0 <= 0xF4) {
    n = 3;
    c = c0 & 0x07;
  } else {
    problem = "byte " + std::to_string(c0);
    return false;
  }
  for (std::size_t i = 0; i < n; ++i) {
    if (pos >= text.size() || (static_cast<unsigned char>(text[pos]) & 0xC0) != 0x80) {
      problem = "a truncated sequence";
      return false;
    }
    c = (c << 6) | (static_cast<unsigned char>(text[pos++]) & 0x3F);
  }
  const std::uint32_t least = n == 1 ? 0x80 : n == 2 ? 0x800 : 0x10000;
  if (c < least || c > max_code_point || (c >= 0xD800 && c <= 0xDFFF)) {
    problem = "an overlong, surrogate or out-of-range sequence";
    return false;
  }
  out = c;
  return true;
}

inline code_point_set normalized(code_point_set s) {
  std::sort(s.begin(), s.end());
  code_point_set out;
  for (const auto& r : s) {
    if (!out.empty() && r.first <= out.back().second + 1)
      out.back().second = std::max(out.back().second, r.second);
    else
      out.push_back(r);
  }
  return out;
}

/// The code points of UTF-8 text (the surrogates excluded), minus the set.
inline code_point_set complement(const code_point_set& s) {
  code_point_set out;
  std::uint32_t from = 0;
  for (const auto& r : normalized(s)) {
    if (r.first > from) out.emplace_back(from, r.first - 1);
    from = r.second + 1;
  }
  if (from <= max_code_point) out.emplace_back(from, max_code_point);
  // Remove the surrogates D800-DFFF.
  code_point_set valid;
  for (const auto& r : out) {
    if (r.second < 0xD800 || r.first > 0xDFFF) {
      valid.push_back(r);
      continue;
    }
    if (r.first < 0xD800) valid.emplace_back(r.first, 0xD7FF);
    if (r.second > 0xDFFF) valid.emplace_back(0xE000, r.second);
  }
  return valid;
}

/// UTF-8 encoding of a code point (no surrogate checks).
inline std::string encode_utf8(std::uint32_t c) {
  std::string out;
  if (c < 0x80) {
    out.push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (c >> 6)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else if (c < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (c >> 12)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (c >> 18)));
    out.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  }
  return out;
}

/// A sequence of byte ranges: the UTF-8 encodings of a code point range of one shape.
using byte_range_sequence = std::vector<std::pair<unsigned char, unsigned char>>;

/// Splits [lo, hi] (no surrogates inside) into byte-range sequences whose product is exactly the
/// UTF-8 encodings of the range.
inline void utf8_sequences(std::uint32_t lo, std::uint32_t hi, std::vector<byte_range_sequence>& out) {
  if (lo > hi) return;
  // Split at the encoding-length boundaries.
  for (const std::uint32_t edge : {0x7Fu, 0x7FFu, 0xFFFFu}) {
    if (lo <= edge && hi > edge) {
      utf8_sequences(lo, edge, out);
      utf8_sequences(edge + 1, hi, out);
      return;
    }
  }
  if (hi < 0x80) {
    out.push_back({{static_cast<unsigned char>(lo), static_cast<unsigned char>(hi)}});
    return;
  }
  const std::size_t n = encode_utf8(lo).size();
  // Split until every continuation position spans its full range or the prefixes agree.
  for (std::size_t i = 1; i < n; ++i) {
    const std::uint32_t m = (1u << (6 * i)) - 1;
    if ((lo & ~m) != (hi & ~m)) {
      if ((lo & m) != 0) {
        utf8_sequences(lo, lo | m, out);
        utf8_sequences((lo | m) + 1, hi, out);
        return;
      }
      if ((hi & m) != m) {
        utf8_sequences(lo, (hi & ~m) - 1, out);
        utf8_sequences(hi & ~m, hi, out);
        return;
      }
    }
  }
  const std::string a = encode_utf8(lo), b = encode_utf8(hi);
  byte_range_sequence seq;
  for (std::size_t i = 0; i < n; ++i)
    seq.emplace_back(static_cast<unsigned char>(a[i]), static_cast<unsigned char>(b[i]));
  out.push_back(std::move(seq));
}

/// The syntax tree.
struct node {
  enum class kind { empty, set, concat, alternate, repeat } type = kind::empty;
  code_point_set set;                        // kind::set
  std::vector<std::unique_ptr<node>> parts;  // concat / alternate; repeat: parts[0]
  std::size_t min = 0, max = 0;              // repeat; max == unbounded for no upper bound
  static constexpr std::size_t unbounded = static_cast<std::size_t>(-1);
};

using node_ptr = std::unique_ptr<node>;

/// A recursive-descent parser for the documented syntax.
class parser {
 public:
  explicit parser(std::string_view pattern, std::string_view function) : text_(pattern), function_(function) {}

  node_ptr parse() {
    node_ptr n = alternation(0);
    if (pos_ < text_.size()) fail("expected a quantifier, '|' or the end of the pattern (an unmatched ')'?)", quoted(pos_));
    return n;
  }

 private:
  [[noreturn]] void fail(std::string_view expected, const std::string& got) const {
    fail_at(pos_, expected, got);
  }
  [[noreturn]] void fail_at(std::size_t at, std::string_view expected, const std::string& got) const {
    throw_invalid_argument(function_, "pattern at position " + std::to_string(at), std::string(expected), got);
  }
  [[nodiscard]] std::string quoted(std::size_t at) const {
    if (at >= text_.size()) return "the end of the pattern";
    return quoted_character(text_, at);
  }
  [[nodiscard]] bool at_end() const { return pos_ >= text_.size(); }
  [[nodiscard]] char peek() const { return text_[pos_]; }

  /// Decodes one UTF-8 code point of the pattern at pos_.
  std::uint32_t code_point() {
    const std::size_t at = pos_;
    std::uint32_t c = 0;
    std::string problem;
    if (!decode_code_point(text_, pos_, c, problem)) fail_at(at, "expected valid UTF-8", problem);
    return c;
  }

  static node_ptr make_set(code_point_set s) {
    auto n = std::make_unique<node>();
    n->type = node::kind::set;
    n->set = normalized(std::move(s));
    return n;
  }

  node_ptr alternation(std::size_t depth) {
    if (depth > 200) fail("expected groups nested at most 200 deep", quoted(pos_));
    std::vector<node_ptr> branches;
    branches.push_back(concatenation(depth));
    while (!at_end() && peek() == '|') {
      ++pos_;
      branches.push_back(concatenation(depth));
    }
    if (branches.size() == 1) return std::move(branches[0]);
    auto n = std::make_unique<node>();
    n->type = node::kind::alternate;
    n->parts = std::move(branches);
    return n;
  }

  node_ptr concatenation(std::size_t depth) {
    auto n = std::make_unique<node>();
    n->type = node::kind::concat;
    while (!at_end() && peek() != '|' && peek() != ')') n->parts.push_back(quantified(depth));
    return n;
  }

  node_ptr quantified(std::size_t depth) {
    const std::size_t atom_at = pos_;
    node_ptr a = atom(depth);
    if (at_end()) return a;
    std::size_t min = 0, max = 0;
    const std::size_t q_at = pos_;
    const char c = peek();
    if (c == '*') {
      ++pos_;
      min = 0;
      max = node::unbounded;
    } else if (c == '+') {
      ++pos_;
      min = 1;
      max = node::unbounded;
    } else if (c == '?') {
      ++pos_;
      min = 0;
      max = 1;
    } else if (c == '{') {
      ++pos_;
      const bool has_min = !at_end() && peek() >= '0' && peek() <= '9';
      min = has_min ? count() : 0;
      if (!at_end() && peek() == ',') {
        ++pos_;
        max = (!at_end() && peek() >= '0' && peek() <= '9') ? count() : node::unbounded;
      } else {
        if (!has_min) fail("expected a count after '{' (write \\{ for a literal brace)", quoted(pos_));
        max = min;
      }
      if (at_end() || peek() != '}') fail("expected '}' closing the quantifier opened at position " + std::to_string(q_at), quoted(pos_));
      ++pos_;
      if (max != node::unbounded && max < min)
        fail_at(q_at, "expected a quantifier {m,n} with m <= n", std::to_string(min) + " > " + std::to_string(max));
    } else {
      return a;
    }
    (void)atom_at;
    if (!at_end() && (peek() == '*' || peek() == '+' || peek() == '?' || peek() == '{'))
      fail("expected an atom before a quantifier (a quantifier may not follow another)", quoted(pos_));
    auto n = std::make_unique<node>();
    n->type = node::kind::repeat;
    n->min = min;
    n->max = max;
    n->parts.push_back(std::move(a));
    return n;
  }

  std::size_t count() {
    const std::size_t at = pos_;
    std::size_t v = 0;
    while (!at_end() && peek() >= '0' && peek() <= '9') {
      v = v * 10 + static_cast<std::size_t>(peek() - '0');
      ++pos_;
      if (v > max_regex_repeat)
        fail_at(at, "expected a repeat count of at most " + std::to_string(max_regex_repeat), std::to_string(v) + "...");
    }
    return v;
  }

  node_ptr atom(std::size_t depth) {
    const char c = peek();
    switch (c) {
      case '(': {
        const std::size_t open = pos_++;
        if (!at_end() && peek() == '?') {
          if (pos_ + 1 < text_.size() && text_[pos_ + 1] == ':')
            pos_ += 2;
          else
            fail("expected '(?:' (the only supported group extension)", quoted(pos_));
        }
        node_ptr inner = alternation(depth + 1);
        if (at_end() || peek() != ')')
          fail("expected ')' closing the group opened at position " + std::to_string(open), quoted(pos_));
        ++pos_;
        return inner;
      }
      case '.':
        ++pos_;
        return make_set(complement({{'\n', '\n'}}));
      case '[':
        return make_set(bracket());
      case '\\':
        return make_set(escape(false));
      case '*':
      case '+':
      case '?':
      case '{':
        fail("expected an atom before a quantifier", quoted(pos_));
      case ')':
      case ']':
      case '}':
        fail("expected an atom (escape a literal '" + std::string(1, c) + "' as \\" + std::string(1, c) + ")", quoted(pos_));
      case '^':
      case '$':
        fail("expected an atom (anchors are not supported: the match is always a full match)", quoted(pos_));
      default: {
        const std::uint32_t cp = code_point();
        return make_set({{cp, cp}});
      }
    }
  }

  static code_point_set digits() { return {{'0', '9'}}; }
  static code_point_set word() { return {{'0', '9'}, {'A', 'Z'}, {'_', '_'}, {'a', 'z'}}; }
  static code_point_set space() { return {{'\t', '\r'}, {' ', ' '}}; }

  std::uint32_t hex(std::size_t digits_needed) {
    std::uint32_t v = 0;
    for (std::size_t i = 0; i < digits_needed; ++i) {
      if (at_end()) fail("expected " + std::to_string(digits_needed) + " hexadecimal digits", quoted(pos_));
      const char h = peek();
      std::uint32_t d = 0;
      if (h >= '0' && h <= '9') d = static_cast<std::uint32_t>(h - '0');
      else if (h >= 'a' && h <= 'f') d = static_cast<std::uint32_t>(h - 'a' + 10);
      else if (h >= 'A' && h <= 'F') d = static_cast<std::uint32_t>(h - 'A' + 10);
      else fail("expected " + std::to_string(digits_needed) + " hexadecimal digits", quoted(pos_));
      v = v * 16 + d;
      ++pos_;
    }
    return v;
  }

  /// An escape at pos_ ('\\'), as a set of code points.
  code_point_set escape(bool in_class) {
    const std::size_t at = pos_++;
    if (at_end()) fail_at(at, "expected a character after '\\'", "the end of the pattern");
    const char c = peek();
    ++pos_;
    switch (c) {
      case 'n': return {{'\n', '\n'}};
      case 't': return {{'\t', '\t'}};
      case 'r': return {{'\r', '\r'}};
      case 'f': return {{'\f', '\f'}};
      case 'v': return {{'\v', '\v'}};
      case '0':
        if (!at_end() && peek() >= '0' && peek() <= '9')
          fail("expected no digit after \\0 (octal escapes are not supported)", quoted(pos_));
        return {{0, 0}};
      case 'd': return digits();
      case 'D': return complement(digits());
      case 'w': return word();
      case 'W': return complement(word());
      case 's': return space();
      case 'S': return complement(space());
      case 'x': {
        const std::uint32_t v = hex(2);
        return {{v, v}};
      }
      case 'u': {
        const std::size_t u_at = pos_;
        const std::uint32_t v = hex(4);
        if (v >= 0xD800 && v <= 0xDFFF) fail_at(u_at, "expected a code point outside the surrogates", std::string(text_.substr(u_at, 4)));
        return {{v, v}};
      }
      case '\\': case '.': case '[': case ']': case '(': case ')': case '{': case '}': case '*': case '+':
      case '?': case '|': case '^': case '$': case '-': case '/': case '"': case '\'': case ' ':
        return {{static_cast<std::uint32_t>(c), static_cast<std::uint32_t>(c)}};
      default:
        (void)in_class;
        fail_at(at, "expected a supported escape (\\n \\t \\r \\f \\v \\0 \\xHH \\uHHHH \\d \\w \\s \\D \\W \\S or an escaped metacharacter)",
                quoted(at + 1));
    }
  }

  /// One class member's single code point, or nullopt-like (returns false) for an escape class.
  code_point_set bracket() {
    const std::size_t open = pos_++;
    bool negate = false;
    if (!at_end() && peek() == '^') {
      negate = true;
      ++pos_;
    }
    code_point_set members;
    bool first = true;
    for (;;) {
      if (at_end()) fail("expected ']' closing the class opened at position " + std::to_string(open), quoted(pos_));
      const char c = peek();
      if (c == ']') {
        if (first) fail("expected a class member (escape a literal ']' as \\])", quoted(pos_));
        ++pos_;
        break;
      }
      if (c == '[') fail("expected a class member (escape a literal '[' as \\[)", quoted(pos_));
      first = false;
      // One member: a code point or an escape, possibly the start of a range.
      const std::size_t member_at = pos_;
      code_point_set lo_set = member();
      const bool single = lo_set.size() == 1 && lo_set[0].first == lo_set[0].second;
      if (!at_end() && peek() == '-' && pos_ + 1 < text_.size() && text_[pos_ + 1] != ']') {
        if (!single) fail_at(member_at, "expected a single character before '-' in a range", quoted(member_at));
        ++pos_;
        const std::size_t hi_at = pos_;
        if (peek() == '[') fail("expected a class member (escape a literal '[' as \\[)", quoted(pos_));
        code_point_set hi_set = member();
        if (!(hi_set.size() == 1 && hi_set[0].first == hi_set[0].second))
          fail_at(hi_at, "expected a single character after '-' in a range", quoted(hi_at));
        if (hi_set[0].first < lo_set[0].first)
          fail_at(member_at, "expected a range lo-hi with lo <= hi", std::string(text_.substr(member_at, pos_ - member_at)));
        members.emplace_back(lo_set[0].first, hi_set[0].first);
      } else {
        members.insert(members.end(), lo_set.begin(), lo_set.end());
      }
    }
    return negate ? complement(members) : normalized(members);
  }

  code_point_set member() {
    if (peek() == '\\') return escape(true);
    const std::uint32_t cp = code_point();
    return {{cp, cp}};
  }

  std::string_view text_;
  std::string_view function_;
  std::size_t pos_ = 0;
};

/// Thompson's NFA over bytes: byte-range edges and epsilon edges.
struct nfa {
  struct edge {
    unsigned char lo, hi;
    std::int32_t to;
  };
  std::vector<std::vector<edge>> edges;
  std::vector<std::vector<std::int32_t>> epsilon;
  std::int32_t start = 0, accept = 0;

  std::int32_t add_state() {
    edges.emplace_back();
    epsilon.emplace_back();
    return static_cast<std::int32_t>(edges.size() - 1);
  }
};

/// Builds the fragment of a node between fresh states; returns (entry, exit).
class thompson {
 public:
  explicit thompson(nfa& m, std::string_view function) : m_(m), function_(function) {}

  std::pair<std::int32_t, std::int32_t> build(const node& n) {
    if (m_.edges.size() > 4 * max_regex_dfa_states)
      throw_invalid_argument(function_, "pattern", "must give an automaton of at most " +
                                                       std::to_string(4 * max_regex_dfa_states) + " NFA states; its size is",
                             m_.edges.size());
    switch (n.type) {
      case node::kind::empty: {
        const std::int32_t a = m_.add_state(), b = m_.add_state();
        m_.epsilon[static_cast<std::size_t>(a)].push_back(b);
        return {a, b};
      }
      case node::kind::set: {
        const std::int32_t a = m_.add_state(), b = m_.add_state();
        std::vector<byte_range_sequence> seqs;
        for (const auto& r : n.set) utf8_sequences(r.first, r.second, seqs);
        for (const byte_range_sequence& seq : seqs) {
          std::int32_t from = a;
          for (std::size_t i = 0; i < seq.size(); ++i) {
            const std::int32_t to = i + 1 == seq.size() ? b : m_.add_state();
            m_.edges[static_cast<std::size_t>(from)].push_back({seq[i].first, seq[i].second, to});
            from = to;
          }
        }
        return {a, b};
      }
      case node::kind::concat: {
        if (n.parts.empty()) return build(node{});
        auto [entry, exit] = build(*n.parts[0]);
        for (std::size_t i = 1; i < n.parts.size(); ++i) {
          auto [e2, x2] = build(*n.parts[i]);
          m_.epsilon[static_cast<std::size_t>(exit)].push_back(e2);
          exit = x2;
        }
        return {entry, exit};
      }
      case node::kind::alternate: {
        const std::int32_t a = m_.add_state(), b = m_.add_state();
        for (const node_ptr& p : n.parts) {
          auto [e, x] = build(*p);
          m_.epsilon[static_cast<std::size_t>(a)].push_back(e);
          m_.epsilon[static_cast<std::size_t>(x)].push_back(b);
        }
        return {a, b};
      }
      case node::kind::repeat: {
        const node& inner = *n.parts[0];
        const std::int32_t a = m_.add_state();
        std::int32_t exit = a;
        for (std::size_t i = 0; i < n.min; ++i) {
          auto [e, x] = build(inner);
          m_.epsilon[static_cast<std::size_t>(exit)].push_back(e);
          exit = x;
        }
        if (n.max == node::unbounded) {
          // Kleene star on the tail: exit -> loop -> inner -> loop; loop -> out.
          const std::int32_t loop = m_.add_state(), out = m_.add_state();
          auto [e, x] = build(inner);
          m_.epsilon[static_cast<std::size_t>(exit)].push_back(loop);
          m_.epsilon[static_cast<std::size_t>(loop)].push_back(e);
          m_.epsilon[static_cast<std::size_t>(x)].push_back(loop);
          m_.epsilon[static_cast<std::size_t>(loop)].push_back(out);
          return {a, out};
        }
        const std::int32_t out = m_.add_state();
        m_.epsilon[static_cast<std::size_t>(exit)].push_back(out);
        for (std::size_t i = n.min; i < n.max; ++i) {
          auto [e, x] = build(inner);
          m_.epsilon[static_cast<std::size_t>(exit)].push_back(e);
          m_.epsilon[static_cast<std::size_t>(x)].push_back(out);
          exit = x;
        }
        return {a, out};
      }
    }
    return {0, 0};
  }

 private:
  nfa& m_;
  std::string_view function_;
};

inline byte_dfa minimize(const std::vector<std::int32_t>& table, std::size_t classes,
                         const std::array<std::uint16_t, 256>& class_of, const std::vector<std::uint8_t>& accepting);

/// The subset construction over byte classes, then Moore's refinement; the dead class is removed.
inline byte_dfa determinize(const nfa& m, std::string_view function) {
  const std::size_t n = m.edges.size();
  // Byte classes: bytes no edge boundary separates behave alike.
  std::array<bool, 257> boundary{};
  boundary[0] = true;
  for (const auto& es : m.edges)
    for (const auto& e : es) {
      boundary[e.lo] = true;
      boundary[static_cast<std::size_t>(e.hi) + 1] = true;
    }
  std::array<std::uint16_t, 256> class_of{};
  std::vector<unsigned char> representative;
  for (std::size_t b = 0; b < 256; ++b) {
    if (boundary[b]) representative.push_back(static_cast<unsigned char>(b));
    class_of[b] = static_cast<std::uint16_t>(representative.size() - 1);
  }
  const std::size_t classes = representative.size();

  std::vector<std::uint32_t> mark(n, 0);
  std::uint32_t generation = 0;
  std::vector<std::int32_t> stack;
  const auto closure = [&](std::vector<std::int32_t>& set) {
    ++generation;
    stack = set;
    set.clear();
    for (const std::int32_t s : stack) mark[static_cast<std::size_t>(s)] = generation;
    set = stack;
    while (!stack.empty()) {
      const std::int32_t s = stack.back();
      stack.pop_back();
      for (const std::int32_t t : m.epsilon[static_cast<std::size_t>(s)])
        if (mark[static_cast<std::size_t>(t)] != generation) {
          mark[static_cast<std::size_t>(t)] = generation;
          set.push_back(t);
          stack.push_back(t);
        }
    }
    std::sort(set.begin(), set.end());
  };

  std::map<std::vector<std::int32_t>, std::int32_t> index;
  std::vector<std::vector<std::int32_t>> sets;
  std::vector<std::int32_t> table;  // subset-state x class
  const auto intern = [&](std::vector<std::int32_t>&& set) {
    const auto it = index.find(set);
    if (it != index.end()) return it->second;
    const auto id = static_cast<std::int32_t>(sets.size());
    if (sets.size() >= max_regex_dfa_states)
      throw_invalid_argument(function, "pattern",
                             "must give a DFA of at most " + std::to_string(max_regex_dfa_states) + " states; its size is over",
                             max_regex_dfa_states);
    index.emplace(set, id);
    sets.push_back(std::move(set));
    return id;
  };
  std::vector<std::int32_t> start_set{m.start};
  closure(start_set);
  intern(std::move(start_set));  // state 0; the empty set (dead) is interned when reached
  std::vector<std::int32_t> target;
  for (std::size_t q = 0; q < sets.size(); ++q) {
    table.resize((q + 1) * classes);
    for (std::size_t c = 0; c < classes; ++c) {
      const unsigned char b = representative[c];
      target.clear();
      for (const std::int32_t s : sets[q])
        for (const auto& e : m.edges[static_cast<std::size_t>(s)])
          if (e.lo <= b && b <= e.hi) target.push_back(e.to);
      std::sort(target.begin(), target.end());
      target.erase(std::unique(target.begin(), target.end()), target.end());
      closure(target);
      table[q * classes + c] = intern(std::vector<std::int32_t>(target));
    }
  }
  const std::size_t q_count = sets.size();
  std::vector<std::uint8_t> accepting(q_count, 0);
  for (std::size_t q = 0; q < q_count; ++q)
    accepting[q] = std::binary_search(sets[q].begin(), sets[q].end(), m.accept) ? 1 : 0;
  return minimize(table, classes, class_of, accepting);
}

/// Moore's refinement of a complete DFA given over byte classes (table: state x class, state 0
/// the start), then removal of the blocks from which no accepting block is reachable.
inline byte_dfa minimize(const std::vector<std::int32_t>& table, std::size_t classes,
                         const std::array<std::uint16_t, 256>& class_of, const std::vector<std::uint8_t>& accepting) {
  const std::size_t q_count = accepting.size();

  // Moore's refinement: start from {accepting, not accepting}, split by the successors' blocks.
  std::vector<std::int32_t> block(q_count);
  for (std::size_t q = 0; q < q_count; ++q) block[q] = accepting[q];
  std::size_t block_count = 0;
  for (;;) {
    std::map<std::vector<std::int32_t>, std::int32_t> signature_index;
    std::vector<std::int32_t> next_block(q_count);
    std::vector<std::int32_t> signature(classes + 1);
    for (std::size_t q = 0; q < q_count; ++q) {
      signature[0] = block[q];
      for (std::size_t c = 0; c < classes; ++c) signature[c + 1] = block[static_cast<std::size_t>(table[q * classes + c])];
      const auto [it, inserted] =
          signature_index.emplace(signature, static_cast<std::int32_t>(signature_index.size()));
      next_block[q] = it->second;
    }
    const std::size_t count = signature_index.size();
    block.swap(next_block);
    if (count == block_count) break;
    block_count = count;
  }
  // Live blocks: those from which an accepting block is reachable.
  std::vector<std::vector<std::int32_t>> predecessors(block_count);
  std::vector<std::uint8_t> live(block_count, 0), block_accepts(block_count, 0);
  for (std::size_t q = 0; q < q_count; ++q) {
    if (accepting[q]) block_accepts[static_cast<std::size_t>(block[q])] = 1;
    for (std::size_t c = 0; c < classes; ++c)
      predecessors[static_cast<std::size_t>(block[static_cast<std::size_t>(table[q * classes + c])])].push_back(block[q]);
  }
  std::vector<std::int32_t> work;
  for (std::size_t b = 0; b < block_count; ++b)
    if (block_accepts[b]) {
      live[b] = 1;
      work.push_back(static_cast<std::int32_t>(b));
    }
  while (!work.empty()) {
    const std::int32_t b = work.back();
    work.pop_back();
    for (const std::int32_t p : predecessors[static_cast<std::size_t>(b)])
      if (!live[static_cast<std::size_t>(p)]) {
        live[static_cast<std::size_t>(p)] = 1;
        work.push_back(p);
      }
  }
  // Number live blocks in order of first appearance from the start (breadth-first), for stable ids.
  std::vector<std::int32_t> id(block_count, byte_dfa::dead);
  std::vector<std::size_t> member(block_count, 0);
  for (std::size_t q = q_count; q-- > 0;) member[static_cast<std::size_t>(block[q])] = q;
  byte_dfa dfa;
  std::vector<std::int32_t> order;
  if (live[static_cast<std::size_t>(block[0])]) {
    id[static_cast<std::size_t>(block[0])] = 0;
    order.push_back(block[0]);
    for (std::size_t i = 0; i < order.size(); ++i) {
      const std::size_t q = member[static_cast<std::size_t>(order[i])];
      for (std::size_t c = 0; c < classes; ++c) {
        const auto b = static_cast<std::size_t>(block[static_cast<std::size_t>(table[q * classes + c])]);
        if (live[b] && id[b] == byte_dfa::dead) {
          id[b] = static_cast<std::int32_t>(order.size());
          order.push_back(static_cast<std::int32_t>(b));
        }
      }
    }
    dfa.start = 0;
  }
  dfa.accepting.resize(order.size());
  dfa.next.assign(order.size() * 256, byte_dfa::dead);
  for (std::size_t i = 0; i < order.size(); ++i) {
    const std::size_t q = member[static_cast<std::size_t>(order[i])];
    dfa.accepting[i] = block_accepts[static_cast<std::size_t>(order[i])];
    for (std::size_t b = 0; b < 256; ++b)
      dfa.next[i * 256 + b] =
          id[static_cast<std::size_t>(block[static_cast<std::size_t>(table[q * classes + class_of[b]])])];
  }
  return dfa;
}


/// A complete DFA over 256 bytes (state 0 the start; the last state the dead sink when added)
/// from a byte_dfa, minimised after a change of acceptance.
inline byte_dfa minimize_complete(const std::vector<std::int32_t>& next256, const std::vector<std::uint8_t>& accepting) {
  const std::size_t q_count = accepting.size();
  // Byte classes: bytes whose columns are equal everywhere.
  std::array<std::uint16_t, 256> class_of{};
  std::vector<unsigned char> representative;
  for (std::size_t b = 0; b < 256; ++b) {
    bool found = false;
    for (std::size_t c = 0; c < representative.size() && !found; ++c) {
      bool same = true;
      for (std::size_t q = 0; q < q_count && same; ++q)
        same = next256[q * 256 + b] == next256[q * 256 + representative[c]];
      if (same) {
        class_of[b] = static_cast<std::uint16_t>(c);
        found = true;
      }
    }
    if (!found) {
      class_of[b] = static_cast<std::uint16_t>(representative.size());
      representative.push_back(static_cast<unsigned char>(b));
    }
  }
  const std::size_t classes = representative.size();
  std::vector<std::int32_t> table(q_count * classes);
  for (std::size_t q = 0; q < q_count; ++q)
    for (std::size_t c = 0; c < classes; ++c) table[q * classes + c] = next256[q * 256 + representative[c]];
  return minimize(table, classes, class_of, accepting);
}

/// The complete 256-column table of a byte_dfa with its dead state made explicit (the last one);
/// a DFA without live states becomes the dead sink alone (state 0).
inline std::vector<std::int32_t> complete_table(const byte_dfa& d, std::size_t& states) {
  const std::size_t live = d.state_count();
  states = live + 1;
  const auto sink = static_cast<std::int32_t>(live);
  std::vector<std::int32_t> t(states * 256, sink);
  for (std::size_t q = 0; q < live; ++q)
    for (std::size_t b = 0; b < 256; ++b) {
      const std::int32_t n = d.next[q * 256 + b];
      t[q * 256 + b] = n == byte_dfa::dead ? sink : n;
    }
  return t;
}

}  // namespace detail::regex

/// @brief Compiles a regular expression (the syntax in this file's description) to a minimal
/// DFA over the bytes of UTF-8 text; dfa.matches(text) is `re.fullmatch(pattern, text, re.ASCII)`.
/// @param pattern the pattern, UTF-8
/// @return the minimal DFA (live states only; byte_dfa::dead stands for the rest)
/// @throw tsmc::invalid_argument "tsmc::compile_regex: pattern at position P expected ..., got ..."
/// for a malformed pattern; also for one whose automaton exceeds max_regex_dfa_states
[[nodiscard]] inline byte_dfa compile_regex(std::string_view pattern) {
  constexpr std::string_view function = "compile_regex";
  const detail::regex::node_ptr tree = detail::regex::parser(pattern, function).parse();
  detail::regex::nfa m;
  const auto [entry, exit] = detail::regex::thompson(m, function).build(*tree);
  m.start = entry;
  m.accept = exit;
  return detail::regex::determinize(m, function);
}

/// @brief The complement: a DFA accepting exactly the byte strings d rejects (invalid UTF-8
/// included), minimal.
/// @param d a DFA
/// @return its complement
[[nodiscard]] inline byte_dfa complement(const byte_dfa& d) {
  std::size_t states = 0;
  std::vector<std::int32_t> t = detail::regex::complete_table(d, states);
  std::vector<std::uint8_t> accepting(states, 1);
  for (std::size_t q = 0; q + 1 < states; ++q) accepting[q] = d.accepting[q] ? 0 : 1;
  // Put the start first (state 0 of the minimiser).
  if (d.start == byte_dfa::dead) {
    // Only the sink: everything is accepted.
    std::vector<std::int32_t> all(256, 0);
    return detail::regex::minimize_complete(all, std::vector<std::uint8_t>{1});
  }
  return detail::regex::minimize_complete(t, accepting);  // start is state 0 (compile_regex numbers it so)
}

/// @brief The intersection: a DFA accepting exactly the byte strings both accept (the product
/// construction over reachable pairs), minimal.
/// @throw tsmc::invalid_argument if the product exceeds max_regex_dfa_states
[[nodiscard]] inline byte_dfa intersection(const byte_dfa& a, const byte_dfa& b) {
  if (a.start == byte_dfa::dead || b.start == byte_dfa::dead) return byte_dfa{};
  std::map<std::pair<std::int32_t, std::int32_t>, std::int32_t> index;
  std::vector<std::pair<std::int32_t, std::int32_t>> pairs;
  std::vector<std::int32_t> next;
  const auto id = [&](std::int32_t x, std::int32_t y) {
    const auto key = std::make_pair(x, y);
    const auto it = index.find(key);
    if (it != index.end()) return it->second;
    check_argument(pairs.size() < max_regex_dfa_states, "intersection", "the product of the two DFAs",
                   "must have at most " + std::to_string(max_regex_dfa_states) + " states; its size is over",
                   max_regex_dfa_states);
    const auto n = static_cast<std::int32_t>(pairs.size());
    index.emplace(key, n);
    pairs.push_back(key);
    return n;
  };
  id(a.start, b.start);
  for (std::size_t i = 0; i < pairs.size(); ++i) {
    next.resize((i + 1) * 256);
    for (std::size_t c = 0; c < 256; ++c) {
      const auto uc = static_cast<unsigned char>(c);
      const std::int32_t x = a.step(pairs[i].first, uc), y = b.step(pairs[i].second, uc);
      next[i * 256 + c] = id(x, y);
    }
  }
  std::vector<std::uint8_t> accepting(pairs.size());
  for (std::size_t i = 0; i < pairs.size(); ++i) accepting[i] = a.accepts(pairs[i].first) && b.accepts(pairs[i].second);
  return detail::regex::minimize_complete(next, accepting);
}

/// @brief A regular expression matching exactly the given text (its metacharacters escaped).
/// @param text any UTF-8 text
/// @return a pattern for compile_regex
[[nodiscard]] inline std::string regex_escape(std::string_view text) {
  std::string out;
  for (const char c : text) {
    if (std::string_view("\\.[](){}*+?|^$-/\"' ").find(c) != std::string_view::npos) out.push_back('\\');
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out.push_back(c);
  }
  return out;
}

}  // namespace tsmc
