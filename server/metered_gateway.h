// A Gateway that counts and times every request another Gateway makes to Bankart, by endpoint and
// outcome (flikpay_gateway_requests_total, flikpay_gateway_request_duration_seconds). main puts it
// around the Bankart adapter, so the service and the reconciler are measured alike.
#ifndef FLIKPAY_SERVER_METERED_GATEWAY_H_
#define FLIKPAY_SERVER_METERED_GATEWAY_H_

#include "gateway/gateway.h"
#include "server/metrics.h"

namespace flikpay::server {

class MeteredGateway final : public gateway::Gateway {
 public:
  MeteredGateway(gateway::Gateway& inner, Metrics& metrics) : inner_(inner), metrics_(metrics) {}

  absl::StatusOr<gateway::SubmitOutcome> Debit(const gateway::DebitRequest& request,
                                               absl::Time deadline) override;
  absl::StatusOr<gateway::SubmitOutcome> Refund(const gateway::RefundRequest& request,
                                                absl::Time deadline) override;
  absl::StatusOr<gateway::SubmitOutcome> Payout(const gateway::PayoutRequest& request,
                                                absl::Time deadline) override;
  absl::StatusOr<gateway::StatusReport> StatusByUuid(gateway::Connector connector,
                                                     absl::string_view uuid,
                                                     absl::Time deadline) override;
  absl::StatusOr<gateway::StatusReport> StatusByMerchantTransactionId(
      gateway::Connector connector, absl::string_view merchant_transaction_id,
      absl::Time deadline) override;
  // Not a request to Bankart: passed through uncounted (callbacks have their own metric).
  absl::StatusOr<gateway::CallbackEvent> VerifyCallback(
      const gateway::InboundCallback& callback) override {
    return inner_.VerifyCallback(callback);
  }

 private:
  absl::StatusOr<gateway::SubmitOutcome> Counted(GatewayEndpoint endpoint, absl::Time started,
                                                 absl::StatusOr<gateway::SubmitOutcome> outcome);
  absl::StatusOr<gateway::StatusReport> Counted(absl::Time started,
                                                absl::StatusOr<gateway::StatusReport> report);

  gateway::Gateway& inner_;
  Metrics& metrics_;
};

}  // namespace flikpay::server

#endif  // FLIKPAY_SERVER_METERED_GATEWAY_H_
