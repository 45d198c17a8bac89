// GetMany and the per-caller spend limits, the same cases on RedisStore (a private redis-server)
// and on the in-memory store the fast tests use, so the two keep the same semantics; then what only
// Redis shows (the buckets in the hash, its expiry) and what only a movable clock can (the window
// sliding).
#include "store/redis_store.h"

#include <hiredis/hiredis.h>
#include <signal.h>
#include <stdlib.h>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "tests/support/in_memory_store.h"
#include "tests/support/test_redis.h"

namespace flikpay::store {
namespace {

constexpr int64_t kMax = std::numeric_limits<int64_t>::max();

testing::TestRedis* redis = nullptr;

// One redis-server for the whole binary (ctest runs each case in a process of its own, so each gets
// its own anyway); every test keeps to keys of its own prefix.
class RedisEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    absl::StatusOr<testing::TestRedis> started = testing::StartTestRedis(REDIS_SERVER_PATH);
    ASSERT_TRUE(started.ok()) << started.status();
    redis = new testing::TestRedis(*std::move(started));
  }
  void TearDown() override {
    delete redis;
    redis = nullptr;
  }
};
[[maybe_unused]] const ::testing::Environment* const kRedisEnvironment =
    ::testing::AddGlobalTestEnvironment(new RedisEnvironment);

std::string TestName() {
  const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
  return absl::StrCat(info->test_suite_name(), ".", info->name());
}

// A replica's RedisStore on the test's own keys.
std::unique_ptr<RedisStore> NewRedisStore(bool change_notices = true) {
  RedisConfig config;
  config.url = absl::StrCat("redis://127.0.0.1:", redis->port, "/0");
  config.key_prefix = absl::StrCat(TestName(), ":");
  config.command_timeout = absl::Seconds(5);
  // As a deployment with the record cache runs it (the in-memory store always writes notices).
  config.change_notices = change_notices;
  return std::make_unique<RedisStore>(config);
}

v1::Transaction Debit(const std::string& id, int64_t amount) {
  v1::Transaction debit;
  debit.set_merchant_transaction_id(id);
  debit.set_type(v1::TRANSACTION_TYPE_DEBIT);
  debit.set_status(v1::TRANSACTION_STATUS_UNKNOWN);
  debit.set_amount_minor(amount);
  debit.set_currency("EUR");
  return debit;
}

// ApplyCallback's mark of `signature`, handled for two minutes.
CallbackApply Mark(const std::string& signature) {
  CallbackApply callback;
  callback.signature = signature;
  callback.mark_ttl = absl::Minutes(2);
  return callback;
}

enum class Kind { kRedis, kInMemory };

// Each case on both stores. Replica() is a second store over the same data: another RedisStore on
// the same Redis, or the same in-memory store (which stands for all replicas at once).
class StoreTest : public ::testing::TestWithParam<Kind> {
 protected:
  void SetUp() override {
    if (GetParam() == Kind::kRedis) {
      ASSERT_NE(redis, nullptr);
      store_ = NewRedisStore();
    } else {
      store_ = std::make_unique<testing::InMemoryStore>();
    }
  }

  Store& store() { return *store_; }
  std::unique_ptr<Store> Replica() {
    if (GetParam() == Kind::kRedis) return NewRedisStore();
    return nullptr;
  }

  void BeginDebit(const std::string& id, int64_t amount) {
    absl::StatusOr<BeginResult> begun = store_->Begin(
        Debit(id, amount), "fp", absl::Now() + absl::Seconds(10), absl::Now() + absl::Minutes(1));
    ASSERT_TRUE(begun.ok()) << begun.status();
  }

  SpendResult Reserve(absl::string_view caller, int64_t amount, int64_t limit,
                      absl::Duration window = absl::Minutes(5),
                      absl::string_view rpc = "CreateRtp") {
    absl::StatusOr<SpendResult> result = store_->ReserveSpend(caller, rpc, amount, limit, window);
    EXPECT_TRUE(result.ok()) << result.status();
    return result.value_or(SpendResult{});
  }

  std::unique_ptr<Store> store_;
};

INSTANTIATE_TEST_SUITE_P(BothStores, StoreTest, ::testing::Values(Kind::kRedis, Kind::kInMemory),
                         [](const ::testing::TestParamInfo<Kind>& info) {
                           return info.param == Kind::kRedis ? "Redis" : "InMemory";
                         });

TEST_P(StoreTest, GetManyAnswersInOrderWithNothingForUnknownIds) {
  BeginDebit("a", 100);
  BeginDebit("b", 200);
  absl::StatusOr<std::vector<std::optional<v1::Transaction>>> found =
      store().GetMany({"b", "nope", "a", "b", ""});
  ASSERT_TRUE(found.ok()) << found.status();
  ASSERT_EQ(found->size(), 5u);
  ASSERT_TRUE((*found)[0].has_value());
  EXPECT_EQ((*found)[0]->amount_minor(), 200);
  EXPECT_FALSE((*found)[1].has_value());
  ASSERT_TRUE((*found)[2].has_value());
  EXPECT_EQ((*found)[2]->merchant_transaction_id(), "a");
  EXPECT_EQ((*found)[3]->merchant_transaction_id(), "b");
  EXPECT_FALSE((*found)[4].has_value());

  absl::StatusOr<std::vector<std::optional<v1::Transaction>>> none = store().GetMany({});
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_TRUE(none->empty());
}

TEST_P(StoreTest, GetManyReadsAThousandIds) {
  std::vector<std::string> ids;
  for (int i = 0; i < 1000; ++i) {
    ids.push_back(absl::StrCat("order-", i));
    if (i % 2 == 0) BeginDebit(ids.back(), 1000 + i);
  }
  absl::StatusOr<std::vector<std::optional<v1::Transaction>>> found = store().GetMany(ids);
  ASSERT_TRUE(found.ok()) << found.status();
  ASSERT_EQ(found->size(), ids.size());
  for (int i = 0; i < 1000; ++i) {
    ASSERT_EQ((*found)[i].has_value(), i % 2 == 0) << i;
    if (i % 2 == 0) {
      EXPECT_EQ((*found)[i]->amount_minor(), 1000 + i);
    }
  }
}

// Bankart's status-query quota is shared by every replica; how much of it is spent can be read
// without spending any (the flikpay_status_query_quota_left gauge).
TEST_P(StoreTest, StatusQueriesAreTakenUpToTheLimitAndCountedWithoutTakingOne) {
  const absl::Duration window = absl::Milliseconds(500);
  for (int taken = 1; taken <= 3; ++taken) {
    absl::StatusOr<QueryTake> take = store().TakeStatusQuery(3, window);
    ASSERT_TRUE(take.ok()) << take.status();
    EXPECT_TRUE(take->granted);
    EXPECT_EQ(take->in_window, taken);
  }
  absl::StatusOr<QueryTake> refused = store().TakeStatusQuery(3, window);
  ASSERT_TRUE(refused.ok());
  EXPECT_FALSE(refused->granted);
  EXPECT_EQ(refused->in_window, 3);
  EXPECT_EQ(*store().StatusQueriesInWindow(window), 3) << "counting takes none";
  EXPECT_EQ(*store().StatusQueriesInWindow(window), 3);
  if (std::unique_ptr<Store> other = Replica()) {
    EXPECT_EQ(*other->StatusQueriesInWindow(window), 3) << "every replica sees the same quota";
  }
  absl::SleepFor(window + absl::Milliseconds(100));
  EXPECT_EQ(*store().StatusQueriesInWindow(window), 0) << "the window has moved on";
}

