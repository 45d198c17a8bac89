// /metrics as Prometheus reads it: every request to Bankart counted by endpoint and outcome, calls
// by method and code with latency histograms, and label values from closed sets.
#include "server/metrics.h"

#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "server/metered_gateway.h"
#include "tests/support/fake_gateway.h"

namespace flikpay::server {
namespace {

// The value of the series written exactly as `series` (name and labels), or -1 when absent.
double Series(const Metrics& metrics, const std::string& series) {
  const std::string text = metrics.Render();
  const std::string prefix = absl::StrCat("\n", series, " ");
  const size_t at = text.find(prefix);
  if (at == std::string::npos) return -1;
  return std::stod(text.substr(at + prefix.size()));
}

gateway::SubmitOutcome Outcome(gateway::SubmitOutcome::Kind kind) {
  gateway::SubmitOutcome outcome;
  outcome.kind = kind;
  return outcome;
}

TEST(MetricsTest, EveryRequestToBankartIsCountedByEndpointAndOutcome) {
  Metrics metrics;
  testing::FakeGateway fake;
  MeteredGateway gateway(fake, metrics);
  const absl::Time deadline = absl::Now() + absl::Seconds(5);

  fake.AnswerSends(Outcome(gateway::SubmitOutcome::Kind::kAccepted));
  EXPECT_TRUE(gateway.Debit({}, deadline).ok());
  EXPECT_TRUE(gateway.Debit({}, deadline).ok());
  fake.AnswerSends(Outcome(gateway::SubmitOutcome::Kind::kDeclined));
  EXPECT_TRUE(gateway.Refund({}, deadline).ok());
  fake.AnswerSends(Outcome(gateway::SubmitOutcome::Kind::kUnknown));
  EXPECT_TRUE(gateway.Payout({}, deadline).ok());
  fake.AnswerSends(absl::UnavailableError("not sent"));
  EXPECT_FALSE(gateway.Debit({}, deadline).ok());
  fake.AnswerStatus(gateway::StatusReport{});
  EXPECT_TRUE(gateway.StatusByUuid(gateway::Connector::kInPerson, "u", deadline).ok());
  fake.AnswerStatus(absl::DeadlineExceededError("no answer"));
  EXPECT_FALSE(
      gateway.StatusByMerchantTransactionId(gateway::Connector::kInPerson, "m", deadline).ok());

  EXPECT_EQ(fake.debits().size(), 3u) << "every call reaches the gateway it wraps";
  EXPECT_EQ(
      Series(metrics, R"(flikpay_gateway_requests_total{endpoint="debit",outcome="accepted"})"), 2);
  EXPECT_EQ(Series(metrics, R"(flikpay_gateway_requests_total{endpoint="debit",outcome="error"})"),
            1);
  EXPECT_EQ(
      Series(metrics, R"(flikpay_gateway_requests_total{endpoint="refund",outcome="declined"})"),
      1);
  EXPECT_EQ(
      Series(metrics, R"(flikpay_gateway_requests_total{endpoint="payout",outcome="unknown"})"), 1);
  EXPECT_EQ(
      Series(metrics, R"(flikpay_gateway_requests_total{endpoint="status",outcome="accepted"})"),
      1);
  EXPECT_EQ(
      Series(metrics, R"(flikpay_gateway_requests_total{endpoint="status",outcome="unknown"})"), 1);
  EXPECT_EQ(Series(metrics, R"(flikpay_gateway_request_duration_seconds_count{endpoint="debit"})"),
            3);
}

TEST(MetricsTest, CallsAreCountedByMethodAndCodeWithLatencyBuckets) {
  Metrics metrics;
  metrics.CountRpc(core::Rpc::kGetStatus, absl::StatusCode::kNotFound, absl::Milliseconds(3));
  metrics.CountRpc(core::Rpc::kGetStatus, absl::StatusCode::kOk, absl::Milliseconds(30));
  metrics.CountRpc(core::Rpc::kStreamStatus, absl::StatusCode::kCancelled, absl::Hours(2));
  metrics.CountStreamEnd(absl::StatusCode::kCancelled);
  metrics.CountStreamEnd(absl::StatusCode::kOutOfRange);

  EXPECT_EQ(Series(metrics, R"(flikpay_grpc_requests_total{code="NOT_FOUND",method="GetStatus"})"),
            1);
  EXPECT_EQ(Series(metrics, R"(flikpay_grpc_requests_total{code="OK",method="CreateRtp"})"), 0)
      << "every method and code is there from the start, so rate() sees the first call";
  EXPECT_EQ(
      Series(metrics,
             R"(flikpay_grpc_request_duration_seconds_bucket{method="GetStatus",le="0.0025"})"),
      0);
  EXPECT_EQ(
      Series(metrics,
             R"(flikpay_grpc_request_duration_seconds_bucket{method="GetStatus",le="0.005"})"),
      1);
  EXPECT_EQ(Series(metrics,
                   R"(flikpay_grpc_request_duration_seconds_bucket{method="GetStatus",le="0.05"})"),
            2);
  EXPECT_EQ(
      Series(metrics, R"(flikpay_grpc_request_duration_seconds_count{method="StreamStatus"})"), 0)
      << "a stream's lifetime is not a latency";
  EXPECT_EQ(Series(metrics, R"(flikpay_stream_ends_total{reason="cancelled"})"), 1);
  EXPECT_EQ(Series(metrics, R"(flikpay_stream_ends_total{reason="cursor_expired"})"), 1);
  const std::string text = metrics.Render();
  EXPECT_TRUE(absl::StrContains(text, "# TYPE flikpay_grpc_request_duration_seconds histogram"));
  EXPECT_TRUE(absl::StrContains(text, "# TYPE flikpay_grpc_requests_total counter"));
}

TEST(MetricsTest, TransitionsCallbacksAndRedisAreCounted) {
  Metrics metrics;
  metrics.CountTransition(v1::TRANSACTION_STATUS_PENDING, v1::TRANSACTION_STATUS_SUCCESS, false);
  metrics.CountTransition(v1::TRANSACTION_STATUS_UNKNOWN, v1::TRANSACTION_STATUS_PENDING, true);
  metrics.CountCallback(CallbackResult::kStale);
  metrics.CountCallback(CallbackResult::kStale);
  metrics.CountRedisRoundTrip("evalsha", absl::Microseconds(300), absl::OkStatus());
  metrics.CountRedisRoundTrip("CONNECT", absl::Seconds(1), absl::UnavailableError("down"));
  metrics.CountRedisRoundTrip("HSET", absl::Microseconds(80), absl::InternalError("WRONGTYPE"));
  metrics.CountRedisRoundTrip("evalsha", absl::Microseconds(200), absl::OkStatus());
  metrics.CountRedisRoundTrip("EVALSHA", absl::Microseconds(100), absl::OkStatus());

  EXPECT_EQ(Series(metrics, R"(flikpay_status_transitions_total{from="pending",to="success"})"), 1);
  EXPECT_EQ(Series(metrics, R"(flikpay_status_transitions_total{from="new",to="pending"})"), 1);
  EXPECT_EQ(Series(metrics, R"(flikpay_status_transitions_total{from="unknown",to="pending"})"), 0)
      << "a creation's first answer is not an unknown outcome resolved";
  EXPECT_EQ(Series(metrics, R"(flikpay_stream_ends_total{reason="overflow_or_busy"})"), 0)
      << "there from the start";
  EXPECT_EQ(Series(metrics, R"(flikpay_callbacks_total{result="stale"})"), 2);
  EXPECT_EQ(Series(metrics, R"(flikpay_callbacks_total{result="bad_signature"})"), 0);
  EXPECT_EQ(metrics.Callbacks(CallbackResult::kStale), 2);
  EXPECT_EQ(Series(metrics, R"(flikpay_redis_round_trip_seconds_count{command="EVALSHA"})"), 3)
      << "command names are upper-cased, one series whatever the case";
  EXPECT_EQ(Series(metrics, R"(flikpay_redis_round_trip_seconds_count{command="HSET"})"), 1);
  EXPECT_EQ(Series(metrics, R"(flikpay_redis_errors_total{kind="connection"})"), 1);
  EXPECT_EQ(Series(metrics, R"(flikpay_redis_errors_total{kind="reply"})"), 1);
}

}  // namespace
}  // namespace flikpay::server
