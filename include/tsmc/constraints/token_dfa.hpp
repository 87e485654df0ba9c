#pragma once
/// @file
/// @brief A byte automaton (a byte DFA; an incremental grammar recogniser, grammar.hpp) lifted to
/// a model's vocabulary: a potential with an exact next-token form (phi = 1 exactly where the
/// decoded text is accepted) and feasibility as a twist factor (psi = 0 exactly where no
/// continuation within the tokens left can be accepted).
///
/// The lifting is one class template, token_automaton<Automaton>, over any ByteAutomaton (states
/// are int32 ids, -1 dead; start, step(q, b), run(q, bytes), accepts(q), state_count());
/// token_dfa is token_automaton<byte_dfa>, token_grammar (grammar.hpp) token_automaton<byte_grammar>.
///
/// The lifted state of a text is (automaton state, text_mode); a token moves it by its bytes in that
/// mode (token_byte_table). Each lifted state's next-state row over the vocabulary is computed
/// once, by one walk of the vocabulary trie, and cached; a particle's step is then V lookups.
///
/// Feasibility (the token-level distance to acceptance, exact for a horizon): with r tokens still
/// to come after the current one, a text in lifted state s can still be completed into an
/// accepted finished sequence iff G_r(s), where
///   G_0(s) = accepts(s) (the sequence ends by the horizon),
///   G_r(s) = E(s) or (there is a non-end token v with G_{r-1}(next(s, v))), r >= 1,
/// and E(s) says that some end token e finishes the sequence accepted (accepts(next(s, e))).
/// The twist factor at step t for candidate v is G_{T-t}(next(s, v)) for a non-end token and
/// accepts(next(s, v)) for an end token; at t = T it is the potential itself (psi_T = phi).

#include <tsmc/constraints/regex.hpp>
#include <tsmc/constraints/token_bytes.hpp>
#include <tsmc/constraints/vocabulary_trie.hpp>
#include <tsmc/core/concepts.hpp>
#include <tsmc/core/error.hpp>
#include <tsmc/core/types.hpp>

#include <algorithm>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

namespace tsmc {

/// @brief A byte automaton: int32 state ids with -1 dead (no accepted text reachable), a start
/// state, a step per byte (dead stays dead), a run over bytes, acceptance and a state count.
/// byte_dfa models it; so does byte_grammar (grammar.hpp), whose states are built lazily (its
/// const members fill caches).
template <class A>
concept ByteAutomaton = requires(const A& a, std::int32_t q, unsigned char b, std::string_view bytes) {
  { a.start } -> std::convertible_to<std::int32_t>;
  { a.step(q, b) } -> std::same_as<std::int32_t>;
  { a.run(q, bytes) } -> std::same_as<std::int32_t>;
  { a.accepts(q) } -> std::same_as<bool>;
  { a.state_count() } -> std::convertible_to<std::size_t>;
};

/// @brief The names a lifted automaton's messages use (specialised per automaton type).
template <class Automaton>
struct lift_names;

/// @brief token_dfa's names.
template <>
struct lift_names<byte_dfa> {
  static constexpr std::string_view lifted = "token_dfa";         ///< the lifted class
  static constexpr std::string_view potential = "dfa_potential";  ///< its potential
};

/// @brief A byte automaton lifted to a vocabulary (see the file's description): lifted states,
/// cached next-state rows, and the exact feasibility G_r.
///
/// Not thread-safe: its caches fill on use (the sampler calls its hooks from one thread).
/// @tparam Automaton a ByteAutomaton (byte_dfa; byte_grammar)
template <class Automaton>
class token_automaton {
  static_assert(ByteAutomaton<Automaton>,
                "tsmc::token_automaton: Automaton must model tsmc::ByteAutomaton: int32 start, step(q, b), "
                "run(q, bytes), accepts(q), state_count()");

 public:
  /// @brief A lifted state: 3 q + mode for automaton state q, or dead.
  using state = std::int32_t;
  /// @brief No accepting text is reachable (the automaton died).
  static constexpr state dead = -1;
  /// @brief The byte automaton type.
  using automaton_type = Automaton;

