#ifndef FLIKPAY_TESTS_SUPPORT_CALLBACK_RECEIVER_H_
#define FLIKPAY_TESTS_SUPPORT_CALLBACK_RECEIVER_H_

#include <httplib.h>

#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "gateway/gateway.h"

namespace flikpay::testing {

// A real HTTP endpoint on loopback that stands where flikpay's callback listener will: it records
// every request exactly as received and answers "OK", or fails on purpose.
class CallbackReceiver {
 public:
  CallbackReceiver();
  ~CallbackReceiver();

  int port() const { return port_; }
  // The callbackUrl to hand to the gateway; `query` (without '?') is appended when set.
  std::string Url(const std::string& query = "") const;

  // The next `count` callbacks are answered HTTP 500, so the sender must retry.
  void FailNext(int count);

  // Waits for the `nth` (1-based) callback whose body mentions `merchant_transaction_id`.
  std::optional<gateway::InboundCallback> WaitFor(const std::string& merchant_transaction_id,
                                                  int nth = 1,
                                                  absl::Duration timeout = absl::Seconds(10));
  int CountFor(const std::string& merchant_transaction_id);
  std::vector<gateway::InboundCallback> All();

 private:
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  absl::Mutex mutex_;
  std::vector<gateway::InboundCallback> received_ ABSL_GUARDED_BY(mutex_);
  int fail_next_ ABSL_GUARDED_BY(mutex_) = 0;
};

}  // namespace flikpay::testing

#endif  // FLIKPAY_TESTS_SUPPORT_CALLBACK_RECEIVER_H_
