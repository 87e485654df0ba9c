// expect: only resampler<tsmc::multinomial> gives the exact conditional kernel of conditional SMC
// Conditional resampling with a low-variance scheme is not the conditional kernel of that scheme
// (issue 19): the resampler refuses it at compile time.
#include <tsmc/core/random.hpp>
#include <tsmc/resampling/resampler.hpp>
#include <tsmc/resampling/schemes.hpp>

#include <vector>

int main() {
  tsmc::resampler<tsmc::systematic> r;
  tsmc::default_engine rng(1);
  const std::vector<double> log_w{0.0, -1.0, -2.0};
  std::vector<tsmc::particle_index> ancestors(3);
  r.resample_conditional(log_w, ancestors, rng);
}
