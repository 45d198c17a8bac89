// stream-opener: what an idle StreamStatus stream costs the server (issue 15). Opens --streams
// streams against one flikpay-server (--grpc port, plaintext, --insecure_dev), spread over enough
// connections for the server's concurrent-stream limit per connection (--per_connection), with the
// async callback API (no thread per stream); --watch_ids 1 gives each stream an id of its own
// (never written, so the streams stay idle), 0 watches everything. It reads the server's resident
// set (VmRSS of --pid from /proc) before and once the server's flikpay_streams_open (its admin
// port's /metrics) reached the count, and prints the difference per stream, then ends the streams.
// For scripts/bench.sh (issue 15) it prints result rows (bench/rows.h): KiB per idle stream
// against --goal_max_kib, and the server's CPU time per stream opened.
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bench/load.h"
#include "bench/rows.h"
#include "flikpay/v1/payment_service.grpc.pb.h"
#include "tests/support/raw_http.h"

ABSL_FLAG(int, grpc, 0, "the server's gRPC port on 127.0.0.1");
ABSL_FLAG(int, admin, 0, "the server's admin port on 127.0.0.1 (/metrics)");
ABSL_FLAG(int, pid, 0, "the server's process id (its VmRSS is read from /proc)");
ABSL_FLAG(int, streams, 10000, "streams to open");
ABSL_FLAG(int, per_connection, 90, "streams per connection (the server allows 100 by default)");
ABSL_FLAG(int, watch_ids, 1, "ids each stream watches (its own, never written); 0: everything");
ABSL_FLAG(double, hold_seconds, 2, "how long to hold the streams open after the measurement");
ABSL_FLAG(double, goal_max_kib, 0, "goal: at most this many KiB per idle stream (0: none)");
ABSL_FLAG(int, unary_before, 0,
          "GetStatus calls (of an unknown id) made on each connection before its streams open: "
          "gRPC sizes a new call's arena from the largest call each connection has seen");
ABSL_FLAG(int, unary_metadata, 0,
          "metadata entries (distinct keys) each --unary_before call sends: a bigger call, whose "
          "arena may set the size of later calls' arenas on its connection");

