#include "gateway/gateway.h"

#include "absl/strings/ascii.h"

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

TransactionType ParseTransactionType(absl::string_view name) {
  const std::string upper = absl::AsciiStrToUpper(name);
  if (upper == "DEBIT") return TransactionType::kDebit;
  if (upper == "REFUND") return TransactionType::kRefund;
  if (upper == "PAYOUT") return TransactionType::kPayout;
  return TransactionType::kOther;
}

}  // namespace flikpay::gateway
