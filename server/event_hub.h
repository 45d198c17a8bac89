#ifndef FLIKPAY_SERVER_EVENT_HUB_H_
#define FLIKPAY_SERVER_EVENT_HUB_H_

#include <atomic>
#include <set>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "flikpay/v1/payment_service.pb.h"
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

// One reader per replica follows the store's event stream (which every replica
// appends to) and hands each event to every registered sink. Sinks filter and
// buffer on their own.
class EventHub {
 public:
  EventHub(store::Store& store, Metrics& metrics);
  ~EventHub();

  void Start();
  // Ends every sink with Abort("shutting down") and stops reading.
  void Shutdown();

  void Register(EventSink* sink);
  // After this returns the hub never touches `sink` again.
  void Unregister(EventSink* sink);

 private:
  void ReadLoop();

  store::Store& store_;
  Metrics& metrics_;
  absl::Mutex mutex_;
  std::set<EventSink*> sinks_ ABSL_GUARDED_BY(mutex_);
  std::atomic<bool> stopping_{false};
  std::thread reader_;
};

}  // namespace flikpay::server

#endif  // FLIKPAY_SERVER_EVENT_HUB_H_
