#include "gateway/sim/sim_protocol.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <array>
#include <cstdio>
#include <limits>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"

namespace flikpay::sim {
namespace {

std::string Hex(const unsigned char* bytes, size_t size) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(size * 2);
  for (size_t i = 0; i < size; ++i) {
    hex.push_back(kDigits[bytes[i] >> 4]);
    hex.push_back(kDigits[bytes[i] & 0x0f]);
  }
  return hex;
}

std::string DigestHex(const EVP_MD* algorithm, absl::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  EVP_Digest(data.data(), data.size(), digest, &size, algorithm, nullptr);
  return Hex(digest, size);
}

// RFC 7231 names, in absl::Weekday order (Monday first).
constexpr std::array<absl::string_view, 7> kShortDays = {"Mon", "Tue", "Wed", "Thu",
                                                         "Fri", "Sat", "Sun"};
constexpr std::array<absl::string_view, 7> kLongDays = {
    "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"};
constexpr std::array<absl::string_view, 12> kMonths = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

// Reads the fixed grammar of an HTTP date left to right; every step either consumes exactly what
// it expects or fails.
class Cursor {
 public:
  explicit Cursor(absl::string_view text) : rest_(text) {}

  bool Literal(absl::string_view expected) {
    if (!absl::StartsWith(rest_, expected)) return false;
    rest_.remove_prefix(expected.size());
    return true;
  }
  bool Digits(int count, int& value) {
    if (rest_.size() < static_cast<size_t>(count)) return false;
    value = 0;
    for (int i = 0; i < count; ++i) {
      if (!absl::ascii_isdigit(static_cast<unsigned char>(rest_[i]))) return false;
      value = value * 10 + (rest_[i] - '0');
    }
    rest_.remove_prefix(count);
    return true;
  }
  template <size_t N>
  bool Name(const std::array<absl::string_view, N>& names, int& index) {
    for (size_t i = 0; i < N; ++i) {
      if (Literal(names[i])) {
        index = static_cast<int>(i);
        return true;
      }
    }
    return false;
  }
  bool TimeOfDay(int& hour, int& minute, int& second) {
    return Digits(2, hour) && Literal(":") && Digits(2, minute) && Literal(":") &&
           Digits(2, second) && hour < 24 && minute < 60 && second < 60;
  }
  bool Done() const { return rest_.empty(); }

