// The C++ side of the JSON peer test (tests/constraints/json_peer.py): compiles tsmc::grammars::json
// once, then reads one hex-encoded text per line on stdin and answers "1" where the grammar matches
// the whole text, "0" elsewhere. A line "states" is answered with the largest number of interned
// Earley states seen (the script prints it after the run). The recogniser interns one state per
// distinct nesting context met (a stack of open arrays, objects and keys), and thousands of random
// documents meet many: it is compiled afresh whenever it holds more than 100,000 states, well
// below tsmc::max_grammar_states.
#include <tsmc/constraints/grammar.hpp>
#include <tsmc/constraints/grammars.hpp>

#include <algorithm>
#include <iostream>
#include <string>

namespace {

std::string from_hex(const std::string& hex) {
  std::string out;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  return out;
}

}  // namespace

int main() {
  std::ios::sync_with_stdio(false);
  tsmc::byte_grammar json = tsmc::compile_grammar(tsmc::grammars::json);
  std::size_t most_states = 0;
  std::string line;
  while (std::getline(std::cin, line)) {
    most_states = std::max(most_states, json.state_count());
    if (line == "states") {
      std::cout << most_states << '\n';
      continue;
    }
    if (json.state_count() > 100'000) json = tsmc::compile_grammar(tsmc::grammars::json);
    std::cout << (json.matches(from_hex(line)) ? '1' : '0') << '\n';
  }
  return 0;
}
