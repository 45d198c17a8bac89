// flikpay end to end, the record cache GetStatus reads from (two replicas, each with its own): a
// change made through replica A is never read stale on replica B once B's StreamStatus subscriber
// has seen its event, repeated so a race would show; a change without an event (a contradicting
// callback's history line) likewise, fenced by a later event. Each round first makes sure B serves
// the record from its cache (its hit counter moves), so the test cannot pass by reading Redis.
#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "tests/support/e2e_fixture.h"

namespace flikpay {
namespace {

using ::flikpay::testing::Json;

class CacheTest : public ::flikpay::testing::E2eTest {
 public:
  // The record cache as a deployment runs it once every replica writes change notices (the other
  // e2e suites run the defaults: neither).
  static void SetUpTestSuite() {
    replica_flags_ = {"--change_notices", "--record_cache_size=100000"};
    E2eTest::SetUpTestSuite();
  }

 protected:
  static int64_t Hits(int replica) {
    return Metric(*replicas_[replica], "flikpay_record_cache_hits_total");
  }

  // Reads `id` on B until B answers it from its cache (a hit), so the next read could be stale.
  static v1::Transaction CachedOnB(const std::string& id) {
    v1::Transaction read;
    for (int i = 0; i < 50; ++i) {
      const int64_t before = Hits(1);
      EXPECT_TRUE(Get(B(), id, &read).ok());
      if (Hits(1) > before) return read;
    }
    ADD_FAILURE() << "replica B never answered " << id << " from its cache";
    return read;
  }

  // A StreamStatus on B, open until the test ends.
  struct Subscriber {
    grpc::ClientContext context;
    std::unique_ptr<grpc::ClientReader<v1::StatusEvent>> reader;
    ~Subscriber() { context.TryCancel(); }
  };
  static std::unique_ptr<Subscriber> SubscribeOnB(const v1::StreamStatusRequest& request) {
    auto subscriber = std::make_unique<Subscriber>();
    const int started_before = StartedStreams(*replicas_[1]);
    subscriber->context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(120)));
    subscriber->reader = B().StreamStatus(&subscriber->context, request);
    const absl::Time give_up = absl::Now() + absl::Seconds(5);
    while (StartedStreams(*replicas_[1]) <= started_before && absl::Now() < give_up) {
      absl::SleepFor(absl::Milliseconds(5));
    }
    EXPECT_GT(StartedStreams(*replicas_[1]), started_before) << "B never fed the subscription";
    return subscriber;
  }
  // A contradicting ERROR callback for the paid In-Person debit `paid`, taken by A: a history line,
  // no event (a change notice where notices are on).
  static void LateErrorThroughA(const v1::Transaction& paid) {
    const Json late = {{"result", "ERROR"},
                       {"uuid", paid.gateway_uuid()},
                       {"merchantTransactionId", paid.merchant_transaction_id()},
                       {"transactionType", "DEBIT"},
                       {"amount", "11.11"},
                       {"currency", "EUR"},
                       {"errors", {{{"message", "late"}, {"code", "1003"}}}}};
    ASSERT_EQ(PostCallback(replicas_[0]->callback_port, late.dump(), "sim-in-person-secret"), 200);
  }
  // Reads until the event that makes `id` final; false if the stream ends first.
  static bool AwaitFinalEvent(Subscriber& subscriber, const std::string& id) {
    v1::StatusEvent event;
    while (subscriber.reader->Read(&event)) {
      if (event.transaction().merchant_transaction_id() == id && IsFinalStatusOf(event)) {
        return true;
      }
    }
    return false;
  }
};

TEST_F(CacheTest, ARefundThroughAIsNeverReadStaleOnBAfterBsSubscriberSawItsEvent) {
  constexpr int kRounds = 30;
  v1::CreateRtpRequest debit =
      Rtp("success.debit_success.refund@bankart.flik", v1::RTP_KIND_OUT_OF_BAND, 10000);
  v1::Transaction paid;
  ASSERT_NO_FATAL_FAILURE(PaidDebit(debit, &paid));
  const std::string& debit_id = debit.merchant_transaction_id();
  v1::StreamStatusRequest refunds;
  refunds.add_types(v1::TRANSACTION_TYPE_REFUND);
  std::unique_ptr<Subscriber> subscriber = SubscribeOnB(refunds);
  for (int round = 1; round <= kRounds; ++round) {
    ASSERT_EQ(CachedOnB(debit_id).refunded_amount_minor(), 10 * (round - 1)) << "round " << round;
    v1::Transaction refund;
    std::string refund_id;
    const grpc::Status refunded = RefundOn(A(), debit_id, 10, &refund, &refund_id);
    ASSERT_TRUE(refunded.ok()) << "round " << round << ": " << refunded.error_message();
    ASSERT_TRUE(AwaitFinalEvent(*subscriber, refund_id)) << "round " << round;
    // B's hub delivered the refund's event: B must not answer the debit from before it.
    v1::Transaction read;
    ASSERT_TRUE(Get(B(), debit_id, &read).ok());
    ASSERT_EQ(read.refunded_amount_minor(), 10 * round)
        << "round " << round << ": replica B answered a stale debit after the refund's event";
  }
}

