#ifndef FLIKPAY_STORE_STORE_H_
#define FLIKPAY_STORE_STORE_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "core/transition.h"
#include "flikpay/v1/payment_service.pb.h"

namespace flikpay::store {

// The outcome of claiming a merchant_transaction_id.
struct BeginResult {
  // True: the id was free and `transaction` is the new record (status UNKNOWN, in flight). False:
  // `transaction` is what is already stored under the id.
  bool created = false;
  v1::Transaction transaction;
  // Whether the stored record was created from the same request parameters.
  bool same_request = true;
  // The fingerprint stored with a taken id (so a caller can also compare a fingerprint of an older
  // form, from before a change of how fingerprints are made).
  std::string stored_fingerprint;
  // Whether the call that created it is still talking to the gateway.
  bool in_flight = false;
  // A refund recorded with RefundCap::kRecordBeyond that flikpay's own cap would have refused.
  bool beyond_cap = false;
};

// Whether a refund's claim is held to what is left of its debit.
enum class RefundCap {
  kEnforce,  // flikpay is about to ask Bankart: refuse what does not fit
  // Bankart has already made it (in its portal): record it whatever flikpay believed was left,
  // and say so (BeginResult::beyond_cap).
  kRecordBeyond,
};

// Reports are judged by the core's pure transition (core/transition.h).
using Report = core::Report;

// What Store::SightCallback knows of a verified callback's signature.
enum class Sighting {
  kFirst,     // not seen within the window: the caller handles it now
  kHandling,  // another delivery of the same bytes is being handled right now
  kHandled,   // handled before
};

// The outcome of Store::ReserveSpend.
struct SpendResult {
  bool granted = false;
  int64_t spent_minor = 0;  // already spent in the window, before this request
  // When the reservation was counted, on the store's clock (Redis' own, shared by every replica):
  // pass it to ReleaseSpend so the amount goes back to the minute it was added to. Set only when
  // granted.
  absl::Time reserved_at = absl::InfinitePast();
};

struct ApplyResult {
  v1::Transaction transaction;  // as stored after the report
  v1::TransactionStatus previous_status = v1::TRANSACTION_STATUS_UNSPECIFIED;  // before it
  bool status_changed = false;
  bool anomaly = false;      // a contradicting final status, recorded in the history
  std::string event_cursor;  // set when an event was emitted
  // Store::ApplyCallback: why its check refused the report ("" when it did not), which was then
  // only recorded, as Report::refused_because.
  std::string refused_because;
};

// What Store::ApplyCallback does beside Apply's work.
struct CallbackApply {
  // Judges the record as stored (the one the report is planned against, in the same
  // compare-and-set; called again if a concurrent writer forces a retry): "" when the callback is
  // about it; else why not, and the report is stored refused (Report::refused_because); an error
  // stores nothing. Empty: no check. It may read the store (a refund's debit), never write it.
  std::function<absl::StatusOr<std::string>(const v1::Transaction&)> check;
  // The verified callback's signature, marked handled for `mark_ttl` (as
  // Store::MarkCallbackHandled) with what the report stores; "" for none.
  std::string signature;
  absl::Duration mark_ttl = absl::ZeroDuration();
};

// What a follower of the event stream reads (Store::WaitForChanges): the events, and the records
// that changed without one, in the order the stream holds them.
struct StreamRead {
  std::vector<v1::StatusEvent> events;
  // merchant_transaction_ids whose stored record changed without a status event (a change notice;
  // see core::NeedsChangeNotice): what a replica's record cache must forget. Never sent to
  // subscribers.
  std::vector<std::string> changed_ids;
  // The id of the last entry read, event or notice ("" when nothing was read): where to read on.
  std::string last_cursor;
};

// Store::TakeStatusQuery's answer: whether a query was granted, and how many the window holds now
// (granted ones, this one included), so the quota left can be watched.
struct QueryTake {
  bool granted = false;
  int in_window = 0;
};

// The longest window Store::ReserveSpend takes: it keeps a bucket per minute, and every reservation
// reads and sums all of them (1,441 at this length).
inline constexpr absl::Duration kMaxSpendWindow = absl::Hours(24);

// Where flikpay keeps every transaction and its stream of status events. Implementations are shared
// by every replica, so each operation is atomic on its own. Errors: UNAVAILABLE when the backing
// store cannot be reached (callers answer UNAVAILABLE / HTTP 503), NOT_FOUND for an unknown id.
class Store {
 public:
  virtual ~Store() = default;

