#pragma once
/// @file
/// @brief The umbrella header of the sampler: the core (concepts, errors, log-space arithmetic,
/// random streams, statistics), the resampling kernels and triggers, twisted SMC and its options and
/// results, the twist wrappers that need no parameters (no_twist, sigmoid_twist) and the bounds and
/// KL estimators.
///
/// The heavier layers have their own headers, so that a translation unit pays only for what it uses
/// (issue 29; README, "Installing"): the learned twist heads and featurizers (<tsmc/twists/mlp_twist.hpp>,
/// <tsmc/twists/tabular_twist.hpp>, <tsmc/twists/features.hpp>), the learning layer (<tsmc/learning/...>: CTL and the baselines,
/// Adam, train()), the models and tokenizers (<tsmc/models/...>), the story grammar
/// (<tsmc/corpus/story_grammar.hpp>), the potentials (<tsmc/potentials/...>) and the constraints
/// (<tsmc/constraints/...>). <tsmc/all.hpp> includes all of them but constraints/, distributed/ and
/// testing/.
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
#include <tsmc/twists/no_twist.hpp>
#include <tsmc/twists/sigmoid_twist.hpp>
#include <tsmc/bounds/batched_infilling.hpp>
#include <tsmc/bounds/estimator.hpp>
#include <tsmc/bounds/exact_samplers.hpp>
#include <tsmc/bounds/kl.hpp>
#include <tsmc/bounds/report.hpp>
#include <tsmc/bounds/sweep.hpp>
