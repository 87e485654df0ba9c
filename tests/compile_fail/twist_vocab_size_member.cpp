// expect: member named vocab_size that the sampler cannot call; write std::size_t vocab_size\(\) const
#include "fixtures.hpp"

struct sized_twist : compile_fail::twist {
  std::size_t vocab_size = 4;
};

int main() { compile_fail::build<compile_fail::model, sized_twist, compile_fail::potential>(); }
