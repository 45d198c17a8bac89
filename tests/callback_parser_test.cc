#include "gateway/callback_parser.h"

#include "gtest/gtest.h"

namespace flikpay::gateway {
namespace {

// Seed 000's sample as printed, leading spaces in the ids included.
TEST(ParseCallbackBody, ReadsTheFlikJsonCallbackOfSeed000) {
  absl::StatusOr<CallbackEvent> event = ParseCallbackBody(R"({
    "result": "OK",
    "uuid": " c5b92e902dc9e4b0edea",
    "merchantTransactionId": " Flik-20210413133336-d3898",
    "purchaseId": "20210413-c5b92e902dc9e4b0edea",
    "transactionType": "DEBIT",
    "paymentMethod": "FlikPayments",
    "amount": "11.11",
    "currency": "EUR",
    "extraData": {"adapterReferenceId": " PGTASI20IT5100410416121751elbN05"}
  })");
  ASSERT_TRUE(event.ok()) << event.status();
  EXPECT_EQ(event->result, CallbackEvent::Result::kOk);
  EXPECT_EQ(event->uuid, "c5b92e902dc9e4b0edea");
  EXPECT_EQ(event->merchant_transaction_id, "Flik-20210413133336-d3898");
  EXPECT_EQ(event->purchase_id, "20210413-c5b92e902dc9e4b0edea");
  EXPECT_EQ(event->type, TransactionType::kDebit);
  EXPECT_EQ(event->payment_method, "FlikPayments");
  EXPECT_EQ(event->amount_minor, 1111);
  EXPECT_EQ(event->currency, "EUR");
  EXPECT_EQ(event->adapter_reference_id, "PGTASI20IT5100410416121751elbN05");
  EXPECT_TRUE(event->errors.empty());
  EXPECT_FALSE(event->card.has_value());
}

TEST(ParseCallbackBody, ReadsErrorsInEitherSpellingAndAtTopLevel) {
  absl::StatusOr<CallbackEvent> listed = ParseCallbackBody(R"({"result":"ERROR",
    "uuid":"u1","merchantTransactionId":"m1","transactionType":"debit","amount":"1.00",
    "currency":"EUR","errors":[{"message":"Alias does not exist","code":"2007",
    "adapterMessage":"Did not exist","adapterCode":"03"}]})");
  ASSERT_TRUE(listed.ok()) << listed.status();
  EXPECT_EQ(listed->type,
            TransactionType::kDebit);  // lower case seen in the wild
  ASSERT_EQ(listed->errors.size(), 1u);
  EXPECT_EQ(listed->errors[0], (GatewayError{2007, "Alias does not exist", "03", "Did not exist"}));

  absl::StatusOr<CallbackEvent> top_level = ParseCallbackBody(R"({"result":"ERROR",
    "uuid":"u2","transactionType":"REFUND","referenceUuid":"u1","code":2003,
    "message":"Declined"})");
  ASSERT_TRUE(top_level.ok()) << top_level.status();
  EXPECT_EQ(top_level->type, TransactionType::kRefund);
  EXPECT_EQ(top_level->reference_uuid, "u1");
  ASSERT_EQ(top_level->errors.size(), 1u);
  EXPECT_EQ(top_level->errors[0].code, 2003);
  EXPECT_EQ(top_level->errors[0].message, "Declined");
  EXPECT_FALSE(top_level->amount_minor.has_value());
}

TEST(ParseCallbackBody, ReadsCardDataOfTheJsonV2CallbackOfSeed003) {
  absl::StatusOr<CallbackEvent> event = ParseCallbackBody(
      R"({"result":"OK","uuid":"805b6ecda12xxxxxxx","merchantTransactionId":"YOUR_TRANSACTION_ID","purchaseId":"20201218-805b6ecda12e7552cd61","transactionType":"DEBIT","paymentMethod":"Creditcard","amount":"4.99","currency":"EUR","merchantMetaData":"YOUR_OPTIONAL_META_DATA","customer":{"identification":"1111","firstName":"John","lastName":"Smith","emailVerified":"false","ipAddress":"123.123.123.123"},"returnData":{"_TYPE":"cardData","type":"mastercard","cardHolder":"John Smith","expiryMonth":"01","expiryYear":"2020","firstSixDigits":"411111","lastFourDigits":"1111","fingerprint":"ABCXZY...","threeDSecure":"MANDATORY","eci":"02","binBrand":"MASTERCARD","binBank":"Issuing Bank","binType":"DEBIT","binLevel":"STANDARD","binCountry":"US"},"extraData":{"authCode":"XXXXXX99"}})");
  ASSERT_TRUE(event.ok()) << event.status();
  ASSERT_TRUE(event->card.has_value());
  EXPECT_EQ(event->card->brand, "MASTERCARD");
  EXPECT_EQ(event->card->last_four_digits, "1111");
  EXPECT_EQ(event->card->first_six_digits, "411111");
  EXPECT_EQ(event->card->card_holder, "John Smith");
  EXPECT_EQ(event->card->auth_code,
            "XXXXXX");  // only the first 6 characters count
  EXPECT_EQ(event->merchant_metadata, "YOUR_OPTIONAL_META_DATA");
  EXPECT_EQ(event->amount_minor, 499);
}

