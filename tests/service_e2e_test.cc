// flikpay end to end: redis-server, bankart-sim and two flikpay-server
// processes on loopback, driven through gRPC like a calling service would.
#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <memory>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "flikpay/v1/payment_service.grpc.pb.h"
#include "gateway/callback_parser.h"
#include "gateway/http_client.h"
#include "gateway/signing.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/support/process.h"

namespace flikpay {
namespace {

using Json = nlohmann::json;
using ::flikpay::testing::ChildProcess;
using v1::TransactionStatus;

int FreePort() {
  const int probe = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  bind(probe, reinterpret_cast<sockaddr*>(&address), sizeof(address));
  getsockname(probe, reinterpret_cast<sockaddr*>(&address), &length);
  close(probe);
  return ntohs(address.sin_port);
}

struct Replica {
  std::unique_ptr<ChildProcess> process;
  int grpc_port = 0;
  int callback_port = 0;
  int admin_port = 0;
  std::unique_ptr<v1::PaymentService::Stub> stub;
};

class ServiceTest : public ::testing::Test {
 public:  // the fault-suite helpers below use these too
  static void SetUpTestSuite() {
    redis_port_ = FreePort();
    std::string line;
    char dir_template[] = "/tmp/flikpay-e2e-redis-XXXXXX";
    redis_dir_ = mkdtemp(dir_template);
    auto redis = StartRedis(&line);
    ASSERT_TRUE(redis.ok()) << redis.status();
    redis_ = redis->release();
    auto sim = ChildProcess::Start(
        {BANKART_SIM_PATH, "--listen=127.0.0.1:0", "--time_scale=0.01",
         "--scenario_delay=20s", "--callback_timeout=2s"},
        "listening on", &line);
    ASSERT_TRUE(sim.ok()) << sim.status();
    sim_ = sim->release();
    sim_port_ = ::flikpay::testing::PortFromLine(line);
    for (int i = 0; i < 2; ++i) replicas_[i] = StartReplica();
  }

  static absl::StatusOr<std::unique_ptr<ChildProcess>> StartRedis(
      std::string* line) {
    // AOF on, in a private folder: the fault suite stops and restarts it.
    return ChildProcess::Start(
        {REDIS_SERVER_PATH, "--port", std::to_string(redis_port_), "--bind",
         "127.0.0.1", "--save", "", "--appendonly", "yes", "--appendfsync",
         "everysec", "--dir", redis_dir_},
        "Ready to accept connections", line);
  }

  static Replica* StartReplica(std::vector<std::string> extra_flags = {}) {
    std::string line;
    std::vector<std::string> args = {
        FLIKPAY_SERVER_PATH, "--grpc_addr=127.0.0.1:0",
        "--callback_addr=127.0.0.1:0", "--admin_addr=127.0.0.1:0",
        absl::StrCat("--redis_url=redis://127.0.0.1:", redis_port_, "/0"),
        absl::StrCat("--gateway_url=http://127.0.0.1:", sim_port_, "/api/v3"),
        "--api_user=flikpay-sim", "--api_password=flikpay-sim-password",
        "--ecommerce_api_key=sim-ecommerce-key",
        "--ecommerce_shared_secret=sim-ecommerce-secret",
        "--in_person_api_key=sim-in-person-key",
        "--in_person_shared_secret=sim-in-person-secret",
        "--out_of_band_api_key=sim-out-of-band-key",
        "--out_of_band_shared_secret=sim-out-of-band-secret",
        "--payout_api_key=sim-payout-key",
        "--payout_shared_secret=sim-payout-secret", "--stream_buffer=64",
        "--drain_time=3s",
        // A fast reconciler, so lost callbacks and unknown outcomes settle in
        // seconds.
        "--reconcile_interval=100ms", "--unknown_check_after=300ms",
        "--pending_check_after=2s", "--expiry_grace=1s", "--not_found_grace=1s",
        "--recheck_after=300ms", "--status_queries_per_minute=100000"};
    args.insert(args.end(), extra_flags.begin(), extra_flags.end());
    auto process =
        ChildProcess::Start(std::move(args), "flikpay-server listening", &line);
    EXPECT_TRUE(process.ok()) << process.status();
    if (!process.ok()) return nullptr;
    auto* replica = new Replica;
    replica->process = *std::move(process);
    std::smatch match;
    std::regex_search(line, match,
                      std::regex("grpc=(\\d+) callbacks=(\\d+) admin=(\\d+)"));
    replica->grpc_port = std::stoi(match[1]);
    replica->callback_port = std::stoi(match[2]);
    replica->admin_port = std::stoi(match[3]);
    replica->stub = v1::PaymentService::NewStub(
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", replica->grpc_port),
                            grpc::InsecureChannelCredentials()));
    return replica;
  }

  static void TearDownTestSuite() {
    for (Replica*& replica : replicas_) {
      if (replica == nullptr) continue;
      const int status = replica->process->Stop();
      EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
          << "server exit " << status;
      delete replica;
      replica = nullptr;
    }
    delete sim_;
    delete redis_;
  }

  void SetUp() override {
    ASSERT_NE(replicas_[0], nullptr);
    ASSERT_NE(replicas_[1], nullptr);
    SimControl("DELETE", "/_sim/faults");
  }

  static v1::PaymentService::Stub& A() { return *replicas_[0]->stub; }
  static v1::PaymentService::Stub& B() { return *replicas_[1]->stub; }

  static std::string NewId(absl::string_view prefix) {
    static std::atomic<int> counter{0};
    return absl::StrCat(prefix, "-",
                        absl::ToUnixMillis(absl::Now()) % 100000000, "-",
                        counter++);
  }

  static Json SimControl(const std::string& method, const std::string& path,
                         const Json& body = {}) {
    gateway::HttpClient http;
    gateway::HttpRequest request;
    request.method = method;
    request.url = absl::StrCat("http://127.0.0.1:", sim_port_, path);
    request.body = body.is_null() ? "" : body.dump();
    gateway::HttpExchange exchange = http.Send(request);
    return Json::parse(exchange.response.body, nullptr, false);
  }

  static int SimDebitsFor(const std::string& id) {
    const Json journal = SimControl("GET", "/_sim/journal");
    int count = 0;
    for (const Json& entry : journal["requests"]) {
      count += gateway::JsonText(entry, "merchantTransactionId") == id &&
               entry.value("created", false);
    }
    return count;
  }

  static grpc::Status Create(v1::PaymentService::Stub& stub,
                             const v1::CreateRtpRequest& request,
                             v1::Transaction* out,
                             absl::Duration timeout = absl::Seconds(10)) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
    return stub.CreateRtp(&context, request, out);
  }

  static v1::CreateRtpRequest Rtp(const std::string& alias, v1::RtpKind kind,
                                  int64_t amount = 1111) {
    v1::CreateRtpRequest request;
    request.set_merchant_transaction_id(NewId("e2e"));
    request.set_amount_minor(amount);
    request.set_kind(kind);
    request.set_alias(alias);
    request.set_description("end-to-end test");
    return request;
  }

  static grpc::Status Get(v1::PaymentService::Stub& stub, const std::string& id,
                          v1::Transaction* out) {
    v1::GetStatusRequest request;
    request.set_merchant_transaction_id(id);
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
    return stub.GetStatus(&context, request, out);
  }

