// Issue 14 end to end: two flikpay-server replicas on a Sentinel-managed Redis (redis-server x3,
// redis-sentinel x3 on loopback) and bankart-sim, under a steady load of payouts through both
// replicas, lose the Redis primary to SIGKILL; in the second suite the primary is first cut off
// from both replicas. Each answer is timed. Every payout acknowledged (OK) must be readable on
// both replicas afterwards, a payout claimed while no replica could acknowledge it must not be
// acknowledged, and the outage (kill to the first acknowledged payout on each replica) is printed.
// A StreamStatus subscriber ended by the failover resumes from its last cursor on the other
// replica and gets exactly the stream's entries after it, or OUT_OF_RANGE.
#include <hiredis/hiredis.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "tests/support/e2e_fixture.h"
#include "tests/support/test_sentinel.h"

namespace flikpay {
namespace {

class FailoverTest : public ::flikpay::testing::E2eTest {
 public:
  static void SetUpTestSuite() {
    absl::StatusOr<std::unique_ptr<testing::TestSentinelCluster>> cluster =
        testing::TestSentinelCluster::Start(REDIS_SERVER_PATH, REDIS_SENTINEL_PATH);
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = *std::move(cluster);
    replica_flags_ = {absl::StrCat("--redis_url=", cluster_->Url())};
    E2eTest::SetUpTestSuite();
  }
  static void TearDownTestSuite() {
    E2eTest::TearDownTestSuite();
    cluster_.reset();
  }

 protected:
  struct Answer {
    std::string id;
    int replica = 0;  // 0: A, 1: B
    absl::Time sent, answered;
    grpc::StatusCode code = grpc::StatusCode::OK;
  };

