// PaymentService's decisions, without processes: what each gateway outcome becomes (for the caller
// and in the store), idempotency, refund caps, callback mapping and the reconciler's conclusions.
// The store is the in-memory one (same core::PlanReport as Redis), the gateway a fake that records
// requests.
#include "server/payment_service.h"

#include <openssl/sha.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "gtest/gtest.h"
#include "server/event_hub.h"
#include "server/http_listeners.h"
#include "tests/support/fake_gateway.h"
#include "tests/support/in_memory_store.h"

namespace flikpay::server {
namespace {

using gateway::SubmitOutcome;
using testing::FakeGateway;
using testing::InMemoryStore;

SubmitOutcome Accepted(gateway::ReturnType type = gateway::ReturnType::kPending) {
  SubmitOutcome outcome;
  outcome.kind = SubmitOutcome::Kind::kAccepted;
  outcome.return_type = type;
  outcome.uuid = "uuid-1";
  outcome.purchase_id = "purchase-1";
  outcome.expires_at = absl::Now() + absl::Seconds(90);
  return outcome;
}

SubmitOutcome Declined(int code, bool retryable = false) {
  SubmitOutcome outcome;
  outcome.kind = SubmitOutcome::Kind::kDeclined;
  outcome.errors.push_back({code, "declined by the test", "03", "bank says no"});
  outcome.retryable = retryable;
  return outcome;
}

SubmitOutcome Unknown() {
  SubmitOutcome outcome;
  outcome.kind = SubmitOutcome::Kind::kUnknown;
  outcome.unknown_reason = "timeout (test)";
  return outcome;
}

v1::CreateRtpRequest Rtp(const std::string& id, int64_t amount = 500) {
  v1::CreateRtpRequest request;
  request.set_merchant_transaction_id(id);
  request.set_amount_minor(amount);
  request.set_kind(v1::RTP_KIND_OUT_OF_BAND);
  request.set_alias("+386 70 999 000");
  request.set_description("invoice 7");
  return request;
}

v1::RefundRequest RefundOf(const std::string& id, const std::string& original, int64_t amount) {
  v1::RefundRequest request;
  request.set_merchant_transaction_id(id);
  request.set_original_merchant_transaction_id(original);
  request.set_amount_minor(amount);
  return request;
}

gateway::CallbackEvent CallbackFor(const std::string& id, gateway::CallbackEvent::Result result) {
  gateway::CallbackEvent event;
  event.result = result;
  event.merchant_transaction_id = id;
  event.uuid = "uuid-1";
  event.type = gateway::TransactionType::kDebit;
  return event;
}

// The successful callback of a refund made in Bankart's portal: an id flikpay never issued, the
// debit named by `reference_uuid` (empty: not named).
gateway::CallbackEvent PortalRefund(const std::string& id, const std::string& uuid,
                                    const std::string& reference_uuid, int64_t amount) {
  gateway::CallbackEvent event = CallbackFor(id, gateway::CallbackEvent::Result::kOk);
  event.type = gateway::TransactionType::kRefund;
  event.uuid = uuid;
  event.reference_uuid = reference_uuid;
  event.amount_minor = amount;
  return event;
}

class PaymentServiceTest : public ::testing::Test {
 protected:
  PaymentServiceTest()
      : service_(gateway_, store_, metrics_,
                 ServiceConfig{"https://pay.example/callbacks/bankart"}) {}

  absl::Time Soon() const { return absl::Now() + absl::Seconds(5); }

  // A debit that Bankart accepted and then confirmed by callback.
  void SuccessfulDebit(const std::string& id, int64_t amount) {
    gateway_.AnswerSends(Accepted());
    ASSERT_TRUE(service_.CreateRtp(shop_, Rtp(id, amount), Soon()).ok());
    gateway_.AnswerCallbacks(CallbackFor(id, gateway::CallbackEvent::Result::kOk));
    ASSERT_TRUE(service_.HandleCallback({}).ok());
    ASSERT_EQ(store_.Get(id)->status(), v1::TRANSACTION_STATUS_SUCCESS);
  }

