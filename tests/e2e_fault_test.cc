// flikpay end to end, the fault suite: gateway timeouts, lost, duplicated and reordered callbacks,
// a Redis outage and a kill -9 during load, and concurrency far beyond what callers send. Each
// scenario prints what it compared and fails on any difference; the sim's faults are scoped to the
// scenario's own transactions.
#include <atomic>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "core/cursor.h"
#include "gateway/callback_parser.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/support/e2e_fixture.h"

namespace flikpay {
namespace {

using ::flikpay::testing::Json;
using ::flikpay::testing::Replica;
using v1::TransactionStatus;

class FaultTest : public ::flikpay::testing::E2eTest {};

TEST_F(FaultTest, GatewayTimeoutLeavesAnUnknownTransactionThatRetriesDoNotResend) {
  v1::CreateRtpRequest request = Rtp("success.debit@bankart.flik", v1::RTP_KIND_IN_PERSON);
  AddApiFault(Json{{"kind", "timeout_after"},
                   {"operation", "debit"},
                   {"delay_ms", 2500},
                   {"merchant_transaction_id", request.merchant_transaction_id()}});
  v1::Transaction out;
  grpc::Status status = Create(A(), request, &out, absl::Seconds(1));
  EXPECT_TRUE(status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED ||
              status.error_code() == grpc::StatusCode::UNAVAILABLE)
      << status.error_code();
  absl::SleepFor(absl::Milliseconds(300));
  v1::Transaction stored;
  ASSERT_TRUE(Get(B(), request.merchant_transaction_id(), &stored).ok());
  // Either still UNKNOWN, or the gateway's callback already told the truth.
  EXPECT_NE(stored.status(), v1::TRANSACTION_STATUS_ERROR);
  v1::Transaction retried;
  ASSERT_TRUE(Create(B(), request, &retried).ok());  // the stored one, not a second debit
  EXPECT_EQ(AwaitFinal(A(), request.merchant_transaction_id()).status(),
            v1::TRANSACTION_STATUS_SUCCESS);
  EXPECT_EQ(SimDebitsFor(request.merchant_transaction_id()), 1);
}

TEST_F(FaultTest, ReorderedCallbacksStillEndInTheRightStates) {
  // The success callback of the first is held back and delivered after the second's.
  const std::string prefix = NewPrefix("reorder");
  AddCallbackFault(
      Json{{"kind", "reorder"}, {"count", 2}, {"merchant_transaction_id_prefix", prefix}});
  v1::CreateRtpRequest first = Rtp("success.debit@bankart.flik", v1::RTP_KIND_IN_PERSON);
  first.set_merchant_transaction_id(prefix + "first");
  v1::CreateRtpRequest second = Rtp("cancel.debit@bankart.flik", v1::RTP_KIND_IN_PERSON);
  second.set_merchant_transaction_id(prefix + "second");
  v1::Transaction out;
  ASSERT_TRUE(Create(A(), first, &out).ok());
  absl::SleepFor(absl::Milliseconds(300));  // its callback is due (200 ms) and held
  ASSERT_TRUE(Create(B(), second, &out).ok());
  EXPECT_EQ(AwaitFinal(A(), first.merchant_transaction_id()).status(),
            v1::TRANSACTION_STATUS_SUCCESS);
  EXPECT_EQ(AwaitFinal(B(), second.merchant_transaction_id()).status(),
            v1::TRANSACTION_STATUS_CANCELLED);
  for (const v1::CreateRtpRequest* request : {&first, &second}) {
    v1::Transaction stored;
    ASSERT_TRUE(Get(A(), request->merchant_transaction_id(), &stored).ok());
    EXPECT_EQ(stored.history_size(), 2);  // UNKNOWN->PENDING, PENDING->final
  }
}

TEST_F(FaultTest, Fault1_TimeoutOnADebitBankartCreated_SettlesOnceBySuccess) {
  v1::CreateRtpRequest request = Rtp("success.debit@bankart.flik", v1::RTP_KIND_IN_PERSON);
  const std::string id = request.merchant_transaction_id();
  AddApiFault(Json{{"kind", "timeout_after"},
                   {"operation", "debit"},
                   {"delay_ms", 2500},
                   {"merchant_transaction_id", id}});
  AddCallbackFault(Json{{"kind", "drop"}, {"merchant_transaction_id", id}});
  v1::Transaction out;
  grpc::Status first = Create(A(), request, &out, absl::Seconds(1));
  EXPECT_TRUE(first.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED ||
              first.error_code() == grpc::StatusCode::UNAVAILABLE);
  EXPECT_TRUE(absl::StrContains(first.error_message(), request.merchant_transaction_id()))
      << first.error_message();
  v1::Transaction stored;
  ASSERT_TRUE(Get(B(), request.merchant_transaction_id(), &stored).ok());
  EXPECT_EQ(stored.status(), v1::TRANSACTION_STATUS_UNKNOWN);
  v1::Transaction retried;  // a caller retry in between: same transaction
  ASSERT_TRUE(Create(B(), request, &retried).ok());
  EXPECT_EQ(retried.status(), v1::TRANSACTION_STATUS_UNKNOWN);
  v1::Transaction settled = AwaitFinal(A(), request.merchant_transaction_id(), absl::Seconds(15));
  EXPECT_EQ(settled.status(), v1::TRANSACTION_STATUS_SUCCESS);
  EXPECT_EQ(settled.history(settled.history_size() - 1).source(), v1::EVENT_SOURCE_RECONCILER);
  const int debits = SimDebitsFor(request.merchant_transaction_id());
  std::printf("fault 1: status %s, debits at Bankart %d (want 1)\n",
              v1::TransactionStatus_Name(settled.status()).c_str(), debits);
  EXPECT_EQ(debits, 1);
}

TEST_F(FaultTest, Fault2_TimeoutOnADebitBankartNeverGot_EndsInError) {
  v1::CreateRtpRequest request = Rtp("success.debit@bankart.flik", v1::RTP_KIND_IN_PERSON);
  AddApiFault(Json{{"kind", "timeout_before"},
                   {"operation", "debit"},
                   {"delay_ms", 2500},
                   {"merchant_transaction_id", request.merchant_transaction_id()}});
  v1::Transaction out;
  EXPECT_FALSE(Create(A(), request, &out, absl::Seconds(1)).ok());
  v1::Transaction settled = AwaitFinal(B(), request.merchant_transaction_id(), absl::Seconds(15));
  EXPECT_EQ(settled.status(), v1::TRANSACTION_STATUS_ERROR);
  EXPECT_EQ(settled.error().code(), 8001);
  const int debits = SimDebitsFor(request.merchant_transaction_id());
  std::printf("fault 2: status %s, debits at Bankart %d (want 0)\n",
              v1::TransactionStatus_Name(settled.status()).c_str(), debits);
  EXPECT_EQ(debits, 0);
}

TEST_F(FaultTest, Fault3_LostCallbacks_ReconcilerFindsTheFinalStates) {
  const std::string prefix = NewPrefix("f3");
  AddCallbackFault(
      Json{{"kind", "drop"}, {"count", 3}, {"merchant_transaction_id_prefix", prefix}});
  const std::vector<std::pair<std::string, TransactionStatus>> cases = {
      {"success.debit@bankart.flik", v1::TRANSACTION_STATUS_SUCCESS},
      {"cancel.debit@bankart.flik", v1::TRANSACTION_STATUS_CANCELLED},
      {"error.debit@bankart.flik", v1::TRANSACTION_STATUS_ERROR}};
  std::vector<std::string> aliases;
  for (const auto& [alias, status] : cases) aliases.push_back(alias);
  const std::vector<v1::CreateRtpRequest> requests =
      RtpsFor(prefix, aliases, v1::RTP_KIND_OUT_OF_BAND);
  const std::vector<v1::StatusEvent> events = CreateWhileWatching(requests, A(), *replicas_[1], 6);
  std::map<std::string, std::vector<TransactionStatus>> seen;
  for (const v1::StatusEvent& event : events) {
    seen[event.transaction().merchant_transaction_id()].push_back(event.transaction().status());
  }
  std::printf("fault 3: %zu events for 3 transactions (want 6)\n", events.size());
  EXPECT_EQ(events.size(), 6u);
  for (size_t i = 0; i < requests.size(); ++i) {
    const auto& statuses = seen[requests[i].merchant_transaction_id()];
    ASSERT_EQ(statuses.size(), 2u);
    EXPECT_EQ(statuses[1], cases[i].second);
  }
}

TEST_F(FaultTest, Fault4_CallbacksDuplicatedFiveTimesAndReordered) {
  // The first three callbacks are duplicated, the next three reordered.
  const std::string prefix = NewPrefix("f4");
  AddCallbackFault(Json{{"kind", "duplicate"},
                        {"count", 3},
                        {"copies", 5},
                        {"merchant_transaction_id_prefix", prefix}});
  AddCallbackFault(
      Json{{"kind", "reorder"}, {"count", 3}, {"merchant_transaction_id_prefix", prefix}});
  const char* aliases[] = {"success.debit@bankart.flik", "0038670999111",
                           "error.debit@bankart.flik",   "0038670999000",
                           "cancel.debit@bankart.flik",  "0038670999222"};
  const TransactionStatus expected[] = {
      v1::TRANSACTION_STATUS_SUCCESS,   v1::TRANSACTION_STATUS_CANCELLED,
      v1::TRANSACTION_STATUS_ERROR,     v1::TRANSACTION_STATUS_SUCCESS,
      v1::TRANSACTION_STATUS_CANCELLED, v1::TRANSACTION_STATUS_ERROR};
  const std::vector<v1::CreateRtpRequest> requests =
      RtpsFor(prefix, {std::begin(aliases), std::end(aliases)}, v1::RTP_KIND_IN_PERSON);
  const std::vector<v1::StatusEvent> events =
      CreateWhileWatching(requests, B(), *replicas_[0], 12, absl::Milliseconds(60));
  std::printf("fault 4: %zu events for 6 transactions (want 12)\n", events.size());
  EXPECT_EQ(events.size(), 12u);
  for (size_t i = 0; i < requests.size(); ++i) {
    v1::Transaction stored = AwaitFinal(A(), requests[i].merchant_transaction_id());
    EXPECT_EQ(stored.status(), expected[i]) << aliases[i];
  }
}

TEST_F(FaultTest, Fault7_ThousandConcurrentIdenticalCreatesMakeOneDebit) {
  v1::CreateRtpRequest request = Rtp("success.debit@bankart.flik", v1::RTP_KIND_ECOMMERCE);
  const CreateTally tally = CreateConcurrently(request, 50, 20);
  const int debits = SimDebitsFor(request.merchant_transaction_id());
  std::printf(
      "fault 7: 1000 calls: %d answered the transaction, %d ABORTED while in "
      "flight, %d other; debits at Bankart %d (want 1)\n",
      tally.ok, tally.aborted, tally.other, debits);
  EXPECT_EQ(tally.ok + tally.aborted, 1000);
  EXPECT_EQ(debits, 1);
}

TEST_F(FaultTest, Fault8_TwoHundredConcurrentRefundsNeverExceedTheOriginal) {
  v1::CreateRtpRequest debit =
      Rtp("success.debit_success.refund@bankart.flik", v1::RTP_KIND_IN_PERSON, 10000);
  v1::Transaction paid;
  ASSERT_NO_FATAL_FAILURE(PaidDebit(debit, &paid));
  const RefundTally refunds = RefundConcurrently(debit.merchant_transaction_id(), 70, 20, 10);
  const std::string at_bankart = RefundedAtBankart(paid.gateway_uuid());
  std::printf(
      "fault 8: 200 refunds of 70: %d accepted (%d cents, original 10000), %d refused, %d other; "
      "Bankart's refunded+pending %s\n",
      refunds.accepted, refunds.accepted * 70, refunds.refused, refunds.other, at_bankart.c_str());
  EXPECT_EQ(refunds.accepted, 142);  // 142 x 70 = 9940 <= 10000 < 143 x 70
  EXPECT_EQ(refunds.refused, 58);
  EXPECT_EQ(at_bankart, "99.40");
}

// Creates RTPs on both replicas until `stop`, keeping the ids that were acknowledged (OK) and all
// that were attempted. Ids are `prefix` followed by the thread and a count.
struct Load {
  // A test that stops at a failed assertion still joins the workers.
  ~Load() { Finish(); }

