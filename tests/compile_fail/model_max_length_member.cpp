// expect: member named max_length that the sampler cannot call; write std::size_t max_length\(\) const
#include "fixtures.hpp"

struct limited_model : compile_fail::model {
  std::size_t max_length = 16;
};

int main() { compile_fail::build<limited_model, compile_fail::twist, compile_fail::potential>(); }
