// flikpay end to end, the API: every seed scenario, refunds, payouts, the redirect flow,
// validation, idempotency under concurrency, callbacks that are contradicting, forged or malformed,
// and the health service.
#include <atomic>
#include <cstdio>
#include <functional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gateway/callback_parser.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/support/e2e_fixture.h"

namespace flikpay {
namespace {

using ::flikpay::testing::Json;
using v1::TransactionStatus;

class ApiTest : public ::flikpay::testing::E2eTest {};

TEST_F(ApiTest, EverySeedScenarioEndsInItsStatusThroughGrpc) { ExpectEverySeedScenario(); }

// Seed 000: redirecting the payer is E-commerce's default; with the waiting screen off and the
// payer's alias known, the answer is PENDING with nowhere to send the browser, and the result comes
// by callback.
TEST_F(ApiTest, ECommerceWithoutRedirectIsPendingAndSettlesByCallback) {
  v1::CreateRtpRequest request = Rtp("success.debit@bankart.flik", v1::RTP_KIND_ECOMMERCE);
  request.set_enable_waiting_screen(false);
  v1::Transaction created;
  ASSERT_TRUE(Create(A(), request, &created).ok());
  EXPECT_TRUE(created.redirect_url().empty()) << created.redirect_url();
  EXPECT_EQ(AwaitFinal(B(), request.merchant_transaction_id()).status(),
            v1::TRANSACTION_STATUS_SUCCESS);

  v1::CreateRtpRequest redirected = Rtp("success.debit@bankart.flik", v1::RTP_KIND_ECOMMERCE);
  v1::Transaction sent_to_page;
  ASSERT_TRUE(Create(A(), redirected, &sent_to_page).ok());
  EXPECT_FALSE(sent_to_page.redirect_url().empty()) << "unset: E-commerce's default, redirect";
}

// Seed 000's "Refund with Postback" made in Bankart's portal: flikpay learns of it from the
// callback alone, records it against its debit and counts it against the cap.
TEST_F(ApiTest, ARefundMadeInBankartsPortalCountsAgainstItsDebit) {
  v1::CreateRtpRequest debit =
      Rtp("success.debit_success.refund@bankart.flik", v1::RTP_KIND_IN_PERSON, 1000);
  v1::Transaction paid;
  ASSERT_NO_FATAL_FAILURE(PaidDebit(debit, &paid));
  const Json made =
      SimControl("POST", absl::StrCat("/_sim/transactions/", paid.gateway_uuid(), "/portal-refund"),
                 Json{{"amount", "6.00"}});
  ASSERT_TRUE(made.is_object() && made.contains("merchantTransactionId")) << made.dump();
  const std::string portal_id = made["merchantTransactionId"].get<std::string>();
  const v1::Transaction refund = AwaitFinal(B(), portal_id);
  EXPECT_EQ(refund.type(), v1::TRANSACTION_TYPE_REFUND);
  EXPECT_EQ(refund.status(), v1::TRANSACTION_STATUS_SUCCESS);
  EXPECT_EQ(refund.original_merchant_transaction_id(), debit.merchant_transaction_id());
  EXPECT_EQ(refund.amount_minor(), 600);
  v1::Transaction debit_now;
  ASSERT_TRUE(Get(A(), debit.merchant_transaction_id(), &debit_now).ok());
  EXPECT_EQ(debit_now.refunded_amount_minor(), 600);
  // 4.00 is left: flikpay refuses 5.00 itself, as Bankart would.
  v1::Transaction out;
  EXPECT_EQ(RefundOn(A(), debit.merchant_transaction_id(), 500, &out).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
}

TEST_F(ApiTest, RefundsAreCappedAndAFailedRefundGivesItsAmountBack) {
  v1::CreateRtpRequest debit =
      Rtp("success.debit_success.refund@bankart.flik", v1::RTP_KIND_OUT_OF_BAND, 1000);
  v1::Transaction paid;
  ASSERT_NO_FATAL_FAILURE(PaidDebit(debit, &paid));

  v1::Transaction first;
  std::string first_id;
  const grpc::Status first_status =
      RefundOn(B(), debit.merchant_transaction_id(), 600, &first, &first_id);
  ASSERT_TRUE(first_status.ok()) << first_status.error_message();
  EXPECT_EQ(first.type(), v1::TRANSACTION_TYPE_REFUND);
  EXPECT_EQ(AwaitFinal(A(), first_id).status(), v1::TRANSACTION_STATUS_SUCCESS);
  v1::Transaction original;
  ASSERT_TRUE(Get(A(), debit.merchant_transaction_id(), &original).ok());
  EXPECT_EQ(original.refunded_amount_minor(), 600);

  v1::Transaction too_much;
  const grpc::Status too_much_status =
      RefundOn(B(), debit.merchant_transaction_id(), 401, &too_much);
  EXPECT_EQ(too_much_status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_TRUE(absl::StartsWith(too_much_status.error_message(), "amount_minor"));

  v1::Transaction not_a_debit;
  EXPECT_EQ(RefundOn(A(), first_id, 1, &not_a_debit).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);

  // The failing-refund scenario: the refund ends in ERROR and its 400 cents are free again.
  v1::CreateRtpRequest second_debit =
      Rtp("success.debit_error.refund@bankart.flik", v1::RTP_KIND_IN_PERSON, 400);
  ASSERT_NO_FATAL_FAILURE(PaidDebit(second_debit, &paid));
  for (int round = 0; round < 2; ++round) {
    v1::Transaction failed;
    std::string refund_id;
    ASSERT_TRUE(
        RefundOn(A(), second_debit.merchant_transaction_id(), 400, &failed, &refund_id).ok())
        << "round " << round;
    EXPECT_EQ(AwaitFinal(B(), refund_id).status(), v1::TRANSACTION_STATUS_ERROR);
  }
}

TEST_F(ApiTest, PayoutsSucceedOrFailPerScenario) {
  for (const auto& [alias, status] : std::vector<std::pair<std::string, TransactionStatus>>{
           {"success.payout@bankart.flik", v1::TRANSACTION_STATUS_SUCCESS},
           {"070999555", v1::TRANSACTION_STATUS_SUCCESS},
           {"error.payout@bankart.flik", v1::TRANSACTION_STATUS_ERROR},
           {"0038670999666", v1::TRANSACTION_STATUS_ERROR}}) {
    v1::PayoutRequest request;
    request.set_merchant_transaction_id(NewId("payout"));
    request.set_alias(alias);
    request.set_amount_minor(123456);
    v1::Transaction payout;
    grpc::ClientContext context;
    ASSERT_TRUE(A().Payout(&context, request, &payout).ok()) << alias;
    EXPECT_EQ(payout.type(), v1::TRANSACTION_TYPE_PAYOUT);
    EXPECT_EQ(AwaitFinal(B(), request.merchant_transaction_id()).status(), status) << alias;
  }
}

TEST_F(ApiTest, RedirectFlowWhenTheShopHasNoAlias) {
  v1::CreateRtpRequest request = Rtp("", v1::RTP_KIND_ECOMMERCE);
  request.set_success_url("https://shop.example/ok");
  v1::Transaction created;
  ASSERT_TRUE(Create(A(), request, &created).ok());
  EXPECT_EQ(created.status(), v1::TRANSACTION_STATUS_PENDING);
  ASSERT_TRUE(absl::StartsWith(created.redirect_url(),
                               absl::StrCat("http://127.0.0.1:", sim_port_, "/redirect/")));
  SimControl("POST", absl::StrCat("/_sim/transactions/", created.gateway_uuid(), "/choose"),
             Json{{"scenario", "success"}});
  EXPECT_EQ(AwaitFinal(B(), request.merchant_transaction_id()).status(),
            v1::TRANSACTION_STATUS_SUCCESS);
}

TEST_F(ApiTest, BadInputIsRefusedNamingTheField) {
  struct Case {
    const char* field;
    std::function<void(v1::CreateRtpRequest&)> spoil;
  };
  const std::vector<Case> cases = {
      {"merchant_transaction_id", [](auto& r) { r.set_merchant_transaction_id(""); }},
      {"merchant_transaction_id",
       [](auto& r) { r.set_merchant_transaction_id(std::string(51, 'x')); }},
      {"merchant_transaction_id", [](auto& r) { r.set_merchant_transaction_id("has space"); }},
      {"amount_minor", [](auto& r) { r.set_amount_minor(0); }},
      {"amount_minor", [](auto& r) { r.set_amount_minor(-100); }},
      {"currency", [](auto& r) { r.set_currency("USD"); }},
      {"kind", [](auto& r) { r.set_kind(v1::RTP_KIND_UNSPECIFIED); }},
      {"alias", [](auto& r) { r.set_alias("12345"); }},
      {"alias", [](auto& r) { r.set_alias(""); }},
      {"description", [](auto& r) { r.set_description(std::string(256, 'd')); }},
      {"purpose_code", [](auto& r) { r.set_purpose_code("WEBI"); }},
      {"purpose_code",
       [](auto& r) {
         r.set_structured_reference(true);
         r.set_purpose_code("webi");
       }},
      {"success_url", [](auto& r) { r.set_success_url("javascript:alert(1)"); }},
      {"payer_ip", [](auto& r) { r.set_payer_ip("300.1.1.1"); }},
      {"merchant_metadata", [](auto& r) { r.set_merchant_metadata(std::string(256, 'm')); }},
  };
  for (const Case& c : cases) {
    v1::CreateRtpRequest request = Rtp("success.debit@bankart.flik", v1::RTP_KIND_IN_PERSON);
    c.spoil(request);
    v1::Transaction out;
    grpc::Status status = Create(A(), request, &out);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << c.field;
    EXPECT_TRUE(absl::StartsWith(status.error_message(), c.field)) << status.error_message();
    if (!request.merchant_transaction_id().empty()) {
      EXPECT_EQ(SimDebitsFor(request.merchant_transaction_id()), 0) << c.field;
    }
  }
  v1::Transaction missing;
  EXPECT_EQ(Get(A(), "no-such-transaction", &missing).error_code(), grpc::StatusCode::NOT_FOUND);
  v1::GetStatusRequest no_id;
  grpc::ClientContext context;
  EXPECT_EQ(A().GetStatus(&context, no_id, &missing).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(ApiTest, ConcurrentDuplicatesOnTwoReplicasReachTheGatewayOnce) {
  v1::CreateRtpRequest request = Rtp("success.debit@bankart.flik", v1::RTP_KIND_OUT_OF_BAND);
  const CreateTally tally = CreateConcurrently(request, 40, 1);
  EXPECT_EQ(tally.ok + tally.aborted, 40);
  EXPECT_EQ(tally.other, 0);
  EXPECT_GE(tally.ok, 1);
  // Once the first call is done, every retry gets the stored transaction.
  v1::Transaction first, again;
  ASSERT_TRUE(Create(B(), request, &first).ok());
  ASSERT_TRUE(Create(A(), request, &again).ok());
  EXPECT_EQ(first.gateway_uuid(), again.gateway_uuid());
  EXPECT_EQ(SimDebitsFor(request.merchant_transaction_id()), 1);

  request.set_amount_minor(request.amount_minor() + 1);
  v1::Transaction changed;
  EXPECT_EQ(Create(A(), request, &changed).error_code(), grpc::StatusCode::ALREADY_EXISTS);
}

TEST_F(ApiTest, ConcurrentRefundsOnTwoReplicasNeverExceedTheOriginal) {
  v1::CreateRtpRequest debit =
      Rtp("success.debit_success.refund@bankart.flik", v1::RTP_KIND_IN_PERSON, 1000);
  v1::Transaction paid;
  ASSERT_NO_FATAL_FAILURE(PaidDebit(debit, &paid));
  // 30 x 70 = 2100 cents asked, 1000 available.
  const RefundTally refunds = RefundConcurrently(debit.merchant_transaction_id(), 70, 30, 1);
  std::printf("concurrent refunds: %d accepted (%d cents), %d refused, %d other\n",
              refunds.accepted, refunds.accepted * 70, refunds.refused, refunds.other);
  EXPECT_EQ(refunds.accepted, 14);  // 14 x 70 = 980 <= 1000 < 15 x 70
  EXPECT_EQ(refunds.refused, 16);
  EXPECT_EQ(RefundedAtBankart(paid.gateway_uuid()), "9.80") << "Bankart's own record agrees";
}

TEST_F(ApiTest, ContradictingCallbackAfterAFinalStateIsRecordedNotApplied) {
  v1::CreateRtpRequest request = Rtp("success.debit@bankart.flik", v1::RTP_KIND_IN_PERSON);
  v1::Transaction created;
  ASSERT_TRUE(Create(A(), request, &created).ok());
  ASSERT_EQ(AwaitFinal(A(), request.merchant_transaction_id()).status(),
            v1::TRANSACTION_STATUS_SUCCESS);
  const Json late = {{"result", "ERROR"},
                     {"uuid", created.gateway_uuid()},
                     {"merchantTransactionId", request.merchant_transaction_id()},
                     {"transactionType", "DEBIT"},
                     {"amount", "11.11"},
                     {"currency", "EUR"},
                     {"errors", {{{"message", "late"}, {"code", "1003"}}}}};
  EXPECT_EQ(PostCallback(replicas_[1]->callback_port, late.dump(), "sim-in-person-secret"), 200);
  // B took the callback; A holds the record in its cache (AwaitFinal read it there) until A's event
  // hub reads B's change notice, which may come just after B's answer (the cache's promise is per
  // replica, once its hub has the change: e2e_cache_test). So A is read until the line is there.
  v1::Transaction after;
  const absl::Time give_up = absl::Now() + absl::Seconds(5);
  do {
    ASSERT_TRUE(Get(A(), request.merchant_transaction_id(), &after).ok());
  } while (after.history_size() < 3 && absl::Now() < give_up);
  EXPECT_EQ(after.status(), v1::TRANSACTION_STATUS_SUCCESS);
  ASSERT_EQ(after.history_size(), 3);
  EXPECT_EQ(after.history(2).to(), v1::TRANSACTION_STATUS_ERROR);
  EXPECT_FALSE(after.history(2).note().empty());
}

TEST_F(ApiTest, BadlySignedCallbackIsRefusedAndChangesNothing) {
  v1::CreateRtpRequest request = Rtp("0038670999000", v1::RTP_KIND_IN_PERSON);
  AddCallbackFault(
      Json{{"kind", "drop"}, {"merchant_transaction_id", request.merchant_transaction_id()}});
  v1::Transaction created;
  ASSERT_TRUE(Create(A(), request, &created).ok());
  const Json forged = {{"result", "OK"},
                       {"uuid", created.gateway_uuid()},
                       {"merchantTransactionId", request.merchant_transaction_id()},
                       {"transactionType", "DEBIT"},
                       {"amount", "11.11"},
                       {"currency", "EUR"}};
  EXPECT_EQ(PostCallback(replicas_[0]->callback_port, forged.dump(), "guessed-secret"), 401);
  EXPECT_EQ(PostCallback(replicas_[0]->callback_port, "{not json", "sim-in-person-secret"), 400);
  v1::Transaction after;
  ASSERT_TRUE(Get(A(), request.merchant_transaction_id(), &after).ok());
  EXPECT_EQ(after.status(), v1::TRANSACTION_STATUS_PENDING);
  EXPECT_EQ(after.version(), created.version());
  // The real (validly signed) one is taken.
  EXPECT_EQ(PostCallback(replicas_[0]->callback_port, forged.dump(), "sim-in-person-secret"), 200);
  ASSERT_TRUE(Get(B(), request.merchant_transaction_id(), &after).ok());
  EXPECT_EQ(after.status(), v1::TRANSACTION_STATUS_SUCCESS);
  // A valid callback for a transaction flikpay never started is kept and acknowledged.
  const Json stranger = {{"result", "OK"},
                         {"uuid", "ffffffffffffffffffff"},
                         {"merchantTransactionId", "not-ours"},
                         {"transactionType", "DEBIT"}};
  EXPECT_EQ(PostCallback(replicas_[1]->callback_port, stranger.dump(), "sim-in-person-secret"),
            200);
}

TEST_F(ApiTest, HealthServiceReportsServing) {
  for (const char* service : {"", "flikpay.v1.PaymentService"}) {
    EXPECT_EQ(Health(*replicas_[0], service), grpc::health::v1::HealthCheckResponse::SERVING)
        << service;
  }
  EXPECT_EQ(AdminStatus(*replicas_[0], "/readyz"), 200);
  EXPECT_EQ(AdminStatus(*replicas_[0], "/healthz"), 200);
}

}  // namespace
}  // namespace flikpay
