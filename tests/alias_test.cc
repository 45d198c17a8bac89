#include "gateway/alias.h"

#include "gtest/gtest.h"

namespace flikpay::gateway {
namespace {

struct AcceptedForm {
  const char* input;
  const char* normalized;
  AliasKind kind;
};

class AcceptedAliasTest : public ::testing::TestWithParam<AcceptedForm> {};

TEST_P(AcceptedAliasTest, NormalizesToTheFormFlikRegisters) {
  absl::StatusOr<Alias> alias = NormalizeAlias(GetParam().input);
  ASSERT_TRUE(alias.ok()) << alias.status();
  EXPECT_EQ(alias->value, GetParam().normalized);
  EXPECT_EQ(alias->kind, GetParam().kind);
}

INSTANTIATE_TEST_SUITE_P(
    SeedRules, AcceptedAliasTest,
    ::testing::Values(AcceptedForm{"0038641147148", "0038641147148", AliasKind::kPhone},
                      AcceptedForm{"+38641147148", "0038641147148", AliasKind::kPhone},
                      AcceptedForm{"38641147148", "0038641147148", AliasKind::kPhone},
                      AcceptedForm{"041147148", "0038641147148", AliasKind::kPhone},
                      AcceptedForm{"041 147 148", "0038641147148", AliasKind::kPhone},
                      AcceptedForm{"(041) 147-148", "0038641147148", AliasKind::kPhone},
                      AcceptedForm{"+386 (41) 147-148", "0038641147148", AliasKind::kPhone},
                      AcceptedForm{"00386 70 999 000", "0038670999000", AliasKind::kPhone},
                      AcceptedForm{"moj@mail.si", "moj@mail.si", AliasKind::kEmail},
                      AcceptedForm{"success.debit@bankart.flik", "success.debit@bankart.flik",
                                   AliasKind::kEmail},
                      AcceptedForm{"success.debit_success.refund@bankart.flik",
                                   "success.debit_success.refund@bankart.flik", AliasKind::kEmail},
                      AcceptedForm{"a-b_c.d@sub-domain.example.co", "a-b_c.d@sub-domain.example.co",
                                   AliasKind::kEmail},
                      AcceptedForm{"User@Example.COM", "User@Example.COM", AliasKind::kEmail}));

class RejectedAliasTest : public ::testing::TestWithParam<const char*> {};

TEST_P(RejectedAliasTest, IsRefusedWithoutEchoingTheAlias) {
  absl::StatusOr<Alias> alias = NormalizeAlias(GetParam());
  ASSERT_FALSE(alias.ok()) << "accepted: " << GetParam();
  EXPECT_EQ(alias.status().code(), absl::StatusCode::kInvalidArgument);
  if (std::string(GetParam()).size() > 3) {
    EXPECT_EQ(alias.status().message().find(GetParam()), absl::string_view::npos);
  }
}

INSTANTIATE_TEST_SUITE_P(
    SeedRules, RejectedAliasTest,
    ::testing::Values("",                    // empty
                      "003864114714",        // 00386 + 7 digits
                      "00386411471480",      // 00386 + 9 digits
                      "0038541147148",       // Croatian prefix
                      "+3864114714",         // +386 + 7 digits
                      "+385411471480",       // other country
                      "3864114714",          // 386 + 7 digits
                      "04114714",            // 0 + 7 digits
                      "0411471480",          // 0 + 9 digits
                      "41147148",            // no prefix at all
                      "x0038641147148",      // a valid number inside a longer string
                      "0038641147148x",      // trailing garbage (the seed's JS would accept it)
                      "+38641147148 ext 1",  // trailing words
                      "0038641147148\n",     // trailing newline
                      "041.147.148",         // dots are not dropped
                      "moj@mail",            // no top-level domain
                      "moj@mail.s",          // 1-letter TLD
                      "moj@mail.abcdef",     // 6-letter TLD
                      "moj@mail.si1",        // digit in TLD
                      "moj mail@mail.si",    // space
                      "@mail.si",            // empty local part
                      "moj@@mail.si",        // two @
                      "moj@mail.si ",        // trailing space
                      "mój@mail.si"));       // non-ASCII letter

TEST(MaskAlias, HidesMostOfTheAlias) {
  EXPECT_EQ(MaskAlias("0038670999000"), "00386*****000");
  EXPECT_EQ(MaskAlias("success.debit@bankart.flik"), "su***@bankart.flik");
  EXPECT_EQ(MaskAlias("a@b.si"), "***@b.si");
  EXPECT_EQ(MaskAlias(""), "");
  EXPECT_EQ(MaskAlias("short"), "*****");
}

}  // namespace
}  // namespace flikpay::gateway
