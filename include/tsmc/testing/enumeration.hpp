#pragma once
/// @file
/// @brief Exact solutions of enumerable toy problems: log Z, sigma and its prefix marginals,
/// the optimal twists psi* by the backward recursion, exact KLs of a proposal, an exact sampler
/// from sigma, and psi* as a TwistFunction (the oracles of Zhao et al. 2024, Section 8 of our
/// notes).
///
/// enumerate() builds the tree of every prefix of the problem: a node is a generated prefix
/// s_{1:t}; it is finished when t = T or when its last token is the end token (sequences never
/// continue after the end token). Each unfinished node stores the model's conditional
/// log p0(v | prompt, s_{1:t}) for its V children; each finished node stores log phi. The
/// backward recursion (Eq. 11)
///   psi*(finished s) = phi(s),   psi*(s_{1:t}) = sum_v p0(v | s_{1:t}) psi*(s_{1:t}, v)
/// then gives psi*_0 = Z, and sigma(s_{1:t}) = p0(s_{1:t}) psi*(s_{1:t}) / Z for every prefix.
/// The cost is one model query per unfinished node and one potential evaluation per finished
/// sequence, so the problem must be small (at most max_enumerated_sequences finished sequences).

#include <tsmc/core/concepts.hpp>
#include <tsmc/core/error.hpp>
#include <tsmc/core/log_math.hpp>
#include <tsmc/core/random.hpp>
#include <tsmc/core/types.hpp>
#include <tsmc/testing/sequence_hash.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace tsmc::testing {

/// @brief The largest number of finished sequences enumerate() accepts (1e7).
inline constexpr std::size_t max_enumerated_sequences = 10'000'000;

/// @brief An enumerable problem: a vocabulary, a horizon, a prompt and an optional end token.
struct toy_problem {
  std::size_t vocab_size = 2;        ///< V, the number of tokens
  std::size_t horizon = 1;           ///< T, the maximum number of generated tokens
  token_sequence prompt{};           ///< s_0, passed to the model (potentials never see it)
  std::optional<token> end_token{};  ///< when set, a sequence that emits it is finished
  std::vector<token> end_tokens{};   ///< more finishing tokens (smc_options::end_tokens' meaning)

  /// @brief Whether token x finishes a sequence (end_token or one of end_tokens).
  [[nodiscard]] bool is_end(token x) const noexcept {
    return (end_token && x == *end_token) || std::find(end_tokens.begin(), end_tokens.end(), x) != end_tokens.end();
  }
};

}  // namespace tsmc::testing

namespace tsmc::detail {

/// A model enumerate() can query: next_log_probs(prompt, prefix, out) writes V log-probabilities.
template <class M>
concept enumerable_model = requires(const M& m, std::span<const token> tokens, std::span<double> out) {
  m.next_log_probs(tokens, tokens, out);
};

/// Checks that a next-token log-probability row has no NaN / +inf and is normalised to 1e-6.
inline void check_log_prob_row(std::span<const double> row, std::span<const token> prefix, const char* function,
                               const char* what) {
  for (std::size_t v = 0; v < row.size(); ++v)
    if (std::isnan(row[v]) || row[v] == std::numeric_limits<double>::infinity())
      throw_invalid_argument(function, std::string(what) + "(" + tokens_text(prefix) + ")[" + std::to_string(v) + "]",
                             "must not be NaN or +inf", row[v]);
  const double lse = logsumexp(row);
  check_argument(std::abs(lse) <= 1e-6, function, "logsumexp of " + std::string(what) + "(" + tokens_text(prefix) + ")",
                 "must be 0 (a normalised distribution)", lse);
}

struct enumeration_builder;

}  // namespace tsmc::detail

