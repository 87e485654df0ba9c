#pragma once
// Shared by the compile-failure checks (tests/CMakeLists.txt): a model and a potential that are
// right, so that each check's one wrong hook is what the compiler rejects.
#include <tsmc/smc/sampler.hpp>

#include <span>
#include <vector>

namespace compile_fail {

struct model {
  [[nodiscard]] std::size_t vocab_size() const { return 4; }
  void start(std::span<const tsmc::token>, std::size_t) {}
  void log_probs(tsmc::log_prob_ref out) { out.setConstant(-1.3862943611198906); }
  void append(std::span<const tsmc::token>) {}
  void reorder(std::span<const tsmc::particle_index>) {}
};

struct potential {
  void log_potential(std::span<const tsmc::token_sequence>, std::span<double> out) const {
    for (double& o : out) o = 0.0;
  }
};

struct twist {
  template <class Model>
  void log_twist(const tsmc::step_context<Model>&, tsmc::log_prob_ref out) const {
    out.setZero();
  }
};

/// Instantiates the sampler over the three types (the static_asserts fire here).
template <class Model, class Twist, class Pot>
void build() {
  Model m;
  Twist w;
  Pot p;
  tsmc::twisted_smc smc(m, w, p, tsmc::smc_options{.particles = 4, .horizon = 2});
  (void)smc;
}

}  // namespace compile_fail
