#ifndef FLIKPAY_SERVER_PAYMENT_SERVICE_H_
#define FLIKPAY_SERVER_PAYMENT_SERVICE_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "flikpay/v1/payment_service.pb.h"
#include "gateway/gateway.h"
#include "server/metrics.h"
#include "store/store.h"

namespace flikpay::server {

struct ServiceConfig {
  // The URL Bankart calls back, e.g.
  // "https://pay.example.com/callbacks/bankart". flikpay adds
  // "?connector=NAME" so the listener knows whose secret signs the callback.
  std::string public_callback_url;
  // Kept back from the caller's deadline to store the gateway's answer before
  // answering.
  absl::Duration store_margin = absl::Milliseconds(250);
};

// What flikpay does, without any transport: plain blocking methods, called from
// the gRPC service's executors and the callback listener's threads. Every error
// is an absl::Status whose code is the gRPC code to answer with.
class PaymentService {
 public:
  PaymentService(gateway::Gateway& gateway, store::Store& store,
                 Metrics& metrics, ServiceConfig config);

  absl::StatusOr<v1::Transaction> CreateRtp(const v1::CreateRtpRequest& request,
                                            absl::Time deadline);
  absl::StatusOr<v1::Transaction> Refund(const v1::RefundRequest& request,
                                         absl::Time deadline);
  absl::StatusOr<v1::Transaction> Payout(const v1::PayoutRequest& request,
                                         absl::Time deadline);
  absl::StatusOr<v1::Transaction> GetStatus(const v1::GetStatusRequest& request,
                                            absl::Time deadline);

  // Asks the gateway's status API about a transaction that is not final and
  // applies the answer (source RECONCILER). An UNKNOWN transaction the gateway
  // does not know, older than `not_found_grace`, becomes ERROR: nothing was
  // created.
  absl::StatusOr<v1::Transaction> Reconcile(
      const std::string& merchant_transaction_id, absl::Time deadline,
      absl::Duration not_found_grace);

  struct HttpAnswer {
    int status = 200;
    std::string body;
  };
  // A gateway callback as received: 401 for a bad or stale signature, 400 for a
  // malformed body (nothing stored in either case), 503 when Redis is down
  // (Bankart retries), 200 "OK" once the change is stored.
  HttpAnswer HandleCallback(const gateway::InboundCallback& callback);

 private:
  // Claims the id; answers the stored transaction, ALREADY_EXISTS or ABORTED
  // when taken.
  absl::StatusOr<bool> Claim(const absl::StatusOr<store::BeginResult>& claimed,
                             v1::Transaction& answer);
  // Records what the gateway said about a money-moving request and answers the
  // caller.
  absl::StatusOr<v1::Transaction> Record(
      const std::string& merchant_transaction_id,
      const absl::StatusOr<gateway::SubmitOutcome>& outcome,
      absl::Time deadline);
  absl::StatusOr<v1::Transaction> Refresh(const v1::Transaction& transaction,
                                          absl::Time deadline);
  absl::StatusOr<gateway::Connector> ConnectorOf(
      const v1::Transaction& transaction);
  std::string CallbackUrl(gateway::Connector connector) const;

  gateway::Gateway& gateway_;
  store::Store& store_;
  Metrics& metrics_;
  ServiceConfig config_;
};

// The text Bankart asks merchants to show a payer whose alias does not exist
// (error 2007).
extern const char kAliasDoesNotExistPayerMessage[];

}  // namespace flikpay::server

#endif  // FLIKPAY_SERVER_PAYMENT_SERVICE_H_
