#ifndef FLIKPAY_GATEWAY_GATEWAY_H_
#define FLIKPAY_GATEWAY_GATEWAY_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace flikpay::gateway {

// The three request-to-pay kinds of Flik P2eM (seed 000). Each has its own validity.
enum class RtpKind { kEcommerce, kInPerson, kOutOfBand };

// Bankart sets up one connector (API key + shared secret) per point of sale; flikpay uses one for
// each RTP kind and one for payouts. A refund goes to the connector of its original payment.
enum class Connector { kEcommerce, kInPerson, kOutOfBand, kPayout };

inline constexpr Connector kAllConnectors[] = {Connector::kEcommerce, Connector::kInPerson,
                                               Connector::kOutOfBand, Connector::kPayout};

Connector ConnectorFor(RtpKind kind);
// "ecommerce", "in_person", "out_of_band", "payout": used in callback URLs and configuration.
absl::string_view ConnectorName(Connector connector);
std::optional<Connector> ParseConnectorName(absl::string_view name);
// How long the payer has to confirm: 5 min, 90 s, 72 h.
absl::Duration RtpValidity(RtpKind kind);

enum class TransactionType { kDebit, kRefund, kPayout, kOther };
absl::string_view TransactionTypeName(TransactionType type);   // "DEBIT", ...
TransactionType ParseTransactionType(absl::string_view name);  // case-insensitive

// One entry of the gateway's error list; `code` is Bankart's numeric code (2007 = alias does not
// exist), the adapter fields are what the bank behind it said.
struct GatewayError {
  int code = 0;
  std::string message;
  std::string adapter_code;
  std::string adapter_message;
  bool operator==(const GatewayError&) const = default;
};

// A Flik request-to-pay (a DEBIT at the gateway).
struct DebitRequest {
  RtpKind kind = RtpKind::kEcommerce;
  std::string merchant_transaction_id;  // unique, at most 50 characters
  int64_t amount_minor = 0;             // euro cents, > 0
  std::string currency = "EUR";
  // Empty = let Bankart ask the payer (redirect flow, E-commerce only). Normalised if set.
  std::string alias;
  std::string description;  // shown to the payer and on the statement; at most 255
  std::string success_url;
  std::string error_url;
  std::string cancel_url;
  std::string callback_url;
  // Structured reference: the description is the reference; the purpose code (4 letters) is
  // optional and defaults to OTHR at the bank.
  bool structured_reference = false;
  std::string purpose_code;
  // Sent as enableWaitingScreen yes/no when set; unset leaves Bankart's default (redirect for
  // E-commerce only).
  std::optional<bool> enable_waiting_screen;
  std::string merchant_mid;
  std::string merchant_terminal_id;
  std::string ultimate_creditor_name;
  std::string payer_ip;
  std::string merchant_metadata;  // at most 255
  std::string request_id;         // the flikpay call's, sent as X-Request-ID (not signed)
};

struct RefundRequest {
  Connector connector = Connector::kEcommerce;  // the original payment's connector
  std::string merchant_transaction_id;
  std::string reference_uuid;  // the original debit's gateway uuid
  int64_t amount_minor = 0;
  std::string currency = "EUR";
  std::string callback_url;
  std::string description;
  std::string request_id;  // the flikpay call's, sent as X-Request-ID (not signed)
};

struct PayoutRequest {
  std::string merchant_transaction_id;
  std::string alias;
  int64_t amount_minor = 0;
  std::string currency = "EUR";
  std::string callback_url;
  std::string description;
  std::string request_id;  // the flikpay call's, sent as X-Request-ID (not signed)
};

// Whether Bankart sends the payer's browser to its pages: E-commerce without an alias (to type it),
// or with the waiting screen not switched off (seed 000: the default for E-commerce only).
bool Redirects(const DebitRequest& request);

// Every rule a request must meet (core/request_rules), applied in one place: the service runs it
// before it claims the id, the adapter again before anything leaves the process, and both answer a
// bad field with the same INVALID_ARGUMENT "<field>: <rule>". On success the alias is in its
// normal form (00386..., or the e-mail address) and the currency is "EUR".
absl::Status NormalizeRequest(DebitRequest& request);
absl::Status NormalizeRequest(RefundRequest& request);
absl::Status NormalizeRequest(PayoutRequest& request);

enum class ReturnType { kFinished, kRedirect, kHtml, kPending, kError };