namespace tsmc::testing {

/// @brief The exact solution of a toy problem, made by enumerate(): every finished sequence,
/// log Z, sigma, its prefix marginals, the optimal twists and exact KLs.
///
/// Prefixes are generated tokens only (the prompt excluded). A query for a prefix that is not
/// in the problem's tree (longer than T, or continuing after the end token) has zero mass:
/// -inf. When Z = 0 (phi vanishes wherever p0 > 0) log_z() is -inf and every log sigma is -inf;
/// the KLs and enumeration_sampler then throw.
class exact_solution {
 public:
  /// @brief The problem this solves.
  [[nodiscard]] const toy_problem& problem() const noexcept { return problem_; }
  /// @brief V.
  [[nodiscard]] std::size_t vocab_size() const noexcept { return problem_.vocab_size; }
  /// @brief T.
  [[nodiscard]] std::size_t horizon() const noexcept { return problem_.horizon; }
  /// @brief The prompt.
  [[nodiscard]] std::span<const token> prompt() const noexcept { return problem_.prompt; }
  /// @brief The number of prefixes in the tree (the empty prefix included).
  [[nodiscard]] std::size_t node_count() const noexcept { return log_psi_.size(); }

  /// @brief log Z = log sum_s p0(s) phi(s) over the finished sequences (Eq. 1).
  [[nodiscard]] double log_z() const noexcept { return log_z_; }

  /// @brief Every finished sequence, in lexicographic (depth-first) order.
  [[nodiscard]] std::span<const token_sequence> sequences() const noexcept { return sequences_; }

  /// @brief log sigma of each finished sequence, normalised, aligned with sequences().
  [[nodiscard]] std::span<const double> log_sigma() const noexcept { return log_sigma_; }

  /// @brief log phi of each finished sequence, aligned with sequences().
  [[nodiscard]] std::span<const double> log_phi() const noexcept { return log_phi_; }

  /// @brief log p0 of each finished sequence given the prompt, aligned with sequences().
  [[nodiscard]] std::vector<double> log_p0_of_sequences() const {
    std::vector<double> out(sequences_.size());
    for (std::size_t i = 0; i < out.size(); ++i) out[i] = log_p0_[leaf_node_[i]];
    return out;
  }

  /// @brief log sigma of one sequence.
  /// @return log sigma(sequence), or -inf if it is not a finished sequence of the problem
  /// @throw tsmc::invalid_argument if a token is outside [0, V)
  [[nodiscard]] double log_sigma_of(std::span<const token> sequence) const {
    const auto node = find_node(sequence, "testing::exact_solution::log_sigma_of");
    if (!node || first_child_[*node] >= 0) return neg_inf;
    return log_sigma_[static_cast<std::size_t>(sequence_of_[*node])];
  }

  /// @brief log sigma(s_{1:t}): the total sigma mass of the finished sequences extending the
  /// prefix (a finished prefix counts itself); 0 for the empty prefix when Z > 0.
  /// @return log p0(s_{1:t}) + log psi*_t(s_{1:t}) - log Z, or -inf outside the tree or when Z = 0
  /// @throw tsmc::invalid_argument if a token is outside [0, V)
  [[nodiscard]] double log_prefix_marginal(std::span<const token> prefix) const {
    const auto node = find_node(prefix, "testing::exact_solution::log_prefix_marginal");
    if (!node || log_z_ == neg_inf) return neg_inf;
    return log_p0_[*node] + log_psi_[*node] - log_z_;
  }

  /// @brief log psi*_t(s_{1:t}), the unnormalised optimal twist (Eq. 11): the expected future
  /// potential. log psi*_0 (empty prefix) = log Z; for a finished sequence, log phi.
  /// @return the value, or -inf outside the tree
  /// @throw tsmc::invalid_argument if a token is outside [0, V)
  [[nodiscard]] double log_optimal_twist(std::span<const token> prefix) const {
    const auto node = find_node(prefix, "testing::exact_solution::log_optimal_twist");
    return node ? log_psi_[*node] : neg_inf;
  }

