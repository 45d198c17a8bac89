// RedisStore through Sentinel, against real processes on loopback (redis-server x3, redis-sentinel
// x3, a cluster per test): it finds the primary, follows a failover after the primary is
// SIGKILLed without losing a WAIT-acknowledged record, and answers UNAVAILABLE when no replica
// acknowledges a claim in time; a cursor whose event the failover lost is refused, not resumed.
#include <signal.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/cursor.h"
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

  void TearDown() override {
    if (HasFailure() && cluster_ != nullptr) cluster_->DumpLogTails(std::cerr);
  }

  std::unique_ptr<RedisStore> NewStore(
      std::optional<int> min_replica_acks = std::nullopt,
      absl::Duration replica_ack_timeout = absl::Milliseconds(500)) {
    RedisConfig config;
    config.url = cluster_->Url();
    config.key_prefix = "sentinel-test:";
    config.connect_timeout = absl::Milliseconds(200);
    config.command_timeout = absl::Seconds(1);
    config.min_replica_acks = min_replica_acks;
    config.replica_ack_timeout = replica_ack_timeout;
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

  // The primary a majority of the sentinels names, once it is not `old` (up to 30 s: the store
  // may hear of the switch from one sentinel before the others agree; see test_sentinel.h).
  int PrimaryPortOtherThan(int old) {
    int port = cluster_->PrimaryPort();
    const absl::Time asked = absl::Now();
    while ((port == old || port == 0) && absl::Now() - asked < absl::Seconds(30)) {
      absl::SleepFor(absl::Milliseconds(50));
      port = cluster_->PrimaryPort();
    }
    return port;
  }

  // The claimed debit `id` reported PENDING by the gateway's answer: one event on the stream.
  static absl::StatusOr<std::string> PendingEvent(RedisStore& store, const std::string& id) {
    absl::StatusOr<BeginResult> begun = BeginDebit(store, id);
    if (!begun.ok()) return begun.status();
    Report report;
    report.status = v1::TRANSACTION_STATUS_PENDING;
    report.source = v1::EVENT_SOURCE_RPC;
    report.ends_flight = true;
    absl::StatusOr<ApplyResult> applied = store.Apply(id, report);
    if (!applied.ok()) return applied.status();
    if (applied->event_cursor.empty()) return absl::InternalError("no event written");
    return applied->event_cursor;
  }

  // Waits until every replica holds `entries` events.
  bool ReplicasHold(int entries) {
    const absl::Time deadline = absl::Now() + absl::Seconds(5);
    while (absl::Now() < deadline) {
      int holding = 0;
      for (int i = 1; i < 3; ++i) {
        if (testing::AskRedis(cluster_->servers()[i].port, {"XLEN", "sentinel-test:events"}) ==
            std::to_string(entries)) {
          ++holding;
        }
      }
      if (holding == 2) return true;
      absl::SleepFor(absl::Milliseconds(20));
    }
    return false;
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
  // The ack timeout generous: these writes must be acknowledged (the cluster has settled, but a
  // replica's fsync on two shared cores can still take a moment); the test is about what follows.
  std::unique_ptr<RedisStore> store = NewStore(1, absl::Seconds(5));
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
  while (absl::Now() - killed < absl::Seconds(30)) {
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
  EXPECT_LT(outage, absl::Seconds(30));
  const int new_primary = PrimaryPortOtherThan(old_primary);
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

// The tail of the event stream a failover loses: an event the primary wrote (and this process
// read) but no replica received before the primary was SIGKILLed. Its cursor must not resume
// (OUT_OF_RANGE, not a silent gap), an earlier kept one still does, and the new primary never
// hands the lost id out again for another event, whatever its clock says.
TEST_F(RedisSentinelTest, ACursorLostInAFailoverIsOutOfRangeAndNeverReused) {
  std::unique_ptr<RedisStore> store = NewStore(0);  // no WAIT: the lost write is acknowledged
  absl::StatusOr<std::string> kept = PendingEvent(*store, "kept");
  ASSERT_TRUE(kept.ok()) << kept.status();
  ASSERT_TRUE(ReplicasHold(1));

  // Cut the replicas off: stopped, so they cannot reconnect, and their links closed by the primary,
  // so nothing more reaches them.
  const int old_primary = cluster_->servers()[0].port;
  for (int i = 1; i < 3; ++i) kill(cluster_->servers()[i].process->pid(), SIGSTOP);
  ASSERT_TRUE(testing::AskRedis(old_primary, {"CLIENT", "KILL", "TYPE", "replica"}).has_value());
  absl::StatusOr<std::string> lost = PendingEvent(*store, "lost");
  ASSERT_TRUE(lost.ok()) << lost.status();
  absl::StatusOr<std::vector<v1::StatusEvent>> read = store->ReadEvents(*kept, 10);
  ASSERT_TRUE(read.ok()) << read.status();
  ASSERT_EQ(read->size(), 1u);
  EXPECT_EQ(read->front().cursor(), *lost);
  cluster_->servers()[0].process->Kill();
  const absl::Time killed = absl::Now();
  for (int i = 1; i < 3; ++i) kill(cluster_->servers()[i].process->pid(), SIGCONT);

  absl::Status last = absl::UnknownError("no write tried");
  int attempt = 0;
  while (absl::Now() - killed < absl::Seconds(30)) {
    last = BeginDebit(*store, absl::StrCat("after-", attempt++)).status();
    if (last.ok()) break;
    absl::SleepFor(absl::Milliseconds(50));
  }
  ASSERT_TRUE(last.ok()) << last;
  std::cerr << "writes resumed " << absl::FormatDuration(absl::Now() - killed)
            << " after the kill\n";
  const int new_primary = PrimaryPortOtherThan(old_primary);
  ASSERT_NE(new_primary, old_primary);
  // The scenario really lost the event.
  ASSERT_EQ(testing::AskRedis(new_primary, {"XLEN", "sentinel-test:events"}), "1");

  absl::StatusOr<bool> resumable = store->CanResumeFrom(*lost);
  ASSERT_TRUE(resumable.ok()) << resumable.status();
  EXPECT_FALSE(*resumable) << "a cursor the new primary never had";
  resumable = store->CanResumeFrom(*kept);
  ASSERT_TRUE(resumable.ok()) << resumable.status();
  EXPECT_TRUE(*resumable) << "a cursor the new primary has";
  // So does a process that never saw the lost event (another flikpay replica).
  std::unique_ptr<RedisStore> other = NewStore(0);
  resumable = other->CanResumeFrom(*lost);
  ASSERT_TRUE(resumable.ok()) << resumable.status();
  EXPECT_FALSE(*resumable);

  // The new primary hands the lost id out no more: not even to an XADD with an explicit id, as a
  // new primary whose clock is behind the old one's would have chosen (the floor was raised when
  // this process first connected to it), and not to the next event.
  const std::optional<core::Cursor> lost_id = core::ParseCursor(*lost);
  ASSERT_TRUE(lost_id.has_value());
  EXPECT_FALSE(
      testing::AskRedis(new_primary,
                        {"XADD", "sentinel-test:events",
                         absl::StrCat(lost_id->milliseconds, "-", lost_id->sequence), "e", "x"})
          .has_value())
      << "the lost id could be handed out again";
  absl::StatusOr<std::string> next = PendingEvent(*store, "next");
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_TRUE(core::CursorBefore(*lost, *next)) << *lost << " then " << *next;
}

// A failover the old primary survives (SENTINEL FAILOVER: it is turned into a replica, its pooled
// connections still open): the store hears +switch-master and moves on, so the first write after
// the switch goes to the new primary instead of failing on the old one (READONLY).
TEST_F(RedisSentinelTest, ASwitchAnnouncedBySentinelIsFollowedBeforeAnyCommandFails) {
  std::unique_ptr<RedisStore> store = NewStore(1);
  for (int i = 0; i < 4; ++i) {  // several pooled connections to the first primary
    ASSERT_TRUE(BeginDebit(*store, absl::StrCat("before-", i)).ok());
  }
  const int old_primary = cluster_->servers()[0].port;
  ASSERT_TRUE(testing::AskRedis(cluster_->sentinel_ports()[0],
                                {"SENTINEL", "FAILOVER", testing::TestSentinelCluster::kMasterName})
                  .has_value());
  const absl::Time asked = absl::Now();
  // Done when the old primary itself says it is a replica, following the new one: ~9-12 s, since a
  // sentinel converts a primary that survived only after 8 s of its stale role (test_sentinel.h).
  while (absl::Now() - asked < absl::Seconds(30)) {
    const std::optional<std::string> role = testing::AskRedis(old_primary, {"ROLE"});
    if (role.has_value() && absl::StartsWith(*role, "slave")) break;
    absl::SleepFor(absl::Milliseconds(50));
  }
  const absl::Duration switched = absl::Now() - asked;
  ASSERT_LT(switched, absl::Seconds(30));
  absl::SleepFor(absl::Milliseconds(300));  // the announcement's way to the store
  std::cerr << "switched " << absl::FormatDuration(switched) << " after SENTINEL FAILOVER\n";
  absl::StatusOr<BeginResult> first = BeginDebit(*store, "first-after-switch");
  EXPECT_TRUE(first.ok()) << first.status();
  EXPECT_NE(PrimaryPortOtherThan(old_primary), old_primary);
}

}  // namespace
}  // namespace flikpay::store
