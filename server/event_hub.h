#ifndef FLIKPAY_SERVER_EVENT_HUB_H_
#define FLIKPAY_SERVER_EVENT_HUB_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "flikpay/v1/payment_service.pb.h"
#include "server/log.h"
#include "server/metrics.h"
#include "store/store.h"

namespace flikpay::server {

// Something that wants every status event: a StreamStatus call.
class EventSink {
 public:
  virtual ~EventSink() = default;
  // Called in stream order, from the hub's reader thread. Must not block.
  virtual void Offer(const v1::StatusEvent& event) = 0;
  // The hub can no longer feed this sink (store unreachable, shutdown).
  virtual void Abort(const std::string& why) = 0;
};

// One reader per replica follows the store's event stream (which every replica appends to) and
// hands each event to every registered sink. Sinks filter and buffer on their own. The hub calls
// sinks without holding its lock (on a copy of the list), so a sink may outlive its Unregister by
// one call.
class EventHub {
 public:
  EventHub(store::Store& store, Metrics& metrics);
  ~EventHub();

  void Start();
  // Ends every sink with Abort("shutting down") and stops reading.
  void Shutdown();

  void Register(std::shared_ptr<EventSink> sink);
  void Unregister(const EventSink* sink);

 private:
  void ReadLoop();
  // Counts and (now and then) logs a failed read, ends every stream and pauses before the retry.
  void ReadFailed(absl::string_view what, const absl::Status& status);

  store::Store& store_;
  Metrics& metrics_;
  absl::Mutex mutex_;
  // The sinks to offer events to, taken under the lock and called without it.
  std::vector<std::shared_ptr<EventSink>> Sinks();
  // Takes every sink off the list and aborts each with `why`.
  void AbortAll(const std::string& why);

  std::vector<std::shared_ptr<EventSink>> sinks_ ABSL_GUARDED_BY(mutex_);
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
