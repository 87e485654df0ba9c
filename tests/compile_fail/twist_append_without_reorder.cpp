// expect: a twist with per-particle state must have all three of start\(prompt, particles\), append\(tokens\) and reorder\(ancestors\)
// A twist with start and append but no reorder falls out of step at the first resampling.
#include "fixtures.hpp"

struct half_stateful_twist : compile_fail::twist {
  void start(std::span<const tsmc::token>, std::size_t) {}
  void append(std::span<const tsmc::token>) {}
};

int main() { compile_fail::build<compile_fail::model, half_stateful_twist, compile_fail::potential>(); }
