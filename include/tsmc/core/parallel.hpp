#pragma once
/// @file
/// @brief tsmc::detail::parallel_for (loop iterations claimed one at a time by a small pool of
/// passively waiting threads) and tsmc::detail::tiled_product (a matrix product split into fixed
/// column tiles shared that way), with results that do not depend on the number of threads.
///
/// Why not OpenMP's own `parallel for`: on a machine where other processes keep the cores busy,
/// a statically split loop waits at its closing barrier for the share of a thread that the
/// operating system has descheduled, and libgomp's waiting threads spin; with 2 threads on a
/// loaded 2-core machine whole runs took 3-10 times as long as with 1 thread. Here the calling
/// thread claims iterations too and waits only for iterations that another thread has actually
/// started: a helper that is not scheduled in time simply takes no share, so a loop is never
/// much slower than running it alone. The helpers sleep (a condition variable) between loops.
/// The number of threads is still OpenMP's (OMP_NUM_THREADS, omp_set_num_threads()); without
/// OpenMP every loop runs on the calling thread.

#include <Eigen/Core>

#include <algorithm>
#include <cstdint>

#ifdef _OPENMP
#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include <omp.h>
#endif

namespace tsmc::detail {

/// @brief The number of threads the library's parallel loops may use: omp_get_max_threads() when
/// compiled with OpenMP (OMP_NUM_THREADS, omp_set_num_threads()), 1 inside an active OpenMP
/// parallel region (the caller already runs threads) and without OpenMP.
[[nodiscard]] inline int parallel_threads() noexcept {
#ifdef _OPENMP
  if (omp_in_parallel()) return 1;
  return std::max(1, omp_get_max_threads());
#else
  return 1;
#endif
}

/// @brief Makes Eigen's matrix products on this thread single-threaded while it lives.
///
/// Why: Eigen's OpenMP GEMM chooses its depth blocking from the number of threads, so its
/// rounding would change with the thread count. Eigen asks omp_get_max_threads(), a per-thread
/// setting: the guard sets it to 1 and restores it.
class eigen_single_thread {
 public:
  eigen_single_thread() noexcept {
#ifdef _OPENMP
    saved_ = omp_get_max_threads();
    if (saved_ != 1) omp_set_num_threads(1);
#endif
  }
  ~eigen_single_thread() {
#ifdef _OPENMP
    if (saved_ != 1) omp_set_num_threads(saved_);
#endif
  }
  eigen_single_thread(const eigen_single_thread&) = delete;
  eigen_single_thread& operator=(const eigen_single_thread&) = delete;

 private:
  [[maybe_unused]] int saved_ = 1;  // unused without OpenMP
};

#ifdef _OPENMP
/// @brief The helper threads behind parallel_for: created on first use, sleeping between loops,
/// joined at exit. One loop at a time; a loop submitted while another runs (from another thread)
/// runs on its caller alone.
class thread_pool {
 public:
  /// The process-wide pool.
  static thread_pool& shared() {
    static thread_pool pool;
    return pool;
  }

  thread_pool() = default;
  thread_pool(const thread_pool&) = delete;
  thread_pool& operator=(const thread_pool&) = delete;
  ~thread_pool() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    for (auto& w : workers_) w.join();
  }

  /// @brief Calls task(i, slot) once for every i in [0, count), on this thread and up to
  /// `threads` - 1 helpers; slot in [0, threads) is unique among the threads of this loop (this
  /// thread's is 0). Returns when every call has returned. task must not throw.
  template <class Task>
  void run(std::int64_t count, int threads, Task& task) {
    std::unique_lock<std::mutex> submit(submit_, std::try_to_lock);
    if (!submit.owns_lock()) {  // another thread's loop is running: this one runs alone
      for (std::int64_t i = 0; i < count; ++i) task(i, 0);
      return;
    }
    auto j = std::make_shared<job>();
    j->count = count;
    j->threads = threads;
    j->task = &task;
    j->call = [](void* t, std::int64_t i, int slot) { (*static_cast<Task*>(t))(i, slot); };
    {
      std::lock_guard<std::mutex> lock(mutex_);
      while (workers_.size() + 1 < static_cast<std::size_t>(threads))
        workers_.emplace_back([this] { work(); });
      current_ = j;
      ++generation_;
    }
    wake_.notify_all();
    claim(*j, 0);
    // Wait only for iterations a helper has started (never for a helper that has not woken).
    for (std::int64_t d = j->done.load(); d < count; d = j->done.load()) j->done.wait(d);
    std::lock_guard<std::mutex> lock(mutex_);
    if (current_ == j) current_.reset();
  }

 private:
  struct job {
    std::atomic<std::int64_t> next{0};  // the next unclaimed iteration
    std::atomic<std::int64_t> done{0};  // iterations finished
    std::atomic<int> slots{1};          // slots handed out (0 is the caller's)
    std::int64_t count = 0;
    int threads = 1;
    void* task = nullptr;
    void (*call)(void*, std::int64_t, int) = nullptr;
  };

