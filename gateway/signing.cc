#include "gateway/signing.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <array>
#include <memory>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace flikpay::gateway {
namespace {

std::string Digest(const EVP_MD* md, absl::string_view data) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> out;
  unsigned int length = 0;
  EVP_Digest(data.data(), data.size(), out.data(), &length, md, nullptr);
  return std::string(reinterpret_cast<const char*>(out.data()), length);
}

}  // namespace

std::string HexDigest(BodyHash algorithm, absl::string_view data) {
  const EVP_MD* md = algorithm == BodyHash::kSha512 ? EVP_sha512() : EVP_md5();
  return absl::BytesToHexString(Digest(md, data));
}

std::string Base64Encode(absl::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3), '\0');
  const int written = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                      reinterpret_cast<const unsigned char*>(bytes.data()),
                                      static_cast<int>(bytes.size()));
  out.resize(written);
  return out;
}

absl::StatusOr<std::string> Base64Decode(absl::string_view text) {
  std::string out;
  if (!absl::Base64Unescape(text, &out)) {
    return absl::InvalidArgumentError("not valid base64");
  }
  return out;
}

namespace {

std::string MessageWithDigest(const SignedParts& parts, absl::string_view body_digest,
                              bool with_v2_additionals) {
  // The v2 API put an empty "additionals" line before the URI.
  return absl::StrCat(parts.method, "\n", body_digest, "\n", parts.content_type, "\n", parts.date,
                      "\n", with_v2_additionals ? "\n" : "", parts.request_uri);
}

}  // namespace

std::string SignatureMessage(const SignedParts& parts, BodyHash algorithm,
                             bool with_v2_additionals) {
  return MessageWithDigest(parts, HexDigest(algorithm, parts.body), with_v2_additionals);
}

BodyDigests DigestBody(absl::string_view body, bool with_md5) {
  BodyDigests digests;
  digests.sha512 = HexDigest(BodyHash::kSha512, body);
  if (with_md5) digests.md5 = HexDigest(BodyHash::kMd5, body);
  return digests;
}

std::string HmacSha512Base64(absl::string_view secret, absl::string_view message) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> mac;
  unsigned int length = 0;
  HMAC(EVP_sha512(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), mac.data(), &length);
  return Base64Encode(absl::string_view(reinterpret_cast<const char*>(mac.data()), length));
}

std::string Sign(absl::string_view secret, const SignedParts& parts) {
  return HmacSha512Base64(secret, SignatureMessage(parts, BodyHash::kSha512));
}

bool ConstantTimeEquals(absl::string_view a, absl::string_view b) {
  // Compare a fixed-size digest of each side so the running time does not depend on where the
  // strings differ, nor (beyond hashing) on their lengths.
  const std::string da = Digest(EVP_sha256(), a);
  const std::string db = Digest(EVP_sha256(), b);
  return CRYPTO_memcmp(da.data(), db.data(), da.size()) == 0 && a.size() == b.size();
}

bool VerifySignature(absl::string_view secret, const SignedParts& parts,
                     absl::string_view signature, LegacySignatureForms legacy) {
  return VerifySignature(secret, parts, DigestBody(parts.body, legacy.md5_body_hash), signature,
                         legacy);
}

bool VerifySignature(absl::string_view secret, const SignedParts& parts, const BodyDigests& digests,
                     absl::string_view signature, LegacySignatureForms legacy) {
  bool matched = false;
  for (bool md5 : {false, true}) {
    if (md5 && !legacy.md5_body_hash) continue;
    const std::string& digest = md5 ? digests.md5 : digests.sha512;
    if (digest.empty()) continue;
    for (bool v2 : {false, true}) {
      if (v2 && !legacy.v2_message) continue;
      const std::string expected = HmacSha512Base64(secret, MessageWithDigest(parts, digest, v2));
      matched |= ConstantTimeEquals(expected, signature);
    }
  }
  return matched;
}

std::string FormatHttpDate(absl::Time time) {
  return absl::FormatTime("%a, %d %b %Y %H:%M:%S GMT", time, absl::UTCTimeZone());
}

absl::StatusOr<absl::Time> ParseHttpDate(absl::string_view text) {
  // RFC 7231 §7.1.1.1: the preferred form, then the two obsolete ones a recipient must accept.
  // Seed 001's signing example formats with PHP's "D, d M Y H:i:s T" in UTC, which prints "UTC",
  // and a numeric zone ("+0000") is seen from other IXOPAY-family clients; all mean the same.
  static constexpr const char* kForms[] = {
      "%a, %d %b %Y %H:%M:%S GMT",  // IMF-fixdate
      "%a, %d %b %Y %H:%M:%S UTC",  // PHP's T in UTC
      "%a, %d %b %Y %H:%M:%S %z",   // numeric zone
      "%A, %d-%b-%y %H:%M:%S GMT",  // RFC 850
      "%a %b %d %H:%M:%S %Y",       // asctime(); cctz lets a space match the day's padding
  };
  const std::string date(absl::StripAsciiWhitespace(text));
  for (const char* form : kForms) {
    absl::Time time;
    std::string error;
    if (!absl::ParseTime(form, date, absl::UTCTimeZone(), &time, &error)) continue;
    // absl::ParseTime reads "infinite-future" and "infinite-past" whatever the format: no date.
    if (time == absl::InfiniteFuture() || time == absl::InfinitePast()) break;
    return time;
  }
  return absl::InvalidArgumentError(
      "date is not an RFC 7231 date like \"Tue, 28 Apr 2026 15:23:40 GMT\"");
}

std::string HashPassword(absl::string_view password, int rounds) {
  std::string value(password);
  for (int i = 0; i < rounds; ++i) {
    value = absl::BytesToHexString(Digest(EVP_sha1(), value));
  }
  return value;
}

}  // namespace flikpay::gateway
