#include "gateway/alias.h"

#include <regex>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace flikpay::gateway {
namespace {

bool AllDigits(absl::string_view text) {
  for (char c : text) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

// The subscriber part of a Slovenian number: exactly eight digits.
bool IsSubscriberNumber(absl::string_view text) { return text.size() == 8 && AllDigits(text); }

}  // namespace

absl::StatusOr<Alias> NormalizeAlias(absl::string_view raw) {
  if (raw.empty()) return absl::InvalidArgumentError("is required");
  if (absl::StrContains(raw, '@')) {
    static const std::regex kEmail(R"(^[A-Za-z0-9_.\-]+@[A-Za-z0-9_.\-]+\.[A-Za-z]{2,5}$)");
    if (raw.size() > 254 || !std::regex_match(raw.begin(), raw.end(), kEmail)) {
      return absl::InvalidArgumentError(
          "is not a valid e-mail address (letters, digits, '_', '-', '.' and a 2-5 letter "
          "top-level domain)");
    }
    return Alias{AliasKind::kEmail, std::string(raw)};
  }

  std::string digits;
  digits.reserve(raw.size());
  for (char c : raw) {
    if (c == '(' || c == ')' || c == '-' || c == ' ') continue;
    digits.push_back(c);
  }
  absl::string_view number = digits;
  if (absl::StartsWith(number, "00386") && IsSubscriberNumber(number.substr(5))) {
    return Alias{AliasKind::kPhone, std::string(number)};
  }
  if (absl::StartsWith(number, "+386") && IsSubscriberNumber(number.substr(4))) {
    return Alias{AliasKind::kPhone, absl::StrCat("00", number.substr(1))};
  }
  if (absl::StartsWith(number, "386") && IsSubscriberNumber(number.substr(3))) {
    return Alias{AliasKind::kPhone, absl::StrCat("00", number)};
  }
  if (absl::StartsWith(number, "0") && IsSubscriberNumber(number.substr(1))) {
    return Alias{AliasKind::kPhone, absl::StrCat("00386", number.substr(1))};
  }
  return absl::InvalidArgumentError(
      "is neither an e-mail address nor a Slovenian phone number (00386XXXXXXXX, +386XXXXXXXX, "
      "386XXXXXXXX or 0XXXXXXXX)");
}

std::string MaskAlias(absl::string_view alias) {
  if (alias.empty()) return "";
  const size_t at = alias.find('@');
  if (at != absl::string_view::npos) {
    const absl::string_view local = alias.substr(0, at);
    return absl::StrCat(local.substr(0, std::min<size_t>(2, local.size() / 2)), "***",
                        alias.substr(at));
  }
  if (alias.size() <= 8) return std::string(alias.size(), '*');
  return absl::StrCat(alias.substr(0, 5), std::string(alias.size() - 8, '*'),
                      alias.substr(alias.size() - 3));
}

}  // namespace flikpay::gateway
