// The C++ side of the regex peer test (tests/constraints/regex_peer.py): reads commands on stdin,
// one per line, and answers one line each.
//   P <hex pattern>  compile the pattern: "ok <states>" or "E <message>"
//   S <hex text>     full match of the text against the last compiled pattern: "1" or "0"
#include <tsmc/constraints/regex.hpp>

#include <iostream>
#include <optional>
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
  std::optional<tsmc::byte_dfa> dfa;
  std::string line;
  while (std::getline(std::cin, line)) {
    if (line.size() < 2) continue;
    const std::string arg = from_hex(line.substr(2));
    if (line[0] == 'P') {
      try {
        dfa = tsmc::compile_regex(arg);
        std::cout << "ok " << dfa->state_count() << '\n';
      } catch (const tsmc::invalid_argument& e) {
        dfa.reset();
        std::cout << "E " << e.what() << '\n';
      }
    } else if (line[0] == 'S') {
      std::cout << (dfa && dfa->matches(arg) ? '1' : '0') << '\n';
    }
  }
  return 0;
}
