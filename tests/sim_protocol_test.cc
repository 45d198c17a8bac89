// Known answers that pin bankart-sim's own protocol code (gateway/sim/sim_protocol.h) to the
// documents. The stand-in is the witness the adapter is tested against, so its reading is checked
// against values that come from outside both: published test vectors (RFC 4231, FIPS 180, RFC
// 4648, RFC 7231), the seeds' sample values, and signatures computed from the documents' recipe by
// other implementations. IXOPAY publishes no fixed signature example (its documentation offers an
// interactive "Signature Testing Tool" instead), so the signature answers below were computed with
// Python's hashlib/hmac and, independently, with the openssl command line:
//
//   h=$(printf '%s' "$BODY" | openssl dgst -sha512 -r | cut -d' ' -f1)
//   ct='application/json; charset=utf-8'; date='Tue, 28 Apr 2026 15:23:40 GMT'
//   uri=/api/v3/transaction/api-key/debit
//   printf 'POST\n%s\n%s\n%s\n%s' "$h" "$ct" "$date" "$uri" |
//     openssl dgst -sha512 -hmac THE_SHARED_SECRET -binary | base64 -w0
//
// following seed 001, "Signing Requests" (join("\n", [method, hash("sha512", body), contentType,
// timestamp, requestUri]), hash_hmac('sha512', ..., true), base64_encode) in GATEWAY.md's
// five-line JSON v3 form.
#include "gateway/sim/sim_protocol.h"

#include <algorithm>
#include <cstdint>
#include <string>

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/support/bankart_known_answers.h"

