#include "tests/support/in_memory_store.h"

#include <algorithm>
#include <limits>
#include <tuple>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/cursor.h"

namespace flikpay::testing {

void InMemoryStore::SetUnavailable(bool unavailable) {
  absl::MutexLock lock(&mutex_);
  unavailable_ = unavailable;
}

absl::Status InMemoryStore::Down() const {
  return unavailable_ ? absl::UnavailableError("store: down for the test") : absl::OkStatus();
}

std::optional<absl::Time> InMemoryStore::NextCheck(const std::string& id) {
  absl::MutexLock lock(&mutex_);
  auto it = watch_.find(id);
  if (it == watch_.end()) return std::nullopt;
  return it->second;
}

int64_t InMemoryStore::Reserved(const std::string& id) {
  absl::MutexLock lock(&mutex_);
  auto it = records_.find(id);
  return it == records_.end() ? 0 : it->second.reserved;
}

std::vector<std::string> InMemoryStore::UnmatchedCallbacks() {
  absl::MutexLock lock(&mutex_);
  return unmatched_;
}

v1::Transaction InMemoryStore::Read(const Entry& entry) const {
  v1::Transaction record = entry.record;
  record.set_refunded_amount_minor(entry.refunded);
  return record;
}

store::BeginResult InMemoryStore::Existing(const Entry& entry,
                                           absl::string_view fingerprint) const {
  store::BeginResult result;
  result.transaction = Read(entry);
  result.stored_fingerprint = entry.fingerprint;
  result.same_request = entry.fingerprint == fingerprint;
  result.in_flight = entry.flight_deadline > absl::Now();
  return result;
}

store::BeginResult InMemoryStore::Create(const v1::Transaction& initial,
                                         absl::string_view fingerprint, absl::Time flight_deadline,
                                         absl::Time first_check) {
  const std::string& id = initial.merchant_transaction_id();
  records_[id] = Entry{initial, std::string(fingerprint), flight_deadline};
  watch_[id] = first_check;
  store::BeginResult result;
  result.created = true;
  result.in_flight = true;
  result.transaction = initial;
  return result;
}

absl::StatusOr<store::BeginResult> InMemoryStore::Begin(const v1::Transaction& initial,
                                                        absl::string_view fingerprint,
                                                        absl::Time flight_deadline,
                                                        absl::Time first_check) {
  absl::MutexLock lock(&mutex_);
  if (absl::Status down = Down(); !down.ok()) return down;
  const std::string& id = initial.merchant_transaction_id();
  if (auto it = records_.find(id); it != records_.end()) {
    return Existing(it->second, fingerprint);
  }
  return Create(initial, fingerprint, flight_deadline, first_check);
}

absl::StatusOr<store::BeginResult> InMemoryStore::BeginRefund(const v1::Transaction& refund,
                                                              absl::string_view fingerprint,
                                                              absl::Time flight_deadline,
                                                              absl::Time first_check,
                                                              store::RefundCap cap) {
  absl::MutexLock lock(&mutex_);
  if (absl::Status down = Down(); !down.ok()) return down;
  const std::string& id = refund.merchant_transaction_id();
  if (auto it = records_.find(id); it != records_.end()) {
    return Existing(it->second, fingerprint);
  }
  auto original = records_.find(refund.original_merchant_transaction_id());
  if (original == records_.end()) {
    return absl::NotFoundError("original_merchant_transaction_id: no such transaction");
  }
  const absl::Status refundable = core::CheckRefundable(
      Read(original->second), original->second.reserved, refund.amount_minor());
  if (!refundable.ok() && cap == store::RefundCap::kEnforce) return refundable;
  original->second.reserved += refund.amount_minor();
  store::BeginResult created = Create(refund, fingerprint, flight_deadline, first_check);
  created.beyond_cap = !refundable.ok();
  return created;
}

absl::Status InMemoryStore::Abandon(absl::string_view merchant_transaction_id) {
  absl::MutexLock lock(&mutex_);
  if (absl::Status down = Down(); !down.ok()) return down;
  auto it = records_.find(merchant_transaction_id);
  if (it == records_.end()) return absl::OkStatus();
  const v1::Transaction& record = it->second.record;
  if (record.type() == v1::TRANSACTION_TYPE_REFUND) {
    auto original = records_.find(record.original_merchant_transaction_id());
    if (original != records_.end()) {
      original->second.reserved -= record.amount_minor();
    }
  }
  watch_.erase(std::string(merchant_transaction_id));
  records_.erase(it);
  return absl::OkStatus();
}

absl::StatusOr<v1::Transaction> InMemoryStore::Get(absl::string_view merchant_transaction_id) {
  absl::MutexLock lock(&mutex_);
  if (absl::Status down = Down(); !down.ok()) return down;
  auto it = records_.find(merchant_transaction_id);
  if (it == records_.end()) {
    return absl::NotFoundError(
        absl::StrCat("no transaction with merchant_transaction_id ", merchant_transaction_id));
  }
  return Read(it->second);
}

absl::StatusOr<std::vector<std::optional<v1::Transaction>>> InMemoryStore::GetMany(
    const std::vector<std::string>& ids) {
  absl::MutexLock lock(&mutex_);
  if (absl::Status down = Down(); !down.ok()) return down;
  std::vector<std::optional<v1::Transaction>> found;
  found.reserve(ids.size());
  for (const std::string& id : ids) {
    auto it = records_.find(id);
    found.push_back(it == records_.end() ? std::nullopt : std::make_optional(Read(it->second)));
  }
  return found;
}

absl::StatusOr<std::string> InMemoryStore::FindByGatewayUuid(absl::string_view uuid) {
  absl::MutexLock lock(&mutex_);
  if (absl::Status down = Down(); !down.ok()) return down;
  auto it = by_uuid_.find(uuid);
  if (it == by_uuid_.end()) {
    return absl::NotFoundError(absl::StrCat("no transaction with gateway_uuid ", uuid));
  }
  return it->second;
}

void InMemoryStore::FailApplies(int count) {
  absl::MutexLock lock(&mutex_);
  failing_applies_ = count;
}

absl::StatusOr<store::ApplyResult> InMemoryStore::Apply(absl::string_view merchant_transaction_id,
                                                        const store::Report& report) {
  return ApplyCallback(merchant_transaction_id, report, store::CallbackApply{});
}

// The check runs without the lock (it may read the store, as a refund's does), against a copy of
// the record; the plan is stored only if the record is still that copy, as RedisStore's WATCH.
absl::StatusOr<store::ApplyResult> InMemoryStore::ApplyCallback(
    absl::string_view merchant_transaction_id, const store::Report& report,
    const store::CallbackApply& callback) {
  const auto not_found = [&] {
    return absl::NotFoundError(
        absl::StrCat("no transaction with merchant_transaction_id ", merchant_transaction_id));
  };
  {
    absl::MutexLock lock(&mutex_);
    if (absl::Status down = Down(); !down.ok()) return down;
    if (failing_applies_ > 0) {
      --failing_applies_;
      return absl::UnavailableError("store: lost for the test");
    }
  }
  while (true) {
    std::string why;
    std::string judged_record;
    if (callback.check) {
      v1::Transaction record;
      {
        absl::MutexLock lock(&mutex_);
        if (absl::Status down = Down(); !down.ok()) return down;
        auto it = records_.find(merchant_transaction_id);
        if (it == records_.end()) return not_found();
        record = Read(it->second);
      }
      absl::StatusOr<std::string> checked = callback.check(record);
      if (!checked.ok()) return checked.status();
      why = *std::move(checked);
      judged_record = record.SerializeAsString();
    }
    absl::MutexLock lock(&mutex_);
    if (absl::Status down = Down(); !down.ok()) return down;
    auto it = records_.find(merchant_transaction_id);
    if (it == records_.end()) return not_found();
    if (callback.check && Read(it->second).SerializeAsString() != judged_record) continue;
    store::Report refused;
    if (!why.empty()) {
      refused = report;
      refused.refused_because = why;
    }
    store::ApplyResult result =
        StoreLocked(it->second, merchant_transaction_id, why.empty() ? report : refused);
    result.refused_because = std::move(why);
    if (!callback.signature.empty()) {
      sightings_[callback.signature] =
          Seen{.handled = true, .until = absl::Now() + callback.mark_ttl};
    }
    return result;
  }
}

store::ApplyResult InMemoryStore::StoreLocked(Entry& entry,
                                              absl::string_view merchant_transaction_id,
                                              const store::Report& report) {
  core::Stored current{Read(entry), entry.flight_deadline};
  core::Plan plan = core::PlanReport(current, report, absl::Now());
  store::ApplyResult result;
  result.previous_status = current.record.status();
  result.status_changed = plan.status_changed;
  result.anomaly = plan.anomaly;
  if (plan.unchanged && plan.next_check.has_value()) {
    watch_[std::string(merchant_transaction_id)] = *plan.next_check;
  }
  if (!plan.unchanged) {
    const std::string id(merchant_transaction_id);
    entry.record = plan.next;
    entry.record.clear_refunded_amount_minor();
    entry.flight_deadline = plan.flight_deadline;
    if (plan.next_check.has_value()) {
      watch_[id] = *plan.next_check;
    } else {
      watch_.erase(id);
    }
    if (plan.new_gateway_uuid.has_value()) by_uuid_[*plan.new_gateway_uuid] = id;
    if (plan.refund_delta.has_value()) {
      auto original = records_.find(plan.refund_delta->original_merchant_transaction_id);
      if (original != records_.end()) {
        original->second.refunded += plan.refund_delta->refunded;
        original->second.reserved += plan.refund_delta->reserved;
      }
    }
    if (plan.event.has_value()) {
      plan.event->set_cursor(absl::StrCat(++entries_, "-0"));
      result.event_cursor = plan.event->cursor();
      events_.push_back(*std::move(plan.event));
    } else if (core::NeedsChangeNotice(current, plan)) {
      notices_.emplace_back(absl::StrCat(++entries_, "-0"), id);
    }
  }
  result.transaction = std::move(plan.next);
  return result;
}

absl::Status InMemoryStore::RecordUnmatchedCallback(absl::string_view body) {
  absl::MutexLock lock(&mutex_);
  if (absl::Status down = Down(); !down.ok()) return down;
  unmatched_.emplace_back(body);
  return absl::OkStatus();
}

absl::StatusOr<store::Sighting> InMemoryStore::SightCallback(absl::string_view signature,
                                                             absl::Duration handling_lease) {
  absl::MutexLock lock(&mutex_);
  if (absl::Status down = Down(); !down.ok()) return down;
  const absl::Time now = absl::Now();
  auto [seen, inserted] = sightings_.try_emplace(std::string(signature));
  if (!inserted && seen->second.until > now) {
    return seen->second.handled ? store::Sighting::kHandled : store::Sighting::kHandling;
  }
  seen->second = Seen{.handled = false, .until = now + handling_lease};
  return store::Sighting::kFirst;
}

absl::Status InMemoryStore::MarkCallbackHandled(absl::string_view signature, absl::Duration ttl) {
  absl::MutexLock lock(&mutex_);
  if (absl::Status down = Down(); !down.ok()) return down;
  sightings_[std::string(signature)] = Seen{.handled = true, .until = absl::Now() + ttl};
  return absl::OkStatus();
}

absl::Status InMemoryStore::ForgetSighting(absl::string_view signature) {
  absl::MutexLock lock(&mutex_);
  if (absl::Status down = Down(); !down.ok()) return down;
  sightings_.erase(std::string(signature));
  return absl::OkStatus();
}

std::vector<v1::StatusEvent> InMemoryStore::EventsAfter(absl::string_view cursor,
                                                        int max_count) const {
  std::vector<v1::StatusEvent> events;
  for (const v1::StatusEvent& event : events_) {
    if (static_cast<int>(events.size()) >= max_count) break;
    if (cursor.empty() || core::CursorBefore(cursor, event.cursor())) {
      events.push_back(event);
    }
  }
  return events;
}

absl::StatusOr<std::vector<v1::StatusEvent>> InMemoryStore::ReadEvents(
    absl::string_view after_cursor, int max_count) {
  absl::MutexLock lock(&mutex_);
  if (absl::Status down = Down(); !down.ok()) return down;
  return EventsAfter(after_cursor, max_count);
}

absl::StatusOr<std::vector<v1::StatusEvent>> InMemoryStore::WaitForEvents(
    absl::string_view after_cursor, int max_count, absl::Duration wait) {
  absl::MutexLock lock(&mutex_);
  if (absl::Status down = Down(); !down.ok()) return down;
  const std::string cursor(after_cursor);
  auto has_news = [this, &cursor]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) {
    return !EventsAfter(cursor, 1).empty();
  };
  mutex_.AwaitWithTimeout(absl::Condition(&has_news), wait);
  return EventsAfter(cursor, max_count);
}