  // Claims `initial.merchant_transaction_id` for a debit or payout, unless it is taken.
  // `fingerprint` identifies the request parameters; the claim's gateway call ends by
  // `flight_deadline`, and the reconciler looks at the id at `first_check` unless a report
  // reschedules it first. A store that waits for replicas waits for them also when the id is taken
  // (and no longer in flight), since the stored record then answers the caller: UNAVAILABLE when
  // too few acknowledge. The same for BeginRefund.
  virtual absl::StatusOr<BeginResult> Begin(const v1::Transaction& initial,
                                            absl::string_view fingerprint,
                                            absl::Time flight_deadline, absl::Time first_check) = 0;

  // Claims the id for a refund and, in the same atomic step, reserves its amount on the original
  // debit. FAILED_PRECONDITION when the original is not a successful debit or less than the amount
  // is left of it (successful and pending refunds count); NOT_FOUND without original.
  virtual absl::StatusOr<BeginResult> BeginRefund(const v1::Transaction& refund,
                                                  absl::string_view fingerprint,
                                                  absl::Time flight_deadline,
                                                  absl::Time first_check, RefundCap cap) = 0;

  // Forgets a claimed id whose request certainly never reached the gateway (and gives a refund's
  // reservation back), so the caller may retry with the same id.
  virtual absl::Status Abandon(absl::string_view merchant_transaction_id) = 0;

  virtual absl::StatusOr<v1::Transaction> Get(absl::string_view merchant_transaction_id) = 0;
  // Every id's transaction in one call (for StreamStatus' send_current, up to 1,000 ids): the same
  // order as `ids`, nullopt for an id that is not stored.
  virtual absl::StatusOr<std::vector<std::optional<v1::Transaction>>> GetMany(
      const std::vector<std::string>& ids) = 0;
  // The merchant_transaction_id for a gateway uuid.
  virtual absl::StatusOr<std::string> FindByGatewayUuid(absl::string_view uuid) = 0;

  // Runs a report through core::PlanReport and stores what it plans in one atomic compare-and-set,
  // emitting one event per real status change.
  virtual absl::StatusOr<ApplyResult> Apply(absl::string_view merchant_transaction_id,
                                            const Report& report) = 0;
  // Apply for a verified callback (see CallbackApply): the callback's check of the stored record
  // and the mark that it is handled, in the same atomic step as what the report stores. With a
  // mark, a delivery of the same bytes sees "handling" (kHandling) until the outcome is stored and
  // "handled" with it, never one without the other; when the report stores nothing (a repeat), the
  // mark is written on its own. OK: the mark is written (the report refused, if the check said so).
  // NOT_FOUND, or the check's error: nothing is. Another error may have written both (e.g.
  // UNAVAILABLE for want of replicas after the write): the caller forgets the sighting then, as
  // after any failure to handle the callback.
  virtual absl::StatusOr<ApplyResult> ApplyCallback(absl::string_view merchant_transaction_id,
                                                    const Report& report,
                                                    const CallbackApply& callback) = 0;

  // Keeps a verified callback for a transaction flikpay does not know, for inspection.
  virtual absl::Status RecordUnmatchedCallback(absl::string_view body) = 0;

  // Replay protection for verified callbacks, shared by every replica. SightCallback claims
  // `signature` for `handling_lease` (kFirst: handle it now), or tells that another delivery of the
  // same bytes holds it (kHandling: not yet durable, so not to be acknowledged) or was handled
  // (kHandled). What the handler then does: MarkCallbackHandled keeps the signature for `ttl`;
  // ForgetSighting, after a failure, lets Bankart's retry of the same bytes be handled. A claim
  // whose handler died expires with its lease. A kHandled repeat is acknowledged as handled, so a
  // store that waits for replicas (RedisStore's min_replica_acks) makes sure first that what the
  // store holds has reached them: UNAVAILABLE when it cannot.
  virtual absl::StatusOr<Sighting> SightCallback(absl::string_view signature,
                                                 absl::Duration handling_lease) = 0;
  virtual absl::Status MarkCallbackHandled(absl::string_view signature, absl::Duration ttl) = 0;
  virtual absl::Status ForgetSighting(absl::string_view signature) = 0;

