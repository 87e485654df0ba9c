// The example programs' bad-option matrix (tag [cli]): every option of every program with zero,
// negative, huge, non-numeric, empty and unwritable values, impossible targets and conflicting
// options. Each row runs the program once and checks that it
//   - exits with the expected non-zero status (2: a usage error, 1: an error of the run), not by a
//     signal (no abort, no segfault);
//   - says "<program>: error:" and names the option at fault on stderr;
//   - creates no output file and leaves an existing one byte-identical (every row that can also
//     gets a new output path and an existing file as outputs, and the row's directory is compared
//     before and after);
//   - ends in under 2 seconds (it is killed at 2 s and the row fails).
// The programs are found in $TSMC_EXAMPLES_DIR, the model files of write_example_models in
// $TSMC_EXAMPLE_MODELS (the ctest entry cli.bad_options sets both).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

namespace fs = std::filesystem;

namespace {

/// One row: the program, its arguments ({dir}: the row's own directory, {existing}: a file in it
/// with known contents, {models}: the example model files), the text the error must contain (the
/// option), and the exit status.
struct row {
  std::string program;
  std::vector<std::string> args;
  std::string option;
  int status = 2;
};

/// The options of a program by kind (the matrix generates its value rows from these).
struct program_options {
  std::string program;
  std::vector<std::pair<std::string, std::size_t>> counts;  // option, its smallest value
  std::vector<std::string> counts_max;                      // the largest value + 1, same order
  std::vector<std::string> seeds;
  std::vector<std::string> numbers;                         // numbers in a bounded interval
  std::vector<std::string> outputs;
  std::vector<std::string> inputs;
  std::vector<std::string> texts;
};

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? std::string() : std::string(v);
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (std::size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size()))
    s.replace(at, from.size(), to);
  return s;
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

/// Every file under a directory with its contents.
std::map<std::string, std::string> snapshot(const fs::path& dir) {
  std::map<std::string, std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    files[fs::relative(e.path(), dir).string()] = e.is_regular_file() ? read_file(e.path()) : "<not a file>";
  return files;
}

struct outcome {
  bool exited = false;  // by exit(), not by a signal or the timeout
  int status = -1;
  int signal = 0;
  bool timed_out = false;
  double seconds = 0.0;
  std::string err;
};