TEST_P(StoreTest, SpendFillsUpToTheLimitExactly) {
  SpendResult first = Reserve("shop", 400, 1000);
  EXPECT_TRUE(first.granted);
  EXPECT_EQ(first.spent_minor, 0);
  EXPECT_NE(first.reserved_at, absl::InfinitePast());
  SpendResult second = Reserve("shop", 600, 1000);
  EXPECT_TRUE(second.granted);
  EXPECT_EQ(second.spent_minor, 400);

  SpendResult one_cent_more = Reserve("shop", 1, 1000);
  EXPECT_FALSE(one_cent_more.granted);
  EXPECT_EQ(one_cent_more.spent_minor, 1000);
  EXPECT_EQ(one_cent_more.reserved_at, absl::InfinitePast());
  // A refusal added nothing: still exactly at the limit.
  EXPECT_EQ(Reserve("shop", 1, 1001).spent_minor, 1000);
}

TEST_P(StoreTest, AReleaseGivesTheAmountBack) {
  const SpendResult held = Reserve("shop", 600, 1000);
  ASSERT_TRUE(held.granted);
  EXPECT_FALSE(Reserve("shop", 500, 1000).granted);
  ASSERT_TRUE(
      store().ReleaseSpend("shop", "CreateRtp", 600, held.reserved_at, absl::Minutes(5)).ok());
  const SpendResult again = Reserve("shop", 1000, 1000);
  EXPECT_TRUE(again.granted);
  EXPECT_EQ(again.spent_minor, 0);
}

TEST_P(StoreTest, AReleaseNeverGoesBelowZero) {
  const SpendResult held = Reserve("shop", 100, 1000);
  ASSERT_TRUE(held.granted);
  ASSERT_TRUE(
      store().ReleaseSpend("shop", "CreateRtp", 500, held.reserved_at, absl::Minutes(5)).ok());
  ASSERT_TRUE(
      store().ReleaseSpend("shop", "CreateRtp", 500, held.reserved_at, absl::Minutes(5)).ok());
  const SpendResult after = Reserve("shop", 1000, 1000);
  EXPECT_TRUE(after.granted);
  EXPECT_EQ(after.spent_minor, 0) << "not -800";
  EXPECT_FALSE(Reserve("shop", 1, 1000).granted);
}

TEST_P(StoreTest, AReleaseOfAnotherMinuteOrOutsideTheWindowChangesNothing) {
  const SpendResult held = Reserve("shop", 100, 1000);
  ASSERT_TRUE(held.granted);
  for (const absl::Time when :
       {held.reserved_at - absl::Hours(1), held.reserved_at + absl::Hours(1), absl::InfinitePast(),
        absl::InfiniteFuture()}) {
    ASSERT_TRUE(store().ReleaseSpend("shop", "CreateRtp", 100, when, absl::Minutes(5)).ok());
  }
  ASSERT_TRUE(
      store().ReleaseSpend("other", "CreateRtp", 100, held.reserved_at, absl::Minutes(5)).ok());
  EXPECT_EQ(Reserve("shop", 1, 1000).spent_minor, 100);
}

TEST_P(StoreTest, AmountsUpToInt64MaxNeverWrap) {
  SpendResult first = Reserve("big", 1, kMax);
  ASSERT_TRUE(first.granted);
  SpendResult too_much = Reserve("big", kMax, kMax);
  EXPECT_FALSE(too_much.granted);
  EXPECT_EQ(too_much.spent_minor, 1);
  SpendResult rest = Reserve("big", kMax - 1, kMax);
  EXPECT_TRUE(rest.granted);
  EXPECT_EQ(rest.spent_minor, 1);
  SpendResult beyond = Reserve("big", 1, kMax);
  EXPECT_FALSE(beyond.granted);
  EXPECT_EQ(beyond.spent_minor, kMax) << "summed exactly, not rounded through a double";
  EXPECT_FALSE(Reserve("big", kMax, kMax).granted);

  // Just above 2^53, where a double sum would already round.
  const int64_t two_53 = int64_t{1} << 53;
  EXPECT_TRUE(Reserve("exact", two_53, two_53 + 1).granted);
  EXPECT_TRUE(Reserve("exact", 1, two_53 + 1).granted);
  SpendResult full = Reserve("exact", 1, two_53 + 1);
  EXPECT_FALSE(full.granted);
  EXPECT_EQ(full.spent_minor, two_53 + 1);

  // An amount alone beyond its limit.
  SpendResult alone = Reserve("alone", kMax, 0);
  EXPECT_FALSE(alone.granted);
  EXPECT_EQ(alone.spent_minor, 0);
}

TEST_P(StoreTest, EachCallerAndRpcHasItsOwnBudget) {
  // Strings that would meet in a naive key: separators, escapes, hash tags, bytes.
  const std::vector<std::pair<std::string, std::string>> owners = {{"a:b", "c"},
                                                                   {"a", "b:c"},
                                                                   {"a%3Ab", "c"},
                                                                   {"{tag}", "x"},
                                                                   {"%7Btag%7D", "x"},
                                                                   {"", "CreateRtp"},
                                                                   {std::string("n\0ul", 4), "x"},
                                                                   {"é", "Refund"},
                                                                   {"shop", "CreateRtp"},
                                                                   {"shop", "Refund"}};
  for (const auto& [caller, rpc] : owners) {
    SpendResult result = Reserve(caller, 10, 10, absl::Minutes(5), rpc);
    EXPECT_TRUE(result.granted) << caller << " " << rpc;
    EXPECT_EQ(result.spent_minor, 0) << caller << " " << rpc;
  }
  for (const auto& [caller, rpc] : owners) {
    EXPECT_FALSE(Reserve(caller, 1, 10, absl::Minutes(5), rpc).granted) << caller << " " << rpc;
  }
}