  // Events strictly after `after_cursor` ("" = from the oldest retained), oldest first: up to
  // `max_count` of them, fewer only when the stream holds no more (change notices between them are
  // skipped, not counted).
  virtual absl::StatusOr<std::vector<v1::StatusEvent>> ReadEvents(absl::string_view after_cursor,
                                                                  int max_count) = 0;
  // Like ReadEvents, but waits up to `wait` for the first one.
  virtual absl::StatusOr<std::vector<v1::StatusEvent>> WaitForEvents(absl::string_view after_cursor,
                                                                     int max_count,
                                                                     absl::Duration wait) = 0;
  // Up to `max_count` entries after `after_cursor` (waiting up to `wait` for the first), events and
  // change notices alike: what the event hub follows. A store that writes no notices: its events.
  virtual absl::StatusOr<StreamRead> WaitForChanges(absl::string_view after_cursor, int max_count,
                                                    absl::Duration wait) {
    absl::StatusOr<std::vector<v1::StatusEvent>> events =
        WaitForEvents(after_cursor, max_count, wait);
    if (!events.ok()) return events.status();
    StreamRead read;
    if (!events->empty()) read.last_cursor = events->back().cursor();
    read.events = *std::move(events);
    return read;
  }
  // Grows whenever the store may since be another server than before (a Redis failover: the
  // primary changed, or was found lost), so a reader that holds a position in the event stream
  // checks it (CanResumeFrom) before reading on after it. When it reads the same before and after a
  // call, that call was served by the server of that generation. A store that never moves: 0.
  virtual uint64_t PrimaryGeneration() { return 0; }
  // The newest event's cursor ("0-0" when there is none): where "from now on" starts.
  virtual absl::StatusOr<std::string> LatestCursor() = 0;

  virtual absl::Status Ping() = 0;
  // Whether resuming after `cursor` delivers every later event: only when the cursor's own event
  // is still kept (or it is the start, "0-0", of a stream never trimmed). False when the stream has
  // been trimmed past it, or when the event never was on the current Redis primary (lost in a
  // failover): resuming there could silently skip events.
  virtual absl::StatusOr<bool> CanResumeFrom(absl::string_view cursor) = 0;

  // Reconciliation. Every transaction that is not final is on a watch list with the time it should
  // next be checked (kept up to date by Begin and Apply).
  virtual absl::StatusOr<std::vector<std::string>> DueForCheck(absl::Time now, int max_count) = 0;
  virtual absl::Status ScheduleCheck(absl::string_view merchant_transaction_id,
                                     absl::Time when) = 0;
  // One replica at a time works on a transaction: true when this `owner` got the lease, which it
  // gets only while the transaction is still due (another replica may have checked and
  // rescheduled it since the list was read). DueForCheck lists unknown outcomes first.
  virtual absl::StatusOr<bool> TryLease(absl::string_view merchant_transaction_id,
                                        absl::string_view owner, absl::Duration ttl) = 0;
  // Gives the lease back, if `owner` still holds it.
  virtual absl::Status ReleaseLease(absl::string_view merchant_transaction_id,
                                    absl::string_view owner) = 0;
  // Takes one status query from the quota shared by all replicas: granted (true) while fewer than
  // `limit` were granted in the last `window` (Bankart allows 60 per 60 s per API user). A class
  // of lower priority passes a lower limit (core/status_quota.h).
  virtual absl::StatusOr<QueryTake> TakeStatusQuery(int limit, absl::Duration window) = 0;
  // How many status queries were granted in the last `window` (taking none), for the metrics.
  virtual absl::StatusOr<int> StatusQueriesInWindow(absl::Duration window) = 0;

  // Per-caller rolling spend limits, shared by every replica. Amounts are in cents counted in
  // minute buckets on the store's clock; a bucket counts while any part of its minute lies within
  // the last `window`, so a spend is never counted short (it may count up to a minute longer).
  //
  // Adds `amount_minor` to what `caller` spent on `rpc` in the last `window`, atomically, unless
  // that would pass `limit_minor`: then nothing is added (granted false). A sum beyond INT64_MAX
  // passes every limit, so it is refused, never wrapped. A granted reservation waits for replicas
  // like a claim (UNAVAILABLE when too few acknowledge; it then stays counted, the safe side).
  // INVALID_ARGUMENT for an amount of zero or
  // less, a negative limit, or a window of zero or less or longer than kMaxSpendWindow.
  virtual absl::StatusOr<SpendResult> ReserveSpend(absl::string_view caller, absl::string_view rpc,
                                                   int64_t amount_minor, int64_t limit_minor,
                                                   absl::Duration window) = 0;
  // Gives back a reservation made at `reserved_at` (SpendResult::reserved_at; a request refused by
  // the gateway, never sent, or failed): subtracts it from that minute's bucket if the bucket is
  // still kept; never below 0.
  virtual absl::Status ReleaseSpend(absl::string_view caller, absl::string_view rpc,
                                    int64_t amount_minor, absl::Time reserved_at,
                                    absl::Duration window) = 0;

  struct Backlog {
    int64_t due = 0;                               // transactions whose check time has passed
    absl::Duration oldest = absl::ZeroDuration();  // how long the oldest of them has waited
  };
  virtual absl::StatusOr<Backlog> CheckBacklog(absl::Time now) = 0;
};

}  // namespace flikpay::store

#endif  // FLIKPAY_STORE_STORE_H_
