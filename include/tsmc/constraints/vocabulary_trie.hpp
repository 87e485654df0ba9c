#pragma once
/// @file
/// @brief A trie of a vocabulary's byte strings, walked together with a byte automaton (a DFA, a
/// grammar recogniser) so that every shared prefix of the vocabulary is visited once (and dead
/// subtrees not at all).

#include <tsmc/constraints/regex.hpp>
#include <tsmc/core/types.hpp>

#include <cstddef>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace tsmc {

/// @brief The byte strings of a vocabulary as a trie (children and tokens in flat arrays).
class vocabulary_trie {
 public:
  /// @brief An empty trie.
  vocabulary_trie() = default;

  /// @brief The trie of strings[t] for every token t with include[t] (every token when include
  /// is empty).
  /// @param strings the byte string of each token
  /// @param include optional flags, one per token
  explicit vocabulary_trie(std::span<const std::string> strings, std::span<const std::uint8_t> include = {}) {
    // Build with maps, then flatten breadth-first.
    std::vector<std::map<unsigned char, std::int32_t>> children(1);
    std::vector<std::vector<token>> tokens(1);
    for (std::size_t i = 0; i < strings.size(); ++i) {
      if (!include.empty() && !include[i]) continue;
      std::int32_t node = 0;
      for (const char c : strings[i]) {
        const auto b = static_cast<unsigned char>(c);
        auto it = children[static_cast<std::size_t>(node)].find(b);
        if (it == children[static_cast<std::size_t>(node)].end()) {
          const auto fresh = static_cast<std::int32_t>(children.size());
          children[static_cast<std::size_t>(node)].emplace(b, fresh);
          children.emplace_back();
          tokens.emplace_back();
          node = fresh;
        } else {
          node = it->second;
        }
      }
      tokens[static_cast<std::size_t>(node)].push_back(static_cast<token>(i));
    }
    const std::size_t n = children.size();
    child_begin_.assign(n + 1, 0);
    token_begin_.assign(n + 1, 0);
    for (std::size_t i = 0; i < n; ++i) {
      child_begin_[i + 1] = child_begin_[i] + static_cast<std::int32_t>(children[i].size());
      token_begin_[i + 1] = token_begin_[i] + static_cast<std::int32_t>(tokens[i].size());
      for (const auto& [b, c] : children[i]) {
        child_byte_.push_back(b);
        child_node_.push_back(c);
      }
      tokens_.insert(tokens_.end(), tokens[i].begin(), tokens[i].end());
    }
  }

  /// @brief The number of nodes (the root included).
  [[nodiscard]] std::size_t node_count() const noexcept { return child_begin_.empty() ? 0 : child_begin_.size() - 1; }

  /// @brief Walks the trie from the root together with a byte automaton from state q, skipping
  /// subtrees where it is dead, and calls on_token(t, q_after) for every token whose bytes keep it
  /// alive. Each trie node is visited at most once per walk.
  /// @param automaton a byte automaton with step(q, b) and dead = -1 (byte_dfa, byte_grammar)
  /// @param q the state before the tokens' bytes (not dead)
  /// @param on_token called as on_token(token, std::int32_t state)
  template <class Automaton, class OnToken>
  void walk(const Automaton& automaton, std::int32_t q, OnToken&& on_token) const {
    if (node_count() == 0 || q == byte_dfa::dead) return;
    stack_.clear();
    stack_.emplace_back(0, q);
    while (!stack_.empty()) {
      const auto [node, state] = stack_.back();
      stack_.pop_back();
      const auto i = static_cast<std::size_t>(node);
      for (std::int32_t j = token_begin_[i]; j < token_begin_[i + 1]; ++j) on_token(tokens_[static_cast<std::size_t>(j)], state);
      for (std::int32_t j = child_begin_[i]; j < child_begin_[i + 1]; ++j) {
        std::int32_t after;
        if constexpr (std::is_same_v<Automaton, byte_dfa>)  // the DFA's row directly: the hot loop
          after = automaton.next[static_cast<std::size_t>(state) * 256 + child_byte_[static_cast<std::size_t>(j)]];
        else
          after = automaton.step(state, child_byte_[static_cast<std::size_t>(j)]);
        if (after != byte_dfa::dead) stack_.emplace_back(child_node_[static_cast<std::size_t>(j)], after);
      }
    }
  }

 private:
  std::vector<std::int32_t> child_begin_, token_begin_;
  std::vector<unsigned char> child_byte_;
  std::vector<std::int32_t> child_node_;
  std::vector<token> tokens_;
  mutable std::vector<std::pair<std::int32_t, std::int32_t>> stack_;
};

}  // namespace tsmc
