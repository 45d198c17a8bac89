#include "server/grpc_service.h"

#include <deque>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/cursor.h"

namespace flikpay::server {

grpc::Status ToGrpcStatus(const absl::Status& status) {
  // absl::StatusCode and grpc::StatusCode share their numbering.
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()));
}

namespace {

absl::Time DeadlineOf(const grpc::CallbackServerContext* context,
                      absl::Duration fallback) {
  const absl::Time deadline = absl::FromChrono(context->deadline());
  const absl::Time latest = absl::Now() + fallback;
  return deadline < latest ? deadline : latest;
}

// One StreamStatus call. Holds its own bounded queue; one write in flight at a
// time; deletes itself in OnDone once no executor task still refers to it.
class StatusStream final : public grpc::ServerWriteReactor<v1::StatusEvent>,
                           public EventSink {
 public:
  StatusStream(EventHub& hub, store::Store& store, Executor& executor,
               Metrics& metrics, const v1::StreamStatusRequest& request,
               size_t max_buffered)
      : hub_(hub),
        store_(store),
        executor_(executor),
        metrics_(metrics),
        request_(request),
        max_buffered_(max_buffered),
        ids_(request.merchant_transaction_ids().begin(),
             request.merchant_transaction_ids().end()) {
    for (int type : request.types()) types_.insert(type);
  }

  // Counted in flikpay_streams_open once the hub feeds it.
  void CountAsOpen() {
    ++metrics_.streams_open;
    ++metrics_.streams_started;
    counted_ = true;
  }

  // Runs on an executor: current states, then the replay from resume_after,
  // then live.
  void Begin() {
    if (request_.send_current()) {
      for (const std::string& id : request_.merchant_transaction_ids()) {
        absl::StatusOr<v1::Transaction> current = store_.Get(id);
        if (!current.ok()) {
          if (absl::IsNotFound(current.status())) continue;
          return End(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                  "the store is unavailable"));
        }
        v1::StatusEvent snapshot;
        *snapshot.mutable_transaction() = *current;
        *snapshot.mutable_occurred_at() = current->updated_at();
        absl::MutexLock lock(&mutex_);
        queue_.push_back(std::move(snapshot));
      }
    }
    if (request_.resume_after().empty()) return FinishCatchUp();
    absl::StatusOr<bool> resumable =
        store_.CanResumeFrom(request_.resume_after());
    if (!resumable.ok()) {
      return End(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                              "the event store is unavailable"));
    }
    if (!*resumable) {
      return End(grpc::Status(
          grpc::StatusCode::OUT_OF_RANGE,
          "resume_after: events after it are no longer kept; read current "
          "states with send_current or GetStatus and subscribe from now"));
    }
    {
      absl::MutexLock lock(&mutex_);
      replay_cursor_ = request_.resume_after();
    }
    ReplayPages();
  }

  // Replays stored events a page at a time. The next page is read only once
  // the previous one has been written (OnWriteDone schedules it), so a resume
  // far back never overflows the buffer and a slow reader paces the replay.
  void ReplayPages() {
    const int page = static_cast<int>(std::max<size_t>(1, max_buffered_ / 2));
    while (true) {
      std::string from;
      {
        absl::MutexLock lock(&mutex_);
        if (finishing_) return;
        from = replay_cursor_;
      }
      absl::StatusOr<std::vector<v1::StatusEvent>> batch =
          store_.ReadEvents(from, page);
      if (!batch.ok()) {
        return End(grpc::Status(
            grpc::StatusCode::UNAVAILABLE,
            absl::StrCat("the event store is unavailable", ResumeHint())));
      }
      {
        absl::MutexLock lock(&mutex_);
        for (const v1::StatusEvent& event : *batch) {
          EnqueueLocked(event, /*bounded=*/false);  // at most one page
          replay_cursor_ = event.cursor();
        }
        if (static_cast<int>(batch->size()) == page &&
            (writing_ || !queue_.empty())) {
          replay_waiting_ = true;  // OnWriteDone continues once drained
        }
      }
      if (static_cast<int>(batch->size()) < page) return FinishCatchUp();
      bool waiting;
      {
        absl::MutexLock lock(&mutex_);
        waiting = replay_waiting_;
      }
      if (waiting) return Pump();
      // The whole page was filtered out: nothing to wait for.
    }
  }

  // Caught up: what the hub delivered meanwhile goes after the replay, minus
  // what the replay already had, so nothing is missed and nothing is sent
  // twice.
  void FinishCatchUp() {
    {
      absl::MutexLock lock(&mutex_);
      catching_up_ = false;
      for (const v1::StatusEvent& event : held_live_) EnqueueLocked(event);
      held_live_.clear();
    }
    Pump();
  }

  void Offer(const v1::StatusEvent& event) override {
    {
      absl::MutexLock lock(&mutex_);
      if (finishing_) return;
      if (catching_up_) {
        if (held_live_.size() >= max_buffered_) {
          OverflowLocked();
        } else {
          held_live_.push_back(event);
        }
      } else {
        EnqueueLocked(event);
      }
    }
    Pump();
  }

  void Abort(const std::string& why) override {
    End(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                     absl::StrCat(why, ResumeHint())));
  }

  void OnWriteDone(bool ok) override {
    bool next_page = false;
    {
      absl::MutexLock lock(&mutex_);
      writing_ = false;
      if (ok && replay_waiting_ && queue_.empty() && !finishing_) {
        replay_waiting_ = false;
        next_page = true;
        ++pending_tasks_;
      }
      if (ok)
        sent_cursor_ =
            current_.cursor().empty() ? sent_cursor_ : current_.cursor();
      if (!ok && !finishing_) {
        finishing_ = true;
        final_status_ =
            grpc::Status(grpc::StatusCode::CANCELLED, "stream broken");
      }
    }
    if (next_page) {
      executor_.Run([this] {
        ReplayPages();
        Drop();
      });
    }
    Pump();
  }

  void OnCancel() override {
    End(grpc::Status(grpc::StatusCode::CANCELLED, "cancelled by the client"));
  }

  void OnDone() override {
    hub_.Unregister(this);
    if (counted_) --metrics_.streams_open;
    bool destroy;
    {
      absl::MutexLock lock(&mutex_);
      done_ = true;
      destroy = pending_tasks_ == 0;
    }
    if (destroy) delete this;
  }

  // Keeps the reactor alive while an executor task uses it.
  void Hold() {
    absl::MutexLock lock(&mutex_);
    ++pending_tasks_;
  }
  void Drop() {
    bool destroy;
    {
      absl::MutexLock lock(&mutex_);
      destroy = --pending_tasks_ == 0 && done_;
    }
    if (destroy) delete this;
  }

  void End(grpc::Status status) {
    {
      absl::MutexLock lock(&mutex_);
      if (finishing_) return;
      finishing_ = true;
      final_status_ = std::move(status);
    }
    Pump();
  }

 private:
  bool Wanted(const v1::StatusEvent& event) const {
    if (!ids_.empty() &&
        !ids_.contains(event.transaction().merchant_transaction_id())) {
      return false;
    }
    return types_.empty() || types_.contains(event.transaction().type());
  }

  void EnqueueLocked(const v1::StatusEvent& event, bool bounded = true)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) {
    if (finishing_) return;
    if (!seen_cursor_.empty() &&
        !core::CursorBefore(seen_cursor_, event.cursor())) {
      return;
    }
    seen_cursor_ = event.cursor();
    if (!Wanted(event)) return;
    if (bounded && queue_.size() >= max_buffered_) return OverflowLocked();
    queue_.push_back(event);
  }

  void OverflowLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) {
    ++metrics_.streams_overflowed;
    finishing_ = true;
    final_status_ =
        grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                     absl::StrCat("subscriber fell more than ", max_buffered_,
                                  " events behind", ResumeHintLocked()));
    queue_.clear();
    held_live_.clear();
  }

  // Events written just before a stream ends can still be dropped in transit,
  // so only the client knows the last one it received: that is where it
  // resumes. The last one written here is a hint.
  std::string ResumeHintLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) {
    return absl::StrCat(
        "; resume with resume_after=<the cursor of the last event you "
        "received>",
        sent_cursor_.empty()
            ? ""
            : absl::StrCat(" (last written: ", sent_cursor_, ")"));
  }
  std::string ResumeHint() {
    absl::MutexLock lock(&mutex_);
    return ResumeHintLocked();
  }

  // Starts the next write, or the Finish, when nothing is in flight. Never
  // holds the lock while calling into gRPC.
  void Pump() {
    enum { kNothing, kWrite, kFinish } action = kNothing;
    {
      absl::MutexLock lock(&mutex_);
      if (writing_ || finished_) return;
      if (finishing_) {
        finished_ = true;
        action = kFinish;
      } else if (!queue_.empty()) {
        current_ = std::move(queue_.front());
        queue_.pop_front();
        writing_ = true;
        action = kWrite;
      }
    }
    if (action == kWrite) StartWrite(&current_);
    if (action == kFinish) Finish(final_status_);
  }

  EventHub& hub_;
  store::Store& store_;
  Executor& executor_;
  Metrics& metrics_;
  const v1::StreamStatusRequest request_;
  const size_t max_buffered_;
  const std::set<std::string> ids_;
  std::set<int> types_;

  absl::Mutex mutex_;
  std::deque<v1::StatusEvent> queue_ ABSL_GUARDED_BY(mutex_);
  std::vector<v1::StatusEvent> held_live_ ABSL_GUARDED_BY(mutex_);
  bool catching_up_ ABSL_GUARDED_BY(mutex_) = true;
  std::string replay_cursor_ ABSL_GUARDED_BY(mutex_);
  bool replay_waiting_ ABSL_GUARDED_BY(mutex_) = false;
  std::string seen_cursor_ ABSL_GUARDED_BY(mutex_);  // newest event considered
  std::string sent_cursor_
      ABSL_GUARDED_BY(mutex_);  // newest event written to the client
  v1::StatusEvent
      current_;  // the message being written; owned until OnWriteDone
  bool writing_ ABSL_GUARDED_BY(mutex_) = false;
  bool finishing_ ABSL_GUARDED_BY(mutex_) = false;
  bool finished_ ABSL_GUARDED_BY(mutex_) = false;
  grpc::Status final_status_;
  int pending_tasks_ ABSL_GUARDED_BY(mutex_) = 0;
  bool done_ ABSL_GUARDED_BY(mutex_) = false;
  std::atomic<bool> counted_{false};
};

}  // namespace

