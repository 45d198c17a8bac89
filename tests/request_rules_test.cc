// Each request field is checked by one rule, and the service (for the caller) and the Bankart
// adapter (before anything leaves the process) answer a bad field with the same message.
#include "core/request_rules.h"

#include <functional>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/api_rules.h"
#include "gateway/bankart_gateway.h"
#include "gtest/gtest.h"
#include "server/payment_service.h"
#include "tests/support/fake_gateway.h"
#include "tests/support/in_memory_store.h"

namespace flikpay {
namespace {

TEST(RequestRulesTest, EachRuleNamesItsField) {
  EXPECT_TRUE(rules::MerchantTransactionId("id", "order-1_a.B").ok());
  EXPECT_EQ(rules::MerchantTransactionId("id", "").message(), "id: is required");
  EXPECT_EQ(rules::MerchantTransactionId("id", std::string(51, 'a')).message(),
            "id: must be at most 50 characters");
  EXPECT_FALSE(rules::MerchantTransactionId("id", "order/1").ok());
  EXPECT_FALSE(rules::MerchantTransactionId("id", "order 1").ok());
  EXPECT_TRUE(rules::Amount(1).ok());
  EXPECT_FALSE(rules::Amount(0).ok());
  EXPECT_FALSE(rules::Amount(-1).ok());
  EXPECT_TRUE(rules::Currency("").ok());
  EXPECT_TRUE(rules::Currency("EUR").ok());
  EXPECT_FALSE(rules::Currency("eur").ok());
  EXPECT_TRUE(rules::MaxLength("description", std::string(255, 'x'), 255).ok());
  EXPECT_EQ(rules::MaxLength("description", std::string(256, 'x'), 255).message(),
            "description: must be at most 255 characters");
  EXPECT_TRUE(rules::Url("success_url", "").ok());
  EXPECT_TRUE(rules::Url("success_url", "https://shop.example/ok?a=1").ok());
  for (const char* bad :
       {"ftp://x", "javascript:alert(1)", "https://a b", "https://x/\"", "shop.example"}) {
    EXPECT_FALSE(rules::Url("success_url", bad).ok()) << bad;
  }
  EXPECT_TRUE(rules::PurposeCode("", false).ok());
  EXPECT_TRUE(rules::PurposeCode("WEBI", true).ok());
  EXPECT_EQ(rules::PurposeCode("WEBI", false).message(),
            "purpose_code: needs structured_reference");
  EXPECT_FALSE(rules::PurposeCode("webi", true).ok());
  EXPECT_FALSE(rules::PurposeCode("WEB", true).ok());
  EXPECT_TRUE(rules::AliasPresence(/*ecommerce=*/true, /*has_alias=*/false).ok());
  EXPECT_FALSE(rules::AliasPresence(false, false).ok());
  for (const absl::Status& s : {rules::MerchantTransactionId("x", ""), rules::Amount(0),
                                rules::Currency("USD"), rules::Url("x", "bad")}) {
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  }
}

TEST(RequestRulesTest, LookupsAddressesAndRefundIds) {
  EXPECT_TRUE(rules::PayerIp("").ok());
  EXPECT_TRUE(rules::PayerIp("46.123.232.123").ok());
  EXPECT_TRUE(rules::PayerIp("2001:db8::1").ok());
  EXPECT_EQ(rules::PayerIp("300.1.1.1").message(), "payer_ip: must be an IPv4 or IPv6 address");
  EXPECT_FALSE(rules::PayerIp("10.0.0.1 ").ok());
  EXPECT_TRUE(rules::LookupId("uuid", std::string(64, 'a')).ok());
  EXPECT_EQ(rules::LookupId("uuid", std::string(65, 'a')).message(),
            "uuid: must be at most 64 characters");
  EXPECT_FALSE(rules::LookupId("uuid", "../admin").ok());
  EXPECT_EQ(rules::RefundIds("r-1", "r-1").message(),
            "merchant_transaction_id: must differ from the original's");
  EXPECT_TRUE(rules::RefundIds("r-1", "order-1").ok());
}

// Text a payer sees: any language, but nothing that hides or reorders what the payer reads.
TEST(RequestRulesTest, ShownTextIsUtf8WithoutControlsOrBidiOverrides) {
  EXPECT_TRUE(rules::ShownText("description", "Račun 7 — hvala! 😀 שלום", 255).ok());
  EXPECT_TRUE(rules::ShownText("description", "", 255).ok());
  const std::pair<const char*, const char*> refused[] = {
      {"pay\x01", "must not contain control characters"},
      {"line\nbreak", "must not contain control characters"},
      {"del\x7f", "must not contain control characters"},
      {"c1 \xc2\x85", "must not contain control characters"},
      {"100 \xe2\x80\xae RUE 001", "must not contain bidirectional text controls"},
      {"\xe2\x81\xa6isolate\xe2\x81\xa9", "must not contain bidirectional text controls"},
      {"mark \xe2\x80\x8f", "must not contain bidirectional text controls"},
      {"\xff", "must be UTF-8 text"},
      {"overlong \xc0\xaf", "must be UTF-8 text"},
      {"overlong \xe0\x80\xaf", "must be UTF-8 text"},
      {"surrogate \xed\xa0\x80", "must be UTF-8 text"},
      {"cut \xe2\x80", "must be UTF-8 text"},
      {"beyond \xf4\x90\x80\x80", "must be UTF-8 text"},
  };
  for (const auto& [text, rule] : refused) {
    EXPECT_EQ(rules::ShownText("description", text, 255).message(),
              absl::StrCat("description: ", rule))
        << absl::CHexEscape(text);
  }
  EXPECT_EQ(rules::ShownText("description", std::string(256, 'x'), 255).message(),
            "description: must be at most 255 characters");
}

TEST(ApiRulesTest, KindLookupAndStreamFilter) {
  EXPECT_TRUE(rules::Kind(v1::RTP_KIND_IN_PERSON).ok());
  EXPECT_TRUE(absl::StartsWith(rules::Kind(v1::RTP_KIND_UNSPECIFIED).message(), "kind: "));
  EXPECT_FALSE(rules::Kind(static_cast<v1::RtpKind>(42)).ok());

  v1::GetStatusRequest get;
  EXPECT_TRUE(absl::StartsWith(rules::Lookup(get).status().message(), "id: "));
  get.set_gateway_uuid("abc-123");
  ASSERT_TRUE(rules::Lookup(get).ok());
  EXPECT_TRUE(rules::Lookup(get)->by_gateway_uuid);
  EXPECT_EQ(rules::Lookup(get)->id, "abc-123");
  get.set_merchant_transaction_id("");
  EXPECT_EQ(rules::Lookup(get).status().message(), "merchant_transaction_id: is required");
  get.set_merchant_transaction_id("order/1");
  EXPECT_FALSE(rules::Lookup(get).ok());

  v1::StreamStatusRequest stream;
  EXPECT_TRUE(rules::StreamFilter(stream, 1000).ok());
  stream.add_types(v1::TRANSACTION_TYPE_REFUND);
  EXPECT_TRUE(rules::StreamFilter(stream, 1000).ok());
  stream.add_types(v1::TRANSACTION_TYPE_UNSPECIFIED);
  EXPECT_TRUE(absl::StartsWith(rules::StreamFilter(stream, 1000).message(), "types: "));
  stream.clear_types();
  stream.set_resume_after("not-a-cursor");
  EXPECT_TRUE(absl::StartsWith(rules::StreamFilter(stream, 1000).message(), "resume_after: "));
  stream.clear_resume_after();
  stream.add_merchant_transaction_ids("order 1");
  EXPECT_TRUE(
      absl::StartsWith(rules::StreamFilter(stream, 1000).message(), "merchant_transaction_ids: "));
  stream.clear_merchant_transaction_ids();
  for (int i = 0; i < 3; ++i) stream.add_merchant_transaction_ids(absl::StrCat("order-", i));
  EXPECT_TRUE(rules::StreamFilter(stream, 3).ok());
  stream.add_merchant_transaction_ids("order-3");
  EXPECT_EQ(rules::StreamFilter(stream, 3).message(),
            "merchant_transaction_ids: at most 3 distinct ids per stream, not 4; open several "
            "streams, or filter by type");
  // Repeats of an id are one id.
  stream.clear_merchant_transaction_ids();
  for (int i = 0; i < 10; ++i) stream.add_merchant_transaction_ids("order-0");
  EXPECT_TRUE(rules::StreamFilter(stream, 3).ok());
}

// One bad field, as the caller sends it and as the service hands it on.
struct BadField {
  const char* field;
  std::function<void(v1::CreateRtpRequest&)> in_api;
  std::function<void(gateway::DebitRequest&)> in_adapter;
};

// The service (over a fake gateway) and the real adapter (whose gateway is never reached: every
// request here is refused before it is sent), side by side.
class ServiceAndAdapterTest : public ::testing::Test {
 protected:
  static gateway::BankartConfig AdapterConfig() {
    gateway::BankartConfig config;
    config.base_url = "http://127.0.0.1:9/api/v3";  // never reached
    for (gateway::Connector connector : gateway::kAllConnectors) {
      config.connectors[connector] = {"key", "secret"};
    }
    return config;
  }

