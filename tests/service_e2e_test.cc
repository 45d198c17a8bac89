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
 protected:
  static void SetUpTestSuite() {
    redis_port_ = FreePort();
    std::string line;
    auto redis = ChildProcess::Start(
        {REDIS_SERVER_PATH, "--port", std::to_string(redis_port_), "--bind",
         "127.0.0.1", "--save", "", "--appendonly", "no"},
        "Ready to accept connections", &line);
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

  static Replica* StartReplica() {
    std::string line;
    auto process = ChildProcess::Start(
        {FLIKPAY_SERVER_PATH, "--grpc_addr=127.0.0.1:0",
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
         "--drain_time=3s"},
        "flikpay-server listening", &line);
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

  // The replica's count of subscriptions it feeds (flikpay_streams_open).
  static int OpenStreams(const Replica& replica) {
    gateway::HttpClient http;
    gateway::HttpRequest request;
    request.url =
        absl::StrCat("http://127.0.0.1:", replica.admin_port, "/metrics");
    const std::string body = http.Send(request).response.body;
    std::smatch match;
    if (!std::regex_search(body, match,
                           std::regex("\nflikpay_streams_open (\\d+)"))) {
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
    const int open_before = OpenStreams(replica);
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
    std::unique_ptr<grpc::ClientReader<v1::StatusEvent>> reader =
        replica.stub->StreamStatus(&context, request);
    if (after_open) {
      const absl::Time give_up = absl::Now() + absl::Seconds(5);
      while (OpenStreams(replica) <= open_before && absl::Now() < give_up) {
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

  static inline ChildProcess* redis_ = nullptr;
  static inline ChildProcess* sim_ = nullptr;
  static inline int redis_port_ = 0;
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
  std::atomic<int> ok{0}, aborted{0}, other{0};
  std::vector<std::thread> callers;
  for (int i = 0; i < 40; ++i) {
    callers.emplace_back([&, i] {
      v1::Transaction out;
      grpc::Status status = Create(i % 2 == 0 ? A() : B(), request, &out);
      if (status.ok()) {
        ++ok;
      } else if (status.error_code() == grpc::StatusCode::ABORTED) {
        ++aborted;
      } else {
        ++other;
      }
    });
  }
  for (std::thread& caller : callers) caller.join();
  EXPECT_EQ(ok + aborted, 40);
  EXPECT_EQ(other, 0);
  EXPECT_GE(ok, 1);
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
          v1::PayoutRequest request;
          request.set_merchant_transaction_id(NewId("resume"));
          request.set_alias("success.payout@bankart.flik");
          request.set_amount_minor(100 + i);
          v1::Transaction out;
          grpc::ClientContext context;
          EXPECT_TRUE(A().Payout(&context, request, &out).ok());
          ids.push_back(request.merchant_transaction_id());
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
  const int open_before = OpenStreams(*third);
  auto reader = third->stub->StreamStatus(&context, everything);
  while (OpenStreams(*third) <= open_before)
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

}  // namespace
}  // namespace flikpay
