// What operators rely on, end to end: a request id that follows a payment from the caller through
// the log to Bankart and onto the stored transaction, JSON log lines a pipeline can parse (one per
// RPC and per callback, aliases masked), and /metrics series that count what really happened.
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/support/e2e_fixture.h"

namespace flikpay {
namespace {

using Json = nlohmann::json;

class OpsTest : public testing::E2eTest {
 protected:
  // The replica's log lines containing `needle`, parsed; a line that is not JSON fails the test.
  static std::vector<Json> LogLinesWith(const testing::Replica& replica,
                                        const std::string& needle) {
    std::vector<Json> parsed;
    for (const std::string& line : replica.process->OutputLinesWith(needle)) {
      Json json = Json::parse(line, nullptr, /*allow_exceptions=*/false);
      EXPECT_FALSE(json.is_discarded()) << "not a JSON line: " << line;
      if (!json.is_discarded()) parsed.push_back(std::move(json));
    }
    return parsed;
  }

  // Waits until `replica` has logged a line containing `needle` with "msg" `message`.
  static Json AwaitLogLine(const testing::Replica& replica, const std::string& needle,
                           const std::string& message) {
    const absl::Time deadline = absl::Now() + absl::Seconds(5);
    while (absl::Now() < deadline) {
      for (Json& line : LogLinesWith(replica, needle)) {
        if (line.value("msg", "") == message) return line;
      }
      absl::SleepFor(absl::Milliseconds(20));
    }
    ADD_FAILURE() << "no \"" << message << "\" line with " << needle;
    return Json();
  }

