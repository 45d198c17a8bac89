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
// The body hash is lower-case hex SHA-512; old clients used MD5, which the gateway still accepts,
// so verification accepts both.

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

// True when `signature` (base64) matches any accepted form (SHA-512 or MD5 body hash, v3 or v2
// message). Comparison is constant-time so a forger learns nothing from timing.
bool VerifySignature(absl::string_view secret, const SignedParts& parts,
                     absl::string_view signature);

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
