#pragma once
/// @file
/// @brief Distributed SMC: the K particles of one run spread over MPI ranks in contiguous blocks,
/// with global resampling. Every step each rank proposes, weighs and scores its own particles;
/// the log-weights (and the particles' "still generating" flags) are allgathered, so every rank
/// computes the same ESS, the same trigger decision, the same log Zhat increment and, from the
/// same engine, the same global ancestors; a slot whose ancestor lives on another rank receives
/// that particle's state: its prefix, its sampler state and the model's state of its slot, through
/// the model's optional export_slot / import_slot hooks (SlotStateModel in core/slot_state.hpp).
///
/// Same seeds, same run: particle g (global index) draws its token at step t from the stream
/// (seed, t, g), the seed drawn once from the caller's engine, and resampling draws from the
/// caller's engine given the allgathered weights in global order, exactly as twisted_smc draws
/// them for K particles in one process. So a distributed run with the engine in the same state as
/// one process's gives the same particles, weights and log Zhat, bit for bit (for a model whose
/// rows do not depend on how many slots it holds), and E[Zhat] = Z as for twisted_smc.
///
/// What it runs: plain runs with the base or the twist-induced proposal, any scheme and trigger.
/// Conditional runs, user proposals and observers are twisted_smc's (one process). The twist must
/// keep no per-particle state (no append / reorder hooks), as the shipped twists do.

#include <tsmc/core/concepts.hpp>
#include <tsmc/core/error.hpp>
#include <tsmc/core/log_math.hpp>
#include <tsmc/core/random.hpp>
#include <tsmc/core/slot_state.hpp>
#include <tsmc/core/statistics.hpp>
#include <tsmc/core/types.hpp>
#include <tsmc/distributed/communicator.hpp>
#include <tsmc/resampling/resampler.hpp>
#include <tsmc/resampling/schemes.hpp>
#include <tsmc/resampling/triggers.hpp>
#include <tsmc/smc/options.hpp>
#include <tsmc/smc/proposal_step.hpp>
#include <tsmc/smc/result.hpp>
#include <tsmc/smc/sampler.hpp>

#include <Eigen/Core>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace tsmc::distributed {

/// @brief A distributed run's outcome on one rank.
struct distributed_smc_result {
  /// @brief This rank's particles (global slots [first, first + local.sequences.size())): their
  /// sequences, final log-weights, log q and normalised log-weights (normalised over all K), and
  /// the run's global quantities: log Zhat, the ESS per step, the resampling flags and log Zhat
  /// increments, the steps taken; seconds are this rank's.
  smc_result local;
  std::size_t first = 0;      ///< the global index of this rank's first slot
  std::size_t particles = 0;  ///< K, all ranks together
  /// @brief Per resampling step, in order: the particles copied from one rank to another.
  std::vector<std::size_t> moved_particles;
  /// @brief Per resampling step, in order: the bytes sent between ranks for them, all ranks
  /// together (prefix, sampler state and the model's exported slot state).
  std::vector<std::uint64_t> moved_bytes;
  double communication_seconds = 0.0;  ///< this rank's wall time inside collectives during the run
  double seconds = 0.0;                ///< this rank's wall time of the run
};

namespace detail {

inline void put_bytes(std::vector<std::byte>& out, const void* data, std::size_t n) {
  const auto* p = static_cast<const std::byte*>(data);
  out.insert(out.end(), p, p + n);
}

template <class T>
void put(std::vector<std::byte>& out, const T& value) {
  put_bytes(out, &value, sizeof(T));
}

/// Reads values back in the order put() wrote them.
class byte_reader {
 public:
  explicit byte_reader(std::span<const std::byte> bytes) : bytes_(bytes) {}
  template <class T>
  T get() {
    T value;
    std::memcpy(&value, take(sizeof(T)).data(), sizeof(T));
    return value;
  }
  std::span<const std::byte> take(std::size_t n) {
    check_argument(n <= bytes_.size() - at_, "distributed::twisted_smc::run", "a received particle's state",
                   "must hold the bytes its sender wrote; bytes missing", n);
    const auto out = bytes_.subspan(at_, n);
    at_ += n;
    return out;
  }
  [[nodiscard]] bool done() const noexcept { return at_ == bytes_.size(); }

 private:
  std::span<const std::byte> bytes_;
  std::size_t at_ = 0;
};

}  // namespace detail

