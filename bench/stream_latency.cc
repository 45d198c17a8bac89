// stream-latency: how long a status change takes from Bankart's callback to StreamStatus
// subscribers, with many streams open that do not watch it (issue 15).
//
// Against one or two flikpay-server replicas on the same Redis (plaintext, --insecure_dev), whose
// bankart-sim holds its own callbacks back (--scenario_delay=1h), it:
//  1. creates rate x seconds PENDING Out-of-Band transactions per phase through gRPC (as
//     callback-bench does);
//  2. opens the watchers: --own_watchers streams each watching its own share of those ids (id j
//     is watched by watcher j % own_watchers) and --all_watchers streams watching everything, half
//     of each on A and half on B (all on A without --grpc_b), with gRPC's callback API, at most
//     --per_connection streams per connection;
//  3. baseline phase (--baseline): sends Bankart-signed SUCCESS callbacks for the first phase's
//     transactions at --rate to A's callback port, and records for every event each watcher
//     receives: receive time - the callback's send time (one process, one steady clock);
//  4. opens the idle streams, the rest of --streams, each watching one id of its own that is never
//     written (so they do not watch the events), split between A and B like the watchers (or all
//     on A with --idle_on_a);
//  5. loaded phase: the same with the second phase's transactions.
// A watched event not received within --miss_after_seconds of its callback counts as missed. The
// log breaks the latencies down by kind of watcher and by the second the callback was sent (a
// stall of the shared machine shows as one bad second), and gives each phase's server CPU.
//
// Human log on stderr; result rows on stdout: ROW|goal|measured|baseline|ratio|target|verdict, the
// baseline being the same figure in the baseline phase (only the watchers open).
#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bench/load.h"
#include "bench/rows.h"
#include "flikpay/v1/payment_service.grpc.pb.h"
#include "gateway/money.h"
#include "gateway/signing.h"
#include "nlohmann/json.hpp"
#include "tests/support/raw_http.h"

ABSL_FLAG(std::string, grpc_a, "127.0.0.1:50051", "replica A's gRPC address (insecure_dev)");
ABSL_FLAG(std::string, grpc_b, "", "replica B's gRPC address (same Redis); empty: only A");
ABSL_FLAG(int, callback_port_a, 8080, "replica A's callback port on 127.0.0.1");
ABSL_FLAG(int, admin_a, 0,
          "replica A's admin port on 127.0.0.1: wait for its flikpay_streams_open after opening "
          "streams (0: wait --settle_seconds instead)");
ABSL_FLAG(int, admin_b, 0, "replica B's admin port, as --admin_a");
ABSL_FLAG(double, settle_seconds, 3, "without admin ports: how long to wait for streams to open");
ABSL_FLAG(int, pid_a, 0, "replica A's process id: its CPU time per callback (optional)");
ABSL_FLAG(int, pid_b, 0, "replica B's process id: its CPU time per callback (optional)");
ABSL_FLAG(int, redis_pid, 0, "redis-server's process id: its CPU time per phase, in the log");
ABSL_FLAG(int, streams, 10000, "streams open in the loaded phase, watchers included");
ABSL_FLAG(int, own_watchers, 1000, "streams watching their own transactions' ids");
ABSL_FLAG(int, all_watchers, 10, "streams watching everything");
ABSL_FLAG(bool, idle_on_a, false,
          "open every idle stream on A (default: split between A and B like the watchers)");
ABSL_FLAG(int, rate, 1000, "callbacks per second");
ABSL_FLAG(double, seconds, 10, "callbacks are sent for this long in each phase");
ABSL_FLAG(bool, baseline, true, "measure first with only the watchers open");
ABSL_FLAG(std::string, secret, "sim-out-of-band-secret", "the Out-of-Band connector's secret");
ABSL_FLAG(int, per_connection, 90, "streams per connection (the server allows 100 by default)");
ABSL_FLAG(int, senders, 4, "callback-sending threads, one keep-alive connection each");
ABSL_FLAG(double, miss_after_seconds, 5,
          "a watched event not received this long after its callback was sent is missed");
