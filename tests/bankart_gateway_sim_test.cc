// The Bankart adapter against the bankart-sim binary over real HTTP on loopback.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gateway/bankart_gateway.h"
#include "gateway/callback_parser.h"
#include "gateway/http_client.h"
#include "gateway/signing.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/support/bankart_known_answers.h"
#include "tests/support/callback_receiver.h"
#include "tests/support/process.h"
#include "tests/support/sim_suite.h"

namespace flikpay::gateway {
namespace {

using Json = nlohmann::json;
using ::flikpay::testing::CallbackReceiver;
using ::flikpay::testing::ChildProcess;
using Kind = SubmitOutcome::Kind;

constexpr char kUser[] = "flikpay-sim";
constexpr char kPassword[] = "flikpay-sim-password";
// Scenario answers come 5 s * 0.01 = 50 ms after a request; E-commerce RTPs expire after 3 s; the
// first callback retry comes 0.6 s after a failed delivery.
constexpr char kTimeScale[] = "0.01";

const std::map<Connector, ConnectorCredentials>& SimConnectors() {
  static const auto* connectors = new std::map<Connector, ConnectorCredentials>{
      {Connector::kEcommerce, {"sim-ecommerce-key", "sim-ecommerce-secret"}},
      {Connector::kInPerson, {"sim-in-person-key", "sim-in-person-secret"}},
      {Connector::kOutOfBand, {"sim-out-of-band-key", "sim-out-of-band-secret"}},
      {Connector::kPayout, {"sim-payout-key", "sim-payout-secret"}},
  };
  return *connectors;
}

absl::Time Soon(absl::Duration in = absl::Seconds(10)) { return absl::Now() + in; }

struct AdapterSimFlags {
  static std::vector<std::string> Flags() {
    return {absl::StrCat("--time_scale=", kTimeScale), "--scenario_delay=5s",
            "--callback_timeout=2s"};
  }
};

class BankartSimTest : public ::flikpay::testing::SimSuite<AdapterSimFlags> {
 protected:
  void SetUp() override {
    SimSuite::SetUp();
    Control("DELETE", "/_sim/faults");
    receiver_ = std::make_unique<CallbackReceiver>();
    gateway_ = std::make_unique<BankartGateway>(Config());
  }

  static std::string BaseUrl() { return absl::StrCat("http://127.0.0.1:", port_); }

  static BankartConfig Config() {
    BankartConfig config;
    config.base_url = BaseUrl() + "/api/v3";
    config.api_user = kUser;
    config.api_password = kPassword;
    config.connectors = SimConnectors();
    config.status_initial_backoff = absl::Milliseconds(50);
    return config;
  }

  static std::string NewId(absl::string_view prefix = "t") {
    static std::atomic<int> counter{0};
    return absl::StrCat(prefix, "-", absl::ToUnixMillis(absl::Now()), "-", counter++);
  }

  Json Control(const std::string& method, const std::string& path, const Json& body = {}) {
    HttpRequest request;
    request.method = method;
    request.url = BaseUrl() + path;
    request.body = body.is_null() ? "" : body.dump();
    request.headers = {{"Content-Type", "application/json"}};
    HttpExchange exchange = http_.Send(request);
    EXPECT_EQ(exchange.failure, HttpExchange::Failure::kNone) << exchange.failure_reason;
    EXPECT_EQ(exchange.response.status, 200) << path << ": " << exchange.response.body;
    return Json::parse(exchange.response.body, nullptr, false);
  }

  // The sim's record of what it received for one merchant transaction id.
  std::vector<Json> RequestsFor(const std::string& merchant_transaction_id) {
    std::vector<Json> found;
    // Bound to a local: a range-for over a member of a temporary would dangle.
    const Json journal = Control("GET", "/_sim/journal");
    for (const Json& entry : journal["requests"]) {
      if (JsonText(entry, "merchantTransactionId") == merchant_transaction_id ||
          JsonText(entry, "lookup") == merchant_transaction_id) {
        found.push_back(entry);
      }
    }
    return found;
  }

  DebitRequest Rtp(RtpKind kind, const std::string& alias, int64_t amount_minor = 1111) {
    DebitRequest request;
    request.kind = kind;
    request.merchant_transaction_id = NewId("rtp");
    request.amount_minor = amount_minor;
    request.alias = alias;
    request.description = "flikpay test payment";
    request.callback_url =
        receiver_->Url(absl::StrCat("connector=", ConnectorName(ConnectorFor(kind))));
    request.success_url = "https://shop.example/success";
    request.cancel_url = "https://shop.example/cancel";
    request.error_url = "https://shop.example/error";
    request.payer_ip = "46.123.232.123";
    return request;
  }

  SubmitOutcome MustAccept(absl::StatusOr<SubmitOutcome> outcome) {
    EXPECT_TRUE(outcome.ok()) << outcome.status();
    if (!outcome.ok()) return {};
    EXPECT_EQ(outcome->kind, Kind::kAccepted)
        << (outcome->errors.empty() ? outcome->unknown_reason : outcome->errors[0].message);
    return *outcome;
  }

  // Waits for the nth callback of a transaction and checks it the way flikpay will.
  CallbackEvent AwaitCallback(const std::string& merchant_transaction_id, int nth = 1,
                              absl::Duration timeout = absl::Seconds(10)) {
    std::optional<InboundCallback> callback =
        receiver_->WaitFor(merchant_transaction_id, nth, timeout);
    EXPECT_TRUE(callback.has_value()) << "no callback for " << merchant_transaction_id;
    if (!callback) return {};
    absl::StatusOr<CallbackEvent> event = gateway_->VerifyCallback(*callback);
    EXPECT_TRUE(event.ok()) << event.status();
    return event.ok() ? *event : CallbackEvent{};
  }

