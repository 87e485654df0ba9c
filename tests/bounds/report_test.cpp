// Reports: markdown rows, JSON with escaping and non-finite numbers, CSV; the sweep over K.
#include <catch2/catch.hpp>

#include <tsmc/bounds/report.hpp>
#include <tsmc/bounds/sweep.hpp>
#include <tsmc/core/random.hpp>
#include <tsmc/testing/enumeration.hpp>
#include <tsmc/testing/toy_model.hpp>
#include <tsmc/testing/toy_potentials.hpp>
#include <tsmc/twists/no_twist.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

using namespace tsmc;
using namespace tsmc::testing;

namespace {

/// Counts the cell separators of a markdown row: '|' not preceded by a backslash.
std::size_t separators(const std::string& row) {
  std::size_t n = 0;
  for (std::size_t i = 0; i < row.size(); ++i)
    if (row[i] == '|' && (i == 0 || row[i - 1] != '\\')) ++n;
  return n;
}

/// Splits a CSV line on commas outside quotes.
std::vector<std::string> csv_fields(const std::string& line) {
  std::vector<std::string> out(1);
  bool quoted = false;
  for (std::size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (c == '"') {
      if (quoted && i + 1 < line.size() && line[i + 1] == '"') {
        out.back() += '"';
        ++i;
      } else {
        quoted = !quoted;
      }
    } else if (c == ',' && !quoted) {
      out.emplace_back();
    } else {
      out.back() += c;
    }
  }
  return out;
}

bounds_report sample_report() {
  log_z_bounds b;
  b.lower = {-1.25, 0.125, -1.495, -1.005, 100};
  b.upper = {-0.75, 0.0625, -0.8725, -0.6275, 100};
  b.lower_ess = 12.5;
  b.seconds = 0.5;
  return make_report("twisted SMC | \"CTL\", v2", 16, systematic{}, ess_below(0.5), b);
}

}  // namespace

TEST_CASE("json_escape escapes quotes, backslashes and control characters", "[bounds]") {
  REQUIRE(json_escape("plain text") == "plain text");
  REQUIRE(json_escape("a \"quoted\" \\ path") == "a \\\"quoted\\\" \\\\ path");
  REQUIRE(json_escape("line\nbreak\ttab\r\b\f") == "line\\nbreak\\ttab\\r\\b\\f");
  REQUIRE(json_escape(std::string("nul\0one\x1f", 8)) == "nul\\u0000one\\u001f");
  REQUIRE(json_escape("sigma \xcf\x83") == "sigma \xcf\x83");  // UTF-8 passes through
}

TEST_CASE("a bounds report prints as a markdown row and serialises to JSON and CSV", "[bounds]") {
  bounds_report r = sample_report();
  REQUIRE(r.scheme == "systematic/ess<0.5");
  REQUIRE(r.particles == 16);
  REQUIRE(r.runs == 100);
  REQUIRE(r.ess == 12.5);

  const std::string header = bounds_report::markdown_header();
  const std::string first_line = header.substr(0, header.find('\n'));
  const std::string rule = header.substr(header.find('\n') + 1);
  REQUIRE(separators(first_line) == 12);  // 11 columns
  REQUIRE(separators(rule) == 12);
  const std::string row = r.markdown_row();
  INFO(row);
  REQUIRE(separators(row) == 12);
  REQUIRE(row.find("twisted SMC \\| \"CTL\", v2") != std::string::npos);
  REQUIRE(row.find("| 16 | systematic/ess<0.5 | -1.2500 +- 0.1250 | -0.7500 +- 0.0625 | 0.5000 | - | - | 12.5 | 100 |") !=
          std::string::npos);

  const std::string json = r.to_json();
  INFO(json);
  REQUIRE(json.find("\"method\": \"twisted SMC | \\\"CTL\\\", v2\"") != std::string::npos);
  REQUIRE(json.find("\"particles\": 16") != std::string::npos);
  REQUIRE(json.find("\"lower\": {\"mean\": -1.25, \"standard_error\": 0.125, \"ci95\": [-1.4950000000000001, -1.0049999999999999], \"runs\": 100, \"zero_fraction\": 0}") !=
          std::string::npos);
  REQUIRE(json.find("\"gap\": 0.5") != std::string::npos);
  REQUIRE(json.find("\"kl_q_sigma\": null") != std::string::npos);
  REQUIRE(json.front() == '{');
  REQUIRE(json.back() == '}');

  // With KLs and non-finite values.
  r.bounds.lower = {neg_inf, std::numeric_limits<double>::quiet_NaN(), neg_inf, neg_inf, 100};
  r.kl = combine_kl(bound_estimate{-1.0, 0.01, -1.02, -0.98, 50}, bound_estimate{-0.5, 0.02, -0.54, -0.46, 50},
                    log_z_reference{-0.8, -0.9, -0.7});
  REQUIRE(r.kl->q_sigma.value == Approx(0.2));
  REQUIRE(r.kl->q_sigma.low == Approx(0.1));
  REQUIRE(r.kl->q_sigma.high == Approx(0.3));
  REQUIRE(r.kl->sigma_q.value == Approx(0.3));
  REQUIRE(r.kl->sigma_q.low == Approx(0.2));
  REQUIRE(r.kl->sigma_q.high == Approx(0.4));
  const std::string json2 = r.to_json();
  INFO(json2);
  REQUIRE(json2.find("\"lower\": {\"mean\": \"-inf\", \"standard_error\": \"nan\"") != std::string::npos);
  REQUIRE(json2.find("\"gap\": \"inf\"") != std::string::npos);
  REQUIRE(json2.find("\"kl_q_sigma\": {\"value\": 0.") != std::string::npos);
  REQUIRE(json2.find("\"log_z\": -0.8") != std::string::npos);
  const std::string row2 = r.markdown_row();
  REQUIRE(row2.find("-inf +- nan") != std::string::npos);
  REQUIRE(row2.find("| 0.2000 | 0.3000 |") != std::string::npos);

  const auto header_fields = csv_fields(bounds_report::csv_header());
  const auto row_fields = csv_fields(r.csv_row());
  REQUIRE(header_fields.size() == 19);
  REQUIRE(row_fields.size() == header_fields.size());
  REQUIRE(row_fields[0] == "twisted SMC | \"CTL\", v2");
  REQUIRE(row_fields[3] == "-inf");
  REQUIRE(row_fields[12] == "0.19999999999999996");
  r.kl.reset();
  REQUIRE(csv_fields(r.csv_row()).size() == header_fields.size());
}

