#include "server/grpc_service.h"

#include <algorithm>
#include <memory>
#include <optional>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/api_rules.h"
#include "core/subscription.h"
#include "gateway/alias.h"
#include "server/audit.h"
#include "server/log.h"

namespace flikpay::server {

grpc::Status ToGrpcStatus(const absl::Status& status) {
  // absl::StatusCode and grpc::StatusCode share their numbering.
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

namespace {

// The caller's x-request-id if usable, else a new one; answered in the initial metadata so a caller
// that sent none can still quote it.
std::string TakeRequestId(grpc::CallbackServerContext* context) {
  const auto& metadata = context->client_metadata();
  auto offered = metadata.find("x-request-id");
  std::string id =
      RequestIdFrom(offered == metadata.end()
                        ? absl::string_view()
                        : absl::string_view(offered->second.data(), offered->second.size()));
  context->AddInitialMetadata("x-request-id", id);
  return id;
}

absl::Time DeadlineOf(const grpc::CallbackServerContext* context, absl::Duration fallback) {
  const absl::Time deadline = absl::FromChrono(context->deadline());
  const absl::Time latest = absl::Now() + fallback;
  return deadline < latest ? deadline : latest;
}

// What a StreamStatus call shares with executor tasks and the event hub, which may still hold it
// after gRPC is done with the call: the subscription and the store reads that feed it.
class StreamSession final : public EventSink {
 public:
  StreamSession(store::Store& store, const v1::StreamStatusRequest& request, size_t max_buffered,
                core::StreamWriter& writer, std::optional<std::string> owner)
      : store_(store),
        // Kept only when Begin has reads to make, and only until it made them: an idle stream
        // holds no copy of its request (issue 15).
        setup_(request.send_current() || !request.resume_after().empty()
                   ? std::make_unique<const v1::StreamStatusRequest>(request)
                   : nullptr),
        subscription_(request, max_buffered, writer, std::move(owner)) {}

  core::Subscription& subscription() { return subscription_; }

  // The hub offers only these ids' events (every event for an empty filter).
  std::vector<std::string> WatchedIds() const override {
    return {subscription_.ids().begin(), subscription_.ids().end()};
  }
  void Offer(const v1::StatusEvent& event) override { subscription_.Offer(event); }
  void Abort(const std::string& why) override { subscription_.EndUnavailable(why); }

  // Current states, then the replay from resume_after, then live. Runs on an executor: these are
  // store reads. Runs once.
  void Begin() {
    if (setup_ == nullptr) return subscription_.CatchUp();
    const std::unique_ptr<const v1::StreamStatusRequest> request = std::move(setup_);
    if (request->send_current()) {
      // Each id once, in the order asked, in one store round trip.
      std::vector<std::string> ids;
      std::set<std::string> seen;
      for (const std::string& id : request->merchant_transaction_ids()) {
        if (seen.insert(id).second) ids.push_back(id);
      }
      absl::StatusOr<std::vector<std::optional<v1::Transaction>>> current = store_.GetMany(ids);
      if (!current.ok()) {
        return subscription_.End(absl::UnavailableError("the store is unavailable"));
      }
      for (const std::optional<v1::Transaction>& transaction : *current) {
        if (transaction.has_value()) subscription_.AddCurrent(*transaction);
      }
    }
    if (request->resume_after().empty()) return subscription_.CatchUp();
    absl::StatusOr<bool> resumable = store_.CanResumeFrom(request->resume_after());
    if (!resumable.ok()) {
      return subscription_.End(absl::UnavailableError("the event store is unavailable"));
    }
    if (!*resumable) {
      return subscription_.End(
          absl::OutOfRangeError("resume_after: events after it are no longer kept; read current "
                                "states with send_current or GetStatus and subscribe from now"));
    }
    subscription_.StartReplay(request->resume_after());
    ReplayPages();
  }

  // Reads pages for as long as the subscription wants them; it pauses the replay until the
  // subscriber has read a page, so a resume far back is paced by the reader and never overflows the
  // buffer.
  void ReplayPages() {
    while (std::optional<std::string> after = subscription_.NextReplayPage()) {
      absl::StatusOr<std::vector<v1::StatusEvent>> page =
          store_.ReadEvents(*after, subscription_.page_size());
      if (!page.ok()) {
        return subscription_.EndUnavailable("the event store is unavailable");
      }
      subscription_.AddReplayPage(*page);
    }
  }

 private:
  store::Store& store_;
  std::unique_ptr<const v1::StreamStatusRequest> setup_;  // until Begin
  core::Subscription subscription_;
};

// One StreamStatus call: gRPC's side of a subscription. One write in flight at a time (the
// subscription sees to it); deletes itself in OnDone, while work still running elsewhere keeps the
// session alive.
class StatusStream final : public grpc::ServerWriteReactor<v1::StatusEvent>,
                           public core::StreamWriter {
 public:
  StatusStream(EventHub& hub, store::Store& store, Executor& executor, Metrics& metrics,
               const v1::StreamStatusRequest& request, size_t max_buffered,
               std::optional<std::string> owner, AuditEntry access)
      : hub_(hub),
        executor_(executor),
        metrics_(metrics),
        request_id_(std::move(access.request_id)),
        caller_(std::move(access.caller)),
        peer_(std::move(access.peer)),
        started_(absl::Now()),
        session_(std::make_shared<StreamSession>(store, request, max_buffered, *this,
                                                 std::move(owner))) {}

  // Registered with the hub before the replay starts, so live events arriving meanwhile are held,
  // not lost.
  void Start() {
    hub_.Register(session_);
    metrics_.streams_open.Increment();
    metrics_.streams_started.Increment();
    counted_ = true;
    if (!executor_.Run([session = session_] { session->Begin(); })) {
      End(absl::ResourceExhaustedError("the server is busy; open the stream again shortly"));
    }
  }

  void End(absl::Status status) { session_->subscription().End(std::move(status)); }

  void Write(const v1::StatusEvent& event) override {
    current_ = event;
    StartWrite(&current_);
  }
  // Once per stream, refused or ended: its access-log line and its end in the metrics.
  void Finish(const absl::Status& status) override {
    AuditEntry access;
    access.request_id = std::move(request_id_);
    access.caller = std::move(caller_);
    access.peer = std::move(peer_);
    access.rpc = std::string(core::RpcName(core::Rpc::kStreamStatus));
    access.outcome = status;
    access.latency = absl::Now() - started_;
    metrics_.CountRpc(core::Rpc::kStreamStatus, status.code(), access.latency);
    metrics_.CountStreamEnd(status.code());
    LogRpc(access, IsRefusal(status));
    grpc::ServerWriteReactor<v1::StatusEvent>::Finish(ToGrpcStatus(status));
  }
  void ContinueReplay() override {
    if (!executor_.Run([session = session_] { session->ReplayPages(); })) {
      session_->subscription().EndUnavailable("the server is busy");
    }
  }

  void OnWriteDone(bool ok) override { session_->subscription().WriteDone(ok); }
  void OnCancel() override {
    session_->subscription().End(absl::CancelledError("cancelled by the client"));
  }
  void OnDone() override {
    session_->subscription().Detach();
    hub_.Unregister(session_.get());
    if (counted_) metrics_.streams_open.Decrement();
    delete this;
  }

 private:
  EventHub& hub_;
  Executor& executor_;
  Metrics& metrics_;
  // What the access-log line says of the call, kept until Finish writes it (only these: the rest of
  // an AuditEntry is empty for a stream, and an idle stream's every byte counts, issue 15).
  std::string request_id_;
  std::string caller_;
  std::string peer_;
  const absl::Time started_;
  std::shared_ptr<StreamSession> session_;
  v1::StatusEvent current_;  // the message being written, until OnWriteDone
  bool counted_ = false;
};

// A GetStatus call's messages: the arena's first block is the holder's own, big enough for a
// settled transaction with a few status changes; a bigger one takes further blocks from the heap.
class GetStatusHolder final : public grpc::MessageHolder<v1::GetStatusRequest, v1::Transaction> {
 public:
  GetStatusHolder() : arena_(Options(block_)) {
    set_request(google::protobuf::Arena::CreateMessage<v1::GetStatusRequest>(&arena_));
    set_response(google::protobuf::Arena::CreateMessage<v1::Transaction>(&arena_));
  }
  void Release() override { delete this; }

 private:
  static google::protobuf::ArenaOptions Options(char* block) {
    google::protobuf::ArenaOptions options;
    options.initial_block = block;
    options.initial_block_size = sizeof(block_);
    return options;
  }
  alignas(16) char block_[2048];
  google::protobuf::Arena arena_;  // after block_: made after it, gone before it
};

}  // namespace

grpc::MessageHolder<v1::GetStatusRequest, v1::Transaction>*
GrpcPaymentService::GetStatusMessages::AllocateMessages() {
  return new GetStatusHolder;
}

GrpcPaymentService::GrpcPaymentService(PaymentService& service, store::Store& store, EventHub& hub,
                                       Metrics& metrics, PolicySource policy,
                                       GrpcServiceConfig config)
    : service_(service),
      store_(store),
      hub_(hub),
      metrics_(metrics),
      policy_(std::move(policy)),
      config_(config),
      gateway_executor_("gateway", config.gateway_threads, config.gateway_queue),
      store_executor_("store", config.store_threads, config.store_queue) {
  SetMessageAllocatorFor_GetStatus(&get_status_messages_);
}

GrpcPaymentService::~GrpcPaymentService() = default;

absl::StatusOr<Caller> GrpcPaymentService::Authorize(const grpc::CallbackServerContext& context,
                                                     core::Rpc rpc, std::string* caller_id) {
  absl::StatusOr<std::string> id = CallerOf(context, config_.auth_mode, config_.tokens);
  if (!id.ok()) {
    metrics_.auth_refusals.Increment();
    return id.status();
  }
  *caller_id = *id;
  Caller caller = Caller::Of(*std::move(id), policy_());
  if (absl::Status s = core::Permit(caller.grant, caller.id, rpc); !s.ok()) return s;
  return caller;
}

grpc::ServerUnaryReactor* GrpcPaymentService::RunUnary(grpc::CallbackServerContext* context,
                                                       CallFacts facts, v1::Transaction* response,
                                                       Work work) {
  return RunUnary(context, std::move(facts), response, std::move(work),
                  [](const Caller&, v1::Transaction*) { return false; });
}

grpc::ServerUnaryReactor* GrpcPaymentService::RunUnary(grpc::CallbackServerContext* context,
                                                       CallFacts facts, v1::Transaction* response,
                                                       Work work, AnswerNow answer_now) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  const absl::Time started = absl::Now();
  auto audit = std::make_shared<AuditEntry>();
  audit->request_id = TakeRequestId(context);
  audit->rpc = std::string(core::RpcName(facts.rpc));
  audit->merchant_transaction_id = facts.merchant_transaction_id;
  audit->amount_minor = facts.amount_minor;
  if (!facts.alias.empty()) audit->alias = gateway::MaskAlias(facts.alias);
  const bool money = core::MovesMoney(facts.rpc);
  // Every call has an access-log line; every money call is audited, and every refusal of any call.
  // The line's peer and status are worked out only when the line is written (context is valid
  // until reactor->Finish).
  auto finish = [this, context, rpc = facts.rpc, reactor, audit, started, money](
                    const absl::Status& status, const v1::Transaction* transaction) {
    audit->outcome = status;
    audit->latency = absl::Now() - started;
    metrics_.CountRpc(rpc, status.code(), audit->latency);
    const bool audited = money || IsRefusal(status);
    if (RpcLineWritten(status, audited)) {
      audit->peer = context->peer();
      if (transaction != nullptr) {
        audit->transaction_status = v1::TransactionStatus_Name(transaction->status());
      }
      LogRpc(*audit, audited);
    }
    reactor->Finish(ToGrpcStatus(status));
  };
  if (draining_) {
    finish(absl::UnavailableError("the server is shutting down"), nullptr);
    return reactor;
  }
  absl::StatusOr<Caller> caller = Authorize(*context, facts.rpc, &audit->caller);
  if (!caller.ok()) {
    finish(caller.status(), nullptr);
    return reactor;
  }
  std::shared_ptr<CallerGate::Pass> pass;
  if (facts.reaches_gateway) {
    absl::Duration retry_after;
    // However generous its policy, a caller never holds more than half the gateway threads while
    // there are others to leave room for.
    const int concurrency = caller->policy->callers.size() > 1
                                ? std::min(caller->grant->max_concurrent_calls,
                                           std::max(1, config_.gateway_threads / 2))
                                : caller->grant->max_concurrent_calls;
    absl::StatusOr<CallerGate::Pass> entered = gate_.Enter(
        caller->id, concurrency, caller->grant->calls_per_second, started, &retry_after);
    if (!entered.ok()) {
      metrics_.fair_share_refusals.Increment();
      context->AddTrailingMetadata("retry-after-ms",
                                   std::to_string(absl::ToInt64Milliseconds(retry_after)));
      finish(entered.status(), nullptr);
      return reactor;
    }
    pass = std::make_shared<CallerGate::Pass>(*std::move(entered));
  }
  if (!facts.reaches_gateway && !context->IsCancelled() && answer_now(*caller, response)) {
    // Answered at once (a cached record): no executor hop, no wake-up, the answer written from
    // gRPC's thread. Its access line, when written, is written within the call's log context, as
    // on the executor (answer_now writes none).
    if (!RpcLineWritten(absl::OkStatus(), money)) {
      finish(absl::OkStatus(), response);
      return reactor;
    }
    const LogContext log_context{audit->request_id, audit->caller, audit->rpc,
                                 audit->merchant_transaction_id};
    const ScopedLogContext scope(log_context);
    finish(absl::OkStatus(), response);
    return reactor;
  }
  const absl::Time deadline = DeadlineOf(context, config_.default_deadline);
  Executor& executor = facts.reaches_gateway ? gateway_executor_ : store_executor_;
  // context, request and response stay valid until Finish.
  caller->request_id = audit->request_id;
  const bool queued = executor.Run([context, response, deadline, work = std::move(work), finish,
                                    audit, caller = *std::move(caller), pass = std::move(pass)] {
    const LogContext log_context{audit->request_id, audit->caller, audit->rpc,
                                 audit->merchant_transaction_id};
    const ScopedLogContext scope(log_context);
    if (context->IsCancelled()) {
      finish(absl::CancelledError("cancelled by the client"), nullptr);
      return;
    }
    absl::StatusOr<v1::Transaction> result = work(caller, deadline);
    if (result.ok()) *response = *std::move(result);
    finish(result.status(), result.ok() ? response : nullptr);
  });
  if (!queued) {
    metrics_.executor_refusals.Increment();
    context->AddTrailingMetadata("retry-after-ms", "200");
    finish(absl::ResourceExhaustedError(
               "the server has too many calls waiting; retry after 200ms, or on another replica"),
           nullptr);
  }
  return reactor;
}

grpc::ServerUnaryReactor* GrpcPaymentService::CreateRtp(grpc::CallbackServerContext* context,
                                                        const v1::CreateRtpRequest* request,
                                                        v1::Transaction* response) {
  return RunUnary(context,
                  {core::Rpc::kCreateRtp, request->merchant_transaction_id(),
                   request->amount_minor(), request->alias(), true},
                  response, [this, request](const Caller& caller, absl::Time deadline) {
                    return service_.CreateRtp(caller, *request, deadline);
                  });
}

grpc::ServerUnaryReactor* GrpcPaymentService::Refund(grpc::CallbackServerContext* context,
                                                     const v1::RefundRequest* request,
                                                     v1::Transaction* response) {
  return RunUnary(
      context,
      {core::Rpc::kRefund, request->merchant_transaction_id(), request->amount_minor(), "", true},
      response, [this, request](const Caller& caller, absl::Time deadline) {
        return service_.Refund(caller, *request, deadline);
      });
}

grpc::ServerUnaryReactor* GrpcPaymentService::Payout(grpc::CallbackServerContext* context,
                                                     const v1::PayoutRequest* request,
                                                     v1::Transaction* response) {
  return RunUnary(context,
                  {core::Rpc::kPayout, request->merchant_transaction_id(), request->amount_minor(),
                   request->alias(), true},
                  response, [this, request](const Caller& caller, absl::Time deadline) {
                    return service_.Payout(caller, *request, deadline);
                  });
}

grpc::ServerUnaryReactor* GrpcPaymentService::GetStatus(grpc::CallbackServerContext* context,
                                                        const v1::GetStatusRequest* request,
                                                        v1::Transaction* response) {
  // A refresh talks to the gateway (and has its fair share); a plain read only to Redis.
  const std::string& id =
      request->has_gateway_uuid() ? request->gateway_uuid() : request->merchant_transaction_id();
  return RunUnary(
      context, {core::Rpc::kGetStatus, id, 0, "", request->refresh()}, response,
      [this, request](const Caller& caller, absl::Time deadline) {
        return service_.GetStatus(caller, *request, deadline);
      },
      [this, request](const Caller& caller, v1::Transaction* answer) {
        return GetStatusFromCache(caller, *request, answer);
      });
}

bool GrpcPaymentService::GetStatusFromCache(const Caller& caller,
                                            const v1::GetStatusRequest& request,
                                            v1::Transaction* response) {
  // PaymentService::GetStatus and ReadRecord on a hit, step for step; anything else is theirs.
  RecordCache* const cache = config_.record_cache;
  if (cache == nullptr || request.refresh() ||
      request.id_case() != v1::GetStatusRequest::kMerchantTransactionId ||
      !rules::Lookup(request).ok()) {
    return false;
  }
  const uint64_t generation = store_.PrimaryGeneration();
  const std::shared_ptr<const v1::Transaction> cached =
      cache->Lookup(request.merchant_transaction_id(), generation, absl::Now());
  if (cached == nullptr || !caller.MaySee(*cached)) return false;
  metrics_.record_cache_hits.Increment();
  *response = *cached;
  return true;
}

grpc::ServerWriteReactor<v1::StatusEvent>* GrpcPaymentService::StreamStatus(
    grpc::CallbackServerContext* context, const v1::StreamStatusRequest* request) {
  AuditEntry access;
  access.request_id = TakeRequestId(context);
  access.peer = context->peer();
  access.rpc = "StreamStatus";
  absl::StatusOr<Caller> caller = Authorize(*context, core::Rpc::kStreamStatus, &access.caller);
  std::optional<std::string> owner;
  if (caller.ok() && !caller->grant->read_all) owner = caller->id;
  auto* stream = new StatusStream(hub_, store_, store_executor_, metrics_, *request,
                                  config_.max_buffered_events, std::move(owner), std::move(access));
  absl::Status refusal;
  if (draining_) {
    refusal = absl::UnavailableError("the server is shutting down");
  } else if (!caller.ok()) {
    refusal = caller.status();
  } else {
    refusal = rules::StreamFilter(*request, config_.max_stream_ids);
  }
  if (!refusal.ok()) {
    stream->End(refusal);
    return stream;
  }
  stream->Start();
  return stream;
}

}  // namespace flikpay::server
