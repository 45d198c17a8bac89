// The record cache GetStatus reads from: what it keeps (final records only, bounded, fresh), the
// tickets that keep a read from before a change out of it, and, with the event hub over the
// in-memory store, the changes it hears of through the stream (events, a refund's debit, change
// notices) and its drop when the hub cannot read.
#include "server/record_cache.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "server/event_hub.h"
#include "server/metrics.h"
#include "tests/support/in_memory_store.h"

namespace flikpay::server {
namespace {

google::protobuf::Timestamp Stamp(absl::Time time) {
  google::protobuf::Timestamp stamp;
  stamp.set_seconds(absl::ToUnixSeconds(time));
  return stamp;
}

v1::Transaction Record(const std::string& id, v1::TransactionStatus status,
                       absl::Time updated = absl::Now()) {
  v1::Transaction record;
  record.set_merchant_transaction_id(id);
  record.set_type(v1::TRANSACTION_TYPE_DEBIT);
  record.set_status(status);
  record.set_amount_minor(1000);
  *record.mutable_updated_at() = Stamp(updated);
  return record;
}

constexpr uint64_t kGeneration = 7;

class RecordCacheTest : public ::testing::Test {
 protected:
  void SetUp() override { cache_.Follow(kGeneration); }
  bool FillNow(const v1::Transaction& record) {
    return cache_.Fill(record, cache_.Ticket(kGeneration), absl::Now());
  }
  bool Cached(const std::string& id) {
    return cache_.Lookup(id, kGeneration, absl::Now()) != nullptr;
  }

