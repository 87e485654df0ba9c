#pragma once
/// @file
/// @brief What every example program shares around its work, so that none of them crashes,
/// hangs on a bad value or loses its output:
///
/// - every option is declared with its rule (a whole number in a range, a number in an
///   interval, a non-empty text, an existing input file, an output file) and ALL of them are
///   checked before any work: a negative count does not wrap to 2^64, "abc" does not read as 0,
///   "1e3" or "" are not numbers, a huge value is refused instead of running for days;
/// - every error ends the program with "<program>: error: <message>" on stderr and a non-zero
///   status (2: the options, 1: the run), the message naming the option at fault; no uncaught
///   exception, no abort;
/// - every output file (--csv, --json, --history-csv, ...) is checked writable before the work
///   (its directory exists and takes a new file; the path is not a directory, not an input and
///   not another output), and written after it to a temporary file that is renamed over the
///   destination (tsmc::write_file_atomically): a failure leaves no file created and the
///   previous one byte-identical.
///
/// Usage: a tsmc_examples::program holds the CLI11 application; options are added through it;
/// `if (auto status = p.parse(argc, argv)) return *status;` checks everything; the work runs in
/// `return p.run([&] { ... return 0; });`, which turns an exception into the message and status.
#include <tsmc/core/file_output.hpp>

