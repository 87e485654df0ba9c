#pragma once
/// @file
/// @brief The distributed layer's base: an MPI environment, a communicator with the few
/// collectives the layer uses (timed and counted), the contiguous split of work over ranks, and
/// the rule that a rank that throws aborts the whole job with its message.
///
/// This layer needs MPI (link tsmc::mpi, which adds MPI::MPI_CXX); it is not part of <tsmc/tsmc.hpp>
/// or <tsmc/all.hpp>, so programs that do not include <tsmc/distributed/...> never see MPI.

#include <tsmc/core/error.hpp>

// The layer uses MPI's C interface only: keep the deprecated MPI-2 C++ bindings out (they do not
// compile warning-free, and nothing here needs them).
#ifndef OMPI_SKIP_MPICXX
#define OMPI_SKIP_MPICXX 1
#endif
#ifndef MPICH_SKIP_MPICXX
#define MPICH_SKIP_MPICXX 1
#endif
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <limits>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace tsmc::distributed {

/// @brief Initialises MPI on construction (unless it already is) and finalises it on destruction
/// (if this object initialised it). Construct one at the top of main().
class mpi_environment {
 public:
  /// @brief MPI_Init_thread with MPI_THREAD_FUNNELED (OpenMP threads inside a rank make no MPI
  /// calls), unless MPI is already initialised.
  /// @throw tsmc::runtime_error if MPI could not be initialised
  mpi_environment(int& argc, char**& argv) {
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (initialized) return;
    int provided = 0;
    if (MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
      throw_runtime_error("distributed::mpi_environment", "MPI_Init_thread", "must succeed", "an MPI error");
    owner_ = true;
  }
  mpi_environment(const mpi_environment&) = delete;
  mpi_environment& operator=(const mpi_environment&) = delete;
  ~mpi_environment() {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (owner_ && !finalized) MPI_Finalize();
  }

 private:
  bool owner_ = false;
};

/// @brief What a communicator has spent on collectives: wall seconds inside MPI calls, bytes this
/// rank sent and received, and the number of calls.
struct communication_stats {
  double seconds = 0.0;         ///< wall time inside the collectives (waiting for slower ranks included)
  std::uint64_t bytes_sent = 0;      ///< payload bytes this rank contributed
  std::uint64_t bytes_received = 0;  ///< payload bytes this rank received from other ranks
  std::uint64_t calls = 0;           ///< collective calls
};

/// @brief The half-open range [begin, end) of a rank's share of `total` items when they are split
/// in contiguous blocks, in rank order, sizes differing by at most one.
struct block_range {
  std::size_t begin = 0;  ///< the first item of the rank
  std::size_t end = 0;    ///< one past its last item

  /// @brief The number of items.
  [[nodiscard]] std::size_t size() const noexcept { return end - begin; }

  /// @brief Rank r of `ranks` holds items [floor(r total / ranks), floor((r + 1) total / ranks)).
  [[nodiscard]] static constexpr block_range of(std::size_t total, std::size_t rank, std::size_t ranks) noexcept {
    return {split(total, rank, ranks), split(total, rank + 1, ranks)};
  }

  /// @brief The rank whose block holds item i (the inverse of of()).
  [[nodiscard]] static constexpr std::size_t owner(std::size_t total, std::size_t item, std::size_t ranks) noexcept {
    // the last rank whose block starts at or before the item (empty blocks are skipped over)
    std::size_t r = 0;
    while (r + 1 < ranks && split(total, r + 1, ranks) <= item) ++r;
    return r;
  }

 private:
  static constexpr std::size_t split(std::size_t total, std::size_t rank, std::size_t ranks) noexcept {
    // floor(total rank / ranks) without forming total * rank (which may overflow)
    return (total / ranks) * rank + ((total % ranks) * rank) / ranks;
  }
};

/// @brief A non-owning view of an MPI communicator (MPI_COMM_WORLD by default) with the
/// collectives the distributed layer uses. Every collective adds its wall time and bytes to
/// stats(), which is how the layer reports its communication cost.
class communicator {
 public:
  /// @brief A view of `comm` (MPI must be initialised).
  explicit communicator(MPI_Comm comm = MPI_COMM_WORLD) : comm_(comm) {
    int r = 0, s = 1;
    MPI_Comm_rank(comm_, &r);
    MPI_Comm_size(comm_, &s);
    rank_ = static_cast<std::size_t>(r);
    size_ = static_cast<std::size_t>(s);
  }

  /// @brief This process's rank in [0, size()).
  [[nodiscard]] std::size_t rank() const noexcept { return rank_; }
  /// @brief The number of ranks R.
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  /// @brief Whether this is rank 0 (the rank that writes histories, checkpoints and progress).
  [[nodiscard]] bool is_root() const noexcept { return rank_ == 0; }
  /// @brief The MPI communicator.
  [[nodiscard]] MPI_Comm native() const noexcept { return comm_; }
  /// @brief The communication spent so far.
  [[nodiscard]] const communication_stats& stats() const noexcept { return stats_; }
  /// @brief Zeroes stats().
  void reset_stats() noexcept { stats_ = {}; }

  /// @brief Aborts every rank of the job (MPI_Abort with exit code `code`), after printing
  /// "tsmc: rank r of R: <message>" to stderr. Never returns.
  [[noreturn]] void abort(const std::string& message, int code = 1) const noexcept {
    std::fprintf(stderr, "tsmc: rank %zu of %zu: %s\n", rank_, size_, message.c_str());
    std::fflush(stderr);
    MPI_Abort(comm_, code);
    std::abort();  // MPI_Abort does not return; this keeps [[noreturn]] honest if it did
  }

  /// @brief Waits for every rank.
  void barrier() {
    timer t(stats_);
    MPI_Barrier(comm_);
  }

  /// @brief Sums `values` element-wise over all ranks, in place (MPI_Allreduce, MPI_SUM).
  void allreduce_sum(std::span<double> values) {
    timer t(stats_);
    count(values.size_bytes(), values.size_bytes() * (size_ - 1));
    MPI_Allreduce(MPI_IN_PLACE, values.data(), checked_count(values.size(), "allreduce_sum"), MPI_DOUBLE, MPI_SUM, comm_);
  }

  /// @brief Sums `values` element-wise over all ranks, in place, in single precision (MPI_FLOAT):
  /// half the bytes of the double form.
  void allreduce_sum(std::span<float> values) {
    timer t(stats_);
    count(values.size_bytes(), values.size_bytes() * (size_ - 1));
    MPI_Allreduce(MPI_IN_PLACE, values.data(), checked_count(values.size(), "allreduce_sum"), MPI_FLOAT, MPI_SUM, comm_);
  }

  /// @brief The largest of `value` over all ranks.
  [[nodiscard]] std::uint64_t allreduce_max(std::uint64_t value) {
    timer t(stats_);
    count(sizeof value, sizeof value * (size_ - 1));
    std::uint64_t out = 0;
    MPI_Allreduce(&value, &out, 1, MPI_UINT64_T, MPI_MAX, comm_);
    return out;
  }

  /// @brief Sends root's bytes of a trivially copyable value to every rank.
  template <class T>
    requires std::is_trivially_copyable_v<T>
  void broadcast(T& value, std::size_t root = 0) {
    broadcast_bytes(std::span<std::byte>(reinterpret_cast<std::byte*>(&value), sizeof(T)), root);
  }

  /// @brief Sends root's values to every rank (the span has the same size on every rank).
  template <class T>
    requires std::is_trivially_copyable_v<T>
  void broadcast(std::span<T> values, std::size_t root = 0) {
    broadcast_bytes(std::as_writable_bytes(values), root);
  }

  /// @brief Every rank's block of doubles, concatenated in rank order, on every rank
  /// (MPI_Allgatherv). Blocks may differ in size.
  [[nodiscard]] std::vector<double> allgather(std::span<const double> local) {
    const std::vector<int> counts = gather_counts(local.size(), "allgather");
    std::vector<int> displacements(size_, 0);
    std::size_t total = 0;
    for (std::size_t r = 0; r < size_; ++r) {
      displacements[r] = checked_count(total, "allgather");
      total += static_cast<std::size_t>(counts[r]);
    }
    std::vector<double> out(total);
    timer t(stats_);
    count(local.size_bytes() * (size_ - 1), (total - local.size()) * sizeof(double));
    MPI_Allgatherv(local.data(), static_cast<int>(local.size()), MPI_DOUBLE, out.data(), counts.data(),
                   displacements.data(), MPI_DOUBLE, comm_);
    return out;
  }

  /// @brief Every rank's block of doubles, concatenated in rank order, on `root` only (MPI_Gatherv);
  /// other ranks get an empty vector.
  [[nodiscard]] std::vector<double> gather(std::span<const double> local, std::size_t root = 0) {
    const std::vector<int> counts = gather_counts(local.size(), "gather");
    std::vector<int> displacements(size_, 0);
    std::size_t total = 0;
    for (std::size_t r = 0; r < size_; ++r) {
      displacements[r] = checked_count(total, "gather");
      total += static_cast<std::size_t>(counts[r]);
    }
    std::vector<double> out(rank_ == root ? total : 0);
    timer t(stats_);
    if (rank_ == root)
      count(0, (total - local.size()) * sizeof(double));
    else
      count(local.size_bytes(), 0);
    MPI_Gatherv(local.data(), static_cast<int>(local.size()), MPI_DOUBLE, out.data(), counts.data(),
                displacements.data(), MPI_DOUBLE, static_cast<int>(root), comm_);
    return out;
  }

  /// @brief Personalised exchange of byte buffers: send[r] goes to rank r, and the result's
  /// element r is what rank r sent here (MPI_Alltoall of the sizes, then MPI_Alltoallv). The
  /// buffer to and from this rank itself is copied locally.
  [[nodiscard]] std::vector<std::vector<std::byte>> exchange(const std::vector<std::vector<std::byte>>& send) {
    check_size("distributed::communicator::exchange", "send.size()", send.size(), "the number of ranks", size_);
    std::vector<int> send_counts(size_), receive_counts(size_);
    for (std::size_t r = 0; r < size_; ++r) send_counts[r] = checked_count(send[r].size(), "exchange");
    timer t(stats_);
    MPI_Alltoall(send_counts.data(), 1, MPI_INT, receive_counts.data(), 1, MPI_INT, comm_);
    std::vector<int> send_displacements(size_, 0), receive_displacements(size_, 0);
    std::size_t send_total = 0, receive_total = 0;
    for (std::size_t r = 0; r < size_; ++r) {
      send_displacements[r] = checked_count(send_total, "exchange");
      receive_displacements[r] = checked_count(receive_total, "exchange");
      send_total += static_cast<std::size_t>(send_counts[r]);
      receive_total += static_cast<std::size_t>(receive_counts[r]);
    }
    std::vector<std::byte> packed(send_total), unpacked(receive_total);
    for (std::size_t r = 0; r < size_; ++r)
      std::copy(send[r].begin(), send[r].end(), packed.begin() + send_displacements[r]);
    MPI_Alltoallv(packed.data(), send_counts.data(), send_displacements.data(), MPI_BYTE, unpacked.data(),
                  receive_counts.data(), receive_displacements.data(), MPI_BYTE, comm_);
    const std::size_t self_bytes = send[rank_].size();
    count(send_total - self_bytes, receive_total - self_bytes);
    std::vector<std::vector<std::byte>> out(size_);
    for (std::size_t r = 0; r < size_; ++r)
      out[r].assign(unpacked.begin() + receive_displacements[r],
                    unpacked.begin() + receive_displacements[r] + receive_counts[r]);
    return out;
  }

 private:
  /// Adds a collective's wall time to the stats.
  class timer {
   public:
    explicit timer(communication_stats& stats) : stats_(stats), start_(std::chrono::steady_clock::now()) {}
    timer(const timer&) = delete;
    timer& operator=(const timer&) = delete;
    ~timer() {
      stats_.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
      ++stats_.calls;
    }

   private:
    communication_stats& stats_;
    std::chrono::steady_clock::time_point start_;
  };

  void count(std::size_t sent, std::size_t received) noexcept {
    stats_.bytes_sent += sent;
    stats_.bytes_received += received;
  }

  static int checked_count(std::size_t n, const char* what) {
    check_argument(n <= static_cast<std::size_t>(std::numeric_limits<int>::max()),
                   std::string("distributed::communicator::") + what, "the element count", "must fit an MPI int count",
                   n);
    return static_cast<int>(n);
  }

  void broadcast_bytes(std::span<std::byte> bytes, std::size_t root) {
    timer t(stats_);
    if (rank_ == root)
      count(bytes.size() * (size_ - 1), 0);
    else
      count(0, bytes.size());
    MPI_Bcast(bytes.data(), checked_count(bytes.size(), "broadcast"), MPI_BYTE, static_cast<int>(root), comm_);
  }

  std::vector<int> gather_counts(std::size_t local, const char* what) {
    int mine = checked_count(local, what);
    std::vector<int> counts(size_);
    timer t(stats_);
    MPI_Allgather(&mine, 1, MPI_INT, counts.data(), 1, MPI_INT, comm_);
    return counts;
  }

  MPI_Comm comm_;
  std::size_t rank_ = 0;
  std::size_t size_ = 1;
  communication_stats stats_;
};

/// @brief Runs `work()` and returns its result; if it throws, aborts the whole job (every rank)
/// with "tsmc: rank r of R: <function>: <what()>" on stderr instead of letting the other ranks
/// wait forever in their next collective. The distributed algorithms wrap each rank's local work
/// in it; wrap a program's main body in it too.
/// @param comm the communicator whose job is aborted
/// @param function what was running (for the message)
/// @param work a callable
/// @return work()'s result
template <class Work>
decltype(auto) run_or_abort(communicator& comm, std::string_view function, Work&& work) noexcept {
  try {
    return std::forward<Work>(work)();
  } catch (const std::exception& e) {
    comm.abort(std::string(function) + ": " + e.what());
  } catch (...) {
    comm.abort(std::string(function) + ": an exception not derived from std::exception");
  }
}

}  // namespace tsmc::distributed
