#include "server/audit.h"

#include <cstdio>

#include "absl/status/status.h"
#include "nlohmann/json.hpp"

namespace flikpay::server {

std::string AuditLine(const AuditEntry& entry, absl::Time at) {
  nlohmann::ordered_json line;
  line["audit"] = true;
  line["at"] = absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", at, absl::UTCTimeZone());
  line["caller"] = entry.caller;
  line["peer"] = entry.peer;
  line["rpc"] = entry.rpc;
  line["merchant_transaction_id"] = entry.merchant_transaction_id;
  line["amount_minor"] = entry.amount_minor;
  line["alias"] = entry.alias;
  line["outcome"] = absl::StatusCodeToString(entry.outcome.code());
  line["message"] = std::string(entry.outcome.message());
  line["status"] = entry.transaction_status;
  line["latency_us"] = absl::ToInt64Microseconds(entry.latency);
  // Invalid UTF-8 from a caller's id is replaced, never allowed to break the line.
  return line.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

void Audit(const AuditEntry& entry) {
  const std::string line = AuditLine(entry, absl::Now()) + "\n";
  std::fputs(line.c_str(), stderr);
}

bool IsRefusal(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kUnauthenticated:
    case absl::StatusCode::kPermissionDenied:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kResourceExhausted:
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kAlreadyExists:
      return true;
    default:
      return false;
  }
}

}  // namespace flikpay::server