/// @brief Twisted SMC (Zhao et al. 2024, Sections 3-5) with its K particles spread over the
/// ranks of a communicator and global resampling (see the file's documentation). Construct it on
/// every rank with the same options (options.particles = K, all ranks together) and call run on
/// every rank with engines in the same state.
/// @tparam Model a SlotStateModel (a LanguageModel with export_slot / import_slot)
/// @tparam Twist a TwistFunction without per-particle state
/// @tparam Pot a Potential
/// @tparam Scheme a ResamplingScheme
/// @tparam Trigger a ResamplingTrigger
template <class Model, class Twist, class Pot, class Scheme = multinomial, class Trigger = always_trigger>
class twisted_smc {
  static_assert(SlotStateModel<Model>,
                "tsmc::distributed::twisted_smc: Model must model tsmc::SlotStateModel: a LanguageModel with "
                "void export_slot(std::size_t slot, std::vector<std::byte>& out) const and void "
                "import_slot(std::size_t slot, std::span<const std::byte> bytes) (core/slot_state.hpp)");
  static_assert(TwistFunction<Twist, Model>, "tsmc::distributed::twisted_smc: Twist must model tsmc::TwistFunction");
  static_assert(!tsmc::detail::declares_append<Twist> && !tsmc::detail::declares_reorder<Twist>,
                "tsmc::distributed::twisted_smc: the twist must keep no per-particle state (no append / reorder "
                "hooks): its state would have to move between ranks with the particles");
  static_assert(Potential<Pot>, "tsmc::distributed::twisted_smc: Pot must model tsmc::Potential");

 public:
  /// @brief A sampler over this rank's model, twist and potential (not owned) for K =
  /// options.particles particles over all the ranks of comm (not owned).
  /// @throw tsmc::invalid_argument on invalid options, a twist whose vocabulary differs, or
  /// fewer particles than ranks
  twisted_smc(communicator& comm, Model& model, Twist& twist, Pot& potential, smc_options options, Scheme scheme = {},
              Trigger trigger = {})
      : comm_(comm), model_(model), twist_(twist), potential_(potential), options_(options),
        resampler_(std::move(scheme)), trigger_(trigger),
        range_(block_range::of(options.particles, comm.rank(), comm.size())) {
    constexpr const char* function = "distributed::twisted_smc";
    const std::size_t vocab = model_.vocab_size();
    check_positive(function, "model.vocab_size()", vocab);
    validate(options_, vocab, function);
    check_argument(options_.particles >= comm.size(), function, "options.particles",
                   "must be at least the number of ranks " + std::to_string(comm.size()), options_.particles);
    if constexpr (requires { { twist_.vocab_size() } -> std::convertible_to<std::size_t>; })
      check_size(function, "twist.vocab_size()", twist_.vocab_size(), "model.vocab_size()", vocab);
  }

  /// @brief The options (particles: K over all ranks).
  [[nodiscard]] const smc_options& options() const noexcept { return options_; }
  /// @brief This rank's slots [begin, end) among the K.
  [[nodiscard]] block_range slots() const noexcept { return range_; }

  /// @brief One SMC run from the prompt over all ranks (call it on every rank, engines in the
  /// same state: each rank draws the same seed and the same resampling uniforms).
  /// @param prompt s_0
  /// @param rng the engine (the same state on every rank)
  /// @return this rank's particles and the run's global quantities
  /// @throw tsmc::invalid_argument on a bad prompt (on every rank alike, before any
  /// communication); an error on one rank during the run (NaN from its model, ...) aborts the job
  /// with that rank's message
  template <RandomEngine Engine>
  distributed_smc_result run(std::span<const token> prompt, Engine& rng) {
    constexpr const char* function = "distributed::twisted_smc::run";
    check_tokens(prompt, model_.vocab_size(), function, "prompt");
    if constexpr (requires { { model_.max_length() } -> std::convertible_to<std::size_t>; }) {
      const std::size_t need = prompt.size() + options_.horizon;
      check_argument(need <= static_cast<std::size_t>(model_.max_length()), function, "prompt.size() + horizon",
                     "must not exceed model.max_length() " + std::to_string(model_.max_length()), need);
    }
    const communication_stats before = comm_.stats();
    const auto start = std::chrono::steady_clock::now();
    distributed_smc_result out = run_impl(prompt, rng);
    out.communication_seconds = comm_.stats().seconds - before.seconds;
    out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return out;
  }

 private:
  static constexpr bool unit_twist = tsmc::detail::is_unit_twist<Twist>;
  static constexpr bool potential_scores_next = NextTokenPotential<Pot, Model>;