  /// @brief log p0(s_{1:t} | prompt) of a prefix (0 for the empty prefix).
  /// @return the value, or -inf outside the tree
  /// @throw tsmc::invalid_argument if a token is outside [0, V)
  [[nodiscard]] double log_p0(std::span<const token> prefix) const {
    const auto node = find_node(prefix, "testing::exact_solution::log_p0");
    return node ? log_p0_[*node] : neg_inf;
  }

  /// @brief The model's next-token log-probabilities after an unfinished prefix, as enumerated.
  /// @param prefix an unfinished prefix of the problem (shorter than T, no end token)
  /// @param out V entries: log p0(v | prompt, prefix)
  /// @throw tsmc::invalid_argument if out.size() != V or the prefix is not unfinished
  void log_p0_next(std::span<const token> prefix, std::span<double> out) const {
    const std::size_t first = unfinished_children(prefix, out.size(), "testing::exact_solution::log_p0_next");
    for (std::size_t v = 0; v < out.size(); ++v) out[v] = log_cond_[first + v];
  }

  /// @brief sigma's next-token conditionals after an unfinished prefix:
  /// log sigma(v | s_{1:t}) = log p0(v | s_{1:t}) + log psi*(s_{1:t}, v) - log psi*(s_{1:t}),
  /// the twist-induced proposal of the optimal twist (Prop. 3.3). Where psi*(s_{1:t}) = 0 the
  /// conditional is undefined and p0's is written instead (so every row is normalised).
  /// @param prefix an unfinished prefix of the problem
  /// @param out V entries
  /// @throw tsmc::invalid_argument if out.size() != V or the prefix is not unfinished
  void log_sigma_next(std::span<const token> prefix, std::span<double> out) const {
    const std::size_t first = unfinished_children(prefix, out.size(), "testing::exact_solution::log_sigma_next");
    const std::size_t node = first_parent_[first];
    const double parent = log_psi_[node];
    for (std::size_t v = 0; v < out.size(); ++v)
      out[v] = parent == neg_inf ? log_cond_[first + v] : log_cond_[first + v] + log_psi_[first + v] - parent;
  }

  /// @brief KL(sigma || q) over the finished sequences, for a proposal q given by its
  /// next-token tables: q(s) = prod_t q(s_t | s_{<t}) (stopping at the end token).
  /// @tparam Q a callable q(prompt, prefix, out) writing out[v] = log q(v | prefix), or an
  /// object with next_log_probs(prompt, prefix, out) (a model: then q = p0)
  /// @return sum_s sigma(s) (log sigma(s) - log q(s)); +inf if q(s) = 0 where sigma(s) > 0
  /// @throw tsmc::invalid_argument if Z = 0, or a row of q has NaN / +inf or is not normalised
  template <class Q>
  [[nodiscard]] double kl_sigma_q(Q&& q) const {
    constexpr const char* function = "testing::exact_solution::kl_sigma_q";
    check_argument(log_z_ > neg_inf, function, "log Z", "must be finite (sigma is undefined when Z = 0)", log_z_);
    return directed_kl(log_sigma_, leaf_log_q(q, function));
  }

  /// @brief KL(q || sigma) over the finished sequences, for q given by next-token tables as in
  /// kl_sigma_q.
  /// @return sum_s q(s) (log q(s) - log sigma(s)); +inf if sigma(s) = 0 where q(s) > 0
  /// @throw tsmc::invalid_argument as kl_sigma_q
  template <class Q>
  [[nodiscard]] double kl_q_sigma(Q&& q) const {
    constexpr const char* function = "testing::exact_solution::kl_q_sigma";
    check_argument(log_z_ > neg_inf, function, "log Z", "must be finite (sigma is undefined when Z = 0)", log_z_);
    return directed_kl(leaf_log_q(q, function), log_sigma_);
  }

