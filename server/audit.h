// The audit trail: one JSON line per money RPC and per refusal, on stderr next to the log, so the
// log pipeline keeps it with everything else. Never carries a full alias, token or certificate.
#ifndef FLIKPAY_SERVER_AUDIT_H_
#define FLIKPAY_SERVER_AUDIT_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace flikpay::server {

struct AuditEntry {
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

// {"audit":true,"at":"...","caller":"...","peer":"ipv4:...","rpc":"Payout","merchant_transaction_id":"...",
//  "amount_minor":100,"alias":"00386*****000","outcome":"PERMISSION_DENIED","message":"...",
//  "status":"","latency_us":1234}
std::string AuditLine(const AuditEntry& entry, absl::Time at);

// Writes the line whatever the log level: an audit trail is not a debug aid.
void Audit(const AuditEntry& entry);

// Whether an outcome is a refusal the audit trail keeps even for RPCs that move no money.
bool IsRefusal(const absl::Status& status);

}  // namespace flikpay::server

#endif  // FLIKPAY_SERVER_AUDIT_H_