absl::StatusOr<store::StreamRead> InMemoryStore::WaitForChanges(absl::string_view after_cursor,
                                                                int max_count,
                                                                absl::Duration wait) {
  absl::MutexLock lock(&mutex_);
  if (absl::Status down = Down(); !down.ok()) return down;
  const std::string cursor(after_cursor);
  auto after = [&cursor](const std::string& entry) {
    return cursor.empty() || core::CursorBefore(cursor, entry);
  };
  auto has_news = [this, &after]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) {
    return (!events_.empty() && after(events_.back().cursor())) ||
           (!notices_.empty() && after(notices_.back().first));
  };
  mutex_.AwaitWithTimeout(absl::Condition(&has_news), wait);
  // Events and notices merged in stream order.
  store::StreamRead read;
  auto event = std::find_if(events_.begin(), events_.end(),
                            [&](const v1::StatusEvent& e) { return after(e.cursor()); });
  auto notice =
      std::find_if(notices_.begin(), notices_.end(), [&](const auto& n) { return after(n.first); });
  for (int taken = 0; taken < max_count; ++taken) {
    const bool event_left = event != events_.end();
    const bool notice_left = notice != notices_.end();
    if (!event_left && !notice_left) break;
    if (event_left && (!notice_left || core::CursorBefore(event->cursor(), notice->first))) {
      read.last_cursor = event->cursor();
      read.events.push_back(*event++);
    } else {
      read.last_cursor = notice->first;
      read.changed_ids.push_back(notice->second);
      ++notice;
    }
  }
  return read;
}

