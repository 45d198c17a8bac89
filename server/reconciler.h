#ifndef FLIKPAY_SERVER_RECONCILER_H_
#define FLIKPAY_SERVER_RECONCILER_H_

#include <atomic>
#include <string>
#include <thread>

#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "server/log.h"
#include "server/metrics.h"
#include "server/payment_service.h"
#include "store/store.h"

namespace flikpay::server {

struct ReconcilerConfig {
  absl::Duration interval = absl::Seconds(1);  // between passes over the watch list
  int batch = 20;                              // transactions per pass
  std::string owner;                           // this replica, for leases
  absl::Duration lease = absl::Seconds(30);
  // How long an UNKNOWN transaction the gateway does not know is given before it is ERROR.
  absl::Duration not_found_grace = absl::Seconds(60);
  absl::Duration query_timeout = absl::Seconds(10);
};

// Runs in every replica. Finds transactions that are not final and are due a check (an unknown
// outcome, a PENDING past its expiry, a PENDING with no news:
// a lost callback), takes a lease so one replica works on each, asks Bankart's status API and
// applies the answer through the same state machine as a callback.
class Reconciler {
 public:
  Reconciler(PaymentService& service, store::Store& store, Metrics& metrics,
             ReconcilerConfig config);
  ~Reconciler();

  void Start();
  void Stop();
  void RunOnce();

 private:
  // Checks one due transaction, if no other replica has it (the service takes the status query
  // from Bankart's quota by the transaction's priority).
  void CheckOne(const std::string& id);
  // Says that a store operation failed, now and then (the next pass retries it).
  void StoreFailed(absl::string_view what, absl::string_view id, const absl::Status& status);

  PaymentService& service_;
  store::Store& store_;
  Metrics& metrics_;
  ReconcilerConfig config_;
  absl::Notification stop_;
  std::thread thread_;
  // Passes that could not read the watch list, and other store operations that failed; used by the
  // reconciler thread only.
  RepeatedFailureLog store_failures_{60};
  RepeatedFailureLog operation_failures_{60};
};

}  // namespace flikpay::server

#endif  // FLIKPAY_SERVER_RECONCILER_H_