  /// @brief log q(s) of every finished sequence for a proposal given by next-token tables
  /// (as in kl_sigma_q), aligned with sequences().
  /// @throw tsmc::invalid_argument if a row of q has NaN / +inf or is not normalised
  template <class Q>
  [[nodiscard]] std::vector<double> log_q_of_sequences(Q&& q) const {
    return leaf_log_q(q, "testing::exact_solution::log_q_of_sequences");
  }

 private:
  /// KL(a || b) = sum_i a_i (log a_i - log b_i) over the sequences, from log-probabilities;
  /// +inf where b has no mass under a's support.
  [[nodiscard]] static double directed_kl(std::span<const double> log_a, std::span<const double> log_b) {
    double kl = 0.0;
    for (std::size_t i = 0; i < log_a.size(); ++i) {
      if (log_a[i] == neg_inf) continue;
      if (log_b[i] == neg_inf) return std::numeric_limits<double>::infinity();
      kl += std::exp(log_a[i]) * (log_a[i] - log_b[i]);
    }
    return kl;
  }

  friend struct detail::enumeration_builder;
  friend class optimal_twist;
  exact_solution() = default;

  /// @brief The index of an unfinished prefix's first child node (used by optimal_twist). Children of one node are contiguous, child v at first + v.
  /// @return the index, or nullopt if the prefix is not an unfinished node
  /// @throw tsmc::invalid_argument if a token is outside [0, V)
  [[nodiscard]] std::optional<std::size_t> children_of(std::span<const token> prefix, const char* function) const {
    const auto node = find_node(prefix, function);
    if (!node || first_child_[*node] < 0) return std::nullopt;
    return static_cast<std::size_t>(first_child_[*node]);
  }

  /// @brief log psi* of a node by index (used by optimal_twist).
  [[nodiscard]] double node_log_optimal_twist(std::size_t node) const noexcept { return log_psi_[node]; }


  [[nodiscard]] std::optional<std::size_t> find_node(std::span<const token> prefix, const char* function) const {
    check_tokens(prefix, problem_.vocab_size, function, "prefix");
    std::size_t node = 0;
    for (const token t : prefix) {
      if (first_child_[node] < 0) return std::nullopt;
      node = static_cast<std::size_t>(first_child_[node]) + static_cast<std::size_t>(t);
    }
    return node;
  }

  [[nodiscard]] std::size_t unfinished_children(std::span<const token> prefix, std::size_t out_size,
                                                const char* function) const {
    check_size(function, "out.size()", out_size, "the vocabulary size", problem_.vocab_size);
    const auto first = children_of(prefix, function);
    if (!first)
      throw_invalid_argument(function, "prefix", "must be an unfinished prefix of the problem",
                             tokens_text(prefix));
    return *first;
  }

  template <class Q>
  void query_q(Q& q, std::span<const token> prefix, std::span<double> row) const {
    if constexpr (requires { q.next_log_probs(prompt(), prefix, row); }) {
      q.next_log_probs(prompt(), prefix, row);
    } else {
      static_assert(std::is_invocable_v<Q&, std::span<const token>, std::span<const token>, std::span<double>>,
                    "tsmc::testing::exact_solution: a proposal must be callable as q(prompt, prefix, out) "
                    "writing out[v] = log q(v | prefix), or have next_log_probs(prompt, prefix, out)");
      q(prompt(), prefix, row);
    }
  }

