#include "gateway/money.h"

#include <limits>

#include "gtest/gtest.h"

namespace flikpay::gateway {
namespace {

TEST(FormatAmount, WritesEuroCentsWithADotAndTwoDecimals) {
  EXPECT_EQ(FormatAmount(1111), "11.11");
  EXPECT_EQ(FormatAmount(1110), "11.10");
  EXPECT_EQ(FormatAmount(5), "0.05");
  EXPECT_EQ(FormatAmount(0), "0.00");
  EXPECT_EQ(FormatAmount(100000000), "1000000.00");
  EXPECT_EQ(FormatAmount(-250), "-2.50");
  EXPECT_EQ(FormatAmount(std::numeric_limits<int64_t>::max()), "92233720368547758.07");
}

TEST(ParseAmount, ReadsWhatTheGatewaySends) {
  EXPECT_EQ(*ParseAmount("11.11"), 1111);
  EXPECT_EQ(*ParseAmount("11.1"), 1110);
  EXPECT_EQ(*ParseAmount("11"), 1100);
  EXPECT_EQ(*ParseAmount("0.05"), 5);
  EXPECT_EQ(*ParseAmount("007.00"), 700);
  EXPECT_EQ(*ParseAmount("92233720368547758.07"), std::numeric_limits<int64_t>::max());
}

TEST(ParseAmount, RoundTripsEveryFormattedAmountExactly) {
  for (int64_t cents : {0LL, 1LL, 9LL, 10LL, 99LL, 100LL, 101LL, 123456789LL}) {
    EXPECT_EQ(*ParseAmount(FormatAmount(cents)), cents) << cents;
  }
}

TEST(ParseAmount, RejectsAnythingThatIsNotAPlainTwoDecimalAmount) {
  for (const char* bad :
       {"", "11.111", "1.", ".5", "-1.00", "+1.00", "1,00", "1e3", " 1.00", "1.00 ", "1.0a", "abc",
        "92233720368547758.08", "99999999999999999999", "1..0", "0x10"}) {
    EXPECT_FALSE(ParseAmount(bad).ok()) << '"' << bad << '"';
  }
  EXPECT_EQ(ParseAmount("11.111").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(ParseAmount("11.111").status().message().find("more than two decimals"),
            absl::string_view::npos);
}

}  // namespace
}  // namespace flikpay::gateway
