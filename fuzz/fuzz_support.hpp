#pragma once
// Shared helpers of the libFuzzer targets: the loaders read files, so each input is written to a
// per-process temporary file; tsmc's own exceptions are the expected outcome of bad input, and
// anything else (another exception, a crash, a sanitiser report) is a finding.

#include <tsmc/core/error.hpp>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>

namespace tsmc_fuzz {

/// Writes the input to this process's scratch file and returns its path.
inline std::filesystem::path write_input(const std::uint8_t* data, std::size_t size, const char* suffix) {
  static const std::filesystem::path path =
      std::filesystem::temp_directory_path() / ("tsmc_fuzz_" + std::to_string(::getpid()) + suffix);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  out.close();
  return path;
}

/// Runs f; a tsmc::invalid_argument or tsmc::runtime_error is a clean refusal of bad input.
template <class F>
void expect_load_or_tsmc_error(F&& f) {
  try {
    f();
  } catch (const tsmc::invalid_argument&) {
  } catch (const tsmc::runtime_error&) {
  }
}

}  // namespace tsmc_fuzz
