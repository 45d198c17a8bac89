// bankart-sim's own reading of Bankart's documents: request and callback signatures, HTTP dates,
// Flik aliases and amounts. Written from seed 000 (the Flik guide), seed 001 (the API reference)
// and ../shared/GATEWAY.md, never from flikpay's adapter: the stand-in is the witness the adapter
// is tested against, so it must not share the adapter's mistakes. It uses OpenSSL and Abseil only.
#ifndef FLIKPAY_GATEWAY_SIM_SIM_PROTOCOL_H_
#define FLIKPAY_GATEWAY_SIM_SIM_PROTOCOL_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace flikpay::sim {

// ---- Signatures ----
// Seed 001, "Signing Requests": "The signature is generated via Hash HMAC method, using SHA2-512 as
// hashing algorithm and is expected to be BASE64 encoded"; the message joins method, hash of the
// body, content type, timestamp and request URI with "\n". GATEWAY.md: the JSON API v3 sends it in
// X-Signature over five lines (the XML API's empty "additionals" line is not part of v3); the body
// hash is lower-case hex SHA-512, or MD5 from old clients (deprecated, still accepted). Callbacks
// are signed the same way over the callback's own method, body, content type, date and URI (seed
// 001, "Data Verification").

enum class BodyDigest { kSha512, kMd5 };

// Lower-case hex of the digest of the exact body bytes ("" hashes too: GET requests sign it).
std::string BodyDigestHex(BodyDigest digest, absl::string_view body);

struct SignatureInput {
  absl::string_view method;        // "POST", "GET"
  absl::string_view body;          // the exact bytes on the wire
  absl::string_view content_type;  // the Content-Type header exactly as sent
  absl::string_view date;          // the Date (or X-Date) header exactly as sent
  absl::string_view request_uri;   // path, plus "?query" when there is one
};

std::string SignatureMessage(const SignatureInput& input, BodyDigest digest = BodyDigest::kSha512);
std::string HmacSha512Base64(absl::string_view secret, absl::string_view message);
// What the gateway puts in X-Signature: the SHA-512 form.
std::string Signature(absl::string_view secret, const SignatureInput& input);
// True when `signature` is the signature of `input` with either body digest. Constant-time, so a
// forger learns nothing from how long a refusal takes.
bool SignatureMatches(absl::string_view secret, const SignatureInput& input,
                      absl::string_view signature);

// The request URI a request to `url` carries and is signed over: the path ("/" when the URL has
// none) and "?query" when there is one; never a "#fragment", which no client sends.
std::string RequestUriOf(absl::string_view url);

// RFC 4648 base64 with padding; decoding refuses anything else (whitespace, missing padding).
std::string Base64Encode(absl::string_view bytes);
std::optional<std::string> Base64Decode(absl::string_view text);

bool ConstantTimeEquals(absl::string_view a, absl::string_view b);

// The API password as the public PHP clients send it (GATEWAY.md): SHA-1 applied `rounds` times,
// each round over the previous round's lower-case hex (seed 001, "Authentication": "The result
// shall be passed in lower case letters").
std::string Sha1HexRounds(absl::string_view password, int rounds);

// ---- HTTP dates ----
// RFC 7231 section 7.1.1.1: senders write IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT"), recipients
// also accept the obsolete RFC 850 ("Sunday, 06-Nov-94 08:49:37 GMT") and asctime ("Sun Nov  6
// 08:49:37 1994") forms. Seed 001 formats the Date with PHP's "D, d M Y H:i:s T" in UTC, which
// prints "UTC" in place of "GMT"; other senders write a numeric zone ("+0000").
enum class DateForm { kGmt, kUtc, kNumeric };

// "gmt", "utc", "numeric" (the --callback_date_format values).
std::optional<DateForm> ParseDateFormName(absl::string_view name);
std::string FormatHttpDate(absl::Time time, DateForm form = DateForm::kGmt);
// Any of the forms above; IMF-fixdate with GMT, UTC or a numeric zone (+hhmm/-hhmm, applied).
// Names are case-sensitive and the day name must be the date's own: a sender that writes
// "Mon, 06 Nov 1994" has a bug the witness should show, not hide.
std::optional<absl::Time> ParseHttpDate(absl::string_view text);

// ---- Flik aliases ----
// Seed 000, "Validacija formata vnosa aliasa": every phone number in the Flik scheme is registered
// as 00386 followed by 8 digits ("Vse telefonske številke v Flik shemi so registrirane po formatu
// 00386********"), and its validateAlias/checkAndFormatNumber show the accepted input forms.

// What the API accepts in extraData.alias: an e-mail address by the seed's pattern
// /^([a-zA-Z0-9_\-\.]+)@([a-zA-Z0-9_\-\.]+)\.([a-zA-Z]{2,5})$/, or 00386 and 8 digits.
bool IsNormalisedAlias(absl::string_view alias);

// What the gateway's alias-entry page does with what a payer types: an e-mail address as is; a
// phone number with "(", ")", "-" (the seed's code) and spaces (GATEWAY.md) dropped, then
// 00386XXXXXXXX as is, +386XXXXXXXX and 386XXXXXXXX with "00" in front, 0XXXXXXXX as
// 00386XXXXXXXX. Each rule matches the whole input (the seed's /\d{13}/ would also match inside a
// longer number; a registered alias never is one). Empty when the input fits none.
std::optional<std::string> NormaliseTypedAlias(absl::string_view typed);

// ---- Amounts ----
// Seed 000: "v zneseku uporabite decimalno piko in maksimalno dve decimalni mesti" (a decimal dot
// and at most two decimals); seed 001's examples write "9.99", "4.99".

// "11.11" -> 1111, "11.1" -> 1110, "11" -> 1100. Empty for a comma, a sign, an exponent, spaces,
// a dot without digits on both sides, more than two decimals or more than int64 cents.
std::optional<int64_t> ParseAmount(absl::string_view text);
// 1111 -> "11.11", 5 -> "0.05", always two decimals.
std::string FormatAmount(int64_t cents);

}  // namespace flikpay::sim

#endif  // FLIKPAY_GATEWAY_SIM_SIM_PROTOCOL_H_
