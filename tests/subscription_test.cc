// A StreamStatus subscriber's logic without gRPC or Redis: snapshot, replay, live, each event once,
// in order, one write at a time, paced replay, bounded buffer.
#include "core/subscription.h"

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "gtest/gtest.h"

namespace flikpay::core {
namespace {

// Records what the subscription asks of the transport; writes complete only when the test says so,
// as a slow client's would.
class RecordingWriter : public StreamWriter {
 public:
  void Write(const v1::StatusEvent& event) override {
    EXPECT_FALSE(writing) << "a second write while one is in flight";
    EXPECT_FALSE(finished.has_value()) << "a write after Finish";
    writing = true;
    written.push_back(event.cursor().empty()
                          ? "current:" + event.transaction().merchant_transaction_id()
                          : event.cursor());
  }
  void Finish(const absl::Status& status) override {
    EXPECT_FALSE(finished.has_value()) << "finished twice";
    EXPECT_FALSE(writing) << "finished with a write in flight";
    finished = status;
  }
  void ContinueReplay() override { ++replay_continuations; }

  std::vector<std::string> written;
  bool writing = false;
  std::optional<absl::Status> finished;
  int replay_continuations = 0;
};

v1::StatusEvent Event(const std::string& cursor, const std::string& id = "order-1",
                      v1::TransactionType type = v1::TRANSACTION_TYPE_DEBIT) {
  v1::StatusEvent event;
  event.set_cursor(cursor);
  event.mutable_transaction()->set_merchant_transaction_id(id);
  event.mutable_transaction()->set_type(type);
  return event;
}

class SubscriptionTest : public ::testing::Test {
 protected:
  // Completes the write in flight, as gRPC's OnWriteDone would.
  void Deliver(Subscription& subscription) {
    ASSERT_TRUE(writer_.writing);
    writer_.writing = false;
    subscription.WriteDone(true);
  }
  void DeliverAll(Subscription& subscription) {
    while (writer_.writing) Deliver(subscription);
  }