  struct step_psi {
    bool have = false;
    bool is_phi = false;
  };

  /// The local particles' state (the fields of twisted_smc's particle_state that a run uses).
  struct local_state {
    std::vector<token_sequence> prefixes;
    std::vector<std::uint8_t> active, proposed, finishing;
    std::vector<double> log_phi, log_w, log_psi_prev, log_q, step_lse;
    std::vector<token> tokens;
    std::size_t active_count = 0;

    void reset(std::size_t particles, std::size_t horizon) {
      prefixes.assign(particles, token_sequence{});
      for (auto& p : prefixes) p.reserve(horizon);
      active.assign(particles, 1);
      proposed.assign(particles, 0);
      finishing.assign(particles, 0);
      log_phi.assign(particles, 0.0);
      log_w.assign(particles, 0.0);
      log_psi_prev.assign(particles, 0.0);
      log_q.assign(particles, 0.0);
      step_lse.assign(particles, 0.0);
      tokens.assign(particles, 0);
      active_count = particles;
    }
  };

  template <class Matrix>
  static void ensure_shape(Matrix& m, std::size_t rows, std::size_t cols) {
    if (static_cast<std::size_t>(m.rows()) != rows || static_cast<std::size_t>(m.cols()) != cols)
      m.resize(static_cast<Eigen::Index>(rows), static_cast<Eigen::Index>(cols));
  }

  /// Stage 1 (as twisted_smc's propose): the model's and the twist's rows, and each local
  /// particle's draw from its global stream (seed, t, first + k).
  step_psi propose(std::span<const token> prompt, std::size_t t, std::uint64_t seed, bool twisted) {
    auto& s = state_;
    const std::size_t K = range_.size();
    const std::size_t V = model_.vocab_size();
    const bool last = t == options_.horizon;
    const step_context<Model> ctx{t, options_.horizon, prompt, std::span<const token_sequence>(s.prefixes),
                                  std::span<const std::uint8_t>(s.active), model_};
    if constexpr (requires(Model& m, log_prob_ref o, std::span<const std::uint8_t> a) { m.log_probs(o, a); })
      model_.log_probs(log_p0_, std::span<const std::uint8_t>(s.active));
    else
      model_.log_probs(log_p0_);
    step_psi psi;
    if constexpr (potential_scores_next) {
      if (last && twisted) {
        potential_.log_potential_next(ctx, log_psi_);
        psi = {true, true};
      }
    }
    if constexpr (!unit_twist) {
      if (!psi.have && (twisted || !last)) {
        twist_.log_twist(ctx, log_psi_);
        psi.have = true;
      }
    }
    for (std::size_t k = 0; k < K; ++k) {
      s.proposed[k] = s.active[k];
      if (!s.active[k]) continue;
      auto stream = particle_stream(seed, t, range_.begin + k);
      const double u = uniform01(stream);
      const double* l_row = log_p0_.row(static_cast<Eigen::Index>(k)).data();
      const double* psi_row = psi.have ? log_psi_.row(static_cast<Eigen::Index>(k)).data() : nullptr;
      proposal_draw draw = fused_proposal_draw(l_row, twisted ? psi_row : nullptr, V, u, scratch_);
      if (draw.log_normalizer == neg_inf && twisted) {
        draw.chosen = fused_proposal_draw(l_row, nullptr, V, u, scratch_).chosen;
        draw.log_normalizer = neg_inf;
      }
      s.tokens[k] = draw.chosen;
      s.step_lse[k] = draw.log_normalizer;
    }
    return psi;
  }

