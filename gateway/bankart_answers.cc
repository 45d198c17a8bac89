#include "gateway/bankart_answers.h"

#include <optional>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gateway/callback_parser.h"
#include "gateway/json_reader.h"
#include "gateway/money.h"

namespace flikpay::gateway {
namespace {

using Json = nlohmann::json;

std::optional<ReturnType> ParseReturnType(absl::string_view text) {
  const std::string upper = absl::AsciiStrToUpper(text);
  if (upper == "FINISHED") return ReturnType::kFinished;
  if (upper == "REDIRECT") return ReturnType::kRedirect;
  if (upper == "HTML") return ReturnType::kHtml;
  if (upper == "PENDING") return ReturnType::kPending;
  if (upper == "ERROR") return ReturnType::kError;
  return std::nullopt;
}

std::optional<StatusReport::Status> ParseTransactionStatus(absl::string_view text) {
  const std::string upper = absl::AsciiStrToUpper(text);
  if (upper == "SUCCESS") return StatusReport::Status::kSuccess;
  if (upper == "PENDING") return StatusReport::Status::kPending;
  if (upper == "REDIRECT") return StatusReport::Status::kRedirect;
  if (upper == "CANCELLED") return StatusReport::Status::kCancelled;
  if (upper == "ERROR") return StatusReport::Status::kError;
  return std::nullopt;
}

// Codes after which the same request may succeed later: rate limit, maintenance, temporarily
// unavailable.
bool IsRetryableCode(int code) { return code == 1009 || code == 1010 || code == 3003; }

std::optional<absl::Time> ParseExpires(absl::string_view text) {
  absl::Time time;
  std::string error;
  if (text.empty() || !absl::ParseTime("%Y-%m-%d %H:%M:%S", std::string(text), absl::UTCTimeZone(),
                                       &time, &error)) {
    return std::nullopt;
  }
  return time;
}

}  // namespace

SubmitOutcome UnknownOutcome(std::string reason, int http_status) {
  SubmitOutcome outcome;
  outcome.kind = SubmitOutcome::Kind::kUnknown;
  outcome.unknown_reason = std::move(reason);
  outcome.http_status = http_status;
  return outcome;
}

SubmitOutcome ParseSubmitAnswer(int http_status, absl::string_view body) {
  // 5xx includes 504 and Cloudflare's 522: the gateway may have created the transaction.
  if (http_status >= 500) {
    return UnknownOutcome(absl::StrCat("gateway answered HTTP ", http_status), http_status);
  }
  const Json answer = Json::parse(body, nullptr, /*allow_exceptions=*/false);
  SubmitOutcome outcome;
  outcome.http_status = http_status;
  if (answer.is_discarded() || !answer.is_object()) {
    if (http_status < 300) return UnknownOutcome("the gateway's answer is not JSON", http_status);
    outcome.kind = SubmitOutcome::Kind::kDeclined;
    outcome.errors.push_back(
        GatewayError{1001, absl::StrCat("gateway answered HTTP ", http_status), "", ""});
    outcome.retryable = http_status == 429;
    return outcome;
  }
  JsonReader fields(answer);
  outcome.uuid = fields.Text("uuid");
  outcome.purchase_id = fields.Text("purchaseId");
  outcome.redirect_url = fields.Text("redirectUrl");
  JsonReader extra = fields.Object("extraData");
  outcome.adapter_reference_id = extra.Text("adapterReferenceId");
  outcome.expires_at = ParseExpires(extra.Text("expiresDateTime"));
  const bool success = fields.Flag("success");
  const std::string return_type_text = fields.Text("returnType");
  std::vector<GatewayError> errors = ParseGatewayErrors(fields);
  if (absl::Status malformed = fields.status(); !malformed.ok()) {
    return UnknownOutcome(absl::StrCat("the gateway's answer is malformed: ", malformed.message()),
                          http_status);
  }
  const std::optional<ReturnType> return_type = ParseReturnType(return_type_text);
  if (http_status < 300 && success && return_type.has_value() &&
      *return_type != ReturnType::kError) {
    outcome.kind = SubmitOutcome::Kind::kAccepted;
    outcome.return_type = *return_type;
    return outcome;
  }
  if (http_status < 300 && success && !return_type.has_value()) {
    return UnknownOutcome("the gateway's answer has no returnType", http_status);
  }
  outcome.kind = SubmitOutcome::Kind::kDeclined;
  outcome.return_type = ReturnType::kError;
  outcome.errors = std::move(errors);
  if (outcome.errors.empty()) {
    outcome.errors.push_back(GatewayError{
        1000, absl::StrCat("gateway refused the request (HTTP ", http_status, ")"), "", ""});
  }
  outcome.retryable = http_status == 429;
  for (const GatewayError& error : outcome.errors) {
    outcome.retryable |= IsRetryableCode(error.code);
  }
  return outcome;
}

absl::StatusOr<StatusReport> ParseStatusAnswer(absl::string_view body) {
  const Json answer = Json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (answer.is_discarded() || !answer.is_object()) {
    return absl::InternalError("the gateway's status answer is not JSON");
  }
  JsonReader fields(answer);
  StatusReport report;
  report.errors = ParseGatewayErrors(fields);
  const bool success = fields.Flag("success");
  const std::string status_text = fields.Text("transactionStatus");
  report.uuid = fields.Text("uuid");
  report.merchant_transaction_id = fields.Text("merchantTransactionId");
  report.purchase_id = fields.Text("purchaseId");
  report.type = ParseTransactionType(fields.Text("transactionType"));
  report.currency = fields.Text("currency");
  report.reference_uuid = fields.Text("referenceUuid");
  report.adapter_reference_id = fields.Object("extraData").Text("adapterReferenceId");
  const std::string amount = fields.Text("amount");
  if (absl::Status malformed = fields.status(); !malformed.ok()) {
    return absl::InternalError(
        absl::StrCat("the gateway's status answer is malformed: ", malformed.message()));
  }
  if (!success) {
    for (const GatewayError& error : report.errors) {
      if (error.code == 8001) {
        StatusReport not_found;
        not_found.errors = std::move(report.errors);
        return not_found;
      }
    }
    return absl::FailedPreconditionError(
        absl::StrCat("gateway refused the status query",
                     report.errors.empty() ? "" : absl::StrCat(" (", report.errors[0].code, ")")));
  }
  const std::optional<StatusReport::Status> status = ParseTransactionStatus(status_text);
  if (!status.has_value()) {
    return absl::InternalError("the gateway's status answer has no known status");
  }
  report.found = true;
  report.status = *status;
  if (!amount.empty()) {
    absl::StatusOr<int64_t> minor = ParseAmount(amount);
    if (!minor.ok()) return absl::InternalError(minor.status().message());
    report.amount_minor = *minor;
  }
  return report;
}

}  // namespace flikpay::gateway