  // Payouts from `threads` threads, alternating replicas, until Stop().
  void StartLoad(int threads) {
    const std::string prefix = NewPrefix("failover");
    for (int t = 0; t < threads; ++t) {
      load_.emplace_back([this, t, prefix] {
        for (int n = 0; !stop_; ++n) {
          Answer answer;
          answer.id = absl::StrCat(prefix, t, "-", n);
          answer.replica = (t + n) % 2;
          v1::PayoutRequest payout;
          payout.set_merchant_transaction_id(answer.id);
          payout.set_alias("success.payout@bankart.flik");
          payout.set_amount_minor(100);
          v1::Transaction out;
          grpc::ClientContext call;
          call.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
          answer.sent = absl::Now();
          answer.code = (answer.replica == 0 ? A() : B()).Payout(&call, payout, &out).error_code();
          answer.answered = absl::Now();
          if (answer.code != grpc::StatusCode::OK) absl::SleepFor(absl::Milliseconds(50));
          absl::MutexLock lock(&mutex_);
          answers_.push_back(std::move(answer));
        }
      });
    }
  }
  void StopLoad() {
    stop_ = true;
    for (std::thread& thread : load_) thread.join();
    load_.clear();
  }
  std::vector<Answer> Answers() {
    absl::MutexLock lock(&mutex_);
    return answers_;
  }
  // The first payout acknowledged by `replica` that was sent after `since`.
  std::optional<absl::Time> FirstOkSentAfter(int replica, absl::Time since) {
    std::optional<absl::Time> first;
    for (const Answer& a : Answers()) {
      if (a.replica == replica && a.code == grpc::StatusCode::OK && a.sent > since &&
          (!first.has_value() || a.answered < *first)) {
        first = a.answered;
      }
    }
    return first;
  }
  // Waits until both replicas acknowledged a payout sent after `since` (up to 30 s); the outage
  // each saw, from `since`.
  std::vector<absl::Duration> AwaitRecovery(absl::Time since) {
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    while (absl::Now() < deadline) {
      if (FirstOkSentAfter(0, since) && FirstOkSentAfter(1, since)) break;
      absl::SleepFor(absl::Milliseconds(50));
    }
    std::vector<absl::Duration> outage;
    for (int replica = 0; replica < 2; ++replica) {
      std::optional<absl::Time> first = FirstOkSentAfter(replica, since);
      outage.push_back(first.has_value() ? *first - since : absl::InfiniteDuration());
    }
    return outage;
  }
  // Every acknowledged payout is on both replicas; failures were UNAVAILABLE (or the deadline).
  void ExpectNothingAcknowledgedLost() {
    int ok = 0, unavailable = 0, other = 0, missing = 0;
    for (const Answer& a : Answers()) {
      if (a.code == grpc::StatusCode::OK) {
        ++ok;
        for (v1::PaymentService::Stub* stub : {&A(), &B()}) {
          v1::Transaction read;
          const grpc::Status status = Get(*stub, a.id, &read);
          if (!status.ok()) {
            ++missing;
            ADD_FAILURE() << a.id << " was acknowledged but reads " << status.error_code() << " "
                          << status.error_message();
          }
        }
      } else if (a.code == grpc::StatusCode::UNAVAILABLE ||
                 a.code == grpc::StatusCode::DEADLINE_EXCEEDED) {
        ++unavailable;
      } else {
        ++other;
      }
    }
    std::printf(
        "payouts: %d acknowledged, %d unavailable, %d other; %d acknowledged reads missing\n", ok,
        unavailable, other, missing);
    EXPECT_GT(ok, 0);
    EXPECT_EQ(other, 0);
  }
  // The ids of the event stream's entries in (after, upto], read from the primary itself.
  std::vector<std::string> StreamIds(const std::string& after, const std::string& upto) {
    std::vector<std::string> ids;
    redisContext* context = redisConnect("127.0.0.1", cluster_->PrimaryPort());
    if (context == nullptr || context->err != 0) {
      ADD_FAILURE() << "cannot reach the primary";
      if (context != nullptr) redisFree(context);
      return ids;
    }
    const std::string from = absl::StrCat("(", after);
    auto* reply = static_cast<redisReply*>(
        redisCommand(context, "XRANGE flikpay:events %s %s", from.c_str(), upto.c_str()));
    if (reply != nullptr && reply->type == REDIS_REPLY_ARRAY) {
      for (size_t i = 0; i < reply->elements; ++i) {
        const redisReply* id = reply->element[i]->element[0];
        ids.emplace_back(id->str, id->len);
      }
    }
    if (reply != nullptr) freeReplyObject(reply);
    redisFree(context);
    return ids;
  }
  int PrimaryIndex() {
    const int port = cluster_->PrimaryPort();
    for (size_t i = 0; i < cluster_->servers().size(); ++i) {
      if (cluster_->servers()[i].port == port) return static_cast<int>(i);
    }
    return -1;
  }