  /// Stage 2 (as twisted_smc's weigh, Eq. 15 / base proposal): incremental weights, log q, the
  /// finishing particles. Returns how many need log phi.
  std::size_t weigh(std::size_t t, step_psi psi, bool twisted) {
    constexpr const char* function = "distributed::twisted_smc::run";
    auto& s = state_;
    const bool last = t == options_.horizon;
    const std::size_t V = model_.vocab_size();
    std::size_t finishing_count = 0;
    // smc_options::check_first_row: each rank checks the first row it holds at step 1.
    bool first_row_unchecked = t == 1 && options_.check_first_row;
    for (std::size_t k = 0; k < range_.size(); ++k) {
      s.finishing[k] = 0;
      if (!s.proposed[k]) continue;
      const double lse = s.step_lse[k];
      const double* l_row = log_p0_.row(static_cast<Eigen::Index>(k)).data();
      const double* psi_row = psi.have ? log_psi_.row(static_cast<Eigen::Index>(k)).data() : nullptr;
      const token x = s.tokens[k];
      const double log_p0_x = l_row[x];
      const double psi_x = psi_row != nullptr ? psi_row[x] : 0.0;
      if (std::isnan(lse) || lse == -neg_inf || std::isnan(psi_x) || psi_x == -neg_inf || std::isnan(log_p0_x) ||
          log_p0_x == -neg_inf)
        throw_runtime_error(function, "the model's or the twist's row at step " + std::to_string(t) + ", particle " +
                                          std::to_string(range_.begin + k),
                            "must not hold NaN or +inf", lse);
      if (lse == neg_inf && !(Eigen::Map<const Eigen::ArrayXd>(l_row, static_cast<Eigen::Index>(V)).maxCoeff() > neg_inf))
        throw_runtime_error(function, "the model's log p0 at step " + std::to_string(t) + ", particle " +
                                          std::to_string(range_.begin + k), "must not be -inf for every token", lse);
      if (options_.check_normalization || first_row_unchecked) {
        first_row_unchecked = false;
        const double sum = Eigen::Map<const Eigen::ArrayXd>(l_row, static_cast<Eigen::Index>(V)).exp().sum();
        if (!(std::abs(sum - 1.0) <= options_.normalization_tolerance))
          throw_runtime_error(function, "the sum of the model's p0 at step " + std::to_string(t) + ", particle " +
                                            std::to_string(range_.begin + k),
                              "must be 1 within options.normalization_tolerance", sum);
      }
      const bool finished = last || is_end_token(options_, x);
      double log_w_t;
      double log_q_t;
      if (twisted) {
        log_q_t = lse == neg_inf ? log_p0_x - logsumexp(std::span<const double>(l_row, V)) : log_p0_x + psi_x - lse;
        const double unfinished = lse - s.log_psi_prev[k];
        log_w_t = unfinished - (finished && !psi.is_phi ? psi_x : 0.0);
      } else {
        log_q_t = log_p0_x - lse;
        log_w_t = lse - s.log_psi_prev[k] + (finished ? 0.0 : psi_x);
      }
      if (lse == neg_inf || (!finished && psi_x == neg_inf)) {
        log_w_t = neg_inf;
        s.log_psi_prev[k] = 0.0;
      } else if (!finished) {
        s.log_psi_prev[k] = psi_x;
      }
      s.log_w[k] += log_w_t;
      s.log_q[k] += log_q_t;
      s.prefixes[k].push_back(x);
      if (finished) {
        s.active[k] = 0;
        --s.active_count;
        if (psi.is_phi) s.log_phi[k] = psi_x;
        if (!psi.is_phi) {
          s.finishing[k] = 1;
          ++finishing_count;
        }
      }
    }
    return finishing_count;
  }

  /// Stage 3: log phi of the local particles that finished at this step.
  void score_finished(std::size_t t, std::size_t finishing_count) {
    if (finishing_count == 0) return;
    auto& s = state_;
    batch_.clear();
    index_.clear();
    for (std::size_t k = 0; k < range_.size(); ++k)
      if (s.finishing[k]) {
        batch_.push_back(s.prefixes[k]);
        index_.push_back(k);
      }
    values_.assign(batch_.size(), std::numeric_limits<double>::quiet_NaN());
    potential_.log_potential(std::span<const token_sequence>(batch_), std::span<double>(values_));
    for (std::size_t i = 0; i < batch_.size(); ++i) {
      const double log_phi = values_[i];
      if (std::isnan(log_phi) || log_phi == -neg_inf)
        throw_runtime_error("distributed::twisted_smc::run",
                            "log phi of particle " + std::to_string(range_.begin + index_[i]) + " at step " +
                                std::to_string(t),
                            "must not be NaN or +inf", log_phi);
      s.log_w[index_[i]] += log_phi;
      s.log_phi[index_[i]] = log_phi;
    }
  }