  /// @brief Lifts a byte automaton to a tokenizer's byte table.
  /// @param automaton the byte automaton (e.g. compile_regex's DFA, compile_grammar's grammar)
  /// @param table the tokens' bytes (make_token_byte_table)
  /// @param end_tokens the tokens that finish a sequence (the sampler's end_token and end_tokens)
  /// @param initial_mode how the first generated token decodes: text_mode::start for a text
  /// decoded on its own (llama2.c after a prompt of BOS; the word tokenizer), middle to keep the
  /// first token's leading space (llama2.c after a longer prompt)
  /// @throw tsmc::invalid_argument for a malformed table or an end token outside [0, V)
  token_automaton(Automaton automaton, token_byte_table table, std::vector<token> end_tokens,
                  text_mode initial_mode = text_mode::start)
      : dfa_(std::move(automaton)), table_(std::move(table)), end_tokens_(std::move(end_tokens)), initial_mode_(initial_mode) {
    std::string name(lift_names<Automaton>::lifted);
    const std::string function = name + "::" + name;
    table_.validate(function);
    check_argument(initial_mode != text_mode::stopped, function, "initial_mode", "must be start or middle", "stopped");
    check_argument(dfa_.state_count() < static_cast<std::size_t>(std::numeric_limits<state>::max() / 3), function,
                   "automaton.state_count()", "must fit a 32-bit lifted state", dfa_.state_count());
    const std::size_t V = table_.vocab_size();
    is_end_.assign(V, 0);
    for (std::size_t i = 0; i < end_tokens_.size(); ++i) {
      const token e = end_tokens_[i];
      check_argument(e >= 0 && static_cast<std::size_t>(e) < V, function, "end_tokens[" + std::to_string(i) + "]",
                     "must be in [0, " + std::to_string(V) + ")", e);
      is_end_[static_cast<std::size_t>(e)] = 1;
    }
    initial_trie_ = vocabulary_trie(table_.initial_bytes);
    middle_trie_ = vocabulary_trie(table_.bytes);
  }

  /// @brief V, the vocabulary size.
  [[nodiscard]] std::size_t vocab_size() const noexcept { return table_.vocab_size(); }
  /// @brief The byte automaton.
  [[nodiscard]] const Automaton& automaton() const noexcept { return dfa_; }
  /// @brief The byte DFA (token_dfa only).
  [[nodiscard]] const Automaton& dfa() const noexcept
    requires std::same_as<Automaton, byte_dfa>
  {
    return dfa_;
  }
  /// @brief The token byte table.
  [[nodiscard]] const token_byte_table& table() const noexcept { return table_; }
  /// @brief The end tokens.
  [[nodiscard]] std::span<const token> end_tokens() const noexcept { return end_tokens_; }
  /// @brief Whether t is an end token.
  [[nodiscard]] bool is_end(token t) const noexcept { return is_end_[static_cast<std::size_t>(t)] != 0; }

  /// @brief The lifted state of the empty generated text.
  [[nodiscard]] state start() const noexcept { return pack(dfa_.start, initial_mode_); }

  /// @brief The lifted state after token t (computed from its bytes, no row cache).
  /// @throw what the automaton's step throws (byte_grammar: its state cap)
  [[nodiscard]] state advance(state s, token t) const {
    if (s == dead) return dead;
    const text_mode mode = mode_of(s);
    const std::int32_t q = dfa_.run(dfa_state(s), table_.bytes_of(t, mode));
    return pack(q, table_.mode_after(t, mode));
  }

  /// @brief The lifted state after a token sequence from start().
  /// @throw tsmc::invalid_argument if a token is outside [0, V)
  [[nodiscard]] state run(std::span<const token> tokens) const {
    static const std::string function = std::string(lift_names<Automaton>::lifted) + "::run";
    check_tokens(tokens, vocab_size(), function, "tokens");
    state s = start();
    for (const token t : tokens) s = advance(s, t);
    return s;
  }

  /// @brief Whether a finished text in lifted state s is accepted.
  [[nodiscard]] bool accepts(state s) const noexcept { return s != dead && dfa_.accepts(dfa_state(s)); }

  /// @brief The next lifted state for every token from s, by one walk of the trie (cached).
  /// @return V states (dead where the token's bytes kill the automaton; all dead from dead)
  [[nodiscard]] std::span<const state> next_states(state s) {
    if (s == dead) {
      all_dead_.assign(vocab_size(), dead);
      return all_dead_;
    }
    return info(s).next;
  }

