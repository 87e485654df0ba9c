// [reliability] Bad-input matrix rows of the sampler layer: twisted_smc's constructor and runs,
// smc_result, the stateless_model adapter and the fused proposal pass (see bad_input_matrix.hpp).

#include "reliability/bad_input_matrix.hpp"

#include <tsmc/core/error.hpp>
#include <tsmc/resampling/schemes.hpp>
#include <tsmc/resampling/triggers.hpp>
#include <tsmc/smc/options.hpp>
#include <tsmc/smc/proposal_step.hpp>
#include <tsmc/smc/result.hpp>
#include <tsmc/smc/sampler.hpp>
#include <tsmc/smc/stateless_model.hpp>

#include <Eigen/Core>

#include <cmath>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace {

using bad_input::input;
using tsmc::token;
using tsmc::token_sequence;
constexpr double nan = std::numeric_limits<double>::quiet_NaN();
constexpr double inf = std::numeric_limits<double>::infinity();

// A LanguageModel over V = 3 tokens with uniform rows, except where `bad_token` takes `bad_value`
// (from step `from_step` on, 1-based); max_length() = 8.
struct scripted_model {
  std::size_t vocab = 3;
  token bad_token = -1;
  double bad_value = 0.0;
  std::size_t from_step = 1;
  double scale = 1.0;  // rows are log(scale / V): scale != 1 is unnormalised
  std::size_t particles = 0;
  std::size_t step = 0;
  [[nodiscard]] std::size_t vocab_size() const { return vocab; }
  [[nodiscard]] std::size_t max_length() const { return 8; }
  void start(std::span<const token>, std::size_t k) {
    particles = k;
    step = 0;
  }
  void log_probs(tsmc::log_prob_ref out) {
    out.setConstant(std::log(scale / static_cast<double>(vocab)));
    if (bad_token >= 0 && step + 1 >= from_step) out.col(bad_token).setConstant(bad_value);
  }
  void append(std::span<const token>) { ++step; }
  void reorder(std::span<const tsmc::particle_index>) {}
};

// A twist with log psi = 0, except `bad_value` at `bad_token`; declares vocab_size().
struct scripted_twist {
  std::size_t vocab = 3;
  token bad_token = -1;
  double bad_value = 0.0;
  [[nodiscard]] std::size_t vocab_size() const { return vocab; }
  template <class M>
  void log_twist(const tsmc::step_context<M>&, tsmc::log_prob_ref out) const {
    out.setZero();
    if (bad_token >= 0) out.col(bad_token).setConstant(bad_value);
  }
};

// A potential with log phi = value for every sequence.
struct scripted_potential {
  double value = 0.0;
  void log_potential(std::span<const token_sequence> s, std::span<double> out) const {
    for (std::size_t k = 0; k < s.size(); ++k) out[k] = value;
  }
};

// A user proposal: uniform, except `bad_value` at `bad_token`.
struct scripted_proposal {
  token bad_token = -1;
  double bad_value = 0.0;
  template <class M>
  void log_proposal(const tsmc::step_context<M>&, tsmc::log_prob_ref out) const {
    out.setZero();
    if (bad_token >= 0) out.col(bad_token).setConstant(bad_value);
  }
};

using sampler = tsmc::twisted_smc<scripted_model, scripted_twist, scripted_potential>;

tsmc::smc_options options(std::size_t particles = 4, std::size_t horizon = 3,
                          std::optional<token> end = std::optional<token>(2)) {
  return tsmc::smc_options{.particles = particles, .horizon = horizon, .end_token = end};
}

// Builds a sampler over fresh objects and calls f(smc, rng).
struct fixture {
  scripted_model model;
  scripted_twist twist;
  scripted_potential potential;
  tsmc::smc_options opts = options();
  template <class F>
  auto operator()(F&& f) {
    sampler smc(model, twist, potential, opts);
    tsmc::default_engine rng(5);
    return f(smc, rng);
  }
};

const token_sequence prompt{0, 1};

