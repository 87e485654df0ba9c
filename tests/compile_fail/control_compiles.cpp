// No `expect:` line: this one must compile.
// The control: the fixtures with right hooks compile without a diagnostic (the checks above fail
// for their one wrong hook, not for the fixtures).
#include "fixtures.hpp"

struct stateful_twist : compile_fail::twist {
  void start(std::span<const tsmc::token>, std::size_t) {}
  void append(std::span<const tsmc::token>) {}
  void reorder(std::span<const tsmc::particle_index>) {}
};

int main() { compile_fail::build<compile_fail::model, stateful_twist, compile_fail::potential>(); }