  /// @brief G_r(s): whether an accepted finished sequence is reachable with r tokens still to
  /// come after the token that led to s (see the file's description). Memoised.
  [[nodiscard]] bool feasible(state s, std::size_t remaining) {
    if (s == dead) return false;
    if (remaining == 0) return accepts(s);
    const std::uint64_t key = (static_cast<std::uint64_t>(static_cast<std::uint32_t>(s)) << 32) | remaining;
    if (const auto it = feasible_memo_.find(key); it != feasible_memo_.end()) return it->second != 0;
    // Iterative deepening over the successors, with the recursion bounded by remaining.
    state_info& si = info(s);
    bool ok = si.end_accepts;
    for (std::size_t i = 0; !ok && i < si.successors.size(); ++i) ok = feasible(si.successors[i], remaining - 1);
    feasible_memo_.emplace(key, ok ? 1 : 0);
    return ok;
  }

  /// @brief Whether some accepted finished sequence of at most `horizon` tokens exists.
  [[nodiscard]] bool satisfiable(std::size_t horizon) {
    if (horizon == 0) return false;
    const state s = start();
    if (s == dead) return false;
    state_info& si = info(s);
    if (si.end_accepts) return true;
    for (const state n : si.successors)
      if (feasible(n, horizon - 1)) return true;
    return false;
  }

  /// @brief Throws unless satisfiable(horizon): an unsatisfiable constraint is an error before
  /// sampling, not a run of zero weights.
  /// @throw tsmc::invalid_argument naming the caller and the horizon
  void check_satisfiable(std::size_t horizon, std::string_view function) {
    if (checked_horizon_ == horizon) return;
    check_argument(satisfiable(horizon), function, "constraint",
                   "must be satisfiable within the horizon (no finished sequence of at most " + std::to_string(horizon) +
                       " tokens is accepted)",
                   "an unsatisfiable constraint");
    checked_horizon_ = horizon;
  }

  /// @brief Writes the log feasibility of every candidate token after a text in lifted state s,
  /// with `remaining` tokens still to come after the candidate: 0 or -inf per token.
  /// @param s the lifted state of the prefix
  /// @param remaining T - t for step t
  /// @param out V values
  void log_feasibility_row(state s, std::size_t remaining, std::span<double> out) {
    constexpr double minus_inf = -std::numeric_limits<double>::infinity();
    if (s == dead) {
      std::fill(out.begin(), out.end(), minus_inf);
      return;
    }
    state_info& si = info(s);
    ok_.resize(si.successors.size());
    for (std::size_t i = 0; i < si.successors.size(); ++i) ok_[i] = feasible(si.successors[i], remaining) ? 0.0 : minus_inf;
    const std::size_t V = vocab_size();
    const std::int32_t* index = si.successor_index.data();
    const double* ok = ok_.data();
    for (std::size_t v = 0; v < V; ++v) out[v] = index[v] < 0 ? minus_inf : ok[index[v]];
    for (const token e : end_tokens_) out[static_cast<std::size_t>(e)] = accepts(si.next[static_cast<std::size_t>(e)]) ? 0.0 : minus_inf;
  }

  /// @brief The number of lifted states whose next-state rows are cached.
  [[nodiscard]] std::size_t cached_states() const noexcept { return cache_.size(); }

 private:
  struct state_info {
    std::vector<state> next;                    // V next states
    std::vector<state> successors;              // distinct live next states over non-end tokens
    std::vector<std::int32_t> successor_index;  // V: index into successors, -1 for dead or end tokens
    bool end_accepts = false;                   // some end token finishes the text accepted
  };

  [[nodiscard]] static state pack(std::int32_t q, text_mode mode) noexcept {
    return q == dead ? dead : q * 3 + static_cast<state>(mode);
  }
  [[nodiscard]] static std::int32_t dfa_state(state s) noexcept { return s / 3; }
  [[nodiscard]] static text_mode mode_of(state s) noexcept { return static_cast<text_mode>(s % 3); }

  state_info& info(state s) {
    if (const auto it = cache_.find(s); it != cache_.end()) return *it->second;
    auto si = std::make_unique<state_info>();
    const std::size_t V = vocab_size();
    const text_mode mode = mode_of(s);
    si->next.assign(V, dead);
    if (mode == text_mode::stopped) {
      for (std::size_t v = 0; v < V; ++v) si->next[v] = s;
    } else {
      const vocabulary_trie& trie = mode == text_mode::start ? initial_trie_ : middle_trie_;
      state* next = si->next.data();
      const token_byte_table& table = table_;
      trie.walk(dfa_, dfa_state(s), [next, &table, mode](token t, std::int32_t q) {
        next[static_cast<std::size_t>(t)] = pack(q, table.mode_after(t, mode));
      });
    }
    si->successor_index.assign(V, -1);
    std::unordered_map<state, std::int32_t> position;
    for (std::size_t v = 0; v < V; ++v) {
      const state n = si->next[v];
      if (is_end_[v]) {
        if (accepts(n)) si->end_accepts = true;
        continue;
      }
      if (n == dead) continue;
      const auto [it, inserted] = position.emplace(n, static_cast<std::int32_t>(si->successors.size()));
      if (inserted) si->successors.push_back(n);
      si->successor_index[v] = it->second;
    }
    state_info& ref = *si;
    cache_.emplace(s, std::move(si));
    return ref;
  }