  // log q of every finished sequence, walking the tree depth-first with an explicit stack.
  template <class Q>
  [[nodiscard]] std::vector<double> leaf_log_q(Q& q, const char* function) const {
    const std::size_t vocab = problem_.vocab_size;
    std::vector<double> node_log_q(log_psi_.size(), 0.0);
    std::vector<double> leaf(sequences_.size(), neg_inf);
    std::vector<double> row(vocab);
    token_sequence prefix;
    struct entry {
      std::size_t node;
      std::size_t depth;
    };
    std::vector<entry> stack{{0, 0}};
    while (!stack.empty()) {
      const entry e = stack.back();
      stack.pop_back();
      if (e.depth > 0) {
        prefix.resize(e.depth - 1);
        prefix.push_back(token_of_[e.node]);
      }
      if (first_child_[e.node] < 0) {
        leaf[static_cast<std::size_t>(sequence_of_[e.node])] = node_log_q[e.node];
        continue;
      }
      query_q(q, prefix, row);
      detail::check_log_prob_row(row, prefix, function, "q");
      const auto first = static_cast<std::size_t>(first_child_[e.node]);
      for (std::size_t v = 0; v < vocab; ++v) node_log_q[first + v] = node_log_q[e.node] + row[v];
      for (std::size_t v = vocab; v-- > 0;) stack.push_back({first + v, e.depth + 1});
    }
    return leaf;
  }

  toy_problem problem_;
  double log_z_ = neg_inf;
  // Per node (index 0 = the empty prefix; children of a node are contiguous and after it).
  std::vector<double> log_cond_;           // log p0(last token | parent prefix); 0 at the root
  std::vector<double> log_p0_;             // log p0(prefix | prompt)
  std::vector<double> log_psi_;            // log psi*(prefix)
  std::vector<std::int64_t> first_child_;  // first child's index, -1 for finished nodes
  std::vector<std::int64_t> sequence_of_;  // index into sequences_ for finished nodes, else -1
  std::vector<std::size_t> first_parent_;  // for each node: its parent (the root's is 0)
  std::vector<token> token_of_;            // the node's last token (0 at the root)
  // Per finished sequence.
  std::vector<token_sequence> sequences_;
  std::vector<double> log_phi_;
  std::vector<double> log_sigma_;
  std::vector<std::size_t> leaf_node_;
};

}  // namespace tsmc::testing

namespace tsmc::detail {

/// Builds an exact_solution (the body of testing::enumerate).
struct enumeration_builder {
  static constexpr const char* function = "testing::enumerate";

  static void check_problem(const testing::toy_problem& problem) {
    check_positive(function, "problem.vocab_size", problem.vocab_size);
    check_positive(function, "problem.horizon", problem.horizon);
    if (problem.end_token)
      check_argument(*problem.end_token >= 0 && static_cast<std::size_t>(*problem.end_token) < problem.vocab_size,
                     function, "problem.end_token", "must be in [0, " + std::to_string(problem.vocab_size) + ")",
                     *problem.end_token);
    for (std::size_t i = 0; i < problem.end_tokens.size(); ++i) {
      const token e = problem.end_tokens[i];
      const std::string field = "problem.end_tokens[" + std::to_string(i) + "]";
      check_argument(e >= 0 && static_cast<std::size_t>(e) < problem.vocab_size, function, field,
                     "must be in [0, " + std::to_string(problem.vocab_size) + ")", e);
      const bool repeated = (problem.end_token && *problem.end_token == e) ||
                            std::count(problem.end_tokens.begin(), problem.end_tokens.end(), e) > 1;
      check_argument(!repeated, function, field, "must not repeat end_token or another end token", e);
    }
    const double ends = static_cast<double>(problem.end_tokens.size() + (problem.end_token ? 1 : 0));
    // Count finished sequences and nodes level by level (in double: no overflow).
    const double vocab = static_cast<double>(problem.vocab_size);
    double unfinished = 1.0, finished = 0.0, nodes = 1.0;
    for (std::size_t depth = 1; depth <= problem.horizon; ++depth) {
      const double children = unfinished * vocab;
      nodes += children;
      if (depth == problem.horizon) {
        finished += children;
      } else if (ends > 0.0) {
        finished += unfinished * ends;
        unfinished = children - unfinished * ends;
      } else {
        unfinished = children;
      }
      if (finished > static_cast<double>(testing::max_enumerated_sequences) ||
          nodes > 4.0 * static_cast<double>(testing::max_enumerated_sequences))
        break;
    }
    check_argument(finished <= static_cast<double>(testing::max_enumerated_sequences) &&
                       nodes <= 4.0 * static_cast<double>(testing::max_enumerated_sequences),
                   function, "number of finished sequences",
                   "must be at most " + std::to_string(testing::max_enumerated_sequences) + " (V^T is too large)",
                   finished);
  }