  HttpClient http_;
  std::unique_ptr<CallbackReceiver> receiver_;
  std::unique_ptr<BankartGateway> gateway_;
};

struct DebitScenario {
  const char* email;
  const char* phone;
  CallbackEvent::Result result;
  StatusReport::Status status;
  int error_code;
  const char* adapter_code;
};

const DebitScenario kDebitScenarios[] = {
    {"success.debit@bankart.flik", "0038670999000", CallbackEvent::Result::kOk,
     StatusReport::Status::kSuccess, 0, ""},
    {"cancel.debit@bankart.flik", "0038670999111", CallbackEvent::Result::kError,
     StatusReport::Status::kCancelled, 2002, "CANCELLED"},
    {"error.debit@bankart.flik", "0038670999222", CallbackEvent::Result::kError,
     StatusReport::Status::kError, 1003, "96"},
    {"success.debit_success.refund@bankart.flik", "0038670999333", CallbackEvent::Result::kOk,
     StatusReport::Status::kSuccess, 0, ""},
    {"success.debit_error.refund@bankart.flik", "0038670999444", CallbackEvent::Result::kOk,
     StatusReport::Status::kSuccess, 0, ""},
    {"nobody@example.si", "0038640000000", CallbackEvent::Result::kError,
     StatusReport::Status::kError, 2007, "03"},
};

TEST_F(BankartSimTest, EveryDebitScenarioForBothAliasFormsAndEveryRtpKind) {
  struct Sent {
    DebitRequest request;
    SubmitOutcome outcome;
    const DebitScenario* scenario;
  };
  std::vector<Sent> sent;
  for (RtpKind kind : {RtpKind::kEcommerce, RtpKind::kInPerson, RtpKind::kOutOfBand}) {
    for (const DebitScenario& scenario : kDebitScenarios) {
      for (const char* alias : {scenario.email, scenario.phone}) {
        DebitRequest request = Rtp(kind, alias);
        // E-commerce without redirect (seed 000: redirect is its default, "no" switches it off).
        if (kind == RtpKind::kEcommerce) request.enable_waiting_screen = false;
        const absl::Time before = absl::Now();
        SubmitOutcome outcome = MustAccept(gateway_->Debit(request, Soon()));
        EXPECT_EQ(outcome.return_type, ReturnType::kPending) << alias;
        EXPECT_FALSE(outcome.uuid.empty());
        EXPECT_TRUE(absl::EndsWith(outcome.purchase_id, outcome.uuid));
        EXPECT_FALSE(outcome.adapter_reference_id.empty());
        ASSERT_TRUE(outcome.expires_at.has_value());
        // Validity scaled by 0.01; the timestamp has whole seconds.
        EXPECT_GE(*outcome.expires_at, before - absl::Seconds(1));
        EXPECT_LE(*outcome.expires_at, before + RtpValidity(kind) * 0.01 + absl::Seconds(1));
        sent.push_back({request, outcome, &scenario});
      }
    }
  }
  for (const Sent& s : sent) {
    SCOPED_TRACE(s.request.alias);
    CallbackEvent event = AwaitCallback(s.request.merchant_transaction_id);
    EXPECT_EQ(event.result, s.scenario->result);
    EXPECT_EQ(event.uuid, s.outcome.uuid);
    EXPECT_EQ(event.type, TransactionType::kDebit);
    EXPECT_EQ(event.amount_minor, 1111);
    EXPECT_EQ(event.currency, "EUR");
    EXPECT_EQ(event.adapter_reference_id, s.outcome.adapter_reference_id);
    EXPECT_EQ(event.connector, ConnectorFor(s.request.kind));
    if (s.scenario->error_code == 0) {
      EXPECT_TRUE(event.errors.empty());
    } else {
      ASSERT_EQ(event.errors.size(), 1u);
      EXPECT_EQ(event.errors[0].code, s.scenario->error_code);
      EXPECT_EQ(event.errors[0].adapter_code, s.scenario->adapter_code);
    }
    const Connector connector = ConnectorFor(s.request.kind);
    absl::StatusOr<StatusReport> by_uuid =
        gateway_->StatusByUuid(connector, s.outcome.uuid, Soon());
    ASSERT_TRUE(by_uuid.ok()) << by_uuid.status();
    EXPECT_TRUE(by_uuid->found);
    EXPECT_EQ(by_uuid->status, s.scenario->status);
    EXPECT_EQ(by_uuid->amount_minor, 1111);
    EXPECT_EQ(by_uuid->type, TransactionType::kDebit);
    absl::StatusOr<StatusReport> by_id = gateway_->StatusByMerchantTransactionId(
        connector, s.request.merchant_transaction_id, Soon());
    ASSERT_TRUE(by_id.ok()) << by_id.status();
    EXPECT_EQ(by_id->uuid, s.outcome.uuid);
    EXPECT_EQ(by_id->status, s.scenario->status);
  }
}

TEST_F(BankartSimTest, AliasIsSentInTheNormalisedForm) {
  // "+386 70 999 000" is the success phone alias once normalised.
  DebitRequest request = Rtp(RtpKind::kInPerson, "+386 70 999 000");
  MustAccept(gateway_->Debit(request, Soon()));
  EXPECT_EQ(AwaitCallback(request.merchant_transaction_id).result, CallbackEvent::Result::kOk);
}

TEST_F(BankartSimTest, RefundsUpToWhatIsLeftOfASuccessfulPayment) {
  for (const char* alias : {"success.debit_success.refund@bankart.flik", "0038670999333"}) {
    SCOPED_TRACE(alias);
    DebitRequest debit = Rtp(RtpKind::kOutOfBand, alias, 1000);
    SubmitOutcome paid = MustAccept(gateway_->Debit(debit, Soon()));
    ASSERT_EQ(AwaitCallback(debit.merchant_transaction_id).result, CallbackEvent::Result::kOk);

    auto refund = [&](int64_t amount) {
      RefundRequest request;
      request.connector = Connector::kOutOfBand;
      request.merchant_transaction_id = NewId("refund");
      request.reference_uuid = paid.uuid;
      request.amount_minor = amount;
      request.callback_url = receiver_->Url("connector=out_of_band");
      request.description = "partial refund";
      return std::make_pair(request, gateway_->Refund(request, Soon()));
    };
    auto [first, first_outcome] = refund(600);
    MustAccept(first_outcome);
    CallbackEvent first_event = AwaitCallback(first.merchant_transaction_id);
    EXPECT_EQ(first_event.result, CallbackEvent::Result::kOk);
    EXPECT_EQ(first_event.type, TransactionType::kRefund);
    EXPECT_EQ(first_event.reference_uuid, paid.uuid);
    EXPECT_EQ(first_event.amount_minor, 600);

    auto [too_much, too_much_outcome] = refund(401);  // 400 is left
    ASSERT_TRUE(too_much_outcome.ok());
    EXPECT_EQ(too_much_outcome->kind, Kind::kDeclined);
    EXPECT_EQ(too_much_outcome->errors.at(0).code, 1002);

    auto [rest, rest_outcome] = refund(400);
    MustAccept(rest_outcome);
    EXPECT_EQ(AwaitCallback(rest.merchant_transaction_id).result, CallbackEvent::Result::kOk);
    auto [after_all, after_all_outcome] = refund(1);
    EXPECT_EQ(after_all_outcome->kind, Kind::kDeclined);
  }
}

TEST_F(BankartSimTest, RefundScenarioThatFailsGivesTheAmountBack) {
  for (const char* alias : {"success.debit_error.refund@bankart.flik", "0038670999444"}) {
    SCOPED_TRACE(alias);
    DebitRequest debit = Rtp(RtpKind::kInPerson, alias, 500);
    SubmitOutcome paid = MustAccept(gateway_->Debit(debit, Soon()));
    ASSERT_EQ(AwaitCallback(debit.merchant_transaction_id).result, CallbackEvent::Result::kOk);
    for (int round = 0; round < 2; ++round) {
      RefundRequest refund;
      refund.connector = Connector::kInPerson;
      refund.merchant_transaction_id = NewId("refund");
      refund.reference_uuid = paid.uuid;
      refund.amount_minor = 500;
      refund.callback_url = receiver_->Url();
      // The whole amount is accepted again in round 2: the failed refund released it.
      MustAccept(gateway_->Refund(refund, Soon()));
      CallbackEvent event = AwaitCallback(refund.merchant_transaction_id);
      EXPECT_EQ(event.result, CallbackEvent::Result::kError);
      EXPECT_EQ(event.type, TransactionType::kRefund);
      EXPECT_FALSE(event.errors.empty());
    }
  }
}

TEST_F(BankartSimTest, RefundIsRefusedUnlessTheOriginalSucceededOnTheSameConnector) {
  DebitRequest cancelled = Rtp(RtpKind::kInPerson, "cancel.debit@bankart.flik");
  SubmitOutcome cancelled_outcome = MustAccept(gateway_->Debit(cancelled, Soon()));
  RefundRequest refund;
  refund.connector = Connector::kInPerson;
  refund.merchant_transaction_id = NewId("refund");
  refund.reference_uuid = cancelled_outcome.uuid;
  refund.amount_minor = 100;
  refund.callback_url = receiver_->Url();
  // Still pending: not refundable yet.
  absl::StatusOr<SubmitOutcome> early = gateway_->Refund(refund, Soon());
  ASSERT_TRUE(early.ok());
  EXPECT_EQ(early->kind, Kind::kDeclined);
  EXPECT_EQ(early->errors.at(0).code, 3002);
  AwaitCallback(cancelled.merchant_transaction_id);
  refund.merchant_transaction_id = NewId("refund");
  absl::StatusOr<SubmitOutcome> after_cancel = gateway_->Refund(refund, Soon());
  EXPECT_EQ(after_cancel->kind, Kind::kDeclined);
  EXPECT_EQ(after_cancel->errors.at(0).code, 3002);

  DebitRequest paid = Rtp(RtpKind::kInPerson, "success.debit@bankart.flik");
  SubmitOutcome paid_outcome = MustAccept(gateway_->Debit(paid, Soon()));
  AwaitCallback(paid.merchant_transaction_id);
  refund.merchant_transaction_id = NewId("refund");
  refund.reference_uuid = paid_outcome.uuid;
  refund.connector = Connector::kEcommerce;  // not the payment's connector
  absl::StatusOr<SubmitOutcome> wrong_connector = gateway_->Refund(refund, Soon());
  EXPECT_EQ(wrong_connector->kind, Kind::kDeclined);
  EXPECT_EQ(wrong_connector->errors.at(0).code, 8001);
  refund.connector = Connector::kInPerson;
  MustAccept(gateway_->Refund(refund, Soon()));
}

TEST_F(BankartSimTest, PayoutScenariosForBothAliasForms) {
  struct Case {
    const char* alias;
    CallbackEvent::Result result;
    int error_code;
  };
  for (const Case& c : {Case{"success.payout@bankart.flik", CallbackEvent::Result::kOk, 0},
                        Case{"0038670999555", CallbackEvent::Result::kOk, 0},
                        Case{"error.payout@bankart.flik", CallbackEvent::Result::kError, 1003},
                        Case{"0038670999666", CallbackEvent::Result::kError, 1003},
                        Case{"nobody@example.si", CallbackEvent::Result::kError, 2007}}) {
    SCOPED_TRACE(c.alias);
    PayoutRequest payout;
    payout.merchant_transaction_id = NewId("payout");
    payout.alias = c.alias;
    payout.amount_minor = 250000;  // payouts have no upper limit
    payout.callback_url = receiver_->Url("connector=payout");
    payout.description = "winnings";
    SubmitOutcome outcome = MustAccept(gateway_->Payout(payout, Soon()));
    EXPECT_EQ(outcome.return_type, ReturnType::kPending);
    CallbackEvent event = AwaitCallback(payout.merchant_transaction_id);
    EXPECT_EQ(event.result, c.result);
    EXPECT_EQ(event.type, TransactionType::kPayout);
    EXPECT_EQ(event.amount_minor, 250000);
    EXPECT_EQ(event.connector, Connector::kPayout);
    if (c.error_code != 0) {
      EXPECT_EQ(event.errors.at(0).code, c.error_code);
    }
  }
}

TEST_F(BankartSimTest, RedirectFlowThroughThePageLikeABrowser) {
  DebitRequest request = Rtp(RtpKind::kEcommerce, "");
  SubmitOutcome outcome = MustAccept(gateway_->Debit(request, Soon()));
  ASSERT_EQ(outcome.return_type, ReturnType::kRedirect);
  ASSERT_TRUE(absl::StartsWith(outcome.redirect_url, BaseUrl() + "/redirect/"))
      << outcome.redirect_url;

  // Without an alias Bankart's page asks the payer for it first (seed 000).
  HttpRequest page;
  page.url = outcome.redirect_url;
  HttpExchange asked = http_.Send(page);
  ASSERT_EQ(asked.response.status, 200);
  EXPECT_TRUE(absl::StrContains(asked.response.body, "name=\"alias\"")) << asked.response.body;
  HttpRequest typed;
  typed.method = "POST";
  typed.url = outcome.redirect_url;
  typed.body = "alias=redirect%40bankart.flik";
  typed.headers = {{"Content-Type", "application/x-www-form-urlencoded"}};
  EXPECT_EQ(http_.Send(typed).response.status, 303);
  HttpExchange shown = http_.Send(page);
  ASSERT_EQ(shown.response.status, 200);
  for (const char* choice : {"\"success\"", "\"cancel\"", "\"error\"", "\"success_refund_success\"",
                             "\"success_refund_error\""}) {
    EXPECT_TRUE(absl::StrContains(shown.response.body, choice)) << choice;
  }
  absl::StatusOr<StatusReport> waiting =
      gateway_->StatusByUuid(Connector::kEcommerce, outcome.uuid, Soon());
  EXPECT_EQ(waiting->status, StatusReport::Status::kRedirect);

  HttpRequest pick;
  pick.method = "POST";
  pick.url = outcome.redirect_url;
  pick.body = "scenario=cancel";
  pick.headers = {{"Content-Type", "application/x-www-form-urlencoded"}};
  HttpExchange picked = http_.Send(pick);
  EXPECT_EQ(picked.response.status, 303);
  EXPECT_EQ(picked.response.headers["location"], request.cancel_url);
  CallbackEvent event = AwaitCallback(request.merchant_transaction_id);
  EXPECT_EQ(event.result, CallbackEvent::Result::kError);
  EXPECT_EQ(event.errors.at(0).code, 2002);
  EXPECT_EQ(gateway_->StatusByUuid(Connector::kEcommerce, outcome.uuid, Soon())->status,
            StatusReport::Status::kCancelled);
  // A second choice is refused: the payment is decided.
  EXPECT_EQ(http_.Send(pick).response.status, 409);
}

TEST_F(BankartSimTest, RedirectAliasesInBothFormsAndAChoiceByHttp) {
  for (const char* alias : {"redirect@bankart.flik", "0038670999999"}) {
    SCOPED_TRACE(alias);
    DebitRequest request = Rtp(RtpKind::kEcommerce, alias);
    SubmitOutcome outcome = MustAccept(gateway_->Debit(request, Soon()));
    ASSERT_EQ(outcome.return_type, ReturnType::kRedirect);
    Control("POST", absl::StrCat("/_sim/transactions/", outcome.uuid, "/choose"),
            Json{{"scenario", "success_refund_success"}});
    EXPECT_EQ(AwaitCallback(request.merchant_transaction_id).result, CallbackEvent::Result::kOk);
  }
}

TEST_F(BankartSimTest, UnconfirmedRequestToPayExpiresWithAnErrorCallback) {
  // Nobody picks a scenario: after 5 min (3 s scaled) the gateway reports the RTP expired.
  DebitRequest request = Rtp(RtpKind::kEcommerce, "");
  const absl::Time sent = absl::Now();
  SubmitOutcome outcome = MustAccept(gateway_->Debit(request, Soon()));
  CallbackEvent event = AwaitCallback(request.merchant_transaction_id, 1, absl::Seconds(15));
  EXPECT_GE(absl::Now() - sent, absl::Seconds(2));
  EXPECT_EQ(event.result, CallbackEvent::Result::kError);
  EXPECT_EQ(event.errors.at(0).code, 2005);
  EXPECT_EQ(gateway_->StatusByUuid(Connector::kEcommerce, outcome.uuid, Soon())->status,
            StatusReport::Status::kError);
}

TEST_F(BankartSimTest, ReusedMerchantTransactionIdIsDeclined) {
  DebitRequest request = Rtp(RtpKind::kInPerson, "success.debit@bankart.flik");
  MustAccept(gateway_->Debit(request, Soon()));
  absl::StatusOr<SubmitOutcome> again = gateway_->Debit(request, Soon());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->kind, Kind::kDeclined);
  EXPECT_EQ(again->errors.at(0).code, 3004);
}

TEST_F(BankartSimTest, AdapterRefusesBadInputBeforeSendingAnything) {
  struct Case {
    const char* field;
    std::function<void(DebitRequest&)> spoil;
  };
  const std::vector<Case> cases = {
      {"merchant_transaction_id", [](DebitRequest& r) { r.merchant_transaction_id = ""; }},
      {"merchant_transaction_id",
       [](DebitRequest& r) { r.merchant_transaction_id = std::string(51, 'x'); }},
      {"amount_minor", [](DebitRequest& r) { r.amount_minor = 0; }},
      {"amount_minor", [](DebitRequest& r) { r.amount_minor = -5; }},
      {"currency", [](DebitRequest& r) { r.currency = "USD"; }},
      {"alias", [](DebitRequest& r) { r.alias = "0038641147"; }},
      {"alias", [](DebitRequest& r) { r.alias = ""; }},  // In-Person needs an alias
      {"description", [](DebitRequest& r) { r.description = std::string(256, 'd'); }},
      {"merchant_metadata", [](DebitRequest& r) { r.merchant_metadata = std::string(256, 'm'); }},
      {"purpose_code",
       [](DebitRequest& r) {
         r.structured_reference = true;
         r.purpose_code = "web";
       }},
      {"purpose_code", [](DebitRequest& r) { r.purpose_code = "WEBI"; }},
      {"callback_url", [](DebitRequest& r) { r.callback_url = ""; }},
  };
  const size_t journal_before = Control("GET", "/_sim/journal")["requests"].size();
  for (const Case& c : cases) {
    DebitRequest request = Rtp(RtpKind::kInPerson, "success.debit@bankart.flik");
    c.spoil(request);
    absl::StatusOr<SubmitOutcome> outcome = gateway_->Debit(request, Soon());
    ASSERT_FALSE(outcome.ok()) << c.field;
    EXPECT_EQ(outcome.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_TRUE(absl::StartsWith(outcome.status().message(), c.field))
        << outcome.status().message();
  }
  EXPECT_EQ(Control("GET", "/_sim/journal")["requests"].size(), journal_before);
}

TEST_F(BankartSimTest, StructuredReferenceAndAllFlikExtrasAreAccepted) {
  DebitRequest request = Rtp(RtpKind::kEcommerce, "success.debit@bankart.flik");
  request.structured_reference = true;
  request.purpose_code = "WEBI";
  request.description = "SI00 12345";
  request.enable_waiting_screen = true;
  request.merchant_mid = "MID-1";
  request.merchant_terminal_id = "POS-7";
  request.ultimate_creditor_name = "Trgovina d.o.o.";
  request.merchant_metadata = "order=42|channel=web";
  SubmitOutcome outcome = MustAccept(gateway_->Debit(request, Soon()));
  // The waiting screen turns an E-commerce RTP with an alias into a redirect.
  EXPECT_EQ(outcome.return_type, ReturnType::kRedirect);
  CallbackEvent event = AwaitCallback(request.merchant_transaction_id);
  EXPECT_EQ(event.result, CallbackEvent::Result::kOk);
  EXPECT_EQ(event.merchant_metadata, "order=42|channel=web");
}

TEST_F(BankartSimTest, SimValidatesRequestsLikeTheGateway) {
  const ConnectorCredentials& credentials = SimConnectors().at(Connector::kInPerson);
  auto send_raw = [&](const std::string& body) {
    const std::string uri = absl::StrCat("/api/v3/transaction/", credentials.api_key, "/debit");
    const std::string date = FormatHttpDate(absl::Now());
    const std::string content_type = "application/json; charset=utf-8";
    HttpRequest request;
    request.method = "POST";
    request.url = BaseUrl() + uri;
    request.body = body;
    request.headers = {
        {"Authorization", "Basic " + Base64Encode(absl::StrCat(kUser, ":", kPassword))},
        {"Content-Type", content_type},
        {"Date", date},
        {"X-Signature", Sign(credentials.shared_secret, {"POST", body, content_type, date, uri})}};
    HttpExchange exchange = http_.Send(request);
    return std::make_pair(exchange.response.status,
                          Json::parse(exchange.response.body, nullptr, false));
  };
  Json good = {{"merchantTransactionId", NewId("raw")},
               {"amount", "1.00"},
               {"currency", "EUR"},
               {"callbackUrl", receiver_->Url()},
               {"extraData", {{"alias", "0038670999000"}}}};
  EXPECT_EQ(send_raw(good.dump()).first, 200);
  struct Case {
    const char* what;
    Json body;
    int code;
  };
  std::vector<Case> cases;
  auto with = [&](const char* key, Json value) {
    Json body = good;
    body["merchantTransactionId"] = NewId("raw");
    if (value.is_null()) {
      body.erase(key);
    } else {
      body[key] = value;
    }
    return body;
  };
  cases.push_back({"three decimals", with("amount", "1.234"), 1002});
  cases.push_back({"comma", with("amount", "1,00"), 1002});
  cases.push_back({"zero", with("amount", "0.00"), 1002});
  cases.push_back({"dollars", with("currency", "USD"), 1002});
  cases.push_back({"no id", with("merchantTransactionId", nullptr), 1002});
  cases.push_back({"long id", with("merchantTransactionId", std::string(51, 'i')), 1002});
  cases.push_back({"long description", with("description", std::string(256, 'd')), 1002});
  cases.push_back({"no callback", with("callbackUrl", nullptr), 1002});
  cases.push_back({"unnormalised alias", with("extraData", {{"alias", "041147148"}}), 1002});
  for (const Case& c : cases) {
    auto [status, answer] = send_raw(c.body.dump());
    EXPECT_EQ(status, 400) << c.what;
    EXPECT_EQ(answer.value("errorCode", 0), c.code) << c.what;
  }
  auto [status, answer] = send_raw("{not json");
  EXPECT_EQ(status, 400);
  EXPECT_EQ(answer.value("errorCode", 0), 1005);
}

TEST_F(BankartSimTest, WrongSharedSecretOrPasswordIsRefused) {
  BankartConfig wrong_secret = Config();
  wrong_secret.connectors[Connector::kInPerson].shared_secret = "not-the-secret";
  absl::StatusOr<SubmitOutcome> signed_badly =
      BankartGateway(wrong_secret)
          .Debit(Rtp(RtpKind::kInPerson, "success.debit@bankart.flik"), Soon());
  ASSERT_TRUE(signed_badly.ok());
  EXPECT_EQ(signed_badly->kind, Kind::kDeclined);
  EXPECT_EQ(signed_badly->http_status, 401);
  EXPECT_EQ(signed_badly->errors.at(0).code, 1004);

  BankartConfig wrong_password = Config();
  wrong_password.api_password = "guess";
  absl::StatusOr<SubmitOutcome> bad_login =
      BankartGateway(wrong_password)
          .Debit(Rtp(RtpKind::kInPerson, "success.debit@bankart.flik"), Soon());
  ASSERT_TRUE(bad_login.ok());
  EXPECT_EQ(bad_login->kind, Kind::kDeclined);
  EXPECT_EQ(bad_login->http_status, 401);
  EXPECT_EQ(bad_login->errors.at(0).code, 1000);
}

TEST_F(BankartSimTest, BothPasswordFormsAreAccepted) {
  for (PasswordMode mode : {PasswordMode::kPlain, PasswordMode::kSha1Rounds}) {
    BankartConfig config = Config();
    config.password_mode = mode;
    MustAccept(BankartGateway(config).Debit(Rtp(RtpKind::kInPerson, "0038670999000"), Soon()));
  }
}

TEST_F(BankartSimTest, CallbackIsRejectedWhenSignedWithAnotherSecretTamperedOrStale) {
  DebitRequest request = Rtp(RtpKind::kInPerson, "success.debit@bankart.flik");
  MustAccept(gateway_->Debit(request, Soon()));
  std::optional<InboundCallback> callback = receiver_->WaitFor(request.merchant_transaction_id);
  ASSERT_TRUE(callback.has_value());
  ASSERT_TRUE(gateway_->VerifyCallback(*callback).ok());

  BankartConfig other_secrets = Config();
  for (auto& [connector, credentials] : other_secrets.connectors) {
    credentials.shared_secret += "-rotated";
  }
  EXPECT_EQ(BankartGateway(other_secrets).VerifyCallback(*callback).status().code(),
            absl::StatusCode::kUnauthenticated);

  InboundCallback tampered = *callback;
  tampered.body.replace(tampered.body.find("11.11"), 5, "99.99");
  EXPECT_EQ(gateway_->VerifyCallback(tampered).status().code(), absl::StatusCode::kUnauthenticated);
  // Operators tell a forger from a late retry (flikpay_callbacks_total{result=...}).
  EXPECT_EQ(RefusalOf(gateway_->VerifyCallback(tampered).status()), CallbackRefusal::kBadSignature);

  InboundCallback other_uri = *callback;
  other_uri.request_uri = "/callbacks/bankart?connector=in_person&extra=1";
  EXPECT_EQ(gateway_->VerifyCallback(other_uri).status().code(),
            absl::StatusCode::kUnauthenticated);

  InboundCallback wrong_connector = *callback;
  // Verifying under the E-commerce secret fails; the URI is part of the signature, so the query
  // cannot simply be edited either.
  wrong_connector.request_uri = "/callbacks/bankart?connector=ecommerce";
  EXPECT_EQ(gateway_->VerifyCallback(wrong_connector).status().code(),
            absl::StatusCode::kUnauthenticated);

  InboundCallback unsigned_callback = *callback;
  unsigned_callback.headers.erase("x-signature");
  EXPECT_EQ(gateway_->VerifyCallback(unsigned_callback).status().code(),
            absl::StatusCode::kUnauthenticated);

  BankartConfig later = Config();
  later.clock = [] { return absl::Now() + absl::Seconds(61); };
  EXPECT_EQ(BankartGateway(later).VerifyCallback(*callback).status().code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(RefusalOf(BankartGateway(later).VerifyCallback(*callback).status()),
            CallbackRefusal::kStale);
  InboundCallback undated = *callback;
  undated.headers.erase("date");
  undated.headers.erase("x-date");
  EXPECT_EQ(RefusalOf(gateway_->VerifyCallback(undated).status()), CallbackRefusal::kStale);
  later.callback_date_tolerance = absl::Seconds(120);
  EXPECT_TRUE(BankartGateway(later).VerifyCallback(*callback).ok());
}

TEST_F(BankartSimTest, XmlCallbackSignedTheV2WayIsVerified) {
  const std::string body = R"(<?xml version="1.0" encoding="utf-8"?>
<callback xmlns="https://gateway.bankart.si/Schema/V2/Callback"><result>OK</result>
<referenceId>abc123</referenceId><transactionId>order-1</transactionId>
<transactionType>DEBIT</transactionType><amount>4.99</amount><currency>EUR</currency>
</callback>)";
  const std::string date = FormatHttpDate(absl::Now());
  const ConnectorCredentials& ecommerce = SimConnectors().at(Connector::kEcommerce);
  const SignedParts parts{"POST", body, "text/xml; charset=utf-8", date, "/callbacks/bankart"};
  InboundCallback callback;
  callback.method = "POST";
  callback.request_uri = "/callbacks/bankart";
  callback.body = body;
  callback.headers = {
      {"content-type", "text/xml; charset=utf-8"},
      {"date", date},
      {"authorization",
       absl::StrCat("Gateway ", ecommerce.api_key, ":",
                    HmacSha512Base64(ecommerce.shared_secret,
                                     SignatureMessage(parts, BodyHash::kSha512, true)))}};
  // A legacy form: refused until the connector is configured for it.
  EXPECT_TRUE(absl::IsUnauthenticated(gateway_->VerifyCallback(callback).status()));
  BankartConfig legacy = Config();
  legacy.connectors[Connector::kEcommerce].legacy_forms.v2_message = true;
  BankartGateway legacy_gateway(legacy);
  absl::StatusOr<CallbackEvent> event = legacy_gateway.VerifyCallback(callback);
  ASSERT_TRUE(event.ok()) << event.status();
  EXPECT_EQ(event->merchant_transaction_id, "order-1");
  EXPECT_EQ(event->connector, Connector::kEcommerce);
  EXPECT_EQ(event->amount_minor, 499);
}

// Seed 000's sample callback, signed as the documents say with the Date in each form (known answers
// shared with the stand-in's tests), verifies; its ids arrive trimmed.
TEST(BankartCallbackKnownAnswers, TheSeedsSampleCallbackVerifiesWithEachDateForm) {
  namespace known = ::flikpay::testing::known_answers;
  BankartConfig config;
  config.base_url = "http://127.0.0.1:9/api/v3";  // never called
  config.connectors[Connector::kEcommerce] = {"api-key", known::kSecret};
  config.callback_date_tolerance = absl::Hours(24 * 365 * 100);  // the documents' dates are fixed
  BankartGateway gateway(config);
  for (const known::DatedSignature& dated : known::kSeedCallbackSignatures) {
    InboundCallback callback;
    callback.method = "POST";
    callback.request_uri = known::kSeedCallbackUri;
    callback.body = known::kSeedCallback;
    callback.headers = {{"content-type", known::kContentType},
                        {"date", dated.date},
                        {"x-signature", dated.signature}};
    absl::StatusOr<CallbackEvent> event = gateway.VerifyCallback(callback);
    ASSERT_TRUE(event.ok()) << dated.date << ": " << event.status();
    EXPECT_EQ(event->merchant_transaction_id, "Flik-20210413133336-d3898");
    EXPECT_EQ(event->uuid, "c5b92e902dc9e4b0edea");
    EXPECT_EQ(event->amount_minor, 1111);
    callback.body.replace(callback.body.find("11.11"), 5, "99.99");
    EXPECT_EQ(gateway.VerifyCallback(callback).status().code(), absl::StatusCode::kUnauthenticated);
  }
}

// Seed 001 signs with PHP's "D, d M Y H:i:s T" in UTC ("... UTC"); other senders use a numeric
// zone. A callback dated any of these ways (or in RFC 7231's obsolete forms) verifies.
TEST_F(BankartSimTest, ACallbackDatedInAnyHttpDateFormIsAccepted) {
  const std::string body = R"({"result":"OK","uuid":"abc123","merchantTransactionId":"order-1",)"
                           R"("transactionType":"DEBIT","amount":"4.99","currency":"EUR"})";
  const ConnectorCredentials& ecommerce = SimConnectors().at(Connector::kEcommerce);
  const absl::Time now = absl::Now();
  for (const char* form :
       {"%a, %d %b %Y %H:%M:%S GMT", "%a, %d %b %Y %H:%M:%S UTC", "%a, %d %b %Y %H:%M:%S +0000",
        "%A, %d-%b-%y %H:%M:%S GMT", "%a %b %e %H:%M:%S %Y"}) {
    const std::string date = absl::FormatTime(form, now, absl::UTCTimeZone());
    const std::string uri = "/callbacks/bankart?connector=ecommerce";
    InboundCallback callback;
    callback.method = "POST";
    callback.request_uri = uri;
    callback.body = body;
    callback.headers = {
        {"content-type", "application/json; charset=utf-8"},
        {"date", date},
        {"x-signature",
         Sign(ecommerce.shared_secret,
              SignedParts{"POST", body, "application/json; charset=utf-8", date, uri})}};
    absl::StatusOr<CallbackEvent> event = gateway_->VerifyCallback(callback);
    EXPECT_TRUE(event.ok()) << date << ": " << event.status();
  }
}

TEST_F(BankartSimTest, TimeoutAfterTheGatewayCreatedTheDebitIsUnknownAndFindable) {
  Control("POST", "/_sim/faults",
          Json{{"kind", "timeout_after"}, {"operation", "debit"}, {"delay_ms", 1500}});
  DebitRequest request = Rtp(RtpKind::kInPerson, "success.debit@bankart.flik");
  absl::StatusOr<SubmitOutcome> outcome = gateway_->Debit(request, Soon(absl::Milliseconds(400)));
  ASSERT_TRUE(outcome.ok()) << outcome.status();
  EXPECT_EQ(outcome->kind, Kind::kUnknown);
  EXPECT_FALSE(outcome->unknown_reason.empty());
  absl::StatusOr<StatusReport> report = gateway_->StatusByMerchantTransactionId(
      Connector::kInPerson, request.merchant_transaction_id, Soon());
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_TRUE(report->found);
  // The gateway carried on: the payer's answer still arrives.
  EXPECT_EQ(AwaitCallback(request.merchant_transaction_id).result, CallbackEvent::Result::kOk);
  int debits = 0;
  for (const Json& entry : RequestsFor(request.merchant_transaction_id)) {
    debits += JsonText(entry, "operation") == "debit" && entry.value("created", false);
  }
  EXPECT_EQ(debits, 1);
}

TEST_F(BankartSimTest, TimeoutBeforeTheGatewayCreatedAnythingIsUnknownAndNotFound) {
  Control("POST", "/_sim/faults",
          Json{{"kind", "timeout_before"}, {"operation", "debit"}, {"delay_ms", 1500}});
  DebitRequest request = Rtp(RtpKind::kInPerson, "success.debit@bankart.flik");
  absl::StatusOr<SubmitOutcome> outcome = gateway_->Debit(request, Soon(absl::Milliseconds(400)));
  ASSERT_TRUE(outcome.ok()) << outcome.status();
  EXPECT_EQ(outcome->kind, Kind::kUnknown);
  absl::StatusOr<StatusReport> report = gateway_->StatusByMerchantTransactionId(
      Connector::kInPerson, request.merchant_transaction_id, Soon());
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_FALSE(report->found);
}

TEST_F(BankartSimTest, ServerErrorsAreUnknownWhetherOrNotTheDebitWasCreated) {
  Control("POST", "/_sim/faults",
          Json{{"kind", "error_before"}, {"operation", "debit"}, {"http_status", 503}});
  DebitRequest not_created = Rtp(RtpKind::kInPerson, "success.debit@bankart.flik");
  absl::StatusOr<SubmitOutcome> first = gateway_->Debit(not_created, Soon());
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->kind, Kind::kUnknown);
  EXPECT_EQ(first->http_status, 503);
  EXPECT_FALSE(gateway_
                   ->StatusByMerchantTransactionId(Connector::kInPerson,
                                                   not_created.merchant_transaction_id, Soon())
                   ->found);

  for (int http_status : {504, 522}) {
    Control("POST", "/_sim/faults",
            Json{{"kind", "error_after"}, {"operation", "debit"}, {"http_status", http_status}});
    DebitRequest created = Rtp(RtpKind::kInPerson, "success.debit@bankart.flik");
    absl::StatusOr<SubmitOutcome> second = gateway_->Debit(created, Soon());
    ASSERT_TRUE(second.ok());
    EXPECT_EQ(second->kind, Kind::kUnknown);
    EXPECT_EQ(second->http_status, http_status);
    EXPECT_TRUE(gateway_
                    ->StatusByMerchantTransactionId(Connector::kInPerson,
                                                    created.merchant_transaction_id, Soon())
                    ->found);
  }
}

TEST_F(BankartSimTest, SlowAnswerWithinTheDeadlineIsAccepted) {
  Control("POST", "/_sim/faults",
          Json{{"kind", "slow"}, {"operation", "payout"}, {"delay_ms", 300}});
  PayoutRequest payout;
  payout.merchant_transaction_id = NewId("payout");
  payout.alias = "0038670999555";
  payout.amount_minor = 100;
  payout.callback_url = receiver_->Url();
  const absl::Time start = absl::Now();
  MustAccept(gateway_->Payout(payout, Soon()));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(300));
}

