// GGUF: the reader and writer (every value type, versions 2 and 3, bad files), the number
// formats (half, bfloat16, Q8_0), the converter from llama2.c, and the Llama-family model
// against the llama2.c model (F32: bit for bit) and a from-scratch reference (qwen2 biases, neox
// RoPE, freq_base, epsilon, rope_freqs).
#include "models/llama2c_test_support.hpp"

#include <tsmc/core/random.hpp>
#include <tsmc/models/gguf.hpp>
#include <tsmc/models/gguf_llama2c.hpp>
#include <tsmc/models/gguf_model.hpp>
#include <tsmc/models/llama2c.hpp>

#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace {

namespace gguf = tsmc::gguf;
using tsmc::token;
using tsmc::token_sequence;
using llama2c_test::temp_dir;

std::vector<unsigned char> read_bytes(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}
void write_bytes(const std::filesystem::path& p, const std::vector<unsigned char>& b) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

/// The message of the tsmc::runtime_error `f` throws ("" if it throws nothing).
template <class F>
std::string runtime_message(F&& f) {
  try {
    f();
  } catch (const tsmc::runtime_error& e) {
    return e.what();
  }
  return "";
}

token_sequence random_tokens(std::size_t n, std::size_t vocab, std::uint64_t seed) {
  tsmc::default_engine rng(seed);
  token_sequence out(n);
  for (auto& t : out) t = static_cast<token>(tsmc::uniform_index(rng, vocab));
  return out;
}

/// A shape whose dim and hidden_dim are multiples of 32 (Q8_0), with grouped-query attention.
tsmc::llama2c::config q8_shape(bool shared) {
  return {.dim = 64, .hidden_dim = 96, .n_layers = 2, .n_heads = 4, .n_kv_heads = 2, .vocab_size = 300,
          .seq_len = 40, .shared_classifier = shared};
}

/// Drives two models in lock-step over a prompt, steps with random tokens, random (not
/// slot-stable) reorders every third step and active-row log_probs; calls check(a, b, what)
/// with both models' K x V log-probs after every step.
template <class A, class B, class Check>
void lockstep(A& a, B& b, std::size_t K, std::size_t steps, std::uint64_t seed, Check check) {
  const std::size_t V = a.vocab_size();
  REQUIRE(b.vocab_size() == V);
  tsmc::default_engine rng(seed);
  const token_sequence prompt = random_tokens(5, V, seed + 1);
  a.start(prompt, K);
  b.start(prompt, K);
  tsmc::log_prob_matrix la(K, V), lb(K, V);
  std::vector<token> next(K);
  std::vector<tsmc::particle_index> ancestors(K);
  std::vector<std::uint8_t> active(K);
  for (std::size_t step = 0; step < steps; ++step) {
    a.log_probs(la);
    b.log_probs(lb);
    check(la, lb, "step " + std::to_string(step));
    for (auto& f : active) f = static_cast<std::uint8_t>(tsmc::uniform_index(rng, 2));
    la.setZero();
    lb.setZero();
    a.log_probs(la, active);
    b.log_probs(lb, active);
    check(la, lb, "active rows, step " + std::to_string(step));
    for (auto& t : next) t = static_cast<token>(tsmc::uniform_index(rng, V));
    a.append(next);
    b.append(next);
    if (step % 3 == 2) {
      for (auto& x : ancestors) x = tsmc::uniform_index(rng, K);
      a.reorder(ancestors);
      b.reorder(ancestors);
    }
  }
}

/// A from-scratch forward pass in double over a GGUF model's F32 tensors read by name: the
/// logits of the last position. Implements biases, neox / interleaved RoPE with freq_base and
/// rope_freqs, epsilon, GQA, tied / separate output, independently of the engine.
std::vector<double> reference_logits(const gguf::file& f, std::span<const token> tokens) {
  const std::string arch = f.require_string("general.architecture");
  const auto D = static_cast<std::size_t>(f.require_unsigned(arch + ".embedding_length"));
  const auto H = static_cast<std::size_t>(f.require_unsigned(arch + ".feed_forward_length"));
  const auto L = static_cast<std::size_t>(f.require_unsigned(arch + ".block_count"));
  const auto NH = static_cast<std::size_t>(f.require_unsigned(arch + ".attention.head_count"));
  const auto NKV = static_cast<std::size_t>(f.require_unsigned(arch + ".attention.head_count_kv"));
  const double base = f.require_number(arch + ".rope.freq_base");
  const double eps = f.require_number(arch + ".attention.layer_norm_rms_epsilon");
  const bool neox = arch == "qwen2";
  const std::size_t HS = D / NH, KV = NKV * HS, n = tokens.size();
  auto floats = [&](const std::string& name) -> const float* {
    const gguf::tensor_info* t = f.find_tensor(name);
    REQUIRE(t != nullptr);
    REQUIRE(t->type == 0);
    return reinterpret_cast<const float*>(f.data(*t));
  };
  auto maybe = [&](const std::string& name) -> const float* {
    return f.find_tensor(name) != nullptr ? floats(name) : nullptr;
  };
  const float* emb = floats("token_embd.weight");
  const std::size_t V = static_cast<std::size_t>(f.find_tensor("token_embd.weight")->dims[1]);
  const float* factors = maybe("rope_freqs.weight");
  auto matvec = [](const float* w, std::size_t out, std::size_t in, const std::vector<double>& x, const float* bias) {
    std::vector<double> y(out, 0.0);
    for (std::size_t i = 0; i < out; ++i) {
      for (std::size_t j = 0; j < in; ++j) y[i] += static_cast<double>(w[i * in + j]) * x[j];
      if (bias != nullptr) y[i] += bias[i];
    }
    return y;
  };
  auto rmsnorm = [&](const std::vector<double>& x, const float* w) {
    double ss = 0.0;
    for (double v : x) ss += v * v;
    const double scale = 1.0 / std::sqrt(ss / static_cast<double>(D) + eps);
    std::vector<double> y(D);
    for (std::size_t i = 0; i < D; ++i) y[i] = static_cast<double>(w[i]) * x[i] * scale;
    return y;
  };
  auto rotate = [&](std::vector<double>& v, std::size_t width, std::size_t pos) {
    for (std::size_t h = 0; h < width; h += HS)
      for (std::size_t j = 0; j < HS / 2; ++j) {
        double freq = std::pow(base, -2.0 * static_cast<double>(j) / static_cast<double>(HS));
        if (factors != nullptr) freq /= factors[j];
        const double angle = static_cast<double>(pos) * freq;
        const std::size_t i0 = neox ? h + j : h + 2 * j, i1 = neox ? h + j + HS / 2 : h + 2 * j + 1;
        const double a = v[i0], b = v[i1];
        v[i0] = a * std::cos(angle) - b * std::sin(angle);
        v[i1] = a * std::sin(angle) + b * std::cos(angle);
      }
  };
  std::vector<std::vector<double>> x(n, std::vector<double>(D));
  for (std::size_t t = 0; t < n; ++t)
    for (std::size_t i = 0; i < D; ++i) x[t][i] = emb[static_cast<std::size_t>(tokens[t]) * D + i];
  for (std::size_t l = 0; l < L; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    std::vector<std::vector<double>> q(n), k(n), v(n);
    for (std::size_t t = 0; t < n; ++t) {
      const std::vector<double> xb = rmsnorm(x[t], floats(b + "attn_norm.weight"));
      q[t] = matvec(floats(b + "attn_q.weight"), D, D, xb, maybe(b + "attn_q.bias"));
      k[t] = matvec(floats(b + "attn_k.weight"), KV, D, xb, maybe(b + "attn_k.bias"));
      v[t] = matvec(floats(b + "attn_v.weight"), KV, D, xb, maybe(b + "attn_v.bias"));
      rotate(q[t], D, t);
      rotate(k[t], KV, t);
    }
    for (std::size_t t = 0; t < n; ++t) {
      const std::vector<double> att = llama2c_test::causal_attention(q, k, v, t, NH, NKV, HS);
      const std::vector<double> o = matvec(floats(b + "attn_output.weight"), D, D, att, nullptr);
      for (std::size_t i = 0; i < D; ++i) x[t][i] += o[i];
      const std::vector<double> xb = rmsnorm(x[t], floats(b + "ffn_norm.weight"));
      std::vector<double> a = matvec(floats(b + "ffn_gate.weight"), H, D, xb, nullptr);
      const std::vector<double> u = matvec(floats(b + "ffn_up.weight"), H, D, xb, nullptr);
      for (std::size_t i = 0; i < H; ++i) a[i] = a[i] / (1.0 + std::exp(-a[i])) * u[i];
      const std::vector<double> d = matvec(floats(b + "ffn_down.weight"), D, H, a, nullptr);
      for (std::size_t i = 0; i < D; ++i) x[t][i] += d[i];
    }
  }
  const std::vector<double> hidden = rmsnorm(x[n - 1], floats("output_norm.weight"));
  const float* out = f.find_tensor("output.weight") != nullptr ? floats("output.weight") : emb;
  return matvec(out, V, D, hidden, nullptr);
}

