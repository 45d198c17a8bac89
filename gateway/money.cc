#include "gateway/money.h"

#include <limits>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace flikpay::gateway {

std::string FormatAmount(int64_t amount_minor) {
  const bool negative = amount_minor < 0;
  // Work in unsigned so that INT64_MIN does not overflow on negation.
  const uint64_t magnitude =
      negative ? 0 - static_cast<uint64_t>(amount_minor) : static_cast<uint64_t>(amount_minor);
  return absl::StrFormat("%s%u.%02u", negative ? "-" : "", magnitude / 100, magnitude % 100);
}

absl::StatusOr<int64_t> ParseAmount(absl::string_view text) {
  auto invalid = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("amount \"", text.substr(0, 32), "\" ", why));
  };
  if (text.empty()) return invalid("is empty");
  const size_t dot = text.find('.');
  const absl::string_view whole = text.substr(0, dot);
  const absl::string_view fraction =
      dot == absl::string_view::npos ? absl::string_view() : text.substr(dot + 1);
  if (whole.empty()) return invalid("has no digits before the decimal point");
  if (dot != absl::string_view::npos && fraction.empty()) {
    return invalid("has no digits after the decimal point");
  }
  if (fraction.size() > 2) return invalid("has more than two decimals");
  for (absl::string_view part : {whole, fraction}) {
    for (char c : part) {
      if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) {
        return invalid("is not a decimal number with a dot");
      }
    }
  }
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  int64_t units = 0;
  for (char c : whole) {
    if (units > (kMax - (c - '0')) / 10) return invalid("is too large");
    units = units * 10 + (c - '0');
  }
  int64_t cents = 0;
  for (size_t i = 0; i < 2; ++i) {
    cents = cents * 10 + (i < fraction.size() ? fraction[i] - '0' : 0);
  }
  if (units > (kMax - cents) / 100) return invalid("is too large");
  return units * 100 + cents;
}

}  // namespace flikpay::gateway