 private:
  absl::string_view rest_;
};

// The instant a parsed date names, if its fields make a real date whose weekday is `weekday`.
std::optional<absl::Time> Assemble(int year, int month_index, int day, int hour, int minute,
                                   int second, int weekday, int offset_minutes) {
  const absl::CivilDay civil_day(year, month_index + 1, day);
  // CivilDay normalises 31 Feb into March; a date that moved was not a real date.
  if (civil_day.year() != year || civil_day.month() != month_index + 1 || civil_day.day() != day) {
    return std::nullopt;
  }
  if (static_cast<int>(absl::GetWeekday(civil_day)) != weekday) return std::nullopt;
  const absl::Time local = absl::FromCivil(
      absl::CivilSecond(year, month_index + 1, day, hour, minute, second), absl::UTCTimeZone());
  return local - absl::Minutes(offset_minutes);
}

// IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT", and the UTC and numeric-zone variants.
std::optional<absl::Time> ParseImfFixdate(absl::string_view text) {
  Cursor cursor(text);
  int weekday = 0, day = 0, month = 0, year = 0, hour = 0, minute = 0, second = 0;
  if (!(cursor.Name(kShortDays, weekday) && cursor.Literal(", ") && cursor.Digits(2, day) &&
        cursor.Literal(" ") && cursor.Name(kMonths, month) && cursor.Literal(" ") &&
        cursor.Digits(4, year) && cursor.Literal(" ") && cursor.TimeOfDay(hour, minute, second) &&
        cursor.Literal(" "))) {
    return std::nullopt;
  }
  int offset_minutes = 0;
  if (!cursor.Literal("GMT") && !cursor.Literal("UTC")) {
    int sign = 0;
    if (cursor.Literal("+")) {
      sign = 1;
    } else if (cursor.Literal("-")) {
      sign = -1;
    } else {
      return std::nullopt;
    }
    int zone_hours = 0, zone_minutes = 0;
    if (!cursor.Digits(2, zone_hours) || !cursor.Digits(2, zone_minutes) || zone_minutes >= 60) {
      return std::nullopt;
    }
    offset_minutes = sign * (zone_hours * 60 + zone_minutes);
  }
  if (!cursor.Done()) return std::nullopt;
  return Assemble(year, month, day, hour, minute, second, weekday, offset_minutes);
}

// rfc850-date: "Sunday, 06-Nov-94 08:49:37 GMT".
std::optional<absl::Time> ParseRfc850(absl::string_view text) {
  Cursor cursor(text);
  int weekday = 0, day = 0, month = 0, year2 = 0, hour = 0, minute = 0, second = 0;
  if (!(cursor.Name(kLongDays, weekday) && cursor.Literal(", ") && cursor.Digits(2, day) &&
        cursor.Literal("-") && cursor.Name(kMonths, month) && cursor.Literal("-") &&
        cursor.Digits(2, year2) && cursor.Literal(" ") && cursor.TimeOfDay(hour, minute, second) &&
        cursor.Literal(" GMT") && cursor.Done())) {
    return std::nullopt;
  }
  // RFC 7231: a two-digit year that "appears to be more than 50 years in the future" is "the most
  // recent year in the past that had the same last two digits".
  const int this_year =
      static_cast<int>(absl::ToCivilYear(absl::Now(), absl::UTCTimeZone()).year());
  int year = this_year / 100 * 100 + year2;
  if (year > this_year + 50) year -= 100;
  return Assemble(year, month, day, hour, minute, second, weekday, 0);
}

// asctime-date: "Sun Nov  6 08:49:37 1994" (day as two digits or a space and one digit).
std::optional<absl::Time> ParseAsctime(absl::string_view text) {
  Cursor cursor(text);
  int weekday = 0, day = 0, month = 0, year = 0, hour = 0, minute = 0, second = 0;
  if (!(cursor.Name(kShortDays, weekday) && cursor.Literal(" ") && cursor.Name(kMonths, month) &&
        cursor.Literal(" "))) {
    return std::nullopt;
  }
  if (!(cursor.Literal(" ") ? cursor.Digits(1, day) : cursor.Digits(2, day))) return std::nullopt;
  if (!(cursor.Literal(" ") && cursor.TimeOfDay(hour, minute, second) && cursor.Literal(" ") &&
        cursor.Digits(4, year) && cursor.Done())) {
    return std::nullopt;
  }
  return Assemble(year, month, day, hour, minute, second, weekday, 0);
}

bool IsEmailCharacter(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
}

bool AllOf(absl::string_view text, bool (*predicate)(char)) {
  for (char c : text) {
    if (!predicate(c)) return false;
  }
  return true;
}

bool IsDigit(char c) { return absl::ascii_isdigit(static_cast<unsigned char>(c)); }
bool IsLetter(char c) { return absl::ascii_isalpha(static_cast<unsigned char>(c)); }

// The seed's /^([a-zA-Z0-9_\-\.]+)@([a-zA-Z0-9_\-\.]+)\.([a-zA-Z]{2,5})$/. Neither class holds
// '@', so there is exactly one; the top-level domain holds no '.', so it follows the last one.
bool IsEmail(absl::string_view text) {
  const size_t at = text.find('@');
  if (at == absl::string_view::npos || text.find('@', at + 1) != absl::string_view::npos) {
    return false;
  }
  const absl::string_view local = text.substr(0, at);
  const absl::string_view domain = text.substr(at + 1);
  const size_t dot = domain.rfind('.');
  if (dot == absl::string_view::npos) return false;
  const absl::string_view host = domain.substr(0, dot);
  const absl::string_view top = domain.substr(dot + 1);
  return !local.empty() && AllOf(local, IsEmailCharacter) && !host.empty() &&
         AllOf(host, IsEmailCharacter) && top.size() >= 2 && top.size() <= 5 &&
         AllOf(top, IsLetter);
}

bool IsDigits(absl::string_view text, size_t count) {
  return text.size() == count && AllOf(text, IsDigit);
}

}  // namespace