TEST_F(BankartSimTest, RefundAndPayoutTimeoutsAreUnknownToo) {
  Control("POST", "/_sim/faults",
          Json{{"kind", "timeout_after"}, {"operation", "payout"}, {"delay_ms", 1000}});
  PayoutRequest payout;
  payout.merchant_transaction_id = NewId("payout");
  payout.alias = "0038670999555";
  payout.amount_minor = 100;
  payout.callback_url = receiver_->Url();
  EXPECT_EQ(gateway_->Payout(payout, Soon(absl::Milliseconds(300)))->kind, Kind::kUnknown);

  DebitRequest debit = Rtp(RtpKind::kInPerson, "0038670999333");
  SubmitOutcome paid = MustAccept(gateway_->Debit(debit, Soon()));
  AwaitCallback(debit.merchant_transaction_id);
  Control("POST", "/_sim/faults",
          Json{{"kind", "error_after"}, {"operation", "refund"}, {"http_status", 502}});
  RefundRequest refund;
  refund.connector = Connector::kInPerson;
  refund.merchant_transaction_id = NewId("refund");
  refund.reference_uuid = paid.uuid;
  refund.amount_minor = 100;
  refund.callback_url = receiver_->Url();
  EXPECT_EQ(gateway_->Refund(refund, Soon())->kind, Kind::kUnknown);
}

