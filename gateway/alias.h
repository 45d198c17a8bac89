#ifndef FLIKPAY_GATEWAY_ALIAS_H_
#define FLIKPAY_GATEWAY_ALIAS_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace flikpay::gateway {

// A Flik alias is the payer's registered phone number or e-mail address. Bankart's developer guide
// (seed 000, "Validacija formata vnosa aliasa") fixes the accepted shapes; every rule here matches
// the whole string, never a part of it.

enum class AliasKind { kPhone, kEmail };

struct Alias {
  AliasKind kind;
  // Phones are always "00386" followed by 8 digits, the only form the Flik scheme registers.
  std::string value;
};

// Accepts e-mail addresses (letters, digits, "_-." in the local part and domain, a 2-5 letter
// top-level domain) and Slovenian phone numbers as "00386XXXXXXXX", "+386XXXXXXXX", "386XXXXXXXX"
// or "0XXXXXXXX" after dropping "(", ")", "-" and spaces. INVALID_ARGUMENT otherwise, with the rule
// it broke ("is not a valid e-mail address ...") for the caller to prefix with its field name; the
// message never repeats the alias.
absl::StatusOr<Alias> NormalizeAlias(absl::string_view raw);

// What may appear in logs and API answers: "00386*****000", "su***@bankart.flik".
std::string MaskAlias(absl::string_view alias);

}  // namespace flikpay::gateway

#endif  // FLIKPAY_GATEWAY_ALIAS_H_
