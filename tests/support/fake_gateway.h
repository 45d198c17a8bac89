// A Gateway whose answers a test sets, and which remembers what it was asked:
// the fast tier tests the service's decisions without HTTP. The real adapter is tested against
// bankart-sim over HTTP.
#ifndef FLIKPAY_TESTS_SUPPORT_FAKE_GATEWAY_H_
#define FLIKPAY_TESTS_SUPPORT_FAKE_GATEWAY_H_

#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "gateway/gateway.h"

namespace flikpay::testing {

class FakeGateway : public gateway::Gateway {
 public:
  // What every send (debit, refund, payout) answers until changed.
  void AnswerSends(absl::StatusOr<gateway::SubmitOutcome> answer) {
    absl::MutexLock lock(&mutex_);
    send_answer_ = std::move(answer);
  }
  void AnswerStatus(absl::StatusOr<gateway::StatusReport> answer) {
    absl::MutexLock lock(&mutex_);
    status_answer_ = std::move(answer);
  }
  void AnswerCallbacks(absl::StatusOr<gateway::CallbackEvent> answer) {
    absl::MutexLock lock(&mutex_);
    callback_answer_ = std::move(answer);
  }

  std::vector<gateway::DebitRequest> debits() {
    absl::MutexLock lock(&mutex_);
    return debits_;
  }
  std::vector<gateway::RefundRequest> refunds() {
    absl::MutexLock lock(&mutex_);
    return refunds_;
  }
  std::vector<gateway::PayoutRequest> payouts() {
    absl::MutexLock lock(&mutex_);
    return payouts_;
  }
  int status_queries() {
    absl::MutexLock lock(&mutex_);
    return status_queries_;
  }

  absl::StatusOr<gateway::SubmitOutcome> Debit(const gateway::DebitRequest& request,
                                               absl::Time) override {
    absl::MutexLock lock(&mutex_);
    debits_.push_back(request);
    return send_answer_;
  }
  absl::StatusOr<gateway::SubmitOutcome> Refund(const gateway::RefundRequest& request,
                                                absl::Time) override {
    absl::MutexLock lock(&mutex_);
    refunds_.push_back(request);
    return send_answer_;
  }
  absl::StatusOr<gateway::SubmitOutcome> Payout(const gateway::PayoutRequest& request,
                                                absl::Time) override {
    absl::MutexLock lock(&mutex_);
    payouts_.push_back(request);
    return send_answer_;
  }
  absl::StatusOr<gateway::StatusReport> StatusByUuid(gateway::Connector, absl::string_view,
                                                     absl::Time) override {
    absl::MutexLock lock(&mutex_);
    ++status_queries_;
    return status_answer_;
  }
  absl::StatusOr<gateway::StatusReport> StatusByMerchantTransactionId(gateway::Connector,
                                                                      absl::string_view,
                                                                      absl::Time) override {
    absl::MutexLock lock(&mutex_);
    ++status_queries_;
    return status_answer_;
  }
  absl::StatusOr<gateway::CallbackEvent> VerifyCallback(const gateway::InboundCallback&) override {
    absl::MutexLock lock(&mutex_);
    return callback_answer_;
  }

 private:
  absl::Mutex mutex_;
  absl::StatusOr<gateway::SubmitOutcome> send_answer_ ABSL_GUARDED_BY(mutex_) =
      absl::InternalError("the test set no answer");
  absl::StatusOr<gateway::StatusReport> status_answer_ ABSL_GUARDED_BY(mutex_) =
      absl::InternalError("the test set no answer");
  absl::StatusOr<gateway::CallbackEvent> callback_answer_ ABSL_GUARDED_BY(mutex_) =
      absl::UnauthenticatedError("the test set no answer");
  std::vector<gateway::DebitRequest> debits_ ABSL_GUARDED_BY(mutex_);
  std::vector<gateway::RefundRequest> refunds_ ABSL_GUARDED_BY(mutex_);
  std::vector<gateway::PayoutRequest> payouts_ ABSL_GUARDED_BY(mutex_);
  int status_queries_ ABSL_GUARDED_BY(mutex_) = 0;
};

}  // namespace flikpay::testing

#endif  // FLIKPAY_TESTS_SUPPORT_FAKE_GATEWAY_H_
