// The caller policy file as a payments team writes it, and the decisions made from it.
#include "core/caller_policy.h"

#include <limits>
#include <string>

#include "absl/strings/match.h"
#include "gtest/gtest.h"

namespace flikpay::core {
namespace {

constexpr char kPolicy[] = R"json({
  "callers": {
    "spiffe://example.org/ns/shop/sa/shop": {
      "rpcs": ["CreateRtp", "Refund", "GetStatus", "StreamStatus"],
      "kinds": ["ECOMMERCE", "IN_PERSON"],
      "limits": {
        "CreateRtp": {"max_amount_minor": 500000, "max_daily_amount_minor": 5000000},
        "Refund": {"max_amount_minor": 500000, "max_daily_amount_minor": 1000000}
      },
      "max_concurrent_calls": 16,
      "calls_per_second": 200
    },
    "reconciliation": {"rpcs": ["GetStatus", "StreamStatus"], "read_all": true}
  }
})json";

constexpr char kShop[] = "spiffe://example.org/ns/shop/sa/shop";

TEST(CallerPolicyTest, ReadsEachCallersGrant) {
  absl::StatusOr<CallerPolicy> policy = ParseCallerPolicy(kPolicy);
  ASSERT_TRUE(policy.ok()) << policy.status();
  const CallerGrant* shop = policy->Find(kShop);
  ASSERT_NE(shop, nullptr);
  EXPECT_EQ(shop->rpcs,
            (std::set<Rpc>{Rpc::kCreateRtp, Rpc::kRefund, Rpc::kGetStatus, Rpc::kStreamStatus}));
  EXPECT_EQ(shop->kinds, (std::set<v1::RtpKind>{v1::RTP_KIND_ECOMMERCE, v1::RTP_KIND_IN_PERSON}));
  EXPECT_FALSE(shop->read_all);
  EXPECT_EQ(shop->limits.at(Rpc::kRefund).per_transaction_minor, 500000);
  EXPECT_EQ(shop->limits.at(Rpc::kRefund).per_day_minor, 1000000);
  EXPECT_EQ(shop->max_concurrent_calls, 16);
  EXPECT_EQ(shop->calls_per_second, 200);

  const CallerGrant* reconciliation = policy->Find("reconciliation");
  ASSERT_NE(reconciliation, nullptr);
  EXPECT_TRUE(reconciliation->read_all);
  EXPECT_TRUE(reconciliation->kinds.empty());
  EXPECT_EQ(reconciliation->max_concurrent_calls, 8);  // the defaults
  EXPECT_EQ(reconciliation->calls_per_second, 50);
  EXPECT_EQ(policy->Find("spiffe://example.org/ns/shop/sa/sho"), nullptr);
}

