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
// Separate pools keep a slow gateway from starving store reads.
class Executor {
 public:
  Executor(std::string name, int threads);
  ~Executor();  // finishes queued work, then joins
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  void Run(std::function<void()> task);

 private:
  void Loop();

  std::string name_;
  absl::Mutex mutex_;
  std::deque<std::function<void()>> queue_ ABSL_GUARDED_BY(mutex_);
  bool stopping_ ABSL_GUARDED_BY(mutex_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace flikpay::server

#endif  // FLIKPAY_SERVER_EXECUTOR_H_