namespace flikpay::sim {
namespace {

// The documents' known answers, shared with the adapter's tests (signing_test) so both sides are
// pinned to the same published values.
using ::flikpay::testing::known_answers::kContentType;
using ::flikpay::testing::known_answers::kDate;
using ::flikpay::testing::known_answers::kSecret;
using ::flikpay::testing::known_answers::kSeedCallback;
using ::flikpay::testing::known_answers::kSeedCallbackUri;
using ::flikpay::testing::known_answers::kSeedDebit;

TEST(SimProtocolTest, DigestsMatchPublishedVectors) {
  // FIPS 180-2, SHA-512 of "" and of "abc"; RFC 1321, MD5 of "".
  EXPECT_EQ(BodyDigestHex(BodyDigest::kSha512, ""),
            "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce"
            "47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e");
  EXPECT_EQ(BodyDigestHex(BodyDigest::kSha512, "abc"),
            "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
            "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f");
  EXPECT_EQ(BodyDigestHex(BodyDigest::kMd5, ""), "d41d8cd98f00b204e9800998ecf8427e");
}

TEST(SimProtocolTest, HmacSha512MatchesRfc4231) {
  // RFC 4231, test case 2 (hex 164b7a7bfcf819e2...a38bce737), base64 encoded.
  EXPECT_EQ(
      HmacSha512Base64("Jefe", "what do ya want for nothing?"),
      "Fkt6e/z4GeLjlfvnO1bgo4e9ZCIugx/WECcM1+olBVSXWL91wFqZSm0DT2X48Ob9yuqxo01Ka0tjbgcKOLznNw==");
}

TEST(SimProtocolTest, Base64MatchesRfc4648) {
  const std::pair<const char*, const char*> vectors[] = {{"", ""},
                                                         {"f", "Zg=="},
                                                         {"fo", "Zm8="},
                                                         {"foo", "Zm9v"},
                                                         {"foob", "Zm9vYg=="},
                                                         {"fooba", "Zm9vYmE="},
                                                         {"foobar", "Zm9vYmFy"}};
  for (const auto& [plain, encoded] : vectors) {
    EXPECT_EQ(Base64Encode(plain), encoded);
    EXPECT_EQ(Base64Decode(encoded), std::optional<std::string>(plain)) << encoded;
  }
  for (const char* bad : {"Zg=", "Zg", "Z===", "Zh==", "Zm9v\n", "Zm9v!A==", "=Zm9"}) {
    EXPECT_FALSE(Base64Decode(bad).has_value()) << bad;
  }
}

TEST(SimProtocolTest, PasswordHashesAsTheClientsSendThem) {
  // Seed 001's sample request carries
  // <password>5baa61e4c9b93f3f0682250b6cf8331b7ee68fd8</password>, SHA-1 of "password" in
  // lower-case hex.
  EXPECT_EQ(Sha1HexRounds("password", 1), "5baa61e4c9b93f3f0682250b6cf8331b7ee68fd8");
  // GATEWAY.md: the PHP clients apply it 10 times (computed with Python's hashlib).
  EXPECT_EQ(Sha1HexRounds("password", 10), "7cb6f0ec9f309902d1e5366efec769c369d317bf");
  EXPECT_EQ(Sha1HexRounds("password", 0), "password");
}

TEST(SimProtocolTest, SignsTheSeedsSampleDebit) {
  const SignatureInput input{"POST", kSeedDebit, kContentType, kDate,
                             "/api/v3/transaction/api-key/debit"};
  // Five lines, no trailing newline (GATEWAY.md).
  EXPECT_EQ(SignatureMessage(input),
            "POST\n"
            "0a11c74a45cc1496f104f2bf92425df9941a2cc0e53b7820fe1ddeb67c606121"
            "ff47aea14d54789c15012e789bc8bd08c48cac384dfcc90bc39e07fd0809e099\n"
            "application/json; charset=utf-8\n"
            "Tue, 28 Apr 2026 15:23:40 GMT\n"
            "/api/v3/transaction/api-key/debit");
  const std::string expected = ::flikpay::testing::known_answers::kSeedDebitSignature;
  EXPECT_EQ(Signature(kSecret, input), expected);
  EXPECT_TRUE(SignatureMatches(kSecret, input, expected));
  EXPECT_FALSE(SignatureMatches("another secret", input, expected));
  SignatureInput other_uri = input;
  other_uri.request_uri = "/api/v3/transaction/api-key/refund";
  EXPECT_FALSE(SignatureMatches(kSecret, other_uri, expected));
  SignatureInput other_date = input;
  other_date.date = "Tue, 28 Apr 2026 15:23:41 GMT";
  EXPECT_FALSE(SignatureMatches(kSecret, other_date, expected));
}

// Seed 001's PHP and C# samples sign six lines, an empty "additionals" line before the URI; the
// v3 message of GATEWAY.md has five. The stand-in holds to the five-line form, so an adapter that
// signed the six-line one would be refused here before it is refused by Bankart.
TEST(SimProtocolTest, RefusesTheSixLineFormOfSeed001sSample) {
  const SignatureInput input{"POST", kSeedDebit, kContentType, kDate,
                             "/api/v3/transaction/api-key/debit"};
  const std::string five_lines = SignatureMessage(input);
  const size_t uri = five_lines.rfind('\n');
  const std::string six_lines = five_lines.substr(0, uri) + "\n" + five_lines.substr(uri);
  ASSERT_EQ(std::count(six_lines.begin(), six_lines.end(), '\n'), 5);
  EXPECT_FALSE(SignatureMatches(kSecret, input, HmacSha512Base64(kSecret, six_lines)));
  EXPECT_TRUE(SignatureMatches(kSecret, input, HmacSha512Base64(kSecret, five_lines)));
}

TEST(SimProtocolTest, SignsAStatusQueryOverTheEmptyBody) {
  const SignatureInput input{"GET", "", kContentType, kDate,
                             "/api/v3/status/api-key/getByUuid/c5b92e902dc9e4b0edea"};
  EXPECT_EQ(
      SignatureMessage(input),
      "GET\ncf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d"
      "2"
      "877eec2f63b931bd47417a81a538327af927da3e\napplication/json; charset=utf-8\nTue, 28 Apr 2026 "
      "15:23:40 GMT\n/api/v3/status/api-key/getByUuid/c5b92e902dc9e4b0edea");
  EXPECT_EQ(Signature(kSecret, input), ::flikpay::testing::known_answers::kStatusSignature);
}

TEST(SimProtocolTest, SignsTheSeedsSampleCallbackWithEachDateForm) {
  // The Date is signed exactly as sent, so each form gives its own signature.
  for (const auto& [date, signature] : ::flikpay::testing::known_answers::kSeedCallbackSignatures) {
    EXPECT_EQ(Signature(kSecret, {"POST", kSeedCallback, kContentType, date, kSeedCallbackUri}),
              signature)
        << date;
  }
}

TEST(SimProtocolTest, AcceptsTheLegacyMd5BodyHash) {
  // GATEWAY.md: old clients hash the body with MD5 (deprecated, still accepted).
  const SignatureInput input{"POST", kSeedCallback, kContentType, "Sun, 29 Nov 2026 04:05:06 GMT",
                             kSeedCallbackUri};
  const std::string md5_signed =
      "PErVHeMCB1L3xdqO1PB0wO86J2aA+NrUodi80YTPksgkZ/R1smL1aUfFvaSfk3F+BygFgxLiYOMH1HGwPKSa5Q==";
  EXPECT_EQ(HmacSha512Base64(kSecret, SignatureMessage(input, BodyDigest::kMd5)), md5_signed);
  EXPECT_TRUE(SignatureMatches(kSecret, input, md5_signed));
  // Seed 001's XML form puts an empty "additionals" line before the URI; v3 does not, so a
  // signature over that six-line message is not the JSON API's.
  const std::string six_lines = "POST\n" + BodyDigestHex(BodyDigest::kSha512, kSeedCallback) +
                                "\n" + kContentType + "\nSun, 29 Nov 2026 04:05:06 GMT\n\n" +
                                kSeedCallbackUri;
  EXPECT_FALSE(SignatureMatches(kSecret, input, HmacSha512Base64(kSecret, six_lines)));
}

TEST(SimProtocolTest, RequestUriIsThePathAndQueryOfTheUrl) {
  EXPECT_EQ(RequestUriOf("https://naslov.trgovca.si/callback?transactionId=1234"),
            "/callback?transactionId=1234");
  EXPECT_EQ(RequestUriOf("https://gateway.bankart.si/api/v3/transaction/api-key/debit"),
            "/api/v3/transaction/api-key/debit");
  EXPECT_EQ(RequestUriOf("http://127.0.0.1:8080/callbacks/bankart?connector=ecommerce#top"),
            "/callbacks/bankart?connector=ecommerce");
  EXPECT_EQ(RequestUriOf("http://127.0.0.1:8080"), "/");
  EXPECT_EQ(RequestUriOf("http://127.0.0.1:8080?x=1"), "/?x=1");
}

TEST(SimProtocolTest, FormatsDatesInEachSelectableForm) {
  const absl::Time at = absl::FromUnixSeconds(1795925106);  // 2026-11-29 04:05:06 UTC, a Sunday
  EXPECT_EQ(FormatHttpDate(at), "Sun, 29 Nov 2026 04:05:06 GMT");
  EXPECT_EQ(FormatHttpDate(at, DateForm::kGmt), "Sun, 29 Nov 2026 04:05:06 GMT");
  EXPECT_EQ(FormatHttpDate(at, DateForm::kUtc), "Sun, 29 Nov 2026 04:05:06 UTC");
  EXPECT_EQ(FormatHttpDate(at, DateForm::kNumeric), "Sun, 29 Nov 2026 04:05:06 +0000");
  // RFC 7231's own example; GATEWAY.md's.
  EXPECT_EQ(FormatHttpDate(absl::FromUnixSeconds(784111777)), "Sun, 06 Nov 1994 08:49:37 GMT");
  EXPECT_EQ(FormatHttpDate(absl::FromUnixSeconds(1777389820)), kDate);
  EXPECT_EQ(ParseDateFormName("gmt"), DateForm::kGmt);
  EXPECT_EQ(ParseDateFormName("utc"), DateForm::kUtc);
  EXPECT_EQ(ParseDateFormName("numeric"), DateForm::kNumeric);
  EXPECT_FALSE(ParseDateFormName("GMT").has_value());
}

TEST(SimProtocolTest, ParsesEveryRfc7231FormAndTheUtcAndNumericVariants) {
  const absl::Time rfc_example = absl::FromUnixSeconds(784111777);
  // RFC 7231 section 7.1.1.1's three examples of the same instant.
  EXPECT_EQ(ParseHttpDate("Sun, 06 Nov 1994 08:49:37 GMT"), rfc_example);
  EXPECT_EQ(ParseHttpDate("Sunday, 06-Nov-94 08:49:37 GMT"), rfc_example);
  EXPECT_EQ(ParseHttpDate("Sun Nov  6 08:49:37 1994"), rfc_example);
  EXPECT_EQ(ParseHttpDate("Sun, 06 Nov 1994 08:49:37 UTC"), rfc_example);
  EXPECT_EQ(ParseHttpDate("Sun, 06 Nov 1994 08:49:37 +0000"), rfc_example);
  // A numeric zone other than +0000 names a local time east or west of UTC.
  EXPECT_EQ(ParseHttpDate("Sun, 06 Nov 1994 09:49:37 +0100"), rfc_example);
  EXPECT_EQ(ParseHttpDate("Sun, 06 Nov 1994 03:19:37 -0530"), rfc_example);
  EXPECT_EQ(ParseHttpDate(kDate), absl::FromUnixSeconds(1777389820));
  EXPECT_EQ(ParseHttpDate("Sun Nov 29 04:05:06 2026"), absl::FromUnixSeconds(1795925106));
  // Every form the stand-in writes reads back.
  const absl::Time now = absl::FromUnixSeconds(absl::ToUnixSeconds(absl::Now()));
  for (DateForm form : {DateForm::kGmt, DateForm::kUtc, DateForm::kNumeric}) {
    EXPECT_EQ(ParseHttpDate(FormatHttpDate(now, form)), now);
  }
}

TEST(SimProtocolTest, RefusesDatesOutsideTheGrammar) {
  for (const char* bad : {
           "",
           "Mon, 06 Nov 1994 08:49:37 GMT",    // 6 Nov 1994 was a Sunday
           "Sun, 6 Nov 1994 08:49:37 GMT",     // day is 2DIGIT
           "sun, 06 nov 1994 08:49:37 GMT",    // names are case-sensitive
           "Sun, 06 Nov 1994 08:49:37 CET",    // no zone names but GMT and UTC
           "Sun, 06 Nov 1994 08:49:37 +01",    // a numeric zone has four digits
           "Sun, 06 Nov 1994 08:49:37 +0160",  // with minutes below 60
           "Sun, 06 Nov 1994 08:49:37",        // a zone is required
           "Sun, 06 Nov 1994 24:00:00 GMT",    // no hour 24
           "Sun, 06 Nov 1994 08:49:37 GMT ",   // nothing may follow
           "Tue, 31 Feb 2026 08:49:37 GMT",    // not a date
           "Sun, 06 Nov 94 08:49:37 GMT",      // IMF-fixdate has a 4-digit year
           "Sun, 06-Nov-94 08:49:37 GMT",      // RFC 850 has the long day name
           "Sunday, 06-Nov-94 08:49:37 UTC",   // and GMT only
           "Sun Nov 6 08:49:37 1994",          // asctime pads the day with a space
           "2026-11-29T04:05:06Z",             // ISO 8601 is not an HTTP date
       }) {
    EXPECT_FALSE(ParseHttpDate(bad).has_value()) << bad;
  }
}

TEST(SimProtocolTest, ApiAliasesAreTheNormalisedForms) {
  // Seed 000's sample debit and its "extraData":{"alias":"moj@mail.si"}; the sandbox aliases.
  for (const char* good :
       {"0038641147148", "moj@mail.si", "success.debit@bankart.flik",
        "success.debit_success.refund@bankart.flik", "0038670999999", "Ana.Novak-1@Example.co"}) {
    EXPECT_TRUE(IsNormalisedAlias(good)) << good;
  }
  for (const char* bad :
       {"", "+38641147148", "38641147148", "041147148", "00386 41 147 148", "0038641147",
        "00386411471489", "00385411471489", "moj@mail", "moj@mail.abcdef", "moj@@mail.si",
        "moj mail@mail.si", "@mail.si", "moj@.si", "moj@mail.s1"}) {
    EXPECT_FALSE(IsNormalisedAlias(bad)) << bad;
  }
}

TEST(SimProtocolTest, TypedAliasesAreNormalisedByTheSeedsRules) {
  // Seed 000's checkAndFormatNumber: 00386XXXXXXXX kept, "+386" -> "00386", "386" -> "00386",
  // "0" + 8 digits -> "00386" + the 8 digits, after dropping "(", ")", "-" (and spaces,
  // GATEWAY.md).
  const std::pair<const char*, const char*> cases[] = {
      {"0038641147148", "0038641147148"},
      {"+38641147148", "0038641147148"},
      {"38641147148", "0038641147148"},
      {"041147148", "0038641147148"},
      {"(041) 147-148", "0038641147148"},
      {"+386 70 999 000", "0038670999000"},
      {" 070-999-999 ", "0038670999999"},
      {"moj@mail.si", "moj@mail.si"},
      {"redirect@bankart.flik", "redirect@bankart.flik"},
  };
  for (const auto& [typed, normalised] : cases) {
    EXPECT_EQ(NormaliseTypedAlias(typed), std::optional<std::string>(normalised)) << typed;
  }
  for (const char* bad :
       {"", "41147148", "0411471489", "+38541147148", "+3864114714", "003864114714", "38541147148",
        "0041147148", "041 147 14x", "moj@mail", "moj(at)mail.si", "+386+41147148"}) {
    EXPECT_FALSE(NormaliseTypedAlias(bad).has_value()) << bad;
  }
}

TEST(SimProtocolTest, AmountsUseADotAndAtMostTwoDecimals) {
  // Seed 000 writes "11.11"; seed 001 "9.99" and "4.99".
  const std::pair<const char*, int64_t> good[] = {
      {"11.11", 1111}, {"9.99", 999}, {"4.99", 499}, {"11.1", 1110},
      {"11", 1100},    {"0.05", 5},   {"0.00", 0},   {"92233720368547757.99", 9223372036854775799}};
  for (const auto& [text, cents] : good) {
    EXPECT_EQ(ParseAmount(text), std::optional<int64_t>(cents)) << text;
  }
  for (const char* bad : {"", "1,00", "1.234", "-1.00", "+1.00", "1e2", " 1.00", "1.00 ", ".50",
                          "1.", "1..0", "NaN", "92233720368547758.08", "99999999999999999999"}) {
    EXPECT_FALSE(ParseAmount(bad).has_value()) << bad;
  }
  EXPECT_EQ(FormatAmount(1111), "11.11");
  EXPECT_EQ(FormatAmount(5), "0.05");
  EXPECT_EQ(FormatAmount(250000), "2500.00");
  EXPECT_EQ(FormatAmount(0), "0.00");
  EXPECT_EQ(FormatAmount(-490), "-4.90");
  EXPECT_EQ(FormatAmount(INT64_MAX), "92233720368547758.07");
}

TEST(SimProtocolTest, ConstantTimeEqualsComparesWholeValues) {
  EXPECT_TRUE(ConstantTimeEquals("secret", "secret"));
  EXPECT_FALSE(ConstantTimeEquals("secret", "secreT"));
  EXPECT_FALSE(ConstantTimeEquals("secret", "secret2"));
  EXPECT_FALSE(ConstantTimeEquals("", "x"));
  EXPECT_TRUE(ConstantTimeEquals("", ""));
}

}  // namespace
}  // namespace flikpay::sim