TEST_F(BankartSimTest, UnreachableGatewayMeansCertainlyNotSent) {
  // Bind a port, then close it again: nothing listens there.
  const int probe = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  ASSERT_EQ(bind(probe, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  getsockname(probe, reinterpret_cast<sockaddr*>(&address), &length);
  const int closed_port = ntohs(address.sin_port);
  close(probe);
  BankartConfig config = Config();
  config.base_url = absl::StrCat("http://127.0.0.1:", closed_port, "/api/v3");
  absl::StatusOr<SubmitOutcome> outcome =
      BankartGateway(config).Debit(Rtp(RtpKind::kInPerson, "success.debit@bankart.flik"), Soon());
  ASSERT_FALSE(outcome.ok());
  EXPECT_EQ(outcome.status().code(), absl::StatusCode::kUnavailable);
}

TEST_F(BankartSimTest, StatusQueriesRetryThroughRateLimitsAndServerErrors) {
  DebitRequest request = Rtp(RtpKind::kInPerson, "success.debit@bankart.flik");
  SubmitOutcome outcome = MustAccept(gateway_->Debit(request, Soon()));
  Control("POST", "/_sim/faults",
          Json{{"kind", "rate_limit"}, {"operation", "status"}, {"count", 2}});
  Control("POST", "/_sim/faults",
          Json{{"kind", "error_before"}, {"operation", "status"}, {"http_status", 503}});
  const absl::Time start = absl::Now();
  absl::StatusOr<StatusReport> report =
      gateway_->StatusByUuid(Connector::kInPerson, outcome.uuid, Soon(absl::Seconds(15)));
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_TRUE(report->found);
  // Retry-After: 1 was honoured twice.
  EXPECT_GE(absl::Now() - start, absl::Seconds(2));
  int answered_429 = 0, answered_503 = 0, answered_200 = 0;
  for (const Json& entry : RequestsFor(outcome.uuid)) {
    const int status = entry.value("httpStatus", 0);
    answered_429 += status == 429;
    answered_503 += status == 503;
    answered_200 += status == 200;
  }
  EXPECT_EQ(answered_429, 2);
  EXPECT_EQ(answered_503, 1);
  EXPECT_EQ(answered_200, 1);
}

TEST_F(BankartSimTest, StatusQueriesGiveUpAtTheDeadline) {
  DebitRequest request = Rtp(RtpKind::kInPerson, "success.debit@bankart.flik");
  SubmitOutcome outcome = MustAccept(gateway_->Debit(request, Soon()));
  Control("POST", "/_sim/faults",
          Json{{"kind", "rate_limit"}, {"operation", "status"}, {"count", 100}});
  const absl::Time start = absl::Now();
  absl::StatusOr<StatusReport> report =
      gateway_->StatusByUuid(Connector::kInPerson, outcome.uuid, Soon(absl::Milliseconds(1500)));
  EXPECT_EQ(report.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));
}

TEST_F(BankartSimTest, SimEnforcesThePerTransactionStatusRateLimit) {
  DebitRequest request = Rtp(RtpKind::kInPerson, "success.debit@bankart.flik");
  SubmitOutcome outcome = MustAccept(gateway_->Debit(request, Soon()));
  BankartConfig impatient = Config();
  impatient.status_max_attempts = 1;
  BankartGateway gateway(impatient);
  int refused = 0;
  // The window is 60 s * 0.01 = 0.6 s; 12 queries in a burst exceed 10 per window.
  for (int i = 0; i < 12; ++i) {
    refused += gateway.StatusByUuid(Connector::kInPerson, outcome.uuid, Soon()).status().code() ==
               absl::StatusCode::kResourceExhausted;
  }
  EXPECT_GE(refused, 1);
}

TEST_F(BankartSimTest, UnacknowledgedCallbackIsRetriedOnTheGatewaysSchedule) {
  receiver_->FailNext(1);
  DebitRequest request = Rtp(RtpKind::kInPerson, "success.debit@bankart.flik");
  MustAccept(gateway_->Debit(request, Soon()));
  const absl::Time start = absl::Now();
  AwaitCallback(request.merchant_transaction_id, 1);
  CallbackEvent retried = AwaitCallback(request.merchant_transaction_id, 2);
  // First retry after 1 min, scaled by 0.01.
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(500));
  EXPECT_EQ(retried.result, CallbackEvent::Result::kOk);
  absl::SleepFor(absl::Seconds(1));
  EXPECT_EQ(receiver_->CountFor(request.merchant_transaction_id),
            2);  // acknowledged: no more
  int acknowledged_attempt = 0;
  const Json journal = Control("GET", "/_sim/journal");
  for (const Json& entry : journal["callbacks"]) {
    if (JsonText(entry, "merchantTransactionId") == request.merchant_transaction_id &&
        entry.value("acknowledged", false)) {
      acknowledged_attempt = entry.value("attempt", 0);
    }
  }
  EXPECT_EQ(acknowledged_attempt, 2);
}

