// Writes GGUF files with tsmc's writer (every metadata value type, nested arrays, versions 2 and
// 3, alignments 32 and 64, a converted llama2.c model with its tokenizer in F32, F16, BF16 and
// Q8_0, a qwen2 model) into a directory, and beside each file a JSON description of what tsmc's
// reader reads from it: version, counts, every key with its type, array element type and value,
// every tensor's name, shape, type and offset, and the data section's offset. gguf_peer.mjs
// parses the same files with the npm package @huggingface/gguf and compares.
//   gguf_peer_files <dir>
#include <tsmc/models/gguf.hpp>
#include <tsmc/models/gguf_llama2c.hpp>
#include <tsmc/models/llama2c_checkpoint.hpp>
#include <tsmc/models/llama2c_tokenizer.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace {

namespace gguf = tsmc::gguf;

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", u);
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string number(gguf::value_type t, double real, std::int64_t integer, std::uint64_t unsigned_integer) {
  char buf[64];
  switch (t) {
    case gguf::value_type::float32: std::snprintf(buf, sizeof buf, "%.9g", real); return buf;
    case gguf::value_type::float64: std::snprintf(buf, sizeof buf, "%.17g", real); return buf;
    case gguf::value_type::boolean: return unsigned_integer != 0 ? "true" : "false";
    case gguf::value_type::uint64: return "\"" + std::to_string(unsigned_integer) + "\"";  // BigInt in JS
    case gguf::value_type::int64: return "\"" + std::to_string(integer) + "\"";
    default: return std::to_string(integer);
  }
}

std::string json_value(const gguf::value& v) {
  if (v.type == gguf::value_type::string) return json_string(v.text);
  if (v.type != gguf::value_type::array) return number(v.type, v.real, v.integer, v.unsigned_integer);
  std::string out = "[";
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (i) out += ",";
    if (v.element_type == gguf::value_type::string)
      out += json_string(v.strings[i]);
    else if (v.element_type == gguf::value_type::array)
      out += json_value(v.items[i]);
    else
      out += number(v.element_type, v.numbers[i], v.integers[i], static_cast<std::uint64_t>(v.integers[i]));
  }
  return out + "]";
}

