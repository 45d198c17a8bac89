// The access log and audit trail: one JSON line per RPC (server/log.h's format, "msg":"rpc").
// Lines of money RPCs and of refusals carry "audit":true and are written whatever the log level;
// the rest (reads that succeeded, streams) follow it. Never carries a full alias, token or
// certificate.
#ifndef FLIKPAY_SERVER_AUDIT_H_
#define FLIKPAY_SERVER_AUDIT_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "server/log.h"

namespace flikpay::server {

struct AuditEntry {
  std::string request_id;
  std::string caller;  // empty when the call was refused before anyone was identified
  std::string peer;    // the caller's address, e.g. "ipv4:10.0.3.7:51234", when known
  std::string rpc;
  std::string merchant_transaction_id;
  int64_t amount_minor = 0;
  std::string alias;  // masked (gateway::MaskAlias)
  absl::Status outcome;
  std::string transaction_status;  // when the call succeeded: the transaction's status
  absl::Duration latency;
};

// {"time":"...","level":"info","msg":"rpc","request_id":"...","audit":true,"caller":"...",
//  "peer":"ipv4:...","rpc":"Payout","merchant_transaction_id":"...","amount_minor":100,
//  "alias":"00386*****000","outcome":"PERMISSION_DENIED","message":"...","status":"",
//  "latency_us":1234}
std::string AuditLine(const AuditEntry& entry, bool audit, absl::Time at);

// Writes the entry's line: always when `audit`, else if its level is enabled (warning for a
// server fault, info otherwise).
void LogRpc(const AuditEntry& entry, bool audit);
// Whether LogRpc writes the line of a call that ended with `outcome`: what the rest of its entry
// (the peer, the transaction's status) need be worked out for.
bool RpcLineWritten(const absl::Status& outcome, bool audit);

// Whether an outcome is flikpay's or a dependency's failure (its line is a warning).
bool IsServerFault(const absl::Status& status);

// Whether an outcome is a refusal the audit trail keeps even for RPCs that move no money.
bool IsRefusal(const absl::Status& status);

}  // namespace flikpay::server

#endif  // FLIKPAY_SERVER_AUDIT_H_