  template <class Model, class Pot>
  static testing::exact_solution build(const testing::toy_problem& problem, const Model& model, Pot& potential) {
    check_problem(problem);
    check_tokens(problem.prompt, problem.vocab_size, function, "problem.prompt");
    if constexpr (requires { model.vocab_size(); })
      check_size(function, "model.vocab_size()", model.vocab_size(), "problem.vocab_size", problem.vocab_size);

    testing::exact_solution s;
    s.problem_ = problem;
    const std::size_t vocab = problem.vocab_size;
    const auto add_node = [&s](double log_cond, double log_p0, std::size_t parent, token t) {
      s.log_cond_.push_back(log_cond);
      s.log_p0_.push_back(log_p0);
      s.log_psi_.push_back(neg_inf);
      s.first_child_.push_back(-1);
      s.sequence_of_.push_back(-1);
      s.first_parent_.push_back(parent);
      s.token_of_.push_back(t);
    };
    add_node(0.0, 0.0, 0, 0);

    // Depth-first expansion: the current prefix is the path to the node being visited.
    struct entry {
      std::size_t node;
      std::size_t depth;
    };
    std::vector<entry> stack{{0, 0}};
    token_sequence prefix;
    std::vector<double> row(vocab);
    while (!stack.empty()) {
      const entry e = stack.back();
      stack.pop_back();
      if (e.depth > 0) {
        prefix.resize(e.depth - 1);
        prefix.push_back(s.token_of_[e.node]);
      }
      const bool finished =
          e.depth == problem.horizon || (e.depth > 0 && problem.is_end(prefix.back()));
      if (finished) {
        s.sequence_of_[e.node] = static_cast<std::int64_t>(s.sequences_.size());
        s.sequences_.push_back(prefix);
        s.leaf_node_.push_back(e.node);
        continue;
      }
      model.next_log_probs(std::span<const token>(problem.prompt), std::span<const token>(prefix),
                           std::span<double>(row));
      check_log_prob_row(row, prefix, function, "model.next_log_probs");
      const std::size_t first = s.log_psi_.size();
      s.first_child_[e.node] = static_cast<std::int64_t>(first);
      const double parent_log_p0 = s.log_p0_[e.node];
      for (std::size_t v = 0; v < vocab; ++v)
        add_node(row[v], parent_log_p0 + row[v], e.node, static_cast<token>(v));
      for (std::size_t v = vocab; v-- > 0;) stack.push_back({first + v, e.depth + 1});
    }

    // The potential, once over every finished sequence.
    s.log_phi_.assign(s.sequences_.size(), 0.0);
    potential.log_potential(std::span<const token_sequence>(s.sequences_), std::span<double>(s.log_phi_));
    for (std::size_t i = 0; i < s.log_phi_.size(); ++i)
      if (std::isnan(s.log_phi_[i]) || s.log_phi_[i] == std::numeric_limits<double>::infinity())
        throw_invalid_argument(function, "log phi(" + tokens_text(s.sequences_[i]) + ")",
                               "must not be NaN or +inf", s.log_phi_[i]);

    // Backward recursion (Eq. 11): children have larger indices than their parent.
    std::vector<double> terms(vocab);
    for (std::size_t node = s.log_psi_.size(); node-- > 0;) {
      if (s.first_child_[node] < 0) {
        s.log_psi_[node] = s.log_phi_[static_cast<std::size_t>(s.sequence_of_[node])];
        continue;
      }
      const auto first = static_cast<std::size_t>(s.first_child_[node]);
      for (std::size_t v = 0; v < vocab; ++v) terms[v] = s.log_cond_[first + v] + s.log_psi_[first + v];
      s.log_psi_[node] = logsumexp(std::span<const double>(terms));
    }
    s.log_z_ = s.log_psi_[0];

    s.log_sigma_.assign(s.sequences_.size(), neg_inf);
    if (s.log_z_ > neg_inf)
      for (std::size_t i = 0; i < s.sequences_.size(); ++i)
        s.log_sigma_[i] = s.log_p0_[s.leaf_node_[i]] + s.log_phi_[i] - s.log_z_;
    return s;
  }
};

}  // namespace tsmc::detail

