#include "server/audit.h"

#include "absl/status/status.h"

namespace flikpay::server {
namespace {

LogFields Fields(const AuditEntry& entry, bool audit) {
  LogFields fields;
  fields["request_id"] = entry.request_id;
  fields["audit"] = audit;
  fields["caller"] = entry.caller;
  fields["peer"] = entry.peer;
  fields["rpc"] = entry.rpc;
  fields["merchant_transaction_id"] = entry.merchant_transaction_id;
  fields["amount_minor"] = entry.amount_minor;
  fields["alias"] = entry.alias;
  fields["outcome"] = absl::StatusCodeToString(entry.outcome.code());
  fields["message"] = std::string(entry.outcome.message());
  fields["status"] = entry.transaction_status;
  fields["latency_us"] = absl::ToInt64Microseconds(entry.latency);
  return fields;
}

}  // namespace

std::string AuditLine(const AuditEntry& entry, bool audit, absl::Time at) {
  return LogLine(LogLevel::kInfo, "rpc", Fields(entry, audit), at);
}

namespace {

// flikpay's or a dependency's failure, not the caller's mistake: worth an operator's look.
LogLevel LevelOf(const absl::Status& outcome) {
  return IsServerFault(outcome) ? LogLevel::kWarning : LogLevel::kInfo;
}

}  // namespace

void LogRpc(const AuditEntry& entry, bool audit) {
  if (!RpcLineWritten(entry.outcome, audit)) return;
  WriteLog(LevelOf(entry.outcome), "rpc", Fields(entry, audit), /*always=*/audit);
}

bool RpcLineWritten(const absl::Status& outcome, bool audit) {
  return audit || LogEnabled(LevelOf(outcome));
}

bool IsServerFault(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kInternal:
    case absl::StatusCode::kUnknown:
    case absl::StatusCode::kDataLoss:
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
      return true;
    default:
      return false;
  }
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
