#include "server/readiness.h"

#include <utility>

namespace flikpay::server {

ReadinessWatch::ReadinessWatch(std::function<bool()> check, absl::Duration interval,
                               std::function<void(bool)> on_change)
    : check_(std::move(check)), interval_(interval), on_change_(std::move(on_change)) {}

ReadinessWatch::~ReadinessWatch() { Stop(); }

void ReadinessWatch::Start() {
  CheckOnce();
  thread_ = std::thread([this] {
    while (!stop_.WaitForNotificationWithTimeout(interval_)) CheckOnce();
  });
}

void ReadinessWatch::Stop() {
  if (!stop_.HasBeenNotified()) stop_.Notify();
  if (thread_.joinable()) thread_.join();
}

void ReadinessWatch::CheckOnce() {
  const bool now_ready = check_();
  const bool was_ready = ready_.exchange(now_ready);
  if (!reported_ || was_ready != now_ready) {
    reported_ = true;
    on_change_(now_ready);
  }
}

}  // namespace flikpay::server