  /// Stage 4 across ranks: the global ancestors (computed identically everywhere), the local
  /// copies, and the particles shipped between ranks. Returns {particles, bytes} moved between
  /// ranks, all ranks together (the same numbers on every rank).
  template <RandomEngine Engine>
  std::pair<std::size_t, std::uint64_t> resample(std::span<const double> all_log_w, Engine& rng) {
    auto& s = state_;
    const std::size_t K = options_.particles;
    const std::size_t R = comm_.size();
    const std::size_t me = comm_.rank();
    ancestors_.assign(K, 0);
    run_or_abort(comm_, "distributed::twisted_smc::run",
                 [&] { resampler_.resample(all_log_w, std::span<particle_index>(ancestors_), rng); });
    owners_.resize(K);
    for (std::size_t r = 0, g = 0; r < R; ++r)
      for (const block_range b = block_range::of(K, r, R); g < b.end; ++g) owners_[g] = r;

    // 1. Export the particles other ranks take from here (before anything local changes).
    std::vector<std::vector<std::byte>> send(R);
    std::size_t moved = 0;
    for (std::size_t g = 0; g < K; ++g) {
      const std::size_t a = ancestors_[g];
      const std::size_t from = owners_[a], to = owners_[g];
      if (from == to) continue;
      ++moved;
      if (from != me) continue;
      const std::size_t k = a - range_.begin;
      auto& out = send[to];
      detail::put(out, static_cast<std::uint64_t>(s.prefixes[k].size()));
      detail::put_bytes(out, s.prefixes[k].data(), s.prefixes[k].size() * sizeof(token));
      detail::put(out, s.active[k]);
      detail::put(out, s.log_psi_prev[k]);
      detail::put(out, s.log_q[k]);
      detail::put(out, s.tokens[k]);
      slot_bytes_.clear();
      model_.export_slot(k, slot_bytes_);
      detail::put(out, static_cast<std::uint64_t>(slot_bytes_.size()));
      detail::put_bytes(out, slot_bytes_.data(), slot_bytes_.size());
    }
    std::uint64_t sent = 0;
    for (const auto& b : send) sent += b.size();

    // 2. Local copies: slot k takes local ancestor a - first; slots filled from other ranks keep
    // their place for now (identity). Slot-stable ancestors stay slot-stable.
    local_ancestors_.resize(range_.size());
    for (std::size_t k = 0; k < range_.size(); ++k) {
      const std::size_t a = ancestors_[range_.begin + k];
      local_ancestors_[k] = owners_[a] == me ? static_cast<particle_index>(a - range_.begin) : static_cast<particle_index>(k);
    }
    const std::span<const particle_index> local(local_ancestors_);
    tsmc::detail::reorder_in_place(s.prefixes, local);
    tsmc::detail::reorder_in_place(s.active, local);
    tsmc::detail::reorder_in_place(s.log_psi_prev, local);
    tsmc::detail::reorder_in_place(s.log_q, local);
    tsmc::detail::reorder_in_place(s.tokens, local);
    model_.reorder(local);

    // 3. Ship, and 4. import, in increasing global slot order (the order the senders packed).
    const std::vector<std::vector<std::byte>> received = comm_.exchange(send);
    run_or_abort(comm_, "distributed::twisted_smc::run", [&] {
      std::vector<detail::byte_reader> readers;
      readers.reserve(R);
      for (const auto& b : received) readers.emplace_back(std::span<const std::byte>(b));
      for (std::size_t k = 0; k < range_.size(); ++k) {
        const std::size_t a = ancestors_[range_.begin + k];
        if (owners_[a] == me) continue;
        auto& in = readers[owners_[a]];
        const auto length = in.get<std::uint64_t>();
        const auto tokens = in.take(length * sizeof(token));
        s.prefixes[k].resize(length);
        std::memcpy(s.prefixes[k].data(), tokens.data(), tokens.size());
        s.active[k] = in.get<std::uint8_t>();
        s.log_psi_prev[k] = in.get<double>();
        s.log_q[k] = in.get<double>();
        s.tokens[k] = in.get<token>();
        const auto n = in.get<std::uint64_t>();
        model_.import_slot(k, in.take(n));
      }
    });
    s.active_count = 0;
    for (const auto a : s.active) s.active_count += a;
    std::fill(s.log_w.begin(), s.log_w.end(), 0.0);
    double total = static_cast<double>(sent);
    comm_.allreduce_sum(std::span<double>(&total, 1));
    return {moved, static_cast<std::uint64_t>(total)};
  }