TEST_P(StoreTest, ArgumentsOutOfRangeAreRefused) {
  auto code = [&](int64_t amount, int64_t limit, absl::Duration window) {
    return store().ReserveSpend("shop", "CreateRtp", amount, limit, window).status().code();
  };
  EXPECT_EQ(code(0, 10, absl::Minutes(1)), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(code(-5, 10, absl::Minutes(1)), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(code(5, -1, absl::Minutes(1)), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(code(5, 10, absl::ZeroDuration()), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(code(5, 10, kMaxSpendWindow + absl::Minutes(1)), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(code(5, 10, kMaxSpendWindow), absl::StatusCode::kOk);
  EXPECT_EQ(store().ReleaseSpend("shop", "CreateRtp", 0, absl::Now(), absl::Minutes(1)).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_P(StoreTest, TwoReplicasRacingGrantExactlyTheLimit) {
  std::unique_ptr<Store> second = Replica();
  Store* replicas[2] = {store_.get(), second ? second.get() : store_.get()};
  std::atomic<int> granted{0};
  std::atomic<int> failed{0};
  std::vector<std::thread> threads;
  // 8 threads, 25 reservations of a cent each, half of them on each replica.
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      Store& replica = *replicas[t % 2];
      for (int i = 0; i < 25; ++i) {
        absl::StatusOr<SpendResult> result =
            replica.ReserveSpend("racer", "Payout", 1, 150, absl::Minutes(5));
        if (!result.ok()) {
          ++failed;
        } else if (result->granted) {
          ++granted;
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(granted.load(), 150);
  EXPECT_EQ(Reserve("racer", 1, 1000, absl::Minutes(5), "Payout").spent_minor, 150);
}

// One delivery of a callback handles it; a concurrent one waits for it (kHandling, answered 503),
// a later one is a replay (kHandled). A failed handler gives the signature back, a dead one's claim
// expires with its lease.
TEST_P(StoreTest, ACallbackSignatureIsClaimedThenHandledOrGivenBack) {
  EXPECT_EQ(store().SightCallback("sig-a", absl::Seconds(30)).value_or(Sighting::kHandled),
            Sighting::kFirst);
  EXPECT_EQ(store().SightCallback("sig-a", absl::Seconds(30)).value_or(Sighting::kFirst),
            Sighting::kHandling);
  ASSERT_TRUE(store().MarkCallbackHandled("sig-a", absl::Minutes(2)).ok());
  EXPECT_EQ(store().SightCallback("sig-a", absl::Seconds(30)).value_or(Sighting::kFirst),
            Sighting::kHandled);
  EXPECT_EQ(store().SightCallback("sig-a", absl::Seconds(30)).value_or(Sighting::kFirst),
            Sighting::kHandled)
      << "a replay of a handled callback does not shorten how long it is kept";

  EXPECT_EQ(store().SightCallback("sig-b", absl::Seconds(30)).value_or(Sighting::kHandled),
            Sighting::kFirst);
  ASSERT_TRUE(store().ForgetSighting("sig-b").ok());
  EXPECT_EQ(store().SightCallback("sig-b", absl::Seconds(30)).value_or(Sighting::kHandled),
            Sighting::kFirst);

  EXPECT_EQ(store().SightCallback("sig-c", absl::Milliseconds(50)).value_or(Sighting::kHandled),
            Sighting::kFirst);
  absl::SleepFor(absl::Milliseconds(120));
  EXPECT_EQ(store().SightCallback("sig-c", absl::Seconds(30)).value_or(Sighting::kHandled),
            Sighting::kFirst)
      << "the claim of a handler that never finished ends with its lease";
}

TEST_P(StoreTest, AnotherReplicaSeesTheSameSighting) {
  std::unique_ptr<Store> second = Replica();
  Store* other = second ? second.get() : store_.get();
  ASSERT_EQ(store().SightCallback("sig-d", absl::Seconds(30)).value_or(Sighting::kHandled),
            Sighting::kFirst);
  EXPECT_EQ(other->SightCallback("sig-d", absl::Seconds(30)).value_or(Sighting::kFirst),
            Sighting::kHandling);
  ASSERT_TRUE(store().MarkCallbackHandled("sig-d", absl::Minutes(2)).ok());
  EXPECT_EQ(other->SightCallback("sig-d", absl::Seconds(30)).value_or(Sighting::kFirst),
            Sighting::kHandled);
}

// What only Redis shows: the keys themselves, written, aged and spoilt by hand.
// A callback's outcome and its handled mark are stored in one atomic step
// (ApplyCallback): a racing delivery of the same bytes sees "handling" until the outcome is
// stored, "handled" with it. A report that stores nothing (a repeat) still writes the mark; one
// about no transaction writes neither.
TEST_P(StoreTest, AnApplyThatMarksACallbackHandledStoresOutcomeAndMarkTogether) {
  ASSERT_NO_FATAL_FAILURE(BeginDebit("d1", 500));
  std::unique_ptr<Store> other = Replica();
  Store& racer = other != nullptr ? *other : store();
  Report callback;
  callback.status = v1::TRANSACTION_STATUS_SUCCESS;
  callback.source = v1::EVENT_SOURCE_CALLBACK;
  callback.ends_flight = true;

  ASSERT_EQ(store().SightCallback("sig-e", absl::Seconds(30)).value_or(Sighting::kHandled),
            Sighting::kFirst);
  EXPECT_EQ(racer.SightCallback("sig-e", absl::Seconds(30)).value_or(Sighting::kFirst),
            Sighting::kHandling)
      << "the outcome is not stored yet";
  absl::StatusOr<ApplyResult> applied = store().ApplyCallback("d1", callback, Mark("sig-e"));
  ASSERT_TRUE(applied.ok()) << applied.status();
  EXPECT_TRUE(applied->status_changed);
  EXPECT_FALSE(applied->event_cursor.empty());
  absl::StatusOr<v1::Transaction> stored = racer.Get("d1");
  ASSERT_TRUE(stored.ok()) << stored.status();
  EXPECT_EQ(stored->status(), v1::TRANSACTION_STATUS_SUCCESS);
  EXPECT_EQ(racer.SightCallback("sig-e", absl::Seconds(30)).value_or(Sighting::kFirst),
            Sighting::kHandled);

  // Other bytes with the same news: nothing to store, the mark all the same.
  ASSERT_EQ(store().SightCallback("sig-f", absl::Seconds(30)).value_or(Sighting::kHandled),
            Sighting::kFirst);
  absl::StatusOr<ApplyResult> repeat = store().ApplyCallback("d1", callback, Mark("sig-f"));
  ASSERT_TRUE(repeat.ok()) << repeat.status();
  EXPECT_FALSE(repeat->status_changed);
  EXPECT_TRUE(repeat->event_cursor.empty());
  EXPECT_EQ(racer.SightCallback("sig-f", absl::Seconds(30)).value_or(Sighting::kFirst),
            Sighting::kHandled);

  // No such transaction: nothing stored, so no mark; the claim still holds.
  ASSERT_EQ(store().SightCallback("sig-g", absl::Seconds(30)).value_or(Sighting::kHandled),
            Sighting::kFirst);
  absl::StatusOr<ApplyResult> unknown = store().ApplyCallback("nope", callback, Mark("sig-g"));
  EXPECT_TRUE(absl::IsNotFound(unknown.status())) << unknown.status();
  EXPECT_EQ(racer.SightCallback("sig-g", absl::Seconds(30)).value_or(Sighting::kFirst),
            Sighting::kHandling);
}

// ApplyCallback's check judges the record Apply reads: a mismatch is only recorded (refused, an
// anomaly in the history; the status stays) and the mark written with it; an error stores nothing,
// not even the mark.
TEST_P(StoreTest, ACallbacksCheckRefusesOrStopsTheReport) {
  ASSERT_NO_FATAL_FAILURE(BeginDebit("d1", 500));
  Report callback;
  callback.status = v1::TRANSACTION_STATUS_SUCCESS;
  callback.source = v1::EVENT_SOURCE_CALLBACK;
  CallbackApply mismatched = Mark("sig-h");
  int64_t judged_amount = 0;
  mismatched.check = [&judged_amount](const v1::Transaction& stored) {
    judged_amount = stored.amount_minor();
    return absl::StatusOr<std::string>("amount 400 cents, the transaction's is 500");
  };
  ASSERT_EQ(store().SightCallback("sig-h", absl::Seconds(30)).value_or(Sighting::kHandled),
            Sighting::kFirst);
  absl::StatusOr<ApplyResult> refused = store().ApplyCallback("d1", callback, mismatched);
  ASSERT_TRUE(refused.ok()) << refused.status();
  EXPECT_EQ(judged_amount, 500);
  EXPECT_EQ(refused->refused_because, "amount 400 cents, the transaction's is 500");
  EXPECT_TRUE(refused->anomaly);
  EXPECT_FALSE(refused->status_changed);
  absl::StatusOr<v1::Transaction> stored = store().Get("d1");
  ASSERT_TRUE(stored.ok()) << stored.status();
  EXPECT_EQ(stored->status(), v1::TRANSACTION_STATUS_UNKNOWN);
  ASSERT_GT(stored->history_size(), 0);
  EXPECT_TRUE(absl::StrContains(stored->history(stored->history_size() - 1).DebugString(),
                                "refused: amount 400"))
      << stored->DebugString();
  EXPECT_EQ(store().SightCallback("sig-h", absl::Seconds(30)).value_or(Sighting::kFirst),
            Sighting::kHandled);

  CallbackApply failing = Mark("sig-i");
  failing.check = [](const v1::Transaction&) -> absl::StatusOr<std::string> {
    return absl::InternalError("cannot tell");
  };
  ASSERT_EQ(store().SightCallback("sig-i", absl::Seconds(30)).value_or(Sighting::kHandled),
            Sighting::kFirst);
  absl::StatusOr<ApplyResult> stopped = store().ApplyCallback("d1", callback, failing);
  EXPECT_EQ(stopped.status().code(), absl::StatusCode::kInternal) << stopped.status();
  absl::StatusOr<v1::Transaction> after = store().Get("d1");
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->version(), stored->version()) << "nothing stored";
  EXPECT_EQ(store().SightCallback("sig-i", absl::Seconds(30)).value_or(Sighting::kFirst),
            Sighting::kHandling);
}

// A settled debit's record changed without a status change (a refused callback's anomaly line):
// a change notice in the stream, which the event hub reads (WaitForChanges: the id, in stream
// order) and no reader of events ever sees: a page of events reads on past notices, so a short
// page still means the stream's end, and a position on a notice is one to resume from.
TEST_P(StoreTest, AFinalRecordChangedWithoutAnEventLeavesANoticeThatEventReadersPagePast) {
  ASSERT_NO_FATAL_FAILURE(BeginDebit("d1", 500));
  Report success;
  success.status = v1::TRANSACTION_STATUS_SUCCESS;
  success.source = v1::EVENT_SOURCE_CALLBACK;
  success.ends_flight = true;
  absl::StatusOr<ApplyResult> settled = store().Apply("d1", success);
  ASSERT_TRUE(settled.ok()) << settled.status();
  const std::string settled_cursor = settled->event_cursor;
  ASSERT_FALSE(settled_cursor.empty());

  Report refused = success;
  refused.refused_because = "amount 400 cents, the transaction's is 500";
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<ApplyResult> anomaly = store().Apply("d1", refused);
    ASSERT_TRUE(anomaly.ok()) << anomaly.status();
    ASSERT_TRUE(anomaly->event_cursor.empty()) << "no event";
  }
  absl::StatusOr<std::string> after_notices = store().LatestCursor();
  ASSERT_TRUE(after_notices.ok()) << after_notices.status();
  absl::StatusOr<std::vector<v1::StatusEvent>> none = store().ReadEvents(settled_cursor, 2);
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_TRUE(none->empty()) << "notices are no events";

  ASSERT_NO_FATAL_FAILURE(BeginDebit("d2", 700));
  absl::StatusOr<ApplyResult> later = store().Apply("d2", success);
  ASSERT_TRUE(later.ok()) << later.status();

  // Read by a replica that writes no notices itself (an upgrade's second step: some replicas
  // write them, the others only read them).
  std::unique_ptr<Store> other;
  if (GetParam() == Kind::kRedis) other = NewRedisStore(/*change_notices=*/false);
  Store& reader = other != nullptr ? *other : store();
  for (int page : {1, 2, 5}) {
    absl::StatusOr<std::vector<v1::StatusEvent>> events = reader.ReadEvents(settled_cursor, page);
    ASSERT_TRUE(events.ok()) << events.status();
    ASSERT_EQ(events->size(), 1u) << "a page of " << page << " reads on past three notices";
    EXPECT_EQ((*events)[0].cursor(), later->event_cursor);
    EXPECT_EQ((*events)[0].transaction().merchant_transaction_id(), "d2");
  }
  absl::StatusOr<std::vector<v1::StatusEvent>> from_notice = reader.ReadEvents(*after_notices, 10);
  ASSERT_TRUE(from_notice.ok()) << from_notice.status();
  ASSERT_EQ(from_notice->size(), 1u) << "the newest entry was a notice; the next event follows it";
  EXPECT_EQ((*from_notice)[0].cursor(), later->event_cursor);

  // The hub's reading: notices and events in stream order, two entries at a time.
  absl::StatusOr<StreamRead> first = reader.WaitForChanges(settled_cursor, 2, absl::Seconds(1));
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_TRUE(first->events.empty());
  EXPECT_EQ(first->changed_ids, std::vector<std::string>({"d1", "d1"}));
  ASSERT_FALSE(first->last_cursor.empty());
  absl::StatusOr<bool> resumable = reader.CanResumeFrom(first->last_cursor);
  ASSERT_TRUE(resumable.ok()) << resumable.status();
  EXPECT_TRUE(*resumable) << "a notice's cursor is a position in the stream";
  absl::StatusOr<StreamRead> second =
      reader.WaitForChanges(first->last_cursor, 10, absl::Seconds(1));
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->changed_ids, std::vector<std::string>({"d1"}));
  ASSERT_EQ(second->events.size(), 1u);
  EXPECT_EQ(second->events[0].transaction().merchant_transaction_id(), "d2");
  EXPECT_EQ(second->last_cursor, later->event_cursor);
}

class RedisLayoutTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NE(redis, nullptr);
    store_ = NewRedisStore();
    context_ = redisConnect("127.0.0.1", redis->port);
    ASSERT_TRUE(context_ != nullptr && context_->err == 0);
  }
  void TearDown() override {
    if (context_ != nullptr) redisFree(context_);
  }

  // A command's integer answer (or a string's number); -999 on anything else.
  int64_t Command(const std::vector<std::string>& args) {
    std::vector<const char*> argv;
    std::vector<size_t> lengths;
    for (const std::string& arg : args) {
      argv.push_back(arg.data());
      lengths.push_back(arg.size());
    }
    auto* reply = static_cast<redisReply*>(
        redisCommandArgv(context_, static_cast<int>(args.size()), argv.data(), lengths.data()));
    int64_t value = -999;
    if (reply != nullptr && reply->type == REDIS_REPLY_INTEGER) value = reply->integer;
    if (reply != nullptr && reply->type == REDIS_REPLY_STRING) {
      value = std::stoll(std::string(reply->str, reply->len));
    }
    if (reply != nullptr && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2) {
      value = std::stoll(std::string(reply->element[0]->str, reply->element[0]->len));  // TIME
    }
    freeReplyObject(reply);
    return value;
  }

  // Redis' current minute, as the scripts number them.
  int64_t RedisMinute() { return Command({"TIME"}) / 60; }

  std::unique_ptr<RedisStore> store_;
  redisContext* context_ = nullptr;
};

TEST_F(RedisLayoutTest, SpendBucketsOlderThanTheWindowAreDropped) {
  const std::string key = store_->SpendKey("shop", "CreateRtp");
  const int64_t now = RedisMinute();
  // Two minutes wholly before a two-minute window, and one inside it.
  Command({"HSET", key, std::to_string(now - 10), "700", std::to_string(now - 4), "500",
           std::to_string(now - 1), "30"});
  absl::StatusOr<SpendResult> result =
      store_->ReserveSpend("shop", "CreateRtp", 5, 1000, absl::Minutes(2));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(result->granted);
  EXPECT_EQ(result->spent_minor, 30) << "only the minute inside the window counts";
  EXPECT_EQ(Command({"HEXISTS", key, std::to_string(now - 10)}), 0);
  EXPECT_EQ(Command({"HEXISTS", key, std::to_string(now - 4)}), 0);
  EXPECT_EQ(Command({"HGET", key, std::to_string(now - 1)}), 30);
  EXPECT_EQ(Command({"HGET", key, std::to_string(absl::ToUnixSeconds(result->reserved_at) / 60)}),
            5);
  EXPECT_LE(Command({"HLEN", key}), 3) << "at most window/1 min + 1 buckets";
  // Kept a window and a minute after the last reservation, no longer.
  const int64_t ttl = Command({"PTTL", key});
  EXPECT_GT(ttl, absl::ToInt64Milliseconds(absl::Minutes(2)));
  EXPECT_LE(ttl, absl::ToInt64Milliseconds(absl::Minutes(3)));
}

TEST_F(RedisLayoutTest, TheMinuteTheWindowStartsInStillCounts) {
  // A two-minute window begins inside the minute two before the current one, so a spend from that
  // minute may lie within it: it counts. Tried again should Redis' minute turn meanwhile.
  const std::string key = store_->SpendKey("shop", "Refund");
  for (int attempt = 0; attempt < 3; ++attempt) {
    Command({"DEL", key});
    const int64_t now = RedisMinute();
    Command({"HSET", key, std::to_string(now - 3), "700", std::to_string(now - 2), "40"});
    absl::StatusOr<SpendResult> result =
        store_->ReserveSpend("shop", "Refund", 5, 1000, absl::Minutes(2));
    ASSERT_TRUE(result.ok()) << result.status();
    if (RedisMinute() != now) continue;
    EXPECT_EQ(result->spent_minor, 40);
    EXPECT_EQ(Command({"HEXISTS", key, std::to_string(now - 3)}), 0);
    return;
  }
  FAIL() << "Redis' minute turned during every attempt";
}

TEST_F(RedisLayoutTest, CallerStringsAreEscapedInTheSpendKey) {
  EXPECT_NE(store_->SpendKey("a:b", "c"), store_->SpendKey("a", "b:c"));
  EXPECT_NE(store_->SpendKey("a%3Ab", "c"), store_->SpendKey("a:b", "c"));
  const std::string key = store_->SpendKey("{tag} x\n", "Create:Rtp");
  EXPECT_EQ(key.find_first_of("{} \n"), std::string::npos) << key;
  EXPECT_EQ(key, absl::StrCat(TestName(), ":spend:%7btag%7d%20x%0a:Create%3aRtp"));
}

TEST_F(RedisLayoutTest, GetManyNamesAnUnreadableRecord) {
  Command({"HSET", absl::StrCat(TestName(), ":tx:spoilt"), "data", "\xff\xff\xff"});
  absl::StatusOr<std::vector<std::optional<v1::Transaction>>> found =
      store_->GetMany({"unknown", "spoilt"});
  EXPECT_EQ(found.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(found.status().message().find("spoilt"), absl::string_view::npos) << found.status();
}

// A cursor resumes only from its own entry: one the stream never held (lost with a failed primary's
// tail, or ahead of the last entry) is refused, not resumed after.
// Until every replica reads change notices (RedisConfig::change_notices off, the default), a final
// record's change without an event adds nothing to the stream: an older replica's hub never meets
// an entry it cannot read.
TEST_F(RedisLayoutTest, WithoutChangeNoticesOnlyEventsEnterTheStream) {
  RedisConfig config;
  config.url = absl::StrCat("redis://127.0.0.1:", redis->port, "/0");
  config.key_prefix = absl::StrCat(TestName(), ":");
  ASSERT_FALSE(config.change_notices) << "off unless turned on";
  RedisStore store(config);
  const std::string key = absl::StrCat(TestName(), ":events");
  ASSERT_TRUE(store
                  .Begin(Debit("d1", 500), "fp", absl::Now() + absl::Seconds(10),
                         absl::Now() + absl::Minutes(1))
                  .ok());
  Report success;
  success.status = v1::TRANSACTION_STATUS_SUCCESS;
  success.source = v1::EVENT_SOURCE_CALLBACK;
  success.ends_flight = true;
  ASSERT_TRUE(store.Apply("d1", success).ok());
  ASSERT_EQ(Command({"XLEN", key}), 1);
  Report refused = success;
  refused.refused_because = "another connector";
  absl::StatusOr<ApplyResult> anomaly = store.Apply("d1", refused);
  ASSERT_TRUE(anomaly.ok()) << anomaly.status();
  absl::StatusOr<v1::Transaction> stored = store.Get("d1");
  ASSERT_TRUE(stored.ok()) << stored.status();
  EXPECT_TRUE(absl::StrContains(stored->DebugString(), "another connector"))
      << "the record changed";
  EXPECT_EQ(Command({"XLEN", key}), 1) << "and the stream did not";
}

// Going back to a release that cannot read notices: they are deleted, the events stay, and a
// reader of events from any of their cursors reads on exactly as before.
TEST_F(RedisLayoutTest, DroppingChangeNoticesKeepsEveryEvent) {
  const std::string key = absl::StrCat(TestName(), ":events");
  ASSERT_EQ(Command({"XADD", key, "100-1", "e", "x"}), 100);
  for (int i = 0; i < 2500; ++i) {  // across pages
    ASSERT_GT(Command({"XADD", key, absl::StrCat("200-", i), "c", "d1"}), 0);
  }
  ASSERT_EQ(Command({"XADD", key, "300-1", "e", "y"}), 300);
  ASSERT_GT(Command({"XADD", key, "400-1", "c", "d2"}), 0);

  absl::StatusOr<int64_t> dropped = store_->DropChangeNotices();
  ASSERT_TRUE(dropped.ok()) << dropped.status();
  EXPECT_EQ(*dropped, 2501);
  EXPECT_EQ(Command({"XLEN", key}), 2);
  for (const std::string cursor : {"100-1", "300-1"}) {
    EXPECT_EQ(Command({"EVAL", "return #redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])", "1", key,
                       cursor}),
              1)
        << cursor << " kept";
  }
  absl::StatusOr<int64_t> again = store_->DropChangeNotices();
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(*again, 0);
}

TEST_F(RedisLayoutTest, OnlyACursorWhoseEventIsKeptResumes) {
  const std::string key = absl::StrCat(TestName(), ":events");
  auto resumes = [&](const std::string& cursor) {
    absl::StatusOr<bool> resumable = store_->CanResumeFrom(cursor);
    EXPECT_TRUE(resumable.ok()) << resumable.status();
    return resumable.value_or(false);
  };
  EXPECT_TRUE(resumes("0-0")) << "no stream yet";
  ASSERT_EQ(Command({"XADD", key, "100-1", "e", "x"}), 100);
  ASSERT_EQ(Command({"XADD", key, "200-1", "e", "x"}), 200);
  EXPECT_TRUE(resumes("0-0"));
  EXPECT_TRUE(resumes("100-1"));
  EXPECT_TRUE(resumes("200-1"));
  EXPECT_FALSE(resumes("150-0")) << "between two kept events, never held";
  EXPECT_FALSE(resumes("300-0")) << "after the last event";
}

// A Redis that comes back without the stream's tail (here: 200-1 deleted and the last id set back,
// as on a replica promoted before it received it) does not hand the lost id out again once a
// process that had read it connects anew.
TEST_F(RedisLayoutTest, ANewConnectionKeepsTheStreamAboveEveryIdThisProcessSaw) {
  const std::string key = absl::StrCat(TestName(), ":events");
  ASSERT_EQ(Command({"XADD", key, "100-1", "e", "x"}), 100);
  ASSERT_EQ(Command({"XADD", key, "200-1", "e", "x"}), 200);
  absl::StatusOr<std::string> latest = store_->LatestCursor();
  ASSERT_TRUE(latest.ok()) << latest.status();
  EXPECT_EQ(*latest, "200-1");
  ASSERT_EQ(Command({"XDEL", key, "200-1"}), 1);
  auto* reset = static_cast<redisReply*>(
      redisCommand(context_, "XSETID %s 100-1 ENTRIESADDED 1 MAXDELETEDID 0-0", key.c_str()));
  ASSERT_TRUE(reset != nullptr && reset->type == REDIS_REPLY_STATUS)
      << (reset != nullptr && reset->str != nullptr ? reset->str : "no answer");
  freeReplyObject(reset);
  // The store's pooled connections are dropped (as a failover or restart would).
  ASSERT_GE(Command({"CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"}), 1);
  store_->Ping().IgnoreError();  // may fail on the killed connection
  EXPECT_TRUE(store_->Ping().ok()) << "a new one";
  EXPECT_EQ(Command({"XADD", key, "150-0", "e", "x"}), -999) << "below the floor";
  EXPECT_EQ(Command({"XADD", key, "200-1", "e", "x"}), -999) << "the lost id itself";
  absl::StatusOr<bool> resumable = store_->CanResumeFrom("200-1");
  ASSERT_TRUE(resumable.ok()) << resumable.status();
  EXPECT_FALSE(*resumable);
}

// Durability (RedisConfig::min_replica_acks) on servers of the test's own: a lone redis-server, so
// every WAIT falls short, or one with a replica, so it does not.
class RedisDurabilityTest : public ::testing::Test {
 protected:
  static std::unique_ptr<RedisStore> StoreOn(int port, int min_replica_acks,
                                             absl::Duration ack_timeout = absl::Milliseconds(100)) {
    RedisConfig config;
    config.url = absl::StrCat("redis://127.0.0.1:", port, "/0");
    config.key_prefix = absl::StrCat(TestName(), ":");
    config.min_replica_acks = min_replica_acks;
    config.replica_ack_timeout = ack_timeout;
    return std::make_unique<RedisStore>(config);
  }

  // A command's answer as text (an error's message too); "" when there is none.
  static std::string Command(int port, const std::vector<std::string>& args) {
    redisContext* context = redisConnect("127.0.0.1", port);
    if (context == nullptr || context->err != 0) {
      if (context != nullptr) redisFree(context);
      return "";
    }
    std::vector<const char*> argv;
    std::vector<size_t> lengths;
    for (const std::string& arg : args) {
      argv.push_back(arg.data());
      lengths.push_back(arg.size());
    }
    auto* reply = static_cast<redisReply*>(
        redisCommandArgv(context, static_cast<int>(args.size()), argv.data(), lengths.data()));
    std::string text;
    if (reply != nullptr && reply->str != nullptr) text.assign(reply->str, reply->len);
    if (reply != nullptr && reply->type == REDIS_REPLY_INTEGER)
      text = std::to_string(reply->integer);
    freeReplyObject(reply);
    redisFree(context);
    return text;
  }

  // A primary with one replica, waited for until a write reaches it.
  void StartReplicated() {
    absl::StatusOr<testing::TestRedis> primary = testing::StartTestRedis(REDIS_SERVER_PATH);
    ASSERT_TRUE(primary.ok()) << primary.status();
    primary_ = std::make_unique<testing::TestRedis>(*std::move(primary));
    absl::StatusOr<testing::TestRedis> replica = testing::StartTestRedis(
        REDIS_SERVER_PATH, {"--replicaof", "127.0.0.1", std::to_string(primary_->port)});
    ASSERT_TRUE(replica.ok()) << replica.status();
    replica_ = std::make_unique<testing::TestRedis>(*std::move(replica));
    const absl::Time give_up = absl::Now() + absl::Seconds(20);
    while (absl::Now() < give_up) {
      Command(primary_->port, {"SET", "sync", "1"});
      if (Command(primary_->port, {"WAIT", "1", "200"}) == "1") return;
    }
    FAIL() << "the replica never caught up";
  }

  void StartLone(const std::vector<std::string>& args = {}) {
    absl::StatusOr<testing::TestRedis> lone = testing::StartTestRedis(REDIS_SERVER_PATH, args);
    ASSERT_TRUE(lone.ok()) << lone.status();
    primary_ = std::make_unique<testing::TestRedis>(*std::move(lone));
  }

  // A debit claimed and over (its flight deadline passed), as a retry finds it.
  static void ClaimOver(Store& store, const std::string& id) {
    absl::StatusOr<BeginResult> begun = store.Begin(
        Debit(id, 500), "fp", absl::Now() - absl::Seconds(1), absl::Now() + absl::Minutes(1));
    ASSERT_TRUE(begun.ok()) << begun.status();
    ASSERT_TRUE(begun->created);
  }

  // A debit claimed and still in flight, as Apply finds it when the gateway has answered.
  static void ClaimInFlight(Store& store, const std::string& id) {
    absl::StatusOr<BeginResult> begun = store.Begin(
        Debit(id, 500), "fp", absl::Now() + absl::Minutes(1), absl::Now() + absl::Minutes(1));
    ASSERT_TRUE(begun.ok()) << begun.status();
    ASSERT_TRUE(begun->created);
  }

  // The gateway's answer to a debit: PENDING, the call over.
  static Report GatewayAnswer() {
    Report report;
    report.status = v1::TRANSACTION_STATUS_PENDING;
    report.source = v1::EVENT_SOURCE_RPC;
    report.ends_flight = true;
    return report;
  }

  // The name of the one key of this test's under `pattern` (after the test's prefix), "" if none.
  std::string KeyOf(const std::string& pattern) {
    return Command(primary_->port, {"EVAL", "return redis.call('KEYS', ARGV[1])[1]", "0",
                                    absl::StrCat(TestName(), ":", pattern)});
  }

  // Stops the replica's process (SIGSTOP) until the returned guard goes away: it stays connected
  // and online to the primary, acknowledging nothing new.
  auto StopReplica() {
    const pid_t pid = replica_->process->pid();
    EXPECT_EQ(kill(pid, SIGSTOP), 0);
    auto resume = [pid](void*) { kill(pid, SIGCONT); };
    return std::unique_ptr<void, decltype(resume)>(reinterpret_cast<void*>(1), resume);
  }

  static v1::Transaction Refund(const std::string& id, const std::string& original) {
    v1::Transaction refund = Debit(id, 100);
    refund.set_type(v1::TRANSACTION_TYPE_REFUND);
    refund.set_original_merchant_transaction_id(original);
    return refund;
  }

  std::unique_ptr<testing::TestRedis> primary_;
  std::unique_ptr<testing::TestRedis> replica_;
};

// A retry answered from the stored record acknowledges it as much as the first answer did: with no
// replica to acknowledge what is stored, it is UNAVAILABLE rather than an answer a failover could
// take back. A claim still in flight (answered ABORTED) waits for nothing.
TEST_F(RedisDurabilityTest, ARetryOfAClaimedIdWaitsForReplicas) {
  ASSERT_NO_FATAL_FAILURE(StartLone());
  std::unique_ptr<RedisStore> unreplicated = StoreOn(primary_->port, 0);
  std::unique_ptr<RedisStore> durable = StoreOn(primary_->port, 1);
  ASSERT_NO_FATAL_FAILURE(ClaimOver(*unreplicated, "d1"));
  absl::StatusOr<BeginResult> retried = durable->Begin(
      Debit("d1", 500), "fp", absl::Now() + absl::Seconds(10), absl::Now() + absl::Minutes(1));
  EXPECT_TRUE(absl::IsUnavailable(retried.status())) << retried.status();

  ASSERT_TRUE(unreplicated
                  ->BeginRefund(Refund("r1", "d1"), "fp", absl::Now() - absl::Seconds(1),
                                absl::Now() + absl::Minutes(1), RefundCap::kRecordBeyond)
                  .ok());
  absl::StatusOr<BeginResult> refund_retried =
      durable->BeginRefund(Refund("r1", "d1"), "fp", absl::Now() + absl::Seconds(10),
                           absl::Now() + absl::Minutes(1), RefundCap::kEnforce);
  EXPECT_TRUE(absl::IsUnavailable(refund_retried.status())) << refund_retried.status();

  ASSERT_TRUE(unreplicated
                  ->Begin(Debit("d2", 500), "fp", absl::Now() + absl::Minutes(1),
                          absl::Now() + absl::Minutes(1))
                  .ok());
  absl::StatusOr<BeginResult> in_flight = durable->Begin(
      Debit("d2", 500), "fp", absl::Now() + absl::Seconds(10), absl::Now() + absl::Minutes(1));
  ASSERT_TRUE(in_flight.ok()) << in_flight.status();
  EXPECT_TRUE(in_flight->in_flight);
}

TEST_F(RedisDurabilityTest, AReplayedSightingAndASpendReservationWaitForReplicas) {
  ASSERT_NO_FATAL_FAILURE(StartLone());
  std::unique_ptr<RedisStore> durable = StoreOn(primary_->port, 1);
  absl::StatusOr<Sighting> first = durable->SightCallback("sig", absl::Seconds(30));
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(*first, Sighting::kFirst) << "a first sighting acknowledges nothing yet";
  ASSERT_TRUE(durable->MarkCallbackHandled("sig", absl::Minutes(2)).ok());
  absl::StatusOr<Sighting> replay = durable->SightCallback("sig", absl::Seconds(30));
  EXPECT_TRUE(absl::IsUnavailable(replay.status())) << replay.status();

  absl::StatusOr<SpendResult> spend =
      durable->ReserveSpend("shop", "CreateRtp", 100, 1000, absl::Minutes(5));
  EXPECT_TRUE(absl::IsUnavailable(spend.status())) << spend.status();
  absl::StatusOr<SpendResult> refused =
      durable->ReserveSpend("shop", "CreateRtp", 5000, 1000, absl::Minutes(5));
  ASSERT_TRUE(refused.ok()) << refused.status();
  EXPECT_FALSE(refused->granted);
}

// The same with a replica: each is answered.
TEST_F(RedisDurabilityTest, WithAReplicaRepeatsAreAnswered) {
  ASSERT_NO_FATAL_FAILURE(StartReplicated());
  std::unique_ptr<RedisStore> durable = StoreOn(primary_->port, 1, absl::Seconds(2));
  ASSERT_NO_FATAL_FAILURE(ClaimOver(*durable, "d1"));
  absl::StatusOr<BeginResult> retried = durable->Begin(
      Debit("d1", 500), "fp", absl::Now() + absl::Seconds(10), absl::Now() + absl::Minutes(1));
  ASSERT_TRUE(retried.ok()) << retried.status();
  EXPECT_FALSE(retried->created);
  ASSERT_TRUE(durable
                  ->BeginRefund(Refund("r1", "d1"), "fp", absl::Now() - absl::Seconds(1),
                                absl::Now() + absl::Minutes(1), RefundCap::kRecordBeyond)
                  .ok());
  absl::StatusOr<BeginResult> refund_retried =
      durable->BeginRefund(Refund("r1", "d1"), "fp", absl::Now() + absl::Seconds(10),
                           absl::Now() + absl::Minutes(1), RefundCap::kEnforce);
  ASSERT_TRUE(refund_retried.ok()) << refund_retried.status();
  EXPECT_FALSE(refund_retried->created);
  ASSERT_EQ(durable->SightCallback("sig", absl::Seconds(30)).value_or(Sighting::kHandled),
            Sighting::kFirst);
  ASSERT_TRUE(durable->MarkCallbackHandled("sig", absl::Minutes(2)).ok());
  absl::StatusOr<Sighting> replay = durable->SightCallback("sig", absl::Seconds(30));
  ASSERT_TRUE(replay.ok()) << replay.status();
  EXPECT_EQ(*replay, Sighting::kHandled);
  absl::StatusOr<SpendResult> spend =
      durable->ReserveSpend("shop", "CreateRtp", 100, 1000, absl::Minutes(5));
  ASSERT_TRUE(spend.ok()) << spend.status();
  EXPECT_TRUE(spend->granted);
}

// Apply stores a gateway's answer, which the RPC then acknowledges: with no replica to take it,
// UNAVAILABLE ("not yet durable"; the record stays stored, for the reconciler). A repeat of the
// same report finds nothing to store, yet acknowledges what is stored just as much: UNAVAILABLE
// too, never an answer a failover could take back.
TEST_F(RedisDurabilityTest, AnAppliedAnswerAndItsRepeatWaitForReplicas) {
  ASSERT_NO_FATAL_FAILURE(StartLone());
  std::unique_ptr<RedisStore> unreplicated = StoreOn(primary_->port, 0);
  std::unique_ptr<RedisStore> durable = StoreOn(primary_->port, 1);
  ASSERT_NO_FATAL_FAILURE(ClaimInFlight(*unreplicated, "d1"));
  absl::StatusOr<ApplyResult> first = durable->Apply("d1", GatewayAnswer());
  EXPECT_TRUE(absl::IsUnavailable(first.status())) << first.status();
  absl::StatusOr<v1::Transaction> stored = unreplicated->Get("d1");
  ASSERT_TRUE(stored.ok()) << stored.status();
  ASSERT_EQ(stored->status(), v1::TRANSACTION_STATUS_PENDING) << "stored all the same";

  absl::StatusOr<ApplyResult> repeat = durable->Apply("d1", GatewayAnswer());
  EXPECT_TRUE(absl::IsUnavailable(repeat.status())) << repeat.status();
  // The same repeat without the wait: answered, and nothing changed (the repeat's path).
  absl::StatusOr<ApplyResult> unwaited = unreplicated->Apply("d1", GatewayAnswer());
  ASSERT_TRUE(unwaited.ok()) << unwaited.status();
  EXPECT_FALSE(unwaited->status_changed);
  EXPECT_TRUE(unwaited->event_cursor.empty());
}

// The handled mark rides in the outcome's MULTI/EXEC, so the one WAIT after it covers both: with
// no replica to take them, UNAVAILABLE (the caller forgets the sighting), both stored all the same,
// never the mark without the outcome.
TEST_F(RedisDurabilityTest, AnApplyThatMarksWaitsOnceForOutcomeAndMark) {
  ASSERT_NO_FATAL_FAILURE(StartLone());
  std::unique_ptr<RedisStore> unreplicated = StoreOn(primary_->port, 0);
  std::unique_ptr<RedisStore> durable = StoreOn(primary_->port, 1);
  ASSERT_NO_FATAL_FAILURE(ClaimInFlight(*unreplicated, "d1"));
  ASSERT_EQ(unreplicated->SightCallback("sig", absl::Seconds(30)).value_or(Sighting::kHandled),
            Sighting::kFirst);
  absl::StatusOr<ApplyResult> first = durable->ApplyCallback("d1", GatewayAnswer(), Mark("sig"));
  EXPECT_TRUE(absl::IsUnavailable(first.status())) << first.status();
  absl::StatusOr<v1::Transaction> stored = unreplicated->Get("d1");
  ASSERT_TRUE(stored.ok()) << stored.status();
  EXPECT_EQ(stored->status(), v1::TRANSACTION_STATUS_PENDING);
  EXPECT_EQ(Command(primary_->port, {"GET", KeyOf("seen:*")}), "handled");
}

TEST_F(RedisDurabilityTest, WithAReplicaAnAppliedAnswerAndItsRepeatAreAnswered) {
  ASSERT_NO_FATAL_FAILURE(StartReplicated());
  std::unique_ptr<RedisStore> durable = StoreOn(primary_->port, 1, absl::Seconds(2));
  ASSERT_NO_FATAL_FAILURE(ClaimInFlight(*durable, "d1"));
  absl::StatusOr<ApplyResult> first = durable->Apply("d1", GatewayAnswer());
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_TRUE(first->status_changed);
  EXPECT_EQ(first->transaction.status(), v1::TRANSACTION_STATUS_PENDING);
  absl::StatusOr<ApplyResult> repeat = durable->Apply("d1", GatewayAnswer());
  ASSERT_TRUE(repeat.ok()) << repeat.status();
  EXPECT_FALSE(repeat->status_changed);
  EXPECT_EQ(repeat->transaction.status(), v1::TRANSACTION_STATUS_PENDING);
}

// A replayed sighting writes the key before it waits, whatever its state (here: a mark without an
// expiry, which it keeps so), so that WAIT covers the first handler's writes. The replica is
// stopped before the first handler's mark: it stays online to the primary but acknowledges nothing
// new. What this can and cannot show: Redis 7.2 and later count WAIT up to the connection's own
// last propagated write, so a fresh connection that only read would be answered at once there;
// the Redis 7.0 these tests run on (Debian bookworm's) moves the connection's offset to the
// primary's latest after any command, so here the case passes without the write too (checked),
// and it pins what the replay leaves behind.
TEST_F(RedisDurabilityTest, AReplayedSightingWritesBeforeItWaits) {
  ASSERT_NO_FATAL_FAILURE(StartReplicated());
  std::unique_ptr<RedisStore> first = StoreOn(primary_->port, 1, absl::Milliseconds(300));
  ASSERT_EQ(first->SightCallback("sig", absl::Seconds(30)).value_or(Sighting::kHandled),
            Sighting::kFirst);
  const std::string key = KeyOf("seen:*");
  ASSERT_FALSE(key.empty());
  {
    auto stopped = StopReplica();
    ASSERT_EQ(Command(primary_->port, {"SET", key, "handled"}), "OK");
    // A store that has written nothing on its connection yet.
    std::unique_ptr<RedisStore> replayed = StoreOn(primary_->port, 1, absl::Milliseconds(300));
    absl::StatusOr<Sighting> replay = replayed->SightCallback("sig", absl::Seconds(30));
    EXPECT_TRUE(absl::IsUnavailable(replay.status()))
        << (replay.ok() ? "answered as handled before the replica had the mark" : "")
        << replay.status();
  }
  std::unique_ptr<RedisStore> resumed = StoreOn(primary_->port, 1, absl::Seconds(2));
  absl::StatusOr<Sighting> replay = resumed->SightCallback("sig", absl::Seconds(30));
  ASSERT_TRUE(replay.ok()) << replay.status();
  EXPECT_EQ(*replay, Sighting::kHandled);
  EXPECT_EQ(Command(primary_->port, {"GET", key}), "handled");
  EXPECT_EQ(Command(primary_->port, {"PTTL", key}), "-1") << "no expiry given where none was";
}

// Through Sentinel, a WAIT short of replicas on a server that still says it is the primary (ROLE)
// fails that call only: the pool is kept and the generation stays (a move to the next would drop
// every connection and set the event hub's reads aside for one slow replica). The "sentinel" is a
// redis-server in sentinel mode watching the test's primary.
TEST_F(RedisDurabilityTest, AWaitShortOfReplicasOnThePrimaryKeepsThePool) {
  ASSERT_NO_FATAL_FAILURE(StartReplicated());
  std::string dir = (std::filesystem::temp_directory_path() / "flikpay-store-XXXXXX").string();
  ASSERT_NE(mkdtemp(dir.data()), nullptr);
  std::unique_ptr<testing::ChildProcess> sentinel;
  int sentinel_port = 0;
  for (int attempt = 0; attempt < 5 && sentinel == nullptr; ++attempt) {
    sentinel_port = testing::FreeLoopbackPort();
    const std::string config = absl::StrCat(dir, "/sentinel.conf");
    std::ofstream(config) << "port " << sentinel_port << "\nbind 127.0.0.1\ndir " << dir
                          << "\nsentinel monitor m 127.0.0.1 " << primary_->port << " 1\n";
    std::string line;
    absl::StatusOr<std::unique_ptr<testing::ChildProcess>> started = testing::ChildProcess::Start(
        {REDIS_SERVER_PATH, config, "--sentinel"}, "+monitor master", &line);
    if (started.ok()) sentinel = *std::move(started);
  }
  ASSERT_NE(sentinel, nullptr) << "redis-server --sentinel did not start";

  RedisConfig config;
  config.url = absl::StrCat("redis-sentinel://127.0.0.1:", sentinel_port, "/m");
  config.key_prefix = absl::StrCat(TestName(), ":");
  config.min_replica_acks = 1;
  config.replica_ack_timeout = absl::Milliseconds(300);
  RedisStore store(config);
  ASSERT_NO_FATAL_FAILURE(ClaimOver(store, "d0"));
  const uint64_t generation = store.PrimaryGeneration();
  {
    auto stopped = StopReplica();
    absl::StatusOr<BeginResult> short_of_replicas = store.Begin(
        Debit("d1", 500), "fp", absl::Now() + absl::Seconds(10), absl::Now() + absl::Minutes(1));
    EXPECT_TRUE(absl::IsUnavailable(short_of_replicas.status())) << short_of_replicas.status();
    EXPECT_EQ(store.PrimaryGeneration(), generation) << "the primary is still the primary";
  }
  ASSERT_NO_FATAL_FAILURE(ClaimOver(store, "d2"));
  EXPECT_EQ(store.PrimaryGeneration(), generation);
  sentinel.reset();
  std::filesystem::remove_all(dir);
}

// A primary refusing writes for want of replicas (min-replicas-to-write) is not a usable one:
// UNAVAILABLE, as an unreachable Redis, never INTERNAL.
TEST_F(RedisDurabilityTest, NoReplicasToWriteIsUnavailable) {
  ASSERT_NO_FATAL_FAILURE(StartLone({"--min-replicas-to-write", "1"}));
  std::unique_ptr<RedisStore> store = StoreOn(primary_->port, 0);
  absl::StatusOr<BeginResult> begun = store->Begin(
      Debit("d1", 500), "fp", absl::Now() + absl::Seconds(10), absl::Now() + absl::Minutes(1));
  EXPECT_TRUE(absl::IsUnavailable(begun.status())) << begun.status();
  EXPECT_TRUE(absl::StrContains(begun.status().message(), "NOREPLICAS")) << begun.status();
  absl::StatusOr<Sighting> sighting = store->SightCallback("sig", absl::Seconds(30));
  EXPECT_TRUE(absl::IsUnavailable(sighting.status())) << sighting.status();
}

// A WAIT that a demotion ends (REPLICAOF) answers UNBLOCKED: UNAVAILABLE at once, not after the
// wait.
TEST_F(RedisDurabilityTest, AWaitUnblockedByADemotionIsUnavailable) {
  ASSERT_NO_FATAL_FAILURE(StartLone());
  std::unique_ptr<RedisStore> durable = StoreOn(primary_->port, 1, absl::Seconds(20));
  const absl::Time started = absl::Now();
  std::thread demote([&] {
    absl::SleepFor(absl::Milliseconds(300));
    // A replica of nothing reachable: a demoted primary.
    Command(primary_->port, {"REPLICAOF", "127.0.0.1", "1"});
  });
  absl::StatusOr<BeginResult> begun = durable->Begin(
      Debit("d1", 500), "fp", absl::Now() + absl::Seconds(10), absl::Now() + absl::Minutes(1));
  demote.join();
  EXPECT_TRUE(absl::IsUnavailable(begun.status())) << begun.status();
  EXPECT_LT(absl::Now() - started, absl::Seconds(10));
  Command(primary_->port, {"REPLICAOF", "NO", "ONE"});
  EXPECT_TRUE(durable->Ping().ok()) << "a new connection, the unblocked one not reused";
}

// The window sliding, on a clock the test moves (the in-memory store's; Redis' cannot be moved).
TEST(InMemorySpendTest, TheWindowSlidesByTheMinute) {
  testing::InMemoryStore store;
  // 30 s into a minute.
  absl::Time now = absl::FromUnixSeconds(1'800'000'000 / 60 * 60 + 30);
  store.SetSpendClock([&now] { return now; });
  auto reserve = [&](int64_t amount) {
    return store.ReserveSpend("shop", "CreateRtp", amount, 100, absl::Minutes(2))
        .value_or(SpendResult{});
  };
  const SpendResult first = reserve(100);
  ASSERT_TRUE(first.granted);
  EXPECT_EQ(first.reserved_at, now);
  now += absl::Seconds(90);
  const SpendResult second = reserve(60);
  EXPECT_FALSE(second.granted);
  EXPECT_EQ(second.spent_minor, 100);
  // The first minute counts until the window has wholly left it: two minutes after its end.
  now = first.reserved_at + absl::Seconds(149);
  EXPECT_FALSE(reserve(1).granted);
  now = first.reserved_at + absl::Seconds(150);
  const SpendResult third = reserve(60);
  EXPECT_TRUE(third.granted);
  EXPECT_EQ(third.spent_minor, 0);
  // A release of the first, now out of the window, gives nothing back.
  ASSERT_TRUE(
      store.ReleaseSpend("shop", "CreateRtp", 100, first.reserved_at, absl::Minutes(2)).ok());
  EXPECT_FALSE(reserve(41).granted);
  EXPECT_TRUE(reserve(40).granted);
}

}  // namespace
}  // namespace flikpay::store
