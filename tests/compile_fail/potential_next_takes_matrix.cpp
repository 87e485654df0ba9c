// expect: member named log_potential_next that the sampler cannot call; write void log_potential_next\(const tsmc::step_context<Model>& ctx, tsmc::log_prob_ref out\)
// log_potential_next taking a log_prob_matrix& instead of a log_prob_ref: never called.
#include "fixtures.hpp"

struct next_potential : compile_fail::potential {
  void log_potential_next(const tsmc::step_context<compile_fail::model>&, tsmc::log_prob_matrix& out) const {
    out.setZero();
  }
};

int main() { compile_fail::build<compile_fail::model, compile_fail::twist, next_potential>(); }
