// callback-bench: Bankart's callbacks at flikpay's callback port, as fast as it takes them or at a
// set rate, each about a distinct PENDING transaction, each signed as Bankart signs. It first
// creates the transactions through gRPC (a flikpay-server run with --insecure_dev against a
// bankart-sim whose own callbacks are held back), then sends one SUCCESS callback per transaction
// from `--connections` threads, on one keep-alive connection each or a new connection per callback,
// and prints one table row: mode, rate asked, callbacks, accepted (200 "OK": verified, applied,
// durable, event emitted), throughput and latency percentiles. For scripts/bench.sh (issue 15) it
// also prints result rows (bench/rows.h): the run's figure against the same run's baseline
// (redis-benchmark's XADD on the same Redis, passed in) and a goal when one is given, and the CPU
// the server (--pid) and Redis (--redis_pid) spent per callback while they were sent.
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "bench/load.h"
#include "bench/rows.h"
#include "flikpay/v1/payment_service.grpc.pb.h"
#include "gateway/money.h"
#include "gateway/signing.h"
#include "nlohmann/json.hpp"
#include "tests/support/raw_http.h"

ABSL_FLAG(std::string, grpc, "127.0.0.1:50051", "flikpay-server's gRPC address (insecure_dev)");
ABSL_FLAG(int, callback_port, 8080, "flikpay-server's callback port on 127.0.0.1");
ABSL_FLAG(int, count, 5000, "callbacks to send, one per transaction created first");
ABSL_FLAG(int, connections, 8, "sending threads, each with its own connection(s)");
ABSL_FLAG(bool, keep_alive, true, "one connection per thread (false: a new one per callback)");
ABSL_FLAG(int, rate, 0, "callbacks per second in all (0: as fast as they are answered)");
ABSL_FLAG(std::string, secret, "sim-out-of-band-secret", "the Out-of-Band connector's secret");
ABSL_FLAG(std::string, prefix, "", "merchant transaction id prefix (default: from the clock)");
ABSL_FLAG(std::string, label, "", "the result row's goal text (default: the mode and rate)");
ABSL_FLAG(int, pid, 0, "flikpay-server's process id, for its CPU per callback (0: not measured)");
ABSL_FLAG(int, redis_pid, 0,
          "redis-server's process id, for its CPU per callback (0: not measured)");
ABSL_FLAG(double, goal_min_per_second, 0, "goal: at least this many accepted per second (0: none)");
ABSL_FLAG(double, goal_max_p99_ms, 0, "goal: p99 latency at most this (0: none)");
ABSL_FLAG(double, baseline_per_second, 0, "the same run's XADD/s on the same Redis (0: none)");
ABSL_FLAG(double, baseline_p99_ms, 0, "the same run's XADD p99 latency (0: none)");
ABSL_FLAG(double, baseline_redis_cpu_us, 0, "Redis CPU per XADD in the same run, µs (0: none)");

namespace {

using flikpay::v1::Transaction;

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const int count = absl::GetFlag(FLAGS_count);
  const int connections = std::max(1, absl::GetFlag(FLAGS_connections));
  const bool keep_alive = absl::GetFlag(FLAGS_keep_alive);
  const int rate = absl::GetFlag(FLAGS_rate);
  std::string prefix = absl::GetFlag(FLAGS_prefix);
  if (prefix.empty()) prefix = absl::StrCat("bench-", absl::ToUnixMillis(absl::Now()), "-");

  std::vector<std::string> ids;
  for (int i = 0; i < count; ++i) ids.push_back(absl::StrCat(prefix, i));
  int creates_failed = 0;
  std::string first_error;
  const std::vector<Transaction> pending = flikpay::bench::CreatePendingRtps(
      absl::GetFlag(FLAGS_grpc), ids, 16, &creates_failed, &first_error);
  if (creates_failed > 0) {
    std::fprintf(stderr, "callback-bench: %d creates failed, the first: %s\n", creates_failed,
                 first_error.c_str());
  }
  // Signed before the clock starts: the bench measures flikpay, not its own HMACs.
  std::vector<std::string> requests;
  requests.reserve(pending.size());
  for (const Transaction& transaction : pending) {
    requests.push_back(
        flikpay::bench::SignedSuccessCallback(transaction, absl::GetFlag(FLAGS_secret)));
  }

