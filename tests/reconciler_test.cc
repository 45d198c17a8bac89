// The reconciler's choices, one pass at a time: what it checks, what it leaves to another replica
// or to the next minute's quota, and when it looks again.
#include "server/reconciler.h"

#include "gtest/gtest.h"
#include "tests/support/fake_gateway.h"
#include "tests/support/in_memory_store.h"

namespace flikpay::server {
namespace {

using gateway::StatusReport;

class ReconcilerTest : public ::testing::Test {
 protected:
  ReconcilerTest() : service_(gateway_, store_, metrics_, Config()) {}

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
    ASSERT_EQ(service_.CreateRtp(request, absl::Now() + absl::Seconds(5)).status().code(),
              absl::StatusCode::kUnavailable);
  }

  void BankartSays(StatusReport::Status status) {
    StatusReport report;
    report.found = true;
    report.status = status;
    gateway_.AnswerStatus(report);
  }

  Reconciler MakeReconciler(int queries_per_minute = 60) {
    ReconcilerConfig config;
    config.owner = "replica-a";
    config.status_queries_per_minute = queries_per_minute;
    return Reconciler(service_, store_, metrics_, config);
  }

  testing::FakeGateway gateway_;
  testing::InMemoryStore store_;
  Metrics metrics_;
  PaymentService service_;
};

TEST_F(ReconcilerTest, AnUnknownOutcomeIsSettledFromTheStatusApi) {
  UnknownDebit("order-1");
  BankartSays(StatusReport::Status::kSuccess);
  Reconciler reconciler = MakeReconciler();
  reconciler.RunOnce();
  EXPECT_EQ(store_.Get("order-1")->status(), v1::TRANSACTION_STATUS_SUCCESS);
  EXPECT_FALSE(store_.NextCheck("order-1").has_value()) << "final: unwatched";
  EXPECT_EQ(gateway_.status_queries(), 1);
  EXPECT_EQ(metrics_.reconciler_checks, 1);
  EXPECT_EQ(metrics_.reconciler_resolved, 1);
  EXPECT_TRUE(*store_.TryLease("order-1", "replica-b", absl::Seconds(30)))
      << "the lease was given back";
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
  EXPECT_GE(metrics_.store_unavailable, 1);
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

TEST_F(ReconcilerTest, ATransactionLeasedByAnotherReplicaIsLeftToIt) {
  UnknownDebit("order-1");
  BankartSays(StatusReport::Status::kSuccess);
  ASSERT_TRUE(*store_.TryLease("order-1", "replica-b", absl::Seconds(30)));
  Reconciler reconciler = MakeReconciler();
  reconciler.RunOnce();
  EXPECT_EQ(gateway_.status_queries(), 0);
  EXPECT_EQ(store_.Get("order-1")->status(), v1::TRANSACTION_STATUS_UNKNOWN);
}

TEST_F(ReconcilerTest, TheSharedQuotaStopsThePassAndKeepsTheRestDue) {
  UnknownDebit("order-1");
  UnknownDebit("order-2");
  BankartSays(StatusReport::Status::kSuccess);
  Reconciler reconciler = MakeReconciler(/*queries_per_minute=*/1);
  reconciler.RunOnce();
  EXPECT_EQ(gateway_.status_queries(), 1);
  const int settled = (store_.Get("order-1")->status() == v1::TRANSACTION_STATUS_SUCCESS) +
                      (store_.Get("order-2")->status() == v1::TRANSACTION_STATUS_SUCCESS);
  EXPECT_EQ(settled, 1);
  EXPECT_EQ(store_.DueForCheck(absl::Now(), 10)->size(), 1u)
      << "the other stays due for the next minute";
  for (const char* id : {"order-1", "order-2"}) {
    EXPECT_TRUE(*store_.TryLease(id, "replica-b", absl::Seconds(30))) << id;
  }
}

}  // namespace
}  // namespace flikpay::server
