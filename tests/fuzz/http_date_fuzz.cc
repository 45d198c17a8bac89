// libFuzzer target for the HTTP dates on signed requests and callbacks (gateway/signing.h). The
// input is read twice: as a Date header value, which ParseHttpDate must turn into a time flikpay
// can format again or refuse; and as an instant of years 1-9999, whose IMF-fixdate from
// FormatHttpDate (and its other accepted spellings) must parse back to the same second, since a
// callback's Date is compared against the clock and signed as text.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "gateway/signing.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using flikpay::gateway::FormatHttpDate;
using flikpay::gateway::ParseHttpDate;

const absl::Time kFirst = absl::FromCivil(absl::CivilSecond(1, 1, 1, 0, 0, 0), absl::UTCTimeZone());
const absl::Time kLast =
    absl::FromCivil(absl::CivilSecond(9999, 12, 31, 23, 59, 59), absl::UTCTimeZone());

std::string Show(absl::Time time) {
  return absl::FormatTime("%Y-%m-%d %H:%M:%E*S %Ez", time, absl::UTCTimeZone());
}

void CheckParsesBack(absl::Time time, absl::string_view text) {
  const absl::StatusOr<absl::Time> back = ParseHttpDate(text);
  FUZZ_CHECK(back.ok() && *back == time,
             absl::StrCat(Show(time), " -> \"", absl::CEscape(text), "\" -> ",
                          back.ok() ? Show(*back) : back.status().ToString()));
}

void CheckHeader(absl::string_view text) {
  const absl::StatusOr<absl::Time> parsed = ParseHttpDate(text);
  if (!parsed.ok()) {
    FUZZ_CHECK(parsed.status().code() == absl::StatusCode::kInvalidArgument,
               absl::StrCat("\"", absl::CEscape(text), "\": ", parsed.status().ToString()));
    return;
  }
  // Whatever is accepted is an instant flikpay can compare with its clock and write back.
  FUZZ_CHECK(*parsed != absl::InfiniteFuture() && *parsed != absl::InfinitePast(),
             absl::StrCat("\"", absl::CEscape(text), "\" -> ", Show(*parsed)));
  if (*parsed >= kFirst && *parsed <= kLast) CheckParsesBack(*parsed, FormatHttpDate(*parsed));
}

void CheckInstant(uint64_t seed) {
  const uint64_t span = static_cast<uint64_t>(absl::ToInt64Seconds(kLast - kFirst)) + 1;
  const absl::Time time = kFirst + absl::Seconds(static_cast<int64_t>(seed % span));
  const std::string formatted = FormatHttpDate(time);
  CheckParsesBack(time, formatted);
  CheckParsesBack(time, absl::StrCat("  ", formatted, " \t"));
  const absl::TimeZone utc = absl::UTCTimeZone();
  CheckParsesBack(time, absl::FormatTime("%a, %d %b %Y %H:%M:%S UTC", time, utc));
  CheckParsesBack(time, absl::FormatTime("%a, %d %b %Y %H:%M:%S +0000", time, utc));
  CheckParsesBack(time, absl::FormatTime("%a %b %e %H:%M:%S %Y", time, utc));
  const absl::CivilYear year = absl::ToCivilYear(time, utc);
  // RFC 850's two-digit year is read as 1969-2068 (POSIX's pivot).
  if (year >= absl::CivilYear(1969) && year <= absl::CivilYear(2068)) {
    CheckParsesBack(time, absl::FormatTime("%A, %d-%b-%y %H:%M:%S GMT", time, utc));
  }
  if (year >= absl::CivilYear(1000)) {
    FUZZ_CHECK(formatted.size() == 29, absl::StrCat(Show(time), " -> \"", formatted, "\""));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  CheckHeader(absl::string_view(reinterpret_cast<const char*>(data), size));
  uint64_t seed = 0;
  std::memcpy(&seed, data, size < sizeof(seed) ? size : sizeof(seed));
  CheckInstant(seed);
  return 0;
}
