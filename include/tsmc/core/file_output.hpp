#pragma once
/// @file
/// @brief Writing a whole file safely: the text goes to a temporary file in the destination's
/// directory, every write, the flush and the close are checked, and only then is the temporary
/// file renamed over the destination (std::filesystem::rename: atomic on POSIX file systems). A
/// save that fails (a full disk, a directory that is not writable, a rename that is refused)
/// throws and leaves the previous file byte-identical and no temporary file behind. The data are
/// not fsync'ed: durability across a power loss is the file system's.

#include <tsmc/core/error.hpp>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <ios>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

#if defined(__unix__) || defined(__APPLE__)
#include <unistd.h>
#endif

namespace tsmc {

namespace detail {

/// A name for a temporary file next to `path` that no other save of this or another process
/// uses at the same time: path + ".tmp.<process id>.<counter>.<clock ticks>".
[[nodiscard]] inline std::filesystem::path temporary_path_for(const std::filesystem::path& path) {
  static std::atomic<unsigned long long> counter{0};
  long long process = 0;
#if defined(__unix__) || defined(__APPLE__)
  process = static_cast<long long>(::getpid());
#endif
  std::filesystem::path temporary = path;
  temporary += ".tmp." + std::to_string(process) + "." + std::to_string(counter.fetch_add(1)) + "." +
               std::to_string(std::chrono::steady_clock::now().time_since_epoch().count());
  return temporary;
}

/// Whether a file can be created in `path`'s directory (tried: a temporary file is created there
/// and removed again), and `path` is not an existing directory or other non-regular file.
[[nodiscard]] inline bool can_create_file_next_to(const std::filesystem::path& path) {
  std::error_code error;
  const std::filesystem::file_status status = std::filesystem::status(path, error);
  if (std::filesystem::exists(status) && !std::filesystem::is_regular_file(status)) return false;
  const std::filesystem::path probe = temporary_path_for(path);
  {
    std::ofstream out(probe, std::ios::binary);
    if (!out) return false;
  }
  std::filesystem::remove(probe, error);
  return true;
}

}  // namespace detail

/// @brief Writes `path` through `writer(std::ostream&)` into a temporary file, then renames it
/// over `path` (see the file's description).
/// @param path the destination
/// @param writer called once with the temporary file's stream; it may throw (the temporary file
/// is then removed and the exception passes through)
/// @param function the name the messages give (a caller's own public function, without "tsmc::")
/// @throw tsmc::runtime_error naming the function and the file if `path` exists and is not a
/// regular file (a directory, a device such as /dev/full, a pipe: a rename would replace it), the
/// temporary file cannot be created, a write, the flush or the close fails, or the rename fails;
/// the previous file at `path` is then untouched and the temporary file removed
template <class Writer>
void write_file_atomically(const std::filesystem::path& path, Writer&& writer,
                           std::string_view function = "write_file_atomically") {
  {
    // A device, a pipe or a directory is never replaced by a renamed regular file.
    std::error_code ignored;
    const std::filesystem::file_status status = std::filesystem::status(path, ignored);
    if (std::filesystem::exists(status) && !std::filesystem::is_regular_file(status))
      throw_runtime_error(function, "path", "must name a regular file (not a directory, device or pipe)",
                          path.string());
  }
  const std::filesystem::path temporary = detail::temporary_path_for(path);
  const auto discard = [&temporary] {
    std::error_code ignored;
    std::filesystem::remove(temporary, ignored);
  };
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    if (!out) {
      discard();
      throw_runtime_error(function, "path", "must name a file in an existing, writable directory", path.string());
    }
    try {
      std::forward<Writer>(writer)(static_cast<std::ostream&>(out));
    } catch (...) {
      out.close();
      discard();
      throw;
    }
    out.flush();
    const bool written = static_cast<bool>(out);
    out.close();
    if (!written || !out) {
      discard();
      throw_runtime_error(function, "the file " + path.string(),
                          "must be written in full (the previous file is left as it was)",
                          "a write error (is the disk full?)");
    }
  }
  std::error_code error;
  std::filesystem::rename(temporary, path, error);
  if (error) {
    discard();
    throw_runtime_error(function, "the rename of " + temporary.string() + " to " + path.string(), "must succeed",
                        error.message());
  }
}

}  // namespace tsmc
