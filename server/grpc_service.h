#ifndef FLIKPAY_SERVER_GRPC_SERVICE_H_
#define FLIKPAY_SERVER_GRPC_SERVICE_H_

#include <atomic>
#include <functional>
#include <memory>

#include "absl/functional/function_ref.h"
#include "core/caller_policy.h"
#include "flikpay/v1/payment_service.grpc.pb.h"
#include "server/caller_auth.h"
#include "server/caller_gate.h"
#include "server/event_hub.h"
#include "server/executor.h"
#include "server/metrics.h"
#include "server/payment_service.h"
#include "server/record_cache.h"
#include "store/store.h"

namespace flikpay::server {

struct GrpcServiceConfig {
  // Used when a caller sets no deadline.
  absl::Duration default_deadline = absl::Seconds(30);
  // Events a StreamStatus subscriber may have waiting before it is ended (RESOURCE_EXHAUSTED).
  size_t max_buffered_events = 1024;
  // Ids one StreamStatus may watch (each event is looked up among them; send_current reads them).
  int max_stream_ids = 1000;
  AuthMode auth_mode = AuthMode::kMutualTls;
  // The bearer tokens, in kBearerToken mode (checked per call when the port is plaintext).
  const TokenFile* tokens = nullptr;
  // Gateway calls (money RPCs, refreshes) and store work (reads, streams): threads, and how many
  // calls may wait for one before new ones are refused.
  int gateway_threads = 32;
  size_t gateway_queue = 256;
  int store_threads = 8;
  size_t store_queue = 4096;
  // The record cache PaymentService reads GetStatus from (nullptr when off): a read it holds is
  // answered on gRPC's thread, without the store executor (issue 15).
  RecordCache* record_cache = nullptr;
};

// The caller policy in force now (reloaded from its file by main).
using PolicySource = std::function<std::shared_ptr<const core::CallerPolicy>()>;

// PaymentService on gRPC's callback API. Reactions never block: the work of each call runs on an
// executor (gateway calls on their own, so a slow gateway cannot starve GetStatus), which finishes
// the reactor. Before any work is queued the call's caller is identified (UNAUTHENTICATED),
// permitted the RPC by the policy (PERMISSION_DENIED) and, for calls that reach the gateway, let in
// by its fair share (RESOURCE_EXHAUSTED with a retry-after-ms trailer).
class GrpcPaymentService final : public v1::PaymentService::CallbackService {
 public:
  GrpcPaymentService(PaymentService& service, store::Store& store, EventHub& hub, Metrics& metrics,
                     PolicySource policy, GrpcServiceConfig config);
  ~GrpcPaymentService() override;

  // New calls are refused with UNAVAILABLE from now on.
  void StartDraining() { draining_ = true; }

  grpc::ServerUnaryReactor* CreateRtp(grpc::CallbackServerContext* context,
                                      const v1::CreateRtpRequest* request,
                                      v1::Transaction* response) override;
  grpc::ServerUnaryReactor* Refund(grpc::CallbackServerContext* context,
                                   const v1::RefundRequest* request,
                                   v1::Transaction* response) override;
  grpc::ServerUnaryReactor* Payout(grpc::CallbackServerContext* context,
                                   const v1::PayoutRequest* request,
                                   v1::Transaction* response) override;
  grpc::ServerUnaryReactor* GetStatus(grpc::CallbackServerContext* context,
                                      const v1::GetStatusRequest* request,
                                      v1::Transaction* response) override;
  grpc::ServerWriteReactor<v1::StatusEvent>* StreamStatus(
      grpc::CallbackServerContext* context, const v1::StreamStatusRequest* request) override;

 private:
  // What the audit line says of a request before it runs.
  struct CallFacts {
    core::Rpc rpc;
    std::string merchant_transaction_id;
    int64_t amount_minor = 0;
    std::string alias;             // as the caller sent it; masked before it is written
    bool reaches_gateway = false;  // fair share applies; the gateway executor runs it
  };
  using Work = std::function<absl::StatusOr<v1::Transaction>(const Caller&, absl::Time)>;
  // Sets the response and returns true when the call can be answered at once, without blocking
  // (on gRPC's thread, with no executor hop); false to queue `work` as usual.
  using AnswerNow = absl::FunctionRef<bool(const Caller&, v1::Transaction*)>;
  grpc::ServerUnaryReactor* RunUnary(grpc::CallbackServerContext* context, CallFacts facts,
                                     v1::Transaction* response, Work work);
  grpc::ServerUnaryReactor* RunUnary(grpc::CallbackServerContext* context, CallFacts facts,
                                     v1::Transaction* response, Work work, AnswerNow answer_now);
  // GetStatus of a settled transaction the record cache holds, as PaymentService::GetStatus
  // answers it (the same lookup, visibility rule and hit count), without its executor. False when
  // the call needs the executor: a refresh, a gateway uuid, an invalid id, a miss, a record this
  // caller may not see (PaymentService gives that its answer).
  bool GetStatusFromCache(const Caller& caller, const v1::GetStatusRequest& request,
                          v1::Transaction* response);
  // The caller, permitted `rpc`; UNAUTHENTICATED or PERMISSION_DENIED otherwise. `caller_id` is
  // set once the caller is known, refused or not (for the audit line).
  absl::StatusOr<Caller> Authorize(const grpc::CallbackServerContext& context, core::Rpc rpc,
                                   std::string* caller_id);

  // GetStatus' request and answer in one protobuf arena whose first block is part of the holder:
  // the copy of a cached record (its history, its strings) then costs no allocation of its own and
  // no free (issue 15).
  class GetStatusMessages final
      : public grpc::MessageAllocator<v1::GetStatusRequest, v1::Transaction> {
   public:
    grpc::MessageHolder<v1::GetStatusRequest, v1::Transaction>* AllocateMessages() override;
  };

  PaymentService& service_;
  store::Store& store_;
  EventHub& hub_;
  Metrics& metrics_;
  PolicySource policy_;
  GrpcServiceConfig config_;
  std::atomic<bool> draining_{false};
  CallerGate gate_;
  Executor gateway_executor_;
  Executor store_executor_;
  GetStatusMessages get_status_messages_;
};

grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace flikpay::server

#endif  // FLIKPAY_SERVER_GRPC_SERVICE_H_