  // Claims and runs iterations until none is left. A helper that wakes after the loop has
  // finished claims nothing and never touches the task (the job itself it co-owns).
  static void claim(job& j, int slot) {
    for (std::int64_t i = j.next.fetch_add(1); i < j.count; i = j.next.fetch_add(1)) {
      j.call(j.task, i, slot);
      if (j.done.fetch_add(1) + 1 == j.count) j.done.notify_all();
    }
  }

  void work() {
    omp_set_num_threads(1);  // Eigen products inside a task stay single-threaded (see eigen_single_thread)
    std::uint64_t seen = 0;
    for (;;) {
      std::shared_ptr<job> j;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
        if (stop_) return;
        seen = generation_;
        j = current_;
      }
      if (!j) continue;
      const int slot = j->slots.fetch_add(1);
      if (slot < j->threads) claim(*j, slot);
    }
  }

  std::mutex submit_;  // held by the thread whose loop is running
  std::mutex mutex_;   // guards the members below
  std::condition_variable wake_;
  std::shared_ptr<job> current_;
  std::uint64_t generation_ = 0;
  bool stop_ = false;
  std::vector<std::thread> workers_;
};
#endif

/// @brief Calls task(i, slot) once for every i in [0, count), shared among up to `threads`
/// threads (this one included) that claim iterations one at a time; slot in [0, threads) tells
/// apart the threads running at the same time (an index into per-thread scratch buffers).
///
/// Which thread runs which iteration varies from run to run, so a task must write only what
/// belongs to its iteration (and use the slot's scratch only as scratch): then the results do not
/// depend on the number of threads. Eigen products inside a task run single-threaded. task must
/// not throw (as in an OpenMP loop).
/// @param count the number of iterations
/// @param threads the most threads to use (1: run on this thread); at most parallel_threads()
/// are used
/// @param task callable as task(std::int64_t i, int slot)
template <class Task>
void parallel_for(std::int64_t count, int threads, Task&& task) {
  threads = std::min(threads, parallel_threads());  // before the guard, which makes it 1
  const eigen_single_thread single;
  if (count <= 0) return;
#ifdef _OPENMP
  if (threads > 1 && count > 1) {
    thread_pool::shared().run(count, static_cast<int>(std::min<std::int64_t>(threads, count)), task);
    return;
  }
#endif
  for (std::int64_t i = 0; i < count; ++i) task(i, 0);
}

/// @brief The width of the column tiles of tiled_product for `cols` output columns: about an
/// eighth of them, a multiple of 16, at least 64. A function of the shape only.
[[nodiscard]] inline Eigen::Index product_tile_width(Eigen::Index cols) noexcept {
  const Eigen::Index eighth = (cols + 7) / 8;
  return std::max<Eigen::Index>(64, (eighth + 15) / 16 * 16);
}

/// @brief dst = lhs * rhs (or dst += lhs * rhs when `accumulate`), computed tile by tile over
/// fixed ranges of dst's columns, the tiles shared by parallel_for's threads.
///
/// Why: Eigen's own OpenMP GEMM chooses its depth blocking from the number of threads, so the
/// rounding of a product changes with the thread count. Here every tile is a single-threaded
/// Eigen product whose shape depends only on the operands' sizes, so each entry is summed in the
/// same order whatever the thread count. Products under 100000 multiply-adds, which Eigen never
/// parallelises, run directly (waking threads costs more than they do).
/// @param dst rows x cols (a writable Eigen expression: matrix, block or map)
/// @param lhs rows x depth
/// @param rhs depth x cols
/// @param accumulate add to dst instead of overwriting it
template <class Dst, class Lhs, class Rhs>
void tiled_product(Dst&& dst, const Lhs& lhs, const Rhs& rhs, bool accumulate = false) {
  const Eigen::Index cols = dst.cols();
  if (cols == 0 || dst.rows() == 0) return;
  // Below 2 x 50000 multiply-adds Eigen never splits a product among threads (its
  // parallelize_gemm asks for work / 50000 threads): run it directly.
  if (static_cast<double>(dst.rows()) * static_cast<double>(cols) * static_cast<double>(lhs.cols()) < 100000.0) {
    if (accumulate)
      dst.noalias() += lhs * rhs;
    else
      dst.noalias() = lhs * rhs;
    return;
  }
  const Eigen::Index width = product_tile_width(cols);
  const auto tiles = static_cast<std::int64_t>((cols + width - 1) / width);
  // Even a one-tile product goes through parallel_for, whose guard keeps Eigen single-threaded.
  parallel_for(tiles, parallel_threads(), [&](std::int64_t i, int) {
    const Eigen::Index from = static_cast<Eigen::Index>(i) * width;
    const Eigen::Index w = std::min(width, cols - from);
    if (accumulate)
      dst.middleCols(from, w).noalias() += lhs * rhs.middleCols(from, w);
    else
      dst.middleCols(from, w).noalias() = lhs * rhs.middleCols(from, w);
  });
}

}  // namespace tsmc::detail