ABSL_FLAG(std::string, prefix, "", "merchant transaction id prefix (default: from the clock)");
ABSL_FLAG(double, target_p50_ms, 2, "goal: p50 on the replica that took the callback");
ABSL_FLAG(double, target_p99_ms, 10, "goal: p99 on the replica that took the callback");
ABSL_FLAG(double, target_cross_p99_ms, 15, "goal: p99 on the other replica");
ABSL_FLAG(double, max_cpu_growth, 1.5,
          "goal 3's \"an event's cost must not grow with the streams that do not watch it\": each "
          "server's CPU per callback with the idle streams open at most this many times that "
          "with only the watchers open (a hub offering every event to every stream costs "
          "several times more at 10,000 streams)");

namespace {

using flikpay::v1::PaymentService;
using flikpay::v1::StatusEvent;
using flikpay::v1::StreamStatusRequest;
using flikpay::v1::Transaction;

int64_t SteadyMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// What every watcher shares: the transactions (read-only once streams open) and when each one's
// callback was sent.
struct Shared {
  std::vector<std::string> ids;
  absl::flat_hash_map<std::string, int> index;      // id -> j
  std::unique_ptr<std::atomic<int64_t>[]> sent_us;  // steady micros; 0: not sent yet
  int per_phase = 0;
  std::atomic<int64_t> received[2] = {0, 0};  // deliveries per phase
  std::atomic<int64_t> strays{0};             // events of ids not ours, or before their callback
  std::atomic<int> ended{0};                  // streams that ended (any kind)
};

struct Receipt {
  int j;
  int64_t latency_us;
};

// A subscriber that measures: each event's delay since its callback was sent.
class Watcher final : public grpc::ClientReadReactor<StatusEvent> {
 public:
  Watcher(PaymentService::Stub& stub, StreamStatusRequest request, Shared& shared, int replica,
          int own_index)
      : request_(std::move(request)), shared_(shared), replica_(replica), own_index_(own_index) {
    stub.async()->StreamStatus(&context_, &request_, this);
    StartRead(&event_);
    StartCall();
  }
  void Cancel() { context_.TryCancel(); }
  void OnReadDone(bool ok) override {
    if (!ok) return;
    const int64_t now = SteadyMicros();
    auto it = shared_.index.find(event_.transaction().merchant_transaction_id());
    const int64_t sent =
        it == shared_.index.end() ? 0 : shared_.sent_us[it->second].load(std::memory_order_acquire);
    if (sent == 0 || event_.transaction().status() != flikpay::v1::TRANSACTION_STATUS_SUCCESS) {
      ++shared_.strays;
    } else {
      {
        absl::MutexLock lock(&mutex_);
        receipts_.push_back({it->second, now - sent});
      }
      ++shared_.received[std::min(1, it->second / shared_.per_phase)];
    }
    StartRead(&event_);
  }
  void OnDone(const grpc::Status& status) override {
    {
      absl::MutexLock lock(&mutex_);
      status_ = status;
      done_ = true;
    }
    ++shared_.ended;
  }

  int replica() const { return replica_; }
  int own_index() const { return own_index_; }  // -1: watches everything
  std::vector<Receipt> receipts() {
    absl::MutexLock lock(&mutex_);
    return receipts_;
  }
  bool done(grpc::Status* status) {
    absl::MutexLock lock(&mutex_);
    if (done_ && status != nullptr) *status = status_;
    return done_;
  }