  template <RandomEngine Engine>
  distributed_smc_result run_impl(std::span<const token> prompt, Engine& rng) {
    constexpr const char* function = "distributed::twisted_smc::run";
    const std::size_t K = options_.particles;
    const std::size_t KL = range_.size();
    const std::size_t T = options_.horizon;
    const std::size_t V = model_.vocab_size();
    const bool twisted = options_.proposal == proposal_type::twisted;
    const double log_k = std::log(static_cast<double>(K));
    const token pad = first_end_token(options_).value_or(0);
    distributed_smc_result out;
    out.first = range_.begin;
    out.particles = K;
    smc_result& result = out.local;
    const std::uint64_t seed = random_bits64(rng);

    run_or_abort(comm_, function, [&] {
      ensure_shape(log_p0_, KL, V);
      if constexpr (!unit_twist || potential_scores_next) ensure_shape(log_psi_, KL, V);
      if (static_cast<std::size_t>(scratch_.size()) < V) scratch_.resize(static_cast<Eigen::Index>(V));
      state_.reset(KL, T);
      model_.start(prompt, KL);
      if constexpr (requires { twist_.start(prompt, KL); }) twist_.start(prompt, KL);
    });
    auto& s = state_;
    double log_z = 0.0;
    std::vector<double> packed(2 * KL);
    for (std::size_t t = 1; t <= T; ++t) {
      run_or_abort(comm_, function, [&] {
        const step_psi psi = propose(prompt, t, seed, twisted);
        score_finished(t, weigh(t, psi, twisted));
      });
      // Every rank's log-weights and active flags, in global slot order.
      for (std::size_t k = 0; k < KL; ++k) {
        packed[2 * k] = s.log_w[k];
        packed[2 * k + 1] = s.active[k];
      }
      const std::vector<double> all = comm_.allgather(packed);
      all_log_w_.resize(K);
      std::size_t active_all = 0;
      for (std::size_t g = 0; g < K; ++g) {
        all_log_w_[g] = all[2 * g];
        active_all += all[2 * g + 1] != 0.0 ? 1 : 0;
      }
      bool final_step = t == T || active_all == 0;
      const double lse_w = logsumexp(std::span<const double>(all_log_w_));
      const double ess = effective_sample_size(std::span<const double>(all_log_w_));
      result.ess.push_back(ess);
      result.steps = t;
      if (lse_w == neg_inf) {
        log_z = neg_inf;
        result.resampled.push_back(0);
        result.log_z_increments.push_back(neg_inf);
        break;
      }
      bool did_resample = false;
      if (final_step) {
        const double inc = lse_w - log_k;
        log_z += inc;
        result.log_z_increments.push_back(inc);
      } else if (trigger_(resampling_state{ess, K, t, T})) {
        const double inc = lse_w - log_k;
        log_z += inc;
        result.log_z_increments.push_back(inc);
        // the survivors' flags decide whether anything still generates
        std::size_t active_after = 0;
        const auto [moved, bytes] = resample(std::span<const double>(all_log_w_), rng);
        for (std::size_t g = 0; g < K; ++g) active_after += all[2 * ancestors_[g] + 1] != 0.0 ? 1 : 0;
        out.moved_particles.push_back(moved);
        out.moved_bytes.push_back(bytes);
        did_resample = true;
        if (active_after == 0) final_step = true;
      } else {
        result.log_z_increments.push_back(0.0);
      }
      result.resampled.push_back(did_resample ? 1 : 0);
      if (final_step) break;
      run_or_abort(comm_, function, [&] {
        for (std::size_t k = 0; k < KL; ++k)
          if (!s.active[k]) s.tokens[k] = pad;
        model_.append(std::span<const token>(s.tokens));
      });
    }
    result.log_z = log_z;
    result.sequences = s.prefixes;
    result.log_weights = s.log_w;
    result.log_proposal = s.log_q;
    // normalised over all K: log W_k - logsumexp of every rank's final log W
    const std::vector<double> final_all = comm_.allgather(s.log_w);
    const double lse_final = logsumexp(std::span<const double>(final_all));
    result.normalized_log_weights.resize(KL);
    for (std::size_t k = 0; k < KL; ++k)
      result.normalized_log_weights[k] = lse_final == neg_inf ? neg_inf : s.log_w[k] - lse_final;
    return out;
  }

  communicator& comm_;
  Model& model_;
  Twist& twist_;
  Pot& potential_;
  smc_options options_;
  resampler<Scheme> resampler_;
  Trigger trigger_;
  block_range range_;
  local_state state_;
  log_prob_matrix log_p0_;
  log_prob_matrix log_psi_;
  Eigen::ArrayXd scratch_;
  std::vector<double> all_log_w_;
  std::vector<particle_index> ancestors_;
  std::vector<particle_index> local_ancestors_;
  std::vector<std::size_t> owners_;
  std::vector<std::byte> slot_bytes_;
  std::vector<token_sequence> batch_;
  std::vector<std::size_t> index_;
  std::vector<double> values_;
};

}  // namespace tsmc::distributed
