// Every value read from the gateway is type-checked where it is read: for each field of each answer
// (debit/refund/payout, status query, callback), every wrong type is a gateway error naming the
// field — an UNKNOWN outcome, a failed status query, a 400 callback — and never an exception.
#include "gateway/bankart_answers.h"

#include <functional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gateway/callback_parser.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace flikpay::gateway {
namespace {

using Json = nlohmann::json;

// Values of every JSON type but the right one for `path`. Codes may arrive as integers or as
// digits in a string; an adapterCode (the bank's own code) as an integer or any string.
std::vector<Json> WrongTypesFor(const std::string& path, const Json& right) {
  const bool adapter_code = absl::EndsWith(path, "adapterCode");
  const std::vector<Json> all = {Json("text"), Json(12345),      Json(1.5),
                                 Json(true),   Json::array({1}), Json::object({{"k", "v"}})};
  std::vector<Json> wrong;
  for (const Json& candidate : all) {
    const bool same_type = candidate.type() == right.type() ||
                           (candidate.is_number_integer() && right.is_number_integer());
    const bool also_accepted =
        (right.is_number_integer() || adapter_code) && candidate.is_number_integer();
    const bool text_code = adapter_code && candidate.is_string();
    if (!same_type && !also_accepted && !text_code) wrong.push_back(candidate);
  }
  if (right.is_number_integer() && !adapter_code) wrong.push_back(Json("not a number"));
  return wrong;
}

// Calls `visit(path, json pointer)` for every member and array entry below `node`.
void EachField(const Json& node, const std::string& path, const Json::json_pointer& pointer,
               const std::function<void(const std::string&, const Json::json_pointer&)>& visit) {
  if (node.is_object()) {
    for (const auto& [key, value] : node.items()) {
      const std::string child = path.empty() ? key : absl::StrCat(path, ".", key);
      visit(child, pointer / key);
      EachField(value, child, pointer / key, visit);
    }
  } else if (node.is_array()) {
    for (size_t i = 0; i < node.size(); ++i) {
      const std::string child = absl::StrCat(path, "[", i, "]");
      visit(child, pointer / i);
      EachField(node[i], child, pointer / i, visit);
    }
  }
}

// Feeds `parse` the sample with each field replaced by each wrong type; `error` says what the
// parser made of it (empty when it accepted the answer).
void ExpectEveryWrongTypeNamed(const Json& sample,
                               const std::function<std::string(const std::string&)>& error) {
  ASSERT_EQ(error(sample.dump()), "") << "the sample itself is well-formed";
  int cases = 0;
  EachField(sample, "", Json::json_pointer(),
            [&](const std::string& path, const Json::json_pointer& pointer) {
              for (const Json& wrong : WrongTypesFor(path, sample.at(pointer))) {
                Json broken = sample;
                broken.at(pointer) = wrong;
                const std::string message = error(broken.dump());
                EXPECT_TRUE(absl::StrContains(message, path + ": expected"))
                    << path << " = " << wrong.dump() << " → \"" << message << "\"";
                ++cases;
              }
            });
  EXPECT_GT(cases, 20);
}

// Every field the parsers read, in the spelling API answers use.
const Json kSubmitAnswer = Json::parse(R"({
  "success": true, "uuid": "8c4b2e0a9f", "purchaseId": "20261129-8c4b2e0a9f",
  "returnType": "PENDING", "redirectUrl": "https://gateway.example/redirect/1",
  "extraData": {"adapterReferenceId": "PGTASIM7", "expiresDateTime": "2026-11-29 10:00:00"},
  "errors": [{"errorCode": 2007, "errorMessage": "Alias does not exist",
              "adapterCode": "03", "adapterMessage": "unknown alias"}],
  "errorCode": 2007, "errorMessage": "Alias does not exist"
})");

// The other spelling (status answers and callbacks), and the status answer's own fields.
const Json kStatusAnswer = Json::parse(R"({
  "success": true, "transactionStatus": "SUCCESS", "uuid": "8c4b2e0a9f",
  "merchantTransactionId": "order-1", "purchaseId": "20261129-8c4b2e0a9f",
  "transactionType": "DEBIT", "amount": "9.99", "currency": "EUR", "referenceUuid": "1a2b",
  "extraData": {"adapterReferenceId": "PGTASIM7"},
  "errors": [{"code": 2002, "message": "cancelled", "adapterCode": 5, "adapterMessage": "no"}],
  "code": 2002, "message": "cancelled"
})");

