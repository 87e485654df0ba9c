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
