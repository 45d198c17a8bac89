// The log's levels and the rate limit on repeated failures.
#include "server/log.h"

#include "gtest/gtest.h"

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

}  // namespace
}  // namespace flikpay::server
