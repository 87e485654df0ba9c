// The near-miss traits of core/concepts.hpp: a member *named* like an optional hook that the
// sampler cannot call is found (twisted_smc then fails to compile with the signature to write;
// tests/compile_fail/ checks those messages), and right hooks in every usual form are accepted.
#include <catch2/catch.hpp>

#include <tsmc/core/concepts.hpp>
#include <tsmc/testing/enumeration.hpp>
#include <tsmc/testing/toy_model.hpp>
#include <tsmc/testing/toy_potentials.hpp>
#include <tsmc/twists/no_twist.hpp>

#include <span>
#include <vector>

using namespace tsmc;

namespace {

struct model {
  [[nodiscard]] std::size_t vocab_size() const { return 3; }
  void start(std::span<const token>, std::size_t) {}
  void log_probs(log_prob_ref) {}
  void append(std::span<const token>) {}
  void reorder(std::span<const particle_index>) {}
};

struct stateless {
  template <class M>
  void log_twist(const step_context<M>&, log_prob_ref) {}
};
struct stateful : stateless {
  void start(std::span<const token>, std::size_t) {}
  void append(std::span<const token>) {}
  void reorder(std::span<const particle_index>) {}
  [[nodiscard]] std::size_t vocab_size() const { return 3; }
};
struct generic_hooks : stateless {  // abbreviated templates: callable, so fine
  void start(auto, auto) {}
  void append(auto) {}
  void reorder(auto) {}
};
struct overloaded_hooks : stateful {  // one right overload among others is enough
  using stateful::append;
  using stateful::reorder;
  void append(const std::vector<token>&) {}
  void reorder(const std::vector<particle_index>&) {}
};
struct const_hooks : stateless {  // const member functions are callable on a non-const twist
  void start(std::span<const token>, std::size_t) const {}
  void append(std::span<const token>) const {}
  void reorder(std::span<const particle_index>) const {}
};
struct reorder_takes_vector : stateless {
  void start(std::span<const token>, std::size_t) {}
  void append(std::span<const token>) {}
  void reorder(const std::vector<particle_index>&) {}
};
struct append_takes_mutable_span_ref : stateless {  // the sampler passes a temporary span
  void start(std::span<const token>, std::size_t) {}
  void append(std::span<const token>&) {}
  void reorder(std::span<const particle_index>) {}
};
struct start_without_particles : stateless {
  void start(std::span<const token>) {}
  void append(std::span<const token>) {}
  void reorder(std::span<const particle_index>) {}
};
struct append_only : stateless {
  void append(std::span<const token>) {}
};
struct start_and_reorder : stateless {
  void start(std::span<const token>, std::size_t) {}
  void reorder(std::span<const particle_index>) {}
};
struct append_and_reorder : stateless {  // never sized for K
  void append(std::span<const token>) {}
  void reorder(std::span<const particle_index>) {}
};
struct start_only : stateless {  // resets a per-run cache: no per-particle state to keep in step
  void start(std::span<const token>, std::size_t) {}
};
struct final_stateful final : stateful {};
struct final_reorder_takes_vector final : reorder_takes_vector {};
struct vocab_size_field : stateless {
  std::size_t vocab_size = 3;
};
struct vocab_size_string : stateless {
  [[nodiscard]] const char* vocab_size() const { return "3"; }
};

struct potential {
  void log_potential(std::span<const token_sequence>, std::span<double>) {}
};
struct next_potential : potential {
  template <class M>
  void log_potential_next(const step_context<M>&, log_prob_ref) {}
};
struct next_potential_for_model : potential {
  void log_potential_next(const step_context<model>&, log_prob_ref) {}
};
struct next_potential_takes_matrix : potential {
  void log_potential_next(const step_context<model>&, log_prob_matrix&) {}
};
struct next_potential_without_ctx : potential {
  void log_potential_next(log_prob_ref) {}
};

struct model_with_max_length : model {
  [[nodiscard]] std::size_t max_length() const { return 16; }
};
struct model_with_max_length_field : model {
  std::size_t max_length = 16;
};

}  // namespace

TEST_CASE("hooks: members named like a hook are found, whatever their form", "[usability]") {
  STATIC_REQUIRE(detail::declares_start<stateful>);
  STATIC_REQUIRE(detail::declares_append<overloaded_hooks>);   // overloaded
  STATIC_REQUIRE(detail::declares_reorder<generic_hooks>);     // template
  STATIC_REQUIRE(detail::declares_reorder<reorder_takes_vector>);
  STATIC_REQUIRE(detail::declares_reorder<final_stateful>);    // final: &T::reorder
  STATIC_REQUIRE(detail::declares_vocab_size<vocab_size_field>);  // data member
  STATIC_REQUIRE(detail::declares_log_potential_next<next_potential>);
  STATIC_REQUIRE(detail::declares_max_length<model_with_max_length_field>);
  STATIC_REQUIRE_FALSE(detail::declares_start<stateless>);
  STATIC_REQUIRE_FALSE(detail::declares_append<stateless>);
  STATIC_REQUIRE_FALSE(detail::declares_reorder<no_twist>);
  STATIC_REQUIRE_FALSE(detail::declares_vocab_size<stateless>);
  STATIC_REQUIRE_FALSE(detail::declares_log_potential_next<potential>);
  STATIC_REQUIRE_FALSE(detail::declares_max_length<model>);
  STATIC_REQUIRE_FALSE(detail::declares_start<int>);  // not a class: nothing to find
}

