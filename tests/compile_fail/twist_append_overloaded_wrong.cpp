// expect: member named append that the sampler cannot call; write void append\(std::span<const tsmc::token> tokens\)
// Overloaded hooks are found too (by name), and none of these overloads takes a span.
#include "fixtures.hpp"

struct stateful_twist : compile_fail::twist {
  void start(std::span<const tsmc::token>, std::size_t) {}
  void append(const std::vector<tsmc::token>&) {}
  void append(tsmc::token) {}
  void reorder(std::span<const tsmc::particle_index>) {}
};

int main() { compile_fail::build<compile_fail::model, stateful_twist, compile_fail::potential>(); }
