#include "tests/support/e2e_fixture.h"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <regex>
#include <thread>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gateway/callback_parser.h"
#include "gateway/http_client.h"
#include "gateway/signing.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace flikpay::testing {
void E2eTest::SetUpTestSuite() {
  char dir_template[] = "/tmp/flikpay-e2e-redis-XXXXXX";
  ASSERT_NE(mkdtemp(dir_template), nullptr);
  redis_dir_ = dir_template;
  std::string line;
  // Redis cannot pick its own port and tell us, so the port is probed first; a test binary running
  // alongside may take it in between, and then another one is tried.
  absl::Status redis_status;
  for (int attempt = 0; attempt < 5 && redis_ == nullptr; ++attempt) {
    redis_port_ = FreeLoopbackPort();
    auto redis = StartRedis(&line);
    if (redis.ok()) {
      redis_ = *std::move(redis);
    } else {
      redis_status = redis.status();
    }
  }
  ASSERT_NE(redis_, nullptr) << redis_status;
  std::vector<std::string> sim_args = {BANKART_SIM_PATH, "--listen=127.0.0.1:0",
                                       "--time_scale=0.01", "--scenario_delay=20s",
                                       "--callback_timeout=2s"};
  sim_args.insert(sim_args.end(), sim_flags_.begin(), sim_flags_.end());
  auto sim = ChildProcess::Start(std::move(sim_args), "listening on", &line);
  ASSERT_TRUE(sim.ok()) << sim.status();
  sim_ = *std::move(sim);
  sim_port_ = PortFromLine(line);
  for (std::unique_ptr<Replica>& replica : replicas_) {
    replica = StartReplica(replica_flags_);
  }
}

void E2eTest::TearDownTestSuite() {
  // The sim and the replicas keep pooled keep-alive connections to each other, and an HTTP listener
  // that stops waits for its idle ones to time out (seconds). Stopped together, each side's exit
  // closes the other's connections at once; and a replica's gRPC shutdown waits for its open client
  // connections unless the test's channels are gone first.
  int exit_status[2] = {0, 0};
  std::vector<std::thread> stoppers;
  for (int i = 0; i < 2; ++i) {
    if (replicas_[i] == nullptr) continue;
    replicas_[i]->stub.reset();
    stoppers.emplace_back([i, &exit_status] { exit_status[i] = replicas_[i]->process->Stop(); });
  }
  if (sim_ != nullptr) stoppers.emplace_back([] { sim_->Stop(); });
  for (std::thread& stopper : stoppers) stopper.join();
  for (int i = 0; i < 2; ++i) {
    if (replicas_[i] == nullptr) continue;
    EXPECT_TRUE(WIFEXITED(exit_status[i]) && WEXITSTATUS(exit_status[i]) == 0)
        << "server exit " << exit_status[i];
    replicas_[i].reset();
  }
  sim_.reset();
  redis_.reset();
  if (!redis_dir_.empty()) {
    std::error_code ignored;
    std::filesystem::remove_all(redis_dir_, ignored);
    redis_dir_.clear();
  }
}

void E2eTest::SetUp() {
  ASSERT_NE(replicas_[0], nullptr);
  ASSERT_NE(replicas_[1], nullptr);
  // Faults are scoped to their test's ids; clearing them still releases callbacks an earlier,
  // failed test left held for reordering.
  SimControl("DELETE", "/_sim/faults");
}

absl::StatusOr<std::unique_ptr<ChildProcess>> E2eTest::StartRedis(std::string* line) {
  return ChildProcess::Start(
      {REDIS_SERVER_PATH, "--port", std::to_string(redis_port_), "--bind", "127.0.0.1", "--save",
       "", "--appendonly", "yes", "--appendfsync", "everysec", "--dir", redis_dir_},
      "Ready to accept connections", line);
}