  std::atomic<bool> stop{false};
  absl::Mutex mutex;
  std::vector<std::string> acknowledged;
  std::vector<std::string> attempted;
  std::atomic<int> failures{0};
  std::vector<std::thread> workers;

  void Start(const std::string& prefix, int threads,
             std::function<v1::PaymentService::Stub*(int)> pick) {
    for (int t = 0; t < threads; ++t) {
      workers.emplace_back([this, prefix, t, pick] {
        for (int i = 0; !stop; ++i) {
          v1::CreateRtpRequest request;
          request.set_merchant_transaction_id(absl::StrCat(prefix, t, "-", i));
          request.set_amount_minor(500);
          request.set_kind(v1::RTP_KIND_IN_PERSON);
          request.set_alias("success.debit@bankart.flik");
          {
            absl::MutexLock lock(&mutex);
            attempted.push_back(request.merchant_transaction_id());
          }
          v1::Transaction out;
          grpc::ClientContext context;
          context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(3)));
          grpc::Status status = pick(t + i)->CreateRtp(&context, request, &out);
          if (status.ok()) {
            absl::MutexLock lock(&mutex);
            acknowledged.push_back(request.merchant_transaction_id());
          } else {
            ++failures;
            absl::SleepFor(absl::Milliseconds(50));
          }
          absl::SleepFor(absl::Milliseconds(20));
        }
      });
    }
  }
  void Finish() {
    stop = true;
    for (std::thread& worker : workers) {
      if (worker.joinable()) worker.join();
    }
  }
};