TEST_F(BankartSimTest, DroppedCallbackNeverArrivesButStatusKnowsTheResult) {
  Control("POST", "/_sim/callback-faults", Json{{"kind", "drop"}});
  DebitRequest request = Rtp(RtpKind::kInPerson, "success.debit@bankart.flik");
  SubmitOutcome outcome = MustAccept(gateway_->Debit(request, Soon()));
  EXPECT_FALSE(receiver_->WaitFor(request.merchant_transaction_id, 1, absl::Seconds(1)));
  EXPECT_EQ(gateway_->StatusByUuid(Connector::kInPerson, outcome.uuid, Soon())->status,
            StatusReport::Status::kSuccess);
}

TEST_F(BankartSimTest, DuplicatedCallbackArrivesSeveralTimesIdentically) {
  Control("POST", "/_sim/callback-faults", Json{{"kind", "duplicate"}, {"copies", 3}});
  DebitRequest request = Rtp(RtpKind::kInPerson, "cancel.debit@bankart.flik");
  MustAccept(gateway_->Debit(request, Soon()));
  CallbackEvent third = AwaitCallback(request.merchant_transaction_id, 3);
  EXPECT_EQ(third.result, CallbackEvent::Result::kError);
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_EQ(receiver_->CountFor(request.merchant_transaction_id), 3);
  std::set<std::string> bodies;
  for (const InboundCallback& callback : receiver_->All()) {
    if (absl::StrContains(callback.body, request.merchant_transaction_id)) {
      bodies.insert(callback.body);
    }
  }
  EXPECT_EQ(bodies.size(), 1u);
}

