// The event hub's fan-out over the in-memory store: an event reaches exactly the sinks that watch
// its merchant_transaction_id or everything, the index stays right through thousands of
// registrations and removals, and a sink that watches other ids is never offered the event (so an
// event costs nothing for the streams that do not watch it).
#include "server/event_hub.h"

#include <algorithm>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "server/metrics.h"
#include "tests/support/in_memory_store.h"

namespace flikpay::server {
namespace {

using testing::InMemoryStore;

// Counts what it is offered; watches `ids` (empty: everything).
class CountingSink : public EventSink {
 public:
  explicit CountingSink(std::vector<std::string> ids = {}) : ids_(std::move(ids)) {}

  std::vector<std::string> WatchedIds() const override { return ids_; }
  void Offer(const v1::StatusEvent& event) override {
    absl::MutexLock lock(&mutex_);
    ++offered_[event.transaction().merchant_transaction_id()];
    ++total_;
  }
  void Abort(const std::string&) override {
    absl::MutexLock lock(&mutex_);
    aborted_ = true;
  }

  int total() {
    absl::MutexLock lock(&mutex_);
    return total_;
  }
  int OfferedFor(const std::string& id) {
    absl::MutexLock lock(&mutex_);
    auto found = offered_.find(id);
    return found == offered_.end() ? 0 : found->second;
  }
  bool aborted() {
    absl::MutexLock lock(&mutex_);
    return aborted_;
  }
  // Waits until it was offered at least `count` events, up to `within`.
  bool AwaitTotal(int count, absl::Duration within) {
    absl::MutexLock lock(&mutex_);
    auto reached = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) { return total_ >= count; };
    return mutex_.AwaitWithTimeout(absl::Condition(&reached), within);
  }

 private:
  const std::vector<std::string> ids_;
  absl::Mutex mutex_;
  std::map<std::string, int> offered_ ABSL_GUARDED_BY(mutex_);
  int total_ ABSL_GUARDED_BY(mutex_) = 0;
  bool aborted_ ABSL_GUARDED_BY(mutex_) = false;
};

// Claims the debit `id` and stores a PENDING answer: one event.
void WriteEvent(store::Store& store, const std::string& id) {
  v1::Transaction debit;
  debit.set_merchant_transaction_id(id);
  debit.set_type(v1::TRANSACTION_TYPE_DEBIT);
  debit.set_status(v1::TRANSACTION_STATUS_UNKNOWN);
  debit.set_amount_minor(500);
  debit.set_currency("EUR");
  ASSERT_TRUE(store.Begin(debit, "fp", absl::Now() + absl::Seconds(10), absl::Now()).ok());
  store::Report report;
  report.status = v1::TRANSACTION_STATUS_PENDING;
  report.source = v1::EVENT_SOURCE_RPC;
  report.ends_flight = true;
  absl::StatusOr<store::ApplyResult> applied = store.Apply(id, report);
  ASSERT_TRUE(applied.ok()) << applied.status();
  ASSERT_FALSE(applied->event_cursor.empty());
}

class EventHubTest : public ::testing::Test {
 protected:
  void SetUp() override {
    hub_.Start();
    // The hub starts from the stream's end: wait until it follows (an event it reads reaches
    // `probe`), so every event written from here on is delivered.
    auto probe = std::make_shared<CountingSink>();
    hub_.Register(probe);
    bool following = false;
    for (int i = 0; i < 50 && !following; ++i) {
      WriteEvent(store_, absl::StrCat("probe-", i));
      following = probe->AwaitTotal(1, absl::Milliseconds(200));
    }
    ASSERT_TRUE(following) << "the hub never followed the stream";
    hub_.Unregister(probe.get());
    probes_ = probe->total();
  }
  void TearDown() override { hub_.Shutdown(); }

  // Writes one more event, watched by a sink of its own, and waits until it is offered: the hub
  // offers events one after another from one thread, so every earlier event has then been offered
  // to all its sinks.
  void Fence() {
    const std::string id = absl::StrCat("fence-", fences_++);
    auto fence = std::make_shared<CountingSink>(std::vector<std::string>{id});
    hub_.Register(fence);
    WriteEvent(store_, id);
    ASSERT_TRUE(fence->AwaitTotal(1, absl::Seconds(10))) << "the hub stopped delivering";
    hub_.Unregister(fence.get());
  }

