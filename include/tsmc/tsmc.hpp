#pragma once
/// @file
/// @brief The umbrella header: includes the whole library.

#include <tsmc/version.hpp>

#include <tsmc/core/concepts.hpp>
#include <tsmc/core/error.hpp>
#include <tsmc/core/log_math.hpp>
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

#include <tsmc/bounds/estimator.hpp>
#include <tsmc/bounds/exact_samplers.hpp>
#include <tsmc/bounds/kl.hpp>
#include <tsmc/bounds/report.hpp>
#include <tsmc/bounds/sweep.hpp>

#include <tsmc/corpus/story_grammar.hpp>

#include <tsmc/models/ngram.hpp>
#include <tsmc/models/text_io.hpp>
#include <tsmc/models/word_tokenizer.hpp>

#include <tsmc/potentials/classifier.hpp>
#include <tsmc/potentials/task_potentials.hpp>

#include <tsmc/testing/enumeration.hpp>
#include <tsmc/testing/toy_model.hpp>
#include <tsmc/testing/toy_potentials.hpp>