std::vector<std::string> InMemoryStore::ChangeNotices() {
  absl::MutexLock lock(&mutex_);
  std::vector<std::string> ids;
  for (const auto& [cursor, id] : notices_) ids.push_back(id);
  return ids;
}

absl::StatusOr<std::string> InMemoryStore::LatestCursor() {
  absl::MutexLock lock(&mutex_);
  if (absl::Status down = Down(); !down.ok()) return down;
  return entries_ == 0 ? std::string("0-0") : absl::StrCat(entries_, "-0");
}

absl::Status InMemoryStore::Ping() {
  absl::MutexLock lock(&mutex_);
  return Down();
}

absl::StatusOr<bool> InMemoryStore::CanResumeFrom(absl::string_view) {
  absl::MutexLock lock(&mutex_);
  if (absl::Status down = Down(); !down.ok()) return down;
  return true;  // nothing is ever trimmed here
}

absl::StatusOr<std::vector<std::string>> InMemoryStore::DueForCheck(absl::Time now, int max_count) {
  absl::MutexLock lock(&mutex_);
  if (absl::Status down = Down(); !down.ok()) return down;
  // Unknown outcomes first, then the rest, oldest first in each (as RedisStore's two lists).
  std::vector<std::tuple<bool, absl::Time, std::string>> due;
  for (const auto& [id, when] : watch_) {
    if (when > now) continue;
    auto record = records_.find(id);
    const bool unknown = record != records_.end() &&
                         record->second.record.status() == v1::TRANSACTION_STATUS_UNKNOWN;
    due.emplace_back(!unknown, when, id);
  }
  std::sort(due.begin(), due.end());
  std::vector<std::string> ids;
  for (const auto& [later, when, id] : due) {
    if (static_cast<int>(ids.size()) >= max_count) break;
    ids.push_back(id);
  }
  return ids;
}

