// wait-bench: what `WAIT 1` costs the writes that acknowledge money (issue 14). It drives
// RedisStore::Begin (claim a new debit) then RedisStore::Apply (its PENDING report, which ends the
// flight and appends an event), the pair one operation, from 1, 4 and 16 threads for a fixed time
// each, against (a) a single redis-server with min_replica_acks 0 and (b) a primary with two
// replicas with min_replica_acks 1 (each write followed by WAIT 1), and prints one table: per
// thread count the operations per second and the p50 and p99 latency of each, and their ratios.
// scripts/bench.sh starts the servers (AOF everysec, as production, all on loopback) and collects
// the result rows (bench/rows.h) printed per thread count: WAIT 1's figures against the single
// server's, measured in the same run.
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bench/rows.h"
#include "store/redis_store.h"

ABSL_FLAG(int, single, 0, "port of a redis-server without replicas on 127.0.0.1");
ABSL_FLAG(int, primary, 0, "port of a redis-server with two replicas on 127.0.0.1");
ABSL_FLAG(std::string, threads, "1,4,16", "thread counts to run, comma-separated");
ABSL_FLAG(double, seconds, 3.0, "measured seconds per thread count and setup");

namespace {

struct Cell {
  int threads = 0;
  double ops_per_second = 0;
  double p50_ms = 0;
  double p99_ms = 0;
  int failed = 0;
};

// Begin + Apply for fresh ids from `threads` threads for `seconds`, after a short warm-up.
Cell Run(int port, int min_replica_acks, int threads, double seconds, const std::string& tag) {
  flikpay::store::RedisConfig config;
  config.url = absl::StrCat("redis://127.0.0.1:", port, "/0");
  config.key_prefix = "wait-bench:";
  config.min_replica_acks = min_replica_acks;
  config.replica_ack_timeout = absl::Seconds(1);
  config.max_idle_connections = std::max(16, threads);
  flikpay::store::RedisStore store(config);

  const std::string prefix = absl::StrCat(tag, "-", absl::ToUnixMicros(absl::Now()), "-");
  std::atomic<int> failed{0};
  auto operation = [&](const std::string& id) {
    flikpay::v1::Transaction debit;
    debit.set_merchant_transaction_id(id);
    debit.set_type(flikpay::v1::TRANSACTION_TYPE_DEBIT);
    debit.set_status(flikpay::v1::TRANSACTION_STATUS_UNKNOWN);
    debit.set_amount_minor(1234);
    debit.set_currency("EUR");
    debit.set_created_by("wait-bench");
    const absl::Time now = absl::Now();
    absl::StatusOr<flikpay::store::BeginResult> begun =
        store.Begin(debit, "fingerprint", now + absl::Seconds(10), now + absl::Minutes(1));
    if (!begun.ok() || !begun->created) {
      ++failed;
      return;
    }
    flikpay::store::Report report;
    report.status = flikpay::v1::TRANSACTION_STATUS_PENDING;
    report.source = flikpay::v1::EVENT_SOURCE_RPC;
    report.ends_flight = true;
    if (!store.Apply(id, report).ok()) ++failed;
  };
  for (int i = 0; i < 50; ++i) operation(absl::StrCat(prefix, "warm-", i));
  failed = 0;

  std::vector<std::vector<double>> latencies(threads);
  std::vector<std::thread> workers;
  const absl::Time start = absl::Now();
  const absl::Time end = start + absl::Seconds(seconds);
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      for (int i = 0; absl::Now() < end; ++i) {
        const absl::Time began = absl::Now();
        operation(absl::StrCat(prefix, t, "-", i));
        latencies[t].push_back(absl::ToDoubleMilliseconds(absl::Now() - began));
      }
    });
  }
  for (std::thread& worker : workers) worker.join();
  const double elapsed = absl::ToDoubleSeconds(absl::Now() - start);
  std::vector<double> all;
  for (const std::vector<double>& some : latencies) all.insert(all.end(), some.begin(), some.end());
  std::sort(all.begin(), all.end());
  Cell cell;
  cell.threads = threads;
  cell.failed = failed;
  if (all.empty()) return cell;
  cell.ops_per_second = static_cast<double>(all.size()) / elapsed;
  cell.p50_ms = all[all.size() / 2];
  cell.p99_ms = all[std::min(all.size() - 1, all.size() * 99 / 100)];
  return cell;
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const int single = absl::GetFlag(FLAGS_single);
  const int primary = absl::GetFlag(FLAGS_primary);
  if (single == 0 || primary == 0) {
    std::fprintf(stderr, "wait-bench: --single and --primary are required\n");
    return 2;
  }
  const double seconds = absl::GetFlag(FLAGS_seconds);
  std::printf(
      "| threads | single ops/s | p50 ms | p99 ms | WAIT 1 ops/s | p50 ms | p99 ms | ops/s "
      "WAIT/single | p50 WAIT/single | p99 WAIT/single |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|\n");
  int status = 0;
  for (absl::string_view text : absl::StrSplit(absl::GetFlag(FLAGS_threads), ',')) {
    int threads = 0;
    if (!absl::SimpleAtoi(text, &threads) || threads < 1) {
      std::fprintf(stderr, "wait-bench: bad --threads entry '%s'\n", std::string(text).c_str());
      return 2;
    }
    const Cell alone = Run(single, 0, threads, seconds, "single");
    const Cell waited = Run(primary, 1, threads, seconds, "wait");
    std::printf(
        "| %7d | %12.0f | %6.2f | %6.2f | %12.0f | %6.2f | %6.2f | %17.2f | %15.2f | %15.2f |\n",
        threads, alone.ops_per_second, alone.p50_ms, alone.p99_ms, waited.ops_per_second,
        waited.p50_ms, waited.p99_ms,
        alone.ops_per_second > 0 ? waited.ops_per_second / alone.ops_per_second : 0.0,
        alone.p50_ms > 0 ? waited.p50_ms / alone.p50_ms : 0.0,
        alone.p99_ms > 0 ? waited.p99_ms / alone.p99_ms : 0.0);
    flikpay::bench::PrintRow(
        absl::StrCat("Store Begin+Apply with WAIT 1 (2 replicas), ", threads,
                     threads == 1 ? " thread" : " threads", " (issue 14)"),
        absl::StrFormat("%.0f ops/s, p99 %.2f ms", waited.ops_per_second, waited.p99_ms),
        absl::StrFormat("no replica: %.0f ops/s, p99 %.2f ms", alone.ops_per_second, alone.p99_ms),
        flikpay::bench::Ratio(waited.ops_per_second, alone.ops_per_second), "—", "INFO");
    std::fflush(stdout);
    if (alone.failed > 0 || waited.failed > 0) {
      std::fprintf(stderr, "wait-bench: %d threads: %d failed alone, %d failed with WAIT\n",
                   threads, alone.failed, waited.failed);
      status = 1;
    }
  }
  return status;
}