/// Runs argv[0] with stdout to /dev/null and stderr to a file, killed after `limit` seconds;
/// `tmpdir`, if not empty, is its TMPDIR.
outcome run(const std::vector<std::string>& argv, const fs::path& err_file, double limit, const std::string& tmpdir = "") {
  outcome o;
  const auto start = std::chrono::steady_clock::now();
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int null = ::open("/dev/null", O_WRONLY);
    const int err = ::open(err_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (null < 0 || err < 0) ::_exit(125);
    ::dup2(null, 1);
    ::dup2(err, 2);
    if (!tmpdir.empty()) ::setenv("TMPDIR", tmpdir.c_str(), 1);
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  int status = 0;
  for (;;) {
    const pid_t done = ::waitpid(pid, &status, WNOHANG);
    if (done == pid) break;
    o.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (o.seconds > limit) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      o.timed_out = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  o.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!o.timed_out && WIFEXITED(status)) {
    o.exited = true;
    o.status = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    o.signal = WTERMSIG(status);
  }
  o.err = read_file(err_file);
  return o;
}

const std::string huge = "99999999999999999999";  // more than 2^64 - 1

/// The value rows of each option kind.
void add_value_rows(std::vector<row>& rows, const program_options& p, const std::vector<std::string>& base) {
  auto add = [&](const std::string& option, const std::string& value, int status = 2) {
    row r{p.program, base, option, status};
    r.args.push_back(option);
    r.args.push_back(value);
    rows.push_back(std::move(r));
  };
  for (std::size_t i = 0; i < p.counts.size(); ++i) {
    const auto& [option, min] = p.counts[i];
    if (min > 0) add(option, "0");
    for (const char* v : {"-1", "abc", "", "1.5", "1e3", " 4", "0x10"}) add(option, v);
    add(option, huge);
    add(option, p.counts_max[i]);
  }
  for (const std::string& option : p.seeds)
    for (const std::string& v : {std::string("-1"), std::string("abc"), std::string(""), huge, std::string("7.5")})
      add(option, v);
  for (const std::string& option : p.numbers)
    for (const char* v : {"nan", "inf", "-1", "abc", "", "1e999", "0"}) add(option, v);
  for (const std::string& option : p.outputs)
    for (const char* v : {"", "{dir}", "{dir}/no_such_directory/out.csv", "/dev/null"}) add(option, v);
  for (const std::string& option : p.inputs)
    for (const char* v : {"", "{dir}", "{dir}/no_such_file.bin"}) add(option, v);
  for (const std::string& option : p.texts)
    for (const char* v : {"", "   "}) add(option, v);
}

std::vector<row> matrix() {
  std::vector<row> rows;
  const program_options model_programs[] = {
      {"flagship",
       {{"--corpus", 100}, {"--horizon", 1}, {"--updates", 1}, {"--batch", 1}, {"--draws", 1},
        {"--bound-particles", 1}, {"--bound-runs", 1}, {"--kl-samples", 1}, {"--evaluate-every", 0},
        {"--rejection-budget", 1}},
       {"1000001", "1025", "10000001", "65537", "65537", "65537", "1000001", "1000001", "10000001", "1000000000001"},
       {"--seed"},
       {"--learning-rate"},
       {"--csv", "--json", "--history-csv", "--sweep-csv"},
       {"--arpa", "--llama2c", "--tokenizer", "--gguf"},
       {"--prompt"}},
      {"red_team",
       {{"--corpus", 100}, {"--horizon", 1}, {"--updates", 1}, {"--batch", 1}, {"--bound-particles", 1},
        {"--bound-runs", 1}, {"--kl-samples", 1}, {"--evaluate-every", 0}, {"--draws", 1}, {"--rejection-budget", 1}},
       {"1000001", "1025", "10000001", "65537", "65537", "1000001", "1000001", "10000001", "65537", "1000000000001"},
       {"--seed"},
       {"--learning-rate", "--threshold"},
       {"--csv", "--json", "--history-csv"},
       {"--arpa"},
       {"--prompt"}},
      {"sentiment",
       {{"--corpus", 100}, {"--horizon", 1}, {"--updates", 1}, {"--batch", 1}, {"--bound-particles", 1},
        {"--bound-runs", 1}, {"--kl-samples", 1}, {"--evaluate-every", 0}, {"--draws", 1}, {"--rejection-budget", 1}},
       {"1000001", "1025", "10000001", "65537", "65537", "1000001", "1000001", "10000001", "65537", "1000000000001"},
       {"--seed"},
       {"--learning-rate"},
       {"--csv", "--json", "--history-csv"},
       {"--llama2c"},
       {"--prompt", "--class"}},
      {"infilling",
       {{"--corpus", 100}, {"--horizon", 1}, {"--continuation", 1}, {"--updates", 1}, {"--batch", 1},
        {"--observations", 1}, {"--bound-particles", 1}, {"--bound-runs", 1}, {"--kl-samples", 1}},
       {"1000001", "1025", "1025", "10000001", "65537", "1000001", "65537", "1000001", "1000001"},
       {"--seed"},
       {"--learning-rate"},
       {"--csv", "--json"},
       {"--tokenizer"},
       {"--prompt"}},
      {"compare_objectives",
       {{"--updates", 1}, {"--batch", 1}, {"--bound-particles", 1}, {"--bound-runs", 1}},
       {"10000001", "65537", "65537", "1000001"},
       {},
       {"--learning-rate"},
       {"--csv"},
       {},
       {}},
      {"train_twist", {{"--updates", 1}}, {"10000001"}, {}, {}, {"--params"}, {}, {}},
      {"llama2c_story",
       {{"--particles", 1}, {"--horizon", 1}},
       {"65537", "1025"},
       {},
       {},
       {},
       {"--checkpoint"},
       {"--prompt", "--word"}},
      {"bounds_sweep", {{"--particles-max", 1}, {"--runs", 1}}, {"65537", "1000001"}, {"--seed"}, {}, {"--csv"}, {}, {}},
      {"write_example_models", {{"--corpus", 100}}, {"1000001"}, {"--seed"}, {}, {}, {}, {"--out"}},
      {"study",
       {{"--corpus", 100}, {"--horizon", 1}, {"--updates", 1}, {"--batch", 1}, {"--bound-runs", 1},
        {"--kl-samples", 1}, {"--log-z-draws", 1}},
       {"1000001", "65", "10000001", "65537", "1000001", "1000001", "1000000000001"},
       {"--seed"},
       {"--learning-rate"},
       {"--csv"},
       {},
       {"--methods"}},
      {"constrained",
       {{"--corpus", 100}, {"--horizon", 1}, {"--particles", 1}, {"--runs", 1}, {"--samples", 0},
        {"--rejection-budget", 1}},
       {"1000001", "1025", "65537", "1000001", "1000001", "1000000000001"},
       {"--seed"},
       {},
       {"--csv", "--json"},
       {"--arpa", "--llama2c", "--tokenizer", "--gguf"},
       {"--prompt", "--grammar"}},
  };
  for (const program_options& p : model_programs) add_value_rows(rows, p, {});

  const std::string models = "{models}";
  const std::vector<std::string> tiny = {"--llama2c", models + "/tiny.bin", "--tokenizer", models + "/tiny_tokenizer.bin"};
  auto add = [&](const std::string& program, std::vector<std::string> args, const std::string& option, int status = 2) {
    rows.push_back(row{program, std::move(args), option, status});
  };
  // Impossible targets.
  add("red_team", {"--threshold", "1.5"}, "--threshold");
  add("red_team", {"--threshold", "1"}, "--threshold");
  add("red_team", {"--threshold", "0"}, "--threshold");
  add("red_team", {"--threshold", "-0.5"}, "--threshold");
  // One bad value on an otherwise tiny run (under a second even unoptimised): a program that took
  // the value would finish, so the row fails on its exit status and message, not only on the
  // 2-second limit (a negative seed that wraps, "abc" read as 0, a count of 0 checked late by the
  // library, an unknown prompt word read as <unk>, an output that is not checked before the work,
  // an impossible threshold).
  {
    const std::vector<std::string> fast = {"--corpus", "100", "--updates", "1", "--batch", "1", "--bound-particles",
                                           "1", "--bound-runs", "1", "--horizon", "2"};
    auto with = [](std::vector<std::string> args, std::initializer_list<std::string> more) {
      args.insert(args.end(), more);
      return args;
    };
    const std::vector<std::string> trained =
        with(fast, {"--draws", "1", "--kl-samples", "1", "--rejection-budget", "1000"});
    for (const char* program : {"flagship", "red_team"}) {
      add(program, with(trained, {"--evaluate-every", "0", "--seed", "-1"}), "--seed");
      add(program, with(trained, {"--evaluate-every", "0", "--seed", "abc"}), "--seed");
      add(program, with(trained, {"--evaluate-every", "abc"}), "--evaluate-every");
      add(program, with(trained, {"--evaluate-every", "0", "--prompt", "Zebra"}), "--prompt");
      add(program, with(trained, {"--evaluate-every", "0", "--csv", "{dir}/no_such_directory/out.csv"}), "--csv");
    }
    add("flagship", with(fast, {"--evaluate-every", "0", "--kl-samples", "1", "--draws", "0"}), "--draws");
    add("flagship", with(fast, {"--evaluate-every", "0", "--draws", "1", "--kl-samples", "0"}), "--kl-samples");
    add("red_team", with(trained, {"--evaluate-every", "0", "--threshold", "1.5"}), "--threshold");
    add("infilling", with(fast, {"--kl-samples", "1", "--continuation", "1", "--observations", "0"}), "--observations");
  }
  // Conflicting and incomplete options.
  for (const char* program : {"flagship", "red_team", "sentiment", "infilling"}) {
    add(program, {"--arpa", models + "/builtin.arpa", "--llama2c", models + "/tiny.bin", "--tokenizer",
                  models + "/tiny_tokenizer.bin"},
        "--arpa");
    add(program, {"--llama2c", models + "/tiny.bin"}, "--tokenizer");
    add(program, {"--tokenizer", models + "/tiny_tokenizer.bin"}, "--llama2c");
    add(program, {"--arpa", "{existing}", "--csv", "{existing}"}, "--csv");
    add(program, {"--csv", "{dir}/same.out", "--json", "{dir}/same.out"}, "--json");
    add(program, {"--updates", "3", "--updates", "4"}, "--updates");
    add(program, {"--updatez", "3"}, "--updatez");
    add(program, {"--seed"}, "--seed");
    add(program, {"stray"}, "stray");
    add(program, {"--gguf", models + "/tiny_q8_0.gguf", "--llama2c", models + "/tiny.bin", "--tokenizer",
                  models + "/tiny_tokenizer.bin"},
        "--gguf");
    add(program, {"--gguf", models + "/tiny_q8_0.gguf", "--arpa", models + "/builtin.arpa"}, "--gguf");
    // Values that only the model can judge (checked once it is loaded, before any work).
    add(program, {"--corpus", "100", "--gguf", models + "/tiny.bin"}, "--gguf", 1);
    add(program, {"--corpus", "100", "--prompt", "Zebra"}, "--prompt");
    add(program, {"--corpus", "100", "--prompt", "the zebra and the yak"}, "--prompt");
    add(program, {"--corpus", "100", "--arpa", models + "/tiny_tokenizer.bin"}, "--arpa", 1);
    add(program, {"--corpus", "100", "--llama2c", models + "/tiny.bin", "--tokenizer", models + "/builtin.arpa"},
        "--tokenizer", 1);
    add(program, {"--corpus", "100", "--llama2c", models + "/tiny_tokenizer.bin", "--tokenizer",
                  models + "/tiny_tokenizer.bin"},
        "--llama2c", 1);
  }
  for (const char* program : {"flagship", "red_team", "sentiment"}) {
    add(program, {"--updates", "10", "--evaluate-every", "11"}, "--evaluate-every");
    std::vector<std::string> horizon = tiny;
    horizon.insert(horizon.end(), {"--corpus", "100", "--horizon", "100"});
    add(program, horizon, "--horizon");
  }
  {
    std::vector<std::string> horizon = tiny;
    horizon.insert(horizon.end(), {"--corpus", "100", "--horizon", "40", "--continuation", "40"});
    add("infilling", horizon, "--horizon");
  }
  add("flagship", {"--sweep-max", "4"}, "--sweep-max");
  add("flagship", {"--sweep-runs", "4"}, "--sweep-runs");
  add("flagship", {"--csv", "{dir}/a.csv", "--sweep-csv", "{dir}/a.csv"}, "--sweep-csv");
  add("flagship", {"--history-csv", "{existing}", "--json", "{existing}"}, "--json");
  // A rejection budget that cannot yield one exact sample: an error naming --rejection-budget.
  add("red_team", {"--corpus", "100", "--threshold", "0.99", "--rejection-budget", "1"}, "--rejection-budget", 1);
  add("flagship",
      {"--corpus", "100", "--rejection-budget", "1", "--updates", "1", "--bound-runs", "1", "--evaluate-every", "0"},
      "--rejection-budget", 1);
  add("sentiment", {"--corpus", "100", "--class", "happy"}, "--class");
  add("sentiment", {"--corpus", "100", "--class", "Positive"}, "--class");
  add("compare_objectives", {"--updates"}, "--updates");
  add("compare_objectives", {"--frobnicate"}, "--frobnicate");
  add("compare_objectives", {"--csv", "{dir}/x.csv", "--csv", "{dir}/y.csv"}, "--csv");
  add("train_twist", {"--updates", "3", "extra"}, "extra");
  add("train_twist", {"--params", "{dir}/no_such_directory/t.params"}, "--params");
  add("llama2c_story", {"--checkpoint", models + "/tiny.bin"}, "--tokenizer");
  add("llama2c_story", {"--tokenizer", models + "/tiny_tokenizer.bin"}, "--checkpoint");
  add("llama2c_story", {"--horizon", "1000"}, "--horizon");
  add("llama2c_story", {"--checkpoint", models + "/tiny_tokenizer.bin", "--tokenizer", models + "/tiny_tokenizer.bin"},
      "--checkpoint", 1);
  add("llama2c_story", {"--checkpoint", models + "/tiny.bin", "--tokenizer", models + "/builtin.arpa"}, "--tokenizer",
      1);
  add("llama2c_story", {"stories15M.bin", "tokenizer.bin"}, "stories15M.bin");
  add("bounds_sweep", {"--runs"}, "--runs");
  add("bounds_sweep", {"--csv", "{dir}/no_such_directory/x.csv"}, "--csv");
  // The converter: bad inputs, outputs and types; files that are not what the options say.
  {
    const std::string ckpt = models + "/tiny.bin";
    for (const char* v : {"", "{dir}", "{dir}/no_such_file.bin"})
      add("llama2c_to_gguf", {"--checkpoint", v, "--out", "{dir}/x.gguf"}, "--checkpoint");
    for (const char* v : {"", "{dir}", "{dir}/no_such_directory/x.gguf", "/dev/null"})
      add("llama2c_to_gguf", {"--checkpoint", ckpt, "--out", v}, "--out");
    add("llama2c_to_gguf", {"--checkpoint", ckpt, "--tokenizer", "{dir}", "--out", "{dir}/x.gguf"}, "--tokenizer");
    add("llama2c_to_gguf", {"--checkpoint", ckpt, "--out", "{dir}/x.gguf", "--type", "q4_k"}, "--type");
    add("llama2c_to_gguf", {"--checkpoint", ckpt, "--out", ckpt}, "--out");
    add("llama2c_to_gguf", {"--out", "{dir}/x.gguf"}, "--checkpoint");
    add("llama2c_to_gguf", {"--checkpoint", models + "/tiny_tokenizer.bin", "--out", "{dir}/x.gguf"}, "--checkpoint", 1);
    add("llama2c_to_gguf", {"--checkpoint", ckpt, "--tokenizer", models + "/builtin.arpa", "--out", "{dir}/x.gguf"},
        "--tokenizer", 1);
  }
  // study: the K list, the methods; constrained: one constraint at a time, a grammar that is not one.
  for (const char* v : {"0", "-1", "abc", "99999999999999999999"}) add("study", {"--particles", v}, "--particles");
  add("study", {"--methods", "CTL,XYZ"}, "--methods");
  add("study", {"--methods", "CTL,"}, "--methods");
  add("constrained", {"--grammar", "json", "--regex", "a"}, "--grammar");
  add("constrained", {"--grammar", "json", "--contains", "dog"}, "--grammar");
  add("constrained", {"--corpus", "100", "--grammar", "{dir}/no_such.gbnf"}, "--grammar");
  add("constrained", {"--corpus", "100", "--grammar", "{existing}"}, "--grammar");
  add("write_example_models", {"--out", "{existing}"}, "--out");
  add("write_example_models", {"--out", "{dir}/no_such_directory/models"}, "--out");
  add("write_example_models", {"--stories15m-shape=maybe"}, "--stories15m-shape");
  add("story_world", {"--corpus", "10"}, "--corpus");
  add("story_world", {"extra"}, "extra");
  add("quickstart", {"--particles", "0"}, "--particles");
  add("twist_contract", {"--verbose"}, "--verbose");
  return rows;
}

/// The outputs each program has, to be given on every row that leaves them free: the first gets a
/// new path (it must not be created), the second the existing file (it must stay as it was).
const std::map<std::string, std::vector<std::string>> program_outputs = {
    {"flagship", {"--csv", "--json", "--history-csv"}},
    {"red_team", {"--csv", "--json", "--history-csv"}},
    {"sentiment", {"--csv", "--json", "--history-csv"}},
    {"infilling", {"--csv", "--json"}},
    {"compare_objectives", {"--csv"}},
    {"bounds_sweep", {"--csv"}},
    {"train_twist", {"--params"}},
    {"study", {"--csv"}},
    {"constrained", {"--csv", "--json"}},
};

}  // namespace

