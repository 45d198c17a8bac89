// A Store in process memory for the fast test tier. It judges reports with the same
// core::PlanReport as RedisStore and applies each plan under one lock, so what the unit tests see
// is what Redis stores, without Redis.
#ifndef FLIKPAY_TESTS_SUPPORT_IN_MEMORY_STORE_H_
#define FLIKPAY_TESTS_SUPPORT_IN_MEMORY_STORE_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "core/transition.h"
#include "store/store.h"

namespace flikpay::testing {

class InMemoryStore : public store::Store {
 public:
  InMemoryStore() = default;

  // While set, every call answers UNAVAILABLE, as RedisStore does when Redis is down.
  void SetUnavailable(bool unavailable);
  // The next `count` Apply calls answer UNAVAILABLE (Redis lost in the middle of a callback).
  void FailApplies(int count);
  // Where the reconciler would look next; nullopt when off the watch list.
  std::optional<absl::Time> NextCheck(const std::string& id);
  int64_t Reserved(const std::string& id);
  // Which replica holds the reconciler's lease on the id, if any.
  std::optional<std::string> LeaseOwner(const std::string& id);
  std::vector<std::string> UnmatchedCallbacks();
  // The clock of the spend limits (absl::Now unless a test moves it; RedisStore uses Redis').
  void SetSpendClock(std::function<absl::Time()> clock);

  absl::StatusOr<store::BeginResult> Begin(const v1::Transaction& initial,
                                           absl::string_view fingerprint,
                                           absl::Time flight_deadline,
                                           absl::Time first_check) override;
  absl::StatusOr<store::BeginResult> BeginRefund(const v1::Transaction& refund,
                                                 absl::string_view fingerprint,
                                                 absl::Time flight_deadline, absl::Time first_check,
                                                 store::RefundCap cap) override;
  absl::Status Abandon(absl::string_view merchant_transaction_id) override;
  absl::StatusOr<v1::Transaction> Get(absl::string_view merchant_transaction_id) override;
  absl::StatusOr<std::vector<std::optional<v1::Transaction>>> GetMany(
      const std::vector<std::string>& ids) override;
  absl::StatusOr<std::string> FindByGatewayUuid(absl::string_view uuid) override;
  absl::StatusOr<store::ApplyResult> Apply(absl::string_view merchant_transaction_id,
                                           const store::Report& report) override;
  // The outcome and the mark under one lock, as RedisStore's one MULTI/EXEC.
  absl::StatusOr<store::ApplyResult> ApplyCallback(absl::string_view merchant_transaction_id,
                                                   const store::Report& report,
                                                   const store::CallbackApply& callback) override;
  absl::Status RecordUnmatchedCallback(absl::string_view body) override;
  absl::StatusOr<store::Sighting> SightCallback(absl::string_view signature,
                                                absl::Duration handling_lease) override;
  absl::Status MarkCallbackHandled(absl::string_view signature, absl::Duration ttl) override;
  absl::Status ForgetSighting(absl::string_view signature) override;
  absl::StatusOr<std::vector<v1::StatusEvent>> ReadEvents(absl::string_view after_cursor,
                                                          int max_count) override;
  absl::StatusOr<std::vector<v1::StatusEvent>> WaitForEvents(absl::string_view after_cursor,
                                                             int max_count,
                                                             absl::Duration wait) override;
  // Events and change notices (core::NeedsChangeNotice), as RedisStore writes them.
  absl::StatusOr<store::StreamRead> WaitForChanges(absl::string_view after_cursor, int max_count,
                                                   absl::Duration wait) override;
  // The ids of every change notice written, oldest first.
  std::vector<std::string> ChangeNotices();
  absl::StatusOr<std::string> LatestCursor() override;
  absl::Status Ping() override;
  absl::StatusOr<bool> CanResumeFrom(absl::string_view cursor) override;
  absl::StatusOr<std::vector<std::string>> DueForCheck(absl::Time now, int max_count) override;
  absl::Status ScheduleCheck(absl::string_view merchant_transaction_id, absl::Time when) override;
  absl::StatusOr<bool> TryLease(absl::string_view merchant_transaction_id, absl::string_view owner,
                                absl::Duration ttl) override;
  absl::Status ReleaseLease(absl::string_view merchant_transaction_id,
                            absl::string_view owner) override;
  absl::StatusOr<store::QueryTake> TakeStatusQuery(int limit, absl::Duration window) override;
  absl::StatusOr<int> StatusQueriesInWindow(absl::Duration window) override;
  absl::StatusOr<Backlog> CheckBacklog(absl::Time now) override;
  absl::StatusOr<store::SpendResult> ReserveSpend(absl::string_view caller, absl::string_view rpc,
                                                  int64_t amount_minor, int64_t limit_minor,
                                                  absl::Duration window) override;
  absl::Status ReleaseSpend(absl::string_view caller, absl::string_view rpc, int64_t amount_minor,
                            absl::Time reserved_at, absl::Duration window) override;