TEST_F(BankartSimTest, DelayedCallbackArrivesLate) {
  Control("POST", "/_sim/callback-faults", Json{{"kind", "delay"}, {"delay_ms", 800}});
  DebitRequest request = Rtp(RtpKind::kInPerson, "success.debit@bankart.flik");
  const absl::Time start = absl::Now();
  MustAccept(gateway_->Debit(request, Soon()));
  AwaitCallback(request.merchant_transaction_id);
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(800));
}

TEST_F(BankartSimTest, ReorderedCallbacksArriveNewestFirst) {
  Control("POST", "/_sim/callback-faults", Json{{"kind", "reorder"}, {"count", 2}});
  DebitRequest first = Rtp(RtpKind::kInPerson, "success.debit@bankart.flik");
  MustAccept(gateway_->Debit(first, Soon()));
  absl::SleepFor(absl::Milliseconds(200));  // the first one's callback is due and held
  DebitRequest second = Rtp(RtpKind::kInPerson, "cancel.debit@bankart.flik");
  MustAccept(gateway_->Debit(second, Soon()));
  AwaitCallback(first.merchant_transaction_id);
  AwaitCallback(second.merchant_transaction_id);
  std::vector<std::string> order;
  for (const InboundCallback& callback : receiver_->All()) {
    for (const DebitRequest* request : {&first, &second}) {
      if (absl::StrContains(callback.body, request->merchant_transaction_id)) {
        order.push_back(request->merchant_transaction_id);
      }
    }
  }
  ASSERT_EQ(order.size(), 2u);
  EXPECT_EQ(order[0], second.merchant_transaction_id);
  EXPECT_EQ(order[1], first.merchant_transaction_id);
}

