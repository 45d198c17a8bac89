#include "gateway/sim/timed_executor.h"

namespace flikpay::sim {

TimedExecutor::TimedExecutor(int workers) {
  for (int i = 0; i < workers; ++i) workers_.emplace_back([this] { WorkerLoop(); });
}

TimedExecutor::~TimedExecutor() {
  {
    absl::MutexLock lock(&mutex_);
    stopping_ = true;
    tasks_.clear();
    changed_.SignalAll();
  }
  for (std::thread& worker : workers_) worker.join();
}

void TimedExecutor::RunAt(absl::Time when, std::function<void()> task) {
  absl::MutexLock lock(&mutex_);
  if (stopping_) return;
  tasks_.emplace(std::make_pair(when, next_sequence_++), std::move(task));
  changed_.SignalAll();
}

void TimedExecutor::WorkerLoop() {
  while (true) {
    std::function<void()> task;
    {
      absl::MutexLock lock(&mutex_);
      while (!stopping_) {
        if (tasks_.empty()) {
          changed_.Wait(&mutex_);
          continue;
        }
        const absl::Time due = tasks_.begin()->first.first;
        if (due <= absl::Now()) break;
        changed_.WaitWithDeadline(&mutex_, due);
      }
      if (stopping_) return;
      task = std::move(tasks_.begin()->second);
      tasks_.erase(tasks_.begin());
    }
    task();
  }
}

}  // namespace flikpay::sim