const Json kCallback = Json::parse(R"({
  "result": "OK", "uuid": "8c4b2e0a9f", "merchantTransactionId": "order-1",
  "purchaseId": "20261129-8c4b2e0a9f", "transactionType": "DEBIT", "paymentMethod": "Flik",
  "amount": "9.99", "currency": "EUR", "referenceUuid": "1a2b", "merchantMetaData": "m",
  "extraData": {"adapterReferenceId": "PGTASIM7", "authCode": "123456"},
  "returnData": {"binBrand": "VISA", "type": "visa", "firstSixDigits": "411111",
                 "lastFourDigits": "1111", "cardHolder": "A B", "expiryMonth": "01",
                 "expiryYear": "2030"},
  "errors": [{"code": 2002, "message": "cancelled", "adapterCode": "05",
              "adapterMessage": "declined"}],
  "code": 2002, "message": "cancelled"
})");

TEST(BankartAnswersTest, EveryWrongTypeInASubmitAnswerIsAnUnknownOutcomeNamingTheField) {
  ExpectEveryWrongTypeNamed(kSubmitAnswer, [](const std::string& body) -> std::string {
    const SubmitOutcome outcome = ParseSubmitAnswer(200, body);
    if (outcome.kind != SubmitOutcome::Kind::kUnknown) return "";
    return outcome.unknown_reason;
  });
}

TEST(BankartAnswersTest, EveryWrongTypeInAStatusAnswerIsAnErrorNamingTheField) {
  ExpectEveryWrongTypeNamed(kStatusAnswer, [](const std::string& body) -> std::string {
    absl::StatusOr<StatusReport> report = ParseStatusAnswer(body);
    if (report.ok()) return "";
    EXPECT_EQ(report.status().code(), absl::StatusCode::kInternal);
    return std::string(report.status().message());
  });
}

TEST(BankartAnswersTest, EveryWrongTypeInACallbackIsABadRequestNamingTheField) {
  ExpectEveryWrongTypeNamed(kCallback, [](const std::string& body) -> std::string {
    absl::StatusOr<CallbackEvent> event = ParseCallbackBody(body);
    if (event.ok()) return "";
    EXPECT_EQ(event.status().code(), absl::StatusCode::kInvalidArgument);
    return std::string(event.status().message());
  });
}

TEST(BankartAnswersTest, TheAnswerThatOnceKilledTheServerIsAnUnknownOutcome) {
  const SubmitOutcome outcome =
      ParseSubmitAnswer(200, R"({"success": "yes", "uuid": 12345, "returnType": ["PENDING"]})");
  EXPECT_EQ(outcome.kind, SubmitOutcome::Kind::kUnknown);
  EXPECT_TRUE(absl::StrContains(outcome.unknown_reason, "expected")) << outcome.unknown_reason;
}

TEST(BankartAnswersTest, AWrongTypeInARefusalIsUnknownToo) {
  // A 4xx whose body cannot be read as Bankart's error list says nothing certain either.
  const SubmitOutcome outcome =
      ParseSubmitAnswer(422, R"({"success": false, "errorCode": "x", "uuid": ["u1"]})");
  EXPECT_EQ(outcome.kind, SubmitOutcome::Kind::kUnknown);
  EXPECT_TRUE(absl::StrContains(outcome.unknown_reason, "expected")) << outcome.unknown_reason;
}

TEST(BankartAnswersTest, CodesArriveAsIntegersOrDigits) {
  const SubmitOutcome outcome = ParseSubmitAnswer(
      400, R"({"success": false, "errors": [{"errorCode": "1009", "adapterCode": 200}]})");
  ASSERT_EQ(outcome.kind, SubmitOutcome::Kind::kDeclined);
  ASSERT_EQ(outcome.errors.size(), 1u);
  EXPECT_EQ(outcome.errors[0].code, 1009);
  EXPECT_EQ(outcome.errors[0].adapter_code, "200");
  EXPECT_TRUE(outcome.retryable);
}

TEST(BankartAnswersTest, AbsentAndNullFieldsAreNotTypeErrors) {
  const SubmitOutcome outcome = ParseSubmitAnswer(
      200, R"({"success": true, "uuid": "u1", "returnType": "PENDING", "redirectUrl": null})");
  EXPECT_EQ(outcome.kind, SubmitOutcome::Kind::kAccepted);
  absl::StatusOr<StatusReport> not_found =
      ParseStatusAnswer(R"({"success": false, "errors": [{"code": 8001, "message": "none"}]})");
  ASSERT_TRUE(not_found.ok());
  EXPECT_FALSE(not_found->found);
}

}  // namespace
}  // namespace flikpay::gateway