TEST_F(CacheTest, AChangeWithoutAnEventIsNeverReadStaleOnBAfterALaterEventReachedIt) {
  constexpr int kRounds = 15;
  // Each round: a paid debit cached on B, a contradicting callback for it through A (a history
  // line, no event: a change notice), then a payout whose event, later in the stream, fences it.
  v1::StreamStatusRequest payouts;
  payouts.add_types(v1::TRANSACTION_TYPE_PAYOUT);
  std::unique_ptr<Subscriber> subscriber = SubscribeOnB(payouts);
  for (int round = 1; round <= kRounds; ++round) {
    v1::CreateRtpRequest request = Rtp("success.debit@bankart.flik", v1::RTP_KIND_IN_PERSON);
    v1::Transaction created;
    ASSERT_NO_FATAL_FAILURE(PaidDebit(request, &created));
    const v1::Transaction before = CachedOnB(request.merchant_transaction_id());
    ASSERT_NO_FATAL_FAILURE(LateErrorThroughA(created));
    const std::string payout_id = NewId("fence");
    ASSERT_TRUE(SuccessfulPayout(A(), payout_id, 100).ok());
    ASSERT_TRUE(AwaitFinalEvent(*subscriber, payout_id)) << "round " << round;
    v1::Transaction read;
    ASSERT_TRUE(Get(B(), request.merchant_transaction_id(), &read).ok());
    ASSERT_EQ(read.history_size(), before.history_size() + 1)
        << "round " << round << ": replica B answered the debit from before the anomaly";
    EXPECT_EQ(read.status(), v1::TRANSACTION_STATUS_SUCCESS);
  }
}

// Going back to a release before notices: `flikpay-server --drop_change_notices` refuses while it
// would write notices itself, deletes them once it does not, and leaves every event readable.
TEST_F(CacheTest, TheMaintenanceRunDropsChangeNoticesOnlyOnceNoneAreWritten) {
  v1::CreateRtpRequest request = Rtp("success.debit@bankart.flik", v1::RTP_KIND_IN_PERSON);
  v1::StreamStatusRequest watch;
  watch.add_merchant_transaction_ids(request.merchant_transaction_id());
  std::unique_ptr<Subscriber> subscriber = SubscribeOnB(watch);
  v1::Transaction created;
  ASSERT_NO_FATAL_FAILURE(PaidDebit(request, &created));
  v1::StatusEvent first;
  ASSERT_TRUE(subscriber->reader->Read(&first));
  ASSERT_FALSE(IsFinalStatusOf(first)) << "the debit's first event is not its last";
  ASSERT_NO_FATAL_FAILURE(LateErrorThroughA(created));

  // Runs the maintenance command with the replicas' flags plus `flags`: its exit status and the
  // line that ended it.
  auto run = [](std::vector<std::string> flags, const std::string& marker, std::string* line) {
    std::vector<std::string> with = replica_flags_;
    with.insert(with.end(), flags.begin(), flags.end());
    with.push_back("--drop_change_notices");
    auto process = testing::ChildProcess::Start(ServerArgs(with), marker, line);
    EXPECT_TRUE(process.ok()) << process.status();
    return process.ok() ? (*process)->Stop() : -1;
  };
  std::string line;
  EXPECT_EQ(run({}, "turn them off on every replica first", &line), 2 << 8)
      << "refused while it writes notices: " << line;
  EXPECT_EQ(
      run({"--change_notices=false", "--record_cache_size=0"}, "change notices deleted", &line), 0);
  EXPECT_FALSE(absl::StrContains(line, " 0 change notices")) << line;
  EXPECT_EQ(
      run({"--change_notices=false", "--record_cache_size=0"}, "change notices deleted", &line), 0);
  EXPECT_TRUE(absl::StrContains(line, " 0 change notices")) << "none left: " << line;

  // Every event is still there: resuming after the debit's first event replays the rest.
  v1::StreamStatusRequest replay = watch;
  replay.set_resume_after(first.cursor());
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  std::unique_ptr<grpc::ClientReader<v1::StatusEvent>> reader = B().StreamStatus(&context, replay);
  v1::StatusEvent event;
  bool final_seen = false;
  int read = 0;
  while (!final_seen && reader->Read(&event)) {
    ++read;
    final_seen = IsFinalStatusOf(event);
  }
  context.TryCancel();
  const grpc::Status ended = reader->Finish();
  EXPECT_TRUE(final_seen) << "the debit's events were lost with the notices (" << read << " read; "
                          << ended.error_code() << " " << ended.error_message() << ")";
}

}  // namespace
}  // namespace flikpay