  RecordCache cache_{3, absl::Hours(720)};
};

TEST_F(RecordCacheTest, KeepsFinalRecordsOnly) {
  EXPECT_TRUE(FillNow(Record("paid", v1::TRANSACTION_STATUS_SUCCESS)));
  EXPECT_TRUE(FillNow(Record("declined", v1::TRANSACTION_STATUS_CANCELLED)));
  EXPECT_FALSE(FillNow(Record("open", v1::TRANSACTION_STATUS_PENDING)));
  EXPECT_FALSE(FillNow(Record("unknown", v1::TRANSACTION_STATUS_UNKNOWN)));
  std::shared_ptr<const v1::Transaction> paid = cache_.Lookup("paid", kGeneration, absl::Now());
  ASSERT_NE(paid, nullptr);
  EXPECT_EQ(paid->status(), v1::TRANSACTION_STATUS_SUCCESS);
  EXPECT_FALSE(Cached("open"));
  EXPECT_EQ(cache_.size(), 2u);
}

TEST_F(RecordCacheTest, AnInvalidatedRecordIsGone) {
  ASSERT_TRUE(FillNow(Record("paid", v1::TRANSACTION_STATUS_SUCCESS)));
  cache_.Invalidate("paid");
  EXPECT_FALSE(Cached("paid"));
}

TEST_F(RecordCacheTest, AReadFromBeforeAChangeIsNeverFilledAfterIt) {
  // GetStatus takes its ticket, reads the old record; the hub hears of the change before the fill.
  const uint64_t ticket = cache_.Ticket(kGeneration);
  const v1::Transaction read_before = Record("paid", v1::TRANSACTION_STATUS_SUCCESS);
  cache_.Invalidate("paid");
  EXPECT_FALSE(cache_.Fill(read_before, ticket, absl::Now()));
  EXPECT_FALSE(Cached("paid"));
  // Another id invalidated meanwhile does not stop a fill.
  const uint64_t other = cache_.Ticket(kGeneration);
  cache_.Invalidate("something-else");
  EXPECT_TRUE(cache_.Fill(Record("paid", v1::TRANSACTION_STATUS_SUCCESS), other, absl::Now()));
  // A ticket older than the invalidations the cache remembers is refused.
  const uint64_t old = cache_.Ticket(kGeneration);
  for (size_t i = 0; i <= RecordCache::kRecentInvalidations; ++i) {
    cache_.Invalidate(absl::StrCat("busy-", i));
  }
  EXPECT_FALSE(cache_.Fill(Record("late", v1::TRANSACTION_STATUS_SUCCESS), old, absl::Now()));
  EXPECT_TRUE(FillNow(Record("late", v1::TRANSACTION_STATUS_SUCCESS)));
}

TEST_F(RecordCacheTest, NothingIsServedOrFilledWhileTheHubDoesNotFollow) {
  ASSERT_TRUE(FillNow(Record("paid", v1::TRANSACTION_STATUS_SUCCESS)));
  const uint64_t before_drop = cache_.Ticket(kGeneration);
  cache_.Drop();
  EXPECT_FALSE(cache_.following());
  EXPECT_EQ(cache_.size(), 0u);
  EXPECT_FALSE(Cached("paid"));
  EXPECT_EQ(cache_.Ticket(kGeneration), 0u);
  EXPECT_FALSE(FillNow(Record("paid", v1::TRANSACTION_STATUS_SUCCESS)));
  cache_.Follow(kGeneration);
  // A read that began before the drop stays out, even after the hub follows again.
  EXPECT_FALSE(
      cache_.Fill(Record("paid", v1::TRANSACTION_STATUS_SUCCESS), before_drop, absl::Now()));
  EXPECT_TRUE(FillNow(Record("paid", v1::TRANSACTION_STATUS_SUCCESS)));
  // Another primary's generation: a miss, and no ticket, before the hub has noticed the move.
  EXPECT_EQ(cache_.Lookup("paid", kGeneration + 1, absl::Now()), nullptr);
  EXPECT_EQ(cache_.Ticket(kGeneration + 1), 0u);
}

TEST_F(RecordCacheTest, BoundedLeastRecentlyUsedOutFirst) {
  for (const std::string id : {"a", "b", "c"}) {
    ASSERT_TRUE(FillNow(Record(id, v1::TRANSACTION_STATUS_SUCCESS)));
  }
  ASSERT_TRUE(Cached("a"));  // now the most recently used
  ASSERT_TRUE(FillNow(Record("d", v1::TRANSACTION_STATUS_SUCCESS)));
  EXPECT_EQ(cache_.size(), 3u);
  EXPECT_FALSE(Cached("b")) << "the least recently used goes first";
  EXPECT_TRUE(Cached("a"));
  EXPECT_TRUE(Cached("c"));
  EXPECT_TRUE(Cached("d"));
}

TEST_F(RecordCacheTest, ARecordIsKeptNoLongerThanItsKeyMayLive) {
  RecordCache cache(10, absl::Hours(1));
  cache.Follow(kGeneration);
  const absl::Time now = absl::Now();
  // Written 58 minutes ago: its key may expire in 2 minutes, within the clock margin.
  EXPECT_FALSE(cache.Fill(Record("old", v1::TRANSACTION_STATUS_SUCCESS, now - absl::Minutes(58)),
                          cache.Ticket(kGeneration), now));
  ASSERT_TRUE(cache.Fill(Record("recent", v1::TRANSACTION_STATUS_SUCCESS, now),
                         cache.Ticket(kGeneration), now));
  EXPECT_NE(cache.Lookup("recent", kGeneration, now + absl::Minutes(50)), nullptr);
  EXPECT_EQ(cache.Lookup("recent", kGeneration, now + absl::Minutes(56)), nullptr);
}

// A bound on staleness should a change ever miss the stream: a record is served for max_age after
// it was read, then read again.
TEST_F(RecordCacheTest, ARecordIsServedNoLongerThanMaxAgeAfterItWasRead) {
  RecordCache cache(10, absl::Hours(720), absl::Minutes(10));
  cache.Follow(kGeneration);
  const absl::Time now = absl::Now();
  ASSERT_TRUE(cache.Fill(Record("settled", v1::TRANSACTION_STATUS_SUCCESS, now - absl::Hours(2)),
                         cache.Ticket(kGeneration), now));
  EXPECT_NE(cache.Lookup("settled", kGeneration, now + absl::Minutes(9)), nullptr);
  EXPECT_EQ(cache.Lookup("settled", kGeneration, now + absl::Minutes(10)), nullptr);
  ASSERT_TRUE(cache.Fill(Record("settled", v1::TRANSACTION_STATUS_SUCCESS, now - absl::Hours(2)),
                         cache.Ticket(kGeneration), now + absl::Minutes(10)))
      << "read again, cached again";
  EXPECT_NE(cache.Lookup("settled", kGeneration, now + absl::Minutes(19)), nullptr);
}

// The cache behind a running event hub: every change of a cached record reaches it through the
// stream.
class CoherenceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    hub_.Start();
    ASSERT_TRUE(Await([&] { return cache_.following(); })) << "the hub never read the stream";
  }
  void TearDown() override { hub_.Shutdown(); }

