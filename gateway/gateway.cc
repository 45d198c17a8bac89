#include "gateway/gateway.h"

#include <initializer_list>

#include "absl/strings/ascii.h"
#include "absl/strings/cord.h"
#include "core/request_rules.h"
#include "gateway/alias.h"

namespace flikpay::gateway {

Connector ConnectorFor(RtpKind kind) {
  switch (kind) {
    case RtpKind::kEcommerce:
      return Connector::kEcommerce;
    case RtpKind::kInPerson:
      return Connector::kInPerson;
    case RtpKind::kOutOfBand:
      return Connector::kOutOfBand;
  }
  return Connector::kEcommerce;
}

absl::string_view ConnectorName(Connector connector) {
  switch (connector) {
    case Connector::kEcommerce:
      return "ecommerce";
    case Connector::kInPerson:
      return "in_person";
    case Connector::kOutOfBand:
      return "out_of_band";
    case Connector::kPayout:
      return "payout";
  }
  return "unknown";
}

std::optional<Connector> ParseConnectorName(absl::string_view name) {
  const std::string lower = absl::AsciiStrToLower(name);
  for (Connector connector : kAllConnectors) {
    if (ConnectorName(connector) == lower) return connector;
  }
  return std::nullopt;
}

absl::Duration RtpValidity(RtpKind kind) {
  switch (kind) {
    case RtpKind::kEcommerce:
      return absl::Minutes(5);
    case RtpKind::kInPerson:
      return absl::Seconds(90);
    case RtpKind::kOutOfBand:
      return absl::Hours(72);
  }
  return absl::Minutes(5);
}

absl::string_view TransactionTypeName(TransactionType type) {
  switch (type) {
    case TransactionType::kDebit:
      return "DEBIT";
    case TransactionType::kRefund:
      return "REFUND";
    case TransactionType::kPayout:
      return "PAYOUT";
    case TransactionType::kOther:
      return "OTHER";
  }
  return "OTHER";
}

namespace {

absl::Status FirstError(std::initializer_list<absl::Status> checks) {
  for (const absl::Status& check : checks) {
    if (!check.ok()) return check;
  }
  return absl::OkStatus();
}

absl::Status NormalizeMoneyMovement(const std::string& merchant_transaction_id,
                                    int64_t amount_minor, std::string& currency,
                                    const std::string& description,
                                    const std::string& callback_url) {
  if (absl::Status s =
          rules::MoneyMovement(merchant_transaction_id, amount_minor, currency, description);
      !s.ok()) {
    return s;
  }
  if (callback_url.empty()) return rules::Invalid("callback_url", "is required");
  if (absl::Status s = rules::Url("callback_url", callback_url); !s.ok()) return s;
  currency = "EUR";
  return absl::OkStatus();
}

absl::Status NormalizeAliasField(std::string& alias) {
  absl::StatusOr<Alias> normalized = NormalizeAlias(alias);
  if (!normalized.ok()) return rules::Invalid("alias", normalized.status().message());
  alias = std::move(normalized->value);
  return absl::OkStatus();
}

}  // namespace

constexpr absl::string_view kRedirectFlow =
    "an E-commerce request that redirects the payer (no alias, or enable_waiting_screen not false)";

bool Redirects(const DebitRequest& request) {
  return request.kind == RtpKind::kEcommerce &&
         (request.alias.empty() || request.enable_waiting_screen.value_or(true));
}

absl::Status NormalizeRequest(DebitRequest& request) {
  if (absl::Status s =
          NormalizeMoneyMovement(request.merchant_transaction_id, request.amount_minor,
                                 request.currency, request.description, request.callback_url);
      !s.ok()) {
    return s;
  }
  if (absl::Status s =
          rules::AliasPresence(request.kind == RtpKind::kEcommerce, !request.alias.empty());
      !s.ok()) {
    return s;
  }
  if (!request.alias.empty()) {
    if (absl::Status s = NormalizeAliasField(request.alias); !s.ok()) return s;
  }
  return FirstError({
      rules::ShownText("merchant_metadata", request.merchant_metadata, rules::kMaxMerchantMetadata),
      rules::ShownText("merchant_terminal_id", request.merchant_terminal_id,
                       rules::kMaxMerchantTerminalId),
      rules::ShownText("merchant_mid", request.merchant_mid, rules::kMaxMerchantMid),
      rules::ShownText("ultimate_creditor_name", request.ultimate_creditor_name,
                       rules::kMaxUltimateCreditorName),
      rules::PurposeCode(request.purpose_code, request.structured_reference),
      rules::Url("success_url", request.success_url),
      rules::Url("cancel_url", request.cancel_url),
      rules::Url("error_url", request.error_url),
      rules::PayerIp(request.payer_ip),
      rules::RequiredFields({
          // Bankart sends the payer back to one of them when its pages are done (seed 000).
          {"success_url", request.success_url, Redirects(request), kRedirectFlow},
          {"cancel_url", request.cancel_url, Redirects(request), kRedirectFlow},
          {"error_url", request.error_url, Redirects(request), kRedirectFlow},
          // "V tem polju posredujte IP naslov uporabnika, ki je potrdil nakup" (seed 000): the
          // shopper's address, which only an online purchase has.
          {"payer_ip", request.payer_ip, request.kind == RtpKind::kEcommerce,
           "E-commerce (the IP address of the payer who confirmed the purchase)"},
          // The reference is taken from the description (seed 000); the seed gives no stricter
          // format (its own example is free text).
          {"description", request.description, request.structured_reference,
           "structured_reference (the description is the reference)"},
      }),
  });
}

absl::Status NormalizeRequest(RefundRequest& request) {
  return NormalizeMoneyMovement(request.merchant_transaction_id, request.amount_minor,
                                request.currency, request.description, request.callback_url);
}

absl::Status NormalizeRequest(PayoutRequest& request) {
  if (absl::Status s =
          NormalizeMoneyMovement(request.merchant_transaction_id, request.amount_minor,
                                 request.currency, request.description, request.callback_url);
      !s.ok()) {
    return s;
  }
  return NormalizeAliasField(request.alias);
}

TransactionType ParseTransactionType(absl::string_view name) {
  const std::string upper = absl::AsciiStrToUpper(name);
  if (upper == "DEBIT") return TransactionType::kDebit;
  if (upper == "REFUND") return TransactionType::kRefund;
  if (upper == "PAYOUT") return TransactionType::kPayout;
  return TransactionType::kOther;
}

namespace {
constexpr absl::string_view kRefusalPayload = "type.flikpay/callback-refusal";
}  // namespace

absl::Status StaleCallbackError(absl::string_view message) {
  absl::Status status = absl::UnauthenticatedError(message);
  status.SetPayload(kRefusalPayload, absl::Cord("stale"));
  return status;
}

CallbackRefusal RefusalOf(const absl::Status& status) {
  if (!absl::IsUnauthenticated(status)) return CallbackRefusal::kMalformed;
  return status.GetPayload(kRefusalPayload).has_value() ? CallbackRefusal::kStale
                                                        : CallbackRefusal::kBadSignature;
}

}  // namespace flikpay::gateway
