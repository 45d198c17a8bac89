// The reconciler's choices, one pass at a time: what it checks, what it leaves to another replica
// or to the next minute's quota, and when it looks again.
#include "server/reconciler.h"

#include <optional>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/support/fake_gateway.h"
#include "tests/support/in_memory_store.h"

namespace flikpay::server {
namespace {

using gateway::StatusReport;

class ReconcilerTest : public ::testing::Test {
 protected:
  ReconcilerTest() { service_.emplace(gateway_, store_, metrics_, Config()); }

  // Bankart's status-query quota: `limit` per `window`, shared by priority.
  void UseQuota(int limit, absl::Duration window = absl::Seconds(60)) {
    ServiceConfig config = Config();
    config.status_queries_per_window = limit;
    config.status_quota_window = window;
    service_.emplace(gateway_, store_, metrics_, config);
  }

  const Caller shop_ =
      Caller::Of("shop", std::make_shared<const core::CallerPolicy>(core::DevPolicy("shop")));

  static ServiceConfig Config() {
    ServiceConfig config;
    config.public_callback_url = "https://pay.example/callbacks/bankart";
    config.schedule.unknown_check_after = absl::ZeroDuration();  // due at once
    config.schedule.pending_check_after = absl::Minutes(5);
    config.schedule.recheck_after = absl::Seconds(10);
    return config;
  }

  // A debit whose outcome flikpay does not know: due a check now.
  void UnknownDebit(const std::string& id) {
    gateway::SubmitOutcome unknown;
    unknown.kind = gateway::SubmitOutcome::Kind::kUnknown;
    gateway_.AnswerSends(unknown);
    v1::CreateRtpRequest request;
    request.set_merchant_transaction_id(id);
    request.set_amount_minor(700);
    request.set_kind(v1::RTP_KIND_IN_PERSON);
    request.set_alias("success.debit@bankart.flik");
    ASSERT_EQ(service_->CreateRtp(shop_, request, absl::Now() + absl::Seconds(5)).status().code(),
              absl::StatusCode::kUnavailable);
  }

  void BankartSays(StatusReport::Status status) {
    StatusReport report;
    report.found = true;
    report.status = status;
    gateway_.AnswerStatus(report);
  }

  Reconciler MakeReconciler(int batch = 20) {
    ReconcilerConfig config;
    config.owner = "replica-a";
    config.batch = batch;
    return Reconciler(*service_, store_, metrics_, config);
  }