  // Polls GetStatus until the status is final (callbacks come ~50 ms after a
  // request).
  static v1::Transaction AwaitFinal(
      v1::PaymentService::Stub& stub, const std::string& id,
      absl::Duration timeout = absl::Seconds(10)) {
    const absl::Time deadline = absl::Now() + timeout;
    v1::Transaction transaction;
    while (absl::Now() < deadline) {
      if (Get(stub, id, &transaction).ok() &&
          (transaction.status() == v1::TRANSACTION_STATUS_SUCCESS ||
           transaction.status() == v1::TRANSACTION_STATUS_CANCELLED ||
           transaction.status() == v1::TRANSACTION_STATUS_ERROR)) {
        return transaction;
      }
      absl::SleepFor(absl::Milliseconds(25));
    }
    ADD_FAILURE() << id << " did not reach a final status";
    return transaction;
  }

  // How many subscriptions the replica has begun feeding
  // (flikpay_streams_started_total). A counter, not the open-streams gauge: a
  // stream of an earlier test ending at the same moment would cancel out the
  // gauge's increase.
  static int StartedStreams(const Replica& replica) {
    gateway::HttpClient http;
    gateway::HttpRequest request;
    request.url =
        absl::StrCat("http://127.0.0.1:", replica.admin_port, "/metrics");
    const std::string body = http.Send(request).response.body;
    std::smatch match;
    if (!std::regex_search(
            body, match,
            std::regex("\nflikpay_streams_started_total (\\d+)"))) {
      return -1;
    }
    return std::stoi(match[1]);
  }

  // Reads events from a StreamStatus call on `replica` until `count` arrived or
  // the time is up. `after_open` runs once the replica feeds the subscription,
  // so it sees every later change.
  static std::vector<v1::StatusEvent> ReadEvents(
      const Replica& replica, const v1::StreamStatusRequest& request,
      size_t count, absl::Duration timeout,
      std::function<void()> after_open = nullptr) {
    const int started_before = StartedStreams(replica);
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
    std::unique_ptr<grpc::ClientReader<v1::StatusEvent>> reader =
        replica.stub->StreamStatus(&context, request);
    if (after_open) {
      const absl::Time give_up = absl::Now() + absl::Seconds(5);
      while (StartedStreams(replica) <= started_before &&
             absl::Now() < give_up) {
        absl::SleepFor(absl::Milliseconds(10));
      }
      after_open();
    }
    std::vector<v1::StatusEvent> events;
    v1::StatusEvent event;
    while (events.size() < count && reader->Read(&event))
      events.push_back(event);
    context.TryCancel();
    reader->Finish().ok();
    return events;
  }

  static v1::Transaction AwaitFinalForFaults(v1::PaymentService::Stub& stub,
                                             const std::string& id) {
    return AwaitFinal(stub, id, absl::Seconds(20));
  }

