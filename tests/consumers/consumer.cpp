// A small program built against tsmc by a project of its own (see the two CMakeLists beside it).
// It exercises the umbrella header and exits non-zero when an answer is wrong.
#include <tsmc/tsmc.hpp>

#include <array>
#include <cmath>
#include <cstdio>

#ifdef TSMC_CONSUMER_EXPECT_OPENMP
#ifndef _OPENMP
#error "linking tsmc::openmp must compile with OpenMP (_OPENMP undefined)"
#endif
#include <omp.h>
#endif

int main() {
#ifdef TSMC_CONSUMER_EXPECT_OPENMP
  std::printf("tsmc::openmp: OpenMP %d, up to %d threads\n", _OPENMP, omp_get_max_threads());
#endif
  const std::array<double, 3> log_weights{std::log(1.0), std::log(1.0), std::log(2.0)};
  const double lse = tsmc::logsumexp(log_weights);  // log 4
  const double ess = tsmc::effective_sample_size(log_weights);  // 16 / 6
  std::printf("tsmc %s: logsumexp = %.6f, ESS = %.6f\n", tsmc::version_string, lse, ess);
  const bool ok = std::abs(lse - std::log(4.0)) < 1e-12 && std::abs(ess - 16.0 / 6.0) < 1e-12;
  return ok ? 0 : 1;
}