TEST_CASE("scheme and trigger names", "[bounds]") {
  REQUIRE(resampling_name(multinomial{}, always) == "multinomial/always");
  REQUIRE(resampling_name(residual{}, never) == "residual/never");
  REQUIRE(resampling_name(stratified{}, ess_below(0.25)) == "stratified/ess<0.25");
  REQUIRE(scheme_name(ssp{}) == "ssp");
  REQUIRE(scheme_name(killing{}) == "killing");
  REQUIRE(scheme_name(0) == "custom");
}

TEST_CASE("particle_counts gives 1, 4, 16, ... up to a maximum", "[bounds]") {
  REQUIRE(particle_counts(256) == std::vector<std::size_t>{1, 4, 16, 64, 256});
  REQUIRE(particle_counts(255) == std::vector<std::size_t>{1, 4, 16, 64});
  REQUIRE(particle_counts(1) == std::vector<std::size_t>{1});
  REQUIRE(particle_counts(10, 2) == std::vector<std::size_t>{1, 2, 4, 8});
  REQUIRE(particle_counts(std::numeric_limits<std::size_t>::max(), 2).size() == 64);
  REQUIRE_THROWS_AS(particle_counts(0), tsmc::invalid_argument);
  REQUIRE_THROWS_AS(particle_counts(8, 1), tsmc::invalid_argument);
}

TEST_CASE("sweep_particles returns one report per K and writes CSV", "[bounds]") {
  const token_sequence prompt{1, 0};
  const toy_problem spec{3, 3, prompt, token(2)};
  tabular_model model(3, 5, 1.0);
  random_potential potential(6, 1.0);
  const exact_solution solution = enumerate(spec, model, potential);
  auto exact = enumeration_exact_sampler(solution);
  no_twist none;
  default_engine rng(1);
  const smc_options base{.horizon = 3, .proposal = proposal_type::base, .end_token = 2};
  const sweep_options options{.particles = {1, 4, 16}, .runs = 30, .method = "bootstrap, SIS"};
  const std::vector<bounds_report> reports =
      sweep_particles(model, none, potential, base, multinomial{}, never, prompt, exact, options, rng);
  REQUIRE(reports.size() == 3);
  for (std::size_t i = 0; i < reports.size(); ++i) {
    REQUIRE(reports[i].particles == options.particles[i]);
    REQUIRE(reports[i].runs == 30);
    REQUIRE(reports[i].scheme == "multinomial/never");
    REQUIRE(reports[i].method == "bootstrap, SIS");
    REQUIRE(std::isfinite(reports[i].bounds.lower.mean));
    REQUIRE(reports[i].ess > 0.0);
  }
  const std::string csv = to_csv(reports);
  std::istringstream lines(csv);
  std::string line;
  std::size_t count = 0;
  while (std::getline(lines, line)) {
    REQUIRE(csv_fields(line).size() == 19);
    if (count > 0) REQUIRE(line.rfind("\"bootstrap, SIS\",", 0) == 0);
    ++count;
  }
  REQUIRE(count == 4);
  const std::string table = markdown_table(reports);
  REQUIRE(std::count(table.begin(), table.end(), '\n') == 5);

  const std::string path = "bounds_report_test.csv";
  write_csv_file(path, reports);
  std::ifstream file(path);
  std::stringstream contents;
  contents << file.rdbuf();
  REQUIRE(contents.str() == csv);
  std::remove(path.c_str());
  REQUIRE_THROWS_AS(write_csv_file("/nonexistent-directory/x.csv", reports), tsmc::runtime_error);

  sweep_options bad = options;
  bad.particles = {4, 0};
  REQUIRE_THROWS_AS(sweep_particles(model, none, potential, base, multinomial{}, never, prompt, exact, bad, rng),
                    tsmc::invalid_argument);
  bad.particles.clear();
  REQUIRE_THROWS_AS(sweep_particles(model, none, potential, base, multinomial{}, never, prompt, exact, bad, rng),
                    tsmc::invalid_argument);
}