TEST_F(BankartSimTest, JournalReportsWhatTheSimReceivedAndSent) {
  DebitRequest request = Rtp(RtpKind::kOutOfBand, "success.debit@bankart.flik");
  SubmitOutcome outcome = MustAccept(gateway_->Debit(request, Soon()));
  AwaitCallback(request.merchant_transaction_id);
  absl::SleepFor(absl::Milliseconds(100));
  std::vector<Json> requests = RequestsFor(request.merchant_transaction_id);
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0]["operation"], "debit");
  EXPECT_EQ(requests[0]["connector"], "out_of_band");
  EXPECT_EQ(requests[0]["uuid"], outcome.uuid);
  EXPECT_EQ(requests[0]["created"], true);
  bool acknowledged = false;
  const Json journal = Control("GET", "/_sim/journal");
  for (const Json& entry : journal["callbacks"]) {
    if (JsonText(entry, "uuid") == outcome.uuid) {
      acknowledged = entry.value("acknowledged", false);
      EXPECT_EQ(JsonText(entry, "result"), "OK");
    }
  }
  EXPECT_TRUE(acknowledged);
}

TEST_F(BankartSimTest, ScopedFaultsLeaveOtherTransactionsAlone) {
  DebitRequest other = Rtp(RtpKind::kInPerson, "success.debit@bankart.flik");
  DebitRequest target = Rtp(RtpKind::kInPerson, "success.debit@bankart.flik");
  const std::string prefix = NewId("scope") + "-";
  DebitRequest first = Rtp(RtpKind::kInPerson, "success.debit@bankart.flik");
  DebitRequest second = Rtp(RtpKind::kInPerson, "cancel.debit@bankart.flik");
  first.merchant_transaction_id = prefix + "1";
  second.merchant_transaction_id = prefix + "2";
  Control(
      "POST", "/_sim/faults",
      Json{{"kind", "error_before"}, {"merchant_transaction_id", target.merchant_transaction_id}});
  Control("POST", "/_sim/callback-faults",
          Json{{"kind", "reorder"}, {"count", 2}, {"merchant_transaction_id_prefix", prefix}});
  // Neither fault is for `other`: it is answered and called back as usual.
  MustAccept(gateway_->Debit(other, Soon()));
  EXPECT_EQ(AwaitCallback(other.merchant_transaction_id).result, CallbackEvent::Result::kOk);
  absl::StatusOr<SubmitOutcome> refused = gateway_->Debit(target, Soon());
  ASSERT_TRUE(refused.ok()) << refused.status();
  EXPECT_EQ(refused->kind, Kind::kUnknown);

  MustAccept(gateway_->Debit(first, Soon()));
  absl::SleepFor(absl::Milliseconds(200));  // the first callback is held
  EXPECT_EQ(receiver_->CountFor(first.merchant_transaction_id), 0);
  MustAccept(gateway_->Debit(second, Soon()));
  AwaitCallback(first.merchant_transaction_id);
  std::vector<std::string> order;
  for (const InboundCallback& callback : receiver_->All()) {
    for (const DebitRequest* request : {&first, &second}) {
      if (absl::StrContains(callback.body, request->merchant_transaction_id)) {
        order.push_back(request->merchant_transaction_id);
      }
    }
  }
  EXPECT_EQ(order, (std::vector<std::string>{second.merchant_transaction_id,
                                             first.merchant_transaction_id}));
}