absl::Status InMemoryStore::ScheduleCheck(absl::string_view merchant_transaction_id,
                                          absl::Time when) {
  absl::MutexLock lock(&mutex_);
  if (absl::Status down = Down(); !down.ok()) return down;
  auto it = watch_.find(merchant_transaction_id);
  if (it != watch_.end()) it->second = when;
  return absl::OkStatus();
}

absl::StatusOr<bool> InMemoryStore::TryLease(absl::string_view merchant_transaction_id,
                                             absl::string_view owner, absl::Duration) {
  absl::MutexLock lock(&mutex_);
  if (absl::Status down = Down(); !down.ok()) return down;
  auto due = watch_.find(merchant_transaction_id);
  if (due == watch_.end() || due->second > absl::Now()) return false;
  return leases_.emplace(std::string(merchant_transaction_id), std::string(owner)).second;
}

std::optional<std::string> InMemoryStore::LeaseOwner(const std::string& id) {
  absl::MutexLock lock(&mutex_);
  auto it = leases_.find(id);
  if (it == leases_.end()) return std::nullopt;
  return it->second;
}

absl::Status InMemoryStore::ReleaseLease(absl::string_view merchant_transaction_id,
                                         absl::string_view owner) {
  absl::MutexLock lock(&mutex_);
  if (absl::Status down = Down(); !down.ok()) return down;
  auto it = leases_.find(merchant_transaction_id);
  if (it != leases_.end() && it->second == owner) leases_.erase(it);
  return absl::OkStatus();
}