TEST_CASE("hooks: right twist hooks pass, near misses are flagged", "[usability]") {
  STATIC_REQUIRE(detail::twist_start_ok<stateful>);
  STATIC_REQUIRE(detail::twist_append_ok<stateful>);
  STATIC_REQUIRE(detail::twist_reorder_ok<stateful>);
  STATIC_REQUIRE(detail::twist_state_complete<stateful>);
  STATIC_REQUIRE(detail::twist_state_complete<stateless>);
  STATIC_REQUIRE(detail::twist_vocab_size_ok<stateful>);
  STATIC_REQUIRE(detail::twist_vocab_size_ok<stateless>);
  STATIC_REQUIRE(detail::twist_reorder_ok<generic_hooks>);
  STATIC_REQUIRE(detail::twist_append_ok<overloaded_hooks>);
  STATIC_REQUIRE(detail::twist_reorder_ok<overloaded_hooks>);
  STATIC_REQUIRE(detail::twist_reorder_ok<const_hooks>);
  STATIC_REQUIRE(detail::twist_reorder_ok<final_stateful>);

  STATIC_REQUIRE_FALSE(detail::twist_reorder_ok<reorder_takes_vector>);
  STATIC_REQUIRE_FALSE(detail::twist_reorder_ok<final_reorder_takes_vector>);
  STATIC_REQUIRE_FALSE(detail::twist_append_ok<append_takes_mutable_span_ref>);
  STATIC_REQUIRE_FALSE(detail::twist_start_ok<start_without_particles>);
  STATIC_REQUIRE_FALSE(detail::twist_state_complete<append_only>);
  STATIC_REQUIRE_FALSE(detail::twist_state_complete<start_and_reorder>);
  STATIC_REQUIRE_FALSE(detail::twist_state_complete<append_and_reorder>);
  STATIC_REQUIRE(detail::twist_state_complete<start_only>);
  STATIC_REQUIRE(detail::twist_start_ok<start_only>);
  STATIC_REQUIRE_FALSE(detail::twist_vocab_size_ok<vocab_size_field>);
  STATIC_REQUIRE_FALSE(detail::twist_vocab_size_ok<vocab_size_string>);
}

TEST_CASE("hooks: a potential's log_potential_next and a model's max_length", "[usability]") {
  STATIC_REQUIRE(detail::potential_next_ok<potential, model>);
  STATIC_REQUIRE(detail::potential_next_ok<next_potential, model>);
  STATIC_REQUIRE(detail::potential_next_ok<next_potential_for_model, model>);
  STATIC_REQUIRE_FALSE(detail::potential_next_ok<next_potential_takes_matrix, model>);
  STATIC_REQUIRE_FALSE(detail::potential_next_ok<next_potential_without_ctx, model>);
  STATIC_REQUIRE(detail::model_max_length_ok<model>);
  STATIC_REQUIRE(detail::model_max_length_ok<model_with_max_length>);
  STATIC_REQUIRE_FALSE(detail::model_max_length_ok<model_with_max_length_field>);
}

TEST_CASE("hooks: the library's own twists, potentials and models raise no false alarm", "[usability]") {
  using toy = testing::tabular_model;
  STATIC_REQUIRE(detail::model_max_length_ok<toy>);
  STATIC_REQUIRE(detail::twist_state_complete<no_twist>);
  STATIC_REQUIRE(detail::twist_state_complete<testing::random_twist>);
  STATIC_REQUIRE(detail::twist_vocab_size_ok<testing::random_twist>);
  STATIC_REQUIRE(detail::twist_state_complete<testing::optimal_twist>);
  STATIC_REQUIRE(detail::twist_vocab_size_ok<testing::optimal_twist>);
  STATIC_REQUIRE(detail::potential_next_ok<testing::random_potential, toy>);
  STATIC_REQUIRE(detail::potential_next_ok<testing::pattern_indicator, toy>);
  STATIC_REQUIRE(detail::potential_next_ok<testing::soft_classifier, toy>);
  // A model used as a twist (same hooks) is a complete stateful twist.
  STATIC_REQUIRE(detail::twist_state_complete<toy>);
  STATIC_REQUIRE(detail::twist_start_ok<toy>);
  STATIC_REQUIRE(detail::twist_append_ok<toy>);
  STATIC_REQUIRE(detail::twist_reorder_ok<toy>);
}

namespace {
struct report_type {};
struct result_type {};
struct silent_observer {};
struct full_observer {
  bool on_step(const report_type&) { return false; }
  void on_resample(std::size_t, std::span<const particle_index>) {}
  void on_finish(const result_type&) {}
};
struct generic_observer {
  void on_step(const auto&) {}
};
struct observer_step_by_value_copy {  // by value is callable: fine
  void on_step(report_type) {}
};
struct observer_step_wrong_type {
  void on_step(int) {}
};
struct observer_resample_vector {
  void on_resample(std::size_t, const std::vector<particle_index>&) {}
};
struct observer_finish_without_argument {
  void on_finish() {}
};
}  // namespace

TEST_CASE("hooks: observers' on_step, on_resample and on_finish", "[usability]") {
  STATIC_REQUIRE(detail::observer_hooks_ok<silent_observer, report_type, result_type>);
  STATIC_REQUIRE(detail::observer_hooks_ok<full_observer, report_type, result_type>);
  STATIC_REQUIRE(detail::observer_hooks_ok<generic_observer, report_type, result_type>);
  STATIC_REQUIRE(detail::observer_hooks_ok<observer_step_by_value_copy, report_type, result_type>);
  STATIC_REQUIRE_FALSE(detail::observer_hooks_ok<observer_step_wrong_type, report_type, result_type>);
  STATIC_REQUIRE_FALSE(detail::observer_hooks_ok<observer_resample_vector, report_type, result_type>);
  STATIC_REQUIRE_FALSE(detail::observer_hooks_ok<observer_finish_without_argument, report_type, result_type>);
}