TEST(CallerPolicyTest, DecidesPermissionKindsAndLimits) {
  absl::StatusOr<CallerPolicy> policy = ParseCallerPolicy(kPolicy);
  ASSERT_TRUE(policy.ok());
  const CallerGrant* shop = policy->Find(kShop);
  EXPECT_TRUE(Permit(shop, kShop, Rpc::kRefund).ok());
  absl::Status denied = Permit(shop, kShop, Rpc::kPayout);
  EXPECT_EQ(denied.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(denied.message(), absl::StrCat("caller ", kShop, " may not call Payout"));
  EXPECT_EQ(Permit(nullptr, "stranger", Rpc::kGetStatus).message(),
            "caller stranger is not in the caller policy");

  EXPECT_TRUE(PermitKind(*shop, kShop, v1::RTP_KIND_IN_PERSON).ok());
  absl::Status kind = PermitKind(*shop, kShop, v1::RTP_KIND_OUT_OF_BAND);
  EXPECT_EQ(kind.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(absl::StartsWith(kind.message(), "kind: ")) << kind.message();

  EXPECT_TRUE(CheckTransactionLimit(*shop, kShop, Rpc::kCreateRtp, 500000).ok());
  absl::Status over = CheckTransactionLimit(*shop, kShop, Rpc::kCreateRtp, 500001);
  EXPECT_EQ(over.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(over.message(), absl::StrCat("amount_minor: 500001 is above caller ", kShop,
                                         "'s CreateRtp limit per transaction (500000)"));
  EXPECT_EQ(DailyLimit(*shop, Rpc::kRefund), 1000000);
  EXPECT_EQ(DailyLimit(*shop, Rpc::kPayout), std::nullopt);
  EXPECT_EQ(DailyLimitExceeded(kShop, Rpc::kRefund, 10, 999995, 1000000).code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(CallerPolicyTest, CreateRtpWithoutKindsMayAskForEveryKind) {
  absl::StatusOr<CallerPolicy> policy = ParseCallerPolicy(R"({"callers": {"till": {
      "rpcs": ["CreateRtp"],
      "limits": {"CreateRtp": {"max_amount_minor": 1, "max_daily_amount_minor": 1}}}}})");
  ASSERT_TRUE(policy.ok()) << policy.status();
  EXPECT_EQ(policy->Find("till")->kinds.size(), 3u);
}

// A mistake names its place, so whoever edits the file finds it; a typo never drops a rule.
TEST(CallerPolicyTest, AMistakeIsRefusedNamingWhereItIs) {
  const std::pair<const char*, const char*> cases[] = {
      {"{", "policy: not valid JSON"},
      {"[]", "policy: must be a JSON object"},
      {R"({"caller": {}})", "policy.caller: unknown key"},
      {R"({"callers": {"a": {"rpcs": ["Payot"]}}})",
       R"(callers["a"].rpcs[0]: unknown RPC "Payot" (CreateRtp, Refund, Payout, GetStatus, )"
       "StreamStatus)"},
      {R"({"callers": {"a": {"rpcs": ["Payout"]}}})",
       R"(callers["a"].limits.Payout: required: every money RPC granted needs its limits)"},
      {R"({"callers": {"a": {"rpcs": ["GetStatus"], "read_al": true}}})",
       R"(callers["a"].read_al: unknown key)"},
      {R"({"callers": {"a": {"rpcs": ["GetStatus"], "read_all": "yes"}}})",
       R"(callers["a"].read_all: must be true or false)"},
      {R"({"callers": {"a": {"rpcs": ["CreateRtp"], "kinds": ["POS"],
          "limits": {"CreateRtp": {"max_amount_minor": 1, "max_daily_amount_minor": 1}}}}})",
       R"(callers["a"].kinds[0]: must be ECOMMERCE, IN_PERSON or OUT_OF_BAND)"},
      {R"({"callers": {"a": {"rpcs": ["Payout"],
          "limits": {"Payout": {"max_amount_minor": 10.5, "max_daily_amount_minor": 100}}}}})",
       R"(callers["a"].limits.Payout.max_amount_minor: must be a whole number)"},
      {R"({"callers": {"a": {"rpcs": ["Payout"],
          "limits": {"Payout": {"max_amount_minor": -1, "max_daily_amount_minor": 100}}}}})",
       R"(callers["a"].limits.Payout.max_amount_minor: must be from 0 to 9223372036854775807, not -1)"},
      {R"({"callers": {"a": {"rpcs": ["Payout"],
          "limits": {"Payout": {"max_amount_minor": 10, "max_daily_amount_minor": 18446744073709551615}}}}})",
       R"(callers["a"].limits.Payout.max_daily_amount_minor: too large)"},
      {R"({"callers": {"a": {"rpcs": ["Payout"],
          "limits": {"Payout": {"max_amount_minor": 100}}}}})",
       R"(callers["a"].limits.Payout.max_daily_amount_minor: required)"},
      {R"({"callers": {"a": {"rpcs": ["Payout"],
          "limits": {"Payout": {"max_amount_minor": 101, "max_daily_amount_minor": 100}}}}})",
       R"(callers["a"].limits.Payout: max_amount_minor is above max_daily_amount_minor)"},
      {R"({"callers": {"a": {"rpcs": ["GetStatus"],
          "limits": {"GetStatus": {"max_amount_minor": 1, "max_daily_amount_minor": 1}}}}})",
       R"(callers["a"].limits.GetStatus: only money RPCs have amount limits)"},
      {R"({"callers": {"a": {"rpcs": ["GetStatus"], "max_concurrent_calls": 0}}})",
       R"(callers["a"].max_concurrent_calls: must be from 1 to 10000, not 0)"},
      {R"({"callers": {"": {"rpcs": []}}})", R"(callers[""]: a caller identity may not be empty)"},
  };
  for (const auto& [json, message] : cases) {
    absl::StatusOr<CallerPolicy> policy = ParseCallerPolicy(json);
    EXPECT_EQ(policy.status().code(), absl::StatusCode::kInvalidArgument) << json;
    EXPECT_EQ(policy.status().message(), std::string(message)) << json;
  }
}

TEST(CallerPolicyTest, TheDevPolicyAllowsEverythingToItsOneCaller) {
  const CallerPolicy dev = DevPolicy("dev");
  const CallerGrant* grant = dev.Find("dev");
  ASSERT_NE(grant, nullptr);
  for (Rpc rpc :
       {Rpc::kCreateRtp, Rpc::kRefund, Rpc::kPayout, Rpc::kGetStatus, Rpc::kStreamStatus}) {
    EXPECT_TRUE(Permit(grant, "dev", rpc).ok()) << RpcName(rpc);
  }
  EXPECT_TRUE(grant->read_all);
  EXPECT_TRUE(
      CheckTransactionLimit(*grant, "dev", Rpc::kPayout, std::numeric_limits<int64_t>::max()).ok());
  EXPECT_EQ(dev.Find("shop"), nullptr);
}

TEST(CallerPolicyTest, TheTokenFileHoldsHashesNamingTheirCaller) {
  const std::string sha = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
  absl::StatusOr<std::vector<TokenEntry>> tokens =
      ParseTokenFile(absl::StrCat("# rotated 2026-11-29\n\nshop sha256:", sha,
                                  "\n  finance   sha256:", std::string(64, 'A'), "  \n"));
  ASSERT_TRUE(tokens.ok()) << tokens.status();
  ASSERT_EQ(tokens->size(), 2u);
  EXPECT_EQ((*tokens)[0].caller, "shop");
  EXPECT_EQ((*tokens)[0].sha256[0], 0x9f);
  EXPECT_EQ((*tokens)[0].sha256[31], 0x08);
  EXPECT_EQ((*tokens)[1].caller, "finance");
  EXPECT_EQ((*tokens)[1].sha256[5], 0xaa);

  for (const auto& [text, message] :
       {std::pair{"shop test", "line 1: expected \"<caller> sha256:<hex of the token's SHA-256>\""},
        std::pair{"# ok\nshop sha256:abc", "line 2: the SHA-256 must be 64 hex digits"},
        std::pair{"shop plain:secret",
                  "line 1: expected \"<caller> sha256:<hex of the token's "
                  "SHA-256>\""}}) {
    EXPECT_EQ(ParseTokenFile(text).status().message(), message) << text;
  }
}

}  // namespace
}  // namespace flikpay::core
