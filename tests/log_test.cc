// The log's levels and the rate limit on repeated failures.
#include "server/log.h"

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace flikpay::server {
namespace {

TEST(LogTest, LevelsParseByNameAndFilter) {
  EXPECT_EQ(*ParseLogLevel("warning"), LogLevel::kWarning);
  EXPECT_EQ(*ParseLogLevel("ERROR"), LogLevel::kError);
  EXPECT_EQ(ParseLogLevel("loud").status().code(), absl::StatusCode::kInvalidArgument);
  SetLogLevel(LogLevel::kWarning);
  EXPECT_FALSE(LogEnabled(LogLevel::kInfo));
  EXPECT_TRUE(LogEnabled(LogLevel::kWarning));
  EXPECT_TRUE(LogEnabled(LogLevel::kError));
  SetLogLevel(LogLevel::kInfo);
  EXPECT_TRUE(LogEnabled(LogLevel::kInfo));
  EXPECT_FALSE(LogEnabled(LogLevel::kDebug));
}

TEST(LogTest, ARepeatedFailureIsLoggedFirstThenEveryNth) {
  RepeatedFailureLog failures(3);
  std::vector<bool> logged;
  for (int i = 0; i < 7; ++i) logged.push_back(failures.ShouldLog());
  EXPECT_EQ(logged, (std::vector<bool>{true, false, false, true, false, false, true}));
  EXPECT_EQ(failures.count(), 7);
  failures.Reset();
  EXPECT_TRUE(failures.ShouldLog()) << "a new outage is logged at once";
}

TEST(LogTest, ALineIsOneJsonObjectWithTheCallsContext) {
  const absl::Time at = absl::FromUnixSeconds(1796000000);
  EXPECT_EQ(nlohmann::json::parse(LogLine(LogLevel::kWarning, "no context", {}, at)),
            nlohmann::json::parse(R"({"time":"2026-11-30T00:53:20.000Z","level":"warning",)"
                                  R"("msg":"no context"})"));
  const LogContext call{"req-1", "spiffe://shop", "Refund", "order-9"};
  const ScopedLogContext scope(call);
  LogFields fields;
  fields["attempt"] = 2;
  fields["merchant_transaction_id"] = "order-10";  // the event's own facts win
  // A message that would break a hand-built line: quotes, a newline, invalid UTF-8.
  const std::string line = LogLine(LogLevel::kError, "said \"no\"\n\xff", fields, at);
  EXPECT_EQ(line.find('\n'), std::string::npos);
  const nlohmann::json parsed = nlohmann::json::parse(line);
  EXPECT_EQ(parsed["level"], "error");
  EXPECT_EQ(parsed["msg"], "said \"no\"\n\xEF\xBF\xBD");
  EXPECT_EQ(parsed["request_id"], "req-1");
  EXPECT_EQ(parsed["caller"], "spiffe://shop");
  EXPECT_EQ(parsed["rpc"], "Refund");
  EXPECT_EQ(parsed["merchant_transaction_id"], "order-10");
  EXPECT_EQ(parsed["attempt"], 2);
  {
    const LogContext inner{"req-2", "", "", ""};
    const ScopedLogContext nested(inner);
    EXPECT_EQ(nlohmann::json::parse(LogLine(LogLevel::kInfo, "m", {}, at))["request_id"], "req-2");
  }
  EXPECT_EQ(nlohmann::json::parse(LogLine(LogLevel::kInfo, "m", {}, at))["request_id"], "req-1")
      << "the outer scope is back";
}

TEST(LogTest, ARequestIdIsKeptOnlyWhenItIsAHarmlessToken) {
  EXPECT_EQ(RequestIdFrom("4bf92f35-77b3-4da6-a3ce-929d0e0e4736"),
            "4bf92f35-77b3-4da6-a3ce-929d0e0e4736");
  for (const std::string& offered :
       {std::string(), std::string("two words"), std::string("line\r\nX-Evil: 1"),
        std::string(129, 'a'), std::string("caf\xc3\xa9")}) {
    const std::string made = RequestIdFrom(offered);
    EXPECT_NE(made, offered);
    EXPECT_EQ(made.size(), 32u);
    EXPECT_EQ(made.find_first_not_of("0123456789abcdef"), std::string::npos) << made;
  }
  EXPECT_NE(RequestIdFrom(""), RequestIdFrom("")) << "each made-up id is new";
}

TEST(LogTest, ASamplerLetsAFewLinesASecondThroughAndCountsTheRest) {
  LogSampler sampler(2);
  const absl::Time second = absl::FromUnixSeconds(1796000000);
  int64_t suppressed = -1;
  EXPECT_TRUE(sampler.Allow(second, &suppressed));
  EXPECT_EQ(suppressed, 0);
  EXPECT_TRUE(sampler.Allow(second + absl::Milliseconds(10), &suppressed));
  for (int i = 0; i < 5; ++i)
    EXPECT_FALSE(sampler.Allow(second + absl::Milliseconds(20), &suppressed));
  EXPECT_TRUE(sampler.Allow(second + absl::Seconds(1), &suppressed));
  EXPECT_EQ(suppressed, 5) << "the next line says how many were held back";
}

}  // namespace
}  // namespace flikpay::server