const bad_input::area sampler_rows("sampler", [](bad_input::area& a) {
  const std::string ctor = "twisted_smc";
  const auto construct = [](tsmc::smc_options o, std::size_t model_vocab = 3, std::size_t twist_vocab = 3) {
    return [o, model_vocab, twist_vocab] {
      fixture f;
      f.model.vocab = model_vocab;
      f.twist.vocab = twist_vocab;
      f.opts = o;
      f([](sampler&, tsmc::default_engine&) { return 0; });
    };
  };
  a.invalid("twisted_smc::twisted_smc", input::zero, "options.particles = 0", ctor,
            "options.particles must be positive, got 0", construct(options(0)));
  a.invalid("twisted_smc::twisted_smc", input::zero, "options.horizon = 0", ctor, "options.horizon must be positive, got 0",
            construct(options(4, 0)));
  a.invalid("twisted_smc::twisted_smc", input::too_large, "options.particles = 2^32", ctor,
            "options.particles must fit a 32-bit particle index, got 4294967296",
            construct(options(std::size_t{1} << 32)));
  a.invalid("twisted_smc::twisted_smc", input::negative, "options.end_token = -1", ctor,
            "options.end_token must be in [0, 3), got -1", construct(options(4, 3, token{-1})));
  a.invalid("twisted_smc::twisted_smc", input::too_large, "options.end_token = V = 3", ctor,
            "options.end_token must be in [0, 3), got 3", construct(options(4, 3, token{3})));
  for (const double tol : {0.0, -1e-6, nan, inf}) {
    auto o = options();
    o.normalization_tolerance = tol;
    const input kind = tol == 0.0 ? input::zero : std::isnan(tol) ? input::nan : tol == inf ? input::pos_inf : input::negative;
    a.invalid("twisted_smc::twisted_smc", kind, "options.normalization_tolerance = " + tsmc::detail::to_text(tol), ctor,
              "options.normalization_tolerance must be positive and finite", construct(o));
  }
  a.invalid("twisted_smc::twisted_smc", input::mismatched, "twist.vocab_size() = 4, model's 3", ctor,
            "twist.vocab_size() must equal model.vocab_size() 3, got 4", construct(options(), 3, 4));
  a.invalid("twisted_smc::twisted_smc", input::zero, "model.vocab_size() = 0", ctor,
            "model.vocab_size() must be positive, got 0", construct(options(), 0, 0));
  a.invalid("validate(smc_options)", input::zero, "options.particles = 0", "my_function",
            "options.particles must be positive, got 0", [] { tsmc::validate(options(0), 3, "my_function"); });

  // run: the prompt and what the user's objects write.
  const auto run = [](fixture f, token_sequence p) {
    return [f, p]() mutable { f([&](sampler& smc, tsmc::default_engine& rng) { return smc.run(p, rng); }); };
  };
  a.invalid("twisted_smc::run", input::negative, "prompt = {0, -1}", "twisted_smc::run",
            "prompt[1] must be in [0, 3), got -1", run(fixture{}, {0, -1}));
  a.invalid("twisted_smc::run", input::too_large, "prompt = {3}", "twisted_smc::run", "prompt[0] must be in [0, 3), got 3",
            run(fixture{}, {3}));
  a.invalid("twisted_smc::run", input::too_large, "prompt of 6 + horizon 3 > model.max_length() 8", "twisted_smc::run",
            "prompt.size() + horizon must not exceed model.max_length() 8, got 9", run(fixture{}, token_sequence(6, 0)));
  {
    fixture f;
    f.model.bad_token = 1;
    f.model.bad_value = nan;
    a.runtime("twisted_smc::run", input::nan, "the model writes log p0 = NaN for token 1", "twisted_smc::run",
              "the model's log p0 at step 1, particle 0, token 1 must not be NaN or +inf, got nan", run(f, prompt));
    f.model.bad_value = inf;
    a.runtime("twisted_smc::run", input::pos_inf, "the model writes log p0 = +inf for token 1", "twisted_smc::run",
              "the model's log p0 at step 1, particle 0, token 1 must not be NaN or +inf, got inf", run(f, prompt));
    f.model.bad_token = 0;
    f.model.bad_value = -inf;
    f.model.vocab = 1;
    f.twist.vocab = 1;
    f.opts.end_token = std::nullopt;
    a.runtime("twisted_smc::run", input::neg_inf, "the model's row is -inf for every token (V = 1)", "twisted_smc::run",
              "the model's log p0 at step 1, particle 0 must not be -inf for every token", run(f, {0}));
  }
  {
    fixture f;
    f.twist.bad_token = 0;
    f.twist.bad_value = nan;
    a.runtime("twisted_smc::run", input::nan, "the twist writes log psi = NaN for token 0", "twisted_smc::run",
              "the twist's log psi at step 1, particle 0, token 0 must not be NaN or +inf, got nan", run(f, prompt));
    f.twist.bad_value = inf;
    a.runtime("twisted_smc::run", input::pos_inf, "the twist writes log psi = +inf for token 0", "twisted_smc::run",
              "the twist's log psi at step 1, particle 0, token 0 must not be NaN or +inf, got inf", run(f, prompt));
  }
  {
    fixture f;
    f.potential.value = nan;
    a.runtime("twisted_smc::run", input::nan, "the potential writes log phi = NaN", "twisted_smc::run",
              "log phi of particle", run(f, prompt));
    f.potential.value = inf;
    a.runtime("twisted_smc::run", input::pos_inf, "the potential writes log phi = +inf", "twisted_smc::run",
              "must not be NaN or +inf (was `out` written for every sequence?), got inf", run(f, prompt));
  }
  a.result("twisted_smc::run", input::neg_inf, "log phi = -inf for every sequence", "log Zhat = -inf, ESS 0", [] {
    fixture f;
    f.potential.value = -inf;
    const tsmc::smc_result r = f([](sampler& smc, tsmc::default_engine& rng) { return smc.run(prompt, rng); });
    return r.log_z == -inf && r.ess.back() == 0.0;
  });
  a.result("twisted_smc::run", input::neg_inf, "log psi = -inf for every token at step 1", "log Zhat = -inf", [] {
    fixture f;
    f.twist.vocab = 1;
    f.model.vocab = 1;
    f.twist.bad_token = 0;
    f.twist.bad_value = -inf;
    f.opts.end_token = std::nullopt;
    const tsmc::smc_result r = f([](sampler& smc, tsmc::default_engine& rng) { return smc.run(token_sequence{0}, rng); });
    return r.log_z == -inf;
  });
  a.result("twisted_smc::run", input::too_large, "log phi = 700 (phi overflows a double)", "log Zhat = 700 (within 1e-9)", [] {
    fixture f;
    f.potential.value = 700.0;
    f.opts.end_token = std::nullopt;  // every particle finishes at T with the same weight
    const tsmc::smc_result r = f([](sampler& smc, tsmc::default_engine& rng) { return smc.run(prompt, rng); });
    return std::abs(r.log_z - 700.0) < 1e-9;
  });
  {
    fixture f;
    f.model.scale = 2.0;
    f.opts.check_normalization = true;
    a.runtime("twisted_smc::run", input::too_large, "rows summing to 2, check_normalization on", "twisted_smc::run",
              "the sum of the model's p0 = exp(log_probs) at step 1", run(f, prompt));
  }

  // run_conditional: the reference.
  const auto conditional = [](fixture f, token_sequence reference) {
    return [f, reference]() mutable {
      f([&](sampler& smc, tsmc::default_engine& rng) { return smc.run_conditional(prompt, reference, rng); });
    };
  };
  const std::string rc = "twisted_smc::run_conditional";
  a.invalid(rc, input::empty, "reference = {}", rc, "reference.size() must be in [1, horizon = 3], got 0",
            conditional(fixture{}, {}));
  a.invalid(rc, input::too_large, "reference of 4 tokens, horizon 3", rc,
            "reference.size() must be in [1, horizon = 3], got 4", conditional(fixture{}, {0, 0, 0, 0}));
  a.invalid(rc, input::too_large, "reference = {0, 3, 2} (token 3 >= V)", rc, "reference[1] must be in [0, 3), got 3",
            conditional(fixture{}, {0, 3, 2}));
  a.invalid(rc, input::negative, "reference = {-1, 0, 2}", rc, "reference[0] must be in [0, 3), got -1",
            conditional(fixture{}, {-1, 0, 2}));
  a.invalid(rc, input::mismatched, "reference = {2, 0, 1} (end token first)", rc,
            "reference[0] must not be the end token before the reference's last position", conditional(fixture{}, {2, 0, 1}));
  a.invalid(rc, input::mismatched, "reference = {0, 1} (short, no end token)", rc,
            "reference shorter than the horizon must end with the end token", conditional(fixture{}, {0, 1}));
  a.invalid(rc, input::negative, "prompt = {-2}", rc, "prompt[0] must be in [0, 3), got -2", [] {
              fixture f;
              f([](sampler& smc, tsmc::default_engine& rng) {
                return smc.run_conditional(token_sequence{-2}, token_sequence{0, 1, 2}, rng);
              });
            });
  {
    fixture f;
    f.model.bad_token = 0;
    f.model.bad_value = -inf;
    f.opts.check_first_row = false;  // the scripted row is not renormalised: the first-row check would fire first
    a.runtime(rc, input::neg_inf, "log p0 of the reference's token = -inf", rc,
              "the model's log p0 of the reference's token 0 at step 1 must be finite", conditional(f, {0, 1, 2}));
  }
  {
    fixture f;
    f.twist.bad_token = 1;
    f.twist.bad_value = -inf;
    a.runtime(rc, input::neg_inf, "log psi of the reference's token = -inf", rc,
              "the twist's log psi of the reference's token 1 at step 1 must be finite", conditional(f, {1, 1, 2}));
  }

  // run_forced
  const std::string rf = "twisted_smc::run_forced";
  a.invalid(rf, input::empty, "sequences = {}", rf, "sequences.size() must be positive, got 0", [] {
    fixture f;
    f([](sampler& smc, tsmc::default_engine& rng) {
      return smc.run_forced(prompt, std::span<const token_sequence>(), rng);
    });
  });
  a.invalid(rf, input::too_large, "sequences[1] = {0, 5, 2}", rf, "sequences[1][1] must be in [0, 3), got 5", [] {
    fixture f;
    const std::vector<token_sequence> s{{0, 1, 2}, {0, 5, 2}};
    f([&](sampler& smc, tsmc::default_engine& rng) { return smc.run_forced(prompt, s, rng); });
  });
  a.invalid(rf, input::empty, "sequences[0] = {}", rf, "sequences[0].size() must be in [1, horizon = 3], got 0", [] {
    fixture f;
    const std::vector<token_sequence> s{{}};
    f([&](sampler& smc, tsmc::default_engine& rng) { return smc.run_forced(prompt, s, rng); });
  });

  // user proposals
  const std::string rp = "twisted_smc::run_with_proposal";
  a.runtime(rp, input::nan, "the proposal writes log q = NaN for token 1", rp,
            "the proposal's log q at step 1, particle 0, token 1 must not be NaN or +inf, got nan", [] {
              fixture f;
              scripted_proposal q{1, nan};
              f([&](sampler& smc, tsmc::default_engine& rng) { return smc.run_with_proposal(q, prompt, rng); });
            });
  a.runtime(rp, input::neg_inf, "the proposal's row is -inf for every token", rp,
            "the proposal's log q at step 1, particle 0 must not be -inf for every token", [] {
              fixture f;
              f.model.vocab = 1;
              f.twist.vocab = 1;
              f.opts.end_token = std::nullopt;
              scripted_proposal q{0, -inf};
              f([&](sampler& smc, tsmc::default_engine& rng) { return smc.run_with_proposal(q, token_sequence{0}, rng); });
            });
  a.invalid(rp, input::too_large, "prompt = {7}", rp, "prompt[0] must be in [0, 3), got 7", [] {
    fixture f;
    scripted_proposal q;
    f([&](sampler& smc, tsmc::default_engine& rng) { return smc.run_with_proposal(q, token_sequence{7}, rng); });
  });
  const std::string rcp = "twisted_smc::run_conditional_with_proposal";
  a.runtime(rcp, input::neg_inf, "log q of the reference's token = -inf", rcp,
            "the proposal's log q of the reference's token 1 at step 1 must be finite", [] {
              fixture f;
              scripted_proposal q{1, -inf};
              const token_sequence ref{1, 0, 2};
              f([&](sampler& smc, tsmc::default_engine& rng) {
                return smc.run_conditional_with_proposal(q, prompt, ref, rng);
              });
            });
  a.invalid(rcp, input::empty, "reference = {}", rcp, "reference.size() must be in [1, horizon = 3], got 0", [] {
    fixture f;
    scripted_proposal q;
    f([&](sampler& smc, tsmc::default_engine& rng) {
      return smc.run_conditional_with_proposal(q, prompt, token_sequence{}, rng);
    });
  });

  // smc_result
  const auto zero_weights = [] {
    tsmc::smc_result r;
    r.sequences = {{0}, {1}};
    r.log_weights = {-inf, -inf};
    return r;
  };
  a.runtime("smc_result::draw_index", input::neg_inf, "every final log-weight -inf", "smc_result::draw_index",
            "the final weights must not all be zero, got -inf", [zero_weights] {
              tsmc::default_engine rng(1);
              (void)zero_weights().draw_index(rng);
            });
  a.runtime("smc_result::draw_index", input::empty, "no particles", "smc_result::draw_index",
            "the final weights must not all be zero, got -inf", [] {
              tsmc::default_engine rng(1);
              (void)tsmc::smc_result{}.draw_index(rng);
            });
  a.invalid("smc_result::draw_index", input::nan, "a final log-weight NaN", "smc_result::draw_index",
            "log_weights must not contain NaN", [] {
              tsmc::smc_result r;
              r.sequences = {{0}, {1}};
              r.log_weights = {0.0, nan};
              tsmc::default_engine rng(1);
              (void)r.draw_index(rng);
            });
  a.runtime("smc_result::draw", input::neg_inf, "every final log-weight -inf", "smc_result::draw",
            "the final weights must not all be zero, got -inf", [zero_weights] {
              tsmc::default_engine rng(1);
              const auto r = zero_weights();
              (void)r.draw(rng);
            });

  // fused_proposal_draw: documented results (the sampler diagnoses them)
  a.result("fused_proposal_draw", input::nan, "a = {0, NaN}", "log_normalizer NaN", [] {
    const std::vector<double> x{0.0, nan};
    Eigen::ArrayXd scratch(2);
    return std::isnan(tsmc::fused_proposal_draw(x.data(), nullptr, 2, 0.5, scratch).log_normalizer);
  });
  a.result("fused_proposal_draw", input::pos_inf, "a = {0, +inf}", "log_normalizer +inf or NaN (not finite)", [] {
    const std::vector<double> x{0.0, inf};
    Eigen::ArrayXd scratch(2);
    return !std::isfinite(tsmc::fused_proposal_draw(x.data(), nullptr, 2, 0.5, scratch).log_normalizer);
  });
  a.result("fused_proposal_draw", input::neg_inf, "a + b all -inf", "log_normalizer -inf, chosen 0", [] {
    const std::vector<double> x{0.0, 0.0}, y{-inf, -inf};
    Eigen::ArrayXd scratch(2);
    const auto d = tsmc::fused_proposal_draw(x.data(), y.data(), 2, 0.5, scratch);
    return d.log_normalizer == -inf && d.chosen == 0;
  });
  a.result("fused_proposal_draw", input::neg_inf, "b = {-inf, 0, -inf}, u near 1", "chosen 1 (never a -inf token)", [] {
    const std::vector<double> x{0.0, 0.0, 0.0}, y{-inf, 0.0, -inf};
    Eigen::ArrayXd scratch(3);
    return tsmc::fused_proposal_draw(x.data(), y.data(), 3, 1.0 - 0x1.0p-53, scratch).chosen == 1;
  });
});