  testing::FakeGateway gateway_;
  testing::InMemoryStore store_;
  Metrics metrics_;
  std::optional<PaymentService> service_;
};

TEST_F(ReconcilerTest, AnUnknownOutcomeIsSettledFromTheStatusApi) {
  UnknownDebit("order-1");
  BankartSays(StatusReport::Status::kSuccess);
  Reconciler reconciler = MakeReconciler();
  reconciler.RunOnce();
  EXPECT_EQ(store_.Get("order-1")->status(), v1::TRANSACTION_STATUS_SUCCESS);
  EXPECT_FALSE(store_.NextCheck("order-1").has_value()) << "final: unwatched";
  EXPECT_EQ(gateway_.status_queries(), 1);
  EXPECT_EQ(metrics_.reconciler_checks.Value(), 1);
  EXPECT_EQ(metrics_.reconciler_resolved.Value(), 1);
  EXPECT_FALSE(store_.LeaseOwner("order-1").has_value()) << "the lease was given back";
}

TEST_F(ReconcilerTest, NotSettledYetIsLookedAtAgainNoSoonerThanBankartAllows) {
  UnknownDebit("order-1");
  BankartSays(StatusReport::Status::kPending);
  Reconciler reconciler = MakeReconciler();
  const absl::Time before = absl::Now();
  reconciler.RunOnce();
  EXPECT_EQ(store_.Get("order-1")->status(), v1::TRANSACTION_STATUS_PENDING);
  ASSERT_TRUE(store_.NextCheck("order-1").has_value());
  EXPECT_GE(*store_.NextCheck("order-1"), before + absl::Seconds(10));
  reconciler.RunOnce();
  EXPECT_EQ(gateway_.status_queries(), 1) << "not due again yet";
}

TEST_F(ReconcilerTest, AStillPendingTransactionWaitsThePolicysSilenceNotTheRetryInterval) {
  UnknownDebit("order-1");
  BankartSays(StatusReport::Status::kPending);
  Reconciler reconciler = MakeReconciler();
  reconciler.RunOnce();                                            // UNKNOWN -> PENDING
  ASSERT_TRUE(store_.ScheduleCheck("order-1", absl::Now()).ok());  // due again now
  const absl::Time before = absl::Now();
  reconciler.RunOnce();  // still PENDING: nothing changes, but the check counts
  EXPECT_EQ(gateway_.status_queries(), 2);
  ASSERT_TRUE(store_.NextCheck("order-1").has_value());
  EXPECT_GE(*store_.NextCheck("order-1"), before + absl::Minutes(5))
      << "a 72-hour Out-of-Band request must not be polled every recheck_after";
}

TEST_F(ReconcilerTest, AnIdBankartDoesNotKnowYetIsAskedAgainAfterRecheckAfter) {
  UnknownDebit("order-1");
  StatusReport not_found;
  not_found.found = false;
  gateway_.AnswerStatus(not_found);
  Reconciler reconciler = MakeReconciler();
  const absl::Time before = absl::Now();
  reconciler.RunOnce();
  EXPECT_EQ(store_.Get("order-1")->status(), v1::TRANSACTION_STATUS_UNKNOWN)
      << "within not_found_grace nothing is concluded";
  ASSERT_TRUE(store_.NextCheck("order-1").has_value());
  EXPECT_GE(*store_.NextCheck("order-1"), before + absl::Seconds(10));
}

TEST_F(ReconcilerTest, AnIdAlreadyFinalLeavesTheWatchList) {
  UnknownDebit("order-1");
  BankartSays(StatusReport::Status::kSuccess);
  Reconciler reconciler = MakeReconciler();
  reconciler.RunOnce();
  ASSERT_EQ(store_.Get("order-1")->status(), v1::TRANSACTION_STATUS_SUCCESS);
  ASSERT_TRUE(store_.ScheduleCheck("order-1", absl::Now()).ok());  // a stale entry
  reconciler.RunOnce();
  EXPECT_FALSE(store_.NextCheck("order-1").has_value());
  EXPECT_EQ(gateway_.status_queries(), 1) << "a final transaction is not queried";
}

TEST_F(ReconcilerTest, StoreFailuresAreCountedNotSwallowed) {
  UnknownDebit("order-1");
  store_.SetUnavailable(true);
  Reconciler reconciler = MakeReconciler();
  reconciler.RunOnce();
  EXPECT_GE(metrics_.store_unavailable.Value(), 1);
  store_.SetUnavailable(false);
}

TEST_F(ReconcilerTest, AGatewayThatDoesNotAnswerIsRetriedLater) {
  UnknownDebit("order-1");
  gateway_.AnswerStatus(absl::UnavailableError("connection refused"));
  Reconciler reconciler = MakeReconciler();
  const absl::Time before = absl::Now();
  reconciler.RunOnce();
  EXPECT_EQ(store_.Get("order-1")->status(), v1::TRANSACTION_STATUS_UNKNOWN);
  EXPECT_GE(*store_.NextCheck("order-1"), before + absl::Seconds(10));
}

// Replica B read the watch list before replica A checked the transaction and rescheduled it; B must
// not check it a second time.
TEST_F(ReconcilerTest, ATransactionAnotherReplicaJustCheckedIsNotLeasedAgain) {
  UnknownDebit("order-1");
  BankartSays(StatusReport::Status::kPending);
  MakeReconciler().RunOnce();  // replica A: UNKNOWN -> PENDING, next check minutes away
  ASSERT_EQ(gateway_.status_queries(), 1);
  EXPECT_FALSE(*store_.TryLease("order-1", "replica-b", absl::Seconds(30))) << "not due any more";
}

TEST_F(ReconcilerTest, ATransactionLeasedByAnotherReplicaIsLeftToIt) {
  UnknownDebit("order-1");
  BankartSays(StatusReport::Status::kSuccess);
  ASSERT_TRUE(*store_.TryLease("order-1", "replica-b", absl::Seconds(30)));
  Reconciler reconciler = MakeReconciler();
  reconciler.RunOnce();
  EXPECT_EQ(gateway_.status_queries(), 0);
  EXPECT_EQ(store_.Get("order-1")->status(), v1::TRANSACTION_STATUS_UNKNOWN);
}

TEST_F(ReconcilerTest, TheSharedQuotaIsNeverExceededAndWhatIsRefusedWaitsItsTurn) {
  UseQuota(1);
  UnknownDebit("order-1");
  UnknownDebit("order-2");
  BankartSays(StatusReport::Status::kSuccess);
  Reconciler reconciler = MakeReconciler();
  reconciler.RunOnce();
  reconciler.RunOnce();
  EXPECT_EQ(gateway_.status_queries(), 1) << "one query in the window, however many passes";
  const int settled = (store_.Get("order-1")->status() == v1::TRANSACTION_STATUS_SUCCESS) +
                      (store_.Get("order-2")->status() == v1::TRANSACTION_STATUS_SUCCESS);
  EXPECT_EQ(settled, 1);
  EXPECT_GE(metrics_.status_queries_deferred.Value(), 1);
  for (const char* id : {"order-1", "order-2"}) {
    EXPECT_FALSE(store_.LeaseOwner(id).has_value()) << id << ": the lease was given back";
  }
}

// Many open requests to pay due at once cannot starve an UNKNOWN outcome: silent PENDING ones may
// take only half the window, and the ones refused move behind the rest.
TEST_F(ReconcilerTest, UnknownOutcomesAreSettledFirstWhateverElseIsDue) {
  UseQuota(10);
  gateway::SubmitOutcome pending;
  pending.kind = gateway::SubmitOutcome::Kind::kAccepted;
  pending.return_type = gateway::ReturnType::kPending;
  pending.expires_at = absl::Now() + absl::Hours(72);
  gateway_.AnswerSends(pending);
  for (int i = 0; i < 40; ++i) {
    v1::CreateRtpRequest request;
    request.set_merchant_transaction_id(absl::StrCat("oob-", i));
    request.set_amount_minor(700);
    request.set_kind(v1::RTP_KIND_OUT_OF_BAND);
    request.set_alias("success.debit@bankart.flik");
    ASSERT_TRUE(service_->CreateRtp(shop_, request, absl::Now() + absl::Seconds(5)).ok());
    ASSERT_TRUE(store_.ScheduleCheck(request.merchant_transaction_id(), absl::Now()).ok());
  }
  UnknownDebit("unknown-1");
  UnknownDebit("unknown-2");
  BankartSays(StatusReport::Status::kPending);
  Reconciler reconciler = MakeReconciler(/*batch=*/20);
  for (int pass = 0; pass < 4; ++pass) reconciler.RunOnce();
  EXPECT_EQ(store_.Get("unknown-1")->status(), v1::TRANSACTION_STATUS_PENDING) << "settled";
  EXPECT_EQ(store_.Get("unknown-2")->status(), v1::TRANSACTION_STATUS_PENDING) << "settled";
  EXPECT_LE(gateway_.status_queries(), 10) << "never more than the window allows";
  EXPECT_LE(gateway_.status_queries() - 2, 5) << "silent PENDING ones take half at most";
}

TEST_F(ReconcilerTest, ARefreshTakesFromTheSameQuota) {
  UseQuota(2);
  gateway::SubmitOutcome accepted;
  accepted.kind = gateway::SubmitOutcome::Kind::kAccepted;
  accepted.return_type = gateway::ReturnType::kPending;
  accepted.uuid = "uuid-1";
  gateway_.AnswerSends(accepted);
  v1::CreateRtpRequest request;
  request.set_merchant_transaction_id("order-1");
  request.set_amount_minor(700);
  request.set_kind(v1::RTP_KIND_IN_PERSON);
  request.set_alias("success.debit@bankart.flik");
  ASSERT_TRUE(service_->CreateRtp(shop_, request, absl::Now() + absl::Seconds(5)).ok());
  BankartSays(StatusReport::Status::kPending);
  v1::GetStatusRequest refresh;
  refresh.set_merchant_transaction_id("order-1");
  refresh.set_refresh(true);
  // 90 % of 2 rounds down to 1: the last query of the window stays for an unknown outcome.
  EXPECT_TRUE(service_->GetStatus(shop_, refresh, absl::Now() + absl::Seconds(5)).ok());
  const absl::Status refused =
      service_->GetStatus(shop_, refresh, absl::Now() + absl::Seconds(5)).status();
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(absl::StrContains(refused.message(), "without refresh")) << refused;
  EXPECT_EQ(gateway_.status_queries(), 1);
  refresh.set_refresh(false);
  EXPECT_TRUE(service_->GetStatus(shop_, refresh, absl::Now() + absl::Seconds(5)).ok())
      << "a plain read needs no quota";
}

}  // namespace
}  // namespace flikpay::server
