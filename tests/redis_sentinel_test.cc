// RedisStore through Sentinel, against real processes on loopback (redis-server x3, redis-sentinel
// x3, a cluster per test): it finds the primary, follows a failover after the primary is
// SIGKILLed without losing a WAIT-acknowledged record, and answers UNAVAILABLE when no replica
// acknowledges a claim in time.
#include <signal.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "store/redis_store.h"
#include "tests/support/test_sentinel.h"

namespace flikpay::store {
namespace {

class RedisSentinelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const absl::Time started = absl::Now();
    absl::StatusOr<std::unique_ptr<testing::TestSentinelCluster>> cluster =
        testing::TestSentinelCluster::Start(REDIS_SERVER_PATH, REDIS_SENTINEL_PATH);
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = *std::move(cluster);
    std::cerr << "cluster ready in " << absl::FormatDuration(absl::Now() - started) << "\n";
  }

  std::unique_ptr<RedisStore> NewStore(std::optional<int> min_replica_acks = std::nullopt) {
    RedisConfig config;
    config.url = cluster_->Url();
    config.key_prefix = "sentinel-test:";
    config.connect_timeout = absl::Milliseconds(200);
    config.command_timeout = absl::Seconds(1);
    config.min_replica_acks = min_replica_acks;
    config.replica_ack_timeout = absl::Milliseconds(500);
    return std::make_unique<RedisStore>(config);
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

  std::unique_ptr<testing::TestSentinelCluster> cluster_;
};

TEST_F(RedisSentinelTest, FindsThePrimaryThroughTheSentinels) {
  std::unique_ptr<RedisStore> store = NewStore();
  absl::StatusOr<BeginResult> begun = BeginDebit(*store, "found-1");
  ASSERT_TRUE(begun.ok()) << begun.status();
  EXPECT_TRUE(begun->created);
  absl::StatusOr<v1::Transaction> read = store->Get("found-1");
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->amount_minor(), 1234);
  // Written on the primary, and (WAIT 1 by default through Sentinel) on a replica already.
  const int primary = cluster_->servers()[0].port;
  EXPECT_EQ(cluster_->PrimaryPort(), primary);
  int replicas_with_it = 0;
  for (int i = 1; i < 3; ++i) {
    if (testing::AskRedis(cluster_->servers()[i].port, {"EXISTS", "sentinel-test:tx:found-1"}) ==
        "1") {
      ++replicas_with_it;
    }
  }
  EXPECT_GE(replicas_with_it, 1);
  EXPECT_TRUE(store->Ping().ok());
}

TEST_F(RedisSentinelTest, FollowsAFailoverWithoutLosingAnAcknowledgedRecord) {
  std::unique_ptr<RedisStore> store = NewStore(1);
  std::vector<std::string> acknowledged;
  for (int i = 0; i < 20; ++i) {
    const std::string id = absl::StrCat("before-", i);
    absl::StatusOr<BeginResult> begun = BeginDebit(*store, id);
    ASSERT_TRUE(begun.ok()) << begun.status();
    acknowledged.push_back(id);
  }
  const int old_primary = cluster_->servers()[0].port;
  cluster_->servers()[0].process->Kill();
  const absl::Time killed = absl::Now();

  // Writes fail until the sentinels have promoted a replica (and the other follows it); then they
  // go to the new primary.
  absl::Status last = absl::UnknownError("no write tried");
  int attempt = 0;
  while (absl::Now() - killed < absl::Seconds(15)) {
    absl::StatusOr<BeginResult> begun = BeginDebit(*store, absl::StrCat("after-", attempt++));
    last = begun.status();
    if (begun.ok()) break;
    EXPECT_EQ(begun.status().code(), absl::StatusCode::kUnavailable) << begun.status();
    absl::SleepFor(absl::Milliseconds(50));
  }
  ASSERT_TRUE(last.ok()) << last;
  const absl::Duration outage = absl::Now() - killed;
  std::cerr << "writes resumed " << absl::FormatDuration(outage) << " after the kill, " << attempt
            << " attempts\n";
  EXPECT_LT(outage, absl::Seconds(15));
  const int new_primary = cluster_->PrimaryPort();
  EXPECT_NE(new_primary, old_primary);
  EXPECT_NE(new_primary, 0);
  EXPECT_EQ(testing::AskRedis(new_primary,
                              {"EXISTS", absl::StrCat("sentinel-test:tx:after-", attempt - 1)}),
            "1");
  for (const std::string& id : acknowledged) {
    absl::StatusOr<v1::Transaction> read = store->Get(id);
    EXPECT_TRUE(read.ok()) << id << ": " << read.status();
  }
  // The event stream's blocking reader takes the same path to the new primary.
  absl::StatusOr<std::vector<v1::StatusEvent>> events =
      store->WaitForEvents("", 10, absl::Milliseconds(100));
  EXPECT_TRUE(events.ok()) << events.status();
}

TEST_F(RedisSentinelTest, AClaimNoReplicaAcknowledgesIsUnavailable) {
  std::unique_ptr<RedisStore> store = NewStore(1);
  ASSERT_TRUE(BeginDebit(*store, "while-well").ok());
  for (int i = 1; i < 3; ++i) kill(cluster_->servers()[i].process->pid(), SIGSTOP);
  const absl::Time started = absl::Now();
  absl::StatusOr<BeginResult> begun = BeginDebit(*store, "while-alone");
  const absl::Duration took = absl::Now() - started;
  for (int i = 1; i < 3; ++i) kill(cluster_->servers()[i].process->pid(), SIGCONT);
  EXPECT_EQ(begun.status().code(), absl::StatusCode::kUnavailable) << begun.status();
  EXPECT_NE(begun.status().message().find("not yet durable"), absl::string_view::npos)
      << begun.status();
  EXPECT_GE(took, absl::Milliseconds(450));
  EXPECT_LT(took, absl::Seconds(2));
  // The claim stays on the primary (UNKNOWN, for the reconciler to settle); a retry sees it.
  absl::StatusOr<v1::Transaction> stored = store->Get("while-alone");
  ASSERT_TRUE(stored.ok()) << stored.status();
  EXPECT_EQ(stored->status(), v1::TRANSACTION_STATUS_UNKNOWN);
}

}  // namespace
}  // namespace flikpay::store
