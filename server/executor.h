#ifndef FLIKPAY_SERVER_EXECUTOR_H_
#define FLIKPAY_SERVER_EXECUTOR_H_

#include <deque>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace flikpay::server {

// A fixed pool of threads for blocking work (gateway calls, Redis), so gRPC reactions never block.
// Separate pools keep a slow gateway from starving store reads. The queue is bounded: work beyond
// it is refused (the caller answers RESOURCE_EXHAUSTED) instead of piling up in memory.
class Executor {
 public:
  Executor(std::string name, int threads, size_t max_queued);
  ~Executor();  // finishes queued work, then joins
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  // False, and `task` dropped, when `max_queued` tasks are already waiting.
  [[nodiscard]] bool Run(std::function<void()> task);
  size_t queued() const;

 private:
  void Loop();

  std::string name_;
  const size_t max_queued_;
  mutable absl::Mutex mutex_;
  std::deque<std::function<void()>> queue_ ABSL_GUARDED_BY(mutex_);
  bool stopping_ ABSL_GUARDED_BY(mutex_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace flikpay::server

#endif  // FLIKPAY_SERVER_EXECUTOR_H_
