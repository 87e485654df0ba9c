#pragma once
/// @file
/// @brief The library's version, as macros and as constants.

#define TSMC_VERSION_MAJOR 0
#define TSMC_VERSION_MINOR 1
#define TSMC_VERSION_PATCH 0

namespace tsmc {
/// @brief Major version: incremented on incompatible API changes.
inline constexpr int version_major = TSMC_VERSION_MAJOR;
/// @brief Minor version: incremented on compatible additions.
inline constexpr int version_minor = TSMC_VERSION_MINOR;
/// @brief Patch version: incremented on fixes.
inline constexpr int version_patch = TSMC_VERSION_PATCH;
/// @brief The version as "major.minor.patch".
inline constexpr const char* version_string = "0.1.0";
}  // namespace tsmc