  InMemoryStore store_;
  Metrics metrics_;
  EventHub hub_{store_, metrics_};
  int probes_ = 0;
  int fences_ = 0;
};

TEST_F(EventHubTest, AnEventReachesExactlyTheSinksWatchingItsIdOrEverything) {
  auto watches_a = std::make_shared<CountingSink>(std::vector<std::string>{"a"});
  auto watches_a_and_b = std::make_shared<CountingSink>(std::vector<std::string>{"a", "b", "a"});
  auto watches_c = std::make_shared<CountingSink>(std::vector<std::string>{"c"});
  auto everything = std::make_shared<CountingSink>();
  for (const auto& sink : {watches_a, watches_a_and_b, watches_c, everything}) hub_.Register(sink);
  EXPECT_EQ(hub_.WatchersOf("a"), 2u);
  EXPECT_EQ(hub_.WatchersOf("b"), 1u);
  EXPECT_EQ(hub_.WatchersOf("c"), 1u);

  WriteEvent(store_, "a");
  WriteEvent(store_, "b");
  Fence();
  EXPECT_EQ(watches_a->OfferedFor("a"), 1);
  EXPECT_EQ(watches_a->total(), 1) << "offered an event of an id it does not watch";
  EXPECT_EQ(watches_a_and_b->OfferedFor("a"), 1) << "an id listed twice is offered once";
  EXPECT_EQ(watches_a_and_b->OfferedFor("b"), 1);
  EXPECT_EQ(watches_a_and_b->total(), 2);
  EXPECT_EQ(watches_c->total(), 0) << "offered events of ids it does not watch";
  EXPECT_EQ(everything->total(), 2 + 1) << "a, b and the fence";

  // An unregistered sink is offered nothing more; the others go on.
  hub_.Unregister(watches_a.get());
  EXPECT_EQ(hub_.WatchersOf("a"), 1u);
  WriteEvent(store_, "c");
  Fence();
  EXPECT_EQ(watches_a->total(), 1);
  EXPECT_EQ(watches_c->OfferedFor("c"), 1);
  EXPECT_EQ(watches_a_and_b->total(), 2);

  // Unregister reads the ids again (the hub keeps no copy): an id listed twice leaves no trace.
  hub_.Unregister(watches_a_and_b.get());
  EXPECT_EQ(hub_.WatchersOf("a"), 0u);
  EXPECT_EQ(hub_.WatchersOf("b"), 0u);
  EXPECT_EQ(hub_.SinkCount(), 2u);
}

TEST_F(EventHubTest, ThousandsOfRegistrationsAndRemovalsKeepTheIndexRight) {
  constexpr int kIds = 500;
  constexpr int kSinks = 4000;
  std::mt19937 random(15);
  std::vector<std::shared_ptr<CountingSink>> sinks;
  std::vector<std::vector<std::string>> watched;
  for (int i = 0; i < kSinks; ++i) {
    std::vector<std::string> ids;
    // One in 50 watches everything; the rest 1 to 3 ids.
    if (i % 50 != 0) {
      const int count = 1 + static_cast<int>(random() % 3);
      for (int j = 0; j < count; ++j) ids.push_back(absl::StrCat("id-", random() % kIds));
    }
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    watched.push_back(ids);
    sinks.push_back(std::make_shared<CountingSink>(ids));
    hub_.Register(sinks.back());
  }
  // Take out a random half, in random order (swaps within the watch-everything list included).
  std::vector<int> order(kSinks);
  for (int i = 0; i < kSinks; ++i) order[i] = i;
  std::shuffle(order.begin(), order.end(), random);
  std::vector<bool> kept(kSinks, true);
  for (int i = 0; i < kSinks / 2; ++i) {
    hub_.Unregister(sinks[order[i]].get());
    kept[order[i]] = false;
  }
  ASSERT_EQ(hub_.SinkCount(), static_cast<size_t>(kSinks / 2));
  std::map<std::string, size_t> expected_watchers;
  for (int i = 0; i < kSinks; ++i) {
    if (!kept[i]) continue;
    for (const std::string& id : watched[i]) ++expected_watchers[id];
  }
  for (int id = 0; id < kIds; ++id) {
    const std::string name = absl::StrCat("id-", id);
    EXPECT_EQ(hub_.WatchersOf(name), expected_watchers[name]) << name;
  }

  // One event per id; a kept watch-everything sink sees all of them.
  for (int id = 0; id < kIds; ++id) WriteEvent(store_, absl::StrCat("id-", id));
  Fence();
  for (int i = 0; i < kSinks; ++i) {
    // A watch-everything sink also saw the fence.
    const int expected = !kept[i] ? 0 : watched[i].empty() ? kIds + 1 : watched[i].size();
    ASSERT_EQ(sinks[i]->total(), expected) << "sink " << i << (kept[i] ? "" : " (removed)");
    for (const std::string& id : watched[i]) ASSERT_EQ(sinks[i]->OfferedFor(id), kept[i] ? 1 : 0);
  }

  // Shutdown ends every sink still registered, and empties the index.
  hub_.Shutdown();
  for (int i = 0; i < kSinks; ++i) EXPECT_EQ(sinks[i]->aborted(), kept[i]) << i;
  EXPECT_EQ(hub_.SinkCount(), 0u);
  EXPECT_EQ(hub_.WatchersOf("id-1"), 0u);
}

TEST_F(EventHubTest, TenThousandStreamsWatchingOtherIdsAreNeverOfferedTheEvent) {
  std::vector<std::shared_ptr<CountingSink>> others;
  for (int i = 0; i < 10000; ++i) {
    others.push_back(
        std::make_shared<CountingSink>(std::vector<std::string>{absl::StrCat("other-", i)}));
    hub_.Register(others.back());
  }
  auto mine = std::make_shared<CountingSink>(std::vector<std::string>{"mine"});
  hub_.Register(mine);
  for (int i = 0; i < 100; ++i) {
    WriteEvent(store_, absl::StrCat("unwatched-", i));
  }
  WriteEvent(store_, "mine");
  ASSERT_TRUE(mine->AwaitTotal(1, absl::Seconds(5)));
  int offered_to_others = 0;
  for (const auto& sink : others) offered_to_others += sink->total();
  EXPECT_EQ(offered_to_others, 0);
  EXPECT_EQ(mine->total(), 1);
}

}  // namespace
}  // namespace flikpay::server
