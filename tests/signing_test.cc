#include "gateway/signing.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "tests/support/bankart_known_answers.h"

namespace flikpay::gateway {
namespace {

// The expected values come from the openssl command-line tool, an implementation independent of the
// code under test (which uses libcrypto's EVP/HMAC calls directly).
std::string RunShell(const std::string& command) {
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return "";
  std::string out;
  char buffer[512];
  size_t got;
  while ((got = fread(buffer, 1, sizeof(buffer), pipe)) > 0) out.append(buffer, got);
  pclose(pipe);
  return std::string(absl::StripAsciiWhitespace(out));
}

std::string WriteTemp(const std::string& content) {
  char path[] = "/tmp/flikpay-signing-XXXXXX";
  const int fd = mkstemp(path);
  close(fd);
  std::ofstream(path, std::ios::binary) << content;
  return path;
}

std::string OpensslHexDigest(const std::string& algorithm, const std::string& data) {
  const std::string file = WriteTemp(data);
  std::string out = RunShell(absl::StrCat("openssl dgst -", algorithm, " -r ", file));
  std::remove(file.c_str());
  return out.substr(0, out.find(' '));
}

std::string OpensslSignature(const std::string& secret, const std::string& message) {
  const std::string file = WriteTemp(message);
  std::string out = RunShell(
      absl::StrCat("openssl dgst -sha512 -hmac '", secret, "' -binary ", file, " | base64 -w0"));
  std::remove(file.c_str());
  return out;
}

struct Case {
  const char* name;
  const char* method;
  const char* body;
  const char* content_type;
  const char* uri;
};

const Case kCases[] = {
    {"debit request", "POST",
     R"({"merchantTransactionId":"Flik-20210413133336-d3898","amount":"11.11","currency":"EUR"})",
     "application/json; charset=utf-8", "/api/v3/transaction/my-api-key/debit"},
    {"status GET with empty body", "GET", "", "application/json; charset=utf-8",
     "/api/v3/status/my-api-key/getByUuid/c5b92e902dc9e4b0edea"},
    {"callback with a query string", "POST",
     R"({"result":"OK","uuid":"c5b92e902dc9e4b0edea","transactionType":"DEBIT"})",
     "application/json; charset=utf-8", "/callbacks/bankart?connector=ecommerce&x=1"},
    {"non-ASCII body", "POST", "{\"description\":\"sporočilo kupcu\"}",
     "application/json; charset=utf-8", "/api/v3/transaction/k/debit"},
};

constexpr char kDate[] = "Tue, 28 Apr 2026 15:23:40 GMT";
constexpr char kSecret[] = "s3cr3t-shared";

TEST(Signing, BodyHashesMatchOpenssl) {
  for (const Case& c : kCases) {
    EXPECT_EQ(HexDigest(BodyHash::kSha512, c.body), OpensslHexDigest("sha512", c.body)) << c.name;
    EXPECT_EQ(HexDigest(BodyHash::kMd5, c.body), OpensslHexDigest("md5", c.body)) << c.name;
  }
  // SHA-512 of the empty string, as every GET signs it.
  EXPECT_EQ(HexDigest(BodyHash::kSha512, ""),
            "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47"
            "d0d13c5d85f2b0"
            "ff8318d2877eec2f63b931bd47417a81a538327af927da3e");
}

TEST(Signing, SignatureMatchesAnIndependentHmacOverTheFiveLineMessage) {
  for (const Case& c : kCases) {
    const std::string message = absl::StrCat(c.method, "\n", OpensslHexDigest("sha512", c.body),
                                             "\n", c.content_type, "\n", kDate, "\n", c.uri);
    const SignedParts parts{c.method, c.body, c.content_type, kDate, c.uri};
    EXPECT_EQ(SignatureMessage(parts, BodyHash::kSha512), message) << c.name;
    const std::string expected = OpensslSignature(kSecret, message);
    ASSERT_FALSE(expected.empty()) << "openssl CLI unavailable";
    EXPECT_EQ(Sign(kSecret, parts), expected) << c.name;
    EXPECT_TRUE(VerifySignature(kSecret, parts, expected)) << c.name;
  }
}

TEST(Signing, FixedKnownAnswer) {
  // Computed once with: printf 'GET\n<sha512 of "">\napplication/json; charset=utf-8\n Tue, 28 Apr
  // 2026 15:23:40
  // GMT\n/api/v3/status/k/getByUuid/u' | openssl dgst -sha512 -hmac secret
  // -binary | base64 -w0
  const SignedParts parts{"GET", "", "application/json; charset=utf-8", kDate,
                          "/api/v3/status/k/getByUuid/u"};
  EXPECT_EQ(Sign("secret", parts),
            "ymMzDN794w3Wn5V2suyQ4xValZSMnJvHAUMuXSE97XFslnAKlgAZNumf561iKTpXJ0"
            "OXnPAJbqxkOyhkULDvgg==");
}

// Each legacy form is accepted only when configured: every form accepted is one more a forger
// may try.
TEST(Signing, LegacyMd5BodyHashAndV2MessageAreAcceptedOnlyWhenConfigured) {
  const Case& c = kCases[0];
  const SignedParts parts{c.method, c.body, c.content_type, kDate, c.uri};
  const std::string md5_message = absl::StrCat(c.method, "\n", OpensslHexDigest("md5", c.body),
                                               "\n", c.content_type, "\n", kDate, "\n", c.uri);
  const std::string md5_signature = OpensslSignature(kSecret, md5_message);
  const std::string v2_message = absl::StrCat(c.method, "\n", OpensslHexDigest("sha512", c.body),
                                              "\n", c.content_type, "\n", kDate, "\n\n", c.uri);
  const std::string v2_signature = OpensslSignature(kSecret, v2_message);
  EXPECT_FALSE(VerifySignature(kSecret, parts, md5_signature));
  EXPECT_FALSE(VerifySignature(kSecret, parts, v2_signature));
  EXPECT_TRUE(VerifySignature(kSecret, parts, md5_signature, {.md5_body_hash = true}));
  EXPECT_FALSE(VerifySignature(kSecret, parts, v2_signature, {.md5_body_hash = true}));
  EXPECT_TRUE(VerifySignature(kSecret, parts, v2_signature, {.v2_message = true}));
  EXPECT_FALSE(VerifySignature(kSecret, parts, md5_signature, {.v2_message = true}));
  // The body hashed once for every secret tried gives the same answers.
  const BodyDigests digests = DigestBody(c.body, true);
  EXPECT_TRUE(VerifySignature(kSecret, parts, digests, md5_signature, {true, true}));
  EXPECT_TRUE(VerifySignature(kSecret, parts, digests, v2_signature, {true, true}));
  EXPECT_FALSE(
      VerifySignature(kSecret, parts, DigestBody(c.body, false), md5_signature, {true, true}))
      << "no MD5 digest, no MD5 form";
}

TEST(Signing, AnyChangeToASignedPartBreaksTheSignature) {
  const Case& c = kCases[2];
  const SignedParts parts{c.method, c.body, c.content_type, kDate, c.uri};
  const std::string signature = Sign(kSecret, parts);
  EXPECT_FALSE(VerifySignature("other-secret", parts, signature));
  const std::string tampered_body = std::string(c.body) + " ";
  EXPECT_FALSE(
      VerifySignature(kSecret, {c.method, tampered_body, c.content_type, kDate, c.uri}, signature));
  EXPECT_FALSE(VerifySignature(kSecret, {"PUT", c.body, c.content_type, kDate, c.uri}, signature));
  EXPECT_FALSE(
      VerifySignature(kSecret, {c.method, c.body, "application/json", kDate, c.uri}, signature));
  EXPECT_FALSE(VerifySignature(
      kSecret, {c.method, c.body, c.content_type, "Tue, 28 Apr 2026 15:23:41 GMT", c.uri},
      signature));
  EXPECT_FALSE(VerifySignature(
      kSecret, {c.method, c.body, c.content_type, kDate, "/callbacks/bankart"}, signature));
  EXPECT_FALSE(VerifySignature(kSecret, parts, ""));
  EXPECT_FALSE(VerifySignature(kSecret, parts, signature.substr(1)));
}

namespace known = ::flikpay::testing::known_answers;

// The same published values the stand-in is pinned to (tests/sim_protocol_test.cc): the adapter and
// the stand-in agree because each agrees with the documents, not because they share code.
TEST(Signing, SignsTheSeedsSampleDebitAndAStatusQueryAsTheDocumentsDo) {
  EXPECT_EQ(HexDigest(BodyHash::kSha512, known::kSeedDebit), known::kSeedDebitBodySha512);
  EXPECT_EQ(Sign(known::kSecret, {"POST", known::kSeedDebit, known::kContentType, known::kDate,
                                  known::kSeedDebitUri}),
            known::kSeedDebitSignature);
  EXPECT_EQ(Sign(known::kSecret, {"GET", "", known::kContentType, known::kDate, known::kStatusUri}),
            known::kStatusSignature);
  for (const known::DatedSignature& dated : known::kSeedCallbackSignatures) {
    EXPECT_EQ(Sign(known::kSecret, {"POST", known::kSeedCallback, known::kContentType, dated.date,
                                    known::kSeedCallbackUri}),
              dated.signature)
        << dated.date;
  }
  // The openssl command line agrees on one of them.
  const std::string message =
      absl::StrCat("POST\n", known::kSeedDebitBodySha512, "\n", known::kContentType, "\n",
                   known::kDate, "\n", known::kSeedDebitUri);
  EXPECT_EQ(OpensslSignature(known::kSecret, message), known::kSeedDebitSignature);
}

TEST(Signing, PasswordIsSha1HexTenTimes) {
  std::string expected = "my-password";
  for (int i = 0; i < 10; ++i) expected = OpensslHexDigest("sha1", expected);
  EXPECT_EQ(HashPassword("my-password"), expected);
  EXPECT_EQ(HashPassword("my-password", 1), OpensslHexDigest("sha1", "my-password"));
}

TEST(Signing, HttpDatesRoundTrip) {
  const absl::Time time = absl::FromUnixSeconds(1777389820);  // 2026-04-28 15:23:40 UTC
  EXPECT_EQ(FormatHttpDate(time), kDate);
  EXPECT_EQ(*ParseHttpDate(kDate), time);
  EXPECT_FALSE(ParseHttpDate("2026-04-28T15:23:40Z").ok());
  EXPECT_FALSE(ParseHttpDate("").ok());
}

// Every form a sender may use for the same instant: RFC 7231's preferred and obsolete forms, PHP's
// "D, d M Y H:i:s T" in UTC (seed 001's signing example), and a numeric zone.
TEST(Signing, EveryDateFormOfTheSameInstantParses) {
  const absl::Time time = absl::FromUnixSeconds(1777389820);  // 2026-04-28 15:23:40 UTC
  for (const char* form : {"Tue, 28 Apr 2026 15:23:40 GMT", "Tue, 28 Apr 2026 15:23:40 UTC",
                           "Tue, 28 Apr 2026 15:23:40 +0000", "Tue, 28 Apr 2026 17:23:40 +0200",
                           "Tuesday, 28-Apr-26 15:23:40 GMT", "Tue Apr 28 15:23:40 2026"}) {
    absl::StatusOr<absl::Time> parsed = ParseHttpDate(form);
    ASSERT_TRUE(parsed.ok()) << form << ": " << parsed.status();
    EXPECT_EQ(*parsed, time) << form;
  }
  const absl::Time single_digit_day = absl::FromUnixSeconds(1775459020);  // 2026-04-06 07:03:40
  EXPECT_EQ(*ParseHttpDate("Mon Apr  6 07:03:40 2026"), single_digit_day);
  EXPECT_FALSE(ParseHttpDate("Tue, 28 Apr 2026 15:23:40 CET").ok());
  EXPECT_EQ(FormatHttpDate(time), "Tue, 28 Apr 2026 15:23:40 GMT") << "flikpay sends GMT";
}

TEST(Signing, Base64RoundTrips) {
  EXPECT_EQ(Base64Encode("user:pass"), "dXNlcjpwYXNz");
  EXPECT_EQ(*Base64Decode("dXNlcjpwYXNz"), "user:pass");
  EXPECT_EQ(Base64Encode(""), "");
  EXPECT_FALSE(Base64Decode("not base64!").ok());
}

TEST(Signing, ConstantTimeEqualsComparesWholeStrings) {
  EXPECT_TRUE(ConstantTimeEquals("abc", "abc"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abd"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abcd"));
  EXPECT_TRUE(ConstantTimeEquals("", ""));
}

}  // namespace
}  // namespace flikpay::gateway