  FakeGateway gateway_;
  InMemoryStore store_;
  Metrics metrics_;
  PaymentService service_;
  // Every permission, no limit worth the name: these tests are about payments, not policy.
  const Caller shop_ =
      Caller::Of("shop", std::make_shared<const core::CallerPolicy>(core::DevPolicy("shop")));
};

TEST_F(PaymentServiceTest, AnAcceptedDebitIsPendingWithWhatTheGatewaySaid) {
  gateway_.AnswerSends(Accepted());
  absl::StatusOr<v1::Transaction> created = service_.CreateRtp(shop_, Rtp("order-1"), Soon());
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ(created->status(), v1::TRANSACTION_STATUS_PENDING);
  EXPECT_EQ(created->gateway_uuid(), "uuid-1");
  EXPECT_TRUE(created->has_expires_at());
  ASSERT_EQ(gateway_.debits().size(), 1u);
  const gateway::DebitRequest sent = gateway_.debits()[0];
  EXPECT_EQ(sent.alias, "0038670999000") << "normalised before sending";
  EXPECT_EQ(sent.amount_minor, 500);
  EXPECT_EQ(sent.callback_url, "https://pay.example/callbacks/bankart?connector=out_of_band");
  EXPECT_EQ(*store_.FindByGatewayUuid("uuid-1"), "order-1");
}

TEST_F(PaymentServiceTest, TheWaitingScreenIsSentOnlyWhenTheCallerChose) {
  gateway_.AnswerSends(Accepted());
  v1::CreateRtpRequest request = Rtp("order-1");
  ASSERT_TRUE(service_.CreateRtp(shop_, request, Soon()).ok());
  request.set_merchant_transaction_id("order-2");
  request.set_enable_waiting_screen(false);
  ASSERT_TRUE(service_.CreateRtp(shop_, request, Soon()).ok());
  request.set_merchant_transaction_id("order-3");
  request.set_enable_waiting_screen(true);
  ASSERT_TRUE(service_.CreateRtp(shop_, request, Soon()).ok());
  ASSERT_EQ(gateway_.debits().size(), 3u);
  EXPECT_FALSE(gateway_.debits()[0].enable_waiting_screen.has_value()) << "unset: the default";
  EXPECT_EQ(gateway_.debits()[1].enable_waiting_screen, false);
  EXPECT_EQ(gateway_.debits()[2].enable_waiting_screen, true);
}

TEST_F(PaymentServiceTest, AFinishedDebitIsSuccessAtOnce) {
  gateway_.AnswerSends(Accepted(gateway::ReturnType::kFinished));
  EXPECT_EQ(service_.CreateRtp(shop_, Rtp("order-1"), Soon())->status(),
            v1::TRANSACTION_STATUS_SUCCESS);
}

TEST_F(PaymentServiceTest, ADeclineIsStoredAsErrorWithTheGatewaysReason) {
  gateway_.AnswerSends(Declined(2007));
  absl::StatusOr<v1::Transaction> created = service_.CreateRtp(shop_, Rtp("order-1"), Soon());
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ(created->status(), v1::TRANSACTION_STATUS_ERROR);
  EXPECT_EQ(created->error().code(), 2007);
  EXPECT_EQ(created->error().adapter_code(), "03");
  EXPECT_EQ(created->error().payer_message(), kAliasDoesNotExistPayerMessage);
  EXPECT_FALSE(store_.NextCheck("order-1").has_value()) << "final: not watched";
}

TEST_F(PaymentServiceTest, ARetryLaterAnswerCarryingAUuidKeepsTheRecordForTheStatusApi) {
  // Bankart created the transaction (it has a uuid) and still said 1009: a retry would be 3004.
  SubmitOutcome busy_but_created = Declined(1009, /*retryable=*/true);
  busy_but_created.uuid = "uuid-7";
  gateway_.AnswerSends(busy_but_created);
  const absl::Status answer = service_.CreateRtp(shop_, Rtp("order-1"), Soon()).status();
  EXPECT_EQ(answer.code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(absl::StrContains(answer.message(), "retry only with the same id")) << answer;
  ASSERT_TRUE(store_.Get("order-1").ok()) << "kept, not forgotten";
  EXPECT_EQ(store_.Get("order-1")->status(), v1::TRANSACTION_STATUS_UNKNOWN);
  EXPECT_EQ(*store_.FindByGatewayUuid("uuid-7"), "order-1");
  EXPECT_TRUE(store_.NextCheck("order-1").has_value()) << "the reconciler will ask";

  gateway::StatusReport found;
  found.found = true;
  found.status = gateway::StatusReport::Status::kPending;
  gateway_.AnswerStatus(found);
  EXPECT_EQ(service_.Reconcile("order-1", Soon(), absl::Seconds(60))->status(),
            v1::TRANSACTION_STATUS_PENDING);
}

// The same payer decline, however it is reported, ends CANCELLED; other failures end ERROR.
TEST_F(PaymentServiceTest, APayerDeclineIsCancelledByCallbackStatusQueryOrSendAlike) {
  const std::vector<gateway::GatewayError> declined = {{1003, "processing failed", "", ""},
                                                       {2002, "cancelled by payer", "", ""}};
  gateway_.AnswerSends(Accepted());
  ASSERT_TRUE(service_.CreateRtp(shop_, Rtp("by-callback"), Soon()).ok());
  gateway::CallbackEvent callback =
      CallbackFor("by-callback", gateway::CallbackEvent::Result::kError);
  callback.errors = declined;
  gateway_.AnswerCallbacks(callback);
  ASSERT_TRUE(service_.HandleCallback({}).ok());
  EXPECT_EQ(store_.Get("by-callback")->status(), v1::TRANSACTION_STATUS_CANCELLED);
  EXPECT_EQ(store_.Get("by-callback")->error().code(), 2002) << "the decisive error is kept";

  ASSERT_TRUE(service_.CreateRtp(shop_, Rtp("by-status"), Soon()).ok());
  gateway::StatusReport report;
  report.found = true;
  report.status = gateway::StatusReport::Status::kError;  // the gateway's own word: ERROR
  report.errors = declined;
  gateway_.AnswerStatus(report);
  EXPECT_EQ(service_.Reconcile("by-status", Soon(), absl::Seconds(60))->status(),
            v1::TRANSACTION_STATUS_CANCELLED);

  SubmitOutcome refused = Declined(2002);
  gateway_.AnswerSends(refused);
  EXPECT_EQ(service_.CreateRtp(shop_, Rtp("by-send"), Soon())->status(),
            v1::TRANSACTION_STATUS_CANCELLED);

  gateway_.AnswerSends(Declined(2003));
  EXPECT_EQ(service_.CreateRtp(shop_, Rtp("declined-by-bank"), Soon())->status(),
            v1::TRANSACTION_STATUS_ERROR);
}

TEST_F(PaymentServiceTest, TheAliasTextIsShownWhenError2007IsAnywhereInTheList) {
  SubmitOutcome outcome = Declined(1003);
  outcome.errors.push_back({2007, "Alias does not exist", "03", ""});
  gateway_.AnswerSends(outcome);
  absl::StatusOr<v1::Transaction> created = service_.CreateRtp(shop_, Rtp("order-1"), Soon());
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ(created->error().code(), 2007);
  EXPECT_EQ(created->error().payer_message(), kAliasDoesNotExistPayerMessage);
}

TEST_F(PaymentServiceTest, ARetryableDeclineForgetsTheIdSoTheSameIdCanRetry) {
  gateway_.AnswerSends(Declined(1009, /*retryable=*/true));
  const absl::Status busy = service_.CreateRtp(shop_, Rtp("order-1"), Soon()).status();
  EXPECT_EQ(busy.code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(absl::StrContains(busy.message(), "retry with the same id"));
  EXPECT_TRUE(absl::IsNotFound(store_.Get("order-1").status()));

  gateway_.AnswerSends(Accepted());
  EXPECT_TRUE(service_.CreateRtp(shop_, Rtp("order-1"), Soon()).ok());
  EXPECT_EQ(gateway_.debits().size(), 2u);
}

TEST_F(PaymentServiceTest, NotSentIsUnavailableAndForgotten) {
  gateway_.AnswerSends(absl::UnavailableError("connection refused"));
  const absl::Status status = service_.CreateRtp(shop_, Rtp("order-1"), Soon()).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(absl::StrContains(status.message(), "nothing was sent"));
  EXPECT_TRUE(absl::IsNotFound(store_.Get("order-1").status()));

  gateway_.AnswerSends(absl::InvalidArgumentError("alias: rejected"));
  EXPECT_EQ(service_.CreateRtp(shop_, Rtp("order-2"), Soon()).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(PaymentServiceTest, AnUnknownOutcomeIsStoredAndNeverSentTwice) {
  gateway_.AnswerSends(Unknown());
  const absl::Status status = service_.CreateRtp(shop_, Rtp("order-1"), Soon()).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << "the deadline has not passed";
  EXPECT_TRUE(absl::StrContains(status.message(), "order-1"));
  EXPECT_EQ(store_.Get("order-1")->status(), v1::TRANSACTION_STATUS_UNKNOWN);
  EXPECT_TRUE(store_.NextCheck("order-1").has_value()) << "the reconciler looks";

  gateway_.AnswerSends(Accepted());
  absl::StatusOr<v1::Transaction> retried = service_.CreateRtp(shop_, Rtp("order-1"), Soon());
  ASSERT_TRUE(retried.ok()) << retried.status();
  EXPECT_EQ(retried->status(), v1::TRANSACTION_STATUS_UNKNOWN);
  EXPECT_EQ(gateway_.debits().size(), 1u);
}

TEST_F(PaymentServiceTest, AnUnknownOutcomePastTheDeadlineIsDeadlineExceeded) {
  gateway_.AnswerSends(Unknown());
  EXPECT_EQ(service_.CreateRtp(shop_, Rtp("order-1"), absl::Now()).status().code(),
            absl::StatusCode::kDeadlineExceeded);
}

TEST_F(PaymentServiceTest, TheSameIdWithOtherParametersIsRefused) {
  gateway_.AnswerSends(Accepted());
  ASSERT_TRUE(service_.CreateRtp(shop_, Rtp("order-1", 500), Soon()).ok());
  EXPECT_EQ(service_.CreateRtp(shop_, Rtp("order-1", 501), Soon()).status().code(),
            absl::StatusCode::kAlreadyExists);
  // The same request again is answered from the store.
  EXPECT_EQ(service_.CreateRtp(shop_, Rtp("order-1", 500), Soon())->gateway_uuid(), "uuid-1");
  EXPECT_EQ(gateway_.debits().size(), 1u);
}

TEST_F(PaymentServiceTest, BadInputNamesTheFieldAndTouchesNothing) {
  v1::CreateRtpRequest request = Rtp("order-1", 0);
  const absl::Status status = service_.CreateRtp(shop_, request, Soon()).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StartsWith(status.message(), "amount_minor")) << status;
  request = Rtp("order-1");
  request.set_alias("not an alias");
  EXPECT_TRUE(
      absl::StartsWith(service_.CreateRtp(shop_, request, Soon()).status().message(), "alias"));
  EXPECT_TRUE(absl::IsNotFound(store_.Get("order-1").status()));
  EXPECT_TRUE(gateway_.debits().empty());
}

TEST_F(PaymentServiceTest, StoreDownIsUnavailableAndNothingIsSent) {
  store_.SetUnavailable(true);
  gateway_.AnswerSends(Accepted());
  EXPECT_EQ(service_.CreateRtp(shop_, Rtp("order-1"), Soon()).status().code(),
            absl::StatusCode::kUnavailable);
  EXPECT_TRUE(gateway_.debits().empty());
}

TEST_F(PaymentServiceTest, RefundsNeverExceedWhatIsLeft) {
  SuccessfulDebit("order-1", 500);
  gateway_.AnswerSends(Accepted());
  absl::StatusOr<v1::Transaction> first =
      service_.Refund(shop_, RefundOf("refund-1", "order-1", 300), Soon());
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->status(), v1::TRANSACTION_STATUS_PENDING);
  EXPECT_EQ(store_.Reserved("order-1"), 300);

  const absl::Status over =
      service_.Refund(shop_, RefundOf("refund-2", "order-1", 201), Soon()).status();
  EXPECT_EQ(over.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StartsWith(over.message(), "amount_minor")) << over;
  EXPECT_TRUE(absl::IsNotFound(store_.Get("refund-2").status()));
  ASSERT_EQ(gateway_.refunds().size(), 1u);
  EXPECT_EQ(gateway_.refunds()[0].reference_uuid, "uuid-1");
  EXPECT_EQ(gateway_.refunds()[0].connector, gateway::Connector::kOutOfBand);
}

TEST_F(PaymentServiceTest, AFailedRefundGivesItsAmountBackASuccessfulOneCounts) {
  SuccessfulDebit("order-1", 500);
  gateway_.AnswerSends(Declined(3001));
  EXPECT_EQ(service_.Refund(shop_, RefundOf("refund-1", "order-1", 500), Soon())->status(),
            v1::TRANSACTION_STATUS_ERROR);
  EXPECT_EQ(store_.Reserved("order-1"), 0);

  gateway_.AnswerSends(Accepted());
  ASSERT_TRUE(service_.Refund(shop_, RefundOf("refund-2", "order-1", 200), Soon()).ok());
  gateway::CallbackEvent refunded = CallbackFor("refund-2", gateway::CallbackEvent::Result::kOk);
  refunded.type = gateway::TransactionType::kRefund;
  gateway_.AnswerCallbacks(refunded);
  EXPECT_TRUE(service_.HandleCallback({}).ok());
  EXPECT_EQ(store_.Get("order-1")->refunded_amount_minor(), 200);
  EXPECT_EQ(store_.Reserved("order-1"), 200);
}

TEST_F(PaymentServiceTest, OnlyASuccessfulDebitCanBeRefunded) {
  gateway_.AnswerSends(Accepted());
  ASSERT_TRUE(service_.CreateRtp(shop_, Rtp("order-1"), Soon()).ok());  // PENDING
  EXPECT_EQ(service_.Refund(shop_, RefundOf("refund-1", "order-1", 100), Soon()).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(service_.Refund(shop_, RefundOf("refund-1", "order-9", 100), Soon()).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(PaymentServiceTest, CallbacksMapToStatusesAndAnswersBankartExpects) {
  gateway_.AnswerSends(Accepted());
  ASSERT_TRUE(service_.CreateRtp(shop_, Rtp("order-1"), Soon()).ok());

  gateway_.AnswerCallbacks(absl::UnauthenticatedError("bad signature"));
  EXPECT_EQ(CallbackHttpStatus(service_.HandleCallback({})), 401);
  gateway_.AnswerCallbacks(absl::InvalidArgumentError("not a callback"));
  EXPECT_EQ(CallbackHttpStatus(service_.HandleCallback({})), 400);
  EXPECT_EQ(store_.Get("order-1")->status(), v1::TRANSACTION_STATUS_PENDING);

  // Bankart's 2002 is the payer declining: CANCELLED, not ERROR.
  gateway::CallbackEvent declined = CallbackFor("order-1", gateway::CallbackEvent::Result::kError);
  declined.errors.push_back({2002, "cancelled by payer", "", ""});
  gateway_.AnswerCallbacks(declined);
  EXPECT_EQ(CallbackHttpStatus(service_.HandleCallback({})), 200);
  EXPECT_EQ(store_.Get("order-1")->status(), v1::TRANSACTION_STATUS_CANCELLED);
  EXPECT_EQ(store_.Get("order-1")->error().code(), 2002);

  // The same again: acknowledged, nothing new.
  EXPECT_TRUE(service_.HandleCallback({}).ok());
  EXPECT_EQ(metrics_.Callbacks(CallbackResult::kDuplicate), 1);
  EXPECT_EQ(store_.ReadEvents("", 10)->size(), 2u);  // PENDING, CANCELLED

  // A contradicting final status: kept in the history only.
  gateway_.AnswerCallbacks(CallbackFor("order-1", gateway::CallbackEvent::Result::kOk));
  EXPECT_TRUE(service_.HandleCallback({}).ok());
  EXPECT_EQ(store_.Get("order-1")->status(), v1::TRANSACTION_STATUS_CANCELLED);
  EXPECT_EQ(metrics_.status_anomalies.Value(), 1);
}

TEST_F(PaymentServiceTest, ACallbackWithOnlyTheGatewayUuidFindsItsTransaction) {
  gateway_.AnswerSends(Accepted());
  ASSERT_TRUE(service_.CreateRtp(shop_, Rtp("order-1"), Soon()).ok());
  gateway::CallbackEvent by_uuid = CallbackFor("", gateway::CallbackEvent::Result::kOk);
  by_uuid.uuid = "uuid-1";
  gateway_.AnswerCallbacks(by_uuid);
  EXPECT_TRUE(service_.HandleCallback({}).ok());
  EXPECT_EQ(store_.Get("order-1")->status(), v1::TRANSACTION_STATUS_SUCCESS);
  EXPECT_TRUE(store_.UnmatchedCallbacks().empty());

  gateway::CallbackEvent unknown_uuid = CallbackFor("", gateway::CallbackEvent::Result::kOk);
  unknown_uuid.uuid = "uuid-nobody";
  gateway_.AnswerCallbacks(unknown_uuid);
  EXPECT_TRUE(service_.HandleCallback({}).ok()) << "acknowledged, so Bankart stops retrying";
  EXPECT_EQ(store_.UnmatchedCallbacks().size(), 1u);
}

TEST_F(PaymentServiceTest, ACallbackOfATransactionTypeFlikpayNeverStartsIsKeptAsideUnapplied) {
  // E.g. a chargeback or a capture Bankart reports under a known id: never a status change of the
  // debit.
  gateway_.AnswerSends(Accepted());
  ASSERT_TRUE(service_.CreateRtp(shop_, Rtp("order-1"), Soon()).ok());
  gateway::CallbackEvent other = CallbackFor("order-1", gateway::CallbackEvent::Result::kError);
  other.type = gateway::TransactionType::kOther;
  gateway_.AnswerCallbacks(other);
  gateway::InboundCallback callback;
  callback.body = R"({"transactionType":"CHARGEBACK"})";
  EXPECT_TRUE(service_.HandleCallback(callback).ok());
  EXPECT_EQ(store_.Get("order-1")->status(), v1::TRANSACTION_STATUS_PENDING);
  EXPECT_EQ(store_.UnmatchedCallbacks(), std::vector<std::string>{callback.body});
  EXPECT_EQ(metrics_.Callbacks(CallbackResult::kUnknownTransaction), 1);
}

TEST_F(PaymentServiceTest, APayoutSendsTheNormalizedAliasAndIsIdempotent) {
  gateway_.AnswerSends(Accepted(gateway::ReturnType::kFinished));
  v1::PayoutRequest request;
  request.set_merchant_transaction_id("payout-1");
  request.set_amount_minor(2500);
  request.set_alias("070 999 555");
  request.set_description("winnings");
  absl::StatusOr<v1::Transaction> paid = service_.Payout(shop_, request, Soon());
  ASSERT_TRUE(paid.ok()) << paid.status();
  EXPECT_EQ(paid->type(), v1::TRANSACTION_TYPE_PAYOUT);
  EXPECT_EQ(paid->status(), v1::TRANSACTION_STATUS_SUCCESS);
  EXPECT_EQ(paid->alias().find("999555"), std::string::npos) << "stored masked: " << paid->alias();
  ASSERT_EQ(gateway_.payouts().size(), 1u);
  const gateway::PayoutRequest sent = gateway_.payouts()[0];
  EXPECT_EQ(sent.alias, "0038670999555");
  EXPECT_EQ(sent.amount_minor, 2500);
  EXPECT_EQ(sent.currency, "EUR");
  EXPECT_EQ(sent.callback_url, "https://pay.example/callbacks/bankart?connector=payout");

  // The same request again (the alias written another way): the stored payout, nothing sent.
  request.set_alias("+38670999555");
  absl::StatusOr<v1::Transaction> again = service_.Payout(shop_, request, Soon());
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->version(), paid->version());
  EXPECT_EQ(gateway_.payouts().size(), 1u);

  request.set_amount_minor(2600);
  EXPECT_EQ(service_.Payout(shop_, request, Soon()).status().code(),
            absl::StatusCode::kAlreadyExists);
  request.set_merchant_transaction_id("payout-2");
  request.clear_alias();
  absl::Status missing = service_.Payout(shop_, request, Soon()).status();
  EXPECT_EQ(missing.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StartsWith(missing.message(), "alias: ")) << missing.message();
  EXPECT_EQ(gateway_.payouts().size(), 1u);
}

// Seed 000: refunds can also be made in Bankart's portal; their callbacks name an id flikpay never
// issued. They are refunds of flikpay's debit all the same, and count against its cap.
TEST_F(PaymentServiceTest, ARefundMadeInBankartsPortalIsRecordedAgainstItsDebit) {
  SuccessfulDebit("order-1", 1000);  // uuid-1
  const gateway::CallbackEvent portal = PortalRefund("portal-4711", "uuid-refund-9", "uuid-1", 600);
  gateway_.AnswerCallbacks(portal);
  ASSERT_TRUE(service_.HandleCallback({}).ok());

  absl::StatusOr<v1::Transaction> refund = store_.Get("portal-4711");
  ASSERT_TRUE(refund.ok()) << refund.status();
  EXPECT_EQ(refund->type(), v1::TRANSACTION_TYPE_REFUND);
  EXPECT_EQ(refund->status(), v1::TRANSACTION_STATUS_SUCCESS);
  EXPECT_EQ(refund->original_merchant_transaction_id(), "order-1");
  EXPECT_EQ(refund->amount_minor(), 600);
  EXPECT_EQ(refund->history().rbegin()->source(), v1::EVENT_SOURCE_CALLBACK);
  EXPECT_EQ(*store_.FindByGatewayUuid("uuid-refund-9"), "portal-4711");
  EXPECT_EQ(store_.Get("order-1")->refunded_amount_minor(), 600);
  EXPECT_TRUE(store_.UnmatchedCallbacks().empty());
  EXPECT_EQ(metrics_.portal_refunds.Value(), 1);
  const std::vector<v1::StatusEvent> events = *store_.ReadEvents("", 100);
  EXPECT_EQ(events.back().transaction().merchant_transaction_id(), "portal-4711");

  // Bankart retries the same callback: nothing counted twice.
  ASSERT_TRUE(service_.HandleCallback({}).ok());
  EXPECT_EQ(store_.Get("order-1")->refunded_amount_minor(), 600);

  // What is left is what flikpay may still refund.
  gateway_.AnswerSends(Accepted());
  EXPECT_EQ(service_.Refund(shop_, RefundOf("refund-2", "order-1", 500), Soon()).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(service_.Refund(shop_, RefundOf("refund-3", "order-1", 400), Soon()).ok());
}

// The money has moved at Bankart: a portal refund is recorded even where flikpay's cap would have
// refused it (its own refund still pending, say), and counted as an anomaly to look at.
TEST_F(PaymentServiceTest, APortalRefundBeyondWhatFlikpayHeldRefundableIsRecordedAsAnAnomaly) {
  SuccessfulDebit("order-1", 1000);
  SubmitOutcome refund_accepted = Accepted();
  refund_accepted.uuid = "uuid-refund-1";
  gateway_.AnswerSends(refund_accepted);
  ASSERT_TRUE(
      service_.Refund(shop_, RefundOf("refund-1", "order-1", 800), Soon()).ok());  // pending
  gateway_.AnswerCallbacks(PortalRefund("portal-9", "uuid-refund-9", "uuid-1", 500));
  ASSERT_TRUE(service_.HandleCallback({}).ok());
  ASSERT_TRUE(store_.Get("portal-9").ok()) << "recorded, not parked";
  EXPECT_EQ(store_.Get("portal-9")->status(), v1::TRANSACTION_STATUS_SUCCESS);
  EXPECT_EQ(store_.Get("order-1")->refunded_amount_minor(), 500);
  EXPECT_EQ(metrics_.status_anomalies.Value(), 1);
  EXPECT_TRUE(store_.UnmatchedCallbacks().empty());
}

TEST_F(PaymentServiceTest, APortalRefundWithoutReferenceUuidIsLinkedThroughTheStatusApi) {
  SuccessfulDebit("order-1", 1000);
  gateway::CallbackEvent portal = PortalRefund("portal-4712", "uuid-refund-10", "", 250);
  gateway::StatusReport report;
  report.found = true;
  report.status = gateway::StatusReport::Status::kSuccess;
  report.uuid = "uuid-refund-10";
  report.reference_uuid = "uuid-1";
  gateway_.AnswerStatus(report);
  gateway_.AnswerCallbacks(portal);
  ASSERT_TRUE(service_.HandleCallback({}).ok());
  EXPECT_EQ(store_.Get("portal-4712")->original_merchant_transaction_id(), "order-1");
  EXPECT_EQ(store_.Get("order-1")->refunded_amount_minor(), 250);
  EXPECT_GE(gateway_.status_queries(), 1);

  // A refund of a debit flikpay does not know stays unmatched.
  portal.merchant_transaction_id = "portal-4713";
  portal.uuid = "uuid-refund-11";
  portal.reference_uuid = "uuid-of-someone-else";
  gateway_.AnswerCallbacks(portal);
  ASSERT_TRUE(service_.HandleCallback({}).ok());
  EXPECT_TRUE(absl::IsNotFound(store_.Get("portal-4713").status()));
  EXPECT_EQ(store_.UnmatchedCallbacks().size(), 1u);
}

TEST_F(PaymentServiceTest, UnmatchedCallbacksAreKeptAndStoreOutagesRetried) {
  gateway_.AnswerCallbacks(CallbackFor("nobody-knows", gateway::CallbackEvent::Result::kOk));
  gateway::InboundCallback callback;
  callback.body = "{\"merchantTransactionId\":\"nobody-knows\"}";
  EXPECT_EQ(CallbackHttpStatus(service_.HandleCallback(callback)), 200);
  EXPECT_EQ(store_.UnmatchedCallbacks(), std::vector<std::string>{callback.body});

  store_.SetUnavailable(true);
  EXPECT_EQ(CallbackHttpStatus(service_.HandleCallback(callback)), 503)
      << "Bankart retries what flikpay could not store";
}

TEST_F(PaymentServiceTest, TheReconcilerSettlesUnknownOutcomes) {
  gateway_.AnswerSends(Unknown());
  ASSERT_FALSE(service_.CreateRtp(shop_, Rtp("order-1"), Soon()).ok());

  gateway::StatusReport found;
  found.found = true;
  found.status = gateway::StatusReport::Status::kSuccess;
  found.uuid = "uuid-9";
  gateway_.AnswerStatus(found);
  absl::StatusOr<v1::Transaction> settled =
      service_.Reconcile("order-1", Soon(), absl::Seconds(60));
  ASSERT_TRUE(settled.ok()) << settled.status();
  EXPECT_EQ(settled->status(), v1::TRANSACTION_STATUS_SUCCESS);
  EXPECT_EQ(settled->gateway_uuid(), "uuid-9");
  EXPECT_EQ(settled->history().rbegin()->source(), v1::EVENT_SOURCE_RECONCILER);
}

TEST_F(PaymentServiceTest, ARefreshAppliesWhatTheStatusApiSays) {
  gateway_.AnswerSends(Accepted());
  ASSERT_TRUE(service_.CreateRtp(shop_, Rtp("order-1"), Soon()).ok());
  gateway::StatusReport cancelled;
  cancelled.found = true;
  cancelled.status = gateway::StatusReport::Status::kCancelled;
  cancelled.errors.push_back({2002, "cancelled by payer", "", ""});
  gateway_.AnswerStatus(cancelled);
  v1::GetStatusRequest request;
  request.set_gateway_uuid("uuid-1");
  request.set_refresh(true);
  absl::StatusOr<v1::Transaction> refreshed = service_.GetStatus(shop_, request, Soon());
  ASSERT_TRUE(refreshed.ok()) << refreshed.status();
  EXPECT_EQ(refreshed->status(), v1::TRANSACTION_STATUS_CANCELLED);
  EXPECT_EQ(refreshed->error().code(), 2002);
  EXPECT_EQ(gateway_.status_queries(), 1);
  EXPECT_EQ(metrics_.status_query_quota_left.Value(), ServiceConfig().status_queries_per_window - 1)
      << "the refresh took one of Bankart's status queries";

  gateway_.AnswerStatus(absl::DeadlineExceededError("no answer"));
  request.set_merchant_transaction_id("order-1");
  EXPECT_EQ(service_.GetStatus(shop_, request, Soon()).status().code(),
            absl::StatusCode::kUnavailable);
  request.set_refresh(false);
  EXPECT_EQ(service_.GetStatus(shop_, request, Soon())->status(), v1::TRANSACTION_STATUS_CANCELLED)
      << "a plain read never asks the gateway";
  EXPECT_EQ(gateway_.status_queries(), 2);
}

TEST_F(PaymentServiceTest, NotFoundAtBankartIsErrorOnlyAfterTheGrace) {
  gateway_.AnswerSends(Unknown());
  ASSERT_FALSE(service_.CreateRtp(shop_, Rtp("order-1"), Soon()).ok());
  gateway::StatusReport missing;
  missing.found = false;
  gateway_.AnswerStatus(missing);

  EXPECT_EQ(service_.Reconcile("order-1", Soon(), absl::Hours(1))->status(),
            v1::TRANSACTION_STATUS_UNKNOWN)
      << "too early to conclude that nothing was created";
  absl::StatusOr<v1::Transaction> concluded =
      service_.Reconcile("order-1", Soon(), absl::ZeroDuration());
  ASSERT_TRUE(concluded.ok()) << concluded.status();
  EXPECT_EQ(concluded->status(), v1::TRANSACTION_STATUS_ERROR);
  EXPECT_EQ(concluded->error().code(), 8001);
}

// Fingerprints are keyed now; a request first made by a release that stored unkeyed SHA-512
// fingerprints is still the same request when repeated.
TEST_F(PaymentServiceTest, ARequestFingerprintedByAnEarlierReleaseIsStillTheSameRequest) {
  v1::CreateRtpRequest request = Rtp("legacy-1");
  v1::CreateRtpRequest normalized = request;
  normalized.set_currency("EUR");
  normalized.set_alias("0038670999000");
  std::string bytes;
  {
    google::protobuf::io::StringOutputStream stream(&bytes);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    normalized.SerializeToCodedStream(&coded);
  }
  unsigned char digest[SHA512_DIGEST_LENGTH];
  SHA512(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), digest);
  const std::string legacy = absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest), sizeof(digest)));
  v1::Transaction stored;
  stored.set_merchant_transaction_id("legacy-1");
  stored.set_type(v1::TRANSACTION_TYPE_DEBIT);
  stored.set_status(v1::TRANSACTION_STATUS_PENDING);
  stored.set_amount_minor(500);
  stored.set_created_by("shop");
  ASSERT_TRUE(store_.Begin(stored, legacy, absl::Now(), absl::Now() + absl::Minutes(5))->created);

  absl::StatusOr<v1::Transaction> repeated = service_.CreateRtp(shop_, request, Soon());
  ASSERT_TRUE(repeated.ok()) << repeated.status();
  EXPECT_EQ(repeated->status(), v1::TRANSACTION_STATUS_PENDING);
  EXPECT_TRUE(gateway_.debits().empty());
  request.set_amount_minor(501);
  EXPECT_EQ(service_.CreateRtp(shop_, request, Soon()).status().code(),
            absl::StatusCode::kAlreadyExists);
}

// The policy's rules inside the service: kinds, amount limits counted in the store, ownership.
class CallerRulesTest : public PaymentServiceTest {
 protected:
  CallerRulesTest() {
    policy_ = std::make_shared<const core::CallerPolicy>(*core::ParseCallerPolicy(R"({"callers": {
      "shop": {"rpcs": ["CreateRtp", "Refund", "GetStatus", "StreamStatus"],
               "kinds": ["OUT_OF_BAND"],
               "limits": {"CreateRtp": {"max_amount_minor": 800, "max_daily_amount_minor": 1000},
                          "Refund": {"max_amount_minor": 300, "max_daily_amount_minor": 350}}},
      "other-shop": {"rpcs": ["CreateRtp", "Refund", "GetStatus"],
               "limits": {"CreateRtp": {"max_amount_minor": 800, "max_daily_amount_minor": 1000},
                          "Refund": {"max_amount_minor": 800, "max_daily_amount_minor": 1000}}},
      "support": {"rpcs": ["Refund", "GetStatus"], "read_all": true,
               "limits": {"Refund": {"max_amount_minor": 800, "max_daily_amount_minor": 1000}}}
    }})"));
  }

  Caller As(const std::string& id) const { return Caller::Of(id, policy_); }

  std::shared_ptr<const core::CallerPolicy> policy_;
};

TEST_F(CallerRulesTest, AKindTheCallerMayNotAskForIsRefusedBeforeAnythingIsSent) {
  v1::CreateRtpRequest request = Rtp("till-1");
  request.set_kind(v1::RTP_KIND_IN_PERSON);
  absl::StatusOr<v1::Transaction> refused = service_.CreateRtp(As("shop"), request, Soon());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(refused.status().message(), "kind: caller shop may not ask for IN_PERSON payments");
  EXPECT_TRUE(gateway_.debits().empty());
  EXPECT_TRUE(absl::IsNotFound(store_.Get("till-1").status()));
}

TEST_F(CallerRulesTest, TheDailyLimitCountsWhatWasAskedAndGivesBackWhatBankartRefused) {
  gateway_.AnswerSends(Accepted());
  ASSERT_TRUE(service_.CreateRtp(As("shop"), Rtp("day-1", 600), Soon()).ok());
  absl::StatusOr<v1::Transaction> over = service_.CreateRtp(As("shop"), Rtp("day-2", 600), Soon());
  EXPECT_EQ(over.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(over.status().message(),
            "amount_minor: 600 would pass caller shop's CreateRtp limit per day (1000; 600 used in "
            "the last 24 hours)");
  EXPECT_EQ(gateway_.debits().size(), 1u) << "the refused one never reached the gateway";
  // Nothing of it was kept: the same id fits with a smaller amount.
  ASSERT_TRUE(service_.CreateRtp(As("shop"), Rtp("day-2", 300), Soon()).ok());

  // A request Bankart declines moved no money: its amount is given back.
  gateway_.AnswerSends(Declined(2007));
  EXPECT_TRUE(service_.CreateRtp(As("shop"), Rtp("day-3", 100), Soon()).ok());
  gateway_.AnswerSends(Accepted());
  EXPECT_TRUE(service_.CreateRtp(As("shop"), Rtp("day-4", 100), Soon()).ok());
  EXPECT_EQ(service_.CreateRtp(As("shop"), Rtp("day-5", 1), Soon()).status().code(),
            absl::StatusCode::kFailedPrecondition);
  // Another caller has its own day.
  EXPECT_TRUE(service_.CreateRtp(As("other-shop"), Rtp("other-day-1", 800), Soon()).ok());
}

TEST_F(CallerRulesTest, ACallerSeesAndRefundsOnlyItsOwnTransactions) {
  gateway_.AnswerSends(Accepted());
  ASSERT_TRUE(service_.CreateRtp(As("shop"), Rtp("own-1", 500), Soon()).ok());
  gateway_.AnswerCallbacks(CallbackFor("own-1", gateway::CallbackEvent::Result::kOk));
  ASSERT_TRUE(service_.HandleCallback({}).ok());

  v1::GetStatusRequest get;
  get.set_merchant_transaction_id("own-1");
  absl::StatusOr<v1::Transaction> mine = service_.GetStatus(As("shop"), get, Soon());
  ASSERT_TRUE(mine.ok());
  EXPECT_EQ(mine->created_by(), "shop");
  absl::StatusOr<v1::Transaction> theirs = service_.GetStatus(As("other-shop"), get, Soon());
  EXPECT_EQ(theirs.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(theirs.status().message(), "no transaction with merchant_transaction_id own-1");
  // Word for word what an id nobody used gets, by either lookup: nothing tells them apart.
  v1::GetStatusRequest unused;
  unused.set_merchant_transaction_id("never-used");
  EXPECT_EQ(service_.GetStatus(As("other-shop"), unused, Soon()).status().message(),
            "no transaction with merchant_transaction_id never-used");
  v1::GetStatusRequest by_uuid;
  by_uuid.set_gateway_uuid(mine->gateway_uuid());
  ASSERT_FALSE(mine->gateway_uuid().empty());
  EXPECT_EQ(service_.GetStatus(As("other-shop"), by_uuid, Soon()).status().message(),
            absl::StrCat("no transaction with gateway_uuid ", mine->gateway_uuid()));
  by_uuid.set_gateway_uuid("uuid-never-used");
  EXPECT_EQ(service_.GetStatus(As("other-shop"), by_uuid, Soon()).status().message(),
            "no transaction with gateway_uuid uuid-never-used");
  EXPECT_TRUE(service_.GetStatus(As("support"), get, Soon()).ok()) << "read_all";

  absl::StatusOr<v1::Transaction> taken =
      service_.CreateRtp(As("other-shop"), Rtp("own-1", 500), Soon());
  EXPECT_EQ(taken.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(taken.status().message(),
            "merchant_transaction_id own-1 is already used by another caller; choose another id");

  EXPECT_EQ(
      service_.Refund(As("other-shop"), RefundOf("r-1", "own-1", 100), Soon()).status().code(),
      absl::StatusCode::kNotFound);
  absl::StatusOr<v1::Transaction> by_support =
      service_.Refund(As("support"), RefundOf("r-2", "own-1", 100), Soon());
  EXPECT_EQ(by_support.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(by_support.status().message(),
            "original_merchant_transaction_id: own-1 was created by another caller; only its "
            "creator may refund it");
  EXPECT_TRUE(gateway_.refunds().empty());

  absl::StatusOr<v1::Transaction> refund =
      service_.Refund(As("shop"), RefundOf("r-3", "own-1", 100), Soon());
  ASSERT_TRUE(refund.ok()) << refund.status();
  EXPECT_EQ(refund->created_by(), "shop");
  // The shop's refund limits (300 each, 350 a day) are below what is left of the debit (400), so
  // it is the limit, not the refund cap, that refuses these.
  absl::StatusOr<v1::Transaction> too_big =
      service_.Refund(As("shop"), RefundOf("r-4", "own-1", 301), Soon());
  EXPECT_EQ(too_big.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(too_big.status().message(),
            "amount_minor: 301 is above caller shop's Refund limit per transaction (300)");
  absl::StatusOr<v1::Transaction> over_day =
      service_.Refund(As("shop"), RefundOf("r-5", "own-1", 300), Soon());
  EXPECT_EQ(over_day.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(over_day.status().message(),
            "amount_minor: 300 would pass caller shop's Refund limit per day (350; 100 used in the "
            "last 24 hours)");
  EXPECT_EQ(gateway_.refunds().size(), 1u);
  // Exactly what is left of the day still fits, and then nothing.
  EXPECT_TRUE(service_.Refund(As("shop"), RefundOf("r-6", "own-1", 250), Soon()).ok());
  EXPECT_EQ(service_.Refund(As("shop"), RefundOf("r-7", "own-1", 1), Soon()).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(gateway_.refunds().size(), 2u);
}

// A verified callback must be about its transaction as flikpay knows it: one leaked connector
// secret may not settle another connector's payout, nor a cent stand for a thousand euros.
TEST_F(PaymentServiceTest, ACallbackThatDoesNotMatchItsTransactionChangesNothingAndIsCounted) {
  gateway_.AnswerSends(Accepted());
  ASSERT_TRUE(service_.CreateRtp(shop_, Rtp("bound-1", 100000), Soon()).ok());  // Out-of-Band
  using Result = gateway::CallbackEvent::Result;
  const std::pair<std::function<void(gateway::CallbackEvent&)>, std::string> mismatches[] = {
      {[](auto& e) { e.connector = gateway::Connector::kEcommerce; },
       "signed with the ecommerce connector's secret, the transaction is out_of_band's"},
      {[](auto& e) { e.type = gateway::TransactionType::kPayout; },
       "a PAYOUT callback for a TRANSACTION_TYPE_DEBIT"},
      {[](auto& e) { e.amount_minor = 1; }, "amount 1 cents, the transaction's is 100000"},
      {[](auto& e) { e.currency = "USD"; }, "currency USD, the transaction's is EUR"},
      {[](auto& e) { e.uuid = "uuid-other"; }, "uuid uuid-other, the transaction's is uuid-1"},
  };
  int64_t version = store_.Get("bound-1")->version();
  for (const auto& [change, why] : mismatches) {
    gateway::CallbackEvent event = CallbackFor("bound-1", Result::kOk);
    event.connector = gateway::Connector::kOutOfBand;
    event.amount_minor = 100000;
    event.currency = "EUR";
    change(event);
    gateway_.AnswerCallbacks(event);
    const absl::Status answer = service_.HandleCallback({});
    EXPECT_EQ(answer.code(), absl::StatusCode::kInvalidArgument) << why;
    EXPECT_EQ(answer.message(), "the callback does not match its transaction");
    absl::StatusOr<v1::Transaction> stored = store_.Get("bound-1");
    ASSERT_TRUE(stored.ok());
    EXPECT_EQ(stored->status(), v1::TRANSACTION_STATUS_PENDING) << why;
    EXPECT_EQ(stored->version(), ++version) << "recorded in the history: " << why;
    EXPECT_EQ(stored->history().rbegin()->note(), "refused: " + why);
  }
  EXPECT_EQ(metrics_.Callbacks(CallbackResult::kMismatch), 5);
  EXPECT_EQ(metrics_.status_changes.Value(), 1) << "only the RPC's PENDING";

  // The matching callback still settles it.
  gateway::CallbackEvent event = CallbackFor("bound-1", Result::kOk);
  event.connector = gateway::Connector::kOutOfBand;
  event.amount_minor = 100000;
  event.currency = "EUR";
  gateway_.AnswerCallbacks(event);
  EXPECT_TRUE(service_.HandleCallback({}).ok());
  EXPECT_EQ(store_.Get("bound-1")->status(), v1::TRANSACTION_STATUS_SUCCESS);
}

TEST_F(PaymentServiceTest, AReplayedCallbackIsAcknowledgedWithoutEffect) {
  SuccessfulDebit("replayed-1", 500);
  // A contradicting callback, signed: recorded once as an anomaly, its replays not at all.
  gateway_.AnswerCallbacks(CallbackFor("replayed-1", gateway::CallbackEvent::Result::kError));
  gateway::InboundCallback signed_callback;
  signed_callback.headers["x-signature"] = "c2lnbmF0dXJlLTE=";
  ASSERT_TRUE(service_.HandleCallback(signed_callback).ok());
  const v1::Transaction after_first = *store_.Get("replayed-1");
  for (int i = 0; i < 200; ++i) ASSERT_TRUE(service_.HandleCallback(signed_callback).ok());
  EXPECT_EQ(store_.Get("replayed-1")->version(), after_first.version());
  EXPECT_EQ(store_.Get("replayed-1")->history_size(), after_first.history_size());
  EXPECT_EQ(metrics_.Callbacks(CallbackResult::kReplay), 200);
  EXPECT_EQ(metrics_.status_anomalies.Value(), 1);

  // Another signature is another callback.
  signed_callback.headers["x-signature"] = "c2lnbmF0dXJlLTI=";
  ASSERT_TRUE(service_.HandleCallback(signed_callback).ok());
  EXPECT_EQ(metrics_.status_anomalies.Value(), 2);
}

// Two deliveries of the same callback at once (Bankart retrying one it timed out on, two replicas
// behind the load balancer): the second must not be answered 200 while the first's outcome is not
// stored, or a failure of the first (then a 503 nobody retries) would lose it.
TEST_F(PaymentServiceTest, ADeliveryRacingTheFirstOfTheSameCallbackIsAskedToRetry) {
  gateway_.AnswerSends(Accepted());
  ASSERT_TRUE(service_.CreateRtp(shop_, Rtp("raced-1"), Soon()).ok());
  gateway_.AnswerCallbacks(CallbackFor("raced-1", gateway::CallbackEvent::Result::kOk));
  gateway::InboundCallback signed_callback;
  signed_callback.headers["x-signature"] = "c2lnbmF0dXJlLTQ=";
  // The first delivery, on another replica, has claimed the signature and not finished.
  ASSERT_EQ(store_.SightCallback("c2lnbmF0dXJlLTQ=", absl::Seconds(30))
                .value_or(store::Sighting::kHandled),
            store::Sighting::kFirst);
  CallbackOutcome outcome;
  EXPECT_TRUE(absl::IsUnavailable(service_.HandleCallback(signed_callback, &outcome)));
  EXPECT_EQ(outcome.result, CallbackResult::kRetryLater);
  EXPECT_EQ(store_.Get("raced-1")->status(), v1::TRANSACTION_STATUS_PENDING)
      << "the racing delivery changes nothing";

  // That replica died before storing anything: once its claim is given back (or its lease ends),
  // Bankart's next retry is handled, and a replay after that is acknowledged.
  ASSERT_TRUE(store_.ForgetSighting("c2lnbmF0dXJlLTQ=").ok());
  ASSERT_TRUE(service_.HandleCallback(signed_callback, &outcome).ok());
  EXPECT_EQ(store_.Get("raced-1")->status(), v1::TRANSACTION_STATUS_SUCCESS);
  ASSERT_TRUE(service_.HandleCallback(signed_callback, &outcome).ok());
  EXPECT_EQ(outcome.result, CallbackResult::kReplay);
}

TEST_F(PaymentServiceTest, ACallbackNotHandledForAnOutageIsHandledWhenBankartRetriesIt) {
  gateway_.AnswerSends(Accepted());
  ASSERT_TRUE(service_.CreateRtp(shop_, Rtp("retried-1"), Soon()).ok());
  gateway_.AnswerCallbacks(CallbackFor("retried-1", gateway::CallbackEvent::Result::kOk));
  gateway::InboundCallback signed_callback;
  signed_callback.headers["x-signature"] = "c2lnbmF0dXJlLTM=";
  store_.FailApplies(1);
  EXPECT_TRUE(absl::IsUnavailable(service_.HandleCallback(signed_callback)));
  EXPECT_TRUE(service_.HandleCallback(signed_callback).ok());
  EXPECT_EQ(store_.Get("retried-1")->status(), v1::TRANSACTION_STATUS_SUCCESS);
  EXPECT_EQ(metrics_.Callbacks(CallbackResult::kReplay), 0);
}

// The event hub across a failover that fails none of its reads: the store moves to another primary
// (the sentinels' +switch-master) whose stream lacks the hub's last event. Reading on after that
// cursor there would skip what the new primary writes below it; the hub checks its cursor at the
// new generation and, finding it gone, ends its streams (they resume from their own cursors).
class SwitchingStore : public InMemoryStore {
 public:
  // The primary the store moves to; until Switch, this store itself is the primary.
  InMemoryStore& next() { return next_; }
  void Switch() { switched_ = true; }

  uint64_t PrimaryGeneration() override { return switched_ ? 1 : 0; }
  absl::StatusOr<std::string> LatestCursor() override {
    return switched_ ? next_.LatestCursor() : InMemoryStore::LatestCursor();
  }
  absl::StatusOr<std::vector<v1::StatusEvent>> WaitForEvents(absl::string_view after_cursor,
                                                             int max_count,
                                                             absl::Duration wait) override {
    return switched_ ? next_.WaitForEvents(after_cursor, max_count, wait)
                     : InMemoryStore::WaitForEvents(after_cursor, max_count, wait);
  }
  absl::StatusOr<store::StreamRead> WaitForChanges(absl::string_view after_cursor, int max_count,
                                                   absl::Duration wait) override {
    return switched_ ? next_.WaitForChanges(after_cursor, max_count, wait)
                     : InMemoryStore::WaitForChanges(after_cursor, max_count, wait);
  }
  // Only a cursor whose event the primary holds (as RedisStore::CanResumeFrom).
  absl::StatusOr<bool> CanResumeFrom(absl::string_view cursor) override {
    if (!switched_) return InMemoryStore::CanResumeFrom(cursor);
    absl::StatusOr<std::vector<v1::StatusEvent>> all = next_.ReadEvents("", 1000);
    if (!all.ok()) return all.status();
    for (const v1::StatusEvent& event : *all) {
      if (event.cursor() == cursor) return true;
    }
    return false;
  }

 private:
  InMemoryStore next_;
  std::atomic<bool> switched_{false};
};

class RecordingSink : public EventSink {
 public:
  void Offer(const v1::StatusEvent& event) override {
    absl::MutexLock lock(&mutex_);
    offered_.push_back(event.cursor());
  }
  void Abort(const std::string&) override {
    absl::MutexLock lock(&mutex_);
    aborted_ = true;
  }
  // Whether it was ended or offered `cursor` within `within`.
  bool EndedOrOffered(const std::string& cursor, absl::Duration within) {
    absl::MutexLock lock(&mutex_);
    auto told = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) {
      return aborted_ || std::find(offered_.begin(), offered_.end(), cursor) != offered_.end();
    };
    return mutex_.AwaitWithTimeout(absl::Condition(&told), within);
  }

 private:
  absl::Mutex mutex_;
  bool aborted_ ABSL_GUARDED_BY(mutex_) = false;
  std::vector<std::string> offered_ ABSL_GUARDED_BY(mutex_);
};

// An event on `store`, under a new id.
std::string WriteEvent(store::Store& store, const std::string& id) {
  v1::Transaction debit;
  debit.set_merchant_transaction_id(id);
  debit.set_type(v1::TRANSACTION_TYPE_DEBIT);
  debit.set_status(v1::TRANSACTION_STATUS_UNKNOWN);
  debit.set_amount_minor(500);
  debit.set_currency("EUR");
  EXPECT_TRUE(store.Begin(debit, "fp", absl::Now() + absl::Seconds(10), absl::Now()).ok());
  store::Report report;
  report.status = v1::TRANSACTION_STATUS_PENDING;
  report.source = v1::EVENT_SOURCE_RPC;
  report.ends_flight = true;
  absl::StatusOr<store::ApplyResult> applied = store.Apply(id, report);
  EXPECT_TRUE(applied.ok()) << applied.status();
  return applied.ok() ? applied->event_cursor : "";
}

TEST(EventHubSwitchTest, ASwitchToAPrimaryWithoutTheHubsEventEndsTheStreams) {
  SwitchingStore store;
  for (const std::string id : {"a", "b", "c"}) WriteEvent(store, id);
  WriteEvent(store.next(), "a");  // the only one the new primary received
  Metrics metrics;
  EventHub hub(store, metrics);
  hub.Start();
  // Until the hub follows the old primary's stream (it starts from its end).
  auto sink = std::make_shared<RecordingSink>();
  hub.Register(sink);
  bool following = false;
  for (int i = 0; i < 20 && !following; ++i) {
    following = sink->EndedOrOffered(WriteEvent(store, absl::StrCat("d", i)), absl::Seconds(1));
  }
  ASSERT_TRUE(following);
  store.Switch();
  auto after_switch = std::make_shared<RecordingSink>();
  hub.Register(after_switch);
  const std::string below = WriteEvent(store.next(), "e");
  ASSERT_EQ(below, "2-0") << "below the hub's cursor";
  EXPECT_TRUE(after_switch->EndedOrOffered(below, absl::Seconds(5)))
      << "the event below the hub's cursor was skipped without ending the stream";
  hub.Shutdown();
}

}  // namespace
}  // namespace flikpay::server
