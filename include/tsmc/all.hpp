#pragma once
/// @file
/// @brief The whole library but three layers that are always included by name: testing/ (toy
/// models, potentials and enumeration for tests), constraints/ (regular expressions, grammars and
/// their token automata) and distributed/ (MPI). That is the sampler and its core
/// (<tsmc/tsmc.hpp>), the twist heads and featurizers, the learning layer (CTL and the baselines,
/// Adam, train()), the models (n-gram, llama2.c, GGUF, tokenizers), the story grammar and the
/// potentials: what <tsmc/tsmc.hpp> held before issue 29 made it light.
///
/// Convenient, and the heaviest include: a translation unit that includes it compiles every layer's
/// inline code (README, "Installing": about 2.6x the peak memory of <Eigen/Core> alone). A program
/// that uses one model or one objective compiles faster with <tsmc/tsmc.hpp> plus that layer's
/// headers, e.g. <tsmc/models/llama2c.hpp> or <tsmc/learning/trainer.hpp>.
#include <tsmc/version.hpp>
#include <tsmc/core/concepts.hpp>
#include <tsmc/core/error.hpp>
#include <tsmc/core/file_output.hpp>
#include <tsmc/core/log_math.hpp>
#include <tsmc/core/parallel.hpp>
#include <tsmc/core/random.hpp>
#include <tsmc/core/statistics.hpp>
#include <tsmc/core/types.hpp>
#include <tsmc/resampling/ancestors.hpp>
#include <tsmc/resampling/resampler.hpp>
#include <tsmc/resampling/schemes.hpp>
#include <tsmc/resampling/triggers.hpp>
#include <tsmc/smc/options.hpp>
#include <tsmc/smc/proposal_step.hpp>
#include <tsmc/smc/result.hpp>
#include <tsmc/smc/sampler.hpp>
#include <tsmc/smc/stateless_model.hpp>
#include <tsmc/twists/features.hpp>
#include <tsmc/twists/mlp_twist.hpp>
#include <tsmc/twists/no_twist.hpp>
#include <tsmc/twists/sigmoid_twist.hpp>
#include <tsmc/twists/tabular_twist.hpp>
#include <tsmc/twists/trainable.hpp>
#include <tsmc/bounds/batched_infilling.hpp>
#include <tsmc/bounds/estimator.hpp>
#include <tsmc/bounds/exact_samplers.hpp>
#include <tsmc/bounds/kl.hpp>
#include <tsmc/bounds/report.hpp>
#include <tsmc/bounds/sweep.hpp>
#include <tsmc/learning/adam.hpp>
#include <tsmc/learning/objectives.hpp>
#include <tsmc/learning/parameter_io.hpp>
#include <tsmc/learning/problem.hpp>
#include <tsmc/learning/trainer.hpp>
#include <tsmc/models/bpe_tokenizer.hpp>
#include <tsmc/models/gguf.hpp>
#include <tsmc/models/gguf_llama2c.hpp>
#include <tsmc/models/gguf_model.hpp>
#include <tsmc/models/llama2c.hpp>
#include <tsmc/models/llama2c_checkpoint.hpp>
#include <tsmc/models/llama2c_tokenizer.hpp>
#include <tsmc/models/ngram.hpp>
#include <tsmc/models/pretokenizer.hpp>
#include <tsmc/models/text_io.hpp>
#include <tsmc/models/token_type.hpp>
#include <tsmc/models/transformer.hpp>
#include <tsmc/models/unicode.hpp>
#include <tsmc/models/weight_formats.hpp>
#include <tsmc/models/word_tokenizer.hpp>
#include <tsmc/corpus/story_grammar.hpp>
#include <tsmc/potentials/classifier.hpp>
#include <tsmc/potentials/task_potentials.hpp>