  template <typename Condition>
  static bool Await(Condition done) {
    const absl::Time deadline = absl::Now() + absl::Seconds(5);
    while (absl::Now() < deadline) {
      if (done()) return true;
      absl::SleepFor(absl::Milliseconds(2));
    }
    return done();
  }
  // Stores `id` as a debit and reports `status` for it.
  void Settle(const std::string& id, v1::TransactionStatus status) {
    v1::Transaction debit = Record(id, v1::TRANSACTION_STATUS_UNKNOWN);
    debit.clear_updated_at();
    debit.set_currency("EUR");
    ASSERT_TRUE(store_.Begin(debit, "fp", absl::Now() + absl::Seconds(10), absl::Now()).ok());
    Report(id, status, "");
  }
  void Report(const std::string& id, v1::TransactionStatus status, const std::string& refused) {
    store::Report report;
    report.status = status;
    report.source = v1::EVENT_SOURCE_CALLBACK;
    report.ends_flight = true;
    report.refused_because = refused;
    ASSERT_TRUE(store_.Apply(id, report).ok());
  }
  // Reads `id` until the cache holds it: a fill whose ticket predates the hub's reading of the
  // id's own last event is refused (it could be older than that event), so the first read may not
  // fill on a slow box.
  bool CachedAfterReads(const std::string& id) {
    return Await([&] {
      Read(id);
      return cache_.Lookup(id, 0, absl::Now()) != nullptr;
    });
  }
  // A refund of `amount` cents of `debit`, successful: one event, naming the debit.
  void SuccessfulRefund(const std::string& id, const std::string& debit, int64_t amount) {
    v1::Transaction refund = Record(id, v1::TRANSACTION_STATUS_UNKNOWN);
    refund.clear_updated_at();
    refund.set_type(v1::TRANSACTION_TYPE_REFUND);
    refund.set_amount_minor(amount);
    refund.set_original_merchant_transaction_id(debit);
    ASSERT_TRUE(store_
                    .BeginRefund(refund, "fp", absl::Now() + absl::Seconds(10), absl::Now(),
                                 store::RefundCap::kEnforce)
                    .ok());
    Report(id, v1::TRANSACTION_STATUS_SUCCESS, "");
  }
  // Reads `id` the way GetStatus does: the cache, else the store (filling the cache).
  v1::Transaction Read(const std::string& id) {
    if (auto cached = cache_.Lookup(id, 0, absl::Now())) return *cached;
    const uint64_t ticket = cache_.Ticket(0);
    absl::StatusOr<v1::Transaction> read = store_.Get(id);
    EXPECT_TRUE(read.ok()) << read.status();
    cache_.Fill(*read, ticket, absl::Now());
    return *read;
  }

  testing::InMemoryStore store_;
  Metrics metrics_;
  RecordCache cache_{1000, absl::Hours(720)};
  EventHub hub_{store_, metrics_, &cache_};
};

TEST_F(CoherenceTest, AChangeWithoutAnEventReachesTheCacheAsANotice) {
  Settle("paid", v1::TRANSACTION_STATUS_SUCCESS);
  ASSERT_EQ(Read("paid").history_size(), 1);
  ASSERT_TRUE(CachedAfterReads("paid"));
  // A callback refused for this final debit: a history line, no event, one notice.
  Report("paid", v1::TRANSACTION_STATUS_ERROR, "signed with another connector's secret");
  ASSERT_EQ(store_.ChangeNotices(), std::vector<std::string>{"paid"});
  ASSERT_TRUE(Await([&] { return cache_.Lookup("paid", 0, absl::Now()) == nullptr; }))
      << "the notice never reached the cache";
  EXPECT_EQ(Read("paid").history_size(), 2);
  // A contradicting callback (an anomaly) is another such change.
  Report("paid", v1::TRANSACTION_STATUS_CANCELLED, "");
  ASSERT_TRUE(Await([&] { return Read("paid").history_size() == 3; }));
  EXPECT_EQ(store_.ChangeNotices().size(), 2u);
  // A record that is not final changes without notices: it is never cached.
  Settle("open", v1::TRANSACTION_STATUS_PENDING);
  Read("open");
  EXPECT_EQ(cache_.Lookup("open", 0, absl::Now()), nullptr);
  Report("open", v1::TRANSACTION_STATUS_ERROR, "another amount");
  EXPECT_EQ(store_.ChangeNotices().size(), 2u);
}

