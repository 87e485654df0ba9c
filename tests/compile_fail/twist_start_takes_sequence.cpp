// expect: member named start that the sampler cannot call; write void start\(std::span<const tsmc::token> prompt, std::size_t particles\)
#include "fixtures.hpp"

struct stateful_twist : compile_fail::twist {
  void start(const tsmc::token_sequence&, std::size_t) {}
  void append(std::span<const tsmc::token>) {}
  void reorder(std::span<const tsmc::particle_index>) {}
};

int main() { compile_fail::build<compile_fail::model, stateful_twist, compile_fail::potential>(); }