std::string BodyDigestHex(BodyDigest digest, absl::string_view body) {
  return DigestHex(digest == BodyDigest::kSha512 ? EVP_sha512() : EVP_md5(), body);
}

std::string SignatureMessage(const SignatureInput& input, BodyDigest digest) {
  return absl::StrJoin({input.method, absl::string_view(BodyDigestHex(digest, input.body)),
                        input.content_type, input.date, input.request_uri},
                       "\n");
}

std::string HmacSha512Base64(absl::string_view secret, absl::string_view message) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  HMAC(EVP_sha512(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), mac, &size);
  return Base64Encode(absl::string_view(reinterpret_cast<const char*>(mac), size));
}

std::string Signature(absl::string_view secret, const SignatureInput& input) {
  return HmacSha512Base64(secret, SignatureMessage(input, BodyDigest::kSha512));
}

bool SignatureMatches(absl::string_view secret, const SignatureInput& input,
                      absl::string_view signature) {
  // Both forms are always computed and compared, so the time taken does not say which was tried.
  const bool sha512 = ConstantTimeEquals(
      signature, HmacSha512Base64(secret, SignatureMessage(input, BodyDigest::kSha512)));
  const bool md5 = ConstantTimeEquals(
      signature, HmacSha512Base64(secret, SignatureMessage(input, BodyDigest::kMd5)));
  return sha512 || md5;
}

std::string RequestUriOf(absl::string_view url) {
  url = url.substr(0, url.find('#'));
  const size_t scheme_end = url.find("://");
  const size_t authority_start = scheme_end == absl::string_view::npos ? 0 : scheme_end + 3;
  const size_t path_start = url.find_first_of("/?", authority_start);
  if (path_start == absl::string_view::npos) return "/";
  absl::string_view uri = url.substr(path_start);
  return uri.front() == '?' ? absl::StrCat("/", uri) : std::string(uri);
}

std::string Base64Encode(absl::string_view bytes) {
  std::string text(4 * ((bytes.size() + 2) / 3), '\0');
  const int written =
      EVP_EncodeBlock(reinterpret_cast<unsigned char*>(text.data()),
                      reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
  text.resize(written);
  return text;
}

std::optional<std::string> Base64Decode(absl::string_view text) {
  auto value_of = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  if (text.size() % 4 != 0) return std::nullopt;
  size_t padding = 0;
  while (padding < 2 && padding < text.size() && text[text.size() - 1 - padding] == '=') {
    ++padding;
  }
  std::string bytes;
  uint32_t buffer = 0;
  int bits = 0;
  for (size_t i = 0; i < text.size() - padding; ++i) {
    const int value = value_of(text[i]);
    if (value < 0) return std::nullopt;
    buffer = (buffer << 6) | static_cast<uint32_t>(value);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      bytes.push_back(static_cast<char>((buffer >> bits) & 0xff));
    }
  }
  // The bits left over must be the zero fill of the last group, or the text was not canonical.
  if ((buffer & ((1u << bits) - 1)) != 0) return std::nullopt;
  return bytes;
}

