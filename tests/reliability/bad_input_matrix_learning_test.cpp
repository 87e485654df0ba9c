// [reliability] Bad-input matrix rows of the learning layer: learning problems, the objectives,
// Adam, the training loop, the bounds evaluator and parameter files (see bad_input_matrix.hpp).

#include "reliability/bad_input_matrix.hpp"
#include "learning/learning_fixtures.hpp"

#include <tsmc/learning/adam.hpp>
#include <tsmc/learning/objectives.hpp>
#include <tsmc/learning/parameter_io.hpp>
#include <tsmc/learning/problem.hpp>
#include <tsmc/learning/trainer.hpp>
#include <tsmc/twists/sigmoid_twist.hpp>
#include <tsmc/twists/tabular_twist.hpp>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

namespace {

using bad_input::input;
using namespace tsmc_test;
constexpr double nan = std::numeric_limits<double>::quiet_NaN();
constexpr double inf = std::numeric_limits<double>::infinity();

using toy_potential = hide_next_token_form<random_potential>;
using problem_type = learning_problem<tabular_model, tabular_twist, toy_potential>;

// log phi = value for every sequence.
struct constant_potential {
  double value = 0.0;
  void log_potential(std::span<const token_sequence> s, std::span<double> out) const {
    for (std::size_t k = 0; k < s.size(); ++k) out[k] = value;
  }
};

// The toy problem (V = 3, T = 3, end token 2) with a tabular twist.
struct learning_fixture {
  learning_toy toy{true, 11};
  tabular_twist twist{3, 3};
  default_engine rng{4};
  problem_type problem(learning_options o, token_sequence prompt = {1, 0}) {
    return problem_type(toy.model, twist, toy.potential, prompt, o);
  }
  problem_type problem() { return toy.learning(twist, 4); }
};

learning_options options(std::size_t batch = 4, std::size_t horizon = 3, std::optional<token> end = token{2}) {
  return learning_options{.batch = batch, .horizon = horizon, .end_token = end};
}

// An objective whose loss or gradient is chosen (for the training loop's checks).
struct scripted_objective {
  static constexpr const char* name = "scripted";
  double loss = 0.0;
  double gradient = 0.0;
  struct batch {};
  template <class Problem, class Engine>
  batch sample(Problem&, Engine&) {
    return {};
  }
  template <class Problem, class Engine>
  objective_step accumulate(Problem& problem, batch&, Engine&) {
    for (auto& b : problem.twist().parameters()) b.gradient.setConstant(gradient);
    return {loss, 1.0};
  }
};

// One block "w" of size n with values and gradient storage.
struct one_block {
  Eigen::VectorXd values, gradient;
  std::string name = "w";
  Eigen::Index rows = 0, cols = 1;
  explicit one_block(Eigen::Index n) : values(Eigen::VectorXd::Zero(n)), gradient(Eigen::VectorXd::Ones(n)), rows(n) {}
  std::vector<parameter_block> blocks() {
    return {{name, rows, cols, Eigen::Map<Eigen::VectorXd>(values.data(), values.size()),
             Eigen::Map<Eigen::VectorXd>(gradient.data(), gradient.size())}};
  }
};

const bad_input::area learning_rows("learning", [](bad_input::area& a) {
  const std::string lp = "learning_problem";
  const auto make = [](learning_options o, token_sequence prompt = {1, 0}, std::size_t twist_vocab = 3) {
    return [o, prompt, twist_vocab] {
      learning_fixture f;
      tabular_twist twist(twist_vocab, 3);
      problem_type p(f.toy.model, twist, f.toy.potential, prompt, o);
    };
  };
  a.invalid("learning_problem::learning_problem", input::zero, "options.batch = 0", lp,
            "options.batch must be positive, got 0", make(options(0)));
  a.invalid("learning_problem::learning_problem", input::zero, "options.horizon = 0", lp,
            "options.horizon must be positive, got 0", make(options(4, 0)));
  a.invalid("learning_problem::learning_problem", input::too_large, "options.end_token = 3, V = 3", lp,
            "options.end_token must be in [0, 3), got 3", make(options(4, 3, token{3})));
  a.invalid("learning_problem::learning_problem", input::negative, "options.end_token = -1", lp,
            "options.end_token must be in [0, 3), got -1", make(options(4, 3, token{-1})));
  a.invalid("learning_problem::learning_problem", input::too_large, "prompt = {1, 3}", lp,
            "prompt[1] must be in [0, 3), got 3", make(options(), {1, 3}));
  a.invalid("learning_problem::learning_problem", input::mismatched, "a twist over 4 tokens, model over 3", lp,
            "twist.vocab_size() must equal model.vocab_size() 3, got 4", make(options(), {1, 0}, 4));
  const std::string ev = "learning_problem::evaluate";
  const auto evaluate = [](std::vector<token_sequence> sequences) {
    return [sequences] {
      learning_fixture f;
      auto p = f.problem();
      (void)p.evaluate(sequences, false, f.rng);
    };
  };
  a.invalid(ev, input::empty, "sequences = {}", ev, "sequences.size() must be positive, got 0", evaluate({}));
  a.invalid(ev, input::too_large, "sequences[1] = {0, 7, 2}", ev, "sequences[1][1] must be in [0, 3), got 7",
            evaluate({{0, 1, 2}, {0, 7, 2}}));
  a.invalid(ev, input::negative, "sequences[0] = {-1, 2}", ev, "sequences[0][0] must be in [0, 3), got -1",
            evaluate({{-1, 2}}));
  a.invalid(ev, input::empty, "sequences[0] = {}", ev, "sequences[0].size() must be in [1, horizon = 3], got 0",
            evaluate({{}}));
  a.invalid(ev, input::too_large, "sequences[0] of 4 tokens, horizon 3", ev,
            "sequences[0].size() must be in [1, horizon = 3], got 4", evaluate({{0, 0, 0, 0}}));
  a.invalid(ev, input::mismatched, "sequences[0] = {0, 1} (unfinished)", ev,
            "sequences[0] shorter than the horizon must end with the end token", evaluate({{0, 1}}));

  // objectives
  a.invalid("ctl::ctl", input::zero, "count = 0 exact samples", "ctl::ctl", "count must be positive, got 0", [] {
    learning_fixture f;
    auto exact = enumeration_exact_sampler(f.toy.solution);
    ctl<enumeration_sampler> o(exact, 0);
  });
  a.invalid("sixo::sixo", input::zero, "count = 0 exact samples", "sixo::sixo", "count must be positive, got 0", [] {
    learning_fixture f;
    auto exact = enumeration_exact_sampler(f.toy.solution);
    sixo<enumeration_sampler> o(exact, 0);
  });
  a.invalid("dpg::dpg", input::zero, "count = 0 exact samples", "dpg::dpg", "count must be positive, got 0", [] {
    learning_fixture f;
    auto exact = enumeration_exact_sampler(f.toy.solution);
    dpg<enumeration_sampler> o(exact, 0);
  });
  for (const double bad : {nan, -inf, inf}) {
    const input kind = std::isnan(bad) ? input::nan : bad < 0 ? input::neg_inf : input::pos_inf;
    a.invalid("rl::rl", kind, "options.min_log_target = " + tsmc::detail::to_text(bad), "rl::rl",
              "options.min_log_target must be finite", [bad] { rl o(rl_options{.min_log_target = bad}); });
  }
  a.invalid("fudge::sample", input::too_large, "phi = e > 1 (FUDGE's label must be a probability)", "fudge::sample",
            "phi of sample 0 must be a probability in [0, 1]", [] {
              learning_fixture f;
              sigmoid_twist<tabular_twist> twist(tabular_twist(3, 3));
              constant_potential phi{1.0};
              learning_problem<tabular_model, sigmoid_twist<tabular_twist>, constant_potential> p(
                  f.toy.model, twist, phi, token_sequence{1, 0}, options());
              fudge o;
              (void)o.sample(p, f.rng);
            });

  // Adam
  const auto adam_with = [](adam_options o) { return [o] { adam opt(o); }; };
  for (const double lr : {0.0, -1e-3, nan, inf}) {
    const input kind = lr == 0.0 ? input::zero : std::isnan(lr) ? input::nan : lr == inf ? input::pos_inf : input::negative;
    a.invalid("adam::adam", kind, "options.learning_rate = " + tsmc::detail::to_text(lr), "adam::adam",
              "options.learning_rate must be positive and finite", adam_with(adam_options{.learning_rate = lr}));
  }
  for (const double b : {1.0, -0.1, nan}) {
    const input kind = std::isnan(b) ? input::nan : b < 0 ? input::negative : input::too_large;
    a.invalid("adam::adam", kind, "options.beta1 = " + tsmc::detail::to_text(b), "adam::adam",
              "options.beta1 must be in [0, 1)", adam_with(adam_options{.beta1 = b}));
    a.invalid("adam::adam", kind, "options.beta2 = " + tsmc::detail::to_text(b), "adam::adam",
              "options.beta2 must be in [0, 1)", adam_with(adam_options{.beta2 = b}));
  }
  a.invalid("adam::adam", input::zero, "options.epsilon = 0", "adam::adam", "options.epsilon must be positive and finite",
            adam_with(adam_options{.epsilon = 0.0}));
  a.invalid("adam::adam", input::nan, "options.epsilon = NaN", "adam::adam", "options.epsilon must be positive and finite",
            adam_with(adam_options{.epsilon = nan}));
  a.invalid("adam::adam", input::negative, "options.max_gradient_norm = -1", "adam::adam", "options.max_gradient_norm",
            adam_with(adam_options{.max_gradient_norm = -1.0}));
  a.invalid("adam::adam", input::pos_inf, "options.max_gradient_norm = +inf", "adam::adam", "options.max_gradient_norm",
            adam_with(adam_options{.max_gradient_norm = inf}));
  a.invalid("adam::step", input::mismatched, "block 'w': 3 values, gradient of 2", "adam::step",
            "block 'w' gradient.size() must equal its values.size() 3, got 2", [] {
              one_block b(3);
              std::vector<parameter_block> blocks{{"w", 3, 1, Eigen::Map<Eigen::VectorXd>(b.values.data(), 3),
                                                   Eigen::Map<Eigen::VectorXd>(b.gradient.data(), 2)}};
              adam().step(blocks);
            });
  a.invalid("adam::step", input::mismatched, "block 'w' of 3 values declared 2 x 1", "adam::step",
            "block 'w' values.size() must equal its rows x cols 2, got 3", [] {
              one_block b(3);
              auto blocks = b.blocks();
              blocks[0].rows = 2;
              adam().step(blocks);
            });
  a.invalid("adam::step", input::mismatched, "a second step with another block name", "adam::step", "blocks[0].name", [] {
    one_block b(3);
    adam opt;
    auto blocks = b.blocks();
    opt.step(blocks);
    blocks[0].name = "v";
    opt.step(blocks);
  });
  a.invalid("adam::step", input::mismatched, "a second step with two blocks", "adam::step",
            "the number of blocks must equal the first step's 1, got 2", [] {
              one_block b(3), c(2);
              adam opt;
              auto blocks = b.blocks();
              opt.step(blocks);
              c.name = "v";
              blocks.push_back(c.blocks()[0]);
              opt.step(blocks);
            });
  a.runtime("adam::step", input::nan, "a NaN gradient entry", "adam::step", "gradient of block 'w' at index 1", [] {
    one_block b(3);
    b.gradient[1] = nan;
    auto blocks = b.blocks();
    adam().step(blocks);
  });
  a.runtime("adam::step", input::pos_inf, "a +inf gradient entry", "adam::step", "gradient of block 'w' at index 0", [] {
    one_block b(3);
    b.gradient[0] = inf;
    auto blocks = b.blocks();
    adam().step(blocks);
  });

  // the training loop
  const auto train_with = [](training_options o, double loss, double gradient) {
    return [o, loss, gradient] {
      learning_fixture f;
      auto p = f.problem();
      scripted_objective objective{loss, gradient};
      adam opt;
      (void)train(p, objective, opt, o, f.rng);
    };
  };
  a.invalid("train", input::zero, "options.updates = 0", "train", "options.updates must be positive, got 0",
            train_with(training_options{.updates = 0}, 0.0, 0.0));
  a.invalid("train", input::too_large, "options.average_last = 5 > updates = 3", "train",
            "options.average_last must be at most options.updates 3, got 5",
            train_with(training_options{.updates = 3, .average_last = 5}, 0.0, 0.0));
  a.runtime("train", input::nan, "the objective's loss is NaN", "train", "the scripted loss at update 1 must be finite",
            train_with(training_options{.updates = 2}, nan, 0.0));
  a.runtime("train", input::pos_inf, "the objective's loss is +inf", "train",
            "the scripted loss at update 1 must be finite", train_with(training_options{.updates = 2}, inf, 0.0));
  a.runtime("train", input::nan, "the objective's gradient is NaN", "train",
            "the scripted gradient of block 'log_psi' at update 1 must be finite",
            train_with(training_options{.updates = 2}, 0.5, nan));
  a.runtime("train", input::wrong_file, "options.checkpoint in a missing directory", "train",
            "options.checkpoint must name a file in an existing, writable directory (checked before the first update)",
            [] {
    learning_fixture f;
    auto p = f.problem();
    scripted_objective objective{0.5, 0.0};
    adam opt;
    training_options o{.updates = 1};
    o.checkpoint = bad_input::scratch("missing_dir") / "twist.params";
    (void)train(p, objective, opt, o, f.rng);
  });

  // the bounds evaluator
  const std::string be = "bounds_evaluator";
  using evaluator = bounds_evaluator<problem_type, enumeration_sampler>;
  const auto evaluator_with = [](evaluator::options_type o) {
    return [o] {
      learning_fixture f;
      auto p = f.problem();
      auto exact = enumeration_exact_sampler(f.toy.solution);
      evaluator e(p, exact, o);
    };
  };
  a.invalid("bounds_evaluator::bounds_evaluator", input::zero, "options.particles = 0", be,
            "options.particles must be positive, got 0", evaluator_with(evaluator::options_type{.particles = 0}));
  a.invalid("bounds_evaluator::bounds_evaluator", input::zero, "options.runs = 0", be,
            "options.runs must be positive, got 0", evaluator_with(evaluator::options_type{.runs = 0}));
  a.invalid("bounds_evaluator::bounds_evaluator", input::zero, "options.kl_samples = 0", be,
            "options.kl_samples must be positive, got 0", evaluator_with(evaluator::options_type{.kl_samples = 0}));

  // parameter files
  const auto good_file = [] {
    const auto path = bad_input::scratch("good.params");
    one_block b(3);
    b.values << 1.0, 2.0, 3.0;
    save_parameters(path, b.blocks());
    return bad_input::read_bytes(path);
  };
  const auto load_bytes = [](std::string bytes, Eigen::Index n = 3, std::string name = "w") {
    const auto path = bad_input::scratch("load.params");
    bad_input::write_bytes(path, bytes);
    one_block b(n);
    b.name = name;
    auto blocks = b.blocks();
    load_parameters(path, blocks);
  };
  a.invalid("save_parameters", input::empty, "a block named \"\"", "save_parameters", "blocks[0].name must not be empty",
            [] {
              one_block b(2);
              b.name = "";
              save_parameters(bad_input::scratch("x.params"), b.blocks());
            });
  a.invalid("save_parameters", input::mismatched, "two blocks named 'w'", "save_parameters", "blocks[1].name", [] {
    one_block b(2), c(2);
    auto blocks = b.blocks();
    blocks.push_back(c.blocks()[0]);
    save_parameters(bad_input::scratch("x.params"), blocks);
  });
  a.invalid("save_parameters", input::mismatched, "block 'w' of 3 values declared 2 x 1", "save_parameters", "block 'w' values.size() must equal rows x cols = 2 x 1, got 3",
            [] {
              one_block b(3);
              auto blocks = b.blocks();
              blocks[0].rows = 2;
              save_parameters(bad_input::scratch("x.params"), blocks);
            });
  a.runtime("save_parameters", input::wrong_file, "a path in a missing directory", "save_parameters", "missing_dir", [] {
    one_block b(2);
    save_parameters(bad_input::scratch("missing_dir") / "x.params", b.blocks());
  });
  a.runtime("save_parameters(twist)", input::wrong_file, "a path that is a directory", "save_parameters", "", [] {
    tabular_twist twist(3, 2);
    std::filesystem::create_directories(bad_input::scratch("a_directory"));
    save_parameters(bad_input::scratch("a_directory"), twist);
  });
  a.runtime("load_parameters", input::wrong_file, "a missing file", "load_parameters", "cannot be opened",
            [] {
              one_block b(3);
              auto blocks = b.blocks();
              load_parameters(bad_input::scratch("no_such.params"), blocks);
            });
  a.runtime("load_parameters", input::empty, "an empty file", "load_parameters", "is truncated: the magic needs 8 bytes",
            [load_bytes] { load_bytes(""); });
  a.runtime("load_parameters", input::wrong_file, "a classifier text file", "load_parameters",
            "is not a tsmc parameter file", [load_bytes] { load_bytes("tsmc-bow-classifier 2\nclasses 2 vocab 2\n"); });
  a.runtime("load_parameters", input::wrong_file, "format version 7", "load_parameters",
            "has format version 7, this library reads version 1", [good_file, load_bytes] {
              std::string bytes = good_file();
              bytes[8] = 7;
              load_bytes(bytes);
            });
  a.runtime("load_parameters", input::truncated, "the first half of a file", "load_parameters", "is truncated",
            [good_file, load_bytes] {
              const std::string bytes = good_file();
              load_bytes(bytes.substr(0, bytes.size() / 2));
            });
  a.runtime("load_parameters", input::truncated, "a file without its last byte", "load_parameters",
            "is truncated: the checksum needs 8 bytes", [good_file, load_bytes] {
              const std::string bytes = good_file();
              load_bytes(bytes.substr(0, bytes.size() - 1));
            });
  a.runtime("load_parameters", input::wrong_file, "one flipped bit in a value", "load_parameters", "fails its checksum",
            [good_file, load_bytes] {
              std::string bytes = good_file();
              bytes[bytes.size() - 12] = static_cast<char>(bytes[bytes.size() - 12] ^ 0x01);
              load_bytes(bytes);
            });
  a.runtime("load_parameters", input::wrong_file, "a trailing byte", "load_parameters",
            "has 1 unexpected bytes after the checksum", [good_file, load_bytes] { load_bytes(good_file() + "x"); });
  a.invalid("load_parameters", input::mismatched, "a 3 x 1 block read into 4 x 1", "load_parameters",
            "has block 'w' of shape 3 x 1, the parameters' is 4 x 1", [good_file, load_bytes] { load_bytes(good_file(), 4); });
  a.invalid("load_parameters", input::mismatched, "block 'w' read into block 'v'", "load_parameters",
            "has block 'w' at position 0 where the parameters have 'v'",
            [good_file, load_bytes] { load_bytes(good_file(), 3, "v"); });
  a.invalid("load_parameters(twist)", input::mismatched, "a one-block file into a tabular twist of another shape",
            "load_parameters", "where the parameters have", [good_file] {
              const auto path = bad_input::scratch("twist.params");
              bad_input::write_bytes(path, good_file());
              tabular_twist twist(3, 2);
              load_parameters(path, twist);
            });
});

}  // namespace
