// Storage owns its format: records written by earlier releases still read, a record written now is
// still readable by a replica one release behind (rolling upgrades), and every API value has a
// stored form.
#include "store/record_codec.h"

#include <string>

#include "absl/strings/escaping.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"

namespace flikpay::store {
namespace {

using google::protobuf::util::MessageDifferencer;

// Every field set, as a refund that settled after an anomaly.
flikpay::v1::Transaction AllFieldsSet() {
  flikpay::v1::Transaction t;
  t.set_merchant_transaction_id("refund-7");
  t.set_gateway_uuid("8c4b2e0a9f");
  t.set_purchase_id("20261128-8c4b2e0a9f");
  t.set_type(flikpay::v1::TRANSACTION_TYPE_REFUND);
  t.set_kind(flikpay::v1::RTP_KIND_OUT_OF_BAND);
  t.set_status(flikpay::v1::TRANSACTION_STATUS_SUCCESS);
  t.set_amount_minor(1234);
  t.set_currency("EUR");
  t.set_redirect_url("https://gateway.example/redirect/1");
  t.mutable_expires_at()->set_seconds(1'800'000'300);
  t.mutable_created_at()->set_seconds(1'800'000'000);
  t.mutable_updated_at()->set_seconds(1'800'000'042);
  t.mutable_updated_at()->set_nanos(5000);
  t.mutable_error()->set_code(2007);
  t.mutable_error()->set_message("Alias does not exist");
  t.mutable_error()->set_adapter_code("03");
  t.mutable_error()->set_adapter_message("unknown alias");
  t.mutable_error()->set_payer_message("Uporabnik ne obstaja");
  t.set_alias("003867****000");
  t.set_original_merchant_transaction_id("order-7");
  t.set_adapter_reference_id("PGTASIM7");
  t.set_version(4);
  flikpay::v1::StatusChange* change = t.add_history();
  change->mutable_at()->set_seconds(1'800'000'001);
  change->set_from(flikpay::v1::TRANSACTION_STATUS_UNKNOWN);
  change->set_to(flikpay::v1::TRANSACTION_STATUS_PENDING);
  change->set_source(flikpay::v1::EVENT_SOURCE_RPC);
  change = t.add_history();
  change->mutable_at()->set_seconds(1'800'000'042);
  change->set_from(flikpay::v1::TRANSACTION_STATUS_SUCCESS);
  change->set_to(flikpay::v1::TRANSACTION_STATUS_ERROR);
  change->set_source(flikpay::v1::EVENT_SOURCE_CALLBACK);
  change->set_note("contradicts the final status; ignored");
  t.set_description("SI00 2026-11");
  return t;
}

// AllFieldsSet() as flikpay wrote it into Redis before the stored form had a message of its own
// (flikpay.v1.Transaction bytes). Never regenerate this:
// it stands for data already in production.
constexpr char kWrittenByEarlierReleases[] =
    "0a08726566756e642d37120a386334623265306139661a133230323631313238"
    "2d3863346232653061396620022803300338d209420345555252226874747073"
    "3a2f2f676174657761792e6578616d706c652f72656469726563742f315a0608"
    "aca6a7da0662060880a4a7da066a0908aaa4a7da06108827724208d70f121441"
    "6c69617320646f6573206e6f742065786973741a023033220d756e6b6e6f776e"
    "20616c6961732a1455706f7261626e696b206e65206f627374616a617a0d3030"
    "333836372a2a2a2a3030308201076f726465722d378a01085047544153494d37"
    "9001049a010e0a060881a4a7da061001180220019a01350a0608aaa4a7da0610"
    "03180520022a25636f6e7472616469637473207468652066696e616c20737461"
    "7475733b2069676e6f726564a2010c5349303020323032362d3131";

TEST(RecordCodecTest, ARecordWrittenByEarlierReleasesStillReads) {
  const std::string bytes = absl::HexStringToBytes(kWrittenByEarlierReleases);
  absl::StatusOr<flikpay::v1::Transaction> read = DecodeRecord(bytes);
  ASSERT_TRUE(read.ok()) << read.status();
  std::string differences;
  MessageDifferencer differencer;
  differencer.ReportDifferencesToString(&differences);
  EXPECT_TRUE(differencer.Compare(AllFieldsSet(), *read)) << differences;
}

TEST(RecordCodecTest, ARecordWrittenNowReadsInEveryRelease) {
  const flikpay::v1::Transaction transaction = AllFieldsSet();
  const std::string bytes = EncodeRecord(transaction);
  // A replica still on the previous release reads the API message.
  flikpay::v1::Transaction as_before;
  ASSERT_TRUE(as_before.ParseFromString(bytes));
  EXPECT_TRUE(MessageDifferencer::Equals(transaction, as_before));
  absl::StatusOr<flikpay::v1::Transaction> read = DecodeRecord(bytes);
  ASSERT_TRUE(read.ok());
  EXPECT_TRUE(MessageDifferencer::Equals(transaction, *read));
}

TEST(RecordCodecTest, TheCreatorIsStoredAndReadBack) {
  flikpay::v1::Transaction transaction = AllFieldsSet();
  transaction.set_created_by("spiffe://cluster.local/ns/shop/sa/checkout");
  const std::string bytes = EncodeRecord(transaction);
  EXPECT_EQ(ToRecord(transaction).created_by(), "spiffe://cluster.local/ns/shop/sa/checkout");
  absl::StatusOr<flikpay::v1::Transaction> read = DecodeRecord(bytes);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_TRUE(MessageDifferencer::Equals(transaction, *read));
  // The same field number on both sides, so the API message reads it from the stored bytes too.
  flikpay::v1::Transaction as_api;
  ASSERT_TRUE(as_api.ParseFromString(bytes));
  EXPECT_EQ(as_api.created_by(), transaction.created_by());
}

TEST(RecordCodecTest, ARecordFromBeforeTheCreatorReadsWithoutOne) {
  absl::StatusOr<flikpay::v1::Transaction> read =
      DecodeRecord(absl::HexStringToBytes(kWrittenByEarlierReleases));
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->created_by(), "");
  EXPECT_EQ(ToRecord(*read).created_by(), "");
}

TEST(RecordCodecTest, TheRefundedAmountIsNotPartOfTheRecord) {
  flikpay::v1::Transaction transaction = AllFieldsSet();
  transaction.set_refunded_amount_minor(500);
  EXPECT_EQ(DecodeRecord(EncodeRecord(transaction))->refunded_amount_minor(), 0)
      << "it is kept beside the record, where refunds add to it";
}

void ExpectEveryValueStored(const google::protobuf::EnumDescriptor* api,
                            const google::protobuf::EnumDescriptor* stored) {
  for (int i = 0; i < api->value_count(); ++i) {
    EXPECT_NE(stored->FindValueByNumber(api->value(i)->number()), nullptr)
        << api->value(i)->full_name() << " has no stored form";
  }
}

TEST(RecordCodecTest, EveryApiValueHasAStoredForm) {
  ExpectEveryValueStored(flikpay::v1::TransactionStatus_descriptor(),
                         storage::v1::RecordStatus_descriptor());
  ExpectEveryValueStored(flikpay::v1::TransactionType_descriptor(),
                         storage::v1::RecordType_descriptor());
  ExpectEveryValueStored(flikpay::v1::RtpKind_descriptor(), storage::v1::RecordKind_descriptor());
  ExpectEveryValueStored(flikpay::v1::EventSource_descriptor(),
                         storage::v1::RecordSource_descriptor());
}

TEST(RecordCodecTest, UnreadableBytesAreDataLoss) {
  EXPECT_EQ(DecodeRecord("\xff\xff\xff").status().code(), absl::StatusCode::kDataLoss);
}

// A refund's status change, as the stream carries it.
flikpay::v1::StatusEvent AnEvent() {
  flikpay::v1::StatusEvent event;
  *event.mutable_transaction() = AllFieldsSet();
  event.set_previous_status(flikpay::v1::TRANSACTION_STATUS_PENDING);
  event.set_source(flikpay::v1::EVENT_SOURCE_CALLBACK);
  event.mutable_occurred_at()->set_seconds(1'800'000'042);
  return event;
}

// AnEvent() as flikpay wrote it into the stream before events had a stored form of their own
// (flikpay.v1.StatusEvent bytes, no cursor). Never regenerate this.
constexpr char kEventWrittenByEarlierReleases[] =
    "12bb020a08726566756e642d37120a386334623265306139661a133230323631"
    "3132382d3863346232653061396620022803300338d209420345555252226874"
    "7470733a2f2f676174657761792e6578616d706c652f72656469726563742f31"
    "5a0608aca6a7da0662060880a4a7da066a0908aaa4a7da06108827724208d70f"
    "1214416c69617320646f6573206e6f742065786973741a023033220d756e6b6e"
    "6f776e20616c6961732a1455706f7261626e696b206e65206f627374616a617a"
    "0d3030333836372a2a2a2a3030308201076f726465722d378a01085047544153"
    "494d379001049a010e0a060881a4a7da061001180220019a01350a0608aaa4a7"
    "da061003180520022a25636f6e7472616469637473207468652066696e616c20"
    "7374617475733b2069676e6f726564a2010c5349303020323032362d31311802"
    "20022a0608aaa4a7da06";

TEST(RecordCodecTest, AnEventWrittenByEarlierReleasesStillReads) {
  absl::StatusOr<flikpay::v1::StatusEvent> read =
      DecodeEvent(absl::HexStringToBytes(kEventWrittenByEarlierReleases), "1700000000000-3");
  ASSERT_TRUE(read.ok()) << read.status();
  flikpay::v1::StatusEvent expected = AnEvent();
  expected.set_cursor("1700000000000-3");
  std::string differences;
  MessageDifferencer differencer;
  differencer.ReportDifferencesToString(&differences);
  EXPECT_TRUE(differencer.Compare(expected, *read)) << differences;
}

TEST(RecordCodecTest, AnEventCarriesTheCreator) {
  flikpay::v1::StatusEvent event = AnEvent();
  event.mutable_transaction()->set_created_by("billing");
  absl::StatusOr<flikpay::v1::StatusEvent> read = DecodeEvent(EncodeEvent(event), "1-0");
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->transaction().created_by(), "billing");
}

TEST(RecordCodecTest, AnEventWrittenNowReadsInEveryRelease) {
  const std::string bytes = EncodeEvent(AnEvent());
  flikpay::v1::StatusEvent as_before;  // a replica one release behind
  ASSERT_TRUE(as_before.ParseFromString(bytes));
  EXPECT_TRUE(MessageDifferencer::Equals(AnEvent(), as_before));
  EXPECT_EQ(DecodeEvent("\xff\xff", "1-0").status().code(), absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace flikpay::store