namespace tsmc::testing {

/// @brief Enumerates a toy problem exactly: every finished sequence (all V^T full-length ones,
/// plus, with an end token, every shorter one ending in it), p0 by the chain rule, phi, log Z,
/// sigma and psi* by the backward recursion (Zhao et al. 2024, Eqs. 1 and 11).
/// @tparam Model any type with next_log_probs(prompt, prefix, out) writing V normalised
/// log-probabilities in double (tabular_model; a model with vocab_size() is checked against V)
/// @tparam Pot any tsmc::Potential (log_potential is called once, over every finished sequence)
/// @param problem the vocabulary size, horizon, prompt and optional end token
/// @param model the base model p0
/// @param potential the potential phi (scores generated tokens only)
/// @return the exact solution
/// @throw tsmc::invalid_argument if the problem is invalid or too large (more than
/// max_enumerated_sequences finished sequences), a model row has NaN / +inf or is not
/// normalised (to 1e-6), or a log phi is NaN or +inf
template <class Model, class Pot>
  requires detail::enumerable_model<Model> && Potential<std::remove_cvref_t<Pot>>
[[nodiscard]] exact_solution enumerate(const toy_problem& problem, const Model& model, Pot&& potential) {
  return detail::enumeration_builder::build(problem, model, potential);
}

// ---------------------------------------------------------------------------------------------
// optimal_twist
// ---------------------------------------------------------------------------------------------

/// @brief The optimal twist psi* of an exact solution as a tsmc::TwistFunction:
/// out(k, v) = log psi*_t(prefix_k + v); at t = T, and for v equal to the end
/// token, that is log phi. With it the twist-induced proposal is sigma's conditionals and
/// log Zhat = log Z in every run (up to double rounding).
///
/// Holds a reference: the exact_solution must outlive the twist.
class optimal_twist {
 public:
  /// @brief Wraps a solution (not copied).
  explicit optimal_twist(const exact_solution& solution) noexcept : solution_(&solution) {}

  /// @brief V, checked by samplers against the model's.
  [[nodiscard]] std::size_t vocab_size() const noexcept { return solution_->vocab_size(); }

  /// @brief The solution the twist reads.
  [[nodiscard]] const exact_solution& solution() const noexcept { return *solution_; }

  /// @brief out(k, v) = log psi*(prefix_k + v). Rows of finished particles (ctx.active[k] == 0)
  /// are set to 0; an empty ctx.active means every particle is active.
  /// @throw tsmc::invalid_argument if out is not K x V, the prompt differs from the problem's,
  /// or an active prefix is not an unfinished prefix of the problem
  template <class Model>
  void log_twist(const step_context<Model>& ctx, log_prob_ref out) const {
    constexpr const char* function = "testing::optimal_twist::log_twist";
    const std::size_t vocab = solution_->vocab_size();
    check_size(function, "out.rows()", out.rows(), "the number of prefixes", ctx.prefixes.size());
    check_size(function, "out.cols()", out.cols(), "the vocabulary size", vocab);
    const auto prompt = solution_->prompt();
    if (!std::equal(ctx.prompt.begin(), ctx.prompt.end(), prompt.begin(), prompt.end()))
      throw_invalid_argument(function, "ctx.prompt", "must equal the problem's prompt " + tokens_text(prompt),
                             tokens_text(ctx.prompt));
    for (std::size_t k = 0; k < ctx.prefixes.size(); ++k) {
      const auto row = static_cast<Eigen::Index>(k);
      if (!ctx.active.empty() && ctx.active[k] == 0) {
        out.row(row).setZero();
        continue;
      }
      const auto first = solution_->children_of(ctx.prefixes[k], function);
      if (!first)
        throw_invalid_argument(function, "ctx.prefixes[" + std::to_string(k) + "]",
                               "must be an unfinished prefix of the problem", tokens_text(ctx.prefixes[k]));
      for (std::size_t v = 0; v < vocab; ++v)
        out(row, static_cast<Eigen::Index>(v)) = solution_->node_log_optimal_twist(*first + v);
    }
  }