  static int64_t Both(const std::string& metric) {
    return Metric(*replicas_[0], metric) + Metric(*replicas_[1], metric);
  }
};

TEST_F(OpsTest, TheCallersRequestIdFollowsThePaymentToBankartTheLogAndTheRecord) {
  const std::string request_id = NewId("ops-request");
  v1::CreateRtpRequest request = Rtp("0038640111222", v1::RTP_KIND_IN_PERSON);
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  context.AddMetadata("x-request-id", request_id);
  v1::Transaction created;
  ASSERT_TRUE(A().CreateRtp(&context, request, &created).ok());

  auto answered = context.GetServerInitialMetadata().find("x-request-id");
  ASSERT_NE(answered, context.GetServerInitialMetadata().end());
  EXPECT_EQ(std::string(answered->second.data(), answered->second.size()), request_id);
  EXPECT_EQ(created.request_id(), request_id);
  v1::Transaction read;
  ASSERT_TRUE(Get(B(), request.merchant_transaction_id(), &read).ok());
  EXPECT_EQ(read.request_id(), request_id) << "kept on the record, read on another replica";

  // The stand-in journals the X-Request-ID it received with the debit.
  bool sent_to_bankart = false;
  const testing::Json journal = SimControl("GET", "/_sim/journal");
  for (const testing::Json& entry : journal["requests"]) {
    if (entry.value("merchantTransactionId", "") == request.merchant_transaction_id() &&
        entry.value("operation", "") == "debit") {
      EXPECT_EQ(entry.value("requestId", ""), request_id);
      sent_to_bankart = true;
    }
  }
  EXPECT_TRUE(sent_to_bankart) << journal.dump();

  const Json line = AwaitLogLine(*replicas_[0], request_id, "rpc");
  EXPECT_EQ(line.value("level", ""), "info");
  EXPECT_EQ(line.value("rpc", ""), "CreateRtp");
  EXPECT_EQ(line.value("caller", ""), "dev");
  EXPECT_EQ(line.value("merchant_transaction_id", ""), request.merchant_transaction_id());
  EXPECT_EQ(line.value("outcome", ""), "OK");
  EXPECT_EQ(line.value("status", ""), "TRANSACTION_STATUS_PENDING");
  EXPECT_TRUE(line.value("audit", false)) << "a money RPC is audited";
  EXPECT_TRUE(line.contains("time") && line.contains("latency_us"));
  EXPECT_NE(line.value("alias", ""), request.alias()) << "masked";
  EXPECT_TRUE(replicas_[0]->process->OutputLinesWith(request.alias()).empty())
      << "the full alias is never logged";
}

TEST_F(OpsTest, ACallWithoutARequestIdIsGivenOne) {
  v1::CreateRtpRequest request = Rtp("0038640111333", v1::RTP_KIND_IN_PERSON);
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  // Not a token (a space, and far too long): replaced, never passed on to Bankart or the log.
  context.AddMetadata("x-request-id", std::string(200, 'x') + " y");
  v1::Transaction created;
  ASSERT_TRUE(A().CreateRtp(&context, request, &created).ok());
  auto answered = context.GetServerInitialMetadata().find("x-request-id");
  ASSERT_NE(answered, context.GetServerInitialMetadata().end());
  const std::string made_up(answered->second.data(), answered->second.size());
  EXPECT_EQ(made_up.size(), 32u);
  EXPECT_EQ(made_up.find_first_not_of("0123456789abcdef"), std::string::npos) << made_up;
  EXPECT_EQ(created.request_id(), made_up);
}

TEST_F(OpsTest, EveryCallbackHasAnAccessLineAndACount) {
  const int64_t accepted_before = Both("flikpay_callbacks_total{result=\"accepted\"}");
  const int64_t forged_before =
      Metric(*replicas_[0], "flikpay_callbacks_total{result=\"bad_signature\"}");
  const int64_t stale_before = Metric(*replicas_[0], "flikpay_callbacks_total{result=\"stale\"}");
  const int64_t transitions_before =
      Both("flikpay_status_transitions_total{from=\"pending\",to=\"success\"}");

  v1::CreateRtpRequest request = Rtp("success.debit@bankart.flik", v1::RTP_KIND_IN_PERSON);
  v1::Transaction created;
  ASSERT_TRUE(Create(A(), request, &created).ok());
  ASSERT_EQ(AwaitFinal(B(), request.merchant_transaction_id()).status(),
            v1::TRANSACTION_STATUS_SUCCESS);
  EXPECT_GE(Both("flikpay_callbacks_total{result=\"accepted\"}"), accepted_before + 1);
  EXPECT_GE(Both("flikpay_status_transitions_total{from=\"pending\",to=\"success\"}"),
            transitions_before + 1);
  // Bankart's callback reached one of the two replicas: that one logged it.
  bool logged = false;
  for (const auto& replica : replicas_) {
    for (const Json& line : LogLinesWith(*replica, request.merchant_transaction_id())) {
      if (line.value("msg", "") != "callback") continue;
      EXPECT_EQ(line.value("http_status", 0), 200);
      EXPECT_TRUE(line.value("result", "") == "accepted" || line.value("result", "") == "duplicate")
          << line.dump();
      EXPECT_TRUE(absl::StartsWith(line.value("peer", ""), "ipv4:127.0.0.1:")) << line.dump();
      EXPECT_EQ(line.value("rpc", ""), "callback");
      EXPECT_FALSE(line.value("request_id", "").empty());
      logged = true;
    }
  }
  EXPECT_TRUE(logged);

  // A forger and a stale retry are told apart, in the metrics and the log.
  const std::string body =
      Json{{"result", "OK"}, {"uuid", created.gateway_uuid()}, {"transactionType", "DEBIT"}}.dump();
  EXPECT_EQ(PostCallback(replicas_[0]->callback_port, body, "not-the-secret"), 401);
  EXPECT_EQ(PostCallback(replicas_[0]->callback_port, body, "sim-in-person-secret",
                         "connector=in_person", absl::Now() - absl::Hours(1)),
            401);
  EXPECT_EQ(Metric(*replicas_[0], "flikpay_callbacks_total{result=\"bad_signature\"}"),
            forged_before + 1);
  EXPECT_EQ(Metric(*replicas_[0], "flikpay_callbacks_total{result=\"stale\"}"), stale_before + 1);
  bool stale_logged = false;
  for (const Json& line : LogLinesWith(*replicas_[0], "\"result\":\"stale\"")) {
    EXPECT_EQ(line.value("http_status", 0), 401);
    stale_logged = true;
  }
  EXPECT_TRUE(stale_logged);
}

TEST_F(OpsTest, MetricsCountCallsGatewayRequestsAndRedisRoundTrips) {
  const std::string ok_creates = "flikpay_grpc_requests_total{code=\"OK\",method=\"CreateRtp\"}";
  const std::string not_found =
      "flikpay_grpc_requests_total{code=\"NOT_FOUND\",method=\"GetStatus\"}";
  const std::string debits =
      "flikpay_gateway_requests_total{endpoint=\"debit\",outcome=\"accepted\"}";
  const int64_t creates_before = Metric(*replicas_[0], ok_creates);
  const int64_t not_found_before = Metric(*replicas_[0], not_found);
  const int64_t debits_before = Metric(*replicas_[0], debits);
  const int64_t latencies_before =
      Metric(*replicas_[0], "flikpay_grpc_request_duration_seconds_count{method=\"CreateRtp\"}");

  v1::Transaction created;
  ASSERT_TRUE(Create(A(), Rtp("0038640111555", v1::RTP_KIND_IN_PERSON), &created).ok());
  v1::Transaction missing;
  EXPECT_EQ(Get(A(), NewId("ops-never-created"), &missing).error_code(), grpc::NOT_FOUND);

  EXPECT_EQ(Metric(*replicas_[0], ok_creates), creates_before + 1);
  EXPECT_EQ(Metric(*replicas_[0], not_found), not_found_before + 1);
  EXPECT_EQ(Metric(*replicas_[0], debits), debits_before + 1);
  EXPECT_EQ(
      Metric(*replicas_[0], "flikpay_grpc_request_duration_seconds_count{method=\"CreateRtp\"}"),
      latencies_before + 1);
  EXPECT_GT(Metric(*replicas_[0], "flikpay_redis_round_trip_seconds_count{command=\"EVAL\"}"), 0)
      << "the claim and the status quota are Lua scripts";
  EXPECT_GT(Metric(*replicas_[0], "flikpay_redis_round_trip_seconds_count{command=\"WATCH\"}"), 0)
      << "every stored answer is a WATCH/MULTI/EXEC";
  EXPECT_GT(Metric(*replicas_[0], "flikpay_status_query_quota_left"), 0)
      << "read from Redis every reconciler pass, not only when this replica asks Bankart";
  EXPECT_GE(Metric(*replicas_[0], "flikpay_streams_open"), 0);
  EXPECT_GE(Metric(*replicas_[0], "flikpay_reconciler_backlog"), 0);
}

}  // namespace
}  // namespace flikpay
