// Bankart allows a fixed number of status queries per API user in a sliding window (60 in 60 s),
// shared by every replica. Results normally arrive by callback, so polling is the fallback, and the
// quota is spent by priority: a lower class may use only part of the window, so the higher ones
// always find room however many of the lower are due.
#ifndef FLIKPAY_CORE_STATUS_QUOTA_H_
#define FLIKPAY_CORE_STATUS_QUOTA_H_

#include "absl/time/time.h"
#include "core/transition.h"
#include "flikpay/v1/payment_service.pb.h"

namespace flikpay::core {

enum class QueryPriority {
  kUnknownOutcome,  // flikpay does not know whether money moved: settle it first
  kCallerRefresh,   // a caller asked (GetStatus refresh), or a callback needs a lookup
  kExpired,         // PENDING past its validity: Bankart's expiry callback may have been lost
  kSilentPending,   // PENDING and still valid, no news for a while: a lost callback, maybe
};

// The class of the reconciler's next query about `transaction`.
QueryPriority PriorityOf(const v1::Transaction& transaction, const SchedulePolicy& policy,
                         absl::Time now);

// How many of the window's `limit` queries the class may take: all for unknown outcomes, 90 % for
// refreshes, 70 % for expired and 50 % for silent PENDING (at least one each).
int QuotaCeiling(QueryPriority priority, int limit);

absl::string_view QueryPriorityName(QueryPriority priority);

}  // namespace flikpay::core

#endif  // FLIKPAY_CORE_STATUS_QUOTA_H_