// ---------------------------------------------------------------------------------------------
// stateless_model
// ---------------------------------------------------------------------------------------------

struct uniform_next {
  void operator()(std::span<const token>, std::span<const token>, std::span<double> out) const {
    for (double& x : out) x = -std::log(static_cast<double>(out.size()));
  }
};
using adapter = tsmc::stateless_model<uniform_next>;

adapter started(std::size_t particles = 2) {
  adapter m(3, uniform_next{});
  const token_sequence p{0};
  m.start(p, particles);
  return m;
}

const bad_input::area stateless_rows("sampler", [](bad_input::area& a) {
  a.invalid("stateless_model::stateless_model", input::zero, "vocab_size = 0", "stateless_model",
            "vocab_size must be positive, got 0", [] { adapter m(0, uniform_next{}); });
  a.invalid("stateless_model::start", input::zero, "particles = 0", "stateless_model::start",
            "particles must be positive, got 0", [] { (void)started(0); });
  a.invalid("stateless_model::start", input::too_large, "prompt = {3}, V = 3", "stateless_model::start",
            "prompt[0] must be in [0, 3), got 3", [] {
              adapter m(3, uniform_next{});
              const token_sequence p{3};
              m.start(p, 2);
            });
  a.invalid("stateless_model::log_probs", input::mismatched, "out 3 x 3 for K = 2", "stateless_model::log_probs",
            "out.rows() must equal the number of particles 2, got 3", [] {
              auto m = started();
              tsmc::log_prob_matrix out(3, 3);
              m.log_probs(out);
            });
  a.invalid("stateless_model::log_probs", input::mismatched, "out 2 x 4 for V = 3", "stateless_model::log_probs",
            "out.cols() must equal vocab_size 3, got 4", [] {
              auto m = started();
              tsmc::log_prob_matrix out(2, 4);
              m.log_probs(out);
            });
  a.invalid("stateless_model::log_probs", input::mismatched, "active of 3 flags for K = 2", "stateless_model::log_probs",
            "active.size() must equal the number of particles 2, got 3", [] {
              auto m = started();
              tsmc::log_prob_matrix out(2, 3);
              const std::vector<std::uint8_t> active{1, 1, 1};
              m.log_probs(out, active);
            });
  a.invalid("stateless_model::append", input::mismatched, "3 tokens for K = 2", "stateless_model::append",
            "tokens.size() must equal the number of particles 2, got 3", [] {
              auto m = started();
              const token_sequence t{0, 1, 2};
              m.append(t);
            });
  a.invalid("stateless_model::append", input::too_large, "tokens = {0, 3}, V = 3", "stateless_model::append",
            "tokens[1] must be in [0, 3), got 3", [] {
              auto m = started();
              const token_sequence t{0, 3};
              m.append(t);
            });
  a.invalid("stateless_model::append", input::negative, "tokens = {-1, 0}", "stateless_model::append",
            "tokens[0] must be in [0, 3), got -1", [] {
              auto m = started();
              const token_sequence t{-1, 0};
              m.append(t);
            });
  a.invalid("stateless_model::reorder", input::mismatched, "3 ancestors for K = 2", "stateless_model::reorder",
            "ancestors.size() must equal the number of particles 2, got 3", [] {
              auto m = started();
              const std::vector<tsmc::particle_index> anc{0, 1, 1};
              m.reorder(anc);
            });
  a.invalid("stateless_model::reorder", input::too_large, "ancestors = {0, 2} for K = 2", "stateless_model::reorder",
            "ancestors[1] must be < 2, got 2", [] {
              auto m = started();
              const std::vector<tsmc::particle_index> anc{0, 2};
              m.reorder(anc);
            });
});

}  // namespace