TEST_F(BankartSimTest, ControlApiRefusesBadFaultScopes) {
  HttpRequest request;
  request.method = "POST";
  // Valid faults but for their scope, which must be one non-empty string.
  for (const auto& [path, kind] : std::vector<std::pair<std::string, std::string>>{
           {"/_sim/faults", "slow"}, {"/_sim/callback-faults", "drop"}}) {
    request.url = BaseUrl() + path;
    for (const Json& scope :
         {Json{{"merchant_transaction_id", 7}}, Json{{"merchant_transaction_id_prefix", ""}},
          Json{{"merchant_transaction_id", "a"}, {"merchant_transaction_id_prefix", "a"}}}) {
      Json body = scope;
      body["kind"] = kind;
      request.body = body.dump();
      EXPECT_EQ(http_.Send(request).response.status, 400) << path << " " << request.body;
    }
  }
}

TEST_F(BankartSimTest, ControlApiRefusesUnknownFaults) {
  HttpRequest request;
  request.method = "POST";
  request.url = BaseUrl() + "/_sim/faults";
  request.body = R"({"kind":"explode"})";
  EXPECT_EQ(http_.Send(request).response.status, 400);
  request.url = BaseUrl() + "/_sim/callback-faults";
  EXPECT_EQ(http_.Send(request).response.status, 400);
}

}  // namespace
}  // namespace flikpay::gateway
