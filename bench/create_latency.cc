// create-latency: what flikpay itself adds to a CreateRtp (issue 15). Calls CreateRtp from
// --concurrency threads for --seconds against one flikpay-server (plaintext, --insecure_dev) whose
// gateway is bankart-sim, each call with an x-request-id of its own, which flikpay sends to Bankart
// as X-Request-ID. bankart-sim journals each API request with that id and how long it spent on it
// (handledMicros: from the request read to the response handed to its HTTP library), so per call
// flikpay's added latency = the call's latency seen here - the stand-in's handling time. The
// stand-in should answer at once: no faults registered (DELETE /_sim/faults is sent first), and
// its simulated payer held back (--scenario_delay=1h) so no callbacks load the server meanwhile;
// an Out-of-Band (or In-Person) request to pay to a seed test alias answers PENDING at once.
//
// --rate paces the calls (at most --concurrency in flight) to see the latency below saturation;
// by default each thread calls again as soon as it is answered, so on a small machine the figure
// includes queueing for CPU shared by the client, flikpay, Redis and the stand-in (--server_pid and
// --sim_pid add their CPU time per call).
//
// What counts as "added" is everything outside the stand-in's handler: the gRPC client and server
// stacks, flikpay's checks, Redis round trips, and the HTTP exchange with the stand-in on loopback
// (connection, request write, httplib's parsing and writing): a conservative figure for flikpay.
//
// Prints a human log on stderr and result rows on stdout:
// ROW|goal|measured|baseline|ratio|target|PASS or FAIL or INFO
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bench/rows.h"
#include "flikpay/v1/payment_service.grpc.pb.h"
#include "nlohmann/json.hpp"
#include "tests/support/raw_http.h"

ABSL_FLAG(std::string, grpc, "127.0.0.1:50051", "flikpay-server's gRPC address (insecure_dev)");
ABSL_FLAG(std::string, sim, "127.0.0.1:8480",
          "bankart-sim's host:port (its control API, /_sim/journal); loopback only");
ABSL_FLAG(int, concurrency, 16, "calls in flight at once (one thread each)");
ABSL_FLAG(double, seconds, 10, "how long to call (after the warm-up)");
ABSL_FLAG(int, rate, 0,
          "0: each thread calls again as soon as its call is answered (the goal's setting); N: "
          "calls start at N per second in all, still at most --concurrency at once");
ABSL_FLAG(int, warmup_calls, 200, "calls made first and left out of the figures");
ABSL_FLAG(int, max_calls, 100000,
          "stop after this many measured calls (bounds the stand-in's journal, read in one piece)");
ABSL_FLAG(std::string, kind, "out_of_band", "out_of_band or in_person");
ABSL_FLAG(std::string, prefix, "", "merchant transaction id prefix (default: from the clock)");
ABSL_FLAG(double, target_ms, 1.0,
          "the goal for flikpay's added p99, in milliseconds; 0: no goal at this setting (the "
          "row is INFO)");
ABSL_FLAG(int, server_pid, 0, "flikpay-server's process id: its CPU time per call (optional)");
ABSL_FLAG(int, admin, 0,
          "flikpay-server's admin port on 127.0.0.1 (optional): the log then splits the mean call "
          "by the server's own histograms (RPC, gateway call, Redis round trips)");
ABSL_FLAG(int, sim_pid, 0, "bankart-sim's process id: its CPU time per call (optional)");