 private:
  // Minute (unix ms / 60000) -> cents reserved in it, as RedisStore's spend hashes.
  using SpendBuckets = std::map<int64_t, int64_t>;
  struct Entry {
    v1::Transaction record;  // refunded_amount_minor kept in `refunded`
    std::string fingerprint;
    absl::Time flight_deadline = absl::InfinitePast();
    int64_t reserved = 0;
    int64_t refunded = 0;
  };
  absl::Status Down() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  v1::Transaction Read(const Entry& entry) const;
  store::BeginResult Existing(const Entry& entry, absl::string_view fingerprint) const;
  // Claims the id: a new record, in flight, on the watch list.
  store::BeginResult Create(const v1::Transaction& initial, absl::string_view fingerprint,
                            absl::Time flight_deadline, absl::Time first_check)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // Plans the report against `entry` and stores the plan.
  store::ApplyResult StoreLocked(Entry& entry, absl::string_view merchant_transaction_id,
                                 const store::Report& report) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  std::vector<v1::StatusEvent> EventsAfter(absl::string_view cursor, int max_count) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);

  absl::Mutex mutex_;
  bool unavailable_ ABSL_GUARDED_BY(mutex_) = false;
  std::map<std::string, Entry, std::less<>> records_ ABSL_GUARDED_BY(mutex_);
  std::map<std::string, std::string, std::less<>> by_uuid_ ABSL_GUARDED_BY(mutex_);
  std::map<std::string, absl::Time, std::less<>> watch_ ABSL_GUARDED_BY(mutex_);
  std::map<std::string, std::string, std::less<>> leases_ ABSL_GUARDED_BY(mutex_);
  std::vector<v1::StatusEvent> events_ ABSL_GUARDED_BY(mutex_);
  // Change notices: (cursor, id). Events and notices share one sequence of cursors.
  std::vector<std::pair<std::string, std::string>> notices_ ABSL_GUARDED_BY(mutex_);
  int64_t entries_ ABSL_GUARDED_BY(mutex_) = 0;
  std::vector<std::string> unmatched_ ABSL_GUARDED_BY(mutex_);
  // Signatures of callbacks seen, with when each may be seen again.
  struct Seen {
    bool handled = false;
    absl::Time until;
  };
  std::map<std::string, Seen> sightings_ ABSL_GUARDED_BY(mutex_);
  int failing_applies_ ABSL_GUARDED_BY(mutex_) = 0;
  std::deque<absl::Time> granted_queries_ ABSL_GUARDED_BY(mutex_);  // oldest first
  std::function<absl::Time()> spend_clock_ ABSL_GUARDED_BY(mutex_) = [] { return absl::Now(); };
  std::map<std::pair<std::string, std::string>, SpendBuckets> spend_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace flikpay::testing

#endif  // FLIKPAY_TESTS_SUPPORT_IN_MEMORY_STORE_H_
