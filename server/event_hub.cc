#include "server/event_hub.h"

#include <utility>

namespace flikpay::server {

EventHub::EventHub(store::Store& store, Metrics& metrics)
    : store_(store), metrics_(metrics) {}

EventHub::~EventHub() { Shutdown(); }

void EventHub::Start() {
  reader_ = std::thread([this] { ReadLoop(); });
}

void EventHub::Shutdown() {
  stopping_ = true;
  if (reader_.joinable()) reader_.join();
  absl::MutexLock lock(&mutex_);
  for (EventSink* sink : sinks_) sink->Abort("the server is shutting down");
}

void EventHub::Register(EventSink* sink) {
  absl::MutexLock lock(&mutex_);
  if (stopping_) {
    sink->Abort("the server is shutting down");
    return;
  }
  sinks_.insert(sink);
}

void EventHub::Unregister(EventSink* sink) {
  absl::MutexLock lock(&mutex_);
  sinks_.erase(sink);
}

void EventHub::ReadLoop() {
  std::string cursor;
  while (!stopping_) {
    if (cursor.empty()) {
      // Start from the newest event: sinks replay anything older from the store
      // themselves.
      absl::StatusOr<std::string> latest = store_.LatestCursor();
      if (!latest.ok()) {
        absl::SleepFor(absl::Milliseconds(200));
        continue;
      }
      cursor = *latest;
    }
    absl::StatusOr<std::vector<v1::StatusEvent>> events =
        store_.WaitForEvents(cursor, 256, absl::Milliseconds(500));
    if (!events.ok()) {
      ++metrics_.store_unavailable;
      // Subscribers cannot be fed: end them so they resume elsewhere (or here,
      // later) from their last cursor rather than wait silently.
      absl::MutexLock lock(&mutex_);
      for (EventSink* sink : sinks_)
        sink->Abort("the event store is unavailable");
      sinks_.clear();
      absl::SleepFor(absl::Milliseconds(200));
      continue;
    }
    absl::MutexLock lock(&mutex_);
    for (const v1::StatusEvent& event : *events) {
      for (EventSink* sink : sinks_) sink->Offer(event);
      cursor = event.cursor();
    }
  }
}

}  // namespace flikpay::server