namespace {

using flikpay::v1::CreateRtpRequest;
using flikpay::v1::PaymentService;
using flikpay::v1::Transaction;
using Json = nlohmann::json;

struct Call {
  std::string request_id;
  absl::Duration total;
  bool ok = false;
  std::string error;
};

int SimPort(const std::string& address) {
  std::vector<std::string> parts = absl::StrSplit(address, absl::MaxSplits(':', 1));
  int port = 0;
  if (parts.size() != 2 || (parts[0] != "127.0.0.1" && parts[0] != "localhost") ||
      !absl::SimpleAtoi(parts[1], &port)) {
    return 0;
  }
  return port;
}

// One request to the stand-in's control API; the response or an error.
absl::StatusOr<flikpay::testing::RawResponse> SimRequest(int port, const std::string& method,
                                                         const std::string& path) {
  absl::StatusOr<std::unique_ptr<flikpay::testing::RawConnection>> connection =
      flikpay::testing::RawConnection::Open(port);
  if (!connection.ok()) return connection.status();
  if (!(*connection)
           ->Send(absl::StrCat(method, " ", path,
                               " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n"
                               "Connection: close\r\n\r\n"))) {
    return absl::UnavailableError("cannot send to bankart-sim");
  }
  return (*connection)->Read(absl::Seconds(30));
}

double Ms(absl::Duration d) { return absl::ToDoubleMilliseconds(d); }

// The _sum and _count series of flikpay's latency histograms from an admin port's /metrics, by
// name with labels; empty when unreadable.
std::map<std::string, double> ServerHistograms(int admin_port) {
  std::map<std::string, double> values;
  if (admin_port <= 0) return values;
  absl::StatusOr<flikpay::testing::RawResponse> response =
      SimRequest(admin_port, "GET", "/metrics");
  if (!response.ok() || response->status != 200) return values;
  for (absl::string_view line : absl::StrSplit(response->body, '\n')) {
    if (!absl::StartsWith(line, "flikpay_") || line.find("_bucket") != absl::string_view::npos) {
      continue;
    }
    if (!absl::StrContains(line, "_seconds_sum") && !absl::StrContains(line, "_seconds_count")) {
      continue;
    }
    const size_t space = line.rfind(' ');
    double value = 0;
    if (space == absl::string_view::npos || !absl::SimpleAtod(line.substr(space + 1), &value)) {
      continue;
    }
    values[std::string(line.substr(0, space))] = value;
  }
  return values;
}

// The p-th percentile (0..1) of sorted values; 0 when empty.
absl::Duration Percentile(const std::vector<absl::Duration>& sorted, double p) {
  if (sorted.empty()) return absl::ZeroDuration();
  const size_t index = std::min(sorted.size() - 1, static_cast<size_t>(p * sorted.size()));
  return sorted[index];
}

std::string MsText(absl::Duration d) { return absl::StrFormat("%.3f ms", Ms(d)); }

std::string Ratio(absl::Duration a, absl::Duration b) {
  return flikpay::bench::Ratio(Ms(a), Ms(b));
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const absl::Time began = absl::Now();
  const int concurrency = std::max(1, absl::GetFlag(FLAGS_concurrency));
  const int max_calls = std::max(1, absl::GetFlag(FLAGS_max_calls));
  const int rate = std::max(0, absl::GetFlag(FLAGS_rate));
  const absl::Duration duration = absl::Seconds(absl::GetFlag(FLAGS_seconds));
  const std::string kind_name = absl::GetFlag(FLAGS_kind);
  flikpay::v1::RtpKind kind;
  if (kind_name == "out_of_band") {
    kind = flikpay::v1::RTP_KIND_OUT_OF_BAND;
  } else if (kind_name == "in_person") {
    kind = flikpay::v1::RTP_KIND_IN_PERSON;
  } else {
    std::fprintf(stderr, "create-latency: --kind must be out_of_band or in_person\n");
    return 2;
  }
  const int sim_port = SimPort(absl::GetFlag(FLAGS_sim));
  if (sim_port == 0) {
    std::fprintf(stderr, "create-latency: --sim must be 127.0.0.1:PORT\n");
    return 2;
  }
  {
    std::ifstream loadavg("/proc/loadavg");
    std::string line;
    std::getline(loadavg, line);
    std::fprintf(stderr, "create-latency: load average %s\n", line.c_str());
  }
  std::string prefix = absl::GetFlag(FLAGS_prefix);
  if (prefix.empty()) prefix = absl::StrCat("cl-", absl::ToUnixMillis(absl::Now()), "-");

  // The stand-in answers at once only without faults.
  absl::StatusOr<flikpay::testing::RawResponse> cleared =
      SimRequest(sim_port, "DELETE", "/_sim/faults");
  if (!cleared.ok() || cleared->status != 200) {
    std::fprintf(stderr, "create-latency: bankart-sim at %s does not answer: %s\n",
                 absl::GetFlag(FLAGS_sim).c_str(),
                 cleared.ok() ? absl::StrCat("HTTP ", cleared->status).c_str()
                              : std::string(cleared.status().message()).c_str());
    return 1;
  }

  auto stub = PaymentService::NewStub(
      grpc::CreateChannel(absl::GetFlag(FLAGS_grpc), grpc::InsecureChannelCredentials()));
  // One CreateRtp; its latency as this client sees it.
  auto create = [&](int64_t n, Call& call) {
    CreateRtpRequest request;
    const std::string id = absl::StrCat(prefix, n);
    request.set_merchant_transaction_id(id);
    request.set_amount_minor(1000 + n % 1000);
    request.set_kind(kind);
    request.set_alias("0038670999000");  // seed 000: success, answered PENDING at once
    if (kind == flikpay::v1::RTP_KIND_IN_PERSON) request.set_merchant_terminal_id("till-1");
    call.request_id = absl::StrCat("rid-", id);
    grpc::ClientContext context;
    context.AddMetadata("x-request-id", call.request_id);
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
    Transaction answer;
    const absl::Time start = absl::Now();
    const grpc::Status status = stub->CreateRtp(&context, request, &answer);
    call.total = absl::Now() - start;
    call.ok = status.ok() && answer.status() == flikpay::v1::TRANSACTION_STATUS_PENDING;
    if (!status.ok()) {
      call.error = absl::StrCat("code ", status.error_code(), ": ", status.error_message());
    } else if (!call.ok) {
      call.error = absl::StrCat("status ", flikpay::v1::TransactionStatus_Name(answer.status()));
    }
  };

  // Warm-up: connections to flikpay, flikpay's to the stand-in and Redis.
  std::atomic<int64_t> next{0};
  std::atomic<int> warmup_failed{0};
  {
    std::vector<std::thread> threads;
    const int warmup = absl::GetFlag(FLAGS_warmup_calls);
    for (int t = 0; t < concurrency; ++t) {
      threads.emplace_back([&] {
        for (int64_t n = next++; n < warmup; n = next++) {
          Call call;
          create(n, call);
          if (!call.ok) {
            if (warmup_failed++ == 0) {
              std::fprintf(stderr, "create-latency: warm-up call failed: %s\n", call.error.c_str());
            }
          }
        }
      });
    }
    for (std::thread& thread : threads) thread.join();
    if (warmup_failed > 0) {
      std::fprintf(stderr, "create-latency: %d of %d warm-up calls failed\n", warmup_failed.load(),
                   warmup);
      return 1;
    }
    next = warmup;
  }
  cleared = SimRequest(sim_port, "DELETE", "/_sim/journal");
  if (!cleared.ok() || cleared->status != 200) {
    std::fprintf(stderr, "create-latency: cannot clear bankart-sim's journal\n");
    return 1;
  }

  // The measured calls: each thread keeps one call in flight until the time is up.
  std::vector<std::vector<Call>> calls(concurrency);
  std::atomic<int> started{0};
  const int server_pid = absl::GetFlag(FLAGS_server_pid), sim_pid = absl::GetFlag(FLAGS_sim_pid);
  const double server_cpu_before = flikpay::bench::CpuSeconds(server_pid),
               sim_cpu_before = flikpay::bench::CpuSeconds(sim_pid);
  const int admin = absl::GetFlag(FLAGS_admin);
  const std::map<std::string, double> histograms_before = ServerHistograms(admin);
  const absl::Time start = absl::Now();
  const absl::Time stop = start + duration;
  {
    std::vector<std::thread> threads;
    for (int t = 0; t < concurrency; ++t) {
      threads.emplace_back([&, t] {
        for (int k = started++; k < max_calls; k = started++) {
          if (rate > 0) {
            // Paced: call k is due at k / rate (late calls go at once), at most --concurrency
            // in flight.
            const absl::Time due = start + absl::Seconds(1) * k / rate;
            if (due >= stop) break;
            absl::SleepFor(due - absl::Now());
          } else if (absl::Now() >= stop) {
            break;
          }
          calls[t].emplace_back();
          create(next++, calls[t].back());
        }
      });
    }
    for (std::thread& thread : threads) thread.join();
  }
  const absl::Duration elapsed = absl::Now() - start;
  const std::map<std::string, double> histograms_after = ServerHistograms(admin);
  const double server_cpu = flikpay::bench::CpuSeconds(server_pid) - server_cpu_before;
  const double sim_cpu = flikpay::bench::CpuSeconds(sim_pid) - sim_cpu_before;

  // The stand-in's time per request, by request id.
  absl::StatusOr<flikpay::testing::RawResponse> journal_answer =
      SimRequest(sim_port, "GET", "/_sim/journal");
  if (!journal_answer.ok() || journal_answer->status != 200) {
    std::fprintf(stderr, "create-latency: cannot read bankart-sim's journal\n");
    return 1;
  }
  const Json journal = Json::parse(journal_answer->body, nullptr, /*allow_exceptions=*/false);
  if (!journal.is_object() || !journal.contains("requests") || !journal["requests"].is_array()) {
    std::fprintf(stderr, "create-latency: bankart-sim's journal is not what was expected\n");
    return 1;
  }
  std::map<std::string, int64_t> handled_micros;
  int journal_without_time = 0;
  for (const Json& entry : journal["requests"]) {
    if (!entry.is_object() || entry.value("operation", "") != "debit") continue;
    auto micros = entry.find("handledMicros");
    if (micros == entry.end() || !micros->is_number_integer()) {
      ++journal_without_time;
      continue;
    }
    handled_micros[entry.value("requestId", "")] = micros->get<int64_t>();
  }

  std::vector<absl::Duration> totals, handled, added;
  int failed = 0, unjournaled = 0;
  std::string first_error;
  for (const std::vector<Call>& some : calls) {
    for (const Call& call : some) {
      if (!call.ok) {
        if (failed++ == 0) first_error = call.error;
        continue;
      }
      auto it = handled_micros.find(call.request_id);
      if (it == handled_micros.end()) {
        ++unjournaled;
        continue;
      }
      const absl::Duration at_sim = absl::Microseconds(it->second);
      totals.push_back(call.total);
      handled.push_back(at_sim);
      added.push_back(call.total - at_sim);
    }
  }
  std::sort(totals.begin(), totals.end());
  std::sort(handled.begin(), handled.end());
  std::sort(added.begin(), added.end());
  const int measured = static_cast<int>(totals.size());
  const double throughput = (measured + failed + unjournaled) / absl::ToDoubleSeconds(elapsed);

  std::fprintf(stderr,
               "create-latency: %d calls (%d measured, %d failed, %d without a journal entry, "
               "%d journal entries without handledMicros) in %.2f s from %d threads, %s kind\n",
               measured + failed + unjournaled, measured, failed, unjournaled, journal_without_time,
               absl::ToDoubleSeconds(elapsed), concurrency, kind_name.c_str());
  if (failed > 0) std::fprintf(stderr, "create-latency: first failure: %s\n", first_error.c_str());
  std::fprintf(stderr, "create-latency: %-22s %9s %9s %9s %9s %9s\n", "ms", "p50", "p90", "p99",
               "p99.9", "max");
  for (const auto& [name, values] :
       {std::pair<const char*, const std::vector<absl::Duration>*>{"total (client)", &totals},
        {"bankart-sim handling", &handled},
        {"added by flikpay", &added}}) {
    std::fprintf(stderr, "create-latency: %-22s %9.3f %9.3f %9.3f %9.3f %9.3f\n", name,
                 Ms(Percentile(*values, 0.5)), Ms(Percentile(*values, 0.9)),
                 Ms(Percentile(*values, 0.99)), Ms(Percentile(*values, 0.999)),
                 values->empty() ? 0.0 : Ms(values->back()));
  }

  if (!histograms_before.empty() && !histograms_after.empty() && !totals.empty()) {
    auto delta = [&](const std::string& key) {
      auto before = histograms_before.find(key);
      auto after = histograms_after.find(key);
      return after == histograms_after.end()
                 ? 0.0
                 : after->second - (before == histograms_before.end() ? 0.0 : before->second);
    };
    // Redis round trips of the calls: every command but the event hub's blocking XREAD.
    double redis_seconds = 0, redis_trips = 0;
    for (const auto& [key, value] : histograms_after) {
      if (absl::StrContains(key, "XREAD")) continue;
      if (absl::StartsWith(key, "flikpay_redis_round_trip_seconds_sum"))
        redis_seconds += delta(key);
      if (absl::StartsWith(key, "flikpay_redis_round_trip_seconds_count")) {
        redis_trips += delta(key);
      }
    }
    const double calls_seen =
        delta("flikpay_grpc_request_duration_seconds_count{method=\"CreateRtp\"}");
    auto mean_ms = [](const std::vector<absl::Duration>& values) {
      double sum = 0;
      for (absl::Duration value : values) sum += Ms(value);
      return values.empty() ? 0.0 : sum / values.size();
    };
    if (calls_seen > 0) {
      const double rpc = delta("flikpay_grpc_request_duration_seconds_sum{method=\"CreateRtp\"}") *
                         1000 / calls_seen;
      const double gateway =
          delta("flikpay_gateway_request_duration_seconds_sum{endpoint=\"debit\"}") * 1000 /
          calls_seen;
      const double redis = redis_seconds * 1000 / calls_seen;
      const double total = mean_ms(totals), at_sim = mean_ms(handled);
      std::fprintf(
          stderr,
          "create-latency: mean per call (server's histograms, %.0f calls): client %.3f "
          "ms = gRPC client and transport %.3f + server RPC %.3f; of the RPC: gateway call "
          "%.3f (stand-in handling %.3f, HTTP exchange %.3f), Redis %.3f in %.1f round "
          "trips, the rest %.3f\n",
          calls_seen, total, total - rpc, rpc, gateway, at_sim, gateway - at_sim, redis,
          redis_trips / calls_seen, rpc - gateway - redis);
    }
  }

  const absl::Duration target = absl::Milliseconds(absl::GetFlag(FLAGS_target_ms));
  const bool judged = target > absl::ZeroDuration();
  const std::string setting =
      rate > 0 ? absl::StrCat(concurrency, " concurrent at most, paced at ", rate, " calls/s")
               : absl::StrCat(concurrency, " concurrent");
  const bool valid = measured > 0 && failed == 0 && unjournaled == 0;
  flikpay::bench::PrintRow(
      absl::StrCat("CreateRtp added by flikpay p50 (", setting, "; baseline: total p50)"),
      MsText(Percentile(added, 0.5)), MsText(Percentile(totals, 0.5)),
      Ratio(Percentile(added, 0.5), Percentile(totals, 0.5)), "-", "INFO");
  flikpay::bench::PrintRow(
      absl::StrCat("CreateRtp added by flikpay p99 (", setting, "; baseline: total p99)"),
      MsText(Percentile(added, 0.99)), MsText(Percentile(totals, 0.99)),
      Ratio(Percentile(added, 0.99), Percentile(totals, 0.99)),
      judged ? absl::StrCat("<= ", MsText(target)) : "-",
      !judged ? "INFO" : (valid && Percentile(added, 0.99) <= target ? "PASS" : "FAIL"));
  flikpay::bench::PrintRow(
      absl::StrCat("CreateRtp total p50 (", setting, "; baseline: stand-in handling p50)"),
      MsText(Percentile(totals, 0.5)), MsText(Percentile(handled, 0.5)),
      Ratio(Percentile(totals, 0.5), Percentile(handled, 0.5)), "-", "INFO");
  flikpay::bench::PrintRow(
      absl::StrCat("CreateRtp total p99 (", setting, "; baseline: stand-in handling p99)"),
      MsText(Percentile(totals, 0.99)), MsText(Percentile(handled, 0.99)),
      Ratio(Percentile(totals, 0.99), Percentile(handled, 0.99)), "-", "INFO");
  flikpay::bench::PrintRow(absl::StrCat("CreateRtp throughput (", setting, ")"),
                           absl::StrFormat("%.0f calls/s", throughput), "-", "-", "-", "INFO");
  const int calls_made = measured + failed + unjournaled;
  if (server_pid > 0 && server_cpu_before >= 0 && calls_made > 0) {
    flikpay::bench::PrintRow(
        absl::StrCat("CreateRtp flikpay-server CPU per call (", setting,
                     "; baseline: bankart-sim CPU per call)"),
        absl::StrFormat("%.3f ms", server_cpu * 1000 / calls_made),
        sim_pid > 0 && sim_cpu_before >= 0 ? absl::StrFormat("%.3f ms", sim_cpu * 1000 / calls_made)
                                           : "-",
        sim_pid > 0 && sim_cpu > 0 ? absl::StrFormat("%.2f", server_cpu / sim_cpu) : "-", "-",
        "INFO");
  }
  flikpay::bench::PrintRow(
      "CreateRtp calls failed or not in the stand-in's journal",
      absl::StrCat(failed + unjournaled, " of ", measured + failed + unjournaled), "-", "-", "0",
      failed + unjournaled == 0 && measured > 0 ? "PASS" : "FAIL");
  std::fprintf(stderr, "create-latency: elapsed %.1f s in all\n",
               absl::ToDoubleSeconds(absl::Now() - began));
  return valid ? 0 : 1;
}
