#include "core/status_quota.h"

#include <algorithm>

namespace flikpay::core {

QueryPriority PriorityOf(const v1::Transaction& transaction, const SchedulePolicy& policy,
                         absl::Time now) {
  if (transaction.status() != v1::TRANSACTION_STATUS_PENDING) return QueryPriority::kUnknownOutcome;
  if (transaction.has_expires_at() &&
      absl::FromUnixSeconds(transaction.expires_at().seconds()) + policy.expiry_grace <= now) {
    return QueryPriority::kExpired;
  }
  return QueryPriority::kSilentPending;
}

int QuotaCeiling(QueryPriority priority, int limit) {
  int percent = 100;
  switch (priority) {
    case QueryPriority::kUnknownOutcome:
      percent = 100;
      break;
    case QueryPriority::kCallerRefresh:
      percent = 90;
      break;
    case QueryPriority::kExpired:
      percent = 70;
      break;
    case QueryPriority::kSilentPending:
      percent = 50;
      break;
  }
  return std::max(1, limit * percent / 100);
}

absl::string_view QueryPriorityName(QueryPriority priority) {
  switch (priority) {
    case QueryPriority::kUnknownOutcome:
      return "unknown outcome";
    case QueryPriority::kCallerRefresh:
      return "caller refresh";
    case QueryPriority::kExpired:
      return "expired";
    case QueryPriority::kSilentPending:
      return "silent pending";
  }
  return "unknown";
}

}  // namespace flikpay::core