/// Writes `c` to dir/name.gguf and what tsmc reads back to dir/name.json.
void emit(const std::filesystem::path& dir, const std::string& name, const gguf::contents& c) {
  const auto path = dir / (name + ".gguf");
  gguf::write_file(path, c);
  const gguf::file f(path);
  std::string j = "{\"version\":" + std::to_string(f.version()) + ",\"tensor_count\":" +
                  std::to_string(f.tensors().size()) + ",\"kv_count\":" + std::to_string(f.metadata().size()) +
                  ",\"data_offset\":\"" + std::to_string(f.data_offset()) + "\",\"metadata\":[";
  for (std::size_t i = 0; i < f.metadata().size(); ++i) {
    const auto& [key, v] = f.metadata()[i];
    j += (i ? ",{" : "{") + std::string("\"key\":") + json_string(key) +
         ",\"type\":" + std::to_string(static_cast<unsigned>(v.type));
    if (v.type == gguf::value_type::array) j += ",\"subType\":" + std::to_string(static_cast<unsigned>(v.element_type));
    j += ",\"value\":" + json_value(v) + "}";
  }
  j += "],\"tensors\":[";
  for (std::size_t i = 0; i < f.tensors().size(); ++i) {
    const gguf::tensor_info& t = f.tensors()[i];
    j += (i ? ",{" : "{") + std::string("\"name\":") + json_string(t.name) + ",\"shape\":[";
    for (std::size_t d = 0; d < t.dims.size(); ++d) j += (d ? ",\"" : "\"") + std::to_string(t.dims[d]) + "\"";
    j += "],\"type\":" + std::to_string(t.type) + ",\"offset\":\"" + std::to_string(t.offset) + "\"}";
  }
  j += "]}\n";
  std::ofstream(dir / (name + ".json")) << j;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: gguf_peer_files <dir>\n");
    return 2;
  }
  const std::filesystem::path dir = argv[1];
  std::filesystem::create_directories(dir);
  using vt = gguf::value_type;
  // 1. Every value type, in versions 2 and 3 and alignments 32 and 64.
  for (const std::uint32_t version : {2u, 3u})
    for (const std::uint32_t alignment : {32u, 64u}) {
      gguf::contents c;
      c.version = version;
      c.alignment = alignment;
      auto scalar = [](vt t, double real, std::int64_t integer) {
        gguf::value v;
        v.type = t;
        v.real = real;
        v.integer = integer;
        v.unsigned_integer = static_cast<std::uint64_t>(integer);
        return v;
      };
      c.metadata.emplace_back("general.architecture", gguf::str("llama"));
      c.metadata.emplace_back("general.alignment", gguf::u32(alignment));
      c.metadata.emplace_back("test.uint8", scalar(vt::uint8, 0, 255));
      c.metadata.emplace_back("test.int8", scalar(vt::int8, 0, -128));
      c.metadata.emplace_back("test.uint16", scalar(vt::uint16, 0, 65535));
      c.metadata.emplace_back("test.int16", scalar(vt::int16, 0, -32768));
      c.metadata.emplace_back("test.uint32", scalar(vt::uint32, 0, 4294967295));
      c.metadata.emplace_back("test.int32", scalar(vt::int32, 0, -2147483647 - 1));
      c.metadata.emplace_back("test.float32", gguf::f32(3.14159274f));
      c.metadata.emplace_back("test.float32_tiny", gguf::f32(1e-40f));
      c.metadata.emplace_back("test.bool_true", gguf::boolean(true));
      c.metadata.emplace_back("test.bool_false", gguf::boolean(false));
      c.metadata.emplace_back("test.string", gguf::str("h\xC3\xA9llo \"w\\orld\"\n\t\xE2\x96\x81\xF0\x9F\x98\x80"));
      c.metadata.emplace_back("test.empty_string", gguf::str(""));
      c.metadata.emplace_back("test.uint64", gguf::u64(18446744073709551615ull));
      c.metadata.emplace_back("test.int64", scalar(vt::int64, 0, -9223372036854775807ll - 1));
      c.metadata.emplace_back("test.float64", scalar(vt::float64, 0.1, 0));
      c.metadata.emplace_back("test.strings", gguf::strings({"<s>", "", "\xE2\x96\x81the", "<0x0A>"}));
      c.metadata.emplace_back("test.empty_array", gguf::numbers(vt::int32, {}));
      for (const vt t : {vt::uint8, vt::int8, vt::uint16, vt::int16, vt::uint32, vt::int32, vt::float32, vt::boolean,
                         vt::uint64, vt::int64, vt::float64})
        c.metadata.emplace_back("test.array." + gguf::value_type_name(t),
                                gguf::numbers(t, t == vt::boolean ? std::vector<double>{1, 0, 0, 1}
                                                                  : std::vector<double>{0, 1, 100, 7}));
      gguf::value nested;
      nested.type = vt::array;
      nested.element_type = vt::array;
      nested.items = {gguf::numbers(vt::int32, {1, -2}), gguf::strings({"a", "b"}), gguf::numbers(vt::float32, {0.5})};
      c.metadata.emplace_back("test.nested", nested);
      std::vector<float> w(64 * 3);
      for (std::size_t i = 0; i < w.size(); ++i) w[i] = static_cast<float>(i) * 0.25f - 5.0f;
      c.tensors.push_back(gguf::encode_tensor("t.f32", {64, 3}, 0, w));
      c.tensors.push_back(gguf::encode_tensor("t.f16", {64, 3}, 1, w));
      c.tensors.push_back(gguf::encode_tensor("t.bf16", {32, 2, 3}, 30, w));
      c.tensors.push_back(gguf::encode_tensor("t.q8_0", {32, 1, 2, 3}, 8, w));
      c.tensors.push_back(gguf::encode_tensor("t.one", {1}, 0, std::vector<float>{1.0f}));
      emit(dir, "types_v" + std::to_string(version) + "_a" + std::to_string(alignment), c);
    }
  // 2. A llama2.c checkpoint and tokenizer converted, in each type; a qwen2 model.
  const tsmc::llama2c::config cfg{.dim = 64, .hidden_dim = 96, .n_layers = 2, .n_heads = 4, .n_kv_heads = 2,
                                  .vocab_size = 300, .seq_len = 32, .shared_classifier = false};
  tsmc::llama2c::make_random_checkpoint(dir / "model.bin", cfg, 3);
  std::vector<std::string> pieces;
  std::vector<float> scores;
  for (int i = 0; i < 300; ++i) {
    static constexpr char hex[] = "0123456789ABCDEF";
    pieces.push_back(i == 0 ? "<unk>" : i == 1 ? "\n<s>\n" : i == 2 ? "\n</s>\n"
                     : i < 259 ? std::string("<0x") + hex[(i - 3) / 16] + hex[(i - 3) % 16] + ">"
                               : " w" + std::to_string(i));
    scores.push_back(-static_cast<float>(i));
  }
  tsmc::llama2c::write_tokenizer(dir / "tokenizer.bin", pieces, scores);
  const tsmc::llama2c::checkpoint ckpt(dir / "model.bin");
  const tsmc::llama2c::tokenizer tok(dir / "tokenizer.bin", 300);
  for (const auto& [type, name] : {std::pair<std::uint32_t, const char*>{0, "f32"}, {1, "f16"}, {30, "bf16"}, {8, "q8_0"}})
    emit(dir, std::string("llama2c_") + name, gguf::llama2c_contents(ckpt, &tok, type));
  emit(dir, "qwen2", gguf::random_model(cfg, 5, {.architecture = "qwen2", .type = 8}));
  std::printf("wrote the peer files in %s\n", dir.string().c_str());
  return 0;
}