absl::StatusOr<store::QueryTake> InMemoryStore::TakeStatusQuery(int limit, absl::Duration window) {
  absl::MutexLock lock(&mutex_);
  if (absl::Status down = Down(); !down.ok()) return down;
  const absl::Time now = absl::Now();
  while (!granted_queries_.empty() && granted_queries_.front() <= now - window) {
    granted_queries_.pop_front();
  }
  if (static_cast<int>(granted_queries_.size()) >= limit) {
    return store::QueryTake{false, static_cast<int>(granted_queries_.size())};
  }
  granted_queries_.push_back(now);
  return store::QueryTake{true, static_cast<int>(granted_queries_.size())};
}

absl::StatusOr<int> InMemoryStore::StatusQueriesInWindow(absl::Duration window) {
  absl::MutexLock lock(&mutex_);
  if (absl::Status down = Down(); !down.ok()) return down;
  const absl::Time since = absl::Now() - window;
  return static_cast<int>(std::count_if(granted_queries_.begin(), granted_queries_.end(),
                                        [since](absl::Time at) { return at > since; }));
}

absl::StatusOr<store::Store::Backlog> InMemoryStore::CheckBacklog(absl::Time now) {
  absl::MutexLock lock(&mutex_);
  if (absl::Status down = Down(); !down.ok()) return down;
  Backlog backlog;
  for (const auto& [id, when] : watch_) {
    if (when > now) continue;
    ++backlog.due;
    backlog.oldest = std::max(backlog.oldest, now - when);
  }
  return backlog;
}