  struct CreateTally {
    int ok = 0, aborted = 0, other = 0;
  };
  // Sends the same CreateRtp `threads` x `calls` times at once, alternating
  // replicas.
  static CreateTally CreateConcurrently(const v1::CreateRtpRequest& request,
                                        int threads, int calls) {
    std::atomic<int> ok{0}, aborted{0}, other{0};
    std::vector<std::thread> callers;
    for (int t = 0; t < threads; ++t) {
      callers.emplace_back([&, t] {
        for (int i = 0; i < calls; ++i) {
          v1::Transaction out;
          grpc::Status status =
              Create((t + i) % 2 == 0 ? A() : B(), request, &out);
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

  // A payout to the sandbox alias that always succeeds.
  static grpc::Status SuccessfulPayout(v1::PaymentService::Stub& stub,
                                       const std::string& id,
                                       int64_t amount_minor,
                                       const std::string& description = "") {
    v1::PayoutRequest payout;
    payout.set_merchant_transaction_id(id);
    payout.set_alias("success.payout@bankart.flik");
    payout.set_amount_minor(amount_minor);
    payout.set_description(description);
    v1::Transaction out;
    grpc::ClientContext call;
    return stub.Payout(&call, payout, &out);
  }

  static inline ChildProcess* redis_ = nullptr;
  static inline ChildProcess* sim_ = nullptr;
  static inline int redis_port_ = 0;
  static inline std::string redis_dir_;
  static inline int sim_port_ = 0;
  static inline Replica* replicas_[2] = {nullptr, nullptr};
};

TEST_F(ServiceTest, EverySeedScenarioEndsInItsStatusThroughGrpc) {
  struct Case {
    const char* alias;
    v1::RtpKind kind;
    TransactionStatus status;
    int error_code;
  };
  const Case cases[] = {
      {"success.debit@bankart.flik", v1::RTP_KIND_IN_PERSON,
       v1::TRANSACTION_STATUS_SUCCESS, 0},
      {"0038670999000", v1::RTP_KIND_OUT_OF_BAND,
       v1::TRANSACTION_STATUS_SUCCESS, 0},
      {"cancel.debit@bankart.flik", v1::RTP_KIND_ECOMMERCE,
       v1::TRANSACTION_STATUS_CANCELLED, 2002},
      {"070 999 111", v1::RTP_KIND_IN_PERSON, v1::TRANSACTION_STATUS_CANCELLED,
       2002},
      {"error.debit@bankart.flik", v1::RTP_KIND_OUT_OF_BAND,
       v1::TRANSACTION_STATUS_ERROR, 1003},
      {"+386 70 999 222", v1::RTP_KIND_ECOMMERCE, v1::TRANSACTION_STATUS_ERROR,
       1003},
      {"success.debit_success.refund@bankart.flik", v1::RTP_KIND_IN_PERSON,
       v1::TRANSACTION_STATUS_SUCCESS, 0},
      {"0038670999444", v1::RTP_KIND_IN_PERSON, v1::TRANSACTION_STATUS_SUCCESS,
       0},
      {"someone@example.si", v1::RTP_KIND_IN_PERSON,
       v1::TRANSACTION_STATUS_ERROR, 2007},
  };
  std::vector<std::pair<const Case*, std::string>> created;
  for (const Case& c : cases) {
    v1::CreateRtpRequest request = Rtp(c.alias, c.kind);
    v1::Transaction transaction;
    ASSERT_TRUE(Create(A(), request, &transaction).ok()) << c.alias;
    // The callback may beat the create's own answer: then the create already
    // returns the final status.
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
    EXPECT_EQ(final_state.history(final_state.history_size() - 1).to(),
              c->status);
    if (c->error_code == 2007) {
      EXPECT_EQ(final_state.error().adapter_code(), "03");
      EXPECT_TRUE(absl::StrContains(final_state.error().payer_message(),
                                    "napačen kontaktni podatek"));
    }
  }
}

TEST_F(ServiceTest, ChangeMadeOnOneReplicaIsStreamedFromTheOther) {
  v1::CreateRtpRequest request =
      Rtp("success.debit@bankart.flik", v1::RTP_KIND_IN_PERSON);
  v1::StreamStatusRequest subscription;
  subscription.add_merchant_transaction_ids(request.merchant_transaction_id());
  std::vector<v1::StatusEvent> events =
      ReadEvents(*replicas_[1], subscription, 2, absl::Seconds(10), [&] {
        v1::Transaction created;
        EXPECT_TRUE(Create(A(), request, &created).ok());
      });
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].previous_status(), v1::TRANSACTION_STATUS_UNKNOWN);
  EXPECT_EQ(events[0].transaction().status(), v1::TRANSACTION_STATUS_PENDING);
  EXPECT_EQ(events[0].source(), v1::EVENT_SOURCE_RPC);
  EXPECT_EQ(events[1].previous_status(), v1::TRANSACTION_STATUS_PENDING);
  EXPECT_EQ(events[1].transaction().status(), v1::TRANSACTION_STATUS_SUCCESS);
  EXPECT_EQ(events[1].source(), v1::EVENT_SOURCE_CALLBACK);
  EXPECT_FALSE(events[0].cursor().empty());
  EXPECT_NE(events[0].cursor(), events[1].cursor());
}

TEST_F(ServiceTest, RefundsAreCappedAndAFailedRefundGivesItsAmountBack) {
  v1::CreateRtpRequest debit = Rtp("success.debit_success.refund@bankart.flik",
                                   v1::RTP_KIND_OUT_OF_BAND, 1000);
  v1::Transaction paid;
  ASSERT_TRUE(Create(A(), debit, &paid).ok());
  ASSERT_EQ(AwaitFinal(A(), debit.merchant_transaction_id()).status(),
            v1::TRANSACTION_STATUS_SUCCESS);

  auto refund = [&](int64_t amount, v1::Transaction* out) {
    v1::RefundRequest request;
    request.set_merchant_transaction_id(NewId("refund"));
    request.set_original_merchant_transaction_id(
        debit.merchant_transaction_id());
    request.set_amount_minor(amount);
    grpc::ClientContext context;
    return std::make_pair(request.merchant_transaction_id(),
                          B().Refund(&context, request, out));
  };
  v1::Transaction first;
  auto [first_id, first_status] = refund(600, &first);
  ASSERT_TRUE(first_status.ok()) << first_status.error_message();
  EXPECT_EQ(first.type(), v1::TRANSACTION_TYPE_REFUND);
  EXPECT_EQ(AwaitFinal(A(), first_id).status(), v1::TRANSACTION_STATUS_SUCCESS);
  v1::Transaction original;
  ASSERT_TRUE(Get(A(), debit.merchant_transaction_id(), &original).ok());
  EXPECT_EQ(original.refunded_amount_minor(), 600);

  v1::Transaction too_much;
  auto [too_much_id, too_much_status] = refund(401, &too_much);
  EXPECT_EQ(too_much_status.error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_TRUE(
      absl::StartsWith(too_much_status.error_message(), "amount_minor"));

  v1::Transaction not_a_debit;
  v1::RefundRequest of_refund;
  of_refund.set_merchant_transaction_id(NewId("refund"));
  of_refund.set_original_merchant_transaction_id(first_id);
  of_refund.set_amount_minor(1);
  grpc::ClientContext context;
  EXPECT_EQ(A().Refund(&context, of_refund, &not_a_debit).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);

  // The failing-refund scenario: the refund ends in ERROR and its 400 cents are
  // free again.
  v1::CreateRtpRequest second_debit = Rtp(
      "success.debit_error.refund@bankart.flik", v1::RTP_KIND_IN_PERSON, 400);
  ASSERT_TRUE(Create(A(), second_debit, &paid).ok());
  ASSERT_EQ(AwaitFinal(A(), second_debit.merchant_transaction_id()).status(),
            v1::TRANSACTION_STATUS_SUCCESS);
  for (int round = 0; round < 2; ++round) {
    v1::RefundRequest request;
    request.set_merchant_transaction_id(NewId("refund"));
    request.set_original_merchant_transaction_id(
        second_debit.merchant_transaction_id());
    request.set_amount_minor(400);
    v1::Transaction failed;
    grpc::ClientContext refund_context;
    ASSERT_TRUE(A().Refund(&refund_context, request, &failed).ok())
        << "round " << round;
    EXPECT_EQ(AwaitFinal(B(), request.merchant_transaction_id()).status(),
              v1::TRANSACTION_STATUS_ERROR);
  }
}

TEST_F(ServiceTest, PayoutsSucceedOrFailPerScenario) {
  for (const auto& [alias, status] :
       std::vector<std::pair<std::string, TransactionStatus>>{
           {"success.payout@bankart.flik", v1::TRANSACTION_STATUS_SUCCESS},
           {"070999555", v1::TRANSACTION_STATUS_SUCCESS},
           {"error.payout@bankart.flik", v1::TRANSACTION_STATUS_ERROR},
           {"0038670999666", v1::TRANSACTION_STATUS_ERROR}}) {
    v1::PayoutRequest request;
    request.set_merchant_transaction_id(NewId("payout"));
    request.set_alias(alias);
    request.set_amount_minor(123456);
    v1::Transaction payout;
    grpc::ClientContext context;
    ASSERT_TRUE(A().Payout(&context, request, &payout).ok()) << alias;
    EXPECT_EQ(payout.type(), v1::TRANSACTION_TYPE_PAYOUT);
    EXPECT_EQ(AwaitFinal(B(), request.merchant_transaction_id()).status(),
              status)
        << alias;
  }
}

TEST_F(ServiceTest, RedirectFlowWhenTheShopHasNoAlias) {
  v1::CreateRtpRequest request = Rtp("", v1::RTP_KIND_ECOMMERCE);
  request.set_success_url("https://shop.example/ok");
  v1::Transaction created;
  ASSERT_TRUE(Create(A(), request, &created).ok());
  EXPECT_EQ(created.status(), v1::TRANSACTION_STATUS_PENDING);
  ASSERT_TRUE(absl::StartsWith(
      created.redirect_url(),
      absl::StrCat("http://127.0.0.1:", sim_port_, "/redirect/")));
  SimControl(
      "POST",
      absl::StrCat("/_sim/transactions/", created.gateway_uuid(), "/choose"),
      Json{{"scenario", "success"}});
  EXPECT_EQ(AwaitFinal(B(), request.merchant_transaction_id()).status(),
            v1::TRANSACTION_STATUS_SUCCESS);
}

TEST_F(ServiceTest, BadInputIsRefusedNamingTheField) {
  struct Case {
    const char* field;
    std::function<void(v1::CreateRtpRequest&)> spoil;
  };
  const std::vector<Case> cases = {
      {"merchant_transaction_id",
       [](auto& r) { r.set_merchant_transaction_id(""); }},
      {"merchant_transaction_id",
       [](auto& r) { r.set_merchant_transaction_id(std::string(51, 'x')); }},
      {"merchant_transaction_id",
       [](auto& r) { r.set_merchant_transaction_id("has space"); }},
      {"amount_minor", [](auto& r) { r.set_amount_minor(0); }},
      {"amount_minor", [](auto& r) { r.set_amount_minor(-100); }},
      {"currency", [](auto& r) { r.set_currency("USD"); }},
      {"kind", [](auto& r) { r.set_kind(v1::RTP_KIND_UNSPECIFIED); }},
      {"alias", [](auto& r) { r.set_alias("12345"); }},
      {"alias", [](auto& r) { r.set_alias(""); }},
      {"description",
       [](auto& r) { r.set_description(std::string(256, 'd')); }},
      {"purpose_code", [](auto& r) { r.set_purpose_code("WEBI"); }},
      {"purpose_code",
       [](auto& r) {
         r.set_structured_reference(true);
         r.set_purpose_code("webi");
       }},
      {"success_url",
       [](auto& r) { r.set_success_url("javascript:alert(1)"); }},
      {"payer_ip", [](auto& r) { r.set_payer_ip("300.1.1.1"); }},
      {"merchant_metadata",
       [](auto& r) { r.set_merchant_metadata(std::string(256, 'm')); }},
  };
  for (const Case& c : cases) {
    v1::CreateRtpRequest request =
        Rtp("success.debit@bankart.flik", v1::RTP_KIND_IN_PERSON);
    c.spoil(request);
    v1::Transaction out;
    grpc::Status status = Create(A(), request, &out);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << c.field;
    EXPECT_TRUE(absl::StartsWith(status.error_message(), c.field))
        << status.error_message();
    if (!request.merchant_transaction_id().empty()) {
      EXPECT_EQ(SimDebitsFor(request.merchant_transaction_id()), 0) << c.field;
    }
  }
  v1::Transaction missing;
  EXPECT_EQ(Get(A(), "no-such-transaction", &missing).error_code(),
            grpc::StatusCode::NOT_FOUND);
  v1::GetStatusRequest no_id;
  grpc::ClientContext context;
  EXPECT_EQ(A().GetStatus(&context, no_id, &missing).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(ServiceTest, ConcurrentDuplicatesOnTwoReplicasReachTheGatewayOnce) {
  v1::CreateRtpRequest request =
      Rtp("success.debit@bankart.flik", v1::RTP_KIND_OUT_OF_BAND);
  const CreateTally tally = CreateConcurrently(request, 40, 1);
  EXPECT_EQ(tally.ok + tally.aborted, 40);
  EXPECT_EQ(tally.other, 0);
  EXPECT_GE(tally.ok, 1);
  // Once the first call is done, every retry gets the stored transaction.
  v1::Transaction first, again;
  ASSERT_TRUE(Create(B(), request, &first).ok());
  ASSERT_TRUE(Create(A(), request, &again).ok());
  EXPECT_EQ(first.gateway_uuid(), again.gateway_uuid());
  EXPECT_EQ(SimDebitsFor(request.merchant_transaction_id()), 1);

  request.set_amount_minor(request.amount_minor() + 1);
  v1::Transaction changed;
  EXPECT_EQ(Create(A(), request, &changed).error_code(),
            grpc::StatusCode::ALREADY_EXISTS);
}

TEST_F(ServiceTest, ConcurrentRefundsOnTwoReplicasNeverExceedTheOriginal) {
  v1::CreateRtpRequest debit = Rtp("success.debit_success.refund@bankart.flik",
                                   v1::RTP_KIND_IN_PERSON, 1000);
  v1::Transaction paid;
  ASSERT_TRUE(Create(A(), debit, &paid).ok());
  ASSERT_EQ(AwaitFinal(A(), debit.merchant_transaction_id()).status(),
            v1::TRANSACTION_STATUS_SUCCESS);
  std::atomic<int64_t> accepted_amount{0};
  std::atomic<int> accepted{0}, refused{0};
  std::vector<std::thread> callers;
  for (int i = 0; i < 30; ++i) {  // 30 x 70 = 2100 cents asked, 1000 available
    callers.emplace_back([&, i] {
      v1::RefundRequest request;
      request.set_merchant_transaction_id(NewId("cr"));
      request.set_original_merchant_transaction_id(
          debit.merchant_transaction_id());
      request.set_amount_minor(70);
      v1::Transaction out;
      grpc::ClientContext context;
      grpc::Status status =
          (i % 2 == 0 ? A() : B()).Refund(&context, request, &out);
      if (status.ok()) {
        ++accepted;
        accepted_amount += 70;
      } else if (status.error_code() == grpc::StatusCode::FAILED_PRECONDITION) {
        ++refused;
      }
    });
  }
  for (std::thread& caller : callers) caller.join();
  std::printf("concurrent refunds: %d accepted (%lld cents), %d refused\n",
              accepted.load(), static_cast<long long>(accepted_amount.load()),
              refused.load());
  EXPECT_EQ(accepted, 14);  // 14 x 70 = 980 <= 1000 < 15 x 70
  EXPECT_EQ(refused, 16);
  // Bankart's own record agrees.
  for (const Json& entry : SimControl("GET", "/_sim/transactions")) {
    if (gateway::JsonText(entry, "uuid") == paid.gateway_uuid()) {
      EXPECT_EQ(gateway::JsonText(entry, "refundedOrPendingAmount"), "9.80");
    }
  }
}

TEST_F(ServiceTest, DuplicatedCallbacksMakeOneEvent) {
  SimControl("POST", "/_sim/callback-faults",
             Json{{"kind", "duplicate"}, {"copies", 4}});
  v1::CreateRtpRequest request =
      Rtp("success.debit@bankart.flik", v1::RTP_KIND_IN_PERSON);
  v1::StreamStatusRequest subscription;
  subscription.add_merchant_transaction_ids(request.merchant_transaction_id());
  std::vector<v1::StatusEvent> events =
      ReadEvents(*replicas_[0], subscription, 3, absl::Seconds(2), [&] {
        v1::Transaction created;
        EXPECT_TRUE(Create(B(), request, &created).ok());
      });
  ASSERT_EQ(events.size(),
            2u);  // PENDING and SUCCESS; the 3 copies changed nothing
  EXPECT_EQ(events[1].transaction().status(), v1::TRANSACTION_STATUS_SUCCESS);
  v1::Transaction stored;
  ASSERT_TRUE(Get(A(), request.merchant_transaction_id(), &stored).ok());
  EXPECT_EQ(stored.history_size(), 2);
  EXPECT_EQ(stored.version(), events[1].transaction().version());
}

TEST_F(ServiceTest, ReorderedCallbacksStillEndInTheRightStates) {
  // The success callback of the first is held back and delivered after the
  // second's.
  SimControl("POST", "/_sim/callback-faults",
             Json{{"kind", "reorder"}, {"count", 2}});
  v1::CreateRtpRequest first =
      Rtp("success.debit@bankart.flik", v1::RTP_KIND_IN_PERSON);
  v1::CreateRtpRequest second =
      Rtp("cancel.debit@bankart.flik", v1::RTP_KIND_IN_PERSON);
  v1::Transaction out;
  ASSERT_TRUE(Create(A(), first, &out).ok());
  absl::SleepFor(
      absl::Milliseconds(300));  // its callback is due (200 ms) and held
  ASSERT_TRUE(Create(B(), second, &out).ok());
  EXPECT_EQ(AwaitFinal(A(), first.merchant_transaction_id()).status(),
            v1::TRANSACTION_STATUS_SUCCESS);
  EXPECT_EQ(AwaitFinal(B(), second.merchant_transaction_id()).status(),
            v1::TRANSACTION_STATUS_CANCELLED);
  for (const v1::CreateRtpRequest* request : {&first, &second}) {
    v1::Transaction stored;
    ASSERT_TRUE(Get(A(), request->merchant_transaction_id(), &stored).ok());
    EXPECT_EQ(stored.history_size(), 2);  // UNKNOWN->PENDING, PENDING->final
  }
}

// Posts a callback to a replica, signed with the given secret.
int PostCallback(int port, const std::string& body, const std::string& secret,
                 const std::string& query = "connector=in_person") {
  const std::string uri = absl::StrCat("/callbacks/bankart?", query);
  const std::string date = gateway::FormatHttpDate(absl::Now());
  const std::string content_type = "application/json; charset=utf-8";
  gateway::HttpClient http;
  gateway::HttpRequest request;
  request.method = "POST";
  request.url = absl::StrCat("http://127.0.0.1:", port, uri);
  request.body = body;
  request.headers = {
      {"Content-Type", content_type},
      {"Date", date},
      {"X-Signature",
       gateway::Sign(secret, {"POST", body, content_type, date, uri})}};
  return static_cast<int>(http.Send(request).response.status);
}

TEST_F(ServiceTest, ContradictingCallbackAfterAFinalStateIsRecordedNotApplied) {
  v1::CreateRtpRequest request =
      Rtp("success.debit@bankart.flik", v1::RTP_KIND_IN_PERSON);
  v1::Transaction created;
  ASSERT_TRUE(Create(A(), request, &created).ok());
  ASSERT_EQ(AwaitFinal(A(), request.merchant_transaction_id()).status(),
            v1::TRANSACTION_STATUS_SUCCESS);
  const Json late = {
      {"result", "ERROR"},
      {"uuid", created.gateway_uuid()},
      {"merchantTransactionId", request.merchant_transaction_id()},
      {"transactionType", "DEBIT"},
      {"amount", "11.11"},
      {"currency", "EUR"},
      {"errors", {{{"message", "late"}, {"code", "1003"}}}}};
  EXPECT_EQ(PostCallback(replicas_[1]->callback_port, late.dump(),
                         "sim-in-person-secret"),
            200);
  v1::Transaction after;
  ASSERT_TRUE(Get(A(), request.merchant_transaction_id(), &after).ok());
  EXPECT_EQ(after.status(), v1::TRANSACTION_STATUS_SUCCESS);
  ASSERT_EQ(after.history_size(), 3);
  EXPECT_EQ(after.history(2).to(), v1::TRANSACTION_STATUS_ERROR);
  EXPECT_FALSE(after.history(2).note().empty());
}

TEST_F(ServiceTest, BadlySignedCallbackIsRefusedAndChangesNothing) {
  v1::CreateRtpRequest request = Rtp("0038670999000", v1::RTP_KIND_IN_PERSON);
  SimControl("POST", "/_sim/callback-faults", Json{{"kind", "drop"}});
  v1::Transaction created;
  ASSERT_TRUE(Create(A(), request, &created).ok());
  const Json forged = {
      {"result", "OK"},
      {"uuid", created.gateway_uuid()},
      {"merchantTransactionId", request.merchant_transaction_id()},
      {"transactionType", "DEBIT"},
      {"amount", "11.11"},
      {"currency", "EUR"}};
  EXPECT_EQ(PostCallback(replicas_[0]->callback_port, forged.dump(),
                         "guessed-secret"),
            401);
  EXPECT_EQ(PostCallback(replicas_[0]->callback_port, "{not json",
                         "sim-in-person-secret"),
            400);
  v1::Transaction after;
  ASSERT_TRUE(Get(A(), request.merchant_transaction_id(), &after).ok());
  EXPECT_EQ(after.status(), v1::TRANSACTION_STATUS_PENDING);
  EXPECT_EQ(after.version(), created.version());
  // The real (validly signed) one is taken.
  EXPECT_EQ(PostCallback(replicas_[0]->callback_port, forged.dump(),
                         "sim-in-person-secret"),
            200);
  ASSERT_TRUE(Get(B(), request.merchant_transaction_id(), &after).ok());
  EXPECT_EQ(after.status(), v1::TRANSACTION_STATUS_SUCCESS);
  // A valid callback for a transaction flikpay never started is kept and
  // acknowledged.
  const Json stranger = {{"result", "OK"},
                         {"uuid", "ffffffffffffffffffff"},
                         {"merchantTransactionId", "not-ours"},
                         {"transactionType", "DEBIT"}};
  EXPECT_EQ(PostCallback(replicas_[1]->callback_port, stranger.dump(),
                         "sim-in-person-secret"),
            200);
}

TEST_F(ServiceTest, StreamResumesFromACursorWithoutGapsOrDuplicates) {
  std::vector<std::string> ids;
  v1::StreamStatusRequest live;
  live.add_types(v1::TRANSACTION_TYPE_PAYOUT);
  std::vector<v1::StatusEvent> first_pass =
      ReadEvents(*replicas_[1], live, 6, absl::Seconds(10), [&] {
        for (int i = 0; i < 3; ++i) {
          ids.push_back(NewId("resume"));
          EXPECT_TRUE(SuccessfulPayout(A(), ids.back(), 100 + i).ok());
        }
      });
  ASSERT_EQ(first_pass.size(), 6u);  // PENDING and SUCCESS for each
  // Resume after the second event, on the other replica: exactly the four later
  // events.
  v1::StreamStatusRequest resume;
  resume.add_types(v1::TRANSACTION_TYPE_PAYOUT);
  resume.set_resume_after(first_pass[1].cursor());
  std::vector<v1::StatusEvent> resumed =
      ReadEvents(*replicas_[0], resume, 5, absl::Seconds(2));
  ASSERT_EQ(resumed.size(), 4u);
  for (size_t i = 0; i < 4; ++i)
    EXPECT_EQ(resumed[i].cursor(), first_pass[i + 2].cursor());

  v1::StreamStatusRequest bad;
  bad.set_resume_after("yesterday");
  grpc::ClientContext context;
  auto reader = A().StreamStatus(&context, bad);
  v1::StatusEvent ignored;
  while (reader->Read(&ignored)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(ServiceTest,
       GatewayTimeoutLeavesAnUnknownTransactionThatRetriesDoNotResend) {
  SimControl("POST", "/_sim/faults",
             Json{{"kind", "timeout_after"},
                  {"operation", "debit"},
                  {"delay_ms", 2500}});
  v1::CreateRtpRequest request =
      Rtp("success.debit@bankart.flik", v1::RTP_KIND_IN_PERSON);
  v1::Transaction out;
  grpc::Status status = Create(A(), request, &out, absl::Seconds(1));
  EXPECT_TRUE(status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED ||
              status.error_code() == grpc::StatusCode::UNAVAILABLE)
      << status.error_code();
  absl::SleepFor(absl::Milliseconds(300));
  v1::Transaction stored;
  ASSERT_TRUE(Get(B(), request.merchant_transaction_id(), &stored).ok());
  // Either still UNKNOWN, or the gateway's callback already told the truth.
  EXPECT_NE(stored.status(), v1::TRANSACTION_STATUS_ERROR);
  v1::Transaction retried;
  ASSERT_TRUE(Create(B(), request, &retried)
                  .ok());  // the stored one, not a second debit
  EXPECT_EQ(AwaitFinal(A(), request.merchant_transaction_id()).status(),
            v1::TRANSACTION_STATUS_SUCCESS);
  EXPECT_EQ(SimDebitsFor(request.merchant_transaction_id()), 1);
}

TEST_F(ServiceTest, HealthServiceReportsServing) {
  auto health = grpc::health::v1::Health::NewStub(
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", replicas_[0]->grpc_port),
                          grpc::InsecureChannelCredentials()));
  for (const char* service : {"", "flikpay.v1.PaymentService"}) {
    grpc::health::v1::HealthCheckRequest request;
    request.set_service(service);
    grpc::health::v1::HealthCheckResponse response;
    grpc::ClientContext context;
    ASSERT_TRUE(health->Check(&context, request, &response).ok()) << service;
    EXPECT_EQ(response.status(),
              grpc::health::v1::HealthCheckResponse::SERVING);
  }
}

TEST_F(ServiceTest, ShutdownEndsStreamsWithUnavailableAndACursor) {
  std::unique_ptr<Replica> third(StartReplica());
  ASSERT_NE(third, nullptr);
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(20)));
  v1::StreamStatusRequest everything;
  const int started_before = StartedStreams(*third);
  auto reader = third->stub->StreamStatus(&context, everything);
  while (StartedStreams(*third) <= started_before)
    absl::SleepFor(absl::Milliseconds(10));
  const int exit_status = third->process->Stop();
  v1::StatusEvent ignored;
  while (reader->Read(&ignored)) {
  }
  grpc::Status ended = reader->Finish();
  EXPECT_EQ(ended.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_TRUE(absl::StrContains(ended.error_message(), "resume_after="))
      << ended.error_message();
  EXPECT_TRUE(WIFEXITED(exit_status) && WEXITSTATUS(exit_status) == 0);
}

bool IsFinalStatus(TransactionStatus status);
bool IsFinalStatusOf(const v1::StatusEvent& event);

TEST_F(ServiceTest, SlowSubscriberIsEndedAndResumesWithoutLoss) {
  const std::string prefix = NewId("slow");
  v1::StreamStatusRequest request;
  request.add_types(v1::TRANSACTION_TYPE_PAYOUT);
  // A subscriber whose flow-control window stays small, as a slow consumer's
  // does: no bandwidth probing, little lookahead.
  grpc::ChannelArguments slow_args;
  slow_args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  slow_args.SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 4096);
  auto slow_stub = v1::PaymentService::NewStub(grpc::CreateCustomChannel(
      absl::StrCat("127.0.0.1:", replicas_[0]->grpc_port),
      grpc::InsecureChannelCredentials(), slow_args));
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
  // Start from a known cursor, so that resuming never depends on having
  // received anything.
  std::vector<v1::StatusEvent> warmup =
      ReadEvents(*replicas_[1], request, 1, absl::Seconds(5), [&] {
        EXPECT_TRUE(SuccessfulPayout(B(), prefix + "-warmup", 100).ok());
      });
  ASSERT_EQ(warmup.size(), 1u);
  request.set_resume_after(warmup[0].cursor());
  const int started_before = StartedStreams(*replicas_[0]);
  auto reader = slow_stub->StreamStatus(&context, request);
  while (StartedStreams(*replicas_[0]) <= started_before) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  // The subscriber reads nothing while 300 payouts (600 events) happen:
  // HTTP/2 flow control backs up, and the replica's 64-event buffer fills.
  std::vector<std::thread> senders;
  std::set<std::string> ids;
  absl::Mutex ids_mutex;
  for (int t = 0; t < 4; ++t) {
    senders.emplace_back([&, t] {
      for (int i = 0; i < 75; ++i) {
        const std::string id = absl::StrCat(prefix, "-", t, "-", i);
        // A long description makes bigger events.
        if (SuccessfulPayout(t % 2 ? A() : B(), id, 100, std::string(200, 'x'))
                .ok()) {
          absl::MutexLock lock(&ids_mutex);
          ids.insert(id);
        }
      }
    });
  }
  for (std::thread& sender : senders) sender.join();
  for (const std::string& id : ids) AwaitFinal(B(), id);
  absl::SleepFor(absl::Milliseconds(500));

  std::map<std::string, int> finals;
  std::string cursor = request.resume_after();
  v1::StatusEvent event;
  while (reader->Read(&event)) {
    if (IsFinalStatusOf(event))
      ++finals[event.transaction().merchant_transaction_id()];
    cursor = event.cursor();
  }
  grpc::Status ended = reader->Finish();
  EXPECT_EQ(ended.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
      << ended.error_message();
  EXPECT_TRUE(absl::StrContains(ended.error_message(), "resume_after="))
      << ended.error_message();
  const size_t before_resume = finals.size();
  // Resume from the last cursor this subscriber received, on the other
  // replica.
  request.set_resume_after(cursor);
  for (const v1::StatusEvent& later :
       ReadEvents(*replicas_[1], request, 100000, absl::Seconds(3))) {
    if (IsFinalStatusOf(later)) {
      ++finals[later.transaction().merchant_transaction_id()];
    }
  }
  int exactly_once = 0;
  for (const std::string& id : ids) exactly_once += finals[id] == 1;
  std::printf(
      "slow subscriber: %zu payouts; ended %s after the final events of %zu; "
      "after resuming, %d of %zu seen exactly once\n",
      ids.size(), ended.error_message().c_str(), before_resume, exactly_once,
      ids.size());
  EXPECT_LT(before_resume, ids.size());  // it really was cut off
  EXPECT_EQ(exactly_once, static_cast<int>(ids.size()));
}

// ---------------------------------------------------------------------------
// The fault suite: each scenario prints what it compared and fails on any
// difference. The destructive ones (Redis restart, kill -9) come last.

bool IsFinalStatusOf(const v1::StatusEvent& event) {
  return IsFinalStatus(event.transaction().status());
}

bool IsFinalStatus(TransactionStatus status) {
  return status == v1::TRANSACTION_STATUS_SUCCESS ||
         status == v1::TRANSACTION_STATUS_CANCELLED ||
         status == v1::TRANSACTION_STATUS_ERROR;
}

TEST_F(ServiceTest, Fault1_TimeoutOnADebitBankartCreated_SettlesOnceBySuccess) {
  SimControl("POST", "/_sim/faults",
             Json{{"kind", "timeout_after"},
                  {"operation", "debit"},
                  {"delay_ms", 2500}});
  SimControl("POST", "/_sim/callback-faults", Json{{"kind", "drop"}});
  v1::CreateRtpRequest request =
      Rtp("success.debit@bankart.flik", v1::RTP_KIND_IN_PERSON);
  v1::Transaction out;
  grpc::Status first = Create(A(), request, &out, absl::Seconds(1));
  EXPECT_TRUE(first.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED ||
              first.error_code() == grpc::StatusCode::UNAVAILABLE);
  EXPECT_TRUE(absl::StrContains(first.error_message(),
                                request.merchant_transaction_id()))
      << first.error_message();
  v1::Transaction stored;
  ASSERT_TRUE(Get(B(), request.merchant_transaction_id(), &stored).ok());
  EXPECT_EQ(stored.status(), v1::TRANSACTION_STATUS_UNKNOWN);
  v1::Transaction retried;  // a caller retry in between: same transaction
  ASSERT_TRUE(Create(B(), request, &retried).ok());
  EXPECT_EQ(retried.status(), v1::TRANSACTION_STATUS_UNKNOWN);
  v1::Transaction settled =
      AwaitFinal(A(), request.merchant_transaction_id(), absl::Seconds(15));
  EXPECT_EQ(settled.status(), v1::TRANSACTION_STATUS_SUCCESS);
  EXPECT_EQ(settled.history(settled.history_size() - 1).source(),
            v1::EVENT_SOURCE_RECONCILER);
  const int debits = SimDebitsFor(request.merchant_transaction_id());
  std::printf("fault 1: status %s, debits at Bankart %d (want 1)\n",
              v1::TransactionStatus_Name(settled.status()).c_str(), debits);
  EXPECT_EQ(debits, 1);
}

TEST_F(ServiceTest, Fault2_TimeoutOnADebitBankartNeverGot_EndsInError) {
  SimControl("POST", "/_sim/faults",
             Json{{"kind", "timeout_before"},
                  {"operation", "debit"},
                  {"delay_ms", 2500}});
  v1::CreateRtpRequest request =
      Rtp("success.debit@bankart.flik", v1::RTP_KIND_IN_PERSON);
  v1::Transaction out;
  EXPECT_FALSE(Create(A(), request, &out, absl::Seconds(1)).ok());
  v1::Transaction settled =
      AwaitFinal(B(), request.merchant_transaction_id(), absl::Seconds(15));
  EXPECT_EQ(settled.status(), v1::TRANSACTION_STATUS_ERROR);
  EXPECT_EQ(settled.error().code(), 8001);
  const int debits = SimDebitsFor(request.merchant_transaction_id());
  std::printf("fault 2: status %s, debits at Bankart %d (want 0)\n",
              v1::TransactionStatus_Name(settled.status()).c_str(), debits);
  EXPECT_EQ(debits, 0);
}

TEST_F(ServiceTest, Fault3_LostCallbacks_ReconcilerFindsTheFinalStates) {
  SimControl("POST", "/_sim/callback-faults",
             Json{{"kind", "drop"}, {"count", 3}});
  const std::vector<std::pair<std::string, TransactionStatus>> cases = {
      {"success.debit@bankart.flik", v1::TRANSACTION_STATUS_SUCCESS},
      {"cancel.debit@bankart.flik", v1::TRANSACTION_STATUS_CANCELLED},
      {"error.debit@bankart.flik", v1::TRANSACTION_STATUS_ERROR}};
  std::vector<v1::CreateRtpRequest> requests;
  v1::StreamStatusRequest subscription;
  for (const auto& [alias, status] : cases) {
    requests.push_back(Rtp(alias, v1::RTP_KIND_OUT_OF_BAND));
    subscription.add_merchant_transaction_ids(
        requests.back().merchant_transaction_id());
  }
  // Ask for one more than expected: a second event per change would show.
  std::vector<v1::StatusEvent> events =
      ReadEvents(*replicas_[1], subscription, 7, absl::Seconds(8), [&] {
        for (const v1::CreateRtpRequest& request : requests) {
          v1::Transaction out;
          EXPECT_TRUE(Create(A(), request, &out).ok());
        }
      });
  std::map<std::string, std::vector<TransactionStatus>> seen;
  for (const v1::StatusEvent& event : events) {
    seen[event.transaction().merchant_transaction_id()].push_back(
        event.transaction().status());
  }
  std::printf("fault 3: %zu events for 3 transactions (want 6)\n",
              events.size());
  EXPECT_EQ(events.size(), 6u);
  for (size_t i = 0; i < requests.size(); ++i) {
    const auto& statuses = seen[requests[i].merchant_transaction_id()];
    ASSERT_EQ(statuses.size(), 2u);
    EXPECT_EQ(statuses[1], cases[i].second);
  }
}

TEST_F(ServiceTest, Fault4_CallbacksDuplicatedFiveTimesAndReordered) {
  SimControl("POST", "/_sim/callback-faults",
             Json{{"kind", "duplicate"}, {"count", 3}, {"copies", 5}});
  SimControl("POST", "/_sim/callback-faults",
             Json{{"kind", "reorder"}, {"count", 3}});
  const char* aliases[] = {"success.debit@bankart.flik", "0038670999111",
                           "error.debit@bankart.flik",   "0038670999000",
                           "cancel.debit@bankart.flik",  "0038670999222"};
  const TransactionStatus expected[] = {
      v1::TRANSACTION_STATUS_SUCCESS,   v1::TRANSACTION_STATUS_CANCELLED,
      v1::TRANSACTION_STATUS_ERROR,     v1::TRANSACTION_STATUS_SUCCESS,
      v1::TRANSACTION_STATUS_CANCELLED, v1::TRANSACTION_STATUS_ERROR};
  std::vector<v1::CreateRtpRequest> requests;
  v1::StreamStatusRequest subscription;
  for (const char* alias : aliases) {
    requests.push_back(Rtp(alias, v1::RTP_KIND_IN_PERSON));
    subscription.add_merchant_transaction_ids(
        requests.back().merchant_transaction_id());
  }
  std::vector<v1::StatusEvent> events =
      ReadEvents(*replicas_[0], subscription, 13, absl::Seconds(8), [&] {
        for (const v1::CreateRtpRequest& request : requests) {
          v1::Transaction out;
          EXPECT_TRUE(Create(B(), request, &out).ok());
          absl::SleepFor(absl::Milliseconds(60));
        }
      });
  std::printf("fault 4: %zu events for 6 transactions (want 12)\n",
              events.size());
  EXPECT_EQ(events.size(), 12u);
  for (size_t i = 0; i < requests.size(); ++i) {
    v1::Transaction stored =
        AwaitFinal(A(), requests[i].merchant_transaction_id());
    EXPECT_EQ(stored.status(), expected[i]) << aliases[i];
  }
}

TEST_F(ServiceTest, Fault7_ThousandConcurrentIdenticalCreatesMakeOneDebit) {
  v1::CreateRtpRequest request =
      Rtp("success.debit@bankart.flik", v1::RTP_KIND_ECOMMERCE);
  const CreateTally tally = CreateConcurrently(request, 50, 20);
  const int debits = SimDebitsFor(request.merchant_transaction_id());
  std::printf(
      "fault 7: 1000 calls: %d answered the transaction, %d ABORTED while in "
      "flight, %d other; debits at Bankart %d (want 1)\n",
      tally.ok, tally.aborted, tally.other, debits);
  EXPECT_EQ(tally.ok + tally.aborted, 1000);
  EXPECT_EQ(debits, 1);
}

TEST_F(ServiceTest, Fault8_TwoHundredConcurrentRefundsNeverExceedTheOriginal) {
  v1::CreateRtpRequest debit = Rtp("success.debit_success.refund@bankart.flik",
                                   v1::RTP_KIND_IN_PERSON, 10000);
  v1::Transaction paid;
  ASSERT_TRUE(Create(A(), debit, &paid).ok());
  ASSERT_EQ(AwaitFinal(A(), debit.merchant_transaction_id()).status(),
            v1::TRANSACTION_STATUS_SUCCESS);
  std::atomic<int> accepted{0}, refused{0}, other{0};
  std::vector<std::thread> callers;
  for (int t = 0; t < 20; ++t) {
    callers.emplace_back([&, t] {
      for (int i = 0; i < 10; ++i) {
        v1::RefundRequest request;
        request.set_merchant_transaction_id(NewId("f8"));
        request.set_original_merchant_transaction_id(
            debit.merchant_transaction_id());
        request.set_amount_minor(70);  // 200 x 70 = 14000 > 10000
        v1::Transaction out;
        grpc::ClientContext context;
        grpc::Status status =
            ((t + i) % 2 == 0 ? A() : B()).Refund(&context, request, &out);
        if (status.ok()) {
          ++accepted;
        } else if (status.error_code() ==
                   grpc::StatusCode::FAILED_PRECONDITION) {
          ++refused;
        } else {
          ++other;
        }
      }
    });
  }
  for (std::thread& caller : callers) caller.join();
  std::string at_bankart;
  for (const Json& entry : SimControl("GET", "/_sim/transactions")) {
    if (gateway::JsonText(entry, "uuid") == paid.gateway_uuid()) {
      at_bankart = gateway::JsonText(entry, "refundedOrPendingAmount");
    }
  }
  std::printf(
      "fault 8: 200 refunds of 70: %d accepted (%d cents, original 10000), %d "
      "refused, %d other; Bankart's refunded+pending %s\n",
      accepted.load(), accepted.load() * 70, refused.load(), other.load(),
      at_bankart.c_str());
  EXPECT_EQ(accepted, 142);  // 142 x 70 = 9940 <= 10000 < 143 x 70
  EXPECT_EQ(refused, 58);
  EXPECT_EQ(at_bankart, "99.40");
}

// Creates RTPs on both replicas until `stop`, keeping the ids that were
// acknowledged (OK) and all that were attempted.
struct Load {
  std::atomic<bool> stop{false};
  absl::Mutex mutex;
  std::vector<std::string> acknowledged;
  std::vector<std::string> attempted;
  std::atomic<int> failures{0};
  std::vector<std::thread> workers;

  void Start(const std::string& prefix, int threads,
             std::function<v1::PaymentService::Stub*(int)> pick) {
    for (int t = 0; t < threads; ++t) {
      workers.emplace_back([this, prefix, t, pick] {
        for (int i = 0; !stop; ++i) {
          v1::CreateRtpRequest request;
          request.set_merchant_transaction_id(
              absl::StrCat(prefix, "-", t, "-", i));
          request.set_amount_minor(500);
          request.set_kind(v1::RTP_KIND_IN_PERSON);
          request.set_alias("success.debit@bankart.flik");
          {
            absl::MutexLock lock(&mutex);
            attempted.push_back(request.merchant_transaction_id());
          }
          v1::Transaction out;
          grpc::ClientContext context;
          context.set_deadline(
              absl::ToChronoTime(absl::Now() + absl::Seconds(3)));
          grpc::Status status = pick(t + i)->CreateRtp(&context, request, &out);
          if (status.ok()) {
            absl::MutexLock lock(&mutex);
            acknowledged.push_back(request.merchant_transaction_id());
          } else {
            ++failures;
            absl::SleepFor(absl::Milliseconds(50));
          }
          absl::SleepFor(absl::Milliseconds(20));
        }
      });
    }
  }
  void Finish() {
    stop = true;
    for (std::thread& worker : workers) worker.join();
  }
};

// Bankart's own record of the debits it created whose ids start with prefix.
std::set<std::string> CreatedAtBankart(const Json& journal,
                                       const std::string& prefix) {
  std::set<std::string> ids;
  for (const Json& entry : journal["requests"]) {
    const std::string id = gateway::JsonText(entry, "merchantTransactionId");
    if (absl::StartsWith(id, prefix) && entry.value("created", false)) {
      ids.insert(id);
    }
  }
  return ids;
}

// Waits for each transaction to settle; counts those that ended SUCCESS.
int CountSettledAsSuccess(v1::PaymentService::Stub& stub,
                          const std::set<std::string>& ids) {
  int success = 0;
  for (const std::string& id : ids) {
    success += ServiceTest::AwaitFinalForFaults(stub, id).status() ==
               v1::TRANSACTION_STATUS_SUCCESS;
  }
  return success;
}

TEST_F(ServiceTest, Fault5_RedisStoppedDuringLoad_NothingAcknowledgedIsLost) {
  const std::string prefix = NewId("f5");
  Load load;
  load.Start(prefix, 4, [](int n) { return n % 2 ? &A() : &B(); });
  absl::SleepFor(absl::Milliseconds(1500));
  ASSERT_EQ(redis_->Stop(), 0);  // SIGTERM: Redis flushes its AOF
  delete redis_;
  redis_ = nullptr;
  absl::SleepFor(absl::Seconds(3));
  std::string line;
  auto redis = StartRedis(&line);
  ASSERT_TRUE(redis.ok()) << redis.status();
  redis_ = redis->release();
  absl::SleepFor(absl::Milliseconds(1500));
  load.Finish();

  // Every debit Bankart created must end SUCCESS in flikpay: acknowledged
  // ones by their callbacks (retried after 503s), the rest by the reconciler.
  const std::set<std::string> at_bankart =
      CreatedAtBankart(SimControl("GET", "/_sim/journal"), prefix);
  const int success = CountSettledAsSuccess(B(), at_bankart);
  int acknowledged_known = 0;
  for (const std::string& id : load.acknowledged) {
    v1::Transaction stored;
    acknowledged_known += Get(A(), id, &stored).ok() &&
                          stored.status() == v1::TRANSACTION_STATUS_SUCCESS;
  }
  std::printf(
      "fault 5: %zu attempted, %zu acknowledged (%d failed during the outage); "
      "Bankart created %zu, flikpay SUCCESS for %d of them; acknowledged and "
      "SUCCESS in flikpay %d of %zu\n",
      load.attempted.size(), load.acknowledged.size(), load.failures.load(),
      at_bankart.size(), success, acknowledged_known, load.acknowledged.size());
  EXPECT_GT(load.failures.load(), 0);  // the outage was real
  EXPECT_EQ(success, static_cast<int>(at_bankart.size()));
  EXPECT_EQ(acknowledged_known, static_cast<int>(load.acknowledged.size()));
  for (const std::string& id : load.acknowledged) {
    EXPECT_TRUE(at_bankart.contains(id)) << id;
  }
}

TEST_F(ServiceTest,
       Fault6_KillNineOneReplicaDuringLoad_StreamsResumeWithoutGaps) {
  const std::string prefix = NewId("f6");
  // A subscriber on replica A that will die; it resumes on B from its cursor.
  std::vector<v1::StatusEvent> events;
  std::thread subscriber([&] {
    v1::StreamStatusRequest request;
    request.add_types(v1::TRANSACTION_TYPE_DEBIT);
    for (int attempt = 0; attempt < 2; ++attempt) {
      Replica& replica = *replicas_[attempt == 0 ? 0 : 1];
      grpc::ClientContext context;
      context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(12)));
      auto reader = replica.stub->StreamStatus(&context, request);
      v1::StatusEvent event;
      while (reader->Read(&event)) {
        if (absl::StartsWith(event.transaction().merchant_transaction_id(),
                             prefix)) {
          events.push_back(event);
        }
        request.set_resume_after(event.cursor());
      }
      reader->Finish().ok();
    }
  });
  absl::SleepFor(absl::Milliseconds(300));
  Load load;
  Replica* victim = replicas_[0];
  std::atomic<bool> victim_alive{true};
  load.Start(prefix, 4, [&](int n) {
    return (n % 2 && victim_alive) ? victim->stub.get() : &B();
  });
  absl::SleepFor(absl::Milliseconds(1500));
  victim_alive = false;
  victim->process->Kill();  // kill -9, mid-load
  absl::SleepFor(absl::Milliseconds(1500));
  replicas_[0] = StartReplica();  // a replacement, as Kubernetes would
  ASSERT_NE(replicas_[0], nullptr);
  absl::SleepFor(absl::Milliseconds(1000));
  load.Finish();

  const std::set<std::string> at_bankart =
      CreatedAtBankart(SimControl("GET", "/_sim/journal"), prefix);
  const int success = CountSettledAsSuccess(A(), at_bankart);
  subscriber.join();
  delete victim;
  std::map<std::string, int> finals;
  bool ordered = true;
  for (size_t i = 0; i < events.size(); ++i) {
    if (IsFinalStatus(events[i].transaction().status())) {
      ++finals[events[i].transaction().merchant_transaction_id()];
    }
    if (i > 0 && events[i - 1].cursor() >= events[i].cursor() &&
        events[i - 1].cursor().size() == events[i].cursor().size()) {
      ordered = false;
    }
  }
  int seen_once = 0;
  for (const std::string& id : at_bankart) seen_once += finals[id] == 1;
  std::printf(
      "fault 6: %zu acknowledged, Bankart created %zu, flikpay SUCCESS %d; the "
      "resumed subscriber saw the final event of %d of them exactly once\n",
      load.acknowledged.size(), at_bankart.size(), success, seen_once);
  EXPECT_EQ(success, static_cast<int>(at_bankart.size()));
  EXPECT_TRUE(ordered);
  for (const std::string& id : load.acknowledged) {
    EXPECT_TRUE(at_bankart.contains(id)) << id;
  }
  // Changes the reconciler made after the subscriber's 12 s window are not
  // asserted; everything settled within it must have been seen exactly once.
  int settled_in_window = 0;
  for (const std::string& id : at_bankart) settled_in_window += finals[id] > 0;
  EXPECT_EQ(seen_once, settled_in_window);
  EXPECT_GE(settled_in_window, static_cast<int>(load.acknowledged.size()) / 2);
}

// Runs after the fault suite: a replica keeping only ~10 events trims the
// shared stream.
TEST_F(ServiceTest, ResumingFromTrimmedEventsIsRefusedNotSilentlyGapped) {
  v1::StreamStatusRequest request;
  request.add_types(v1::TRANSACTION_TYPE_PAYOUT);
  std::vector<v1::StatusEvent> first = ReadEvents(
      *replicas_[1], request, 1, absl::Seconds(5),
      [&] { EXPECT_TRUE(SuccessfulPayout(B(), NewId("trim"), 100).ok()); });
  ASSERT_EQ(first.size(), 1u);
  std::unique_ptr<Replica> trimming(StartReplica({"--max_events=10"}));
  ASSERT_NE(trimming, nullptr);
  for (int i = 0; i < 300; ++i) {
    ASSERT_TRUE(SuccessfulPayout(*trimming->stub, NewId("trim"), 100).ok());
  }
  request.set_resume_after(first[0].cursor());
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  auto reader = A().StreamStatus(&context, request);
  v1::StatusEvent ignored;
  int received = 0;
  while (reader->Read(&ignored)) ++received;
  grpc::Status ended = reader->Finish();
  EXPECT_EQ(ended.error_code(), grpc::StatusCode::OUT_OF_RANGE)
      << ended.error_message();
  EXPECT_EQ(received, 0);
  trimming->process->Stop();
}

}  // namespace
}  // namespace flikpay