// Bankart's own record of the debits it created whose ids start with prefix.
std::set<std::string> CreatedAtBankart(const Json& journal, const std::string& prefix) {
  std::set<std::string> ids;
  for (const Json& entry : journal["requests"]) {
    const std::string id = gateway::JsonText(entry, "merchantTransactionId");
    if (absl::StartsWith(id, prefix) && entry.value("created", false)) {
      ids.insert(id);
    }
  }
  return ids;
}

// Waits for each transaction to settle; counts those that ended SUCCESS.
int CountSettledAsSuccess(v1::PaymentService::Stub& stub, const std::set<std::string>& ids) {
  int success = 0;
  for (const std::string& id : ids) {
    success += FaultTest::AwaitFinalForFaults(stub, id).status() == v1::TRANSACTION_STATUS_SUCCESS;
  }
  return success;
}

TEST_F(FaultTest, Fault5_RedisStoppedDuringLoad_NothingAcknowledgedIsLost) {
  const std::string prefix = NewPrefix("f5");
  Load load;
  load.Start(prefix, 4, [](int n) { return n % 2 ? &A() : &B(); });
  absl::SleepFor(absl::Milliseconds(1500));
  ASSERT_EQ(redis_->Stop(), 0);  // SIGTERM: Redis flushes its AOF
  redis_.reset();
  const absl::Time outage_began = absl::Now();
  // Readiness follows Redis (Kubernetes stops routing to the replica); liveness does not (a restart
  // would not bring Redis back).
  constexpr int kServing = grpc::health::v1::HealthCheckResponse::SERVING;
  constexpr int kNotServing = grpc::health::v1::HealthCheckResponse::NOT_SERVING;
  EXPECT_TRUE(
      AwaitHealth(*replicas_[0], "flikpay.v1.PaymentService", kNotServing, absl::Seconds(2)));
  EXPECT_EQ(AdminStatus(*replicas_[0], "/readyz"), 503);
  EXPECT_EQ(Health(*replicas_[0], ""), kServing);
  EXPECT_EQ(AdminStatus(*replicas_[0], "/healthz"), 200);
  absl::SleepFor(outage_began + absl::Seconds(3) - absl::Now());
  std::string line;
  auto redis = StartRedis(&line);
  ASSERT_TRUE(redis.ok()) << redis.status();
  redis_ = *std::move(redis);
  EXPECT_TRUE(AwaitHealth(*replicas_[0], "flikpay.v1.PaymentService", kServing, absl::Seconds(2)))
      << "ready again once Redis is back";
  absl::SleepFor(absl::Milliseconds(1500));
  load.Finish();

  // Every debit Bankart created must end SUCCESS in flikpay: acknowledged ones by their callbacks
  // (retried after 503s), the rest by the reconciler.
  const std::set<std::string> at_bankart =
      CreatedAtBankart(SimControl("GET", "/_sim/journal"), prefix);
  const int success = CountSettledAsSuccess(B(), at_bankart);
  int acknowledged_known = 0;
  for (const std::string& id : load.acknowledged) {
    v1::Transaction stored;
    acknowledged_known +=
        Get(A(), id, &stored).ok() && stored.status() == v1::TRANSACTION_STATUS_SUCCESS;
  }
  std::printf(
      "fault 5: %zu attempted, %zu acknowledged (%d failed during the outage); "
      "Bankart created %zu, flikpay SUCCESS for %d of them; acknowledged and "
      "SUCCESS in flikpay %d of %zu\n",
      load.attempted.size(), load.acknowledged.size(), load.failures.load(), at_bankart.size(),
      success, acknowledged_known, load.acknowledged.size());
  EXPECT_GT(load.failures.load(), 0);  // the outage was real
  EXPECT_EQ(success, static_cast<int>(at_bankart.size()));
  EXPECT_EQ(acknowledged_known, static_cast<int>(load.acknowledged.size()));
  for (const std::string& id : load.acknowledged) {
    EXPECT_TRUE(at_bankart.contains(id)) << id;
  }
}