  Automaton dfa_;
  token_byte_table table_;
  std::vector<token> end_tokens_;
  std::vector<std::uint8_t> is_end_;
  text_mode initial_mode_;
  vocabulary_trie initial_trie_, middle_trie_;
  std::unordered_map<state, std::unique_ptr<state_info>> cache_;
  std::unordered_map<std::uint64_t, std::uint8_t> feasible_memo_;
  std::vector<double> ok_;
  std::vector<state> all_dead_;
  std::size_t checked_horizon_ = 0;
};

/// @brief A byte DFA lifted to a vocabulary.
using token_dfa = token_automaton<byte_dfa>;

/// @brief Builds a token_dfa for a regular expression (compile_regex's syntax) over a tokenizer.
/// @param pattern the regular expression; the decoded generated text must match it fully
/// @param tokenizer a TokenizerWithBytes (llama2c::tokenizer, word_tokenizer, ...)
/// @param end_tokens the sampler's end tokens
/// @param initial_mode see token_dfa::token_dfa
/// @throw tsmc::invalid_argument for a malformed pattern (naming the position) or bad end tokens
template <class Tokenizer>
[[nodiscard]] token_dfa make_regex_constraint(std::string_view pattern, const Tokenizer& tokenizer,
                                              std::vector<token> end_tokens = {},
                                              text_mode initial_mode = text_mode::start) {
  return token_dfa(compile_regex(pattern), make_token_byte_table(tokenizer), std::move(end_tokens), initial_mode);
}

namespace detail {

/// The lifted state of each active particle's prefix (dead for finished particles).
template <class Lifted, class Model>
void prefix_states(Lifted& c, const step_context<Model>& ctx, std::vector<typename Lifted::state>& out) {
  out.resize(ctx.prefixes.size());
  for (std::size_t k = 0; k < ctx.prefixes.size(); ++k) {
    typename Lifted::state s = c.start();
    if (ctx.active.empty() || ctx.active[k])
      for (const token t : ctx.prefixes[k]) s = c.advance(s, t);
    out[k] = s;
  }
}

/// Writes (or adds) one feasibility row per active particle, computing a row once per distinct
/// lifted state and copying it for the other particles in that state.
template <class Lifted, class Model>
void write_feasibility(Lifted& c, const step_context<Model>& ctx, std::size_t remaining, log_prob_ref out,
                       bool add, std::vector<typename Lifted::state>& states, std::vector<double>& row) {
  prefix_states(c, ctx, states);
  const std::size_t V = c.vocab_size();
  std::unordered_map<typename Lifted::state, std::size_t> done;  // state -> a particle whose row has it
  row.resize(V);
  for (std::size_t k = 0; k < states.size(); ++k) {
    if (!ctx.active.empty() && !ctx.active[k]) continue;
    const auto rk = static_cast<Eigen::Index>(k);
    Eigen::Map<Eigen::RowVectorXd> row_map(row.data(), static_cast<Eigen::Index>(V));
    if (!add) {
      const auto it = done.find(states[k]);
      if (it != done.end()) {
        out.row(rk) = out.row(static_cast<Eigen::Index>(it->second));
        continue;
      }
      c.log_feasibility_row(states[k], remaining, std::span<double>(out.row(rk).data(), V));
      done.emplace(states[k], k);
    } else {
      c.log_feasibility_row(states[k], remaining, std::span<double>(row));
      out.row(rk) += row_map;
    }
  }
}

}  // namespace detail

/// @brief The potential of a lifted automaton (token_dfa, token_grammar): phi(s) = 1 if the
/// decoded text of the finished sequence s is accepted, else 0; with the exact next-token form
/// (psi_T = phi, every candidate at once).
///
/// Holds a pointer: the lifted automaton must outlive it. Several potentials and twists may share one.
/// @tparam Lifted a token_automaton (dfa_potential: token_dfa; grammar_potential: token_grammar)
template <class Lifted>
class lifted_potential {
 public:
  /// @brief The potential of a lifted automaton.
  explicit lifted_potential(Lifted& constraint) : c_(&constraint) {}

