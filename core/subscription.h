// One StreamStatus subscriber's logic without gRPC or Redis: current states first, then the replay
// from a cursor, then live events, each event once and in stream order, within a bounded buffer,
// one write at a time. The transport does the I/O (reads pages, writes messages) and reports back.
#ifndef FLIKPAY_CORE_SUBSCRIPTION_H_
#define FLIKPAY_CORE_SUBSCRIPTION_H_

#include <deque>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "flikpay/v1/payment_service.pb.h"

namespace flikpay::core {

// What a Subscription asks of its transport. Never called with the subscription's lock held, so an
// implementation may call back into it.
class StreamWriter {
 public:
  virtual ~StreamWriter() = default;
  // Sends one event. The next Write comes only after WriteDone.
  virtual void Write(const v1::StatusEvent& event) = 0;
  // Ends the stream; nothing is called after it.
  virtual void Finish(const absl::Status& status) = 0;
  // The replay paused until the subscriber had read what it was sent; read the next page now (off
  // the reacting thread: it is a store read).
  virtual void ContinueReplay() = 0;
};

class Subscription {
 public:
  // `max_buffered`: events that may wait for the subscriber before it is ended with
  // RESOURCE_EXHAUSTED; replay pages are half of it. `owner`: only transactions created by this
  // caller (nullopt: anyone's, for a caller with read_all).
  Subscription(const v1::StreamStatusRequest& request, size_t max_buffered, StreamWriter& writer,
               std::optional<std::string> owner = std::nullopt);

  // Set-up, in this order: the current states (send_current), then either StartReplay
  // (resume_after) or CatchUp (live only).
  void AddCurrent(const v1::Transaction& transaction);
  void StartReplay(const std::string& after_cursor);
  void CatchUp();

  // The cursor to read the next replay page after, or nullopt when no page is wanted now (replay
  // over, paused for the subscriber, or the stream ended).
  std::optional<std::string> NextReplayPage();
  int page_size() const { return page_size_; }
  // A page read after NextReplayPage's cursor; a short page ends the replay.
  void AddReplayPage(const std::vector<v1::StatusEvent>& page);

  // The merchant_transaction_ids asked for (empty: every one).
  const std::set<std::string>& ids() const { return ids_; }

  // A live event, in stream order, from the replica's event hub.
  void Offer(const v1::StatusEvent& event);
  void WriteDone(bool ok);

  // Ends the stream once the write in flight (if any) is done.
  void End(absl::Status status);
  // Ends it UNAVAILABLE, telling the subscriber how to resume.
  void EndUnavailable(absl::string_view why);
  // The transport is gone: the writer is never called again.
  void Detach();

 private:
  bool Wanted(const v1::StatusEvent& event) const;
  void EnqueueLocked(const v1::StatusEvent& event, bool bounded)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  size_t QueuedLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) {
    return queue_.has_value() ? queue_->size() : 0;
  }
  void PushLocked(v1::StatusEvent event) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  void CatchUpLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  void OverflowLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  std::string ResumeHintLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // Starts the next write, or the Finish, when nothing is in flight.
  void Pump() ABSL_LOCKS_EXCLUDED(mutex_);

  const std::set<std::string> ids_;
  const std::set<int> types_;
  const std::optional<std::string> owner_;
  const size_t max_buffered_;
  const int page_size_;
  StreamWriter& writer_;

  mutable absl::Mutex mutex_;
  // Events waiting to be written. Created by the first one and dropped once drained: libstdc++'s
  // deque allocates a 576-byte map and node as soon as it exists, the bulk of an idle stream's own
  // memory (issue 15).
  std::optional<std::deque<v1::StatusEvent>> queue_ ABSL_GUARDED_BY(mutex_);
  // Live events that arrive while the replay runs; they go after it.
  std::vector<v1::StatusEvent> held_live_ ABSL_GUARDED_BY(mutex_);
  bool catching_up_ ABSL_GUARDED_BY(mutex_) = true;
  bool replaying_ ABSL_GUARDED_BY(mutex_) = false;
  bool replay_paused_ ABSL_GUARDED_BY(mutex_) = false;
  std::string replay_cursor_ ABSL_GUARDED_BY(mutex_);
  // The newest event considered: anything not after it is a duplicate.
  std::string seen_cursor_ ABSL_GUARDED_BY(mutex_);
  std::string writing_cursor_ ABSL_GUARDED_BY(mutex_);
  // The newest event the transport confirmed written.
  std::string sent_cursor_ ABSL_GUARDED_BY(mutex_);
  bool writing_ ABSL_GUARDED_BY(mutex_) = false;
  bool finishing_ ABSL_GUARDED_BY(mutex_) = false;
  bool finished_ ABSL_GUARDED_BY(mutex_) = false;
  bool detached_ ABSL_GUARDED_BY(mutex_) = false;
  absl::Status final_status_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace flikpay::core

#endif  // FLIKPAY_CORE_SUBSCRIPTION_H_
