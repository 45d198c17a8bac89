// The rules for fields that exist only in flikpay's own API (enums, lookups, stream filters). The
// fields a request shares with the gateway are checked by gateway::NormalizeRequest, built from
// request_rules.h; both answer INVALID_ARGUMENT "<field>: <rule>".
#ifndef FLIKPAY_CORE_API_RULES_H_
#define FLIKPAY_CORE_API_RULES_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "flikpay/v1/payment_service.pb.h"

namespace flikpay::rules {

absl::Status Kind(v1::RtpKind kind);

// Which transaction a GetStatus names, and how: the merchant transaction id, or the gateway uuid.
struct StatusLookup {
  bool by_gateway_uuid = false;
  std::string id;
};
absl::StatusOr<StatusLookup> Lookup(const v1::GetStatusRequest& request);

// Known transaction types only, a resume_after that is a cursor this service handed out, and at
// most `max_ids` ids (a stream watching more costs every event a lookup among them all).
absl::Status StreamFilter(const v1::StreamStatusRequest& request, int max_ids);

}  // namespace flikpay::rules

#endif  // FLIKPAY_CORE_API_RULES_H_