 private:
  grpc::ClientContext context_;
  const StreamStatusRequest request_;
  StatusEvent event_;
  Shared& shared_;
  const int replica_;
  const int own_index_;
  absl::Mutex mutex_;
  std::vector<Receipt> receipts_ ABSL_GUARDED_BY(mutex_);
  grpc::Status status_ ABSL_GUARDED_BY(mutex_);
  bool done_ ABSL_GUARDED_BY(mutex_) = false;
};

// Out-of-Band requests to pay, created 16 at a time; false when any failed.
bool CreatePending(const std::string& address, Shared& shared, std::vector<Transaction>& created) {
  int failed = 0;
  std::string first_error;
  created = flikpay::bench::CreatePendingRtps(address, shared.ids, 16, &failed, &first_error);
  if (failed > 0) {
    std::fprintf(stderr, "stream-latency: %d creates failed, the first: %s\n", failed,
                 first_error.c_str());
  }
  return failed == 0;
}

struct PhaseResult {
  bool ran = false;
  int events = 0;
  int callbacks_accepted = 0;
  int callbacks_failed = 0;
  std::vector<int64_t> callback_us;     // the callback's HTTP answer time
  std::vector<int64_t> latency_us[2];   // by replica of the subscriber: 0 = A (same), 1 = B
  std::vector<int64_t> own_us, all_us;  // by kind of subscriber
  int64_t deliveries = 0;               // received in time, first copies
  int64_t missed = 0;
  int64_t duplicates = 0;
  int64_t unexpected = 0;                       // events of ids the subscriber does not watch
  std::vector<std::vector<int64_t>> by_second;  // latencies by the second their callback was due
  double cpu_redis = -1, cpu_self = -1;         // Redis and this process, in the log
  double cpu_a = -1, cpu_b = -1;                // server CPU seconds during the phase
  double seconds = 0;
};

// Sends the phase's callbacks at the rate, then waits for the deliveries (or the miss timeout).
void RunPhase(int phase, Shared& shared, const std::vector<Transaction>& created,
              int64_t expected_deliveries, PhaseResult& result) {
  const int rate = std::max(1, absl::GetFlag(FLAGS_rate));
  const int senders = std::max(1, absl::GetFlag(FLAGS_senders));
  const int first = phase * shared.per_phase;
  const int count = shared.per_phase;
  const absl::Duration miss_after = absl::Seconds(absl::GetFlag(FLAGS_miss_after_seconds));
  const int pid_a = absl::GetFlag(FLAGS_pid_a), pid_b = absl::GetFlag(FLAGS_pid_b);
  const double cpu_a = flikpay::bench::CpuSeconds(pid_a), cpu_b = flikpay::bench::CpuSeconds(pid_b);
  const int redis_pid = absl::GetFlag(FLAGS_redis_pid);
  const double cpu_redis = flikpay::bench::CpuSeconds(redis_pid);
  const double cpu_self = flikpay::bench::CpuSeconds(getpid());
  std::vector<std::vector<int64_t>> answer_us(senders);
  std::atomic<int> accepted{0}, failed{0};
  const absl::Time start = absl::Now();
  std::vector<std::thread> threads;
  for (int s = 0; s < senders; ++s) {
    threads.emplace_back([&, s] {
      std::unique_ptr<flikpay::testing::RawConnection> connection;
      for (int k = s; k < count; k += senders) {
        absl::SleepFor(start + absl::Seconds(1) * k / rate - absl::Now());
        const int j = first + k;
        const std::string request =
            flikpay::bench::SignedSuccessCallback(created[j], absl::GetFlag(FLAGS_secret));
        if (connection == nullptr) {
          auto opened = flikpay::testing::RawConnection::Open(absl::GetFlag(FLAGS_callback_port_a));
          if (!opened.ok()) {
            ++failed;
            continue;
          }
          connection = *std::move(opened);
        }
        const int64_t sent = SteadyMicros();
        shared.sent_us[j].store(sent, std::memory_order_release);
        absl::StatusOr<flikpay::testing::RawResponse> response =
            connection->Send(request) ? connection->Read(absl::Seconds(10))
                                      : absl::UnavailableError("send failed");
        answer_us[s].push_back(SteadyMicros() - sent);
        if (response.ok() && response->status == 200 && response->body == "OK") {
          ++accepted;
        } else {
          if (failed++ == 0) {
            std::fprintf(stderr, "stream-latency: a callback was not accepted: %s\n",
                         response.ok() ? absl::StrCat(response->status, " ", response->body).c_str()
                                       : std::string(response.status().message()).c_str());
          }
          if (!response.ok()) connection.reset();
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  const absl::Time sent_all = absl::Now();
  while (shared.received[phase].load() < expected_deliveries &&
         absl::Now() < sent_all + miss_after) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  result.seconds = absl::ToDoubleSeconds(absl::Now() - start);
  if (cpu_a >= 0) result.cpu_a = flikpay::bench::CpuSeconds(pid_a) - cpu_a;
  if (cpu_b >= 0) result.cpu_b = flikpay::bench::CpuSeconds(pid_b) - cpu_b;
  if (cpu_redis >= 0) result.cpu_redis = flikpay::bench::CpuSeconds(redis_pid) - cpu_redis;
  if (cpu_self >= 0) result.cpu_self = flikpay::bench::CpuSeconds(getpid()) - cpu_self;
  result.ran = true;
  result.events = count;
  result.callbacks_accepted = accepted;
  result.callbacks_failed = failed;
  for (const auto& some : answer_us) {
    result.callback_us.insert(result.callback_us.end(), some.begin(), some.end());
  }
  std::sort(result.callback_us.begin(), result.callback_us.end());
  std::fprintf(stderr,
               "stream-latency: phase %d: %d callbacks in %.2f s (%d accepted), %lld of %lld "
               "deliveries seen\n",
               phase, count, absl::ToDoubleSeconds(sent_all - start), accepted.load(),
               static_cast<long long>(shared.received[phase].load()),
               static_cast<long long>(expected_deliveries));
}

// What the watchers saw of one phase.
void Collect(int phase, const Shared& shared, std::vector<std::unique_ptr<Watcher>>& watchers,
             int own_watchers, PhaseResult& result) {
  const int first = phase * shared.per_phase;
  const int end = first + shared.per_phase;
  const int64_t miss_us = static_cast<int64_t>(absl::GetFlag(FLAGS_miss_after_seconds) * 1e6);
  std::vector<uint8_t> seen(shared.per_phase);
  const int rate = std::max(1, absl::GetFlag(FLAGS_rate));
  result.by_second.assign((shared.per_phase + rate - 1) / rate, {});
  for (const auto& watcher : watchers) {
    std::fill(seen.begin(), seen.end(), 0);
    int64_t expected = 0;
    for (int j = first; j < end; ++j) {
      if (watcher->own_index() < 0 || j % own_watchers == watcher->own_index()) ++expected;
    }
    int64_t in_time = 0;
    for (const Receipt& receipt : watcher->receipts()) {
      if (receipt.j < first || receipt.j >= end) continue;
      if (watcher->own_index() >= 0 && receipt.j % own_watchers != watcher->own_index()) {
        ++result.unexpected;
        continue;
      }
      if (seen[receipt.j - first]++ > 0) {
        ++result.duplicates;
        continue;
      }
      if (receipt.latency_us > miss_us) continue;
      ++in_time;
      result.by_second[(receipt.j - first) / rate].push_back(receipt.latency_us);
      result.latency_us[watcher->replica()].push_back(receipt.latency_us);
      (watcher->own_index() < 0 ? result.all_us : result.own_us).push_back(receipt.latency_us);
    }
    result.deliveries += in_time;
    result.missed += expected - in_time;
  }
  for (auto* values :
       {&result.latency_us[0], &result.latency_us[1], &result.own_us, &result.all_us}) {
    std::sort(values->begin(), values->end());
  }
  for (std::vector<int64_t>& values : result.by_second) std::sort(values.begin(), values.end());
}

double PercentileMs(const std::vector<int64_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  const size_t index = std::min(sorted.size() - 1, static_cast<size_t>(p * sorted.size()));
  return sorted[index] / 1000.0;
}

void LogLine(const char* phase, const char* what, const std::vector<int64_t>& sorted) {
  std::fprintf(stderr, "stream-latency: %-8s %-28s %8zu %8.3f %8.3f %8.3f %8.3f %9.3f\n", phase,
               what, sorted.size(), PercentileMs(sorted, 0.5), PercentileMs(sorted, 0.9),
               PercentileMs(sorted, 0.99), PercentileMs(sorted, 0.999),
               sorted.empty() ? 0.0 : sorted.back() / 1000.0);
}

std::string Ms(double ms) { return absl::StrFormat("%.3f ms", ms); }

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const absl::Time began = absl::Now();
  const bool two = !absl::GetFlag(FLAGS_grpc_b).empty();
  const int own_watchers = std::max(1, absl::GetFlag(FLAGS_own_watchers));
  const int all_watchers = std::max(0, absl::GetFlag(FLAGS_all_watchers));
  const int watchers_count = own_watchers + all_watchers;
  const int idle_count = std::max(0, absl::GetFlag(FLAGS_streams) - watchers_count);
  const int per_connection = std::max(1, absl::GetFlag(FLAGS_per_connection));
  const bool baseline = absl::GetFlag(FLAGS_baseline);
  const bool idle_on_a = absl::GetFlag(FLAGS_idle_on_a);
  const int phases = baseline ? 2 : 1;
  const int loaded_phase = phases - 1;
  Shared shared;
  shared.per_phase =
      std::max(1, static_cast<int>(absl::GetFlag(FLAGS_rate) * absl::GetFlag(FLAGS_seconds) + 0.5));
  const int total = shared.per_phase * phases;
  if (total / own_watchers > 1000) {
    std::fprintf(stderr,
                 "stream-latency: each own watcher would watch more than 1,000 ids (the "
                 "server's --max_stream_ids); use fewer seconds or more watchers\n");
    return 2;
  }
  std::string prefix = absl::GetFlag(FLAGS_prefix);
  if (prefix.empty()) prefix = absl::StrCat("sl-", absl::ToUnixMillis(absl::Now()), "-");
  std::fprintf(stderr, "stream-latency: load average %s",
               [] {
                 std::ifstream file("/proc/loadavg");
                 std::string line;
                 std::getline(file, line);
                 return line + "\n";
               }()
                   .c_str());

  // 1. The transactions.
  shared.ids.resize(total);
  shared.sent_us = std::make_unique<std::atomic<int64_t>[]>(total);
  for (int j = 0; j < total; ++j) {
    shared.ids[j] = absl::StrCat(prefix, j);
    shared.index[shared.ids[j]] = j;
    shared.sent_us[j].store(0);
  }
  std::vector<Transaction> created;
  const absl::Time creating = absl::Now();
  if (!CreatePending(absl::GetFlag(FLAGS_grpc_a), shared, created)) {
    std::fprintf(stderr, "stream-latency: could not create the PENDING transactions\n");
    return 1;
  }
  std::fprintf(stderr, "stream-latency: created %d PENDING transactions in %.1f s\n", total,
               absl::ToDoubleSeconds(absl::Now() - creating));

  // 2. The watchers.
  const std::string addresses[2] = {absl::GetFlag(FLAGS_grpc_a),
                                    two ? absl::GetFlag(FLAGS_grpc_b) : ""};
  const int admins[2] = {absl::GetFlag(FLAGS_admin_a), absl::GetFlag(FLAGS_admin_b)};
  int64_t open_before[2] = {
      flikpay::bench::ScrapeMetric(admins[0], "flikpay_streams_open"),
      two ? flikpay::bench::ScrapeMetric(admins[1], "flikpay_streams_open") : -1};
  flikpay::bench::Connections watcher_connections[2] = {
      flikpay::bench::Connections(addresses[0], per_connection, absl::StrCat(prefix, "wa")),
      flikpay::bench::Connections(addresses[1], per_connection, absl::StrCat(prefix, "wb"))};
  flikpay::bench::Connections idle_connections[2] = {
      flikpay::bench::Connections(addresses[0], per_connection, absl::StrCat(prefix, "ia")),
      flikpay::bench::Connections(addresses[1], per_connection, absl::StrCat(prefix, "ib"))};
  int opened_on[2] = {0, 0};
  std::vector<std::unique_ptr<Watcher>> watchers;
  for (int w = 0; w < watchers_count; ++w) {
    const bool own = w < own_watchers;
    const int replica = two ? w % 2 : 0;
    StreamStatusRequest request;
    if (own) {
      for (int j = w; j < total; j += own_watchers) {
        request.add_merchant_transaction_ids(shared.ids[j]);
      }
    }
    watchers.push_back(
        std::make_unique<Watcher>(watcher_connections[replica].For(opened_on[replica]++),
                                  std::move(request), shared, replica, own ? w : -1));
  }
  // Waits until each replica reports this many more open streams than before.
  auto wait_open = [&](const char* what) {
    const absl::Time until = absl::Now() + absl::Seconds(120);
    for (int r = 0; r < (two ? 2 : 1); ++r) {
      if (admins[r] == 0 || open_before[r] < 0) continue;
      int64_t open = -1;
      while (absl::Now() < until) {
        open = flikpay::bench::ScrapeMetric(admins[r], "flikpay_streams_open");
        if (open >= open_before[r] + opened_on[r] || shared.ended.load() > 0) break;
        absl::SleepFor(absl::Milliseconds(100));
      }
      std::fprintf(stderr, "stream-latency: %s: replica %c reports %lld streams open\n", what,
                   "AB"[r], static_cast<long long>(open));
      if (open < open_before[r] + opened_on[r]) return false;
    }
    // A replica whose streams cannot be counted gets time to register them.
    if (admins[0] == 0 || open_before[0] < 0 || (two && (admins[1] == 0 || open_before[1] < 0))) {
      absl::SleepFor(absl::Seconds(absl::GetFlag(FLAGS_settle_seconds)));
    }
    return shared.ended.load() == 0;
  };
  const absl::Time opening = absl::Now();
  if (!wait_open("watchers")) {
    std::fprintf(stderr, "stream-latency: the watchers did not all open (%d ended)\n",
                 shared.ended.load());
    std::fflush(stderr);
    std::_Exit(1);  // streams still open: no orderly teardown
  }
  std::fprintf(stderr,
               "stream-latency: %d watchers open (%d own, %d all; %d on A, %d on B) in "
               "%.1f s\n",
               watchers_count, own_watchers, all_watchers, opened_on[0], opened_on[1],
               absl::ToDoubleSeconds(absl::Now() - opening));
  const int64_t per_event = 1 + all_watchers;
  const int64_t expected = static_cast<int64_t>(shared.per_phase) * per_event;

  // 3. Baseline: only the watchers open.
  PhaseResult results[2];
  if (baseline) RunPhase(0, shared, created, expected, results[0]);

  // 4. The idle streams.
  std::atomic<int> idle_ended{0}, idle_events{0};
  std::vector<std::unique_ptr<flikpay::bench::ReadingStream>> idle;
  const absl::Time idle_opening = absl::Now();
  const int idle_before[2] = {opened_on[0], opened_on[1]};
  for (int i = 0; i < idle_count; ++i) {
    const int replica = two && !idle_on_a ? i % 2 : 0;
    StreamStatusRequest request;
    request.add_merchant_transaction_ids(absl::StrCat(prefix, "idle-", i));
    idle.push_back(std::make_unique<flikpay::bench::ReadingStream>(
        idle_connections[replica].For(opened_on[replica] - idle_before[replica]),
        std::move(request), idle_ended, &idle_events));
    ++opened_on[replica];
  }
  if (!wait_open("idle streams") || idle_ended.load() > 0) {
    std::fprintf(stderr, "stream-latency: the idle streams did not all open (%d ended)\n",
                 idle_ended.load());
    std::fflush(stderr);
    std::_Exit(1);  // streams still open: no orderly teardown
  }
  std::fprintf(stderr,
               "stream-latency: %d idle streams open in %.1f s: %d streams on A, %d on B; "
               "%zu + %zu connections\n",
               idle_count, absl::ToDoubleSeconds(absl::Now() - idle_opening), opened_on[0],
               opened_on[1], watcher_connections[0].size() + idle_connections[0].size(),
               watcher_connections[1].size() + idle_connections[1].size());

  // 5. Loaded.
  RunPhase(loaded_phase, shared, created, expected, results[loaded_phase]);
  for (int p = 0; p < phases; ++p) Collect(p, shared, watchers, own_watchers, results[p]);

  // Streams that ended on their own spoil the measurement.
  int watchers_ended = 0;
  for (const auto& watcher : watchers) {
    grpc::Status status;
    if (watcher->done(&status)) {
      if (watchers_ended++ == 0) {
        std::fprintf(stderr, "stream-latency: a watcher ended: %d %s\n", status.error_code(),
                     status.error_message().c_str());
      }
    }
  }

  std::fprintf(stderr, "stream-latency: %-8s %-28s %8s %8s %8s %8s %8s %9s\n", "phase",
               "latency (ms)", "count", "p50", "p90", "p99", "p99.9", "max");
  for (int p = 0; p < phases; ++p) {
    const PhaseResult& r = results[p];
    const char* name = p == loaded_phase ? "loaded" : "baseline";
    LogLine(name, "same replica (A->A)", r.latency_us[0]);
    if (two) LogLine(name, "other replica (A->B)", r.latency_us[1]);
    LogLine(name, "own-id watchers", r.own_us);
    LogLine(name, "watch-everything streams", r.all_us);
    LogLine(name, "callback answer (A)", r.callback_us);
    for (size_t second = 0; second < r.by_second.size(); ++second) {
      LogLine(name, absl::StrCat("  callbacks of second ", second).c_str(), r.by_second[second]);
    }
    std::fprintf(
        stderr,
        "stream-latency: %-8s %d events, %d callbacks refused or failed, %lld "
        "deliveries in time, %lld missed, %lld duplicates, %lld not watched; CPU A %.2f s, "
        "B %.2f s, Redis %.2f s, this tool %.2f s over %.2f s\n",
        name, r.events, r.callbacks_failed, static_cast<long long>(r.deliveries),
        static_cast<long long>(r.missed), static_cast<long long>(r.duplicates),
        static_cast<long long>(r.unexpected), r.cpu_a, r.cpu_b, r.cpu_redis, r.cpu_self, r.seconds);
  }
  std::fprintf(stderr,
               "stream-latency: %lld stray events (not ours or before their callback), %d idle "
               "stream events, %d watchers ended early\n",
               static_cast<long long>(shared.strays.load()), idle_events.load(), watchers_ended);

  // Rows.
  const PhaseResult& loaded = results[loaded_phase];
  const PhaseResult* base = baseline ? &results[0] : nullptr;
  const int streams_open = watchers_count + idle_count;
  const std::string setting =
      absl::StrFormat("%d callbacks/s, %d streams (%d own-id + %d all watchers, %s)",
                      absl::GetFlag(FLAGS_rate), streams_open, own_watchers, all_watchers,
                      !two        ? "all on A"
                      : idle_on_a ? "watchers half on A, half on B; idle on A"
                                  : "half on A, half on B");
  const char* base_note = "; baseline: watchers only";
  auto row = [&](const std::string& goal, const std::vector<int64_t>& values,
                 const std::vector<int64_t>* base_values, double p, double target_ms) {
    const double measured = PercentileMs(values, p);
    const double from = base_values != nullptr ? PercentileMs(*base_values, p) : 0;
    const bool valid = !values.empty() && loaded.missed == 0 && watchers_ended == 0;
    flikpay::bench::PrintRow(
        absl::StrCat(goal, ", ", setting, base != nullptr ? base_note : ""), Ms(measured),
        base_values != nullptr ? Ms(from) : "-",
        base_values != nullptr ? flikpay::bench::Ratio(measured, from) : "-",
        target_ms > 0 ? absl::StrFormat("<= %g ms", target_ms) : "-",
        target_ms > 0 ? (valid && measured <= target_ms ? "PASS" : "FAIL") : "INFO");
  };
  row("Callback to subscriber p50, same replica (A to A)", loaded.latency_us[0],
      base ? &base->latency_us[0] : nullptr, 0.5, absl::GetFlag(FLAGS_target_p50_ms));
  row("Callback to subscriber p99, same replica (A to A)", loaded.latency_us[0],
      base ? &base->latency_us[0] : nullptr, 0.99, absl::GetFlag(FLAGS_target_p99_ms));
  if (two) {
    row("Callback to subscriber p50, other replica (A to B)", loaded.latency_us[1],
        base ? &base->latency_us[1] : nullptr, 0.5, 0);
    row("Callback to subscriber p99, other replica (A to B)", loaded.latency_us[1],
        base ? &base->latency_us[1] : nullptr, 0.99, absl::GetFlag(FLAGS_target_cross_p99_ms));
  }
  const double fan_out = static_cast<double>(loaded.deliveries) / std::max(1, loaded.events);
  const double base_fan_out =
      base != nullptr ? static_cast<double>(base->deliveries) / std::max(1, base->events) : 0;
  flikpay::bench::PrintRow(
      absl::StrCat("Fan-out per event (deliveries / events), ", setting,
                   base != nullptr ? base_note : ""),
      absl::StrFormat("%.2f", fan_out),
      base != nullptr ? absl::StrFormat("%.2f", base_fan_out) : "-",
      base != nullptr ? flikpay::bench::Ratio(fan_out, base_fan_out) : "-",
      absl::StrCat("= ", per_event, " (1 own + ", all_watchers, " all)"),
      fan_out == static_cast<double>(per_event) && loaded.duplicates == 0 && loaded.unexpected == 0
          ? "PASS"
          : "FAIL");
  flikpay::bench::PrintRow(
      absl::StrCat("Watched events missed (not received within ",
                   absl::GetFlag(FLAGS_miss_after_seconds), " s) or duplicated, ", setting,
                   base != nullptr ? base_note : ""),
      absl::StrCat(loaded.missed + loaded.duplicates, " of ", loaded.events * per_event),
      base != nullptr
          ? absl::StrCat(base->missed + base->duplicates, " of ", base->events * per_event)
          : "-",
      "-", "0", loaded.missed + loaded.duplicates == 0 && watchers_ended == 0 ? "PASS" : "FAIL");
  for (int r = 0; r < 2; ++r) {
    const double cpu = r == 0 ? loaded.cpu_a : loaded.cpu_b;
    if (cpu < 0) continue;
    const double base_cpu = base == nullptr ? -1 : (r == 0 ? base->cpu_a : base->cpu_b);
    const double per = cpu * 1e6 / loaded.events;
    const double base_per = base_cpu >= 0 ? base_cpu * 1e6 / base->events : 0;
    const double growth = absl::GetFlag(FLAGS_max_cpu_growth);
    const bool judged = base_cpu >= 0 && base_per > 0;
    flikpay::bench::PrintRow(
        absl::StrCat("flikpay-server ", r == 0 ? "A" : "B", " CPU per callback (whole phase), ",
                     setting, base != nullptr ? base_note : ""),
        absl::StrFormat("%.0f us", per), base_cpu >= 0 ? absl::StrFormat("%.0f us", base_per) : "-",
        base_cpu >= 0 ? flikpay::bench::Ratio(per, base_per) : "-",
        judged ? absl::StrFormat("<= %.1fx watchers only", growth) : "-",
        !judged ? "INFO" : (per <= growth * base_per ? "PASS" : "FAIL"));
  }
  std::fflush(stdout);

  // End every stream.
  for (const auto& watcher : watchers) watcher->Cancel();
  for (const auto& stream : idle) stream->Cancel();
  const absl::Time wait_until = absl::Now() + absl::Seconds(30);
  while (shared.ended.load() + idle_ended.load() < watchers_count + idle_count &&
         absl::Now() < wait_until) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  const bool all_ended = shared.ended.load() + idle_ended.load() == watchers_count + idle_count;
  std::fprintf(stderr, "stream-latency: elapsed %.1f s in all\n",
               absl::ToDoubleSeconds(absl::Now() - began));
  if (!all_ended) {
    std::fprintf(stderr, "stream-latency: some streams did not end; leaving them\n");
    for (auto& watcher : watchers) static_cast<void>(watcher.release());
    for (auto& stream : idle) static_cast<void>(stream.release());
    std::_Exit(1);
  }
  return loaded.missed + loaded.duplicates == 0 && watchers_ended == 0 &&
                 loaded.callbacks_failed == 0
             ? 0
             : 1;
}