TEST_F(FaultTest, Fault6_KillNineOneReplicaDuringLoad_StreamsResumeWithoutGaps) {
  const std::string prefix = NewPrefix("f6");
  Replica* const victim = replicas_[0].get();
  Replica* const survivor = replicas_[1].get();
  // A subscriber on replica A that will die; it resumes on B from its cursor.
  std::vector<v1::StatusEvent> events;
  std::thread subscriber([&] {
    v1::StreamStatusRequest request;
    request.add_types(v1::TRANSACTION_TYPE_DEBIT);
    for (int attempt = 0; attempt < 2; ++attempt) {
      Replica& replica = attempt == 0 ? *victim : *survivor;
      grpc::ClientContext context;
      context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(12)));
      auto reader = replica.stub->StreamStatus(&context, request);
      v1::StatusEvent event;
      while (reader->Read(&event)) {
        if (absl::StartsWith(event.transaction().merchant_transaction_id(), prefix)) {
          events.push_back(event);
        }
        request.set_resume_after(event.cursor());
      }
      reader->Finish().ok();
    }
  });
  absl::SleepFor(absl::Milliseconds(300));
  // Declared before the load: its workers use them until they are joined.
  std::unique_ptr<Replica> killed;
  std::atomic<bool> victim_alive{true};
  Load load;
  load.Start(prefix, 4, [&](int n) { return (n % 2 && victim_alive) ? victim->stub.get() : &B(); });
  absl::SleepFor(absl::Milliseconds(1500));
  victim_alive = false;
  victim->process->Kill();  // kill -9, mid-load
  absl::SleepFor(absl::Milliseconds(1500));
  // A replacement, as Kubernetes would start.
  killed = std::exchange(replicas_[0], StartReplica());
  ASSERT_NE(replicas_[0], nullptr);
  absl::SleepFor(absl::Milliseconds(1000));
  load.Finish();

  const std::set<std::string> at_bankart =
      CreatedAtBankart(SimControl("GET", "/_sim/journal"), prefix);
  const int success = CountSettledAsSuccess(A(), at_bankart);
  subscriber.join();
  std::map<std::string, int> finals;
  bool ordered = true;
  for (size_t i = 0; i < events.size(); ++i) {
    if (core::IsFinal(events[i].transaction().status())) {
      ++finals[events[i].transaction().merchant_transaction_id()];
    }
    if (i > 0 && !core::CursorBefore(events[i - 1].cursor(), events[i].cursor())) {
      ordered = false;
    }
  }
  int seen_once = 0;
  for (const std::string& id : at_bankart) seen_once += finals[id] == 1;
  std::printf(
      "fault 6: %zu acknowledged, Bankart created %zu, flikpay SUCCESS %d; the "
      "resumed subscriber saw the final event of %d of them exactly once\n",
      load.acknowledged.size(), at_bankart.size(), success, seen_once);
  EXPECT_EQ(success, static_cast<int>(at_bankart.size()));
  EXPECT_TRUE(ordered);
  for (const std::string& id : load.acknowledged) {
    EXPECT_TRUE(at_bankart.contains(id)) << id;
  }
  // Changes the reconciler made after the subscriber's 12 s window are not asserted; everything
  // settled within it must have been seen exactly once.
  int settled_in_window = 0;
  for (const std::string& id : at_bankart) settled_in_window += finals[id] > 0;
  EXPECT_EQ(seen_once, settled_in_window);
  EXPECT_GE(settled_in_window, static_cast<int>(load.acknowledged.size()) / 2);
}

}  // namespace
}  // namespace flikpay
