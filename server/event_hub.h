#ifndef FLIKPAY_SERVER_EVENT_HUB_H_
#define FLIKPAY_SERVER_EVENT_HUB_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/inlined_vector.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "flikpay/v1/payment_service.pb.h"
#include "server/log.h"
#include "server/metrics.h"
#include "server/record_cache.h"
#include "store/store.h"

namespace flikpay::server {

// Something that wants status events: a StreamStatus call.
class EventSink {
 public:
  virtual ~EventSink() = default;
  // The merchant_transaction_ids whose events this sink wants, read by Register and again by
  // Unregister (so it must not change in between); empty: every event. The hub offers a sink only
  // the events of the ids it watches (a sink's other filters, such as event types or the caller's
  // own transactions, are its own to apply).
  virtual std::vector<std::string> WatchedIds() const { return {}; }
  // Called in stream order, from the hub's reader thread, with the events the sink watches. Must
  // not block.
  virtual void Offer(const v1::StatusEvent& event) = 0;
  // The hub can no longer feed this sink (store unreachable, shutdown).
  virtual void Abort(const std::string& why) = 0;
};

// One reader per replica follows the store's event stream (which every replica appends to) and
// hands each event to the registered sinks that watch it. Sinks are indexed by the ids they watch
// (id -> sinks), beside a list of the sinks that watch everything, so one event costs a hash lookup
// of its id plus one Offer per sink that watches that id or everything: O(1 + watchers), whatever
// the number of streams that watch other ids. Sinks filter further (types, owner) and buffer on
// their own. The hub calls sinks without holding its lock (on a copy of the sinks a batch of
// events reaches), so a sink may still be offered the rest of the batch being delivered (up to 256
// events) after its Unregister returns; sinks ignore offers once they are done.
class EventHub {
 public:
  // `cache`, when given, is kept coherent with the stream (see RecordCache): every id an event or
  // change notice names is invalidated before the event is offered to any sink, and the cache is
  // dropped whenever the hub cannot vouch for its position (failed read, cursor re-check, another
  // primary, shutdown).
  EventHub(store::Store& store, Metrics& metrics, RecordCache* cache = nullptr);
  ~EventHub();

  void Start();
  // Ends every sink with Abort("shutting down") and stops reading.
  void Shutdown();

  void Register(std::shared_ptr<EventSink> sink);
  void Unregister(const EventSink* sink);

  // For tests: registered sinks, and those indexed under `id` (not counting watch-everything ones).
  size_t SinkCount();
  size_t WatchersOf(const std::string& id);

 private:
  void ReadLoop();
  // Counts and (now and then) logs a failed read, ends every stream and pauses before the retry.
  void ReadFailed(absl::string_view what, const absl::Status& status);

  // A registered sink: whether it watches everything, and where the watch-everything list holds
  // it. Its ids are not copied here: Unregister asks the sink again (an idle stream's memory,
  // issue 15).
  struct Registration {
    std::shared_ptr<EventSink> sink;
    bool everything = false;
    size_t everything_index = 0;  // in everything_, when everything
  };
  // The sinks that watch one id: most ids have one, held in place (no allocation of its own).
  using Watchers = absl::InlinedVector<std::shared_ptr<EventSink>, 1>;
  // One event and the sinks watching its id, taken under the lock and called without it.
  struct Delivery {
    const v1::StatusEvent* event;
    Watchers id_watchers;
  };

  // Offers each event of a batch to the sinks that watch it, in stream order.
  void Deliver(const std::vector<v1::StatusEvent>& events);
  // Takes every sink off the index and aborts each with `why`.
  void AbortAll(const std::string& why);

  // Forgets what `read` says changed, in the record cache (if any).
  void Invalidate(const store::StreamRead& read);
  void DropCache();

  store::Store& store_;
  Metrics& metrics_;
  RecordCache* const cache_;
  absl::Mutex mutex_;
  absl::flat_hash_map<const EventSink*, Registration> registered_ ABSL_GUARDED_BY(mutex_);
  absl::flat_hash_map<std::string, Watchers> by_id_ ABSL_GUARDED_BY(mutex_);
  std::vector<std::shared_ptr<EventSink>> everything_ ABSL_GUARDED_BY(mutex_);
  std::atomic<bool> stopping_{false};
  std::thread reader_;
  // Set by a failed read (or a new PrimaryGeneration): the next read first checks that the stream
  // still holds the event at the hub's cursor. Used by the reader thread only.
  bool verify_cursor_ = false;
  // The store's PrimaryGeneration when the cursor was last checked or read on; a new one is checked
  // again like a failed read. Used by the reader thread only.
  uint64_t read_generation_ = 0;
  // Failed reads in a row; used by the reader thread only.
  RepeatedFailureLog read_failures_{25};
};

}  // namespace flikpay::server

#endif  // FLIKPAY_SERVER_EVENT_HUB_H_
