// The rules a request's fields must follow, in one place: the gRPC service checks them for the
// caller, the Bankart adapter checks them again before anything leaves the process, and both answer
// with the same message, INVALID_ARGUMENT "<field>: <rule>".
#ifndef FLIKPAY_CORE_REQUEST_RULES_H_
#define FLIKPAY_CORE_REQUEST_RULES_H_

#include <cstddef>
#include <cstdint>
#include <initializer_list>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace flikpay::rules {

// Bankart's limits (seed 001) and the Flik extras' (seed 000).
inline constexpr size_t kMaxMerchantTransactionId = 50;
inline constexpr size_t kMaxDescription = 255;
inline constexpr size_t kMaxMerchantMetadata = 255;
inline constexpr size_t kMaxMerchantTerminalId = 100;
inline constexpr size_t kMaxMerchantMid = 100;
inline constexpr size_t kMaxUltimateCreditorName = 140;
inline constexpr size_t kMaxUrl = 2000;
// Gateway uuids are longer than merchant transaction ids; nothing Bankart issues exceeds this.
inline constexpr size_t kMaxLookupId = 64;

absl::Status Invalid(absl::string_view field, absl::string_view rule);

// Required, at most 50 characters of letters, digits, '-', '_' and '.'.
absl::Status MerchantTransactionId(absl::string_view field, absl::string_view id);
// Euro cents, more than 0.
absl::Status Amount(int64_t amount_minor);
// EUR, or empty for EUR.
absl::Status Currency(absl::string_view currency);
absl::Status MaxLength(absl::string_view field, absl::string_view value, size_t max);
// Text a payer (or a bank statement, or an export) shows: at most `max` bytes of valid UTF-8,
// without control characters (C0, DEL, C1) or bidirectional overrides and isolates, which could
// make "100 EUR" read as something else on the payer's screen.
absl::Status ShownText(absl::string_view field, absl::string_view value, size_t max);
// Empty, or http(s) without spaces or quotes, at most 2000 characters.
absl::Status Url(absl::string_view field, absl::string_view url);
// Four capital letters, only with a structured reference.
absl::Status PurposeCode(absl::string_view code, bool structured_reference);
// The payer's alias may be left out only for E-commerce (Bankart asks the payer on its page).
absl::Status AliasPresence(bool ecommerce, bool has_alias);

// Empty, or an IPv4 or IPv6 address in text form.
absl::Status PayerIp(absl::string_view ip);
// An id to look a transaction up by (merchant transaction id or gateway uuid): required, at most
// 64 characters of the merchant transaction id alphabet, so it is safe in a Bankart URL path.
absl::Status LookupId(absl::string_view field, absl::string_view id);
// A refund is a transaction of its own: it may not reuse its original's id.
absl::Status RefundIds(absl::string_view merchant_transaction_id,
                       absl::string_view original_merchant_transaction_id);

// A field a flow needs (seed 000): `flow` names it, e.g. "an E-commerce request that redirects the
// payer". INVALID_ARGUMENT "<field>: is required for <flow>" for the first one needed and empty.
struct Needed {
  absl::string_view field;
  absl::string_view value;
  bool needed;
  absl::string_view flow;
};
absl::Status RequiredFields(std::initializer_list<Needed> fields);

// The checks every money-moving request starts with.
absl::Status MoneyMovement(absl::string_view merchant_transaction_id, int64_t amount_minor,
                           absl::string_view currency, absl::string_view description);

}  // namespace flikpay::rules

#endif  // FLIKPAY_CORE_REQUEST_RULES_H_
