#include "server/grpc_service.h"

#include <memory>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/api_rules.h"
#include "core/subscription.h"

namespace flikpay::server {

grpc::Status ToGrpcStatus(const absl::Status& status) {
  // absl::StatusCode and grpc::StatusCode share their numbering.
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

namespace {

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
                core::StreamWriter& writer)
      : store_(store), request_(request), subscription_(request, max_buffered, writer) {}

  core::Subscription& subscription() { return subscription_; }

  void Offer(const v1::StatusEvent& event) override { subscription_.Offer(event); }
  void Abort(const std::string& why) override { subscription_.EndUnavailable(why); }

  // Current states, then the replay from resume_after, then live. Runs on an executor: these are
  // store reads.
  void Begin() {
    if (request_.send_current()) {
      for (const std::string& id : request_.merchant_transaction_ids()) {
        absl::StatusOr<v1::Transaction> current = store_.Get(id);
        if (absl::IsNotFound(current.status())) continue;
        if (!current.ok()) {
          return subscription_.End(absl::UnavailableError("the store is unavailable"));
        }
        subscription_.AddCurrent(*current);
      }
    }
    if (request_.resume_after().empty()) return subscription_.CatchUp();
    absl::StatusOr<bool> resumable = store_.CanResumeFrom(request_.resume_after());
    if (!resumable.ok()) {
      return subscription_.End(absl::UnavailableError("the event store is unavailable"));
    }
    if (!*resumable) {
      return subscription_.End(
          absl::OutOfRangeError("resume_after: events after it are no longer kept; read current "
                                "states with send_current or GetStatus and subscribe from now"));
    }
    subscription_.StartReplay(request_.resume_after());
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
  const v1::StreamStatusRequest request_;
  core::Subscription subscription_;
};

// One StreamStatus call: gRPC's side of a subscription. One write in flight at a time (the
// subscription sees to it); deletes itself in OnDone, while work still running elsewhere keeps the
// session alive.
class StatusStream final : public grpc::ServerWriteReactor<v1::StatusEvent>,
                           public core::StreamWriter {
 public:
  StatusStream(EventHub& hub, store::Store& store, Executor& executor, Metrics& metrics,
               const v1::StreamStatusRequest& request, size_t max_buffered)
      : hub_(hub),
        executor_(executor),
        metrics_(metrics),
        session_(std::make_shared<StreamSession>(store, request, max_buffered, *this)) {}

  // Registered with the hub before the replay starts, so live events arriving meanwhile are held,
  // not lost.
  void Start() {
    hub_.Register(session_);
    ++metrics_.streams_open;
    ++metrics_.streams_started;
    counted_ = true;
    executor_.Run([session = session_] { session->Begin(); });
  }

  void End(absl::Status status) { session_->subscription().End(std::move(status)); }

  void Write(const v1::StatusEvent& event) override {
    current_ = event;
    StartWrite(&current_);
  }
  void Finish(const absl::Status& status) override {
    if (absl::IsResourceExhausted(status)) ++metrics_.streams_overflowed;
    grpc::ServerWriteReactor<v1::StatusEvent>::Finish(ToGrpcStatus(status));
  }
  void ContinueReplay() override {
    executor_.Run([session = session_] { session->ReplayPages(); });
  }

  void OnWriteDone(bool ok) override { session_->subscription().WriteDone(ok); }
  void OnCancel() override {
    session_->subscription().End(absl::CancelledError("cancelled by the client"));
  }
  void OnDone() override {
    session_->subscription().Detach();
    hub_.Unregister(session_.get());
    if (counted_) --metrics_.streams_open;
    delete this;
  }

 private:
  EventHub& hub_;
  Executor& executor_;
  Metrics& metrics_;
  std::shared_ptr<StreamSession> session_;
  v1::StatusEvent current_;  // the message being written, until OnWriteDone
  bool counted_ = false;
};

}  // namespace

GrpcPaymentService::GrpcPaymentService(PaymentService& service, store::Store& store, EventHub& hub,
                                       Metrics& metrics, GrpcServiceConfig config)
    : service_(service), store_(store), hub_(hub), metrics_(metrics), config_(config) {}

GrpcPaymentService::~GrpcPaymentService() = default;

template <typename Work>
grpc::ServerUnaryReactor* GrpcPaymentService::RunUnary(grpc::CallbackServerContext* context,
                                                       Executor& executor,
                                                       v1::Transaction* response, Work work) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (draining_) {
    reactor->Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "the server is shutting down"));
    return reactor;
  }
  const absl::Time deadline = DeadlineOf(context, config_.default_deadline);
  // context, request and response stay valid until Finish.
  executor.Run([context, reactor, response, deadline, work] {
    if (context->IsCancelled()) {
      reactor->Finish(grpc::Status(grpc::StatusCode::CANCELLED, "cancelled by the client"));
      return;
    }
    absl::StatusOr<v1::Transaction> result = work(deadline);
    if (result.ok()) *response = *std::move(result);
    reactor->Finish(ToGrpcStatus(result.status()));
  });
  return reactor;
}

grpc::ServerUnaryReactor* GrpcPaymentService::CreateRtp(grpc::CallbackServerContext* context,
                                                        const v1::CreateRtpRequest* request,
                                                        v1::Transaction* response) {
  return RunUnary(context, gateway_executor_, response, [this, request](absl::Time deadline) {
    return service_.CreateRtp(*request, deadline);
  });
}

grpc::ServerUnaryReactor* GrpcPaymentService::Refund(grpc::CallbackServerContext* context,
                                                     const v1::RefundRequest* request,
                                                     v1::Transaction* response) {
  return RunUnary(context, gateway_executor_, response, [this, request](absl::Time deadline) {
    return service_.Refund(*request, deadline);
  });
}

grpc::ServerUnaryReactor* GrpcPaymentService::Payout(grpc::CallbackServerContext* context,
                                                     const v1::PayoutRequest* request,
                                                     v1::Transaction* response) {
  return RunUnary(context, gateway_executor_, response, [this, request](absl::Time deadline) {
    return service_.Payout(*request, deadline);
  });
}

grpc::ServerUnaryReactor* GrpcPaymentService::GetStatus(grpc::CallbackServerContext* context,
                                                        const v1::GetStatusRequest* request,
                                                        v1::Transaction* response) {
  // A refresh talks to the gateway; a plain read only to Redis.
  Executor& executor = request->refresh() ? gateway_executor_ : store_executor_;
  return RunUnary(context, executor, response, [this, request](absl::Time deadline) {
    return service_.GetStatus(*request, deadline);
  });
}

grpc::ServerWriteReactor<v1::StatusEvent>* GrpcPaymentService::StreamStatus(
    grpc::CallbackServerContext* /*context*/, const v1::StreamStatusRequest* request) {
  auto* stream = new StatusStream(hub_, store_, store_executor_, metrics_, *request,
                                  config_.max_buffered_events);
  if (draining_) {
    stream->End(absl::UnavailableError("the server is shutting down"));
    return stream;
  }
  if (absl::Status s = rules::StreamFilter(*request); !s.ok()) {
    stream->End(s);
    return stream;
  }
  stream->Start();
  return stream;
}

}  // namespace flikpay::server
