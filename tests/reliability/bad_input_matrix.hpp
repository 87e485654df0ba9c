#pragma once
// The bad-input matrix (issue 19, item 3): a table of rows "entry point x bad input -> expected
// behaviour", registered by the tests/reliability/bad_input_matrix*_test.cpp files (one per
// area) and checked, row by row, by the test case "bad-input matrix" in bad_input_matrix_test.cpp.
// With TSMC_PRINT_MATRIX=1 in the environment that test also prints the table as markdown: the
// matrix in docs/reliability.md is generated from it (scripts/update-reliability-matrix.sh).
//
// A row either expects an exception (tsmc::invalid_argument or tsmc::runtime_error) whose
// message starts with "tsmc::<function>:" (the exact function that was called, not a helper it
// delegated to) and contains the named argument or field; or a documented result (log Zhat =
// -inf, an ESS of 0, ...) that a predicate checks.

#include <tsmc/core/error.hpp>

#include <cstddef>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <utility>
#include <system_error>
#include <unistd.h>
#include <vector>

namespace bad_input {

/// A scratch directory for the rows' files, created on first use and removed at exit.
class scratch_directory {
 public:
  scratch_directory()
      : path_(std::filesystem::temp_directory_path() / ("tsmc_matrix_" + std::to_string(::getpid()))) {
    std::filesystem::create_directories(path_);
  }
  scratch_directory(const scratch_directory&) = delete;
  scratch_directory& operator=(const scratch_directory&) = delete;
  ~scratch_directory() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  [[nodiscard]] std::filesystem::path file(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

/// The file `name` in the matrix's scratch directory.
[[nodiscard]] inline std::filesystem::path scratch(const std::string& name) {
  static scratch_directory directory;
  return directory.file(name);
}

/// Writes bytes to a file (replacing it).
inline void write_bytes(const std::filesystem::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

/// A file's bytes.
[[nodiscard]] inline std::string read_bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

/// The bad inputs of the matrix's columns.
enum class input {
  empty,       ///< an empty range, string, file or sequence
  zero,        ///< a count, size or scale of 0 (or all weights zero)
  negative,    ///< a negative number or token id
  nan,         ///< NaN
  pos_inf,     ///< +inf
  neg_inf,     ///< -inf
  too_large,   ///< beyond a documented maximum (a token >= V, a probability > 1, a size past a limit)
  mismatched,  ///< sizes or shapes that do not match, or an object of another problem
  wrong_file,  ///< a missing file, a file of another format, version or shape, or a corrupted one
  truncated,   ///< a file cut short
  misuse,      ///< a call out of order (before start, a step never recorded)
};

/// The column heading of an input.
[[nodiscard]] inline const char* input_name(input i) {
  switch (i) {
    case input::empty: return "empty";
    case input::zero: return "zero";
    case input::negative: return "negative";
    case input::nan: return "NaN";
    case input::pos_inf: return "+inf";
    case input::neg_inf: return "-inf";
    case input::too_large: return "too large";
    case input::mismatched: return "mismatched";
    case input::wrong_file: return "wrong file";
    case input::truncated: return "truncated file";
    case input::misuse: return "out of order";
  }
  return "?";
}

/// What a row expects.
enum class outcome { invalid_argument, runtime_error, result };

/// One row of the matrix.
struct row {
  std::string area;        ///< core, resampling, sampler, bounds, learning, models, potentials, twists, testing
  std::string entry;       ///< the public entry point, as documented ("tsmc::logsumexp")
  input kind = input::empty;
  std::string detail;      ///< the input, e.g. "values = {0, NaN}"
  outcome expected = outcome::invalid_argument;
  std::string function;    ///< the function the message must start with (after "tsmc::"); empty for results
  std::string argument;    ///< a fragment the message must contain (the argument or field and its value)
  std::function<void()> call;     ///< makes the call (throwing rows)
  std::function<bool()> holds;    ///< checks the documented result (result rows)
  std::string result;             ///< the documented result, for the table (result rows)
};

/// Every row registered so far (function-local static: safe from any translation unit's
/// static initialisers).
[[nodiscard]] inline std::vector<row>& registry() {
  static std::vector<row> rows;
  return rows;
}

/// Builds the rows of one area, registered at static initialisation: `static bad_input::area
/// core("core", [](bad_input::area& a) { a.throws(...); ... });`.
class area {
 public:
  template <class Fill>
  area(std::string name, Fill&& fill) : name_(std::move(name)) {
    fill(*this);
  }

  /// A row expecting tsmc::invalid_argument "tsmc::<function>: ...<argument>...".
  template <class F>
  void invalid(std::string entry, input kind, std::string detail, std::string function, std::string argument,
               F&& call) {
    add(std::move(entry), kind, std::move(detail), outcome::invalid_argument, std::move(function),
        std::move(argument), std::forward<F>(call));
  }

  /// A row expecting tsmc::runtime_error "tsmc::<function>: ...<argument>...".
  template <class F>
  void runtime(std::string entry, input kind, std::string detail, std::string function, std::string argument,
               F&& call) {
    add(std::move(entry), kind, std::move(detail), outcome::runtime_error, std::move(function), std::move(argument),
        std::forward<F>(call));
  }

  /// A row whose documented behaviour is a result, not an exception: `holds` checks it.
  template <class F>
  void result(std::string entry, input kind, std::string detail, std::string documented, F&& holds) {
    row r;
    r.area = name_;
    r.entry = std::move(entry);
    r.kind = kind;
    r.detail = std::move(detail);
    r.expected = outcome::result;
    r.result = std::move(documented);
    r.holds = std::forward<F>(holds);
    registry().push_back(std::move(r));
  }

 private:
  template <class F>
  void add(std::string entry, input kind, std::string detail, outcome expected, std::string function,
           std::string argument, F&& call) {
    row r;
    r.area = name_;
    r.entry = std::move(entry);
    r.kind = kind;
    r.detail = std::move(detail);
    r.expected = expected;
    r.function = std::move(function);
    r.argument = std::move(argument);
    r.call = std::forward<F>(call);
    registry().push_back(std::move(r));
  }

  std::string name_;
};

}  // namespace bad_input