  static inline std::unique_ptr<testing::TestSentinelCluster> cluster_;
  std::atomic<bool> stop_{false};
  std::vector<std::thread> load_;
  absl::Mutex mutex_;
  std::vector<Answer> answers_ ABSL_GUARDED_BY(mutex_);
};

class SigkillTest : public FailoverTest {};
class CutThenKillTest : public FailoverTest {};

TEST_F(SigkillTest, KillingThePrimaryUnderLoadLosesNoAcknowledgedPayout) {
  const int primary = PrimaryIndex();
  ASSERT_GE(primary, 0);
  // A subscriber on B follows the payouts until the failover ends its stream.
  absl::Mutex seen_mutex;
  std::vector<std::string> seen;
  grpc::Status ended;
  std::thread subscriber([&] {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
    v1::StreamStatusRequest request;
    request.add_types(v1::TRANSACTION_TYPE_PAYOUT);
    auto reader = B().StreamStatus(&context, request);
    v1::StatusEvent event;
    while (reader->Read(&event)) {
      absl::MutexLock lock(&seen_mutex);
      seen.push_back(event.cursor());
    }
    ended = reader->Finish();
  });
  StartLoad(4);
  absl::SleepFor(absl::Seconds(1));
  cluster_->servers()[primary].process->Kill();
  const absl::Time killed = absl::Now();
  const std::vector<absl::Duration> outage = AwaitRecovery(killed);
  subscriber.join();
  EXPECT_EQ(ended.error_code(), grpc::StatusCode::UNAVAILABLE) << ended.error_message();
  ASSERT_FALSE(seen.empty());
  // It resumes on A from the last cursor it received: every later event, in the stream's order,
  // or OUT_OF_RANGE when that event was lost with the primary; never a silent gap.
  std::vector<std::string> resumed;
  grpc::Status resume_ended;
  {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(2)));
    v1::StreamStatusRequest request;
    request.add_types(v1::TRANSACTION_TYPE_PAYOUT);
    request.set_resume_after(seen.back());
    auto reader = A().StreamStatus(&context, request);
    v1::StatusEvent event;
    while (reader->Read(&event)) resumed.push_back(event.cursor());
    resume_ended = reader->Finish();
  }
  StopLoad();
  if (resume_ended.error_code() == grpc::StatusCode::OUT_OF_RANGE) {
    EXPECT_TRUE(resumed.empty());
    std::printf("stream: %zu events before the failover; resuming after %s: OUT_OF_RANGE\n",
                seen.size(), seen.back().c_str());
  } else {
    EXPECT_EQ(resume_ended.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED)
        << resume_ended.error_message();
    ASSERT_FALSE(resumed.empty()) << "payouts went on, so did their events";
    EXPECT_EQ(resumed, StreamIds(seen.back(), resumed.back()))
        << "the resumed stream is not the stream after its cursor";
    std::printf(
        "stream: %zu events before the failover; resumed after %s: %zu events, the stream's own\n",
        seen.size(), seen.back().c_str(), resumed.size());
  }
  std::printf("SIGKILL of the primary: payouts acknowledged again after %s (A), %s (B)\n",
              absl::FormatDuration(outage[0]).c_str(), absl::FormatDuration(outage[1]).c_str());
  EXPECT_LT(outage[0], absl::Seconds(15));
  EXPECT_LT(outage[1], absl::Seconds(15));
  ExpectNothingAcknowledgedLost();
}

TEST_F(CutThenKillTest, APrimaryCutOffFromItsReplicasAcknowledgesNothingAndLosesNothing) {
  const int primary = PrimaryIndex();
  ASSERT_GE(primary, 0);
  StartLoad(4);
  absl::SleepFor(absl::Seconds(1));
  // The replicas stopped (so they cannot reconnect) and their links closed by the primary.
  for (size_t i = 0; i < cluster_->servers().size(); ++i) {
    if (static_cast<int>(i) != primary) kill(cluster_->servers()[i].process->pid(), SIGSTOP);
  }
  ASSERT_TRUE(
      testing::AskRedis(cluster_->servers()[primary].port, {"CLIENT", "KILL", "TYPE", "replica"})
          .has_value());
  const absl::Time cut = absl::Now();
  absl::SleepFor(absl::Milliseconds(1500));
  cluster_->servers()[primary].process->Kill();
  const absl::Time killed = absl::Now();
  for (size_t i = 0; i < cluster_->servers().size(); ++i) {
    if (static_cast<int>(i) != primary) kill(cluster_->servers()[i].process->pid(), SIGCONT);
  }
  const std::vector<absl::Duration> outage = AwaitRecovery(killed);
  absl::SleepFor(absl::Milliseconds(500));
  StopLoad();
  int acknowledged_while_cut = 0, tried_while_cut = 0;
  for (const Answer& a : Answers()) {
    if (a.sent > cut && a.answered < killed) {
      ++tried_while_cut;
      if (a.code == grpc::StatusCode::OK) ++acknowledged_while_cut;
    }
  }
  std::printf(
      "primary cut off, then killed: %d payouts tried while cut off, %d acknowledged; "
      "acknowledged again %s (A), %s (B) after the kill\n",
      tried_while_cut, acknowledged_while_cut, absl::FormatDuration(outage[0]).c_str(),
      absl::FormatDuration(outage[1]).c_str());
  EXPECT_GT(tried_while_cut, 0);
  EXPECT_EQ(acknowledged_while_cut, 0) << "acknowledged with no replica to keep them";
  EXPECT_LT(outage[0], absl::Seconds(20));
  EXPECT_LT(outage[1], absl::Seconds(20));
  ExpectNothingAcknowledgedLost();
}

}  // namespace
}  // namespace flikpay
