// libFuzzer target for the one place euro cents meet Bankart's decimal strings (gateway/money.h).
// The input is read twice: as an amount string, checked against a decimal reading done here with
// digit strings alone (so a float anywhere in ParseAmount shows as a wrong answer), and as an
// int64 of cents that FormatAmount must write so that ParseAmount reads it back exactly.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "gateway/money.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using flikpay::gateway::FormatAmount;
using flikpay::gateway::ParseAmount;

bool AllDigits(absl::string_view text) {
  for (char c : text) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

absl::string_view WithoutLeadingZeros(absl::string_view digits) {
  while (digits.size() > 1 && digits.front() == '0') digits.remove_prefix(1);
  return digits;
}

// The accepted grammar is DIGITS [ "." 1*2DIGIT ]; returns the canonical "units.cc" spelling, or ""
// when `text` is not in the grammar or does not fit in int64 cents.
std::string CanonicalAmount(absl::string_view text) {
  const size_t dot = text.find('.');
  const absl::string_view whole = text.substr(0, dot);
  const absl::string_view fraction =
      dot == absl::string_view::npos ? absl::string_view() : text.substr(dot + 1);
  if (whole.empty() || !AllDigits(whole) || !AllDigits(fraction)) return "";
  if (dot != absl::string_view::npos && (fraction.empty() || fraction.size() > 2)) return "";
  const std::string cents_digits = absl::StrCat(fraction, std::string(2 - fraction.size(), '0'));
  const std::string total = absl::StrCat(whole, cents_digits);
  // Compared as digit strings: equal lengths compare like the numbers they spell.
  const absl::string_view magnitude = WithoutLeadingZeros(total);
  const std::string max = std::to_string(std::numeric_limits<int64_t>::max());
  if (magnitude.size() > max.size() || (magnitude.size() == max.size() && magnitude > max)) {
    return "";
  }
  return absl::StrCat(WithoutLeadingZeros(whole), ".", cents_digits);
}

void CheckText(absl::string_view text) {
  const absl::StatusOr<int64_t> parsed = ParseAmount(text);
  const std::string canonical = CanonicalAmount(text);
  auto shown = [&] { return absl::StrCat("\"", absl::CEscape(text), "\""); };
  FUZZ_CHECK(parsed.ok() == !canonical.empty(),
             absl::StrCat(shown(), " accepted: ", parsed.ok(), ", expected: ", !canonical.empty()));
  if (!parsed.ok()) {
    FUZZ_CHECK(parsed.status().code() == absl::StatusCode::kInvalidArgument,
               absl::StrCat(shown(), ": ", parsed.status().ToString()));
    return;
  }
  FUZZ_CHECK(*parsed >= 0, absl::StrCat(shown(), " -> ", *parsed));
  FUZZ_CHECK(FormatAmount(*parsed) == canonical,
             absl::StrCat(shown(), " -> ", *parsed, " -> ", FormatAmount(*parsed), ", expected ",
                          canonical));
}

void CheckCents(int64_t cents) {
  const std::string text = FormatAmount(cents);
  const absl::string_view magnitude = absl::string_view(text).substr(cents < 0 ? 1 : 0);
  const size_t dot = magnitude.find('.');
  FUZZ_CHECK(dot != absl::string_view::npos && dot + 3 == magnitude.size() &&
                 AllDigits(magnitude.substr(0, dot)) && AllDigits(magnitude.substr(dot + 1)) &&
                 WithoutLeadingZeros(magnitude.substr(0, dot)) == magnitude.substr(0, dot),
             absl::StrCat(cents, " -> \"", text, "\""));
  const absl::StatusOr<int64_t> back = ParseAmount(text);
  if (cents >= 0) {
    FUZZ_CHECK(back.ok() && *back == cents,
               absl::StrCat(cents, " -> \"", text, "\" -> ",
                            back.ok() ? absl::StrCat(*back) : back.status().ToString()));
    return;
  }
  FUZZ_CHECK(!back.ok(), absl::StrCat("a sign is accepted: \"", text, "\""));
  if (cents != std::numeric_limits<int64_t>::min()) {
    const absl::StatusOr<int64_t> magnitude_back = ParseAmount(magnitude);
    FUZZ_CHECK(magnitude_back.ok() && *magnitude_back == -cents,
               absl::StrCat(cents, " -> \"", text, "\""));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  CheckText(absl::string_view(reinterpret_cast<const char*>(data), size));
  int64_t cents = 0;
  std::memcpy(&cents, data, std::min(size, sizeof(cents)));
  CheckCents(cents);
  return 0;
}
