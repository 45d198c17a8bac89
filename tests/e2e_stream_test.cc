// flikpay end to end, the event streams: a change made on one replica streamed from the other,
// duplicated callbacks making one event, resuming from a cursor, shutdown, a slow subscriber cut
// off and resumed, and a resume from a trimmed cursor refused.
#include <sys/wait.h>

#include <cstdio>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"
#include "tests/support/e2e_fixture.h"

namespace flikpay {
namespace {

using ::flikpay::testing::Json;
using ::flikpay::testing::Replica;

class StreamTest : public ::flikpay::testing::E2eTest {};

TEST_F(StreamTest, ChangeMadeOnOneReplicaIsStreamedFromTheOther) {
  v1::CreateRtpRequest request = Rtp("success.debit@bankart.flik", v1::RTP_KIND_IN_PERSON);
  v1::StreamStatusRequest subscription;
  subscription.add_merchant_transaction_ids(request.merchant_transaction_id());
  std::vector<v1::StatusEvent> events =
      ReadEvents(*replicas_[1], subscription, 2, absl::Seconds(10), [&] {
        v1::Transaction created;
        EXPECT_TRUE(Create(A(), request, &created).ok());
      });
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].previous_status(), v1::TRANSACTION_STATUS_UNKNOWN);
  EXPECT_EQ(events[0].transaction().status(), v1::TRANSACTION_STATUS_PENDING);
  EXPECT_EQ(events[0].source(), v1::EVENT_SOURCE_RPC);
  EXPECT_EQ(events[1].previous_status(), v1::TRANSACTION_STATUS_PENDING);
  EXPECT_EQ(events[1].transaction().status(), v1::TRANSACTION_STATUS_SUCCESS);
  EXPECT_EQ(events[1].source(), v1::EVENT_SOURCE_CALLBACK);
  EXPECT_FALSE(events[0].cursor().empty());
  EXPECT_NE(events[0].cursor(), events[1].cursor());
}

TEST_F(StreamTest, DuplicatedCallbacksMakeOneEvent) {
  v1::CreateRtpRequest request = Rtp("success.debit@bankart.flik", v1::RTP_KIND_IN_PERSON);
  AddCallbackFault(Json{{"kind", "duplicate"},
                        {"copies", 4},
                        {"merchant_transaction_id", request.merchant_transaction_id()}});
  v1::StreamStatusRequest subscription;
  subscription.add_merchant_transaction_ids(request.merchant_transaction_id());
  std::vector<v1::StatusEvent> events = ReadEvents(
      *replicas_[0], subscription, 3, absl::Seconds(2),
      [&] {
        v1::Transaction created;
        EXPECT_TRUE(Create(B(), request, &created).ok());
      },
      /*expect_all=*/false);     // one more than expected: a duplicate event would show
  ASSERT_EQ(events.size(), 2u);  // PENDING and SUCCESS; the 3 copies changed nothing
  EXPECT_EQ(events[1].transaction().status(), v1::TRANSACTION_STATUS_SUCCESS);
  v1::Transaction stored;
  ASSERT_TRUE(Get(A(), request.merchant_transaction_id(), &stored).ok());
  EXPECT_EQ(stored.history_size(), 2);
  EXPECT_EQ(stored.version(), events[1].transaction().version());
}

TEST_F(StreamTest, StreamResumesFromACursorWithoutGapsOrDuplicates) {
  // Both subscriptions name this test's payouts too: payouts of earlier tests still settling (by
  // the reconciler, say) must not count as these.
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) ids.push_back(NewId("resume"));
  v1::StreamStatusRequest live;
  live.add_types(v1::TRANSACTION_TYPE_PAYOUT);
  for (const std::string& id : ids) live.add_merchant_transaction_ids(id);
  std::vector<v1::StatusEvent> first_pass =
      ReadEvents(*replicas_[1], live, 6, absl::Seconds(10), [&] {
        for (int i = 0; i < 3; ++i) {
          EXPECT_TRUE(SuccessfulPayout(A(), ids[i], 100 + i).ok());
        }
      });
  ASSERT_EQ(first_pass.size(), 6u);  // PENDING and SUCCESS for each
  // Resume after the second event, on the other replica: exactly the four later events.
  v1::StreamStatusRequest resume = live;
  resume.set_resume_after(first_pass[1].cursor());
  std::vector<v1::StatusEvent> resumed =
      ReadEvents(*replicas_[0], resume, 5, absl::Seconds(2), nullptr, /*expect_all=*/false);
  ASSERT_EQ(resumed.size(), 4u);
  for (size_t i = 0; i < 4; ++i) EXPECT_EQ(resumed[i].cursor(), first_pass[i + 2].cursor());

  v1::StreamStatusRequest bad;
  bad.set_resume_after("yesterday");
  grpc::ClientContext context;
  auto reader = A().StreamStatus(&context, bad);
  v1::StatusEvent ignored;
  while (reader->Read(&ignored)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(StreamTest, ShutdownEndsStreamsWithUnavailableAndACursor) {
  std::unique_ptr<Replica> third(StartReplica());
  ASSERT_NE(third, nullptr);
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(20)));
  v1::StreamStatusRequest everything;
  const int started_before = StartedStreams(*third);
  auto reader = third->stub->StreamStatus(&context, everything);
  while (StartedStreams(*third) <= started_before) absl::SleepFor(absl::Milliseconds(10));
  const int exit_status = third->process->Stop();
  v1::StatusEvent ignored;
  while (reader->Read(&ignored)) {
  }
  grpc::Status ended = reader->Finish();
  EXPECT_EQ(ended.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_TRUE(absl::StrContains(ended.error_message(), "resume_after=")) << ended.error_message();
  EXPECT_TRUE(WIFEXITED(exit_status) && WEXITSTATUS(exit_status) == 0);
}