TEST_F(CoherenceTest, ARefundsEventForgetsItsDebit) {
  Settle("debit", v1::TRANSACTION_STATUS_SUCCESS);
  ASSERT_EQ(Read("debit").refunded_amount_minor(), 0);
  ASSERT_TRUE(CachedAfterReads("debit"));
  ASSERT_NO_FATAL_FAILURE(SuccessfulRefund("refund", "debit", 400));
  ASSERT_TRUE(Await([&] { return Read("debit").refunded_amount_minor() == 400; }))
      << "the debit's refunded amount stayed stale";
}

// A subscriber told of a change, then reading on the same replica, never gets the record from
// before it: when the hub offers an event, the cache has already forgotten every id it names (a
// refund's debit too) and every id a notice read with it or before it named.
class ForgottenBeforeOfferedSink : public EventSink {
 public:
  ForgottenBeforeOfferedSink(RecordCache& cache, std::vector<std::string> watched,
                             std::vector<std::string> must_be_forgotten)
      : cache_(cache),
        watched_(std::move(watched)),
        must_be_forgotten_(std::move(must_be_forgotten)) {}

  std::vector<std::string> WatchedIds() const override { return watched_; }
  void Offer(const v1::StatusEvent& event) override {
    std::vector<std::string> ids = must_be_forgotten_;
    ids.push_back(event.transaction().merchant_transaction_id());
    absl::MutexLock lock(&mutex_);
    for (const std::string& id : ids) {
      if (cache_.Lookup(id, 0, absl::Now()) != nullptr) {
        stale_.push_back(absl::StrCat(id, " still cached when ",
                                      event.transaction().merchant_transaction_id(),
                                      "'s event was offered"));
      }
    }
    ++offered_;
  }
  void Abort(const std::string&) override {}

  int offered() {
    absl::MutexLock lock(&mutex_);
    return offered_;
  }
  std::vector<std::string> stale() {
    absl::MutexLock lock(&mutex_);
    return stale_;
  }

 private:
  RecordCache& cache_;
  const std::vector<std::string> watched_;
  const std::vector<std::string> must_be_forgotten_;
  absl::Mutex mutex_;
  int offered_ ABSL_GUARDED_BY(mutex_) = 0;
  std::vector<std::string> stale_ ABSL_GUARDED_BY(mutex_);
};

TEST_F(CoherenceTest, TheCacheForgetsBeforeAnySubscriberHears) {
  Settle("debit", v1::TRANSACTION_STATUS_SUCCESS);
  ASSERT_TRUE(CachedAfterReads("debit"));
  auto sink = std::make_shared<ForgottenBeforeOfferedSink>(
      cache_, std::vector<std::string>{"refund", "after-notice"},
      std::vector<std::string>{"debit"});
  hub_.Register(sink);

  // A refund's event names its debit.
  ASSERT_NO_FATAL_FAILURE(SuccessfulRefund("refund", "debit", 400));
  ASSERT_TRUE(Await([&] { return sink->offered() >= 1; }));

  // A notice for the debit, then another transaction's event right behind it (often one batch).
  ASSERT_TRUE(CachedAfterReads("debit"));
  Report("debit", v1::TRANSACTION_STATUS_ERROR, "signed with another connector's secret");
  Settle("after-notice", v1::TRANSACTION_STATUS_SUCCESS);
  ASSERT_TRUE(Await([&] { return sink->offered() >= 2; }));
  hub_.Unregister(sink.get());
  EXPECT_TRUE(sink->stale().empty()) << absl::StrJoin(sink->stale(), "; ");
}

TEST_F(CoherenceTest, AFailedReadDropsTheCache) {
  Settle("paid", v1::TRANSACTION_STATUS_SUCCESS);
  ASSERT_TRUE(CachedAfterReads("paid"));
  ASSERT_EQ(cache_.size(), 1u);
  store_.SetUnavailable(true);
  ASSERT_TRUE(Await([&] { return !cache_.following(); }));
  EXPECT_EQ(cache_.size(), 0u);
  store_.SetUnavailable(false);
  EXPECT_TRUE(Await([&] { return cache_.following(); }));
}

}  // namespace
}  // namespace flikpay::server