bool ConstantTimeEquals(absl::string_view a, absl::string_view b) {
  if (a.size() != b.size()) {
    // Still spend the time of a comparison, so a length mismatch is not faster to learn.
    CRYPTO_memcmp(a.data(), a.data(), a.size());
    return false;
  }
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string Sha1HexRounds(absl::string_view password, int rounds) {
  std::string value(password);
  for (int i = 0; i < rounds; ++i) value = DigestHex(EVP_sha1(), value);
  return value;
}

std::optional<DateForm> ParseDateFormName(absl::string_view name) {
  if (name == "gmt") return DateForm::kGmt;
  if (name == "utc") return DateForm::kUtc;
  if (name == "numeric") return DateForm::kNumeric;
  return std::nullopt;
}

std::string FormatHttpDate(absl::Time time, DateForm form) {
  const absl::CivilSecond civil = absl::ToCivilSecond(time, absl::UTCTimeZone());
  const absl::string_view day_name =
      kShortDays[static_cast<int>(absl::GetWeekday(absl::CivilDay(civil)))];
  const absl::string_view zone = form == DateForm::kGmt   ? "GMT"
                                 : form == DateForm::kUtc ? "UTC"
                                                          : "+0000";
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), "%.*s, %02d %.*s %04d %02d:%02d:%02d %.*s",
                static_cast<int>(day_name.size()), day_name.data(), civil.day(),
                static_cast<int>(kMonths[civil.month() - 1].size()),
                kMonths[civil.month() - 1].data(), static_cast<int>(civil.year()), civil.hour(),
                civil.minute(), civil.second(), static_cast<int>(zone.size()), zone.data());
  return buffer;
}

std::optional<absl::Time> ParseHttpDate(absl::string_view text) {
  if (text.size() > 3 && text[3] == ',') return ParseImfFixdate(text);
  if (text.find(',') != absl::string_view::npos) return ParseRfc850(text);
  return ParseAsctime(text);
}

bool IsNormalisedAlias(absl::string_view alias) {
  if (alias.find('@') != absl::string_view::npos) return IsEmail(alias);
  return IsDigits(alias, 13) && absl::StartsWith(alias, "00386");
}

std::optional<std::string> NormaliseTypedAlias(absl::string_view typed) {
  typed = absl::StripAsciiWhitespace(typed);
  // The seed's validateAlias tells the two kinds apart by the '@' alone.
  if (typed.find('@') != absl::string_view::npos) {
    if (IsEmail(typed)) return std::string(typed);
    return std::nullopt;
  }
  std::string phone;
  for (char c : typed) {
    if (c != '(' && c != ')' && c != '-' && c != ' ') phone.push_back(c);
  }
  const absl::string_view number = phone;
  if (IsDigits(number, 13) && absl::StartsWith(number, "00386")) return phone;
  if (number.size() == 12 && number[0] == '+' && IsDigits(number.substr(1), 11) &&
      absl::StartsWith(number, "+386")) {
    return absl::StrCat("00", number.substr(1));
  }
  if (IsDigits(number, 11) && absl::StartsWith(number, "386")) return absl::StrCat("00", number);
  if (IsDigits(number, 9) && number[0] == '0') return absl::StrCat("00386", number.substr(1));
  return std::nullopt;
}

std::optional<int64_t> ParseAmount(absl::string_view text) {
  const size_t dot = text.find('.');
  const absl::string_view whole = text.substr(0, dot);
  const absl::string_view fraction =
      dot == absl::string_view::npos ? absl::string_view() : text.substr(dot + 1);
  if (whole.empty() || !AllOf(whole, IsDigit)) return std::nullopt;
  if (dot != absl::string_view::npos &&
      (fraction.empty() || fraction.size() > 2 || !AllOf(fraction, IsDigit))) {
    return std::nullopt;
  }
  // The most whole euros that still leave room for 99 cents in an int64.
  constexpr int64_t kMaxEuros = (std::numeric_limits<int64_t>::max() - 99) / 100;
  int64_t cents = 0;
  for (char c : whole) {
    const int digit = c - '0';
    if (cents > (kMaxEuros - digit) / 10) return std::nullopt;
    cents = cents * 10 + digit;
  }
  cents *= 100;
  if (fraction.size() >= 1) cents += (fraction[0] - '0') * 10;
  if (fraction.size() == 2) cents += fraction[1] - '0';
  return cents;
}

std::string FormatAmount(int64_t cents) {
  const bool negative = cents < 0;
  // Through uint64 so the most negative value has a magnitude too.
  const uint64_t magnitude =
      negative ? ~static_cast<uint64_t>(cents) + 1 : static_cast<uint64_t>(cents);
  const uint64_t rest = magnitude % 100;
  return absl::StrCat(negative ? "-" : "", magnitude / 100, ".", rest < 10 ? "0" : "", rest);
}

}  // namespace flikpay::sim