 private:
  const exact_solution* solution_;
};

// ---------------------------------------------------------------------------------------------
// enumeration_sampler
// ---------------------------------------------------------------------------------------------

/// @brief An exact sampler from sigma by inverse CDF over the enumerated sequences (one
/// uniform and a binary search per sample). Models tsmc::ExactSampler.
///
/// Holds a reference: the exact_solution must outlive the sampler.
class enumeration_sampler {
 public:
  /// @brief Builds the cumulative distribution of sigma.
  /// @throw tsmc::invalid_argument if Z = 0 (sigma is undefined)
  explicit enumeration_sampler(const exact_solution& solution) : solution_(&solution) {
    check_argument(solution.log_z() > neg_inf, "testing::enumeration_sampler::enumeration_sampler", "log Z",
                   "must be finite (sigma is undefined when Z = 0)", solution.log_z());
    const auto log_sigma = solution.log_sigma();
    cdf_.resize(log_sigma.size());
    double sum = 0.0;
    for (std::size_t i = 0; i < log_sigma.size(); ++i) {
      sum += std::exp(log_sigma[i]);
      cdf_[i] = sum;
    }
  }

  /// @brief The index (into solution.sequences()) of one exact draw from sigma.
  template <RandomEngine Engine>
  [[nodiscard]] std::size_t sample_index(Engine& rng) const {
    const double u = uniform01(rng) * cdf_.back();
    const auto it = std::upper_bound(cdf_.begin(), cdf_.end(), u);
    TSMC_ASSERT(it != cdf_.end());
    return static_cast<std::size_t>(it - cdf_.begin());
  }

  /// @brief One exact draw from sigma: a finished sequence of generated tokens.
  template <RandomEngine Engine>
  [[nodiscard]] token_sequence sample(Engine& rng) const {
    return solution_->sequences()[sample_index(rng)];
  }

  /// @brief The prompt the samples are conditioned on (declared so that estimators can check it).
  [[nodiscard]] std::span<const token> prompt() const noexcept { return solution_->prompt(); }
  /// @brief T, the horizon of the enumerated problem.
  [[nodiscard]] std::size_t horizon() const noexcept { return solution_->horizon(); }
  /// @brief The end token of the enumerated problem, if any.
  [[nodiscard]] std::optional<token> end_token() const noexcept { return solution_->problem().end_token; }
  /// @brief The further end tokens of the enumerated problem.
  [[nodiscard]] std::span<const token> end_tokens() const noexcept { return solution_->problem().end_tokens; }

 private:
  const exact_solution* solution_;
  std::vector<double> cdf_;
};

static_assert(ExactSampler<enumeration_sampler>, "tsmc::testing::enumeration_sampler must model tsmc::ExactSampler");

/// @brief The enumeration sampler of an exact solution; it declares the solution's prompt,
/// horizon and end token, so the bounds estimators can check that it fits their problem.
/// @param solution an enumerated problem with Z > 0; must outlive the sampler
/// @throw tsmc::invalid_argument if Z = 0
[[nodiscard]] inline enumeration_sampler enumeration_exact_sampler(const exact_solution& solution) {
  return enumeration_sampler(solution);
}

}  // namespace tsmc::testing
