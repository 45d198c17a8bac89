// RedisStore against a redis-server that wants a password (requirepass, for the default user) and
// has ACL users: the URL's credentials open it, and wrong or missing ones are UNAVAILABLE without
// the password in the message.
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "store/redis_store.h"
#include "tests/support/test_redis.h"

namespace flikpay::store {
namespace {

constexpr char kDefaultPassword[] = "default-pass-4711";
constexpr char kWrongPassword[] = "wrong-pass-0815";

class RedisStoreAuthTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    absl::StatusOr<testing::TestRedis> redis = testing::StartTestRedis(
        REDIS_SERVER_PATH, {"--requirepass", kDefaultPassword,
                            // ACL users, one with a password that needs escaping in a URL.
                            "--user", "alice", "on", ">s3cret", "~*", "&*", "+@all",  //
                            "--user", "bob", "on", ">p@ss:w/rd", "~*", "&*", "+@all"});
    ASSERT_TRUE(redis.ok()) << redis.status();
    redis_ = new testing::TestRedis(*std::move(redis));
  }
  static void TearDownTestSuite() {
    delete redis_;
    redis_ = nullptr;
  }
  void SetUp() override { ASSERT_NE(redis_, nullptr); }

  // `credentials` as written before the host, '@' included.
  static std::unique_ptr<RedisStore> StoreWith(const std::string& credentials, int database = 0) {
    RedisConfig config;
    config.url = absl::StrCat("redis://", credentials, "127.0.0.1:", redis_->port, "/", database);
    config.key_prefix = "auth-test:";
    config.command_timeout = absl::Seconds(5);
    return std::make_unique<RedisStore>(config);
  }

  static std::string TestId() {
    return ::testing::UnitTest::GetInstance()->current_test_info()->name();
  }

  static v1::Transaction Debit(const std::string& id) {
    v1::Transaction debit;
    debit.set_merchant_transaction_id(id);
    debit.set_type(v1::TRANSACTION_TYPE_DEBIT);
    debit.set_status(v1::TRANSACTION_STATUS_UNKNOWN);
    debit.set_amount_minor(1234);
    debit.set_currency("EUR");
    debit.set_created_by("checkout");
    return debit;
  }

  static absl::StatusOr<BeginResult> BeginDebit(RedisStore& store, const std::string& id) {
    return store.Begin(Debit(id), "fingerprint", absl::Now() + absl::Seconds(10),
                       absl::Now() + absl::Minutes(1));
  }

  static void ExpectRoundTrip(RedisStore& store, const std::string& id) {
    absl::StatusOr<BeginResult> begun = BeginDebit(store, id);
    ASSERT_TRUE(begun.ok()) << begun.status();
    EXPECT_TRUE(begun->created);
    absl::StatusOr<v1::Transaction> read = store.Get(id);
    ASSERT_TRUE(read.ok()) << read.status();
    EXPECT_EQ(read->amount_minor(), 1234);
    EXPECT_EQ(read->created_by(), "checkout");
  }

  // UNAVAILABLE, saying what went wrong, and quoting no password.
  static void ExpectRefused(const absl::Status& status, const std::string& says) {
    EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
    EXPECT_NE(status.message().find(says), absl::string_view::npos) << status;
    for (const char* password : {kDefaultPassword, kWrongPassword, "s3cret", "p@ss:w/rd"}) {
      EXPECT_EQ(status.message().find(password), absl::string_view::npos) << status;
    }
  }

  static inline testing::TestRedis* redis_ = nullptr;
};

TEST_F(RedisStoreAuthTest, ThePasswordAloneOpensTheDefaultUser) {
  std::unique_ptr<RedisStore> store = StoreWith(absl::StrCat(":", kDefaultPassword, "@"));
  EXPECT_TRUE(store->Ping().ok());
  ExpectRoundTrip(*store, TestId());
}

TEST_F(RedisStoreAuthTest, AnAclUserWithItsPassword) {
  std::unique_ptr<RedisStore> store = StoreWith("alice:s3cret@");
  ExpectRoundTrip(*store, TestId());
}

TEST_F(RedisStoreAuthTest, APercentEncodedPassword) {
  std::unique_ptr<RedisStore> store = StoreWith("bob:p%40ss%3Aw%2Frd@");
  ExpectRoundTrip(*store, TestId());
}

TEST_F(RedisStoreAuthTest, AWrongPasswordIsUnavailableWithoutThePassword) {
  for (const std::string& credentials :
       {absl::StrCat(":", kWrongPassword, "@"), absl::StrCat("alice:", kWrongPassword, "@"),
        absl::StrCat("carol:", kWrongPassword, "@"),
        std::string("alice:") + kDefaultPassword + "@"}) {
    SCOPED_TRACE(credentials);
    std::unique_ptr<RedisStore> store = StoreWith(credentials);
    ExpectRefused(store->Ping(), "authentication failed");
    ExpectRefused(BeginDebit(*store, TestId()).status(), "authentication failed");
    ExpectRefused(store->Get(TestId()).status(), "authentication failed");
  }
}

TEST_F(RedisStoreAuthTest, NoPasswordIsUnavailable) {
  std::unique_ptr<RedisStore> store = StoreWith("");
  ExpectRefused(store->Ping(), "authentication required");
  ExpectRefused(BeginDebit(*store, TestId()).status(), "authentication required");
  ExpectRefused(store->ReadEvents("", 10).status(), "authentication required");
  ExpectRefused(store->ReserveSpend("caller", "CreateRtp", 1, 10, absl::Minutes(1)).status(),
                "authentication required");
  // Nothing was written by the refused calls.
  std::unique_ptr<RedisStore> authenticated = StoreWith("alice:s3cret@");
  EXPECT_EQ(authenticated->Get(TestId()).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(RedisStoreAuthTest, TheBlockingEventReaderAuthenticatesToo) {
  std::unique_ptr<RedisStore> store = StoreWith("alice:s3cret@");
  absl::StatusOr<std::string> latest = store->LatestCursor();
  ASSERT_TRUE(latest.ok()) << latest.status();
  absl::StatusOr<std::vector<v1::StatusEvent>> events =
      store->WaitForEvents(*latest, 10, absl::Milliseconds(50));
  ASSERT_TRUE(events.ok()) << events.status();
  EXPECT_TRUE(events->empty());

  ExpectRefused(StoreWith(absl::StrCat("alice:", kWrongPassword, "@"))
                    ->WaitForEvents(*latest, 10, absl::Milliseconds(50))
                    .status(),
                "authentication failed");
  ExpectRefused(StoreWith("")->WaitForEvents(*latest, 10, absl::Milliseconds(50)).status(),
                "authentication required");
}

TEST_F(RedisStoreAuthTest, TheDatabaseIsSelectedAfterAuthenticating) {
  std::unique_ptr<RedisStore> on_five = StoreWith("alice:s3cret@", 5);
  ExpectRoundTrip(*on_five, TestId());
  EXPECT_EQ(StoreWith("alice:s3cret@", 0)->Get(TestId()).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_TRUE(StoreWith(absl::StrCat(":", kDefaultPassword, "@"), 5)->Get(TestId()).ok());
}

}  // namespace
}  // namespace flikpay::store
