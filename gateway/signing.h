#ifndef FLIKPAY_GATEWAY_SIGNING_H_
#define FLIKPAY_GATEWAY_SIGNING_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace flikpay::gateway {

// Bankart's request and callback signature (seed 001, "Signing Requests"; JSON API v3):
//   message   = method \n hex(hash(body)) \n content-type \n date \n
//   request-uri signature = base64(HMAC-SHA512(shared secret, message))
// The body hash is lower-case hex SHA-512. Old integrations used an MD5 body hash and the XML v2
// message (an empty "additionals" line); a connector accepts those only when configured to.

enum class BodyHash { kSha512, kMd5 };

struct SignedParts {
  absl::string_view method;        // "POST", "GET"
  absl::string_view body;          // the exact bytes sent or received
  absl::string_view content_type;  // exactly as in the header
  absl::string_view date;          // exactly as in the Date (or X-Date) header
  absl::string_view request_uri;   // path, plus "?query" when there is one
};

std::string HexDigest(BodyHash algorithm, absl::string_view data);
std::string Base64Encode(absl::string_view bytes);
absl::StatusOr<std::string> Base64Decode(absl::string_view text);

// The five-line message. The XML v2 API put an empty "additionals" line before the URI; pass
// with_v2_additionals to build that form.
std::string SignatureMessage(const SignedParts& parts, BodyHash algorithm,
                             bool with_v2_additionals = false);

std::string HmacSha512Base64(absl::string_view secret, absl::string_view message);

// The X-Signature value for a request or callback flikpay (or the sim) sends.
std::string Sign(absl::string_view secret, const SignedParts& parts);

// The signature forms a connector accepts besides v3 (SHA-512 body hash, five lines). Off unless
// the merchant's integration is known to send them: each form accepted is one more a forger may
// use.
struct LegacySignatureForms {
  bool md5_body_hash = false;
  bool v2_message = false;
};

// A callback body's hashes, computed once however many connectors' secrets are tried.
struct BodyDigests {
  std::string sha512;  // lower-case hex
  std::string md5;     // empty unless asked for
};
BodyDigests DigestBody(absl::string_view body, bool with_md5);

// True when `signature` (base64) matches an accepted form: v3, plus the legacy forms `legacy`
// allows. Comparison is constant-time so a forger learns nothing from timing; every accepted form
// is computed, so the time does not tell which matched.
bool VerifySignature(absl::string_view secret, const SignedParts& parts,
                     absl::string_view signature, LegacySignatureForms legacy = {});
bool VerifySignature(absl::string_view secret, const SignedParts& parts, const BodyDigests& digests,
                     absl::string_view signature, LegacySignatureForms legacy);

// RFC 7231 IMF-fixdate, e.g. "Tue, 28 Apr 2026 15:23:40 GMT".
std::string FormatHttpDate(absl::Time time);
absl::StatusOr<absl::Time> ParseHttpDate(absl::string_view text);

// The API password as most Bankart clients send it: SHA-1 applied `rounds` times, each round
// hashing the previous round's lower-case hex digest.
std::string HashPassword(absl::string_view password, int rounds = 10);

// Constant-time equality for secrets of possibly different lengths.
bool ConstantTimeEquals(absl::string_view a, absl::string_view b);

}  // namespace flikpay::gateway

#endif  // FLIKPAY_GATEWAY_SIGNING_H_