std::vector<std::string> E2eTest::ServerArgs(const std::vector<std::string>& extra_flags) {
  std::vector<std::string> args = {
      FLIKPAY_SERVER_PATH, "--grpc_addr=127.0.0.1:0", "--callback_addr=127.0.0.1:0",
      "--admin_addr=127.0.0.1:0", absl::StrCat("--redis_url=redis://127.0.0.1:", redis_port_, "/0"),
      absl::StrCat("--gateway_url=http://127.0.0.1:", sim_port_, "/api/v3"), "--gateway_is_standin",
      "--api_user=flikpay-sim", "--api_password=flikpay-sim-password",
      "--ecommerce_api_key=sim-ecommerce-key", "--ecommerce_shared_secret=sim-ecommerce-secret",
      "--in_person_api_key=sim-in-person-key", "--in_person_shared_secret=sim-in-person-secret",
      "--out_of_band_api_key=sim-out-of-band-key",
      "--out_of_band_shared_secret=sim-out-of-band-secret", "--payout_api_key=sim-payout-key",
      "--payout_shared_secret=sim-payout-secret", "--stream_buffer=64", "--drain_time=3s",
      "--readiness_interval=100ms",
      // A fast reconciler, so lost callbacks and unknown outcomes settle in seconds.
      "--reconcile_interval=100ms", "--unknown_check_after=300ms", "--pending_check_after=2s",
      "--expiry_grace=1s", "--not_found_grace=1s", "--recheck_after=300ms",
      "--status_queries_per_minute=100000"};
  // A suite that tests caller identity configures it; every other suite calls as the dev caller.
  const bool identifies_callers =
      std::any_of(extra_flags.begin(), extra_flags.end(), [](const std::string& flag) {
        return absl::StartsWith(flag, "--grpc_client_ca") ||
               absl::StartsWith(flag, "--caller_tokens");
      });
  if (!identifies_callers) args.push_back("--insecure_dev");
  args.insert(args.end(), extra_flags.begin(), extra_flags.end());
  return args;
}

std::unique_ptr<Replica> E2eTest::StartReplica(std::vector<std::string> extra_flags) {
  std::string line;
  auto process = ChildProcess::Start(ServerArgs(extra_flags), "flikpay-server listening", &line);
  EXPECT_TRUE(process.ok()) << process.status();
  if (!process.ok()) return nullptr;
  auto replica = std::make_unique<Replica>();
  replica->process = *std::move(process);
  std::smatch match;
  if (!std::regex_search(line, match, std::regex("grpc=(\\d+) callbacks=(\\d+) admin=(\\d+)"))) {
    ADD_FAILURE() << "no ports in: " << line;
    return nullptr;
  }
  replica->grpc_port = std::stoi(match[1]);
  replica->callback_port = std::stoi(match[2]);
  replica->admin_port = std::stoi(match[3]);
  replica->stub = v1::PaymentService::NewStub(grpc::CreateChannel(
      absl::StrCat("127.0.0.1:", replica->grpc_port),
      channel_credentials_ != nullptr ? channel_credentials_ : grpc::InsecureChannelCredentials()));
  return replica;
}

std::string E2eTest::NewId(absl::string_view prefix) {
  static std::atomic<int> counter{0};
  return absl::StrCat(prefix, "-", absl::ToUnixMillis(absl::Now()) % 100000000, "-", counter++);
}

std::string E2eTest::NewPrefix(absl::string_view name) { return absl::StrCat(NewId(name), "-"); }

Json E2eTest::SimControl(const std::string& method, const std::string& path, const Json& body) {
  gateway::HttpClient http;
  gateway::HttpRequest request;
  request.method = method;
  request.url = absl::StrCat("http://127.0.0.1:", sim_port_, path);
  request.body = body.is_null() ? "" : body.dump();
  gateway::HttpExchange exchange = http.Send(request);
  return Json::parse(exchange.response.body, nullptr, false);
}

void E2eTest::AddApiFault(const Json& fault) {
  const Json reply = SimControl("POST", "/_sim/faults", fault);
  EXPECT_TRUE(reply.is_object() && reply.value("ok", false))
      << fault.dump() << ": " << reply.dump();
}

void E2eTest::AddCallbackFault(const Json& fault) {
  const Json reply = SimControl("POST", "/_sim/callback-faults", fault);
  EXPECT_TRUE(reply.is_object() && reply.value("ok", false))
      << fault.dump() << ": " << reply.dump();
}

int E2eTest::SimDebitsFor(const std::string& id) {
  const Json journal = SimControl("GET", "/_sim/journal");
  int count = 0;
  for (const Json& entry : journal["requests"]) {
    count +=
        gateway::JsonText(entry, "merchantTransactionId") == id && entry.value("created", false);
  }
  return count;
}

grpc::Status E2eTest::Create(v1::PaymentService::Stub& stub, const v1::CreateRtpRequest& request,
                             v1::Transaction* out, absl::Duration timeout) {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  return stub.CreateRtp(&context, request, out);
}

