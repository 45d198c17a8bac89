// The event hub (one XREAD reader per flikpay replica) against a real redis-server that is killed
// and comes back without the events the hub had read, as a failover to a replica that never
// received them would: the hub must not go on reading after the lost event (skipping what the new
// Redis holds below it), but from the new end, ending the streams it feeds so they resume from
// their own cursors.
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/cursor.h"
#include "gtest/gtest.h"
#include "server/event_hub.h"
#include "server/metrics.h"
#include "store/record_codec.h"
#include "store/redis_store.h"
#include "tests/support/test_redis.h"
#include "tests/support/test_sentinel.h"

namespace flikpay::server {
namespace {

class RecordingSink : public EventSink {
 public:
  void Offer(const v1::StatusEvent& event) override {
    absl::MutexLock lock(&mutex_);
    cursors_.push_back(event.cursor());
  }
  void Abort(const std::string& why) override {
    absl::MutexLock lock(&mutex_);
    aborted_ = why;
  }
  std::vector<std::string> cursors() {
    absl::MutexLock lock(&mutex_);
    return cursors_;
  }
  std::string aborted() {
    absl::MutexLock lock(&mutex_);
    return aborted_;
  }
  // Waits until `done` holds, up to 10 s.
  template <typename Condition>
  bool Await(Condition done) {
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (absl::Now() < deadline) {
      if (done(*this)) return true;
      absl::SleepFor(absl::Milliseconds(20));
    }
    return done(*this);
  }

 private:
  absl::Mutex mutex_;
  std::vector<std::string> cursors_ ABSL_GUARDED_BY(mutex_);
  std::string aborted_ ABSL_GUARDED_BY(mutex_);
};

std::unique_ptr<store::RedisStore> NewStore(int port) {
  store::RedisConfig config;
  config.url = absl::StrCat("redis://127.0.0.1:", port, "/0");
  config.key_prefix = "hub-test:";
  config.connect_timeout = absl::Milliseconds(200);
  config.command_timeout = absl::Seconds(1);
  return std::make_unique<store::RedisStore>(config);
}

// Claims the debit `id` and stores the gateway's PENDING: one event; its cursor.
std::string PendingEvent(store::RedisStore& store, const std::string& id) {
  v1::Transaction debit;
  debit.set_merchant_transaction_id(id);
  debit.set_type(v1::TRANSACTION_TYPE_DEBIT);
  debit.set_status(v1::TRANSACTION_STATUS_UNKNOWN);
  debit.set_amount_minor(500);
  debit.set_currency("EUR");
  debit.set_created_by("checkout");
  absl::StatusOr<store::BeginResult> begun = store.Begin(
      debit, "fingerprint", absl::Now() + absl::Seconds(10), absl::Now() + absl::Minutes(1));
  EXPECT_TRUE(begun.ok()) << begun.status();
  store::Report report;
  report.status = v1::TRANSACTION_STATUS_PENDING;
  report.source = v1::EVENT_SOURCE_RPC;
  report.ends_flight = true;
  absl::StatusOr<store::ApplyResult> applied = store.Apply(id, report);
  EXPECT_TRUE(applied.ok()) << applied.status();
  return applied.ok() ? applied->event_cursor : "";
}

TEST(EventHubFailoverTest, AfterLosingTheEventsItReadTheHubReadsOnFromTheNewEndWithoutAGap) {
  absl::StatusOr<testing::TestRedis> redis = testing::StartTestRedis(REDIS_SERVER_PATH);
  ASSERT_TRUE(redis.ok()) << redis.status();
  const int port = redis->port;
  std::unique_ptr<store::RedisStore> hub_store = NewStore(port);
  std::unique_ptr<store::RedisStore> writer = NewStore(port);
  Metrics metrics;
  EventHub hub(*hub_store, metrics);
  auto before = std::make_shared<RecordingSink>();
  hub.Register(before);
  hub.Start();
  absl::SleepFor(absl::Milliseconds(300));  // the hub has found the (empty) stream's end

  const std::string first = PendingEvent(*writer, "first");
  const std::string second = PendingEvent(*writer, "second");
  ASSERT_TRUE(before->Await([&](RecordingSink& s) { return s.cursors().size() == 2; }));
  EXPECT_EQ(before->cursors(), (std::vector<std::string>{first, second}));

  // The Redis dies and one without the events takes its place (no persistence here: empty).
  redis->process->Kill();
  ASSERT_TRUE(before->Await([](RecordingSink& s) { return !s.aborted().empty(); }));
  std::string line;
  absl::StatusOr<std::unique_ptr<testing::ChildProcess>> again =
      testing::ChildProcess::Start({REDIS_SERVER_PATH, "--port", std::to_string(port), "--bind",
                                    "127.0.0.1", "--save", "", "--appendonly", "no"},
                                   "Ready to accept connections", &line);
  ASSERT_TRUE(again.ok()) << again.status();
  // The hub reconnects within a few of its 200 ms retries.
  absl::SleepFor(absl::Seconds(2));
  auto after = std::make_shared<RecordingSink>();
  hub.Register(after);

  // An event below the lost one, as a new primary whose clock is behind writes it (the stream is
  // gone altogether, so no floor was raised: see the README). A hub reading on after `second`
  // would skip it, silently.
  const std::optional<core::Cursor> lost = core::ParseCursor(second);
  ASSERT_TRUE(lost.has_value());
  const std::string below = absl::StrCat(lost->milliseconds - 1, "-0");
  v1::StatusEvent event;
  event.mutable_transaction()->set_merchant_transaction_id("below");
  event.mutable_transaction()->set_status(v1::TRANSACTION_STATUS_SUCCESS);
  event.set_previous_status(v1::TRANSACTION_STATUS_PENDING);
  ASSERT_EQ(
      testing::AskRedis(port, {"XADD", "hub-test:events", below, "e", store::EncodeEvent(event)}),
      below);
  writer->Ping().IgnoreError();  // its pooled connection to the dead Redis fails once
  const std::string next = PendingEvent(*writer, "next");
  ASSERT_TRUE(after->Await([](RecordingSink& s) { return s.cursors().size() >= 2; }))
      << "the hub delivered " << after->cursors().size() << " event(s) after the failover";
  EXPECT_EQ(after->cursors(), (std::vector<std::string>{below, next}));
  EXPECT_TRUE(core::CursorBefore(second, next)) << "the writer's ids stay above what it saw";
  EXPECT_EQ(after->aborted(), "");
  hub.Shutdown();
}

}  // namespace
}  // namespace flikpay::server