GrpcPaymentService::GrpcPaymentService(PaymentService& service,
                                       store::Store& store, EventHub& hub,
                                       Metrics& metrics,
                                       GrpcServiceConfig config)
    : service_(service),
      store_(store),
      hub_(hub),
      metrics_(metrics),
      config_(config) {}

GrpcPaymentService::~GrpcPaymentService() = default;

template <typename Work>
grpc::ServerUnaryReactor* GrpcPaymentService::RunUnary(
    grpc::CallbackServerContext* context, Executor& executor,
    v1::Transaction* response, Work work) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (draining_) {
    reactor->Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                 "the server is shutting down"));
    return reactor;
  }
  const absl::Time deadline = DeadlineOf(context, config_.default_deadline);
  // context, request and response stay valid until Finish.
  executor.Run([context, reactor, response, deadline, work] {
    if (context->IsCancelled()) {
      reactor->Finish(
          grpc::Status(grpc::StatusCode::CANCELLED, "cancelled by the client"));
      return;
    }
    absl::StatusOr<v1::Transaction> result = work(deadline);
    if (result.ok()) *response = *std::move(result);
    reactor->Finish(ToGrpcStatus(result.status()));
  });
  return reactor;
}

grpc::ServerUnaryReactor* GrpcPaymentService::CreateRtp(
    grpc::CallbackServerContext* context, const v1::CreateRtpRequest* request,
    v1::Transaction* response) {
  return RunUnary(context, gateway_executor_, response,
                  [this, request](absl::Time deadline) {
                    return service_.CreateRtp(*request, deadline);
                  });
}

