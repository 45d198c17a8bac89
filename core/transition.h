// What a report does to a stored transaction, decided without any storage: the stores (Redis, and
// the in-memory one tests use) read, call Plan, and write what it says in one atomic step.
#ifndef FLIKPAY_CORE_TRANSITION_H_
#define FLIKPAY_CORE_TRANSITION_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "core/state_machine.h"
#include "flikpay/v1/payment_service.pb.h"

namespace flikpay::core {

// When the reconciler next looks at a transaction that is not final.
struct SchedulePolicy {
  // An UNKNOWN outcome, this long after its gateway call's deadline.
  absl::Duration unknown_check_after = absl::Seconds(10);
  // A PENDING transaction with no news (a lost callback) is first checked after this; while it
  // stays PENDING, each check waits as long as the silence has lasted (doubling), at most
  // pending_check_max. A 72-hour Out-of-Band request costs about 75 queries, not 26,000.
  absl::Duration pending_check_after = absl::Minutes(5);
  absl::Duration pending_check_max = absl::Hours(1);
  // A PENDING request-to-pay, this long after it expired.
  absl::Duration expiry_grace = absl::Seconds(60);
  // After a status query, the same transaction is not queried again sooner: Bankart limits
  // queries per transaction, and the reconciler's retry after a failed query waits this long too.
  absl::Duration recheck_after = absl::Seconds(10);

  // The first check of a just-claimed id whose call ends by `flight_deadline`.
  absl::Time FirstCheck(absl::Time flight_deadline) const {
    return flight_deadline + unknown_check_after;
  }
};

// A report about a transaction, from flikpay's own call, a callback or the reconciler.
struct Report {
  v1::TransactionStatus status = v1::TRANSACTION_STATUS_UNSPECIFIED;
  v1::EventSource source = v1::EVENT_SOURCE_UNSPECIFIED;
  // Copies what the report knows into the record (gateway uuid, redirect URL, error, ...). Called
  // on a copy of the stored record; called again when a concurrent writer forces a retry. It cannot
  // change the status, version, history or refunded amount: those belong to the state machine.
  std::function<void(v1::Transaction&)> fill;
  // The gateway call is over (successful or not): duplicates of the request stop being ABORTED.
  bool ends_flight = false;
  // When to look again while the transaction stays open: the service's reconcile policy.
  SchedulePolicy schedule;
  // Set when the report was refused (a callback that does not match its transaction: another
  // connector, type, amount, currency or uuid): only recorded in the history with this note, as
  // an anomaly; the record is otherwise untouched (fill is not applied, the status stays).
  std::string refused_because;
};

// The history keeps its first kHistoryHead entries and its latest ones, up to kHistoryCap in all;
// the entry after the head counts what was dropped between them. A record never grows without
// bound, however many reports contradict it.
inline constexpr int kHistoryCap = 64;
inline constexpr int kHistoryHead = 16;

// The stored state a report is judged against.
struct Stored {
  v1::Transaction record;  // refunded_amount_minor filled in
  // The deadline of the gateway call that claimed the id; InfinitePast once the call is over.
  absl::Time flight_deadline = absl::InfinitePast();
};

// Changes to the original debit's refund counters (cents).
struct RefundDelta {
  std::string original_merchant_transaction_id;
  int64_t refunded = 0;  // a refund succeeded
  int64_t reserved = 0;  // negative: a refund failed and gives its amount back
};

struct Plan {
  Verdict verdict = Verdict::kDuplicate;
  // Nothing to store: the report repeats what is known.
  bool unchanged = true;
  v1::Transaction next;  // the record to store (or the current one)
  bool status_changed = false;
  // A contradicting final status from outside (callback, reconciler): kept in the history, the
  // status stays.
  bool anomaly = false;
  // The claim's flight deadline after the report (InfinitePast: ended).
  absl::Time flight_deadline = absl::InfinitePast();
  // When the reconciler should look next; nullopt once final (off the list) or, for an unchanged
  // record, when the schedule stays as it is. A reconciler's report always reschedules an open
  // transaction, even when it changes nothing (the check was made; the next one is due later).
  std::optional<absl::Time> next_check;
  // Set when the record got a gateway uuid it did not have: index it.
  std::optional<std::string> new_gateway_uuid;
  std::optional<RefundDelta> refund_delta;
  // One event per real status change; its cursor comes from the store.
  std::optional<v1::StatusEvent> event;
};

// The pure transition: given what is stored, a report (with its schedule policy) and the time,
// what to store. Deterministic: `now` is the only clock.
Plan PlanReport(const Stored& current, const Report& report, absl::Time now);

// Whether a store writing `plan` over `current` must also write a change notice into the event
// stream (a stream entry that is no event, which every replica's event hub reads and no subscriber
// ever sees): when the record of a final transaction changes without a status event (a history
// entry for an anomaly or a refused callback, a field a late report fills in). Replicas cache only
// final records (server/record_cache.h), and every other change to what Store::Get answers for one
// comes with an event: a status change is an event, and a debit's refunded amount moves only with
// its refund's status change, whose event names the debit (original_merchant_transaction_id).
// A record that is not final is never cached, so its changes need no notice.
bool NeedsChangeNotice(const Stored& current, const Plan& plan);

// Whether `amount_minor` may be refunded from `original` with `reserved` cents already taken by
// pending and successful refunds: FAILED_PRECONDITION naming the field when not.
absl::Status CheckRefundable(const v1::Transaction& original, int64_t reserved,
                             int64_t amount_minor);

}  // namespace flikpay::core

#endif  // FLIKPAY_CORE_TRANSITION_H_