TEST_CASE("every example program refuses every bad option before any work, names it, writes nothing", "[cli]") {
  const std::string programs = env("TSMC_EXAMPLES_DIR");
  const std::string models = env("TSMC_EXAMPLE_MODELS");
  REQUIRE_FALSE(programs.empty());
  REQUIRE_FALSE(models.empty());
  const fs::path root = fs::temp_directory_path() / ("tsmc_cli_matrix." + std::to_string(::getpid()));
  fs::remove_all(root);
  fs::create_directories(root);
  const std::string existing_text = "an earlier run's output: it must stay byte-identical\n";

  const std::vector<row> rows = matrix();
  CHECK(rows.size() >= 150);
  std::size_t index = 0, failed = 0;
  double slowest = 0.0;
  std::string slowest_row;
  for (const row& r : rows) {
    const fs::path dir = root / std::to_string(index++);
    fs::create_directories(dir);
    const fs::path existing = dir / "existing.out";
    std::ofstream(existing, std::ios::binary) << existing_text;
    auto expand = [&](const std::string& a) {
      return replace_all(replace_all(replace_all(a, "{dir}", dir.string()), "{existing}", existing.string()),
                         "{models}", models);
    };
    std::vector<std::string> argv{(fs::path(programs) / r.program).string()};
    // The free outputs first (a new path and the existing file), so that a row whose option
    // lacks its value ends the command line.
    if (const auto it = program_outputs.find(r.program); it != program_outputs.end()) {
      int given = 0;
      for (const std::string& option : it->second) {
        if (std::find(r.args.begin(), r.args.end(), option) != r.args.end()) continue;
        if (given == 0) argv.insert(argv.end(), {option, (dir / "created.out").string()});
        if (given == 1) argv.insert(argv.end(), {option, existing.string()});
        ++given;
      }
    }
    for (const std::string& a : r.args) argv.push_back(expand(a));
    const auto before = snapshot(dir);
    const fs::path err_file = root / ("stderr." + std::to_string(index));
    const outcome o = run(argv, err_file, 2.0);
    fs::remove(err_file);
    const auto after = snapshot(dir);

    std::string command;
    for (const std::string& a : argv) command += (command.empty() ? "" : " ") + ("'" + a + "'");
    INFO("row " << index << ": " << command << "\nstderr: " << o.err);
    const bool ok_exit = o.exited && o.status == r.status;
    const bool ok_message = o.err.find(r.program + ": error:") != std::string::npos &&
                            o.err.find(expand(r.option)) != std::string::npos;
    const bool ok_files = before == after;
    const bool ok_time = !o.timed_out && o.seconds < 2.0;
    CHECK(ok_exit);
    CHECK(ok_message);
    CHECK(ok_files);
    CHECK(ok_time);
    if (!(ok_exit && ok_message && ok_files && ok_time)) {
      ++failed;
      UNSCOPED_INFO("status " << o.status << " (expected " << r.status << "), signal " << o.signal << ", "
                              << o.seconds << " s");
    }
    if (o.seconds > slowest) {
      slowest = o.seconds;
      slowest_row = command;
    }
  }
  WARN(rows.size() << " rows, " << failed << " failed; slowest " << slowest << " s: " << slowest_row);
  fs::remove_all(root);
}

TEST_CASE("llama2c_story's demo files live in a fresh directory of their own, removed at the end", "[cli]") {
  const std::string programs = env("TSMC_EXAMPLES_DIR");
  REQUIRE_FALSE(programs.empty());
  const fs::path tmp = fs::temp_directory_path() / ("tsmc_cli_tmpdir." + std::to_string(::getpid()));
  fs::remove_all(tmp);
  // What another run would have there: the fixed path the program used to write and delete.
  fs::create_directories(tmp / "tsmc_llama2c_story_demo");
  std::ofstream(tmp / "tsmc_llama2c_story_demo" / "model.bin") << "another run's file";
  const auto before = snapshot(tmp);
  const fs::path err_file = tmp.parent_path() / ("tsmc_cli_tmpdir_err." + std::to_string(::getpid()));
  const outcome o = run({(fs::path(programs) / "llama2c_story").string(), "--particles", "2", "--horizon", "4"},
                        err_file, 20.0, tmp.string());
  INFO("stderr: " << o.err);
  CHECK(o.exited);
  CHECK(o.status == 0);
  CHECK(snapshot(tmp) == before);  // nothing of the other run touched, nothing of this run left
  fs::remove(err_file);
  fs::remove_all(tmp);
}