// What sending a money-moving request achieved. The distinction that matters:
//  - kAccepted: the gateway has the transaction (final result follows by callback unless
//    return_type is kFinished).
//  - kDeclined: the gateway answered and refused it; nothing will happen.
//  - kUnknown: the request may have reached the gateway (timeout, reset, 5xx, an unreadable
//    answer). The transaction may exist. Never send it again; ask the status API.
// A non-OK absl::Status from a send means the request certainly did not leave flikpay
// (INVALID_ARGUMENT for bad input, UNAVAILABLE when no connection could be made).
struct SubmitOutcome {
  enum class Kind { kAccepted, kDeclined, kUnknown };
  Kind kind = Kind::kUnknown;
  ReturnType return_type = ReturnType::kError;
  std::string uuid;
  std::string purchase_id;
  std::string redirect_url;
  std::string adapter_reference_id;
  std::optional<absl::Time> expires_at;
  std::vector<GatewayError> errors;
  int http_status = 0;
  // Declined only: trying again later may succeed (rate limit, maintenance).
  bool retryable = false;
  // Unknown only: why, for logs (never carries secrets or payer data).
  std::string unknown_reason;
};

// What Bankart's status API says of a transaction.
struct StatusReport {
  enum class Status { kSuccess, kPending, kRedirect, kCancelled, kError };
  bool found = false;  // false: 8001, the gateway has no such transaction
  Status status = Status::kPending;
  std::string uuid;
  std::string merchant_transaction_id;
  std::string purchase_id;
  TransactionType type = TransactionType::kOther;
  int64_t amount_minor = 0;
  std::string currency;
  std::string reference_uuid;
  std::string adapter_reference_id;
  std::vector<GatewayError> errors;
};

// Card data some callbacks carry (seed 003 lists what a status page must show).
struct CardData {
  std::string brand;  // binBrand or type, e.g. "VISA"
  std::string first_six_digits;
  std::string last_four_digits;
  std::string card_holder;
  std::string expiry_month;
  std::string expiry_year;
  std::string auth_code;  // the bank's 6-character authorisation code
};

// One callback from the gateway, whatever its wire format (JSON v3 or XML v2).
struct CallbackEvent {
  enum class Result { kOk, kPending, kError };
  Result result = Result::kError;
  std::string uuid;
  std::string merchant_transaction_id;
  std::string purchase_id;
  TransactionType type = TransactionType::kOther;
  std::string raw_type;  // as sent, e.g. "CHARGEBACK"
  std::string payment_method;
  std::optional<int64_t> amount_minor;
  std::string currency;
  std::string reference_uuid;
  std::vector<GatewayError> errors;
  std::string adapter_reference_id;
  std::string merchant_metadata;
  std::optional<CardData> card;
  // The connector whose shared secret verified the signature.
  std::optional<Connector> connector;
};

// An HTTP request as it arrived at flikpay's callback listener.
struct InboundCallback {
  std::string method;
  std::string request_uri;  // path plus "?query", exactly as on the request line
  std::string body;         // the exact bytes received
  // Header names in lower case.
  std::map<std::string, std::string> headers;
};

// Everything flikpay asks of the payment gateway. Each call blocks its calling thread until the
// gateway answers or `deadline` passes; callers run it off their event loops.
class Gateway {
 public:
  virtual ~Gateway() = default;

  virtual absl::StatusOr<SubmitOutcome> Debit(const DebitRequest& request, absl::Time deadline) = 0;
  virtual absl::StatusOr<SubmitOutcome> Refund(const RefundRequest& request,
                                               absl::Time deadline) = 0;
  virtual absl::StatusOr<SubmitOutcome> Payout(const PayoutRequest& request,
                                               absl::Time deadline) = 0;

  // Status queries are safe to repeat, so these retry transient failures (with backoff, and
  // honouring 429) until `deadline`. Not found is an OK answer with found == false.
  virtual absl::StatusOr<StatusReport> StatusByUuid(Connector connector, absl::string_view uuid,
                                                    absl::Time deadline) = 0;
  virtual absl::StatusOr<StatusReport> StatusByMerchantTransactionId(
      Connector connector, absl::string_view merchant_transaction_id, absl::Time deadline) = 0;

  // Checks the signature and Date of a callback and parses it. UNAUTHENTICATED for a missing, wrong
  // or stale signature (answer 401), INVALID_ARGUMENT for a body that is not a callback (answer
  // 400).
  virtual absl::StatusOr<CallbackEvent> VerifyCallback(const InboundCallback& callback) = 0;
};

// Why VerifyCallback refused a callback. Operators tell a forger (bad signature) from a clock or a
// delayed retry (stale Date), so the UNAUTHENTICATED status of a stale callback is marked as such.
enum class CallbackRefusal { kMalformed, kBadSignature, kStale };
absl::Status StaleCallbackError(absl::string_view message);
CallbackRefusal RefusalOf(const absl::Status& status);

}  // namespace flikpay::gateway

#endif  // FLIKPAY_GATEWAY_GATEWAY_H_