  std::vector<std::vector<absl::Duration>> latencies(connections);
  std::atomic<int> accepted{0}, refused{0}, failed{0};
  const double server_cpu_before = flikpay::bench::CpuSeconds(absl::GetFlag(FLAGS_pid));
  const double redis_cpu_before = flikpay::bench::CpuSeconds(absl::GetFlag(FLAGS_redis_pid));
  const absl::Time start = absl::Now();
  std::vector<std::thread> senders;
  for (int c = 0; c < connections; ++c) {
    senders.emplace_back([&, c] {
      std::unique_ptr<flikpay::testing::RawConnection> connection;
      int sent = 0;
      for (int i = c; i < count; i += connections, ++sent) {
        if (rate > 0) {
          // Each thread keeps its share of the rate, on a schedule (not "sleep after each").
          const absl::Time due = start + absl::Seconds(1) * sent * connections / rate;
          absl::SleepFor(due - absl::Now());
        }
        const absl::Time sent_at = absl::Now();
        if (connection == nullptr || !keep_alive) {
          auto opened = flikpay::testing::RawConnection::Open(absl::GetFlag(FLAGS_callback_port));
          if (!opened.ok()) {
            ++failed;
            continue;
          }
          connection = *std::move(opened);
        }
        absl::StatusOr<flikpay::testing::RawResponse> response =
            connection->Send(requests[i]) ? connection->Read(absl::Seconds(10))
                                          : absl::UnavailableError("send failed");
        latencies[c].push_back(absl::Now() - sent_at);
        if (!response.ok()) {
          ++failed;
          connection.reset();
        } else if (response->status == 200 && response->body == "OK") {
          ++accepted;
        } else {
          ++refused;
        }
        if (!keep_alive) connection.reset();
      }
    });
  }
  for (std::thread& sender : senders) sender.join();
  const absl::Duration elapsed = absl::Now() - start;
  const double server_cpu =
      flikpay::bench::CpuSeconds(absl::GetFlag(FLAGS_pid)) - server_cpu_before;
  const double redis_cpu =
      flikpay::bench::CpuSeconds(absl::GetFlag(FLAGS_redis_pid)) - redis_cpu_before;

  std::vector<absl::Duration> all;
  for (const auto& some : latencies) all.insert(all.end(), some.begin(), some.end());
  std::sort(all.begin(), all.end());
  auto percentile = [&all](double p) {
    if (all.empty()) return 0.0;
    const size_t index = std::min(all.size() - 1, static_cast<size_t>(p * all.size()));
    return absl::ToDoubleMilliseconds(all[index]);
  };
  std::printf("| %-14s | %8s | %9d | %8d | %7d | %10.0f | %7.2f | %7.2f | %7.2f | %8.2f |\n",
              keep_alive ? "keep-alive" : "new connection",
              rate > 0 ? absl::StrCat(rate).c_str() : "max", count, accepted.load(),
              refused.load() + failed.load(), accepted / absl::ToDoubleSeconds(elapsed),
              percentile(0.50), percentile(0.90), percentile(0.99),
              all.empty() ? 0.0 : absl::ToDoubleMilliseconds(all.back()));

  // The result rows.
  const double per_second = accepted / absl::ToDoubleSeconds(elapsed);
  const double p99 = percentile(0.99);
  std::string label = absl::GetFlag(FLAGS_label);
  if (label.empty()) {
    label = absl::StrCat("Callbacks, ", keep_alive ? "keep-alive" : "new connection each", ", ",
                         rate > 0 ? absl::StrCat(rate, "/s") : "as fast as taken");
  }
  const double baseline_per_second = absl::GetFlag(FLAGS_baseline_per_second);
  const double baseline_p99 = absl::GetFlag(FLAGS_baseline_p99_ms);
  if (rate == 0) {  // a throughput figure
    const double goal = absl::GetFlag(FLAGS_goal_min_per_second);
    flikpay::bench::PrintRow(
        label,
        absl::StrFormat("%.0f/s accepted (%d of %d; p99 %.2f ms)", per_second, accepted.load(),
                        count, p99),
        baseline_per_second > 0 ? absl::StrFormat("XADD %.0f/s", baseline_per_second) : "—",
        flikpay::bench::Ratio(per_second, baseline_per_second),
        goal > 0 ? absl::StrFormat("≥ %.0f/s", goal) : "—",
        goal > 0 ? flikpay::bench::Verdict(per_second >= goal && accepted == count) : "INFO");
  } else {  // a latency figure at a set rate
    const double goal = absl::GetFlag(FLAGS_goal_max_p99_ms);
    flikpay::bench::PrintRow(
        label,
        absl::StrFormat("p99 %.2f ms (p50 %.2f; %.0f/s, %d of %d accepted)", p99, percentile(0.50),
                        per_second, accepted.load(), count),
        baseline_p99 > 0 ? absl::StrFormat("XADD p99 %.2f ms", baseline_p99) : "—",
        flikpay::bench::Ratio(p99, baseline_p99),
        goal > 0 ? absl::StrFormat("p99 ≤ %.0f ms", goal) : "—",
        goal > 0 ? flikpay::bench::Verdict(p99 <= goal && accepted == count) : "INFO");
  }
  if (absl::GetFlag(FLAGS_pid) > 0 && accepted > 0) {
    // Per accepted callback; the load generator shares the cores, so this is the server's own.
    const double server_us = server_cpu * 1e6 / accepted;
    const double redis_us = redis_cpu * 1e6 / accepted;
    const double baseline_us = absl::GetFlag(FLAGS_baseline_redis_cpu_us);
    flikpay::bench::PrintRow(
        absl::StrCat(label, ": CPU per callback"),
        absl::GetFlag(FLAGS_redis_pid) > 0
            ? absl::StrFormat("server %.0f µs, Redis %.0f µs", server_us, redis_us)
            : absl::StrFormat("server %.0f µs", server_us),
        baseline_us > 0 ? absl::StrFormat("Redis %.1f µs per XADD", baseline_us) : "—",
        baseline_us > 0 && absl::GetFlag(FLAGS_redis_pid) > 0
            ? absl::StrFormat("%.1f XADDs of Redis CPU", redis_us / baseline_us)
            : "—",
        "—", "INFO");
  }
  return accepted == count ? 0 : 1;
}
