#pragma once
/// @file
/// @brief Text helpers shared by the model and classifier file formats (ARPA, the classifier's
/// text format): numbers written in the shortest form that reads back as the same double, whole
/// field parsing, whitespace splitting and a line reader that counts lines for error messages.

#include <cctype>
#include <charconv>
#include <cstddef>
#include <istream>
#include <limits>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace tsmc::detail {

/// Shortest text that reads back as the same double ("-inf" for -infinity).
inline std::string format_double(double x) {
  if (x == -std::numeric_limits<double>::infinity()) return "-inf";
  char buffer[64];
  const auto result = std::to_chars(buffer, buffer + sizeof buffer, x);
  return std::string(buffer, result.ptr);
}

/// The text without leading and trailing whitespace (CR included).
[[nodiscard]] inline std::string_view trim_text(std::string_view t) {
  const auto space = [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; };
  while (!t.empty() && space(t.front())) t.remove_prefix(1);
  while (!t.empty() && space(t.back())) t.remove_suffix(1);
  return t;
}

/// Whitespace-separated fields.
[[nodiscard]] inline std::vector<std::string_view> split_fields(std::string_view t) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < t.size()) {
    while (i < t.size() && std::isspace(static_cast<unsigned char>(t[i]))) ++i;
    const std::size_t start = i;
    while (i < t.size() && !std::isspace(static_cast<unsigned char>(t[i]))) ++i;
    if (i > start) out.push_back(t.substr(start, i - start));
  }
  return out;
}

/// A whole field as a double (a leading '+' allowed; "inf", "nan" parse), or false.
[[nodiscard]] inline bool parse_double(std::string_view field, double& value) {
  if (!field.empty() && field.front() == '+') field.remove_prefix(1);
  if (field.empty()) return false;
  const auto result = std::from_chars(field.data(), field.data() + field.size(), value);
  return result.ec == std::errc() && result.ptr == field.data() + field.size();
}

/// A whole field as a non-negative integer, or false.
[[nodiscard]] inline bool parse_count(std::string_view field, std::size_t& value) {
  if (field.empty()) return false;
  const auto result = std::from_chars(field.data(), field.data() + field.size(), value);
  return result.ec == std::errc() && result.ptr == field.data() + field.size();
}

/// Reads lines and remembers the line number, with one line of look-ahead.
class text_lines {
 public:
  explicit text_lines(std::istream& in) : in_(&in) {}
  /// The next line (trimmed); false at the end of the file.
  bool next(std::string_view& out) {
    if (pushed_back_) {
      pushed_back_ = false;
      out = trim_text(line_);
      return true;
    }
    if (!std::getline(*in_, line_)) return false;
    ++number_;
    out = trim_text(line_);
    return true;
  }
  /// The next non-blank line; false at the end of the file.
  bool next_nonblank(std::string_view& out) {
    while (next(out))
      if (!out.empty()) return true;
    return false;
  }
  void push_back() { pushed_back_ = true; }
  [[nodiscard]] std::size_t number() const noexcept { return number_; }

 private:
  std::istream* in_;
  std::string line_;
  std::size_t number_ = 0;
  bool pushed_back_ = false;
};

}  // namespace tsmc::detail
