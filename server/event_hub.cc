#include "server/event_hub.h"

#include <algorithm>
#include <utility>

#include "server/log.h"

namespace flikpay::server {

EventHub::EventHub(store::Store& store, Metrics& metrics, RecordCache* cache)
    : store_(store), metrics_(metrics), cache_(cache) {}

EventHub::~EventHub() { Shutdown(); }

void EventHub::Start() {
  reader_ = std::thread([this] { ReadLoop(); });
}

void EventHub::Shutdown() {
  stopping_ = true;
  if (reader_.joinable()) reader_.join();
  DropCache();
  AbortAll("the server is shutting down");
}

void EventHub::DropCache() {
  if (cache_ != nullptr) cache_->Drop();
}

void EventHub::Invalidate(const store::StreamRead& read) {
  if (cache_ == nullptr) return;
  for (const std::string& id : read.changed_ids) cache_->Invalidate(id);
  for (const v1::StatusEvent& event : read.events) {
    const v1::Transaction& transaction = event.transaction();
    cache_->Invalidate(transaction.merchant_transaction_id());
    // A refund's status change moves its debit's refunded amount.
    if (!transaction.original_merchant_transaction_id().empty()) {
      cache_->Invalidate(transaction.original_merchant_transaction_id());
    }
  }
}

namespace {

std::vector<std::string> DistinctIds(const EventSink& sink) {
  std::vector<std::string> ids = sink.WatchedIds();
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  return ids;
}

}  // namespace

void EventHub::Register(std::shared_ptr<EventSink> sink) {
  const std::vector<std::string> ids = DistinctIds(*sink);
  {
    absl::MutexLock lock(&mutex_);
    if (!stopping_) {
      const EventSink* key = sink.get();
      if (registered_.contains(key)) return;
      Registration registration;
      registration.sink = sink;
      if (ids.empty()) {
        registration.everything = true;
        registration.everything_index = everything_.size();
        everything_.push_back(sink);
      } else {
        for (const std::string& id : ids) by_id_[id].push_back(sink);
      }
      registered_.emplace(key, std::move(registration));
      return;
    }
  }
  sink->Abort("the server is shutting down");
}

void EventHub::Unregister(const EventSink* sink) {
  // Read outside the lock (the sink's own code). The sink is alive: the caller holds it.
  const std::vector<std::string> ids = DistinctIds(*sink);
  absl::MutexLock lock(&mutex_);
  auto found = registered_.find(sink);
  if (found == registered_.end()) return;
  Registration& registration = found->second;
  if (registration.everything) {
    // Swap with the last and pop: O(1), whatever the number of watch-everything sinks.
    const size_t index = registration.everything_index;
    if (index + 1 != everything_.size()) {
      everything_[index] = std::move(everything_.back());
      registered_[everything_[index].get()].everything_index = index;
    }
    everything_.pop_back();
  } else {
    for (const std::string& id : ids) {
      auto watchers = by_id_.find(id);
      if (watchers == by_id_.end()) continue;
      Watchers& list = watchers->second;
      list.erase(std::remove_if(list.begin(), list.end(),
                                [sink](const std::shared_ptr<EventSink>& registered) {
                                  return registered.get() == sink;
                                }),
                 list.end());
      if (watchers->second.empty()) by_id_.erase(watchers);
    }
  }
  registered_.erase(found);
}

size_t EventHub::SinkCount() {
  absl::MutexLock lock(&mutex_);
  return registered_.size();
}

size_t EventHub::WatchersOf(const std::string& id) {
  absl::MutexLock lock(&mutex_);
  auto watchers = by_id_.find(id);
  return watchers == by_id_.end() ? 0 : watchers->second.size();
}

void EventHub::Deliver(const std::vector<v1::StatusEvent>& events) {
  // The sinks watching everything are copied once per batch, not once per event: the lock is held
  // for a lookup per event plus one copy, however many events the batch holds.
  std::vector<std::shared_ptr<EventSink>> everything;
  std::vector<Delivery> deliveries;
  deliveries.reserve(events.size());
  {
    absl::MutexLock lock(&mutex_);
    everything = everything_;
    for (const v1::StatusEvent& event : events) {
      Delivery delivery{&event, {}};
      auto watchers = by_id_.find(event.transaction().merchant_transaction_id());
      if (watchers != by_id_.end()) delivery.id_watchers = watchers->second;
      deliveries.push_back(std::move(delivery));
    }
  }
  for (const Delivery& delivery : deliveries) {
    for (const std::shared_ptr<EventSink>& sink : everything) sink->Offer(*delivery.event);
    for (const std::shared_ptr<EventSink>& sink : delivery.id_watchers) {
      sink->Offer(*delivery.event);
    }
  }
}

void EventHub::AbortAll(const std::string& why) {
  absl::flat_hash_map<const EventSink*, Registration> aborted;
  {
    absl::MutexLock lock(&mutex_);
    aborted.swap(registered_);
    by_id_.clear();
    everything_.clear();
  }
  for (auto& [key, registration] : aborted) registration.sink->Abort(why);
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
    // A cached record may be one the new primary lost, and the hub may miss changes until its
    // cursor is checked there.
    if (verify_cursor_) DropCache();
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
    absl::StatusOr<store::StreamRead> read =
        store_.WaitForChanges(cursor, 256, absl::Milliseconds(500));
    if (!read.ok()) {
      ReadFailed("cannot read the event stream", read.status());
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
    // Following from a verified position on this generation's primary: every later change is
    // after `cursor`, so the cache may serve records read from now on.
    if (cache_ != nullptr) cache_->Follow(generation);
    if (read->last_cursor.empty()) continue;
    // The cache forgets before any subscriber hears of a change.
    Invalidate(*read);
    Deliver(read->events);
    cursor = read->last_cursor;
  }
}

void EventHub::ReadFailed(absl::string_view what, const absl::Status& status) {
  metrics_.store_unavailable.Increment();
  if (read_failures_.ShouldLog()) {
    Log(LogLevel::kWarning, "event hub: %s (%d tries so far), ending this replica's streams: %s",
        what, read_failures_.count(), status.message());
  }
  // Subscribers cannot be fed: end them so they resume elsewhere (or here, later) from their last
  // cursor rather than wait silently. Nor can the cache hear of changes.
  DropCache();
  AbortAll("the event store is unavailable");
  verify_cursor_ = true;
  absl::SleepFor(absl::Milliseconds(200));
}

}  // namespace flikpay::server