  gateway::BankartGateway adapter_{AdapterConfig()};
  testing::FakeGateway fake_;
  testing::InMemoryStore store_;
  server::Metrics metrics_;
  server::PaymentService service_{fake_, store_, metrics_,
                                  server::ServiceConfig{"https://pay.example/callbacks/bankart"}};
  const server::Caller shop_ = server::Caller::Of(
      "shop", std::make_shared<const core::CallerPolicy>(core::DevPolicy("shop")));
};

TEST_F(ServiceAndAdapterTest, TheServiceAndTheAdapterAnswerABadFieldAlike) {
  const std::string long_text(256, 'x');
  const BadField cases[] = {
      {"merchant_transaction_id", [](auto& r) { r.set_merchant_transaction_id("order 1"); },
       [](auto& r) { r.merchant_transaction_id = "order 1"; }},
      {"amount_minor", [](auto& r) { r.set_amount_minor(0); }, [](auto& r) { r.amount_minor = 0; }},
      {"currency", [](auto& r) { r.set_currency("USD"); }, [](auto& r) { r.currency = "USD"; }},
      {"description", [&](auto& r) { r.set_description(long_text); },
       [&](auto& r) { r.description = long_text; }},
      {"merchant_metadata", [&](auto& r) { r.set_merchant_metadata(long_text); },
       [&](auto& r) { r.merchant_metadata = long_text; }},
      {"purpose_code", [](auto& r) { r.set_purpose_code("WEBI"); },
       [](auto& r) { r.purpose_code = "WEBI"; }},
      {"success_url", [](auto& r) { r.set_success_url("ftp://shop"); },
       [](auto& r) { r.success_url = "ftp://shop"; }},
      {"alias", [](auto& r) { r.clear_alias(); }, [](auto& r) { r.alias.clear(); }},
      {"alias", [](auto& r) { r.set_alias("070 999"); }, [](auto& r) { r.alias = "070 999"; }},
      {"payer_ip", [](auto& r) { r.set_payer_ip("300.1.1.1"); },
       [](auto& r) { r.payer_ip = "300.1.1.1"; }},
      {"merchant_mid", [&](auto& r) { r.set_merchant_mid(long_text); },
       [&](auto& r) { r.merchant_mid = long_text; }},
      {"error_url", [](auto& r) { r.set_error_url("https://a b"); },
       [](auto& r) { r.error_url = "https://a b"; }},
  };
  for (const BadField& c : cases) {
    v1::CreateRtpRequest request;
    request.set_merchant_transaction_id("order-1");
    request.set_amount_minor(500);
    request.set_kind(v1::RTP_KIND_OUT_OF_BAND);
    request.set_alias("0038670999000");
    c.in_api(request);
    const absl::Status from_service =
        service_.CreateRtp(shop_, request, absl::Now() + absl::Seconds(5)).status();

    gateway::DebitRequest debit;
    debit.kind = gateway::RtpKind::kOutOfBand;
    debit.merchant_transaction_id = "order-1";
    debit.amount_minor = 500;
    debit.alias = "0038670999000";
    debit.callback_url = "https://pay.example/callbacks/bankart";
    c.in_adapter(debit);
    const absl::Status from_adapter =
        adapter_.Debit(debit, absl::Now() + absl::Seconds(5)).status();

    EXPECT_EQ(from_service.code(), absl::StatusCode::kInvalidArgument) << c.field;
    EXPECT_TRUE(absl::StartsWith(from_service.message(), c.field)) << from_service.message();
    EXPECT_EQ(from_adapter, from_service) << c.field;
  }
  EXPECT_TRUE(fake_.debits().empty());
}

// Seed 000's flows need fields the others do not: the three return URLs when Bankart redirects the
// payer, the payer's IP address for E-commerce, the description when it is a structured reference.
TEST_F(ServiceAndAdapterTest, EachFlowRequiresWhatTheSeedSaysItNeeds) {
  struct Flow {
    const char* missing;  // "" = complete
    std::function<void(v1::CreateRtpRequest&)> shape;
  };
  const Flow flows[] = {
      {"success_url", [](auto& r) { r.clear_success_url(); }},
      {"cancel_url", [](auto& r) { r.clear_cancel_url(); }},
      {"error_url", [](auto& r) { r.clear_error_url(); }},
      {"payer_ip", [](auto& r) { r.clear_payer_ip(); }},
      {"success_url",
       [](auto& r) {  // an alias alone does not switch the redirect off
         r.set_alias("success.debit@bankart.flik");
         r.clear_success_url();
       }},
      {"",
       [](auto& r) {  // with the waiting screen off, nothing redirects: no URLs needed
         r.set_alias("success.debit@bankart.flik");
         r.set_enable_waiting_screen(false);
         r.clear_success_url();
         r.clear_cancel_url();
         r.clear_error_url();
       }},
      {"success_url",
       [](auto& r) {  // without an alias the payer must type it on Bankart's page
         r.set_enable_waiting_screen(false);
         r.clear_success_url();
       }},
      {"",
       [](auto& r) {  // In-Person: no redirect and no shopper's IP address
         r.set_kind(v1::RTP_KIND_IN_PERSON);
         r.set_alias("success.debit@bankart.flik");
         r.clear_success_url();
         r.clear_payer_ip();
       }},
      {"description",
       [](auto& r) {
         r.set_structured_reference(true);
         r.clear_description();
       }},
  };
  int n = 0;
  for (const Flow& flow : flows) {
    v1::CreateRtpRequest request;
    request.set_merchant_transaction_id(absl::StrCat("flow-", ++n));
    request.set_amount_minor(500);
    request.set_kind(v1::RTP_KIND_ECOMMERCE);
    request.set_description("order 7");
    request.set_payer_ip("46.123.232.123");
    request.set_success_url("https://shop.example/ok");
    request.set_cancel_url("https://shop.example/cancel");
    request.set_error_url("https://shop.example/error");
    flow.shape(request);
    const absl::Status status =
        service_.CreateRtp(shop_, request, absl::Now() + absl::Seconds(5)).status();
    if (std::string(flow.missing).empty()) {
      EXPECT_NE(status.code(), absl::StatusCode::kInvalidArgument) << n << ": " << status;
    } else {
      EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << n;
      EXPECT_TRUE(absl::StartsWith(status.message(), absl::StrCat(flow.missing, ": is required")))
          << n << ": " << status.message();
    }
  }
}

TEST_F(ServiceAndAdapterTest, APayoutsAliasIsCheckedOnceWithOneMessage) {
  for (const char* alias : {"", "070 999", "someone@nowhere"}) {
    v1::PayoutRequest request;
    request.set_merchant_transaction_id("p-1");
    request.set_amount_minor(500);
    request.set_alias(alias);
    const absl::Status from_service =
        service_.Payout(shop_, request, absl::Now() + absl::Seconds(5)).status();
    gateway::PayoutRequest payout;
    payout.merchant_transaction_id = "p-1";
    payout.amount_minor = 500;
    payout.alias = alias;
    payout.callback_url = "https://pay.example/callbacks/bankart";
    const absl::Status from_adapter =
        adapter_.Payout(payout, absl::Now() + absl::Seconds(5)).status();
    EXPECT_TRUE(absl::StartsWith(from_service.message(), "alias: ")) << from_service.message();
    EXPECT_FALSE(absl::StartsWith(from_service.message(), "alias: alias")) << alias;
    EXPECT_EQ(from_adapter, from_service) << alias;
  }
}

}  // namespace
}  // namespace flikpay
