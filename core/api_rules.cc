#include "core/api_rules.h"

#include <set>
#include <string>

#include "absl/strings/str_cat.h"
#include "core/cursor.h"
#include "core/request_rules.h"

namespace flikpay::rules {

absl::Status Kind(v1::RtpKind kind) {
  if (kind == v1::RTP_KIND_UNSPECIFIED || !v1::RtpKind_IsValid(kind)) {
    return Invalid("kind",
                   "must be RTP_KIND_ECOMMERCE, RTP_KIND_IN_PERSON or RTP_KIND_OUT_OF_BAND");
  }
  return absl::OkStatus();
}

absl::StatusOr<StatusLookup> Lookup(const v1::GetStatusRequest& request) {
  switch (request.id_case()) {
    case v1::GetStatusRequest::kMerchantTransactionId:
      if (absl::Status s =
              MerchantTransactionId("merchant_transaction_id", request.merchant_transaction_id());
          !s.ok()) {
        return s;
      }
      return StatusLookup{false, request.merchant_transaction_id()};
    case v1::GetStatusRequest::kGatewayUuid:
      if (absl::Status s = LookupId("gateway_uuid", request.gateway_uuid()); !s.ok()) return s;
      return StatusLookup{true, request.gateway_uuid()};
    default:
      return Invalid("id", "set merchant_transaction_id or gateway_uuid");
  }
}

absl::Status StreamFilter(const v1::StreamStatusRequest& request, int max_ids) {
  const std::set<std::string> distinct(request.merchant_transaction_ids().begin(),
                                       request.merchant_transaction_ids().end());
  if (static_cast<int>(distinct.size()) > max_ids) {
    return Invalid("merchant_transaction_ids",
                   absl::StrCat("at most ", max_ids, " distinct ids per stream, not ",
                                distinct.size(), "; open several streams, or filter by type"));
  }
  if (!request.resume_after().empty() && !core::ParseCursor(request.resume_after())) {
    return Invalid("resume_after", "not a cursor from a StatusEvent");
  }
  for (int type : request.types()) {
    if (type == v1::TRANSACTION_TYPE_UNSPECIFIED || !v1::TransactionType_IsValid(type)) {
      return Invalid("types", "use TRANSACTION_TYPE_DEBIT, _REFUND or _PAYOUT");
    }
  }
  for (const std::string& id : request.merchant_transaction_ids()) {
    if (absl::Status s = MerchantTransactionId("merchant_transaction_ids", id); !s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace flikpay::rules
