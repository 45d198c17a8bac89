#include "core/transition.h"

#include <algorithm>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace flikpay::core {
namespace {

google::protobuf::Timestamp ToTimestamp(absl::Time time) {
  google::protobuf::Timestamp timestamp;
  const int64_t seconds = absl::ToUnixSeconds(time);
  timestamp.set_seconds(seconds);
  timestamp.set_nanos(
      static_cast<int32_t>((time - absl::FromUnixSeconds(seconds)) / absl::Nanoseconds(1)));
  return timestamp;
}

constexpr absl::string_view kDroppedNote = " earlier entries dropped";

// Keeps the history within kHistoryCap: the head stays, then one entry counting what was dropped,
// then the latest.
void CapHistory(v1::Transaction& record) {
  auto* history = record.mutable_history();
  if (history->size() <= kHistoryCap) return;
  v1::StatusChange* marker = history->Mutable(kHistoryHead);
  int64_t dropped = 0;
  absl::string_view note = marker->note();
  const bool is_marker =
      absl::ConsumeSuffix(&note, kDroppedNote) && absl::SimpleAtoi(note, &dropped);
  if (!is_marker) {
    // The entry at the head's end becomes the marker: it and the next are the first dropped.
    v1::StatusChange fresh;
    *fresh.mutable_at() = marker->at();
    fresh.set_note(absl::StrCat(1, kDroppedNote));
    *marker = fresh;
    return CapHistory(record);
  }
  history->DeleteSubrange(kHistoryHead + 1, 1);
  marker->set_note(absl::StrCat(dropped + 1, kDroppedNote));
}

void AddHistory(v1::Transaction& record, v1::TransactionStatus from, const Report& report,
                absl::Time now, absl::string_view note) {
  v1::StatusChange* change = record.add_history();
  *change->mutable_at() = ToTimestamp(now);
  change->set_from(from);
  change->set_to(report.status);
  change->set_source(report.source);
  if (!note.empty()) change->set_note(std::string(note));
  CapHistory(record);
}

absl::Time FromTimestamp(const google::protobuf::Timestamp& timestamp) {
  return absl::FromUnixSeconds(timestamp.seconds()) + absl::Nanoseconds(timestamp.nanos());
}

std::optional<absl::Time> NextCheck(const v1::Transaction& next, bool still_in_flight,
                                    absl::Time flight_deadline, const Report& report,
                                    absl::Time now) {
  if (IsFinal(next.status())) return std::nullopt;
  const SchedulePolicy& policy = report.schedule;
  absl::Time check;
  if (next.status() == v1::TRANSACTION_STATUS_PENDING) {
    absl::Duration wait = policy.pending_check_after;
    if (report.source == v1::EVENT_SOURCE_RECONCILER && next.has_updated_at()) {
      // Still PENDING after a check: wait as long as nothing has happened so far (doubling).
      wait = std::clamp(now - FromTimestamp(next.updated_at()), policy.pending_check_after,
                        std::max(policy.pending_check_after, policy.pending_check_max));
    }
    check = now + wait;
    // Bankart sends an expiry callback; if that is lost, look once a grace after the expiry.
    if (next.has_expires_at()) {
      const absl::Time after_expiry =
          absl::FromUnixSeconds(next.expires_at().seconds()) + policy.expiry_grace;
      if (after_expiry > now) check = std::min(check, after_expiry);
    }
  } else {
    // UNKNOWN: while its call may still answer, look only after it could have.
    check = (still_in_flight ? flight_deadline : now) + policy.unknown_check_after;
  }
  if (report.source == v1::EVENT_SOURCE_RECONCILER) {
    check = std::max(check, now + policy.recheck_after);
  }
  return check;
}

}  // namespace