namespace {

// The same arguments RedisStore refuses.
absl::Status CheckSpendArguments(int64_t amount_minor, int64_t limit_minor, absl::Duration window) {
  if (amount_minor <= 0) return absl::InvalidArgumentError("spend: the amount must be positive");
  if (limit_minor < 0) return absl::InvalidArgumentError("spend: the limit must not be negative");
  if (window < absl::Milliseconds(1) || window > store::kMaxSpendWindow) {
    return absl::InvalidArgumentError("spend: the window is out of range");
  }
  return absl::OkStatus();
}

int64_t FloorDiv(int64_t value, int64_t divisor) {
  return value / divisor - (value % divisor < 0 ? 1 : 0);
}

int64_t Minute(int64_t millis) { return FloorDiv(millis, 60'000); }

// The first minute still kept: every later one may have spent part of the window.
int64_t OldestMinute(absl::Time now, absl::Duration window) {
  return Minute(absl::ToUnixMillis(now) - absl::ToInt64Milliseconds(window));
}

}  // namespace

void InMemoryStore::SetSpendClock(std::function<absl::Time()> clock) {
  absl::MutexLock lock(&mutex_);
  spend_clock_ = std::move(clock);
}

absl::StatusOr<store::SpendResult> InMemoryStore::ReserveSpend(absl::string_view caller,
                                                               absl::string_view rpc,
                                                               int64_t amount_minor,
                                                               int64_t limit_minor,
                                                               absl::Duration window) {
  if (absl::Status valid = CheckSpendArguments(amount_minor, limit_minor, window); !valid.ok()) {
    return valid;
  }
  absl::MutexLock lock(&mutex_);
  if (absl::Status down = Down(); !down.ok()) return down;
  const absl::Time now = absl::FromUnixMillis(absl::ToUnixMillis(spend_clock_()));
  SpendBuckets& buckets = spend_[{std::string(caller), std::string(rpc)}];
  buckets.erase(buckets.begin(), buckets.lower_bound(OldestMinute(now, window)));
  store::SpendResult result;
  for (const auto& [minute, cents] : buckets) {
    // Kept sums never pass a limit, so this cannot overflow; saturate should it ever.
    if (__builtin_add_overflow(result.spent_minor, cents, &result.spent_minor)) {
      result.spent_minor = std::numeric_limits<int64_t>::max();
    }
  }
  int64_t total = 0;
  if (__builtin_add_overflow(result.spent_minor, amount_minor, &total) || total > limit_minor) {
    return result;
  }
  buckets[Minute(absl::ToUnixMillis(now))] += amount_minor;
  result.granted = true;
  result.reserved_at = now;
  return result;
}

absl::Status InMemoryStore::ReleaseSpend(absl::string_view caller, absl::string_view rpc,
                                         int64_t amount_minor, absl::Time reserved_at,
                                         absl::Duration window) {
  if (absl::Status valid = CheckSpendArguments(amount_minor, 0, window); !valid.ok()) return valid;
  absl::MutexLock lock(&mutex_);
  if (absl::Status down = Down(); !down.ok()) return down;
  auto spend = spend_.find({std::string(caller), std::string(rpc)});
  if (spend == spend_.end()) return absl::OkStatus();
  const int64_t minute = Minute(absl::ToUnixMillis(reserved_at));
  if (minute < OldestMinute(spend_clock_(), window)) return absl::OkStatus();
  auto bucket = spend->second.find(minute);
  if (bucket == spend->second.end()) return absl::OkStatus();
  if (bucket->second > amount_minor) {
    bucket->second -= amount_minor;
  } else {
    spend->second.erase(bucket);
  }
  return absl::OkStatus();
}

}  // namespace flikpay::testing
