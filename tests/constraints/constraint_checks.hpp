#pragma once
// What the constraints tests share: the enumerable toy vocabulary and the check of a lifted
// constraint's feasibility against enumeration of every continuation (token_dfa, token_grammar).

#include <tsmc/core/types.hpp>
#include <tsmc/models/word_tokenizer.hpp>

#include <catch2/catch.hpp>

#include <map>
#include <span>
#include <string>
#include <vector>

namespace tsmc_constraints_test {

/// A small word vocabulary for enumerable problems: <unk> <s> </s> a b ab ba (V = 7).
inline tsmc::word_tokenizer toy_words() {
  const std::vector<std::string> words = {"a", "b", "ab", "ba"};
  return tsmc::word_tokenizer(std::span<const std::string>(words));
}

/// Enumerates every sequence of up to T tokens over V (finished at T, or at token 2 when
/// `with_end`) and checks the lifted constraint `c` against it: satisfiable(T) says whether some
/// finished sequence is accepted, and every feasibility row says, for each next token, whether an
/// accepted finished sequence still extends the prefix.
template <class Lifted>
void check_feasibility_by_enumeration(Lifted& c, std::size_t V, std::size_t T, bool with_end) {
  const auto finished = [&](const tsmc::token_sequence& prefix) {
    return prefix.size() == T || (with_end && !prefix.empty() && prefix.back() == 2);
  };
  // reachable[prefix]: some finished sequence extending prefix (up to T tokens) is accepted.
  std::map<tsmc::token_sequence, bool> reachable;
  auto visit = [&](auto&& self, tsmc::token_sequence& prefix) -> bool {
    bool any = false;
    if (finished(prefix)) {
      any = c.accepts(c.run(prefix));
    } else {
      for (std::size_t v = 0; v < V; ++v) {
        prefix.push_back(static_cast<tsmc::token>(v));
        any = self(self, prefix) || any;
        prefix.pop_back();
      }
    }
    reachable[prefix] = any;
    return any;
  };
  tsmc::token_sequence root;
  const bool satisfiable = visit(visit, root);
  REQUIRE(c.satisfiable(T) == satisfiable);
  std::vector<double> row(V);
  for (const auto& [prefix, any] : reachable) {
    if (finished(prefix)) continue;
    c.log_feasibility_row(c.run(prefix), T - prefix.size() - 1, row);
    for (std::size_t v = 0; v < V; ++v) {
      tsmc::token_sequence next = prefix;
      next.push_back(static_cast<tsmc::token>(v));
      CAPTURE(prefix, v);
      REQUIRE((row[v] == 0.0) == reachable.at(next));
    }
  }
}

}  // namespace tsmc_constraints_test