TEST(ParseCallbackBody, ReadsTheXmlV2CallbackOfSeed001) {
  absl::StatusOr<CallbackEvent> event = ParseCallbackBody(R"(<?xml version="1.0" encoding="utf-8"?>
<callback xmlns="https://gateway.bankart.si/Schema/V2/Callback">
  <result>ERROR</result>
  <referenceId>edcba123456789012345</referenceId>
  <transactionId>YOUR_TRANSACTION_ID</transactionId>
  <purchaseId>20170120-edcba123456789012345</purchaseId>
  <transactionType>DEBIT</transactionType>
  <merchantMetaData>YOUR_OPTIONAL_META_DATA</merchantMetaData>
  <amount>4.99</amount>
  <currency>USD</currency>
  <errors>
    <error>
      <message>Card invalid</message>
      <code>2008</code>
      <adapterMessage>Invalid Card Entered</adapterMessage>
      <adapterCode>100.000.100</adapterCode>
    </error>
  </errors>
  <returnData type="creditcardData">
    <creditcardData>
      <type>visa</type>
      <cardHolder>Max Mustermann</cardHolder>
      <expiryMonth>10</expiryMonth>
      <expiryYear>2020</expiryYear>
      <firstSixDigits>411111</firstSixDigits>
      <lastFourDigits>1111</lastFourDigits>
    </creditcardData>
  </returnData>
</callback>)");
  ASSERT_TRUE(event.ok()) << event.status();
  EXPECT_EQ(event->result, CallbackEvent::Result::kError);
  EXPECT_EQ(event->uuid, "edcba123456789012345");
  EXPECT_EQ(event->merchant_transaction_id, "YOUR_TRANSACTION_ID");
  EXPECT_EQ(event->amount_minor, 499);
  EXPECT_EQ(event->currency, "USD");
  ASSERT_EQ(event->errors.size(), 1u);
  EXPECT_EQ(event->errors[0],
            (GatewayError{2008, "Card invalid", "100.000.100", "Invalid Card Entered"}));
  ASSERT_TRUE(event->card.has_value());
  EXPECT_EQ(event->card->brand, "VISA");
  EXPECT_EQ(event->card->expiry_month, "10");
}

TEST(ParseCallbackBody, ReadsTheXmlV1CallbackOfSeed003WithSpacesAndAuthCode) {
  absl::StatusOr<CallbackEvent> event = ParseCallbackBody(R"(<?xml version="1.0" encoding="utf-8"?>
<callback xmlns="http://asxgw.com/Schema/V2/Callback">
 <result>OK</result>
 <referenceId>edcba123456789012345</referenceId>
 <transactionId>YOUR_TRANSACTION_ID </transactionId>
 <transactionType>DEBIT</transactionType>
 <amount> 4.99 </amount>
 <currency>USD</currency>
 <extraData key="authCode">A1B2C3</extraData>
 <extraData key="adapterReferenceId">REF-1</extraData>
 <returnData type="creditcardData"><creditcardData><binBrand>VISA</binBrand>
 <lastFourDigits>1111</lastFourDigits></creditcardData></returnData>
</callback>)");
  ASSERT_TRUE(event.ok()) << event.status();
  EXPECT_EQ(event->result, CallbackEvent::Result::kOk);
  EXPECT_EQ(event->merchant_transaction_id, "YOUR_TRANSACTION_ID");
  EXPECT_EQ(event->amount_minor, 499);
  EXPECT_EQ(event->adapter_reference_id, "REF-1");
  EXPECT_EQ(event->card->auth_code, "A1B2C3");
}

TEST(ParseCallbackBody, RefusesBodiesThatAreNotCallbacks) {
  for (const char* bad : {
           "", "not json", "[1,2]",
           R"({"uuid":"u","transactionType":"DEBIT"})",                   // no result
           R"({"result":"MAYBE","uuid":"u","transactionType":"DEBIT"})",  // bad
                                                                          // result
           R"({"result":"OK","transactionType":"DEBIT"})",                // no ids
           R"({"result":"OK","uuid":"u"})",                               // no type
           R"({"result":"OK","uuid":"u","transactionType":"DEBIT","amount":"1.234"})",
           "<callback><result>OK</result>",       // broken XML
           "<other><result>OK</result></other>",  // wrong root
       }) {
    absl::StatusOr<CallbackEvent> event = ParseCallbackBody(bad);
    EXPECT_FALSE(event.ok()) << bad;
    EXPECT_EQ(event.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

}  // namespace
}  // namespace flikpay::gateway
