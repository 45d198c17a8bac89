// What Bankart's API answers mean, read from the HTTP status and body alone: no I/O, so each
// answer shape (and every field of the wrong type) is tested directly, and the parsers can be
// fuzzed.
#ifndef FLIKPAY_GATEWAY_BANKART_ANSWERS_H_
#define FLIKPAY_GATEWAY_BANKART_ANSWERS_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "gateway/gateway.h"

namespace flikpay::gateway {

// A send that may have reached the gateway; `reason` says why nobody knows.
SubmitOutcome UnknownOutcome(std::string reason, int http_status = 0);

// The answer to a debit, refund or payout. A 5xx, a body that is not a JSON object, a field of the
// wrong type or a success without returnType is kUnknown: the transaction may exist, and only the
// status API can tell.
SubmitOutcome ParseSubmitAnswer(int http_status, absl::string_view body);

// The answer (HTTP 2xx-4xx) to a status query. found == false for error 8001 (no such
// transaction); FAILED_PRECONDITION for another refusal; INTERNAL for a body that is not a JSON
// object, has a field of the wrong type or names no known status.
absl::StatusOr<StatusReport> ParseStatusAnswer(absl::string_view body);

}  // namespace flikpay::gateway

#endif  // FLIKPAY_GATEWAY_BANKART_ANSWERS_H_