v1::CreateRtpRequest E2eTest::Rtp(const std::string& alias, v1::RtpKind kind, int64_t amount) {
  v1::CreateRtpRequest request;
  request.set_merchant_transaction_id(NewId("e2e"));
  request.set_amount_minor(amount);
  request.set_kind(kind);
  request.set_alias(alias);
  request.set_description("end-to-end test");
  // What a web shop sends; E-commerce needs them (the others ignore them).
  request.set_payer_ip("46.123.232.123");
  request.set_success_url("https://shop.example/success");
  request.set_cancel_url("https://shop.example/cancel");
  request.set_error_url("https://shop.example/error");
  return request;
}

grpc::Status E2eTest::Get(v1::PaymentService::Stub& stub, const std::string& id,
                          v1::Transaction* out) {
  v1::GetStatusRequest request;
  request.set_merchant_transaction_id(id);
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
  return stub.GetStatus(&context, request, out);
}

v1::Transaction E2eTest::AwaitFinal(v1::PaymentService::Stub& stub, const std::string& id,
                                    absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  v1::Transaction transaction;
  while (absl::Now() < deadline) {
    if (Get(stub, id, &transaction).ok() && core::IsFinal(transaction.status())) {
      return transaction;
    }
    absl::SleepFor(absl::Milliseconds(25));
  }
  ADD_FAILURE() << id << " did not reach a final status";
  return transaction;
}

v1::Transaction E2eTest::AwaitFinalForFaults(v1::PaymentService::Stub& stub,
                                             const std::string& id) {
  return AwaitFinal(stub, id, absl::Seconds(20));
}

int E2eTest::Health(const Replica& replica, const std::string& service) {
  auto health = grpc::health::v1::Health::NewStub(grpc::CreateChannel(
      absl::StrCat("127.0.0.1:", replica.grpc_port), grpc::InsecureChannelCredentials()));
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(service);
  grpc::health::v1::HealthCheckResponse response;
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(2)));
  if (!health->Check(&context, request, &response).ok()) return -1;
  return response.status();
}

bool E2eTest::AwaitHealth(const Replica& replica, const std::string& service, int status,
                          absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (Health(replica, service) != status) {
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(absl::Milliseconds(50));
  }
  return true;
}

int E2eTest::AdminStatus(const Replica& replica, const std::string& path) {
  gateway::HttpClient http;
  gateway::HttpRequest request;
  request.url = absl::StrCat("http://127.0.0.1:", replica.admin_port, path);
  return static_cast<int>(http.Send(request).response.status);
}

int64_t E2eTest::Metric(const Replica& replica, const std::string& name) {
  gateway::HttpClient http;
  gateway::HttpRequest request;
  request.url = absl::StrCat("http://127.0.0.1:", replica.admin_port, "/metrics");
  const std::string body = http.Send(request).response.body;
  // `name` may carry labels, e.g. flikpay_callbacks_total{result="replay"}: matched literally.
  const std::string prefix = absl::StrCat("\n", name, " ");
  const size_t at = body.find(prefix);
  if (at == std::string::npos) return -1;
  // prometheus-cpp writes counts as plain integers ("5"); a gauge may be "-1" or "0.25".
  return static_cast<int64_t>(std::strtod(body.c_str() + at + prefix.size(), nullptr));
}

int E2eTest::StartedStreams(const Replica& replica) {
  return static_cast<int>(Metric(replica, "flikpay_streams_started_total"));
}

std::vector<v1::StatusEvent> E2eTest::ReadEvents(const Replica& replica,
                                                 const v1::StreamStatusRequest& request,
                                                 size_t count, absl::Duration timeout,
                                                 std::function<void()> after_open,
                                                 bool expect_all) {
  const int started_before = StartedStreams(replica);
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  std::unique_ptr<grpc::ClientReader<v1::StatusEvent>> reader =
      replica.stub->StreamStatus(&context, request);
  if (after_open) {
    const absl::Time give_up = absl::Now() + absl::Seconds(5);
    while (StartedStreams(replica) <= started_before && absl::Now() < give_up) {
      absl::SleepFor(absl::Milliseconds(10));
    }
    if (StartedStreams(replica) <= started_before) {
      ADD_FAILURE() << "replica grpc=" << replica.grpc_port
                    << " did not start feeding the subscription {" << request.ShortDebugString()
                    << "} within 5 s; " << count << " events expected";
    }
    after_open();
  }
  std::vector<v1::StatusEvent> events;
  v1::StatusEvent event;
  while (events.size() < count && reader->Read(&event)) events.push_back(event);
  context.TryCancel();
  const grpc::Status ended = reader->Finish();
  if (expect_all && events.size() < count) {
    ADD_FAILURE() << "StreamStatus {" << request.ShortDebugString()
                  << "} on replica grpc=" << replica.grpc_port << " gave " << events.size()
                  << " of " << count << " events expected within " << absl::FormatDuration(timeout)
                  << "; the stream ended with " << ended.error_code() << " "
                  << ended.error_message();
  }
  return events;
}