/// Log-softmax of a logit vector.
std::vector<double> log_softmax(std::vector<double> z) {
  double max = -1e300;
  for (double v : z) max = std::max(max, v);
  double sum = 0.0;
  for (double v : z) sum += std::exp(v - max);
  for (double& v : z) v -= max + std::log(sum);
  return z;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Number formats
// ---------------------------------------------------------------------------------------------

TEST_CASE("gguf: half and bfloat16 conversions round to nearest even and invert exactly", "[gguf]") {
  // Every finite half converts to a float and back to itself.
  for (std::uint32_t h = 0; h < 65536; ++h) {
    const float f = gguf::half_to_float(static_cast<std::uint16_t>(h));
    if (!std::isnan(f)) REQUIRE(gguf::float_to_half(f) == h);
  }
  CHECK(gguf::half_to_float(0x3c00) == 1.0f);
  CHECK(gguf::half_to_float(0x0001) == std::ldexp(1.0f, -24));  // smallest subnormal
  CHECK(gguf::half_to_float(0xc000) == -2.0f);
  CHECK(gguf::float_to_half(65504.0f) == 0x7bff);
  CHECK(gguf::float_to_half(65520.0f) == 0x7c00);                    // the tie above the largest half: inf
  CHECK(gguf::float_to_half(1.0f + std::ldexp(1.0f, -11)) == 0x3c00);  // tie: to even (down)
  CHECK(gguf::float_to_half(1.0f + 3 * std::ldexp(1.0f, -11)) == 0x3c02);  // tie: to even (up)
  CHECK(gguf::float_to_half(std::ldexp(1.0f, -25)) == 0x0000);       // tie between 0 and the smallest: 0
  CHECK(gguf::float_to_half(std::ldexp(1.5f, -25)) == 0x0001);
  // bfloat16: the top half of a float, rounded to nearest even.
  for (std::uint32_t b = 0; b < 65536; b += 7) {
    const float f = gguf::bf16_to_float(static_cast<std::uint16_t>(b));
    if (!std::isnan(f)) REQUIRE(gguf::float_to_bf16(f) == b);
  }
  CHECK(gguf::float_to_bf16(std::bit_cast<float>(0x3f808000u)) == 0x3f80);  // tie, even below
  CHECK(gguf::float_to_bf16(std::bit_cast<float>(0x3f818000u)) == 0x3f82);  // tie, even above
  CHECK(gguf::float_to_bf16(std::bit_cast<float>(0x3f808001u)) == 0x3f81);
  CHECK(std::isnan(gguf::bf16_to_float(gguf::float_to_bf16(std::nanf("")))));
}

TEST_CASE("gguf: Q8_0 blocks hold d = max|x| / 127 as a half and q = round(x / d)", "[gguf]") {
  std::vector<float> x(64);
  for (std::size_t i = 0; i < 32; ++i) x[i] = static_cast<float>(static_cast<int>(i) - 16) * 0.25f;  // max |x| = 4
  for (std::size_t i = 32; i < 64; ++i) x[i] = 0.0f;                                                  // a zero block
  std::vector<unsigned char> q(2 * gguf::q8_0_bytes);
  gguf::quantize_q8_0(x, q.data());
  std::uint16_t dh;
  std::memcpy(&dh, q.data(), 2);
  CHECK(dh == gguf::float_to_half(4.0f / 127.0f));
  const float d = gguf::half_to_float(dh);
  CHECK(static_cast<std::int8_t>(q[2 + 0]) == -127);  // x = -4
  CHECK(static_cast<std::int8_t>(q[2 + 16]) == 0);
  CHECK(static_cast<std::int8_t>(q[2 + 20]) == static_cast<std::int8_t>(std::lround(1.0f * (127.0f / 4.0f))));
  std::vector<float> y(64);
  gguf::dequantize_q8_0(q.data(), y);
  for (std::size_t i = 0; i < 32; ++i) {
    CHECK(y[i] == d * static_cast<float>(static_cast<std::int8_t>(q[2 + i])));
    // |x - d q| <= d / 2 for the exact d, plus |q| times the half rounding of d.
    CHECK(std::abs(y[i] - x[i]) <= 4.0f / 127.0f * 0.5f + 127.0f * std::abs(d - 4.0f / 127.0f) + 1e-6f);
  }
  for (std::size_t i = 32; i < 64; ++i) CHECK(y[i] == 0.0f);
}

// ---------------------------------------------------------------------------------------------
// Reader and writer
// ---------------------------------------------------------------------------------------------

TEST_CASE("gguf: the writer's files read back: every value type, nested arrays, tensors, versions 2 and 3",
          "[gguf]") {
  temp_dir dir;
  for (const std::uint32_t version : {2u, 3u})
    for (const std::uint64_t alignment : {std::uint64_t{32}, std::uint64_t{64}}) {
      gguf::contents c;
      c.version = version;
      c.alignment = alignment;
      auto scalar = [](gguf::value_type t, double real, std::int64_t integer) {
        gguf::value v;
        v.type = t;
        v.real = real;
        v.integer = integer;
        v.unsigned_integer = static_cast<std::uint64_t>(integer);
        return v;
      };
      using vt = gguf::value_type;
      c.metadata.emplace_back("general.alignment", gguf::u32(static_cast<std::uint32_t>(alignment)));
      c.metadata.emplace_back("t.uint8", scalar(vt::uint8, 0, 200));
      c.metadata.emplace_back("t.int8", scalar(vt::int8, 0, -100));
      c.metadata.emplace_back("t.uint16", scalar(vt::uint16, 0, 60000));
      c.metadata.emplace_back("t.int16", scalar(vt::int16, 0, -30000));
      c.metadata.emplace_back("t.uint32", scalar(vt::uint32, 0, 4000000000));
      c.metadata.emplace_back("t.int32", scalar(vt::int32, 0, -2000000000));
      c.metadata.emplace_back("t.float32", gguf::f32(1.5e-5f));
      c.metadata.emplace_back("t.bool", gguf::boolean(true));
      c.metadata.emplace_back("t.string", gguf::str("héllo\n"));
      c.metadata.emplace_back("t.empty_string", gguf::str(""));
      c.metadata.emplace_back("t.uint64", gguf::u64(18000000000000000000ull));
      c.metadata.emplace_back("t.int64", scalar(vt::int64, 0, -9000000000000000000ll));
      c.metadata.emplace_back("t.float64", scalar(vt::float64, 0.1, 0));
      c.metadata.emplace_back("t.strings", gguf::strings({"a", "", "▁b"}));
      c.metadata.emplace_back("t.empty_array", gguf::strings({}));
      for (vt t : {vt::uint8, vt::int8, vt::uint16, vt::int16, vt::uint32, vt::int32, vt::float32, vt::boolean,
                   vt::uint64, vt::int64, vt::float64})
        c.metadata.emplace_back("t.array_of_" + gguf::value_type_name(t),
                                gguf::numbers(t, t == vt::boolean ? std::vector<double>{1, 0, 1}
                                                                  : std::vector<double>{1, 2, 100}));
      gguf::value nested;
      nested.type = vt::array;
      nested.element_type = vt::array;
      nested.items = {gguf::f32s(std::vector<float>{0.5f, -1.0f}), gguf::strings({"x"})};
      c.metadata.emplace_back("t.nested", nested);
      std::vector<float> w(64 * 3);
      for (std::size_t i = 0; i < w.size(); ++i) w[i] = static_cast<float>(i) * 0.125f - 3.0f;
      c.tensors.push_back(gguf::encode_tensor("a.f32", {64, 3}, 0, w));
      c.tensors.push_back(gguf::encode_tensor("b.f16", {64, 3}, 1, w));
      c.tensors.push_back(gguf::encode_tensor("c.bf16", {32, 2, 3}, 30, w));
      c.tensors.push_back(gguf::encode_tensor("d.q8_0", {64, 3}, 8, w));
      c.tensors.push_back(gguf::encode_tensor("e.scalar", {1}, 0, std::vector<float>{7.0f}));
      gguf::writer_tensor q4{"f.q4_0", {32, 1, 1, 2}, 2, std::vector<unsigned char>(2 * 18, 0xab)};
      c.tensors.push_back(q4);
      const auto path = dir.file("all_" + std::to_string(version) + "_" + std::to_string(alignment) + ".gguf");
      gguf::write_file(path, c);
      for (const gguf::load_mode mode : {gguf::load_mode::map, gguf::load_mode::read}) {
        const gguf::file f(path, mode);
        CHECK(f.version() == version);
        CHECK(f.alignment() == alignment);
        CHECK(f.data_offset() % alignment == 0);
        REQUIRE(f.metadata().size() == c.metadata.size());
        for (std::size_t i = 0; i < c.metadata.size(); ++i) {
          const auto& [key, v] = f.metadata()[i];
          const gguf::value& e = c.metadata[i].second;
          INFO(key);
          CHECK(key == c.metadata[i].first);
          CHECK(v.type == e.type);
          CHECK(gguf::file::describe(v) == gguf::file::describe(e));
          if (v.type == vt::array) {
            CHECK(v.element_type == e.element_type);
            CHECK(v.numbers == e.numbers);
            CHECK(v.strings == e.strings);
            CHECK(v.items.size() == e.items.size());
          } else if (v.type == vt::string) {
            CHECK(v.text == e.text);
          } else if (v.type == vt::float32 || v.type == vt::float64) {
            CHECK(v.real == (v.type == vt::float32 ? static_cast<double>(static_cast<float>(e.real)) : e.real));
          } else {
            CHECK(v.integer == e.integer);
          }
        }
        CHECK(f.find("t.nested")->items[0].numbers == std::vector<double>{0.5, -1.0});
        CHECK(f.find("t.nested")->items[1].strings == std::vector<std::string>{"x"});
        CHECK(f.find("t.uint64")->unsigned_integer == 18000000000000000000ull);
        CHECK(f.find("t.int64")->integer == -9000000000000000000ll);
        CHECK(f.find("t.float32")->real == static_cast<double>(1.5e-5f));
        CHECK(f.find("absent") == nullptr);
        REQUIRE(f.tensors().size() == c.tensors.size());
        for (std::size_t i = 0; i < c.tensors.size(); ++i) {
          const gguf::tensor_info& t = f.tensors()[i];
          INFO(t.name);
          CHECK(t.name == c.tensors[i].name);
          CHECK(t.dims == c.tensors[i].dims);
          CHECK(t.type == c.tensors[i].type);
          CHECK(t.offset % alignment == 0);
          CHECK(t.bytes == c.tensors[i].bytes.size());
          CHECK(std::memcmp(f.data(t), c.tensors[i].bytes.data(), t.bytes) == 0);
        }
        CHECK(std::memcmp(f.data(*f.find_tensor("a.f32")), w.data(), w.size() * 4) == 0);
      }
    }
}

TEST_CASE("gguf: a file truncated anywhere, or with a bad header, is an error naming the file and the field",
          "[gguf]") {
  temp_dir dir;
  const auto good = dir.file("good.gguf");
  gguf::write_file(good, gguf::random_model({.dim = 8, .hidden_dim = 12, .n_layers = 1, .n_heads = 2, .n_kv_heads = 1,
                                             .vocab_size = 6, .seq_len = 4, .shared_classifier = false},
                                            3));
  const std::vector<unsigned char> bytes = read_bytes(good);
  const gguf::file parsed(good);
  const auto cut = dir.file("cut.gguf");
  const std::string name = llama2c_test::quoted(cut);
  // Every prefix: the header fields, each metadata key and value, each tensor record, the data.
  std::size_t truncated = 0, data = 0;
  for (std::size_t keep = 0; keep < bytes.size(); ++keep) {
    write_bytes(cut, std::vector<unsigned char>(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(keep)));
    const std::string m = runtime_message([&] { const gguf::file f(cut, gguf::load_mode::read); });
    INFO("kept " << keep << " bytes: " << m);
    REQUIRE(m.find(name) != std::string::npos);
    REQUIRE(m.rfind("tsmc::gguf::file::file: ", 0) == 0);
    if (keep < parsed.data_offset()) {
      REQUIRE((m.find("is truncated") != std::string::npos));
      ++truncated;
    } else {
      REQUIRE(m.find("must lie within the file") != std::string::npos);
      ++data;
    }
  }
  CHECK(truncated == parsed.data_offset());
  CHECK(data == bytes.size() - parsed.data_offset());
  // Named fields.
  CHECK_THAT(runtime_message([&] { write_bytes(cut, {}); const gguf::file f(cut); }),
             Catch::Contains("header field magic is truncated"));
  auto patched = [&](std::size_t at, std::vector<unsigned char> with) {
    std::vector<unsigned char> b = bytes;
    std::copy(with.begin(), with.end(), b.begin() + static_cast<std::ptrdiff_t>(at));
    write_bytes(cut, b);
    return runtime_message([&] { const gguf::file f(cut); });
  };
  CHECK_THAT(patched(0, {'G', 'G', 'M', 'L'}), Catch::Contains("header field magic must be \"GGUF\", got \"GGML\""));
  CHECK_THAT(patched(4, {1, 0, 0, 0}), Catch::Contains("header field version must be 2 or 3 (version 1 is not supported), got 1"));
  CHECK_THAT(patched(4, {0, 0, 0, 3}), Catch::Contains("big-endian"));
  CHECK_THAT(patched(4, {4, 0, 0, 0}), Catch::Contains("header field version must be 2 or 3, got 4"));
  CHECK_THAT(patched(8, {0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0}),
             Catch::Contains("tensor table (header field tensor_count 4294967295) is truncated"));
  CHECK_THAT(patched(16, {0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0}),
             Catch::Contains("metadata (header field metadata_kv_count 1099511627775) is truncated"));
  CHECK_THAT(patched(24, {0xff, 0xff, 0xff, 0x7f}), Catch::Contains("metadata entry 0 key is truncated"));
}

TEST_CASE("gguf: bad metadata and tensor records are errors naming the key or tensor and the value", "[gguf]") {
  temp_dir dir;
  const auto path = dir.file("bad.gguf");
  auto message = [&](const gguf::contents& c) {
    gguf::write_file(path, c);
    return runtime_message([&] { const gguf::file f(path); });
  };
  gguf::contents base;
  base.metadata.emplace_back("general.architecture", gguf::str("llama"));
  base.tensors.push_back(gguf::encode_tensor("w", {32, 2}, 0, std::vector<float>(64, 1.0f)));
  base.tensors.push_back(gguf::encode_tensor("x", {32}, 0, std::vector<float>(32, 1.0f)));
  CHECK(message(base).empty());
  {
    gguf::contents c = base;
    c.metadata.emplace_back("general.architecture", gguf::str("qwen2"));
    CHECK_THAT(message(c), Catch::Contains("key general.architecture must be unique"));
  }
  {
    gguf::contents c = base;
    c.metadata.emplace_back("general.alignment", gguf::u32(48));
    CHECK_THAT(message(c), Catch::Contains("key general.alignment must be a power of two, got 48"));
  }
  {
    gguf::contents c = base;
    c.metadata.emplace_back("general.alignment", gguf::u64(32));
    CHECK_THAT(message(c), Catch::Contains("key general.alignment must be a uint32, got uint64 32"));
  }
  {
    gguf::contents c = base;
    c.tensors.push_back(c.tensors[0]);
    CHECK_THAT(message(c), Catch::Contains("tensor 2 'w' must have a unique name"));
  }
  // Raw patches of a written file: a value type, a bool, a tensor's type, dims and offset.
  gguf::write_file(path, base);
  const std::vector<unsigned char> bytes = read_bytes(path);
  const gguf::file f(path);
  auto find = [&](const std::string& s) {
    const auto it = std::search(bytes.begin(), bytes.end(), s.begin(), s.end());
    REQUIRE(it != bytes.end());
    return static_cast<std::size_t>(it - bytes.begin());
  };
  auto patched = [&](std::size_t at, std::vector<unsigned char> with) {
    std::vector<unsigned char> b = bytes;
    std::copy(with.begin(), with.end(), b.begin() + static_cast<std::ptrdiff_t>(at));
    write_bytes(path, b);
    return runtime_message([&] { const gguf::file g(path); });
  };
  const std::size_t key_end = find("general.architecture") + std::string("general.architecture").size();
  CHECK_THAT(patched(key_end, {13, 0, 0, 0}), Catch::Contains("key general.architecture value type must be a GGUF value type 0..12, got 13"));
  // Tensor "x": name, n_dims, dims, type, offset.
  const std::size_t x = find(std::string("\x01\x00\x00\x00\x00\x00\x00\x00x", 9)) + 9;
  CHECK_THAT(patched(x, {5, 0, 0, 0}), Catch::Contains("tensor 1 'x' n_dimensions must be in 1..4, got 5"));
  CHECK_THAT(patched(x + 4, {0, 0, 0, 0, 0, 0, 0, 0}), Catch::Contains("tensor 1 'x' dimension 0 must be in 1..2^62, got 0"));
  CHECK_THAT(patched(x + 12, {99, 0, 0, 0}), Catch::Contains("tensor 1 'x' type must be a GGML type id, got 99"));
  CHECK_THAT(patched(x + 4, {33, 0, 0, 0, 0, 0, 0, 0}),
             Catch::Contains("tensor 'x' data must lie within the file: offset 256 + 132 bytes"));
  CHECK_THAT(patched(x + 16, {4, 0, 0, 0, 0, 0, 0, 0}), Catch::Contains("tensor 1 'x' offset must be a multiple of the alignment 32, got 4"));
  CHECK_THAT(patched(x + 16, {0, 2, 0, 0, 0, 0, 0, 0}),
             Catch::Contains("tensor 'x' data must lie within the file: offset 512 + 128 bytes"));
  CHECK_THAT(patched(x + 16, {0, 0, 0, 0, 0, 0, 0, 0}), Catch::Contains("tensor 'x' offset must not overlap tensor 'w'"));
  CHECK_THAT(patched(x + 12, {12, 0, 0, 0}), Catch::Contains("tensor 1 'x' dimension 0 must be a multiple of the Q4_K block size 256, got 32"));
  // The original reads.
  write_bytes(path, bytes);
  CHECK(gguf::file(path).find_tensor("x")->offset == f.find_tensor("x")->offset);
}

// ---------------------------------------------------------------------------------------------
// Models
// ---------------------------------------------------------------------------------------------

TEST_CASE("gguf: a llama2.c checkpoint converted to F32 gives the llama2.c model's log-probs bit for bit", "[gguf]") {
  temp_dir dir;
  for (const tsmc::llama2c::config& c : {llama2c_test::tiny_shared(), llama2c_test::tiny_gqa_unshared(), q8_shape(false)}) {
    const auto bin = dir.file("m.bin"), out = dir.file("m.gguf");
    tsmc::llama2c::make_random_checkpoint(bin, c, 11, 2.0);
    gguf::convert_llama2c(bin, "", out);
    tsmc::llama2c::model reference(bin);
    gguf::model converted(out);
    CHECK(converted.architecture() == "llama");
    CHECK(converted.vocab_size() == static_cast<std::size_t>(c.vocab_size));
    CHECK(converted.max_length() == static_cast<std::size_t>(c.seq_len));
    CHECK(converted.feature_dim() == static_cast<std::size_t>(c.dim));
    std::size_t compared = 0;
    lockstep(reference, converted, 5, static_cast<std::size_t>(c.seq_len) - 6, 21,
             [&](const auto& a, const auto& b, const std::string& what) {
               INFO(what);
               REQUIRE((a.array() == b.array()).all());
               REQUIRE((reference.features().array() == converted.features().array()).all());
               ++compared;
             });
    CHECK(compared > 0);
    CHECK(converted.copied_slots() == reference.copied_slots());
  }
}

TEST_CASE("gguf: F16, BF16 and Q8_0 weights stay within their rounding of F32, and the log-probs within the stated "
          "bounds",
          "[gguf]") {
  temp_dir dir;
  const tsmc::llama2c::config c = q8_shape(true);
  const auto bin = dir.file("m.bin");
  tsmc::llama2c::make_random_checkpoint(bin, c, 5, 1.0);
  const tsmc::llama2c::checkpoint ckpt(bin);
  gguf::convert_llama2c(bin, "", dir.file("f32.gguf"), 0);
  struct kind {
    std::uint32_t type;
    const char* name;
    double weight_bound;    // per entry: |w - w'| <= bound * (|w| or the Q8_0 block's max)
    double log_prob_bound;  // max |log p - log p'| over every step, row and token (docs/architecture.md)
  };
  for (const kind k : {kind{1, "f16", std::ldexp(1.0, -11), 0.01}, kind{30, "bf16", std::ldexp(1.0, -8), 0.1},
                       kind{8, "q8_0", 0.5 / 127.0 * (1 + std::ldexp(1.0, -10)) + std::ldexp(1.0, -11), 0.2}}) {
    INFO(k.name);
    const auto path = dir.file(std::string(k.name) + ".gguf");
    gguf::convert_llama2c(bin, "", path, k.type);
    const gguf::file f(path);
    // Weights: one matrix checked entry by entry against the F32 original.
    const gguf::tensor_info* wq = f.find_tensor("blk.1.attn_q.weight");
    REQUIRE(wq != nullptr);
    CHECK(wq->type == k.type);
    std::vector<float> deq(static_cast<std::size_t>(wq->elements()));
    tsmc::transformer::dequantize_rows({static_cast<tsmc::transformer::weight_type>(k.type), f.data(*wq), 64, 64}, 0, 64,
                                       deq.data());
    const auto orig = ckpt.wq(1);
    double worst = 0.0;
    for (std::size_t i = 0; i < deq.size(); ++i) {
      const double w = orig.data()[i];
      double scale = std::abs(w);
      if (k.type == 8) {  // Q8_0: relative to the block's largest entry
        scale = 0.0;
        for (std::size_t j = i / 32 * 32; j < i / 32 * 32 + 32; ++j) scale = std::max(scale, std::abs(static_cast<double>(orig.data()[j])));
      }
      // Half subnormals (below 2^-14) have an absolute spacing of 2^-24: half of it is the floor.
      const double floor = k.type == 1 ? std::ldexp(1.0, -25) : 0.0;
      worst = std::max(worst, std::max(0.0, std::abs(deq[i] - w) - floor) / scale);
    }
    CHECK(worst <= k.weight_bound);
    CHECK(worst > k.weight_bound / 8);  // the format really rounds
    gguf::model exact(dir.file("f32.gguf")), rounded(path);
    CHECK(rounded.weight_bytes() < exact.weight_bytes());
    double max_diff = 0.0;
    lockstep(exact, rounded, 4, 20, 8, [&](const auto& a, const auto& b, const std::string&) {
      max_diff = std::max(max_diff, (a - b).cwiseAbs().maxCoeff());
    });
    INFO("max |log p difference| " << max_diff);
    CHECK(max_diff <= k.log_prob_bound);
    CHECK(max_diff > 0.0);
  }
}

TEST_CASE("gguf: qwen2 (biases, neox RoPE) and llama (freq_base, epsilon, rope_freqs) match a from-scratch reference",
          "[gguf]") {
  temp_dir dir;
  const tsmc::llama2c::config c = llama2c_test::tiny_gqa_unshared();
  const token_sequence tokens = random_tokens(9, static_cast<std::size_t>(c.vocab_size), 4);
  struct variant {
    std::string architecture;
    float freq_base, epsilon;
    bool rope_freqs, shared;
  };
  for (const variant& v : {variant{"qwen2", 1000000.0f, 1e-6f, false, false}, variant{"qwen2", 10000.0f, 1e-5f, false, true},
                           variant{"llama", 500000.0f, 1e-6f, true, false}}) {
    INFO(v.architecture << " freq_base " << v.freq_base << " rope_freqs " << v.rope_freqs);
    tsmc::llama2c::config shape = c;
    shape.shared_classifier = v.shared;
    gguf::contents contents = gguf::random_model(
        shape, 17, {.architecture = v.architecture, .freq_base = v.freq_base, .epsilon = v.epsilon, .scale = 2.0});
    if (v.rope_freqs) {
      std::vector<float> factors(static_cast<std::size_t>(c.dim / c.n_heads / 2));
      for (std::size_t j = 0; j < factors.size(); ++j) factors[j] = 1.0f + static_cast<float>(j);
      contents.tensors.push_back(gguf::encode_tensor("rope_freqs.weight", {factors.size()}, 0, factors));
    }
    const auto path = dir.file("v.gguf");
    gguf::write_file(path, contents);
    auto f = std::make_shared<const gguf::file>(path);
    gguf::model m(f);
    CHECK(m.transformer_config().rope ==
          (v.architecture == "qwen2" ? tsmc::transformer::rope_style::neox : tsmc::transformer::rope_style::interleaved));
    // Position by position: the prompt's first token, then one append per token.
    m.start(std::span<const token>(tokens).first(1), 2);
    tsmc::log_prob_matrix lp(2, m.vocab_size());
    for (std::size_t t = 1; t <= tokens.size(); ++t) {
      m.log_probs(lp);
      const std::vector<double> expected = log_softmax(reference_logits(*f, std::span<const token>(tokens).first(t)));
      double diff = 0.0;
      for (std::size_t i = 0; i < expected.size(); ++i)
        diff = std::max(diff, std::abs(lp(1, static_cast<Eigen::Index>(i)) - expected[i]));
      INFO("position " << t);
      REQUIRE(diff < 2e-4);
      if (t < tokens.size()) m.append(std::vector<token>{tokens[t], tokens[t]});
    }
  }
}

TEST_CASE("gguf: model errors name the file, the key or tensor and the value", "[gguf]") {
  temp_dir dir;
  const tsmc::llama2c::config c = q8_shape(false);
  const auto path = dir.file("m.gguf");
  const std::string name = llama2c_test::quoted(path);
  auto message = [&](const gguf::contents& contents) {
    gguf::write_file(path, contents);
    return runtime_message([&] { gguf::model m(path); });
  };
  const gguf::contents base = gguf::random_model(c, 2);
  CHECK(message(base).empty());
  auto with_key = [&](const std::string& key, gguf::value v) {
    gguf::contents x = base;
    for (auto& [k, val] : x.metadata)
      if (k == key) val = std::move(v);
    return x;
  };
  auto without_tensor = [&](const std::string& tensor) {
    gguf::contents x = base;
    std::erase_if(x.tensors, [&](const gguf::writer_tensor& t) { return t.name == tensor; });
    return x;
  };
  CHECK_THAT(message(with_key("general.architecture", gguf::str("gpt2"))),
             Catch::Contains(name + " key general.architecture must be a supported architecture (llama, qwen2), got 'gpt2'"));
  CHECK_THAT(message(with_key("llama.block_count", gguf::str("two"))),
             Catch::Contains("key llama.block_count must be a non-negative integer, got string 'two'"));
  // A block_count far beyond the tensors (fuzz_gguf found one that allocated 1.9 GB of layers first).
  CHECK_THAT(message(with_key("llama.block_count", gguf::u32(std::uint32_t{1} << 30))),
             Catch::Contains(name + " tensor 'blk.2.attn_norm.weight' is required, got absent"));
  CHECK_THAT(message(with_key("llama.attention.head_count_kv", gguf::u32(3))),
             Catch::Contains("key llama.attention.head_count_kv must divide head_count = 4, got 3"));
  CHECK_THAT(message(with_key("llama.rope.dimension_count", gguf::u32(8))),
             Catch::Contains("key llama.rope.dimension_count must equal the head size 16"));
  {  // A misspelt tensor name (here the output layer's, which would otherwise tie the classifier).
    gguf::contents x = base;
    for (auto& t : x.tensors)
      if (t.name == "output.weight") t.name = "outptu.weight";
    CHECK_THAT(message(x), Catch::Contains(name + " tensor 'outptu.weight' must be one that a llama model uses, got an unexpected tensor"));
  }
  CHECK_THAT(message(without_tensor("blk.1.ffn_up.weight")), Catch::Contains(name + " tensor 'blk.1.ffn_up.weight' is required, got absent"));
  {
    gguf::contents x = base;
    x.metadata.erase(x.metadata.begin());  // general.architecture
    CHECK_THAT(message(x), Catch::Contains("key general.architecture is required, got absent"));
  }
  {  // An unsupported tensor type (Q4_0 bytes in place of a matrix).
    gguf::contents x = base;
    for (auto& t : x.tensors)
      if (t.name == "blk.0.attn_k.weight") {
        t.type = 2;
        t.bytes.assign(static_cast<std::size_t>(t.dims[0] * t.dims[1] / 32 * 18), 0);
      }
    CHECK_THAT(message(x), Catch::Contains(name + " tensor 'blk.0.attn_k.weight' type must be F32, F16, BF16 or Q8_0 "
                                                  "(other types are not supported), got Q4_0"));
  }
  {  // The output layer's vocabulary differs from the embedding's.
    gguf::contents x = base;
    for (auto& t : x.tensors)
      if (t.name == "output.weight") {
        t.dims[1] -= 1;
        t.bytes.resize(t.bytes.size() - 64 * 4);
      }
    CHECK_THAT(message(x), Catch::Contains("tensor 'output.weight' shape must have one row per token of token_embd.weight "
                                           "(vocabulary 300), got 299 rows"));
  }
  {  // The tokenizer's vocabulary differs from the embedding's.
    gguf::contents x = base;
    for (auto& [k, v] : x.metadata)
      if (k == "tokenizer.ggml.tokens") v.strings.pop_back();
    CHECK_THAT(message(x), Catch::Contains("key tokenizer.ggml.tokens must be an array of strings with one entry per row "
                                           "of token_embd.weight (300), got array of 299 string"));
  }
  {  // A wrongly shaped matrix.
    gguf::contents x = base;
    for (auto& t : x.tensors)
      if (t.name == "blk.0.attn_q.weight") t.dims = {32, 128};
    CHECK_THAT(message(x), Catch::Contains("tensor 'blk.0.attn_q.weight' shape must be [64, 64] (ne[0] first), got [32, 128]"));
  }
  CHECK_THAT(message(with_key("tokenizer.ggml.eos_token_id", gguf::u32(300))),
             Catch::Contains("key tokenizer.ggml.eos_token_id must be a token id in [0, 300), got uint32 300"));
  {  // qwen2 without its biases.
    gguf::contents x = gguf::random_model(c, 2, {.architecture = "qwen2", .bias = false});
    CHECK_THAT(message(x), Catch::Contains("tensor 'blk.0.attn_q.bias' is required, got absent"));
  }
}

TEST_CASE("gguf: every flipped byte of the tensor table is an error when the model loads", "[gguf]") {
  temp_dir dir;
  const tsmc::llama2c::config c{.dim = 32, .hidden_dim = 32, .n_layers = 1, .n_heads = 2, .n_kv_heads = 1,
                                .vocab_size = 7, .seq_len = 4, .shared_classifier = false};
  const auto good = dir.file("good.gguf");
  gguf::contents contents = gguf::random_model(c, 9);
  contents.metadata.resize(12);  // the hyperparameters only: a short metadata section
  gguf::write_file(good, contents);
  const std::vector<unsigned char> bytes = read_bytes(good);
  std::size_t table = 0;
  {
    const gguf::file f(good);
    // The tensor table starts after the metadata: find the first tensor's name record.
    const std::string first = "token_embd.weight";
    table = static_cast<std::size_t>(std::search(bytes.begin(), bytes.end(), first.begin(), first.end()) - bytes.begin()) - 8;
    CHECK(table < f.data_offset());
    gguf::model m(good);  // the original loads
  }
  const auto bad = dir.file("bad.gguf");
  const std::size_t end = gguf::file(good).data_offset();
  const std::size_t header_end = gguf::file(good).header_end();
  std::size_t flips = 0;
  for (std::size_t at = table; at < end; ++at) {
    std::vector<unsigned char> b = bytes;
    b[at] ^= 0xff;
    write_bytes(bad, b);
    const std::string m = runtime_message([&] { gguf::model model(bad); });
    if (at >= header_end) {  // the padding before the data section: not read
      CHECK(m.empty());
      continue;
    }
    INFO("byte " << at << " flipped");
    REQUIRE(!m.empty());
    REQUIRE(m.find(llama2c_test::quoted(bad)) != std::string::npos);
    ++flips;
  }
  CHECK(flips > 200);
}

TEST_CASE("gguf: a Q8_0 model gives the same bits for any thread count", "[gguf]") {
  temp_dir dir;
  const auto path = dir.file("q8.gguf");
  gguf::write_file(path, gguf::random_model(q8_shape(false), 4, {.type = 8, .scale = 1.5}));
  auto run = [&](int threads) {
#ifdef _OPENMP
    const int saved = omp_get_max_threads();
    omp_set_num_threads(threads);
#else
    (void)threads;
#endif
    gguf::model m(path);
    std::vector<double> all;
    gguf::model dummy(path);
    lockstep(m, dummy, 32, 6, 2, [&](const auto& a, const auto&, const std::string&) {
      all.insert(all.end(), a.data(), a.data() + a.size());
    });
#ifdef _OPENMP
    omp_set_num_threads(saved);
#endif
    return all;
  };
  const std::vector<double> one = run(1);
  CHECK(one == run(2));
  CHECK(one == run(3));
}

TEST_CASE("gguf: the llama tokenizer section of a converted llama2.c tokenizer encodes and decodes as the original",
          "[gguf]") {
  temp_dir dir;
  const tsmc::llama2c::config c = q8_shape(true);
  std::vector<std::string> pieces;
  std::vector<float> scores;
  static constexpr char hex[] = "0123456789ABCDEF";
  const std::vector<std::string> words{" the", " a", "th", "he", " t", "e", "re", " cat", "at", "ca", " once", "on",
                                       "ce", "é", " é", "ll", "o", " h", "el", " hello"};
  for (std::size_t i = 0; i < static_cast<std::size_t>(c.vocab_size); ++i) {
    pieces.push_back(i == 0 ? "<unk>" : i == 1 ? "\n<s>\n" : i == 2 ? "\n</s>\n"
                     : i < 259 ? std::string("<0x") + hex[(i - 3) / 16] + hex[(i - 3) % 16] + ">"
                     : i - 259 < words.size() ? words[i - 259]
                                              : std::string(1, static_cast<char>('a' + (i - 259 - words.size()) % 26)) +
                                                    std::to_string(i));
    scores.push_back(i < 259 ? 0.0f : -static_cast<float>((i * 7919) % 101));
  }
  pieces.back() = " ";
  const auto bin = dir.file("m.bin"), tok_path = dir.file("tok.bin"), out = dir.file("m.gguf");
  tsmc::llama2c::make_random_checkpoint(bin, c, 1);
  tsmc::llama2c::write_tokenizer(tok_path, pieces, scores);
  gguf::convert_llama2c(bin, tok_path, out);
  const gguf::file f(out);
  CHECK(f.require_string("tokenizer.ggml.model") == "llama");
  CHECK(f.find("tokenizer.ggml.tokens")->strings[259] == "\xE2\x96\x81the");
  CHECK(f.find("tokenizer.ggml.tokens")->strings[1] == "<s>");
  CHECK(f.find("tokenizer.ggml.token_type")->numbers[1] == 3);    // control
  CHECK(f.find("tokenizer.ggml.token_type")->numbers[3] == 6);    // byte
  CHECK(f.find("tokenizer.ggml.token_type")->numbers[260] == 1);  // normal
  const tsmc::llama2c::tokenizer original(tok_path, 300);
  const tsmc::llama2c::tokenizer converted = gguf::llama_tokenizer(f, 300);
  gguf::model m(out);
  CHECK(m.specials().bos == token{1});
  CHECK(m.specials().eos == token{2});
  CHECK(m.specials().end_tokens() == std::vector<token>{2});
  for (const std::string text : {"the cat", "once upon a time", "hello héllo", "  two  spaces", "ünïcödé 漢字 😀", "",
                                 "the\nnew line", "<s> spelt out", "a\xff\xfe invalid"}) {
    INFO(text);
    const token_sequence a = original.encode(text, true, true), b = converted.encode(text, true, true);
    CHECK(a == b);
    CHECK(original.decode(a) == converted.decode(b));
  }
  // A file whose byte tokens are not at byte + 3, or whose BOS differs, is refused by name.
  gguf::contents x = gguf::llama2c_contents(tsmc::llama2c::checkpoint(bin), &original);
  for (auto& [k, v] : x.metadata)
    if (k == "tokenizer.ggml.tokens") std::swap(v.strings[3], v.strings[4]);
  gguf::write_file(out, x);
  CHECK_THAT(runtime_message([&] { (void)gguf::llama_tokenizer(gguf::file(out), 300); }),
             Catch::Contains("key tokenizer.ggml.tokens[3] must be the byte token of id byte + 3"));
  for (auto& [k, v] : x.metadata)
    if (k == "tokenizer.ggml.bos_token_id") v = gguf::u32(5);
  gguf::write_file(out, x);
  CHECK_THAT(runtime_message([&] { (void)gguf::llama_tokenizer(gguf::file(out), 300); }),
             Catch::Contains("key tokenizer.ggml.bos_token_id must be 1"));
  for (auto& [k, v] : x.metadata)
    if (k == "tokenizer.ggml.model") v = gguf::str("gpt2");
  gguf::write_file(out, x);
  CHECK_THAT(runtime_message([&] { (void)gguf::llama_tokenizer(gguf::file(out), 300); }),
             Catch::Contains("key tokenizer.ggml.model must be 'llama'"));
}

TEST_CASE("gguf: a gpt2 tokenizer section reads back as the byte-level BPE it was written from", "[gguf]") {
  temp_dir dir;
  // A byte-level vocabulary: the 256 byte symbols, merges " t", "he", " the", " a", " cat", then
  // "<|endoftext|>" (control, EOS and EOT) and "<|user|>" (user-defined).
  std::vector<std::string> tokens;
  std::vector<tsmc::token_type> types;
  std::vector<std::string> merges;
  for (unsigned b = 0; b < 256; ++b) {
    tokens.push_back(tsmc::gpt2_bytes_to_unicode_text(std::string(1, static_cast<char>(b))));
    types.push_back(tsmc::token_type::normal);
  }
  for (const auto& [a, b] : std::vector<std::pair<std::string, std::string>>{
           {" ", "t"}, {"h", "e"}, {" t", "he"}, {" ", "a"}, {"c", "a"}, {"ca", "t"}, {" ", "cat"}}) {
    merges.push_back(tsmc::gpt2_bytes_to_unicode_text(a) + " " + tsmc::gpt2_bytes_to_unicode_text(b));
    tokens.push_back(tsmc::gpt2_bytes_to_unicode_text(a + b));
    types.push_back(tsmc::token_type::normal);
  }
  tokens.emplace_back("<|endoftext|>");
  types.push_back(tsmc::token_type::control);
  tokens.emplace_back("<|user|>");
  types.push_back(tsmc::token_type::user_defined);
  const auto eos = static_cast<token>(tokens.size() - 2);
  const tsmc::bpe_options options{.pre = "llama-bpe", .bos = eos, .eos = eos, .eot = eos, .add_bos = false};
  const tsmc::bpe_tokenizer direct(tokens, types, merges, options);

  tsmc::llama2c::config c = q8_shape(true);
  c.vocab_size = static_cast<std::int32_t>(tokens.size());
  gguf::contents x = gguf::random_model(c, 3);
  std::erase_if(x.metadata, [](const auto& kv) { return kv.first.rfind("tokenizer.", 0) == 0; });
  gguf::add_gpt2_tokenizer(tokens, types, merges, options, x.metadata);
  const auto path = dir.file("gpt2.gguf");
  gguf::write_file(path, x);
  const gguf::file f(path);
  const tsmc::bpe_tokenizer read = gguf::gpt2_tokenizer(f, tokens.size());
  CHECK(read.pre() == tsmc::pretokenizer::llama3);
  CHECK(read.merge_count() == merges.size());
  CHECK(read.eos() == eos);
  CHECK(read.end_tokens() == token_sequence{eos});
  for (const std::string text : {"the cat", " the cat sat", "a<|user|>b", "x<|endoftext|>y", "ünï 😀", "",
                                 "\n\n  the\tcat  "}) {
    INFO(text);
    for (const bool special : {false, true}) {
      const token_sequence a = direct.encode(text, {.parse_special = special});
      const token_sequence b = read.encode(text, {.parse_special = special});
      CHECK(a == b);
      CHECK(read.decode(b) == direct.decode(a));
    }
  }
  CHECK(read.encode(" the cat") == token_sequence{258, 262});  // " the" (merge 2), " cat" (merge 6)
  // The model loads with the section, and its end tokens are the file's.
  const gguf::model m(path);
  CHECK(m.specials().end_tokens() == std::vector<token>{eos});
  // A llama reader refuses it by name; bad keys are errors naming the key.
  CHECK_THAT(runtime_message([&] { (void)gguf::llama_tokenizer(f, tokens.size()); }),
             Catch::Contains("gguf::gpt2_tokenizer"));
  auto with = [&](const std::string& key, gguf::value v) {
    gguf::contents y = x;
    for (auto& [k, old] : y.metadata)
      if (k == key) old = v;
    gguf::write_file(path, y);
    return runtime_message([&] { (void)gguf::gpt2_tokenizer(gguf::file(path), tokens.size()); });
  };
  CHECK_THAT(with("tokenizer.ggml.pre", gguf::str("no-such-pre")),
             Catch::Contains("tokenizer section must describe a byte-level BPE tokenizer") &&
                 Catch::Contains("options.pre"));
  std::vector<std::string> bad_merges = merges;
  bad_merges[1] = "h x";
  CHECK_THAT(with("tokenizer.ggml.merges", gguf::strings(bad_merges)), Catch::Contains("merges[1]"));
  CHECK_THAT(with("tokenizer.ggml.eos_token_id", gguf::u32(static_cast<std::uint32_t>(tokens.size()))),
             Catch::Contains("key tokenizer.ggml.eos_token_id must be a token id in [0, 265)"));
  CHECK_THAT(with("tokenizer.ggml.tokens", gguf::strings({"a", "b"})),
             Catch::Contains("key tokenizer.ggml.tokens must be an array of 265 strings"));
  CHECK_THAT(with("tokenizer.ggml.model", gguf::str("llama")), Catch::Contains("key tokenizer.ggml.model must be 'gpt2'"));
  CHECK_THAT(with("tokenizer.ggml.add_bos_token", gguf::u32(1)),
             Catch::Contains("key tokenizer.ggml.add_bos_token must be a bool"));
}
