#include "core/subscription.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/cursor.h"

namespace flikpay::core {

Subscription::Subscription(const v1::StreamStatusRequest& request, size_t max_buffered,
                           StreamWriter& writer, std::optional<std::string> owner)
    : ids_(request.merchant_transaction_ids().begin(), request.merchant_transaction_ids().end()),
      types_(request.types().begin(), request.types().end()),
      owner_(std::move(owner)),
      max_buffered_(max_buffered),
      page_size_(static_cast<int>(std::max<size_t>(1, max_buffered / 2))),
      writer_(writer) {}

void Subscription::AddCurrent(const v1::Transaction& transaction) {
  // Another caller's transaction is treated as one that does not exist.
  if (owner_.has_value() && transaction.created_by() != *owner_) return;
  v1::StatusEvent snapshot;
  *snapshot.mutable_transaction() = transaction;
  *snapshot.mutable_occurred_at() = transaction.updated_at();
  absl::MutexLock lock(&mutex_);
  // At most one per requested id, so it cannot overflow; no cursor, so it is not deduplicated
  // against the stream.
  if (!finishing_) PushLocked(std::move(snapshot));
}

void Subscription::StartReplay(const std::string& after_cursor) {
  absl::MutexLock lock(&mutex_);
  replaying_ = true;
  replay_cursor_ = after_cursor;
}

void Subscription::CatchUp() {
  {
    absl::MutexLock lock(&mutex_);
    CatchUpLocked();
  }
  Pump();
}

std::optional<std::string> Subscription::NextReplayPage() {
  absl::MutexLock lock(&mutex_);
  if (finishing_ || !replaying_ || replay_paused_) return std::nullopt;
  return replay_cursor_;
}

void Subscription::AddReplayPage(const std::vector<v1::StatusEvent>& page) {
  {
    absl::MutexLock lock(&mutex_);
    if (finishing_ || !replaying_) return;
    for (const v1::StatusEvent& event : page) {
      // Unbounded: a page is at most half the buffer, and the next page is read only once this one
      // has been written.
      EnqueueLocked(event, /*bounded=*/false);
      replay_cursor_ = event.cursor();
    }
    if (static_cast<int>(page.size()) < page_size_) {
      CatchUpLocked();
    } else if (writing_ || QueuedLocked() > 0) {
      replay_paused_ = true;  // WriteDone asks for the next page once drained
    }
  }
  Pump();
}

void Subscription::Offer(const v1::StatusEvent& event) {
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
      EnqueueLocked(event, /*bounded=*/true);
    }
  }
  Pump();
}

void Subscription::WriteDone(bool ok) {
  bool continue_replay = false;
  {
    absl::MutexLock lock(&mutex_);
    writing_ = false;
    if (ok) {
      if (!writing_cursor_.empty()) sent_cursor_ = writing_cursor_;
      if (replay_paused_ && QueuedLocked() == 0 && !finishing_ && !detached_) {
        replay_paused_ = false;
        continue_replay = true;
      }
    } else if (!finishing_) {
      finishing_ = true;
      final_status_ = absl::CancelledError("stream broken");
    }
  }
  if (continue_replay) writer_.ContinueReplay();
  Pump();
}

void Subscription::End(absl::Status status) {
  {
    absl::MutexLock lock(&mutex_);
    if (finishing_) return;
    finishing_ = true;
    final_status_ = std::move(status);
  }
  Pump();
}

void Subscription::EndUnavailable(absl::string_view why) {
  std::string message;
  {
    absl::MutexLock lock(&mutex_);
    message = absl::StrCat(why, ResumeHintLocked());
  }
  End(absl::UnavailableError(message));
}

void Subscription::Detach() {
  absl::MutexLock lock(&mutex_);
  detached_ = true;
}

bool Subscription::Wanted(const v1::StatusEvent& event) const {
  if (!ids_.empty() && !ids_.contains(event.transaction().merchant_transaction_id())) {
    return false;
  }
  if (owner_.has_value() && event.transaction().created_by() != *owner_) return false;
  return types_.empty() || types_.contains(event.transaction().type());
}

void Subscription::EnqueueLocked(const v1::StatusEvent& event, bool bounded) {
  if (finishing_) return;
  // The replay and the live feed overlap; stream order makes "not after the newest seen" exactly
  // the duplicates.
  if (!seen_cursor_.empty() && !CursorBefore(seen_cursor_, event.cursor())) {
    return;
  }
  seen_cursor_ = event.cursor();
  if (!Wanted(event)) return;
  if (bounded && QueuedLocked() >= max_buffered_) return OverflowLocked();
  PushLocked(event);
}

void Subscription::PushLocked(v1::StatusEvent event) {
  if (!queue_.has_value()) queue_.emplace();
  queue_->push_back(std::move(event));
}

void Subscription::CatchUpLocked() {
  catching_up_ = false;
  replaying_ = false;
  replay_paused_ = false;
  std::vector<v1::StatusEvent> held;
  held.swap(held_live_);
  for (const v1::StatusEvent& event : held) EnqueueLocked(event, true);
}

void Subscription::OverflowLocked() {
  finishing_ = true;
  final_status_ = absl::ResourceExhaustedError(absl::StrCat(
      "subscriber fell more than ", max_buffered_, " events behind", ResumeHintLocked()));
  queue_.reset();
  held_live_.clear();
}

// Events written just before a stream ends can still be lost in transit, so only the client knows
// the last one it received: that is where it resumes. The last one written here is a hint.
std::string Subscription::ResumeHintLocked() const {
  return absl::StrCat(
      "; resume with resume_after=<the cursor of the last event you received>",
      sent_cursor_.empty() ? "" : absl::StrCat(" (last written: ", sent_cursor_, ")"));
}

void Subscription::Pump() {
  enum { kNothing, kWrite, kFinish } action = kNothing;
  v1::StatusEvent next;
  absl::Status status;
  {
    absl::MutexLock lock(&mutex_);
    if (writing_ || finished_ || detached_) return;
    if (finishing_) {
      finished_ = true;
      status = final_status_;
      action = kFinish;
    } else if (QueuedLocked() > 0) {
      next = std::move(queue_->front());
      queue_->pop_front();
      if (queue_->empty()) queue_.reset();
      writing_cursor_ = next.cursor();
      writing_ = true;
      action = kWrite;
    }
  }
  if (action == kWrite) writer_.Write(next);
  if (action == kFinish) writer_.Finish(status);
}

}  // namespace flikpay::core
