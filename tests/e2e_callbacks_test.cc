// Callbacks that cannot lie, end to end over real HTTP: a validly signed callback that is not about
// its transaction as flikpay knows it changes nothing and is counted, and a replayed one is
// acknowledged without effect.
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/support/e2e_fixture.h"

namespace flikpay {
namespace {

class CallbacksTest : public testing::E2eTest {
 protected:
  // An Out-of-Band debit whose callbacks the stand-in holds back: PENDING until a test settles it.
  v1::Transaction PendingDebit() {
    v1::CreateRtpRequest request = Rtp("0038670999000", v1::RTP_KIND_OUT_OF_BAND, 4200);
    AddCallbackFault(testing::Json{{"kind", "drop"},
                                   {"merchant_transaction_id", request.merchant_transaction_id()}});
    v1::Transaction created;
    EXPECT_TRUE(Create(A(), request, &created).ok());
    EXPECT_EQ(created.status(), v1::TRANSACTION_STATUS_PENDING);
    return created;
  }

  // The callback Bankart would send for `debit`, then changed by the test.
  static testing::Json CallbackBody(const v1::Transaction& debit) {
    return {{"result", "OK"},
            {"uuid", debit.gateway_uuid()},
            {"merchantTransactionId", debit.merchant_transaction_id()},
            {"purchaseId", debit.purchase_id()},
            {"transactionType", "DEBIT"},
            {"paymentMethod", "FlikPayments"},
            {"amount", "42.00"},
            {"currency", "EUR"}};
  }
};

TEST_F(CallbacksTest, ASignedCallbackThatIsNotAboutItsTransactionChangesNothing) {
  const v1::Transaction debit = PendingDebit();
  const int64_t mismatched_before =
      Metric(*replicas_[0], "flikpay_callbacks_total{result=\"mismatch\"}");
  struct Lie {
    const char* what;
    std::string secret;
    std::string connector;
    testing::Json body;
  };
  testing::Json wrong_amount = CallbackBody(debit), wrong_type = CallbackBody(debit),
                wrong_currency = CallbackBody(debit), wrong_uuid = CallbackBody(debit);
  wrong_amount["amount"] = "0.01";
  wrong_type["transactionType"] = "PAYOUT";
  wrong_currency["currency"] = "USD";
  wrong_uuid["uuid"] = "0123456789abcdef0123";
  const Lie lies[] = {
      // One leaked connector secret must not settle another connector's transactions.
      {"wrong connector", "sim-payout-secret", "payout", CallbackBody(debit)},
      {"wrong amount", "sim-out-of-band-secret", "out_of_band", wrong_amount},
      {"wrong type", "sim-out-of-band-secret", "out_of_band", wrong_type},
      {"wrong currency", "sim-out-of-band-secret", "out_of_band", wrong_currency},
      {"wrong uuid", "sim-out-of-band-secret", "out_of_band", wrong_uuid},
  };
  for (const Lie& lie : lies) {
    EXPECT_EQ(PostCallback(replicas_[0]->callback_port, lie.body.dump(), lie.secret,
                           absl::StrCat("connector=", lie.connector)),
              400)
        << lie.what;
  }
  v1::Transaction stored;
  ASSERT_TRUE(Get(B(), debit.merchant_transaction_id(), &stored).ok());
  EXPECT_EQ(stored.status(), v1::TRANSACTION_STATUS_PENDING);
  EXPECT_EQ(stored.gateway_uuid(), debit.gateway_uuid());
  EXPECT_EQ(Metric(*replicas_[0], "flikpay_callbacks_total{result=\"mismatch\"}"),
            mismatched_before + 5);
  // The listener's own counts are exported too (-1: missing).
  EXPECT_GE(Metric(*replicas_[0], "flikpay_callback_connections_open"), 0);
  EXPECT_EQ(Metric(*replicas_[0], "flikpay_callback_connections_refused_total"), 0);
  int refused_notes = 0;
  for (const v1::StatusChange& change : stored.history()) {
    refused_notes += absl::StartsWith(change.note(), "refused: ");
  }
  EXPECT_EQ(refused_notes, 5);

  // The true callback still settles it.
  EXPECT_EQ(PostCallback(replicas_[1]->callback_port, CallbackBody(debit).dump(),
                         "sim-out-of-band-secret", "connector=out_of_band"),
            200);
  ASSERT_TRUE(Get(A(), debit.merchant_transaction_id(), &stored).ok());
  EXPECT_EQ(stored.status(), v1::TRANSACTION_STATUS_SUCCESS);
}

TEST_F(CallbacksTest, TwoHundredReplaysOfASignedCallbackAddNothing) {
  const v1::Transaction debit = PendingDebit();
  const std::string body = CallbackBody(debit).dump();
  const absl::Time date = absl::Now();
  ASSERT_EQ(PostCallback(replicas_[0]->callback_port, body, "sim-out-of-band-secret",
                         "connector=out_of_band", date),
            200);
  v1::Transaction settled;
  ASSERT_TRUE(Get(A(), debit.merchant_transaction_id(), &settled).ok());
  ASSERT_EQ(settled.status(), v1::TRANSACTION_STATUS_SUCCESS);
  // The same bytes again, to both replicas; then a contradicting callback, replayed too.
  const int64_t replayed_before =
      Metric(*replicas_[0], "flikpay_callbacks_total{result=\"replay\"}") +
      Metric(*replicas_[1], "flikpay_callbacks_total{result=\"replay\"}");
  testing::Json contradiction = CallbackBody(debit);
  contradiction["result"] = "ERROR";
  for (int i = 0; i < 200; ++i) {
    ASSERT_EQ(PostCallback(replicas_[i % 2]->callback_port, body, "sim-out-of-band-secret",
                           "connector=out_of_band", date),
              200);
  }
  for (int i = 0; i < 2; ++i) {
    ASSERT_EQ(PostCallback(replicas_[i]->callback_port, contradiction.dump(),
                           "sim-out-of-band-secret", "connector=out_of_band", date),
              200);
  }
  v1::Transaction after;
  ASSERT_TRUE(Get(B(), debit.merchant_transaction_id(), &after).ok());
  EXPECT_EQ(after.status(), v1::TRANSACTION_STATUS_SUCCESS);
  EXPECT_EQ(after.version(), settled.version() + 1) << "one anomaly entry, not three";
  EXPECT_EQ(after.history_size(), settled.history_size() + 1);
  EXPECT_EQ(Metric(*replicas_[0], "flikpay_callbacks_total{result=\"replay\"}") +
                Metric(*replicas_[1], "flikpay_callbacks_total{result=\"replay\"}"),
            replayed_before + 201);
}

}  // namespace
}  // namespace flikpay