void E2eTest::PaidDebit(const v1::CreateRtpRequest& debit, v1::Transaction* created) {
  ASSERT_TRUE(Create(A(), debit, created).ok()) << debit.alias();
  ASSERT_EQ(AwaitFinal(A(), debit.merchant_transaction_id()).status(),
            v1::TRANSACTION_STATUS_SUCCESS)
      << debit.alias();
}

std::vector<v1::CreateRtpRequest> E2eTest::RtpsFor(const std::string& prefix,
                                                   const std::vector<std::string>& aliases,
                                                   v1::RtpKind kind) {
  std::vector<v1::CreateRtpRequest> requests;
  for (const std::string& alias : aliases) {
    requests.push_back(Rtp(alias, kind));
    requests.back().set_merchant_transaction_id(absl::StrCat(prefix, requests.size()));
  }
  return requests;
}

std::vector<v1::StatusEvent> E2eTest::CreateWhileWatching(
    const std::vector<v1::CreateRtpRequest>& requests, v1::PaymentService::Stub& create_on,
    const Replica& watch_on, size_t expected, absl::Duration pause) {
  v1::StreamStatusRequest subscription;
  for (const v1::CreateRtpRequest& request : requests) {
    subscription.add_merchant_transaction_ids(request.merchant_transaction_id());
  }
  return ReadEvents(
      watch_on, subscription, expected + 1, absl::Seconds(8),
      [&] {
        for (const v1::CreateRtpRequest& request : requests) {
          v1::Transaction out;
          EXPECT_TRUE(Create(create_on, request, &out).ok()) << request.merchant_transaction_id();
          absl::SleepFor(pause);
        }
      },
      /*expect_all=*/false);
}

E2eTest::CreateTally E2eTest::CreateConcurrently(const v1::CreateRtpRequest& request, int threads,
                                                 int calls) {
  std::atomic<int> ok{0}, aborted{0}, other{0};
  std::vector<std::thread> callers;
  for (int t = 0; t < threads; ++t) {
    callers.emplace_back([&, t] {
      for (int i = 0; i < calls; ++i) {
        v1::Transaction out;
        grpc::Status status = Create((t + i) % 2 == 0 ? A() : B(), request, &out);
        if (status.ok()) {
          ++ok;
        } else if (status.error_code() == grpc::StatusCode::ABORTED) {
          ++aborted;
        } else {
          ++other;
        }
      }
    });
  }
  for (std::thread& caller : callers) caller.join();
  return {ok.load(), aborted.load(), other.load()};
}

grpc::Status E2eTest::SuccessfulPayout(v1::PaymentService::Stub& stub, const std::string& id,
                                       int64_t amount_minor, const std::string& description) {
  v1::PayoutRequest payout;
  payout.set_merchant_transaction_id(id);
  payout.set_alias("success.payout@bankart.flik");
  payout.set_amount_minor(amount_minor);
  payout.set_description(description);
  v1::Transaction out;
  grpc::ClientContext call;
  return stub.Payout(&call, payout, &out);
}

int E2eTest::PostCallback(int port, const std::string& body, const std::string& secret,
                          const std::string& query, absl::Time date_at) {
  const std::string uri = absl::StrCat("/callbacks/bankart?", query);
  const std::string date = gateway::FormatHttpDate(date_at);
  const std::string content_type = "application/json; charset=utf-8";
  gateway::HttpClient http;
  gateway::HttpRequest request;
  request.method = "POST";
  request.url = absl::StrCat("http://127.0.0.1:", port, uri);
  request.body = body;
  request.headers = {
      {"Content-Type", content_type},
      {"Date", date},
      {"X-Signature", gateway::Sign(secret, {"POST", body, content_type, date, uri})}};
  return static_cast<int>(http.Send(request).response.status);
}

