// Block-parallel loops over events.
//
// Events are cut into fixed blocks of kBlock starting at event 0, whatever the
// thread count, so every event is computed by the same code path and results
// do not depend on the number of threads.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "rooml/kernels.h"

namespace rooml {

/// Call body(worker, begin, count) for each block of kBlock events, on up to `threads` threads.
/// The first exception thrown by any block is rethrown after all workers stop.
template <class Body>
void for_each_block(std::size_t n, int threads, Body&& body) {
  const std::size_t blocks = (n + kBlock - 1) / kBlock;
  const std::size_t workers = std::max<std::size_t>(1, std::min<std::size_t>(threads, blocks));
  std::atomic<std::size_t> next{0};
  std::exception_ptr error;
  std::mutex error_mutex;
  auto run = [&](std::size_t worker) {
    try {
      for (std::size_t b = next++; b < blocks; b = next++) {
        const std::size_t begin = b * kBlock;
        body(worker, begin, std::min(kBlock, n - begin));
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mutex);
      if (!error) error = std::current_exception();
      next = blocks;
    }
  };
  if (workers == 1) {
    run(0);
  } else {
    std::vector<std::thread> pool;
    for (std::size_t w = 1; w < workers; ++w) pool.emplace_back(run, w);
    run(0);
    for (auto& t : pool) t.join();
  }
  if (error) std::rethrow_exception(error);
}

}  // namespace rooml
