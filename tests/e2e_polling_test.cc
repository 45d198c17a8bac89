// Status polling at scale, on the stand-in's time scale (0.01: 5 min are 3 s, an hour 36 s,
// Bankart's 60-second quota window 0.6 s): a thousand open Out-of-Band requests to pay whose
// callbacks never come, and then a few unknown outcomes. The unknown outcomes settle within their
// check time, the quota is never exceeded (the stand-in answers 429 to the 61st query of any
// window, and counts), and the polls per open request stay bounded.
#include <atomic>
#include <cstdio>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gateway/callback_parser.h"
#include "gtest/gtest.h"
#include "tests/support/e2e_fixture.h"

namespace flikpay {
namespace {

using ::flikpay::testing::Json;

class PollingTest : public ::flikpay::testing::E2eTest {
 public:
  static void SetUpTestSuite() {
    // The production policy scaled by 0.01. The quota is set a little under Bankart's 60: a query
    // granted near the end of flikpay's window may reach the stand-in in the next one.
    replica_flags_ = {"--status_quota_window=600ms", "--status_queries_per_minute=50",
                      "--pending_check_after=3s",    "--pending_check_max=36s",
                      "--expiry_grace=600ms",        "--unknown_check_after=300ms",
                      "--recheck_after=100ms",       "--not_found_grace=3s"};
    E2eTest::SetUpTestSuite();
  }
  static void TearDownTestSuite() {
    E2eTest::TearDownTestSuite();
    replica_flags_.clear();
  }
};

TEST_F(PollingTest, AThousandOpenRequestsNeitherStarveUnknownOutcomesNorExceedTheQuota) {
  const std::string open_prefix = NewPrefix("open");
  // redirect@bankart.flik on Out-of-Band: the payer never answers; valid 72 h (43 min here).
  constexpr int kOpen = 1000;
  std::atomic<int> created{0};
  std::vector<std::thread> creators;
  for (int t = 0; t < 8; ++t) {
    creators.emplace_back([&, t] {
      for (int i = t; i < kOpen; i += 8) {
        v1::CreateRtpRequest request = Rtp("redirect@bankart.flik", v1::RTP_KIND_OUT_OF_BAND);
        request.set_merchant_transaction_id(absl::StrCat(open_prefix, i));
        v1::Transaction out;
        if (Create(i % 2 == 0 ? A() : B(), request, &out).ok()) ++created;
      }
    });
  }
  for (std::thread& creator : creators) creator.join();
  ASSERT_EQ(created, kOpen);
  const absl::Time opened = absl::Now();

  // Once the thousand are all due (pending_check_after, 3 s), three creates whose answers are lost.
  absl::SleepFor(absl::Seconds(4));
  const std::string unknown_prefix = NewPrefix("unknown");
  AddApiFault(Json{{"kind", "timeout_after"},
                   {"operation", "debit"},
                   {"delay_ms", 1500},
                   {"count", 3},
                   {"merchant_transaction_id_prefix", unknown_prefix}});
  // Their callbacks are lost too: only a status query can settle them.
  AddCallbackFault(
      Json{{"kind", "drop"}, {"count", 10}, {"merchant_transaction_id_prefix", unknown_prefix}});
  std::vector<std::string> unknown;
  for (int i = 0; i < 3; ++i) {
    v1::CreateRtpRequest request = Rtp("success.debit@bankart.flik", v1::RTP_KIND_IN_PERSON);
    request.set_merchant_transaction_id(absl::StrCat(unknown_prefix, i));
    v1::Transaction out;
    const grpc::Status answer = Create(A(), request, &out, absl::Milliseconds(500));
    EXPECT_FALSE(answer.ok()) << "the answer is lost: the outcome is unknown";
    unknown.push_back(request.merchant_transaction_id());
  }
  const absl::Time lost = absl::Now();
  // Settled: no longer UNKNOWN.
  absl::Duration slowest = absl::ZeroDuration();
  for (const std::string& id : unknown) {
    v1::Transaction stored;
    while (absl::Now() - lost < absl::Seconds(10)) {
      if (Get(A(), id, &stored).ok() && stored.status() != v1::TRANSACTION_STATUS_UNKNOWN) break;
      absl::SleepFor(absl::Milliseconds(20));
    }
    EXPECT_NE(stored.status(), v1::TRANSACTION_STATUS_UNKNOWN) << id;
    ASSERT_GT(stored.history_size(), 0);
    EXPECT_EQ(stored.history(0).source(), v1::EVENT_SOURCE_RECONCILER) << "settled by a query";
    slowest = std::max(slowest, absl::Now() - lost);
  }
  // Their check time: unknown_check_after (0.3 s) after the call, a reconciler pass (0.1 s), one
  // query; 1.5 s leaves room for a loaded machine, far below the seconds a queue of a thousand
  // would take.
  EXPECT_LT(slowest, absl::Milliseconds(1500)) << "unknown outcomes settle first";

  // Let the reconcilers work on the thousand for a while: 18 s here is half an hour of Bankart's.
  const absl::Time until = opened + absl::Seconds(22);
  absl::SleepFor(until - absl::Now());
  const absl::Duration observed = absl::Now() - opened;

  int refused = 0;
  int queries = 0;
  std::map<std::string, int> per_open_request;
  const Json journal = SimControl("GET", "/_sim/journal");
  ASSERT_TRUE(journal.is_object()) << "the stand-in's journal";
  for (const Json& entry : journal["requests"]) {
    if (gateway::JsonText(entry, "operation") != "status") continue;
    ++queries;
    // The stand-in's own limit, not a fault another test of the suite asked for.
    if (gateway::JsonText(entry, "httpStatus") == "429" &&
        gateway::JsonText(entry, "fault").empty()) {
      ++refused;
    }
    const std::string id = gateway::JsonText(entry, "lookup");
    if (id.rfind(open_prefix, 0) == 0) ++per_open_request[id];
  }
  int most = 0;
  int64_t open_polls = 0;
  for (const auto& [id, count] : per_open_request) {
    most = std::max(most, count);
    open_polls += count;
  }
  const double scaled_hours = absl::ToDoubleSeconds(observed) / 36.0;
  const double per_request_hour = static_cast<double>(open_polls) / kOpen / scaled_hours;
  std::printf(
      "polling: %d open requests, %d status queries in %.1f s (%.2f Bankart hours), %d refused "
      "(429); unknown outcomes settled within %.2f s; polls per open request: at most %d, %.2f "
      "per hour on average\n",
      kOpen, queries, absl::ToDoubleSeconds(observed), scaled_hours, refused,
      absl::ToDoubleSeconds(slowest), most, per_request_hour);
  EXPECT_EQ(refused, 0) << "Bankart's quota was exceeded";
  // The backoff allows checks at 5, 10 and 20 min of silence in the first half hour: 3.
  EXPECT_LE(most, 3);
  EXPECT_GT(open_polls, 0) << "silent requests are still looked at";
  // Every replica may query at most 50 per 0.6 s in all; half of that for silent PENDING.
  EXPECT_LE(queries, static_cast<int>(absl::ToDoubleSeconds(observed) / 0.6 * 50) + 50);
}

// One query taken from the quota is one request to Bankart: a 429 is not retried behind the quota's
// back (the next check is the schedule's).
TEST_F(PollingTest, EachQueryTakenFromTheQuotaIsOneRequestToBankart) {
  v1::CreateRtpRequest request = Rtp("redirect@bankart.flik", v1::RTP_KIND_OUT_OF_BAND);
  v1::Transaction created;
  ASSERT_TRUE(Create(A(), request, &created).ok());
  AddApiFault(Json{{"kind", "rate_limit"},
                   {"operation", "status"},
                   {"count", 5},
                   {"merchant_transaction_id", request.merchant_transaction_id()}});
  v1::GetStatusRequest refresh;
  refresh.set_merchant_transaction_id(request.merchant_transaction_id());
  refresh.set_refresh(true);
  v1::Transaction out;
  grpc::ClientContext context;
  const grpc::Status refreshed = B().GetStatus(&context, refresh, &out);
  EXPECT_FALSE(refreshed.ok()) << "Bankart said 429";
  int sent = 0;
  const Json journal = SimControl("GET", "/_sim/journal");
  for (const Json& entry : journal["requests"]) {
    const std::string lookup = gateway::JsonText(entry, "lookup");
    sent += gateway::JsonText(entry, "operation") == "status" &&
            (lookup == request.merchant_transaction_id() || lookup == created.gateway_uuid());
  }
  EXPECT_EQ(sent, 1);
}

}  // namespace
}  // namespace flikpay
