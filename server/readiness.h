// Whether this replica can serve payments: Redis answers. Checked on a thread of its own every
// interval, so the readiness probes (gRPC health for flikpay.v1.PaymentService, admin /readyz) read
// a value instead of each making a Redis round trip, and the gRPC health service is told when it
// changes. Liveness never follows it: a replica restarted because Redis is away gains nothing.
#ifndef FLIKPAY_SERVER_READINESS_H_
#define FLIKPAY_SERVER_READINESS_H_

#include <atomic>
#include <functional>
#include <thread>

#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

namespace flikpay::server {

class ReadinessWatch {
 public:
  // `check` answers whether the dependencies answer; `on_change` hears every change (and the first
  // answer), on the watch's thread.
  ReadinessWatch(std::function<bool()> check, absl::Duration interval,
                 std::function<void(bool ready)> on_change);
  ~ReadinessWatch();
  ReadinessWatch(const ReadinessWatch&) = delete;
  ReadinessWatch& operator=(const ReadinessWatch&) = delete;

  // Checks once before returning, so a replica is not reported ready before it has looked.
  void Start();
  // No more checks or changes after this returns.
  void Stop();
  bool ready() const { return ready_.load(); }

 private:
  void CheckOnce();

  const std::function<bool()> check_;
  const absl::Duration interval_;
  const std::function<void(bool)> on_change_;
  std::atomic<bool> ready_{false};
  bool reported_ = false;  // on the watch's thread (or Start's, before it runs)
  absl::Notification stop_;
  std::thread thread_;
};

}  // namespace flikpay::server

#endif  // FLIKPAY_SERVER_READINESS_H_
