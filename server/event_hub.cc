#include "server/event_hub.h"

#include <utility>

#include "server/log.h"

namespace flikpay::server {

EventHub::EventHub(store::Store& store, Metrics& metrics) : store_(store), metrics_(metrics) {}

EventHub::~EventHub() { Shutdown(); }

void EventHub::Start() {
  reader_ = std::thread([this] { ReadLoop(); });
}

void EventHub::Shutdown() {
  stopping_ = true;
  if (reader_.joinable()) reader_.join();
  AbortAll("the server is shutting down");
}

void EventHub::Register(std::shared_ptr<EventSink> sink) {
  {
    absl::MutexLock lock(&mutex_);
    if (!stopping_) {
      sinks_.push_back(std::move(sink));
      return;
    }
  }
  sink->Abort("the server is shutting down");
}

void EventHub::Unregister(const EventSink* sink) {
  absl::MutexLock lock(&mutex_);
  std::erase_if(sinks_, [sink](const std::shared_ptr<EventSink>& registered) {
    return registered.get() == sink;
  });
}

std::vector<std::shared_ptr<EventSink>> EventHub::Sinks() {
  absl::MutexLock lock(&mutex_);
  return sinks_;
}

void EventHub::AbortAll(const std::string& why) {
  std::vector<std::shared_ptr<EventSink>> aborted;
  {
    absl::MutexLock lock(&mutex_);
    aborted.swap(sinks_);
  }
  for (const std::shared_ptr<EventSink>& sink : aborted) sink->Abort(why);
}

void EventHub::ReadLoop() {
  std::string cursor;
  while (!stopping_) {
    const uint64_t generation = store_.PrimaryGeneration();
    if (generation != read_generation_) {
      // The store has moved to another primary (the sentinels' +switch-master, or a failure of
      // another call) without a read of the hub's failing: check the cursor there all the same.
      verify_cursor_ = true;
      read_generation_ = generation;
    }
    if (cursor.empty()) {
      // Start from the newest event: sinks replay anything older from the store themselves.
      absl::StatusOr<std::string> latest = store_.LatestCursor();
      if (!latest.ok()) {
        ReadFailed("cannot find where the event stream ends", latest.status());
        continue;
      }
      cursor = *latest;
    } else if (verify_cursor_) {
      // After a failed read the store may be another Redis (a failover) that never had the events
      // up to `cursor`: XREAD after it would skip whatever the new primary writes below it.
      absl::StatusOr<bool> kept = store_.CanResumeFrom(cursor);
      if (!kept.ok()) {
        ReadFailed("cannot check the event stream after a failure", kept.status());
        continue;
      }
      if (!*kept) {
        absl::StatusOr<std::string> latest = store_.LatestCursor();
        if (!latest.ok()) {
          ReadFailed("cannot find where the event stream ends", latest.status());
          continue;
        }
        Log(LogLevel::kWarning,
            "event hub: the event stream no longer holds event %s that this replica had read (a "
            "Redis failover lost it); reading on from %s and ending this replica's streams",
            cursor, *latest);
        cursor = *latest;
        // Every stream opened since the failure replays from the store itself, perhaps past what
        // the hub has passed on: end them, so they resume (or learn OUT_OF_RANGE) from their own
        // cursors. Streams opened from here on follow the hub from `cursor`.
        AbortAll("the event stream lost events in a Redis failover");
      }
      verify_cursor_ = false;
    }
    absl::StatusOr<std::vector<v1::StatusEvent>> events =
        store_.WaitForEvents(cursor, 256, absl::Milliseconds(500));
    if (!events.ok()) {
      ReadFailed("cannot read the event stream", events.status());
      continue;
    }
    if (store_.PrimaryGeneration() != generation) {
      // Perhaps read from a new primary before the cursor was checked there: set it aside, check,
      // and read again (what is kept comes again).
      continue;
    }
    if (read_failures_.count() > 0) {
      Log(LogLevel::kInfo, "event hub: the event stream is readable again");
      read_failures_.Reset();
    }
    if (events->empty()) continue;
    const std::vector<std::shared_ptr<EventSink>> sinks = Sinks();
    for (const v1::StatusEvent& event : *events) {
      for (const std::shared_ptr<EventSink>& sink : sinks) sink->Offer(event);
    }
    cursor = events->back().cursor();
  }
}

void EventHub::ReadFailed(absl::string_view what, const absl::Status& status) {
  metrics_.store_unavailable.Increment();
  if (read_failures_.ShouldLog()) {
    Log(LogLevel::kWarning, "event hub: %s (%d tries so far), ending this replica's streams: %s",
        what, read_failures_.count(), status.message());
  }
  // Subscribers cannot be fed: end them so they resume elsewhere (or here, later) from their last
  // cursor rather than wait silently.
  AbortAll("the event store is unavailable");
  verify_cursor_ = true;
  absl::SleepFor(absl::Milliseconds(200));
}

}  // namespace flikpay::server