#include <CLI/CLI.hpp>

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <exception>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace tsmc_examples {

/// @brief An option value that cannot be used; the message names the option. The program exits
/// with status 2 (a usage error), before or instead of its work.
class option_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// @brief The exit status of a usage error (a bad option; nothing was done).
inline constexpr int exit_usage = 2;
/// @brief The exit status of an error during the run (a malformed model file, a spent budget).
inline constexpr int exit_failure = 1;

/// @brief A value for an option's message: quoted, so that an empty or blank value shows.
inline std::string quote_value(std::string_view text) { return "'" + std::string(text) + "'"; }

/// @brief Parses a whole number: digits only (no sign, no spaces, no exponent, no hex), that fits
/// in 64 bits; false otherwise.
inline bool parse_whole_number(std::string_view text, std::uint64_t& value) {
  if (text.empty()) return false;
  for (const char c : text)
    if (c < '0' || c > '9') return false;
  const auto result = std::from_chars(text.data(), text.data() + text.size(), value);
  return result.ec == std::errc() && result.ptr == text.data() + text.size();
}

/// @brief Parses a finite decimal number (an optional '-', digits, a point, an exponent); false
/// for anything else, "nan" and "inf" included.
inline bool parse_finite_number(std::string_view text, double& value) {
  if (text.empty()) return false;
  const auto result = std::from_chars(text.data(), text.data() + text.size(), value);
  return result.ec == std::errc() && result.ptr == text.data() + text.size() && std::isfinite(value);
}

/// @brief Why `path` cannot take an output file, or "" when it can: the path is not empty, not a
/// directory, not an existing non-regular file (a device, a pipe), its directory exists, and a
/// new file can be created there (tried: a temporary file is created and removed again).
inline std::string output_path_problem(const std::string& path) {
  namespace fs = std::filesystem;
  if (path.empty()) return "must name a file, got an empty path";
  std::error_code error;
  const fs::path p(path);
  const fs::file_status status = fs::status(p, error);
  if (fs::is_directory(status)) return "must name a file, got the directory " + quote_value(path);
  if (fs::exists(status) && !fs::is_regular_file(status))
    return "must name a regular file, got " + quote_value(path) + " (a device, a pipe or a socket)";
  const fs::path directory = p.has_parent_path() ? p.parent_path() : fs::path(".");
  if (!fs::is_directory(fs::status(directory, error)))
    return "must be in an existing directory: " + quote_value(directory.string()) + " is not one";
  const fs::path probe = tsmc::detail::temporary_path_for(p);
  {
    std::ofstream out(probe, std::ios::binary);
    if (!out) return "must be in a writable directory: a file cannot be created in " + quote_value(directory.string());
  }
  fs::remove(probe, error);
  return "";
}

/// @brief The ranges the programs accept: anything larger is a typo or would run for days (or
/// allocate more memory than a machine has) before failing.
struct limits {
  static constexpr std::size_t corpus_min = 100;             ///< grammar sentences: fewer miss the rare words
  static constexpr std::size_t corpus_max = 1'000'000;       ///< grammar sentences
  static constexpr std::size_t horizon_max = 1024;           ///< tokens after the prompt
  static constexpr std::size_t updates_max = 10'000'000;     ///< training updates
  static constexpr std::size_t particles_max = 65'536;       ///< particles of one run or batch
  static constexpr std::size_t runs_max = 1'000'000;         ///< runs per bound
  static constexpr std::size_t samples_max = 1'000'000;      ///< samples per KL estimate
  static constexpr std::size_t rejection_budget_max = 1'000'000'000'000;  ///< p0 draws of rejection sampling
};

/// @brief The rule between --evaluate-every and --updates: an evaluation period given on the
/// command line that is longer than the training would never evaluate (0 says that). The
/// default period is not held against a short training (it evaluates at the end).
inline std::string evaluate_every_rule(const CLI::Option* given, std::size_t evaluate_every, std::size_t updates) {
  if (given->count() == 0 || evaluate_every <= updates) return "";
  return "--evaluate-every " + std::to_string(evaluate_every) + " exceeds --updates " + std::to_string(updates) +
         ": no evaluation would run (--evaluate-every 0 says none)";
}

/// @brief What an exhausted rejection budget means in the programs' terms.
inline std::string budget_explanation(std::size_t budget) {
  return "the program's limit is --rejection-budget " + std::to_string(budget) +
         " p0 draws: raise --rejection-budget, or choose a less rare target";
}

/// @brief Why `path` cannot be an output directory (created if missing), or "" when it can: the
/// path is not empty; an existing path is a directory in which a file can be created; a missing
/// one has an existing parent directory in which it can be created.
inline std::string output_directory_problem(const std::string& flag, const std::string& path) {
  namespace fs = std::filesystem;
  if (path.empty()) return flag + " must name a directory, got an empty path";
  std::error_code error;
  const fs::path p(path);
  const fs::file_status status = fs::status(p, error);
  fs::path probe_in = p;
  if (fs::exists(status)) {
    if (!fs::is_directory(status)) return flag + " must name a directory, got the file " + quote_value(path);
  } else {
    probe_in = p.has_parent_path() ? p.parent_path() : fs::path(".");
    if (!fs::is_directory(fs::status(probe_in, error)))
      return flag + " " + quote_value(path) + " cannot be created: " + quote_value(probe_in.string()) +
             " is not an existing directory";
  }
  const fs::path probe = tsmc::detail::temporary_path_for(probe_in / "probe");
  {
    std::ofstream out(probe, std::ios::binary);
    if (!out) return flag + " " + quote_value(path) + ": nothing can be written in " + quote_value(probe_in.string());
  }
  fs::remove(probe, error);
  return "";
}

/// @brief One example program: its name, its CLI11 options with their rules, and the error
/// handling around its work (see the file's description).
class program {
 public:
  /// @param name the program's name, the prefix of its messages
  /// @param description the first line of --help
  program(std::string name, std::string description) : name_(std::move(name)), app_(std::move(description), name_) {}

  program(const program&) = delete;
  program& operator=(const program&) = delete;

  /// @brief The CLI11 application, for flags and rules the helpers below do not cover.
  [[nodiscard]] CLI::App& app() noexcept { return app_; }
  /// @brief The program's name.
  [[nodiscard]] const std::string& name() const noexcept { return name_; }

  /// @brief A whole-number option in [min, max]; the value given replaces `value` after parse().
  CLI::Option* count(const std::string& flag, std::size_t& value, std::size_t min, std::size_t max,
                     const std::string& help) {
    std::string& text = texts_.emplace_back();
    CLI::Option* option = app_.add_option(flag, text, help)->type_name("N")->default_str(std::to_string(value));
    conversions_.push_back([&value, &text, option, flag, min, max] {
      if (option->count() == 0) return;
      std::uint64_t parsed = 0;
      if (!parse_whole_number(text, parsed) || parsed < min || parsed > max)
        throw option_error(flag + " must be a whole number from " + std::to_string(min) + " to " +
                           std::to_string(max) + ", got " + quote_value(text));
      value = static_cast<std::size_t>(parsed);
    });
    return option;
  }

  /// @brief A seed: any whole number from 0 to 2^64 - 1.
  CLI::Option* seed(const std::string& flag, std::uint64_t& value, const std::string& help) {
    std::string& text = texts_.emplace_back();
    CLI::Option* option = app_.add_option(flag, text, help)->type_name("N")->default_str(std::to_string(value));
    conversions_.push_back([&value, &text, option, flag] {
      if (option->count() == 0) return;
      if (!parse_whole_number(text, value))
        throw option_error(flag + " must be a whole number from 0 to " +
                           std::to_string(std::numeric_limits<std::uint64_t>::max()) + ", got " + quote_value(text));
    });
    return option;
  }

  /// @brief A finite number in the interval from `low` to `high`, each end open or closed.
  CLI::Option* number(const std::string& flag, double& value, double low, bool low_open, double high, bool high_open,
                      const std::string& help) {
    std::string& text = texts_.emplace_back();
    CLI::Option* option = app_.add_option(flag, text, help)->type_name("X")->default_str(shortest(value));
    conversions_.push_back([=, &value, &text] {
      if (option->count() == 0) return;
      double parsed = 0.0;
      const bool ok = parse_finite_number(text, parsed) && (low_open ? parsed > low : parsed >= low) &&
                      (high_open ? parsed < high : parsed <= high);
      if (!ok)
        throw option_error(flag + " must be a number in " + (low_open ? "(" : "[") + shortest(low) + ", " +
                           shortest(high) + (high_open ? ")" : "]") + ", got " + quote_value(text));
      value = parsed;
    });
    return option;
  }

  /// @brief A text that must not be empty (or blank); with `allowed`, one of those words.
  CLI::Option* text(const std::string& flag, std::string& value, const std::string& help,
                    std::vector<std::string> allowed = {}) {
    std::string& raw = texts_.emplace_back();
    CLI::Option* option = app_.add_option(flag, raw, help)->type_name("TEXT");
    if (!value.empty()) option->default_str(value);
    conversions_.push_back([&value, &raw, option, flag, allowed = std::move(allowed)] {
      if (option->count() == 0) return;
      if (raw.find_first_not_of(" \t\r\n") == std::string::npos)
        throw option_error(flag + " must not be empty, got " + quote_value(raw));
      if (!allowed.empty()) {
        bool found = false;
        std::string list;
        for (const std::string& a : allowed) {
          found = found || a == raw;
          list += (list.empty() ? "" : ", ") + a;
        }
        if (!found) throw option_error(flag + " must be one of " + list + ", got " + quote_value(raw));
      }
      value = raw;
    });
    return option;
  }

  /// @brief An input file: it must exist, be a regular file (not a directory) and be readable.
  CLI::Option* input(const std::string& flag, std::string& value, const std::string& help) {
    std::string& raw = texts_.emplace_back();
    CLI::Option* option = app_.add_option(flag, raw, help)->type_name("FILE");
    inputs_.emplace_back(flag, &value);
    conversions_.push_back([&value, &raw, option, flag] {
      if (option->count() == 0) return;
      namespace fs = std::filesystem;
      std::error_code error;
      const fs::file_status status = fs::status(raw, error);
      if (raw.empty()) throw option_error(flag + " must name a file, got an empty path");
      if (!fs::exists(status)) throw option_error(flag + " must name an existing file: " + quote_value(raw) + " does not exist");
      if (fs::is_directory(status))
        throw option_error(flag + " must name a file, got the directory " + quote_value(raw));
      if (!std::ifstream(raw, std::ios::binary)) throw option_error(flag + " " + quote_value(raw) + " cannot be read");
      value = raw;
    });
    return option;
  }

  /// @brief An output file: checked by parse() (output_path_problem; not an input, not another
  /// output), written by write_output after the work. A non-empty `value` is the default path,
  /// checked as well.
  CLI::Option* output(const std::string& flag, std::string& value, const std::string& help) {
    std::string& raw = texts_.emplace_back();
    CLI::Option* option = app_.add_option(flag, raw, help)->type_name("FILE");
    outputs_.emplace_back(flag, &value);
    if (!value.empty()) option->default_str(value);
    conversions_.push_back([&value, &raw, option, flag] {
      const std::string path = option->count() > 0 ? raw : value;  // a default output is checked too
      if (option->count() == 0 && path.empty()) return;
      const std::string problem = output_path_problem(path);
      if (!problem.empty()) throw option_error(flag + " " + problem);
      value = path;
    });
    return option;
  }

  /// @brief A rule between options checked by parse() after every value is converted (e.g.
  /// "--sweep-max needs --sweep-csv"): `rule()` returns "" when the options are fine, else the
  /// message (naming the options).
  void rule(std::function<std::string()> rule) { rules_.push_back(std::move(rule)); }

  /// @brief Parses and checks every option (see the file's description).
  /// @return nothing when the program may run; else its exit status (0 after --help, 2 after an
  /// error, reported on stderr as "<program>: error: <message>")
  [[nodiscard]] std::optional<int> parse(int argc, const char* const* argv) {
    try {
      app_.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
      return app_.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
      return app_.exit(e);
    } catch (const CLI::ParseError& e) {
      std::fprintf(stderr, "%s: error: %s\n(run %s --help for the options)\n", name_.c_str(), e.what(), name_.c_str());
      return exit_usage;
    }
    try {
      for (const auto& convert : conversions_) convert();
      check_files_distinct();
      for (const auto& r : rules_) {
        const std::string problem = r();
        if (!problem.empty()) throw option_error(problem);
      }
    } catch (const option_error& e) {
      std::fprintf(stderr, "%s: error: %s\n", name_.c_str(), e.what());
      return exit_usage;
    }
    return std::nullopt;
  }

  /// @brief Runs the program's work: its return value is the exit status; an option_error (a
  /// value found unusable once the model is loaded) is reported with status 2, any other
  /// exception as "<program>: error: <what>" with status 1. Registered explanations
  /// (explain) are appended to a message that contains their key.
  template <class Body>
  int run(Body&& body) noexcept {
    try {
      return std::forward<Body>(body)();
    } catch (const option_error& e) {
      return report(e.what(), exit_usage);
    } catch (const std::exception& e) {
      return report(e.what(), exit_failure);
    } catch (...) {
      return report("an unknown exception", exit_failure);
    }
  }

  /// @brief Adds an explanation to the messages that contain `key` (a library message names a C++
  /// field; the program names its option): e.g. explain("rejection_options::budget", ...).
  void explain(std::string key, std::function<std::string()> explanation) {
    explanations_.emplace_back(std::move(key), std::move(explanation));
  }

  /// @brief Writes an output file atomically through `writer(std::ostream&)` (nothing when the
  /// path is empty: the option was not given).
  /// @throw std::runtime_error naming the option and the file if the write fails (the previous
  /// file is left as it was, no temporary file stays)
  template <class Writer>
  void write_output(const std::string& flag, const std::string& path, Writer&& writer) const {
    if (path.empty()) return;
    try {
      tsmc::write_file_atomically(path, std::forward<Writer>(writer), name_ + " " + flag);
    } catch (const std::exception& e) {
      throw std::runtime_error(flag + " " + quote_value(path) + " could not be written: " + e.what());
    }
  }

 private:
  static std::string shortest(double x) {
    char buffer[64];
    const auto result = std::to_chars(buffer, buffer + sizeof buffer, x);
    return std::string(buffer, result.ptr);
  }

  /// Two outputs, or an output and an input, that name the same file would overwrite each other.
  void check_files_distinct() const {
    namespace fs = std::filesystem;
    auto same = [](const std::string& a, const std::string& b) {
      std::error_code error;
      if (fs::exists(a, error) && fs::exists(b, error)) return fs::equivalent(a, b, error);
      return fs::weakly_canonical(a, error) == fs::weakly_canonical(b, error);
    };
    for (std::size_t i = 0; i < outputs_.size(); ++i) {
      const auto& [flag, path] = outputs_[i];
      if (path->empty()) continue;
      for (std::size_t j = i + 1; j < outputs_.size(); ++j)
        if (!outputs_[j].second->empty() && same(*path, *outputs_[j].second))
          throw option_error(flag + " and " + outputs_[j].first + " name the same file " + quote_value(*path));
      for (const auto& [input_flag, input] : inputs_)
        if (!input->empty() && same(*path, *input))
          throw option_error(flag + " names the input of " + input_flag + " (" + quote_value(*path) +
                             "): it would be overwritten");
    }
  }

  int report(const std::string& what, int status) const noexcept {
    try {
      std::string message = what;
      for (const auto& [key, explanation] : explanations_)
        if (message.find(key) != std::string::npos) message += "; " + explanation();
      std::fflush(stdout);
      std::fprintf(stderr, "%s: error: %s\n", name_.c_str(), message.c_str());
    } catch (...) {
      std::fprintf(stderr, "%s: error\n", name_.c_str());
    }
    return status;
  }

  std::string name_;
  CLI::App app_;
  std::deque<std::string> texts_;  // the raw option values (stable addresses for CLI11)
  std::vector<std::function<void()>> conversions_;
  std::vector<std::pair<std::string, std::string*>> inputs_, outputs_;
  std::vector<std::function<std::string()>> rules_;
  std::vector<std::pair<std::string, std::function<std::string()>>> explanations_;
};

}  // namespace tsmc_examples
