#ifndef FLIKPAY_SERVER_PAYMENT_SERVICE_H_
#define FLIKPAY_SERVER_PAYMENT_SERVICE_H_

#include <functional>
#include <optional>
#include <string>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/caller_policy.h"
#include "core/status_quota.h"
#include "flikpay/v1/payment_service.pb.h"
#include "gateway/gateway.h"
#include "google/protobuf/message.h"
#include "server/metrics.h"
#include "server/record_cache.h"
#include "store/store.h"

namespace flikpay::server {

struct ServiceConfig {
  // The URL Bankart calls back, e.g. "https://pay.example.com/callbacks/bankart". flikpay adds
  // "?connector=NAME" so the listener knows whose secret signs the callback.
  std::string public_callback_url;
  // Kept back from the caller's deadline to store the gateway's answer before answering.
  absl::Duration store_margin = absl::Milliseconds(250);
  // When the reconciler looks at a transaction that is not final; every report carries it.
  core::SchedulePolicy schedule;
  // Bankart's status-query quota per API user, shared by all replicas: this many in any window.
  int status_queries_per_window = 54;
  absl::Duration status_quota_window = absl::Seconds(60);
  // How long a verified callback's signature is remembered, so a replay of it changes nothing:
  // twice the callback Date tolerance (a replay older than that fails the Date check anyway).
  absl::Duration callback_replay_window = absl::Seconds(120);
  // The secret the idempotency fingerprints are keyed with; the same on every replica.
  std::string fingerprint_key = "flikpay-development-fingerprint-key";
};

// Who asks, as the gRPC layer authenticated it, and the policy in force when the call arrived (a
// reload during the call does not change it). The gRPC layer has checked that the caller may call
// the RPC; PaymentService applies the rest of its grant: kinds, amount limits, ownership.
struct Caller {
  std::string id;
  // The call's request id (x-request-id, or made up): in the log lines of the call, sent to
  // Bankart with each request, kept on the transaction the call creates.
  std::string request_id;
  std::shared_ptr<const core::CallerPolicy> policy;
  const core::CallerGrant* grant = nullptr;  // in `policy`; never null once permitted

  // A caller `policy` names; nullptr grant when it does not.
  static Caller Of(std::string id, std::shared_ptr<const core::CallerPolicy> policy);
  // Whether this caller may see `transaction`: its own, or any with read_all.
  bool MaySee(const v1::Transaction& transaction) const;
};

// What the gateway said of a transaction, by callback, status query or reconciliation:
// PaymentService::ApplyNews is the one path by which such news reaches the store.
struct GatewayNews {
  v1::TransactionStatus status = v1::TRANSACTION_STATUS_UNSPECIFIED;
  v1::EventSource source = v1::EVENT_SOURCE_UNSPECIFIED;
  std::string uuid;
  std::string purchase_id;
  std::string adapter_reference_id;
  std::optional<gateway::GatewayError> error;
  // The reconciler settles a claim whose call is over (or lapsed); a callback may overtake the call
  // that is still recording its answer.
  bool ends_flight = false;
};

// How a callback ended, for the callback listener's access log.
struct CallbackOutcome {
  CallbackResult result = CallbackResult::kRetryLater;
  std::string merchant_transaction_id;  // when the callback named a transaction flikpay knows
  std::string status;                   // the transaction's status once stored, e.g. "SUCCESS"
};

// What flikpay does, without any transport: plain blocking methods, called from the gRPC service's
// executors and the callback listener's threads. Every error is an absl::Status whose code is the
// gRPC code to answer with.
class PaymentService {
 public:
  // `cache`, when given (kept coherent by the replica's EventHub), answers GetStatus without
  // refresh for final records; every change this replica stores is invalidated in it at once.
  PaymentService(gateway::Gateway& gateway, store::Store& store, Metrics& metrics,
                 ServiceConfig config, RecordCache* cache = nullptr);

  // The money RPCs refuse, before anything is claimed or sent: a kind the caller may not ask for
  // (PERMISSION_DENIED), an amount above its limit per transaction or, counted across replicas in
  // the store, per day (FAILED_PRECONDITION naming the limit). Refunds only of the caller's own
  // debits. Every transaction records its creator (created_by).
  absl::StatusOr<v1::Transaction> CreateRtp(const Caller& caller,
                                            const v1::CreateRtpRequest& request,
                                            absl::Time deadline);
  absl::StatusOr<v1::Transaction> Refund(const Caller& caller, const v1::RefundRequest& request,
                                         absl::Time deadline);
  absl::StatusOr<v1::Transaction> Payout(const Caller& caller, const v1::PayoutRequest& request,
                                         absl::Time deadline);
  // NOT_FOUND for another caller's transaction, unless the caller has read_all.
  absl::StatusOr<v1::Transaction> GetStatus(const Caller& caller,
                                            const v1::GetStatusRequest& request,
                                            absl::Time deadline);

  // Asks the gateway's status API about a transaction that is not final and applies the answer
  // (source RECONCILER). An UNKNOWN transaction the gateway does not know, older than
  // `not_found_grace`, becomes ERROR: nothing was created.
  absl::StatusOr<v1::Transaction> Reconcile(const std::string& merchant_transaction_id,
                                            absl::Time deadline, absl::Duration not_found_grace);