Plan PlanReport(const Stored& current, const Report& report, absl::Time now) {
  const v1::Transaction& stored = current.record;
  Plan plan;
  plan.next = stored;
  if (!report.refused_because.empty()) {
    // Recorded, never applied: the report is not about this transaction as flikpay knows it.
    AddHistory(plan.next, stored.status(), report, now,
               absl::StrCat("refused: ", report.refused_because));
    plan.anomaly = true;
    plan.unchanged = false;
    plan.next.set_version(stored.version() + 1);
    *plan.next.mutable_updated_at() = ToTimestamp(now);
    plan.flight_deadline = current.flight_deadline;
    // Still open: it stays on the watch list (a stored record without a next check leaves it).
    plan.next_check =
        NextCheck(plan.next, current.flight_deadline > now, current.flight_deadline, report, now);
    return plan;
  }
  if (report.fill) report.fill(plan.next);
  plan.next.set_status(stored.status());
  plan.next.set_refunded_amount_minor(stored.refunded_amount_minor());
  plan.next.set_version(stored.version());
  *plan.next.mutable_history() = stored.history();

  const v1::TransactionStatus previous = stored.status();
  plan.verdict = Judge(previous, report.status);
  if (plan.verdict == Verdict::kApply) {
    plan.next.set_status(report.status);
    AddHistory(plan.next, previous, report, now, "");
    plan.status_changed = true;
  } else if (plan.verdict == Verdict::kAnomaly && report.source != v1::EVENT_SOURCE_RPC) {
    // flikpay's own late answer cannot contradict Bankart; anything else saying another final
    // status is worth a look.
    AddHistory(plan.next, previous, report, now, "contradicts the final status; ignored");
    plan.anomaly = true;
  }

  const bool in_flight = current.flight_deadline > now;
  const bool ends_flight = report.ends_flight && in_flight;
  const bool record_changed = plan.next.SerializeAsString() != stored.SerializeAsString();
  plan.flight_deadline = ends_flight ? absl::InfinitePast() : current.flight_deadline;
  if (!record_changed && !ends_flight) {
    plan.next = stored;
    if (report.source == v1::EVENT_SOURCE_RECONCILER) {
      plan.next_check = NextCheck(stored, in_flight, current.flight_deadline, report, now);
    }
    return plan;
  }
  plan.unchanged = false;
  if (record_changed) {
    plan.next.set_version(stored.version() + 1);
    *plan.next.mutable_updated_at() = ToTimestamp(now);
  }
  plan.next_check =
      NextCheck(plan.next, in_flight && !ends_flight, current.flight_deadline, report, now);
  if (!plan.next.gateway_uuid().empty() && plan.next.gateway_uuid() != stored.gateway_uuid()) {
    plan.new_gateway_uuid = plan.next.gateway_uuid();
  }
  if (plan.status_changed && plan.next.type() == v1::TRANSACTION_TYPE_REFUND &&
      IsFinal(plan.next.status())) {
    RefundDelta delta;
    delta.original_merchant_transaction_id = plan.next.original_merchant_transaction_id();
    if (plan.next.status() == v1::TRANSACTION_STATUS_SUCCESS) {
      delta.refunded = plan.next.amount_minor();
    } else {
      delta.reserved = -plan.next.amount_minor();
    }
    plan.refund_delta = std::move(delta);
  }
  if (plan.status_changed) {
    v1::StatusEvent event;
    *event.mutable_transaction() = plan.next;
    event.set_previous_status(previous);
    event.set_source(report.source);
    *event.mutable_occurred_at() = ToTimestamp(now);
    plan.event = std::move(event);
  }
  return plan;
}

bool NeedsChangeNotice(const Stored& current, const Plan& plan) {
  return !plan.unchanged && !plan.event.has_value() && IsFinal(current.record.status()) &&
         plan.next.version() != current.record.version();
}

absl::Status CheckRefundable(const v1::Transaction& original, int64_t reserved,
                             int64_t amount_minor) {
  if (original.type() != v1::TRANSACTION_TYPE_DEBIT ||
      original.status() != v1::TRANSACTION_STATUS_SUCCESS) {
    return absl::FailedPreconditionError(
        "original_merchant_transaction_id: only a successful debit can be refunded");
  }
  const int64_t left = original.amount_minor() - reserved;
  if (amount_minor > left) {
    return absl::FailedPreconditionError(absl::StrCat(
        "amount_minor: ", amount_minor, " exceeds what is left of the original payment (", left,
        " cents, counting pending refunds)"));
  }
  return absl::OkStatus();
}

}  // namespace flikpay::core