  /// @brief log phi of finished sequences: 0 where the text is accepted, -inf elsewhere.
  /// @throw tsmc::invalid_argument if a token is outside [0, V)
  void log_potential(std::span<const token_sequence> sequences, std::span<double> out) const {
    for (std::size_t i = 0; i < sequences.size(); ++i)
      out[i] = c_->accepts(c_->run(sequences[i])) ? 0.0 : -std::numeric_limits<double>::infinity();
  }

  /// @brief log phi(prefix_k, v) for every candidate v (exact; the last step of a twisted run).
  /// @throw tsmc::invalid_argument if the constraint cannot be satisfied within ctx.horizon
  template <class Model>
  void log_potential_next(const step_context<Model>& ctx, log_prob_ref out) {
    static const std::string function =
        std::string(lift_names<typename Lifted::automaton_type>::potential) + "::log_potential_next";
    c_->check_satisfiable(ctx.horizon, function);
    detail::write_feasibility(*c_, ctx, 0, out, false, states_, row_);
  }

  /// @brief The lifted automaton.
  [[nodiscard]] Lifted& constraint() const noexcept { return *c_; }

 private:
  Lifted* c_;
  std::vector<typename Lifted::state> states_;
  std::vector<double> row_;
};

/// @brief The potential of a token_dfa (a regular expression's, a lexical constraint's).
using dfa_potential = lifted_potential<token_dfa>;

/// @brief A twist times the feasibility of a lifted automaton (token_dfa by default;
/// token_grammar: feasibility_twist<Twist, token_grammar>): log psi_t = log psi_t^inner + log G,
/// where G (0 or 1) says whether the candidate can still end in an accepted sequence within the
/// horizon (see the file's description). psi_t = 0 exactly where no continuation can satisfy
/// the constraint, so SMC with this twist stays unbiased (Zhao et al. 2024, Eq. 15 needs psi > 0
/// only where the target has mass) and no particle is wasted on a dead prefix.
///
/// Forwards vocab_size, start, append and reorder to the inner twist when it has them (it always
/// declares them itself, as a twist with state does).
/// @tparam Twist any twist (no_twist, mlp_twist, ...), held by value; a reference type (such as
/// mlp_twist&) wraps a twist owned elsewhere
/// @tparam Lifted the lifted automaton (token_dfa, token_grammar)
template <class Twist, class Lifted = token_dfa>
class feasibility_twist {
 public:
  /// @brief Wraps a twist.
  /// @param constraint the lifted automaton (must outlive the twist)
  /// @param inner the twist to multiply
  feasibility_twist(Lifted& constraint, Twist inner) : c_(&constraint), inner_(std::forward<Twist>(inner)) {}

  /// @brief The vocabulary size (the constraint's).
  [[nodiscard]] std::size_t vocab_size() const noexcept { return c_->vocab_size(); }

  /// @brief Forwards to the inner twist's start, if any.
  void start(std::span<const token> prompt, std::size_t particles) {
    if constexpr (requires { inner_.start(prompt, particles); }) inner_.start(prompt, particles);
  }
  /// @brief Forwards to the inner twist's append, if any.
  void append(std::span<const token> tokens) {
    if constexpr (requires { inner_.append(tokens); }) inner_.append(tokens);
  }
  /// @brief Forwards to the inner twist's reorder, if any.
  void reorder(std::span<const particle_index> ancestors) {
    if constexpr (requires { inner_.reorder(ancestors); }) inner_.reorder(ancestors);
  }

  /// @brief log psi_t = inner log psi_t + log feasibility.
  /// @throw tsmc::invalid_argument if the constraint cannot be satisfied within ctx.horizon
  template <class Model>
  void log_twist(const step_context<Model>& ctx, log_prob_ref out) {
    c_->check_satisfiable(ctx.horizon, "feasibility_twist::log_twist");
    const std::size_t remaining = ctx.horizon - ctx.step;
    if constexpr (requires { requires std::remove_cvref_t<Twist>::is_unit_twist; }) {
      detail::write_feasibility(*c_, ctx, remaining, out, false, states_, row_);
    } else {
      inner_.log_twist(ctx, out);
      detail::write_feasibility(*c_, ctx, remaining, out, true, states_, row_);
    }
  }

  /// @brief The inner twist.
  [[nodiscard]] Twist& inner() noexcept { return inner_; }

 private:
  Lifted* c_;
  Twist inner_;
  std::vector<typename Lifted::state> states_;
  std::vector<double> row_;
};

}  // namespace tsmc