  // A gateway callback as received. UNAUTHENTICATED for a bad or stale signature, INVALID_ARGUMENT
  // for a malformed body (nothing stored in either case), UNAVAILABLE when the change could not be
  // stored (Bankart retries); OK once it is stored, or kept as unmatched. The callback listener
  // maps these to HTTP (CallbackHttpStatus in http_listeners.h).
  // `outcome`, when given, says how it ended (as counted in the metrics) and whose it was.
  absl::Status HandleCallback(const gateway::InboundCallback& callback,
                              CallbackOutcome* outcome = nullptr);

  const core::SchedulePolicy& schedule() const { return config_.schedule; }
  // Reads how much of Bankart's status-query quota is left now (all replicas) into the metrics;
  // the reconciler calls it every pass, so the gauge is current even when nothing is queried.
  void ObserveStatusQuota();
  absl::Duration status_quota_window() const { return config_.status_quota_window; }

 private:
  // Claims the id of `initial` (with the fingerprint of the normalized request) for `caller` and,
  // if it was free and the caller's daily limit for `rpc` has room, sends the request and records
  // the outcome. A taken id answers the stored transaction, ALREADY_EXISTS (other parameters, or
  // another caller's) or ABORTED (the first request is still in flight).
  absl::StatusOr<v1::Transaction> ClaimAndSend(
      const Caller& caller, core::Rpc rpc, v1::Transaction initial,
      const google::protobuf::Message& normalized_request, absl::Time deadline,
      absl::FunctionRef<absl::StatusOr<gateway::SubmitOutcome>(absl::Time)> send);
  // Records what the gateway said about a money-moving request and answers the caller.
  absl::StatusOr<v1::Transaction> Record(const std::string& merchant_transaction_id,
                                         const absl::StatusOr<gateway::SubmitOutcome>& outcome,
                                         absl::Time deadline);
  absl::StatusOr<v1::Transaction> Refresh(const v1::Transaction& transaction, absl::Time deadline);
  // GetStatus' read: from the record cache when it holds the record, else the store (filling the
  // cache with a final record).
  absl::StatusOr<v1::Transaction> ReadRecord(const std::string& id);
  // A verified callback's replay claim, to be marked handled by the Apply that stores the
  // callback's outcome, in the same atomic step (Store::ApplyCallback), not by a write (and a
  // round trip) of its own.
  struct HandledMark {
    std::string signature;
    absl::Duration ttl;
    bool written = false;  // an Apply wrote it
  };
  // With a `check`, the report is judged against the record as stored first
  // (store::CallbackApply::check).
  using RecordCheck = std::function<absl::StatusOr<std::string>(const v1::Transaction&)>;
  absl::StatusOr<store::ApplyResult> ApplyNews(const std::string& id, const GatewayNews& news,
                                               HandledMark* mark = nullptr,
                                               RecordCheck check = nullptr);
  // The one way a report reaches the store: with the schedule policy, counted in the metrics. With
  // a `mark`, it is written with what the report stores (mark->written once it is).
  absl::StatusOr<store::ApplyResult> ApplyReport(const std::string& id, store::Report report,
                                                 HandledMark* mark = nullptr,
                                                 RecordCheck check = nullptr);
  absl::StatusOr<gateway::Connector> ConnectorOf(const v1::Transaction& transaction);
  // Records a refund callback flikpay did not start as a refund of the debit it names (by
  // referenceUuid, or the status API's answer), reserving its amount like any refund; answers the
  // refund's id. NOT_FOUND when no debit of flikpay's is named.
  absl::StatusOr<std::string> RecordPortalRefund(const gateway::CallbackEvent& event);
  // Why a verified callback cannot be about `transaction` as flikpay knows it ("" when it can):
  // signed with another connector's secret, or of another type, amount, currency or uuid. One
  // leaked connector secret must not settle another connector's transactions.
  absl::StatusOr<std::string> CallbackMismatch(const v1::Transaction& transaction,
                                               const gateway::CallbackEvent& event);
  // HandleCallback before it counts the outcome.
  absl::Status JudgeCallback(const gateway::InboundCallback& callback, CallbackOutcome& outcome);
  // HandleCallback after the signature and the replay check. `mark` (nullptr for a callback
  // without a signature) goes with the Apply that stores its outcome. A callback that does not
  // match its transaction (CallbackMismatch, judged on the record that Apply reads) is recorded in
  // the history (an anomaly, nothing else changes) and answered INVALID_ARGUMENT (HTTP 400).
  absl::Status HandleVerifiedCallback(const gateway::InboundCallback& callback,
                                      const gateway::CallbackEvent& verified,
                                      CallbackOutcome& outcome, HandledMark* mark);
  // Takes one query of the priority's share of the status-query quota (core/status_quota.h);
  // RESOURCE_EXHAUSTED when that share of the window is spent.
  absl::Status TakeStatusQuery(core::QueryPriority priority);
  // Abandons the claim on an id whose request was certainly not sent, saying so if it cannot.
  void Forget(const std::string& id);
  std::string CallbackUrl(gateway::Connector connector) const;

  gateway::Gateway& gateway_;
  store::Store& store_;
  Metrics& metrics_;
  ServiceConfig config_;
  RecordCache* const cache_;
};

// The text Bankart asks merchants to show a payer whose alias does not exist (error 2007).
extern const char kAliasDoesNotExistPayerMessage[];

}  // namespace flikpay::server

#endif  // FLIKPAY_SERVER_PAYMENT_SERVICE_H_
