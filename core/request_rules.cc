#include "core/request_rules.h"

#include <arpa/inet.h>

#include <algorithm>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace flikpay::rules {

absl::Status Invalid(absl::string_view field, absl::string_view rule) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", rule));
}

namespace {

// Ids appear in Redis keys, logs and Bankart's URLs: a small alphabet keeps every one of them
// unambiguous.
absl::Status IdOfAlphabet(absl::string_view field, absl::string_view id, size_t max) {
  if (id.empty()) return Invalid(field, "is required");
  if (id.size() > max) {
    return Invalid(field, absl::StrCat("must be at most ", max, " characters"));
  }
  const bool allowed = std::all_of(id.begin(), id.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
  });
  if (!allowed) {
    return Invalid(field, "may contain only letters, digits, '-', '_' and '.'");
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status MerchantTransactionId(absl::string_view field, absl::string_view id) {
  return IdOfAlphabet(field, id, kMaxMerchantTransactionId);
}

absl::Status LookupId(absl::string_view field, absl::string_view id) {
  return IdOfAlphabet(field, id, kMaxLookupId);
}

absl::Status RefundIds(absl::string_view merchant_transaction_id,
                       absl::string_view original_merchant_transaction_id) {
  if (merchant_transaction_id == original_merchant_transaction_id) {
    return Invalid("merchant_transaction_id", "must differ from the original's");
  }
  return absl::OkStatus();
}

absl::Status PayerIp(absl::string_view ip) {
  if (ip.empty()) return absl::OkStatus();
  const std::string text(ip);  // inet_pton wants a terminated string
  unsigned char address[16];
  if (inet_pton(AF_INET, text.c_str(), address) != 1 &&
      inet_pton(AF_INET6, text.c_str(), address) != 1) {
    return Invalid("payer_ip", "must be an IPv4 or IPv6 address");
  }
  return absl::OkStatus();
}

absl::Status Amount(int64_t amount_minor) {
  if (amount_minor <= 0) {
    return Invalid("amount_minor", "must be greater than 0 (euro cents)");
  }
  return absl::OkStatus();
}

absl::Status Currency(absl::string_view currency) {
  if (!currency.empty() && currency != "EUR") {
    return Invalid("currency", "Flik supports only EUR (or leave it empty)");
  }
  return absl::OkStatus();
}

absl::Status MaxLength(absl::string_view field, absl::string_view value, size_t max) {
  if (value.size() > max) {
    return Invalid(field, absl::StrCat("must be at most ", max, " characters"));
  }
  return absl::OkStatus();
}

absl::Status ShownText(absl::string_view field, absl::string_view value, size_t max) {
  if (absl::Status s = MaxLength(field, value, max); !s.ok()) return s;
  const auto* bytes = reinterpret_cast<const unsigned char*>(value.data());
  size_t i = 0;
  while (i < value.size()) {
    const unsigned char lead = bytes[i];
    int length = 0;
    uint32_t code_point = 0;
    if (lead < 0x80) {
      length = 1;
      code_point = lead;
    } else if ((lead & 0xE0) == 0xC0 && lead >= 0xC2) {
      length = 2;
      code_point = lead & 0x1F;
    } else if ((lead & 0xF0) == 0xE0) {
      length = 3;
      code_point = lead & 0x0F;
    } else if ((lead & 0xF8) == 0xF0 && lead <= 0xF4) {
      length = 4;
      code_point = lead & 0x07;
    } else {
      return Invalid(field, "must be UTF-8 text");
    }
    if (i + length > value.size()) return Invalid(field, "must be UTF-8 text");
    for (int k = 1; k < length; ++k) {
      if ((bytes[i + k] & 0xC0) != 0x80) return Invalid(field, "must be UTF-8 text");
      code_point = (code_point << 6) | (bytes[i + k] & 0x3F);
    }
    // Overlong forms and surrogates are not UTF-8 either.
    if ((length == 3 && code_point < 0x800) || (length == 4 && code_point < 0x10000) ||
        (code_point >= 0xD800 && code_point <= 0xDFFF) || code_point > 0x10FFFF) {
      return Invalid(field, "must be UTF-8 text");
    }
    if (code_point < 0x20 || (code_point >= 0x7F && code_point <= 0x9F)) {
      return Invalid(field, "must not contain control characters");
    }
    if (code_point == 0x061C || code_point == 0x200E || code_point == 0x200F ||
        (code_point >= 0x202A && code_point <= 0x202E) ||
        (code_point >= 0x2066 && code_point <= 0x2069)) {
      return Invalid(field, "must not contain bidirectional text controls");
    }
    i += length;
  }
  return absl::OkStatus();
}

absl::Status Url(absl::string_view field, absl::string_view url) {
  if (url.empty()) return absl::OkStatus();
  if (url.size() > kMaxUrl ||
      !(absl::StartsWith(url, "https://") || absl::StartsWith(url, "http://")) ||
      url.find_first_of(" \t\r\n\"<>") != absl::string_view::npos) {
    return Invalid(field, "must be an http(s) URL without spaces, at most 2000 characters");
  }
  return absl::OkStatus();
}

absl::Status PurposeCode(absl::string_view code, bool structured_reference) {
  if (code.empty()) return absl::OkStatus();
  const bool four_capitals = code.size() == 4 && std::all_of(code.begin(), code.end(), [](char c) {
                               return c >= 'A' && c <= 'Z';
                             });
  if (!four_capitals) {
    return Invalid("purpose_code", "must be 4 capital letters, e.g. WEBI");
  }
  if (!structured_reference) {
    return Invalid("purpose_code", "needs structured_reference");
  }
  return absl::OkStatus();
}

absl::Status AliasPresence(bool ecommerce, bool has_alias) {
  if (!has_alias && !ecommerce) {
    return Invalid("alias", "is required for In-Person and Out-of-Band requests to pay");
  }
  return absl::OkStatus();
}

absl::Status RequiredFields(std::initializer_list<Needed> fields) {
  for (const Needed& field : fields) {
    if (field.needed && field.value.empty()) {
      return Invalid(field.field, absl::StrCat("is required for ", field.flow));
    }
  }
  return absl::OkStatus();
}

absl::Status MoneyMovement(absl::string_view merchant_transaction_id, int64_t amount_minor,
                           absl::string_view currency, absl::string_view description) {
  if (absl::Status s = MerchantTransactionId("merchant_transaction_id", merchant_transaction_id);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = Amount(amount_minor); !s.ok()) return s;
  if (absl::Status s = Currency(currency); !s.ok()) return s;
  return ShownText("description", description, kMaxDescription);
}

}  // namespace flikpay::rules