TEST_F(StreamTest, SlowSubscriberIsEndedAndResumesWithoutLoss) {
  const std::string prefix = NewId("slow");
  v1::StreamStatusRequest request;
  request.add_types(v1::TRANSACTION_TYPE_PAYOUT);
  // A subscriber whose flow-control window stays small, as a slow consumer's does: no bandwidth
  // probing, little lookahead.
  grpc::ChannelArguments slow_args;
  slow_args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  slow_args.SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 4096);
  auto slow_stub = v1::PaymentService::NewStub(
      grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", replicas_[0]->grpc_port),
                                grpc::InsecureChannelCredentials(), slow_args));
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
  // Start from a known cursor, so that resuming never depends on having received anything.
  std::vector<v1::StatusEvent> warmup =
      ReadEvents(*replicas_[1], request, 1, absl::Seconds(5),
                 [&] { EXPECT_TRUE(SuccessfulPayout(B(), prefix + "-warmup", 100).ok()); });
  ASSERT_EQ(warmup.size(), 1u);
  request.set_resume_after(warmup[0].cursor());
  const int started_before = StartedStreams(*replicas_[0]);
  auto reader = slow_stub->StreamStatus(&context, request);
  while (StartedStreams(*replicas_[0]) <= started_before) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  // The subscriber reads nothing while 300 payouts (600 events) happen:
  // HTTP/2 flow control backs up, and the replica's 64-event buffer fills.
  std::vector<std::thread> senders;
  std::set<std::string> ids;
  absl::Mutex ids_mutex;
  for (int t = 0; t < 4; ++t) {
    senders.emplace_back([&, t] {
      for (int i = 0; i < 75; ++i) {
        const std::string id = absl::StrCat(prefix, "-", t, "-", i);
        // A long description makes bigger events.
        if (SuccessfulPayout(t % 2 ? A() : B(), id, 100, std::string(200, 'x')).ok()) {
          absl::MutexLock lock(&ids_mutex);
          ids.insert(id);
        }
      }
    });
  }
  for (std::thread& sender : senders) sender.join();
  for (const std::string& id : ids) AwaitFinal(B(), id);
  absl::SleepFor(absl::Milliseconds(500));

  std::map<std::string, int> finals;
  std::string cursor = request.resume_after();
  v1::StatusEvent event;
  while (reader->Read(&event)) {
    if (IsFinalStatusOf(event)) ++finals[event.transaction().merchant_transaction_id()];
    cursor = event.cursor();
  }
  grpc::Status ended = reader->Finish();
  EXPECT_EQ(ended.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << ended.error_message();
  EXPECT_TRUE(absl::StrContains(ended.error_message(), "resume_after=")) << ended.error_message();
  const size_t before_resume = finals.size();
  // Resume from the last cursor this subscriber received, on the other replica.
  request.set_resume_after(cursor);
  for (const v1::StatusEvent& later :
       ReadEvents(*replicas_[1], request, 100000, absl::Seconds(3), nullptr,
                  /*expect_all=*/false)) {
    if (IsFinalStatusOf(later)) {
      ++finals[later.transaction().merchant_transaction_id()];
    }
  }
  int exactly_once = 0;
  for (const std::string& id : ids) exactly_once += finals[id] == 1;
  std::printf(
      "slow subscriber: %zu payouts; ended %s after the final events of %zu; "
      "after resuming, %d of %zu seen exactly once\n",
      ids.size(), ended.error_message().c_str(), before_resume, exactly_once, ids.size());
  EXPECT_LT(before_resume, ids.size());  // it really was cut off
  EXPECT_EQ(exactly_once, static_cast<int>(ids.size()));
}

// A replica keeping only ~10 events trims the shared stream. No other test holds a cursor from
// before it, so later tests in the same run are not affected; the payouts it leaves to the
// reconciler (their callbacks go to the stopped replica) are outside every other test's ids.
TEST_F(StreamTest, ResumingFromTrimmedEventsIsRefusedNotSilentlyGapped) {
  v1::StreamStatusRequest request;
  request.add_types(v1::TRANSACTION_TYPE_PAYOUT);
  std::vector<v1::StatusEvent> first = ReadEvents(*replicas_[1], request, 1, absl::Seconds(5), [&] {
    EXPECT_TRUE(SuccessfulPayout(B(), NewId("trim"), 100).ok());
  });
  ASSERT_EQ(first.size(), 1u);
  std::unique_ptr<Replica> trimming(StartReplica({"--max_events=10"}));
  ASSERT_NE(trimming, nullptr);
  for (int i = 0; i < 300; ++i) {
    ASSERT_TRUE(SuccessfulPayout(*trimming->stub, NewId("trim"), 100).ok());
  }
  request.set_resume_after(first[0].cursor());
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  auto reader = A().StreamStatus(&context, request);
  v1::StatusEvent ignored;
  int received = 0;
  while (reader->Read(&ignored)) ++received;
  grpc::Status ended = reader->Finish();
  EXPECT_EQ(ended.error_code(), grpc::StatusCode::OUT_OF_RANGE) << ended.error_message();
  EXPECT_EQ(received, 0);
  trimming->process->Stop();
}

}  // namespace
}  // namespace flikpay
