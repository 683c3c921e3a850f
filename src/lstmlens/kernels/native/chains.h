// Concurrent chains of work for the wavefront schedule (wavefront.h): one thread per chain, the
// chains handing results to each other through a Board of progress counters.
//
// Each chain runs with the caller's thread-local state (grad mode, inference mode, the
// dispatch keys autograd set: at::ThreadLocalState, as at::parallel_for does) and with every
// matmul and row loop on its own thread (SerialScope: OpenMP and MKL set per thread, so torch's
// intra-op pool and the caller's settings are untouched). The first chain runs on the caller's
// thread. The first error raised in any chain stops the others and is rethrown to the caller.
#pragma once

#include <ATen/ATen.h>
#include <ATen/ThreadLocalState.h>

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "common.h"

namespace lstmlens {

// How far each chain has got: chain k posts n when its first n pieces are done.
class Board {
 public:
  struct Stopped {};  // thrown in a waiting chain when another chain failed

  explicit Board(size_t chains) : done_(chains, 0) {}

  void post(size_t chain, int64_t n) {
    {
      std::lock_guard<std::mutex> lock(m_);
      done_[chain] = n;
    }
    cv_.notify_all();
  }

  // blocks until `chain` has posted n (or more); throws Stopped when another chain failed
  void wait(size_t chain, int64_t n) {
    std::unique_lock<std::mutex> lock(m_);
    cv_.wait(lock, [&] { return failed_ || done_[chain] >= n; });
    if (failed_) throw Stopped{};
  }

  void fail(std::exception_ptr e) {
    {
      std::lock_guard<std::mutex> lock(m_);
      if (!error_) error_ = e;
      failed_ = true;
    }
    cv_.notify_all();
  }

  std::exception_ptr error() {
    std::lock_guard<std::mutex> lock(m_);
    return error_;
  }

 private:
  std::mutex m_;
  std::condition_variable cv_;
  std::vector<int64_t> done_;
  bool failed_ = false;
  std::exception_ptr error_;
};

// Runs chain(k) for k in [0, n), each on its own thread (chain 0 on the caller's), and waits
// for all of them; rethrows the first error.
inline void run_chains(size_t n, const std::function<void(size_t, Board&)>& chain) {
  Board board(n);
  const at::ThreadLocalState state;
  auto body = [&](size_t k) {
    try {
      at::ThreadLocalStateGuard guard(state);
      (void)at::get_num_threads();  // ATen's lazy per-thread setup first, or it undoes the next
      SerialScope serial(true);
      chain(k, board);
    } catch (const Board::Stopped&) {
    } catch (...) {
      board.fail(std::current_exception());
    }
  };
  std::vector<std::thread> threads;
  threads.reserve(n);
  for (size_t k = 1; k < n; ++k) threads.emplace_back(body, k);
  body(0);
  for (auto& t : threads) t.join();
  if (auto e = board.error()) std::rethrow_exception(e);
}

}  // namespace lstmlens