namespace {

using flikpay::v1::PaymentService;
using flikpay::v1::StatusEvent;
using flikpay::v1::StreamStatusRequest;

int64_t ResidentKib(int pid) {
  std::ifstream status(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) != 0) continue;
    for (absl::string_view part : absl::StrSplit(line, ' ', absl::SkipEmpty())) {
      int64_t kib = 0;
      if (absl::SimpleAtoi(part, &kib)) return kib;
    }
  }
  return -1;
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const int count = absl::GetFlag(FLAGS_streams);
  const int per_connection = std::max(1, absl::GetFlag(FLAGS_per_connection));
  const int pid = absl::GetFlag(FLAGS_pid);
  const int admin = absl::GetFlag(FLAGS_admin);
  const int64_t open_before = flikpay::bench::ScrapeMetric(admin, "flikpay_streams_open");
  const int64_t before_kib = ResidentKib(pid);
  const double cpu_before = flikpay::bench::CpuSeconds(pid);
  std::vector<std::unique_ptr<PaymentService::Stub>> stubs;
  for (int i = 0; i * per_connection < count; ++i) {
    grpc::ChannelArguments args;
    args.SetInt("flikpay.stream_opener.connection", i);  // a channel (and connection) of its own
    stubs.push_back(PaymentService::NewStub(
        grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", absl::GetFlag(FLAGS_grpc)),
                                  grpc::InsecureChannelCredentials(), args)));
  }
  // Connected (and, with --unary_before, unary calls made on each connection) before the RSS
  // reading, so a row counts the streams alone.
  int unary_failed = 0;
  for (const auto& stub : stubs) {
    for (int i = 0; i < absl::GetFlag(FLAGS_unary_before); ++i) {
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
      for (int k = 0; k < absl::GetFlag(FLAGS_unary_metadata); ++k) {
        context.AddMetadata(absl::StrCat("x-bench-pad-", k), "padding");
      }
      flikpay::v1::GetStatusRequest request;
      request.set_merchant_transaction_id(absl::StrCat("unknown-", i));
      flikpay::v1::Transaction response;
      const grpc::Status status = stub->GetStatus(&context, request, &response);
      if (status.error_code() != grpc::StatusCode::NOT_FOUND) ++unary_failed;
    }
  }
  const int64_t connected_kib = ResidentKib(pid);
  if (absl::GetFlag(FLAGS_unary_before) > 0) {
    std::printf(
        "unary calls before the streams: %d per connection, %d not NOT_FOUND; server RSS then %lld "
        "KiB\n",
        absl::GetFlag(FLAGS_unary_before), unary_failed, static_cast<long long>(connected_kib));
  }
  std::atomic<int> done{0};
  std::vector<std::unique_ptr<flikpay::bench::ReadingStream>> streams;
  const absl::Time started = absl::Now();
  for (int i = 0; i < count; ++i) {
    StreamStatusRequest request;
    for (int j = 0; j < absl::GetFlag(FLAGS_watch_ids); ++j) {
      request.add_merchant_transaction_ids(
          absl::StrCat("idle-", absl::ToUnixMicros(started), "-", i, "-", j));
    }
    streams.push_back(
        std::make_unique<flikpay::bench::ReadingStream>(*stubs[i / per_connection], request, done));
  }
  int64_t open = -1;
  const absl::Time give_up = absl::Now() + absl::Seconds(120);
  while (absl::Now() < give_up) {
    open = flikpay::bench::ScrapeMetric(admin, "flikpay_streams_open");
    if (open >= open_before + count || done.load() > 0) break;
    absl::SleepFor(absl::Milliseconds(200));
  }
  const absl::Duration opening = absl::Now() - started;
  const double opening_cpu = flikpay::bench::CpuSeconds(pid) - cpu_before;
  absl::SleepFor(absl::Seconds(1));  // let allocations settle
  const int64_t after_kib = ResidentKib(pid);
  std::printf("streams opened: %d (server reports %lld open, %d ended early) in %.1f s\n", count,
              static_cast<long long>(open), done.load(), absl::ToDoubleSeconds(opening));
  std::printf("server RSS: %lld KiB before, %lld KiB after: %.2f KiB per stream\n",
              static_cast<long long>(before_kib), static_cast<long long>(after_kib),
              static_cast<double>(after_kib - before_kib) / count);
  if (absl::GetFlag(FLAGS_unary_before) > 0) {
    std::printf("from the connected server (%lld KiB): %.2f KiB per stream\n",
                static_cast<long long>(connected_kib),
                static_cast<double>(after_kib - connected_kib) / count);
  }
  const bool all_open = open >= open_before + count;
  const double per_stream_kib = static_cast<double>(after_kib - before_kib) / count;
  const double goal = absl::GetFlag(FLAGS_goal_max_kib);
  const std::string what = absl::StrFormat(
      "%d idle streams (%s)", count,
      absl::GetFlag(FLAGS_watch_ids) > 0 ? "each watching its own id" : "each watching everything");
  flikpay::bench::PrintRow(
      absl::StrCat("Memory per stream, ", what),
      absl::StrFormat("%.2f KiB/stream (RSS +%.1f MiB%s)", per_stream_kib,
                      (after_kib - before_kib) / 1024.0, all_open ? "" : "; NOT ALL OPEN"),
      absl::StrFormat("the idle server: RSS %.1f MiB", before_kib / 1024.0),
      goal > 0 ? absl::StrFormat("%.2f of the goal", per_stream_kib / goal) : "—",
      goal > 0 ? absl::StrFormat("≤ %.0f KiB", goal) : "—",
      goal > 0 ? flikpay::bench::Verdict(all_open && per_stream_kib <= goal) : "INFO");
  flikpay::bench::PrintRow(
      absl::StrCat("Opening ", what, ": server CPU per stream"),
      absl::StrFormat("%.0f µs (%.2f s CPU, opened in %.1f s)", opening_cpu * 1e6 / count,
                      opening_cpu, absl::ToDoubleSeconds(opening)),
      "—", "—", "—", "INFO");
  absl::SleepFor(absl::Seconds(absl::GetFlag(FLAGS_hold_seconds)));
  for (const auto& stream : streams) stream->Cancel();
  const absl::Time wait_until = absl::Now() + absl::Seconds(30);
  while (done.load() < count && absl::Now() < wait_until) absl::SleepFor(absl::Milliseconds(50));
  std::printf("server RSS after the streams ended: %lld KiB\n",
              static_cast<long long>(ResidentKib(pid)));
  return all_open ? 0 : 1;
}
