// expect: member named reorder that the sampler cannot call; write void reorder\(std::span<const tsmc::particle_index> ancestors\)
// A stateful twist whose reorder takes a std::vector: the sampler would never call it.
#include "fixtures.hpp"

struct stateful_twist : compile_fail::twist {
  void start(std::span<const tsmc::token>, std::size_t) {}
  void append(std::span<const tsmc::token>) {}
  void reorder(const std::vector<tsmc::particle_index>&) {}
};

int main() { compile_fail::build<compile_fail::model, stateful_twist, compile_fail::potential>(); }