void E2eTest::ExpectEverySeedScenario() {
  struct Case {
    const char* alias;
    v1::RtpKind kind;
    v1::TransactionStatus status;
    int error_code;
  };
  const Case cases[] = {
      {"success.debit@bankart.flik", v1::RTP_KIND_IN_PERSON, v1::TRANSACTION_STATUS_SUCCESS, 0},
      {"0038670999000", v1::RTP_KIND_OUT_OF_BAND, v1::TRANSACTION_STATUS_SUCCESS, 0},
      {"cancel.debit@bankart.flik", v1::RTP_KIND_ECOMMERCE, v1::TRANSACTION_STATUS_CANCELLED, 2002},
      {"070 999 111", v1::RTP_KIND_IN_PERSON, v1::TRANSACTION_STATUS_CANCELLED, 2002},
      {"error.debit@bankart.flik", v1::RTP_KIND_OUT_OF_BAND, v1::TRANSACTION_STATUS_ERROR, 1003},
      {"+386 70 999 222", v1::RTP_KIND_ECOMMERCE, v1::TRANSACTION_STATUS_ERROR, 1003},
      {"success.debit_success.refund@bankart.flik", v1::RTP_KIND_IN_PERSON,
       v1::TRANSACTION_STATUS_SUCCESS, 0},
      {"0038670999444", v1::RTP_KIND_IN_PERSON, v1::TRANSACTION_STATUS_SUCCESS, 0},
      {"someone@example.si", v1::RTP_KIND_IN_PERSON, v1::TRANSACTION_STATUS_ERROR, 2007},
  };
  std::vector<std::pair<const Case*, std::string>> created;
  for (const Case& c : cases) {
    v1::CreateRtpRequest request = Rtp(c.alias, c.kind);
    v1::Transaction transaction;
    ASSERT_TRUE(Create(A(), request, &transaction).ok()) << c.alias;
    // The callback may beat the create's own answer: then the create already returns the final
    // status.
    EXPECT_TRUE(transaction.status() == v1::TRANSACTION_STATUS_PENDING ||
                transaction.status() == c.status)
        << c.alias << " " << transaction.status();
    EXPECT_FALSE(transaction.gateway_uuid().empty());
    EXPECT_TRUE(transaction.has_expires_at());
    EXPECT_NE(transaction.alias(), c.alias);  // masked
    created.push_back({&c, request.merchant_transaction_id()});
  }
  for (const auto& [c, id] : created) {
    v1::Transaction final_state = AwaitFinal(B(), id);
    EXPECT_EQ(final_state.status(), c->status) << c->alias;
    EXPECT_EQ(final_state.error().code(), c->error_code) << c->alias;
    ASSERT_GE(final_state.history_size(), 1);
    EXPECT_EQ(final_state.history(final_state.history_size() - 1).source(),
              v1::EVENT_SOURCE_CALLBACK);
    EXPECT_EQ(final_state.history(final_state.history_size() - 1).to(), c->status);
    if (c->error_code == 2007) {
      EXPECT_EQ(final_state.error().adapter_code(), "03");
      EXPECT_TRUE(
          absl::StrContains(final_state.error().payer_message(), "napačen kontaktni podatek"));
    }
  }
}

grpc::Status E2eTest::RefundOn(v1::PaymentService::Stub& stub, const std::string& original,
                               int64_t amount_minor, v1::Transaction* out, std::string* id) {
  v1::RefundRequest request;
  request.set_merchant_transaction_id(NewId("refund"));
  request.set_original_merchant_transaction_id(original);
  request.set_amount_minor(amount_minor);
  if (id != nullptr) *id = request.merchant_transaction_id();
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  return stub.Refund(&context, request, out);
}

E2eTest::RefundTally E2eTest::RefundConcurrently(const std::string& original, int64_t amount_minor,
                                                 int threads, int calls) {
  std::atomic<int> accepted{0}, refused{0}, other{0};
  std::vector<std::thread> callers;
  for (int t = 0; t < threads; ++t) {
    callers.emplace_back([&, t] {
      for (int i = 0; i < calls; ++i) {
        v1::Transaction out;
        const grpc::Status status =
            RefundOn((t + i) % 2 == 0 ? A() : B(), original, amount_minor, &out);
        if (status.ok()) {
          ++accepted;
        } else if (status.error_code() == grpc::StatusCode::FAILED_PRECONDITION) {
          ++refused;
        } else {
          ++other;
        }
      }
    });
  }
  for (std::thread& caller : callers) caller.join();
  return {accepted.load(), refused.load(), other.load()};
}

std::string E2eTest::RefundedAtBankart(const std::string& gateway_uuid) {
  for (const Json& entry : SimControl("GET", "/_sim/transactions")) {
    if (gateway::JsonText(entry, "uuid") == gateway_uuid) {
      return gateway::JsonText(entry, "refundedOrPendingAmount");
    }
  }
  ADD_FAILURE() << "bankart-sim has no transaction " << gateway_uuid;
  return "";
}

}  // namespace flikpay::testing
