#include "server/metered_gateway.h"

#include "absl/time/clock.h"

namespace flikpay::server {
namespace {

GatewayOutcome OutcomeOf(const absl::StatusOr<gateway::SubmitOutcome>& outcome) {
  // An error status means the request was refused before it was sent (bad request, no
  // connection): nothing reached Bankart.
  if (!outcome.ok()) return GatewayOutcome::kError;
  switch (outcome->kind) {
    case gateway::SubmitOutcome::Kind::kAccepted:
      return GatewayOutcome::kAccepted;
    case gateway::SubmitOutcome::Kind::kDeclined:
      return GatewayOutcome::kDeclined;
    case gateway::SubmitOutcome::Kind::kUnknown:
      return GatewayOutcome::kUnknown;
  }
  return GatewayOutcome::kUnknown;
}

}  // namespace

absl::StatusOr<gateway::SubmitOutcome> MeteredGateway::Counted(
    GatewayEndpoint endpoint, absl::Time started, absl::StatusOr<gateway::SubmitOutcome> outcome) {
  metrics_.CountGatewayCall(endpoint, OutcomeOf(outcome), absl::Now() - started);
  return outcome;
}

absl::StatusOr<gateway::StatusReport> MeteredGateway::Counted(
    absl::Time started, absl::StatusOr<gateway::StatusReport> report) {
  // A status query is safe to repeat; the adapter already retried until the deadline, so a failure
  // here means Bankart's status API did not answer.
  const GatewayOutcome outcome =
      report.ok() ? GatewayOutcome::kAccepted
      : absl::IsUnavailable(report.status()) || absl::IsDeadlineExceeded(report.status())
          ? GatewayOutcome::kUnknown
          : GatewayOutcome::kError;
  metrics_.CountGatewayCall(GatewayEndpoint::kStatus, outcome, absl::Now() - started);
  return report;
}

absl::StatusOr<gateway::SubmitOutcome> MeteredGateway::Debit(const gateway::DebitRequest& request,
                                                             absl::Time deadline) {
  const absl::Time started = absl::Now();
  return Counted(GatewayEndpoint::kDebit, started, inner_.Debit(request, deadline));
}

absl::StatusOr<gateway::SubmitOutcome> MeteredGateway::Refund(const gateway::RefundRequest& request,
                                                              absl::Time deadline) {
  const absl::Time started = absl::Now();
  return Counted(GatewayEndpoint::kRefund, started, inner_.Refund(request, deadline));
}

absl::StatusOr<gateway::SubmitOutcome> MeteredGateway::Payout(const gateway::PayoutRequest& request,
                                                              absl::Time deadline) {
  const absl::Time started = absl::Now();
  return Counted(GatewayEndpoint::kPayout, started, inner_.Payout(request, deadline));
}

absl::StatusOr<gateway::StatusReport> MeteredGateway::StatusByUuid(gateway::Connector connector,
                                                                   absl::string_view uuid,
                                                                   absl::Time deadline) {
  const absl::Time started = absl::Now();
  return Counted(started, inner_.StatusByUuid(connector, uuid, deadline));
}

absl::StatusOr<gateway::StatusReport> MeteredGateway::StatusByMerchantTransactionId(
    gateway::Connector connector, absl::string_view merchant_transaction_id, absl::Time deadline) {
  const absl::Time started = absl::Now();
  return Counted(
      started, inner_.StatusByMerchantTransactionId(connector, merchant_transaction_id, deadline));
}

}  // namespace flikpay::server
