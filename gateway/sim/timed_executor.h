#ifndef FLIKPAY_GATEWAY_SIM_TIMED_EXECUTOR_H_
#define FLIKPAY_GATEWAY_SIM_TIMED_EXECUTOR_H_

#include <cstdint>
#include <functional>
#include <map>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace flikpay::sim {

// Runs tasks at or after a given time on a fixed set of worker threads, so one slow task (a
// callback to a receiver that hangs) does not hold back the others.
class TimedExecutor {
 public:
  explicit TimedExecutor(int workers);
  ~TimedExecutor();  // drops tasks not yet due, waits for running ones
  TimedExecutor(const TimedExecutor&) = delete;
  TimedExecutor& operator=(const TimedExecutor&) = delete;

  void RunAt(absl::Time when, std::function<void()> task);
  void RunAfter(absl::Duration delay, std::function<void()> task) {
    RunAt(absl::Now() + delay, std::move(task));
  }

 private:
  void WorkerLoop();

  absl::Mutex mutex_;
  absl::CondVar changed_;
  // Ordered by due time, then by submission order so equal times keep FIFO order.
  std::map<std::pair<absl::Time, uint64_t>, std::function<void()>> tasks_ ABSL_GUARDED_BY(mutex_);
  uint64_t next_sequence_ ABSL_GUARDED_BY(mutex_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mutex_) = false;
  std::vector<std::thread> workers_;
};

}  // namespace flikpay::sim

#endif  // FLIKPAY_GATEWAY_SIM_TIMED_EXECUTOR_H_