  RecordingWriter writer_;
};

TEST_F(SubscriptionTest, LiveEventsAreWrittenOneAtATimeAndFiltered) {
  v1::StreamStatusRequest request;
  request.add_merchant_transaction_ids("order-1");
  request.add_types(v1::TRANSACTION_TYPE_DEBIT);
  Subscription subscription(request, 16, writer_);
  subscription.CatchUp();
  subscription.Offer(Event("1-0"));
  subscription.Offer(Event("2-0", "order-2"));                               // other id
  subscription.Offer(Event("3-0", "order-1", v1::TRANSACTION_TYPE_REFUND));  // other type
  subscription.Offer(Event("4-0"));
  EXPECT_EQ(writer_.written, std::vector<std::string>{"1-0"});
  DeliverAll(subscription);
  EXPECT_EQ(writer_.written, (std::vector<std::string>{"1-0", "4-0"}));
  subscription.Offer(Event("4-0"));  // the same event again
  EXPECT_FALSE(writer_.writing);
}

// The buffer exists only while events wait (an idle stream holds none); drained and filled again,
// it keeps order and its bound.
TEST_F(SubscriptionTest, TheBufferEmptiesAndFillsAgainWithinItsBound) {
  v1::StreamStatusRequest request;
  Subscription subscription(request, 2, writer_);
  subscription.CatchUp();
  subscription.Offer(Event("1-0"));  // written at once: nothing waits
  subscription.Offer(Event("2-0"));
  subscription.Offer(Event("3-0"));
  DeliverAll(subscription);
  EXPECT_EQ(writer_.written, (std::vector<std::string>{"1-0", "2-0", "3-0"}));
  subscription.Offer(Event("4-0"));
  subscription.Offer(Event("5-0"));
  subscription.Offer(Event("6-0"));
  EXPECT_FALSE(writer_.finished.has_value());
  subscription.Offer(Event("7-0"));  // a third waiting event: over the bound
  DeliverAll(subscription);
  EXPECT_EQ(writer_.written, (std::vector<std::string>{"1-0", "2-0", "3-0", "4-0"}));
  ASSERT_TRUE(writer_.finished.has_value());
  EXPECT_EQ(writer_.finished->code(), absl::StatusCode::kResourceExhausted);
}

TEST_F(SubscriptionTest, CurrentStatesThenReplayThenLiveWithoutGapsOrRepeats) {
  v1::StreamStatusRequest request;
  request.add_merchant_transaction_ids("order-1");
  Subscription subscription(request, 16, writer_);
  v1::Transaction current;
  current.set_merchant_transaction_id("order-1");
  subscription.AddCurrent(current);
  subscription.StartReplay("1-0");
  // Live events arrive while the replay is being read: held, not lost.
  subscription.Offer(Event("3-0"));
  subscription.Offer(Event("4-0"));
  EXPECT_EQ(writer_.written, std::vector<std::string>{"current:order-1"})
      << "the current state may go out; nothing live before the replay";

  ASSERT_EQ(subscription.NextReplayPage(), "1-0");
  subscription.AddReplayPage({Event("2-0"), Event("3-0")});  // short: caught up
  EXPECT_FALSE(subscription.NextReplayPage().has_value());
  DeliverAll(subscription);
  subscription.Offer(Event("5-0"));
  DeliverAll(subscription);
  EXPECT_EQ(writer_.written,
            (std::vector<std::string>{"current:order-1", "2-0", "3-0", "4-0", "5-0"}));
}

TEST_F(SubscriptionTest, TheReplayWaitsForTheReaderPageByPage) {
  Subscription subscription(v1::StreamStatusRequest(), 4, writer_);
  ASSERT_EQ(subscription.page_size(), 2);
  subscription.StartReplay("0-1");
  ASSERT_EQ(subscription.NextReplayPage(), "0-1");
  subscription.AddReplayPage({Event("1-0"), Event("2-0")});  // a full page
  EXPECT_FALSE(subscription.NextReplayPage().has_value())
      << "paused until the reader has taken the page";
  Deliver(subscription);
  EXPECT_EQ(writer_.replay_continuations, 0) << "one event still waiting";
  Deliver(subscription);
  EXPECT_EQ(writer_.replay_continuations, 1);
  ASSERT_EQ(subscription.NextReplayPage(), "2-0");
  subscription.AddReplayPage({});
  subscription.Offer(Event("3-0"));
  EXPECT_EQ(writer_.written, (std::vector<std::string>{"1-0", "2-0", "3-0"}));
}

TEST_F(SubscriptionTest, ASubscriberTooFarBehindIsEndedWithWhereToResume) {
  Subscription subscription(v1::StreamStatusRequest(), 2, writer_);
  subscription.CatchUp();
  subscription.Offer(Event("1-0"));  // in flight
  Deliver(subscription);
  subscription.Offer(Event("2-0"));  // in flight
  subscription.Offer(Event("3-0"));
  subscription.Offer(Event("4-0"));
  EXPECT_FALSE(writer_.finished.has_value());
  subscription.Offer(Event("5-0"));  // a third waiting: over the buffer
  EXPECT_FALSE(writer_.finished.has_value()) << "not while a write is in flight";
  Deliver(subscription);
  ASSERT_TRUE(writer_.finished.has_value());
  EXPECT_EQ(writer_.finished->code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(absl::StrContains(writer_.finished->message(), "(last written: 1-0)"))
      << writer_.finished->message();
  subscription.Offer(Event("6-0"));
  EXPECT_EQ(writer_.written, (std::vector<std::string>{"1-0", "2-0"}));
}

TEST_F(SubscriptionTest, TooMuchLiveNewsDuringAReplayAlsoOverflows) {
  Subscription subscription(v1::StreamStatusRequest(), 2, writer_);
  subscription.StartReplay("0-1");
  for (const char* cursor : {"1-0", "2-0", "3-0"}) subscription.Offer(Event(cursor));
  ASSERT_TRUE(writer_.finished.has_value());
  EXPECT_EQ(writer_.finished->code(), absl::StatusCode::kResourceExhausted);
  EXPECT_FALSE(subscription.NextReplayPage().has_value());
}

TEST_F(SubscriptionTest, EndingWaitsForTheWriteInFlightAndStopsEverything) {
  Subscription subscription(v1::StreamStatusRequest(), 8, writer_);
  subscription.CatchUp();
  subscription.Offer(Event("1-0"));
  subscription.Offer(Event("2-0"));
  subscription.EndUnavailable("the event store is unavailable");
  EXPECT_FALSE(writer_.finished.has_value());
  Deliver(subscription);
  ASSERT_TRUE(writer_.finished.has_value());
  EXPECT_EQ(writer_.finished->code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(
      absl::StartsWith(writer_.finished->message(), "the event store is unavailable; resume with"));
  EXPECT_EQ(writer_.written, std::vector<std::string>{"1-0"}) << "2-0 was dropped";
}

TEST_F(SubscriptionTest, ABrokenWriteEndsTheStreamCancelled) {
  Subscription subscription(v1::StreamStatusRequest(), 8, writer_);
  subscription.CatchUp();
  subscription.Offer(Event("1-0"));
  writer_.writing = false;
  subscription.WriteDone(false);
  ASSERT_TRUE(writer_.finished.has_value());
  EXPECT_EQ(writer_.finished->code(), absl::StatusCode::kCancelled);
}

TEST_F(SubscriptionTest, ADetachedSubscriptionNeverCallsItsWriter) {
  Subscription subscription(v1::StreamStatusRequest(), 8, writer_);
  subscription.CatchUp();
  subscription.Detach();
  subscription.Offer(Event("1-0"));
  subscription.End(absl::CancelledError("gone"));
  EXPECT_TRUE(writer_.written.empty());
  EXPECT_FALSE(writer_.finished.has_value());
}

}  // namespace
}  // namespace flikpay::core