grpc::ServerUnaryReactor* GrpcPaymentService::Refund(
    grpc::CallbackServerContext* context, const v1::RefundRequest* request,
    v1::Transaction* response) {
  return RunUnary(context, gateway_executor_, response,
                  [this, request](absl::Time deadline) {
                    return service_.Refund(*request, deadline);
                  });
}

grpc::ServerUnaryReactor* GrpcPaymentService::Payout(
    grpc::CallbackServerContext* context, const v1::PayoutRequest* request,
    v1::Transaction* response) {
  return RunUnary(context, gateway_executor_, response,
                  [this, request](absl::Time deadline) {
                    return service_.Payout(*request, deadline);
                  });
}

grpc::ServerUnaryReactor* GrpcPaymentService::GetStatus(
    grpc::CallbackServerContext* context, const v1::GetStatusRequest* request,
    v1::Transaction* response) {
  // A refresh talks to the gateway; a plain read only to Redis.
  Executor& executor = request->refresh() ? gateway_executor_ : store_executor_;
  return RunUnary(context, executor, response,
                  [this, request](absl::Time deadline) {
                    return service_.GetStatus(*request, deadline);
                  });
}

grpc::ServerWriteReactor<v1::StatusEvent>* GrpcPaymentService::StreamStatus(
    grpc::CallbackServerContext* /*context*/,
    const v1::StreamStatusRequest* request) {
  auto* stream = new StatusStream(hub_, store_, store_executor_, metrics_,
                                  *request, config_.max_buffered_events);
  if (draining_) {
    stream->End(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                             "the server is shutting down"));
    return stream;
  }
  if (!request->resume_after().empty() &&
      !core::ParseCursor(request->resume_after())) {
    stream->End(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                             "resume_after: not a cursor from a StatusEvent"));
    return stream;
  }
  for (int type : request->types()) {
    if (type == v1::TRANSACTION_TYPE_UNSPECIFIED ||
        !v1::TransactionType_IsValid(type)) {
      stream->End(grpc::Status(
          grpc::StatusCode::INVALID_ARGUMENT,
          "types: use TRANSACTION_TYPE_DEBIT, _REFUND or _PAYOUT"));
      return stream;
    }
  }
  // Registered before the replay starts, so live events arriving meanwhile are
  // held, not lost.
  hub_.Register(stream);
  stream->CountAsOpen();
  stream->Hold();
  store_executor_.Run([stream] {
    stream->Begin();
    stream->Drop();
  });
  return stream;
}

}  // namespace flikpay::server
