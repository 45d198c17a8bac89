// Known answers from Bankart's documents, shared by the adapter's tests and the stand-in's, so both
// independent implementations are pinned to the same published values rather than to each other.
// Inputs: seed 001's placeholder secret ("hash_hmac('sha512', $signatureMessage,
// 'THE_SHARED_SECRET', true)"), seed 000's sample debit and callback, GATEWAY.md's Content-Type and
// Date. The signatures were computed with Python's hashlib and hmac (checked again by the openssl
// command-line tool in signing_test) over the five-line message
// of seed 001 / GATEWAY.md (method, SHA-512 hex of the body, Content-Type, Date, request URI).
#ifndef FLIKPAY_TESTS_SUPPORT_BANKART_KNOWN_ANSWERS_H_
#define FLIKPAY_TESTS_SUPPORT_BANKART_KNOWN_ANSWERS_H_

namespace flikpay::testing::known_answers {

inline constexpr char kSecret[] = "THE_SHARED_SECRET";
inline constexpr char kContentType[] = "application/json; charset=utf-8";
inline constexpr char kDate[] = "Tue, 28 Apr 2026 15:23:40 GMT";

// Seed 000's sample debit ("Primer vsebine klica na gateway") as compact JSON (the seed's copy has
// a trailing comma after the alias, which no JSON encoder writes), and its signature.
inline constexpr char kSeedDebit[] =
    R"({"merchantTransactionId":"Flik-20210413133336-d3898","amount":"11.11","currency":"EUR",)"
    R"("successUrl":"https://naslov.trgovca.si/success","errorUrl":"https://naslov.trgovca.si/error",)"
    R"("cancelUrl":"https://naslov.trgovca.si/cancel","callbackUrl":"https://naslov.trgovca.si/callback",)"
    R"("description":"sporočilo kupcu","extraData":{"alias":"0038641147148"},)"
    R"("customer":{"ipAddress":"46.123.232.123"},"language":"sl"})";
inline constexpr char kSeedDebitUri[] = "/api/v3/transaction/api-key/debit";
inline constexpr char kSeedDebitBodySha512[] =
    "0a11c74a45cc1496f104f2bf92425df9941a2cc0e53b7820fe1ddeb67c606121"
    "ff47aea14d54789c15012e789bc8bd08c48cac384dfcc90bc39e07fd0809e099";
inline constexpr char kSeedDebitSignature[] =
    "UOTYRGzYhVHAKTnTVTvWE6X2gKyNB46rdAuxKe3EUVFLahfFnuA+GXBoYkFMzRafSHqKKhtf3wrXPPDWXAm+nQ==";

// A status query: GET over the empty body.
inline constexpr char kStatusUri[] = "/api/v3/status/api-key/getByUuid/c5b92e902dc9e4b0edea";
inline constexpr char kStatusSignature[] =
    "bCzrcy8KFH9FZ0GZuhRu8zeYhLQrM1CZPyH4hr+3IDNqQ8kNdqxUWEy6Zi9QIPElvC/iawHh0+u2o0tZ51K3IA==";

// Seed 000's sample callback ("Rezultat plačila"), leading spaces in the ids as printed there, to
// seed 000's callback URL example, signed with the Date in each form a sender uses.
inline constexpr char kSeedCallback[] =
    R"({"result":"OK","uuid":" c5b92e902dc9e4b0edea","merchantTransactionId":" Flik-20210413133336-d3898",)"
    R"("purchaseId":"20210413-c5b92e902dc9e4b0edea","transactionType":"DEBIT","paymentMethod":"FlikPayments",)"
    R"("amount":"11.11","currency":"EUR","extraData":{"adapterReferenceId":" PGTASI20IT5100410416121751elbN05"}})";
inline constexpr char kSeedCallbackUri[] = "/callback?transactionId=1234";
struct DatedSignature {
  const char* date;
  const char* signature;
};
inline constexpr DatedSignature kSeedCallbackSignatures[] = {
    {"Sun, 29 Nov 2026 04:05:06 GMT",
     "g4yedcf4Bal347dpANyjdR0/W4C9DWu6v0vOTr1pMdKBHqhYnho4AnzCS3PzEYAtldL6vF31SGvyZt3Y8EdMDQ=="},
    {"Sun, 29 Nov 2026 04:05:06 UTC",
     "1ppGsAmomaa7xyg36BztBRUs3OboAs5R4BC81euQgpQ2aiCBC3zzKPheTzcJhGGwwPCFWdg7ZPlZ0xRf6GgoPQ=="},
    {"Sun, 29 Nov 2026 04:05:06 +0000",
     "V2bmaCAj/EgvIhHMx0ueclQTtROQEAjFG4sUkxZU2jftaGaL64xp5u2YKDYgL06yKxVfheOq/9/tuYhFCLFmWA=="},
};

}  // namespace flikpay::testing::known_answers

#endif  // FLIKPAY_TESTS_SUPPORT_BANKART_KNOWN_ANSWERS_H_
