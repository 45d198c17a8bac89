// Who may move money, end to end over real mutual TLS: certificates made by the test (its own CAs),
// the policy file, limits counted in Redis across both replicas, ownership, fair share, and files
// rotated under the running replicas the way Kubernetes swaps a mounted Secret.
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/security/credentials.h>
#include <openssl/sha.h>
#include <stdlib.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gateway/callback_parser.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/support/e2e_fixture.h"
#include "tests/support/test_certs.h"

namespace flikpay {
namespace {

constexpr char kShop[] = "spiffe://flikpay.test/shop";
constexpr char kOtherShop[] = "spiffe://flikpay.test/other-shop";
constexpr char kFinance[] = "spiffe://flikpay.test/finance";
constexpr char kPayroll[] = "spiffe://flikpay.test/payroll";
constexpr char kReconciliation[] = "reconciliation";  // a certificate with a CN and no URI

// A shop's grant: debits and their refunds, reading its own.
testing::Json ShopGrant() {
  return {{"rpcs", {"CreateRtp", "Refund", "GetStatus", "StreamStatus"}},
          {"limits",
           {{"CreateRtp", {{"max_amount_minor", 500000}, {"max_daily_amount_minor", 5000000}}},
            {"Refund", {{"max_amount_minor", 500000}, {"max_daily_amount_minor", 5000000}}}}},
          {"max_concurrent_calls", 8}};
}

testing::Json Policy(bool shop_may_pay_out = false) {
  testing::Json shop = ShopGrant();
  if (shop_may_pay_out) {
    shop["rpcs"].push_back("Payout");
    shop["limits"]["Payout"] = {{"max_amount_minor", 100}, {"max_daily_amount_minor", 1000}};
  }
  return {{"callers",
           {{kShop, shop},
            {kOtherShop, ShopGrant()},
            {kFinance,
             {{"rpcs", {"Payout", "GetStatus"}},
              {"limits",
               {{"Payout", {{"max_amount_minor", 10000}, {"max_daily_amount_minor", 25000}}}}},
              {"max_concurrent_calls", 4}}},
            {kPayroll,
             {{"rpcs", {"Payout"}},
              {"limits",
               {{"Payout", {{"max_amount_minor", 10000}, {"max_daily_amount_minor", 10000000}}}}},
              {"max_concurrent_calls", 4}}},
            {kReconciliation, {{"rpcs", {"GetStatus", "StreamStatus"}}, {"read_all", true}}}}}};
}

// Asks the server's reflection service to list its services, as grpcurl does first: OK when it is
// served, UNIMPLEMENTED when it is switched off. (One request then half-close: the bidirectional
// method answers it like a unary call.)
grpc::Status ListServices(const std::shared_ptr<grpc::Channel>& channel,
                          const std::string& authorization = "") {
  grpc::GenericStub stub(channel);
  grpc::ClientContext context;
  if (!authorization.empty()) context.AddMetadata("authorization", authorization);
  // ServerReflectionRequest{list_services: "*"}: field 7, a string.
  const std::string request_bytes("\x3a\x01*", 3);
  grpc::Slice slice(request_bytes);
  grpc::ByteBuffer request(&slice, 1);
  grpc::ByteBuffer response;
  absl::Notification done;
  grpc::Status status;
  stub.UnaryCall(&context, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
                 grpc::StubOptions(), &request, &response, [&](grpc::Status s) {
                   status = std::move(s);
                   done.Notify();
                 });
  done.WaitForNotification();
  return status;
}

// A suite whose certificates, tokens and policy live in a temporary directory of its own, removed
// when the suite ends.
class FilesSuite : public testing::E2eTest {
 public:
  static void TearDownTestSuite() {
    E2eTest::TearDownTestSuite();
    channel_credentials_.reset();
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

 protected:
  static void MakeDirectory() {
    char dir_template[] = "/tmp/flikpay-auth-XXXXXX";  // mkdtemp's template
    ASSERT_NE(mkdtemp(dir_template), nullptr);
    dir_ = dir_template;
  }

  static inline std::string dir_;
};

class AuthTest : public FilesSuite {
 public:
  static void SetUpTestSuite() {
    MakeDirectory();
    absl::StatusOr<testing::TestCa> server_ca = testing::TestCa::Create(dir_, "server");
    absl::StatusOr<testing::TestCa> callers_ca = testing::TestCa::Create(dir_, "callers");
    ASSERT_TRUE(server_ca.ok() && callers_ca.ok());
    server_ca_ = std::make_unique<testing::TestCa>(*std::move(server_ca));
    callers_ca_ = std::make_unique<testing::TestCa>(*std::move(callers_ca));
    absl::StatusOr<testing::CertFiles> server = server_ca_->IssueServer("server");
    ASSERT_TRUE(server.ok()) << server.status();
    ASSERT_TRUE(WriteTls(*server, callers_ca_->cert_pem()).ok());
    ASSERT_TRUE(
        testing::WriteSecretVolume(dir_ + "/policy", {{"policy.json", Policy().dump()}}).ok());
    for (const auto& [name, common_name, uri] :
         {std::tuple{"shop", "shop", kShop}, std::tuple{"other-shop", "other-shop", kOtherShop},
          std::tuple{"finance", "finance", kFinance}, std::tuple{"payroll", "payroll", kPayroll},
          std::tuple{"reconciliation", kReconciliation, ""}}) {
      absl::StatusOr<testing::CertFiles> client = callers_ca_->IssueClient(name, common_name, uri);
      ASSERT_TRUE(client.ok()) << client.status();
      clients_[name] = *client;
    }
    replica_flags_ = {absl::StrCat("--grpc_tls_cert=", dir_, "/tls/tls.crt"),
                      absl::StrCat("--grpc_tls_key=", dir_, "/tls/tls.key"),
                      absl::StrCat("--grpc_client_ca=", dir_, "/tls/ca.crt"),
                      absl::StrCat("--caller_policy=", dir_, "/policy/policy.json"),
                      "--tls_reload_interval=1s", "--policy_reload_interval=200ms",
                      "--fingerprint_key=e2e-auth-test-fingerprint-key",
                      // The record cache's answers are checked against the caller's rights too.
                      "--change_notices", "--record_cache_size=100000"};
    channel_credentials_ = Credentials("shop");
    E2eTest::SetUpTestSuite();
  }

 protected:
  // The replicas' TLS Secret: their certificate and key, and the CA their callers' come from.
  static absl::Status WriteTls(const testing::CertFiles& server, const std::string& client_ca) {
    return testing::WriteSecretVolume(
        dir_ + "/tls",
        {{"tls.crt", server.cert_pem()}, {"tls.key", server.key_pem()}, {"ca.crt", client_ca}});
  }

  // mTLS as the named client ("" = no client certificate), trusting the server CA.
  static std::shared_ptr<grpc::ChannelCredentials> Credentials(const std::string& client) {
    grpc::SslCredentialsOptions options;
    options.pem_root_certs = server_ca_->cert_pem();
    if (!client.empty()) {
      options.pem_cert_chain = clients_[client].cert_pem();
      options.pem_private_key = clients_[client].key_pem();
    }
    return grpc::SslCredentials(options);
  }

  // A channel of its own (no connection shared with other channels), so a handshake happens now.
  static std::shared_ptr<grpc::Channel> Channel(const std::shared_ptr<grpc::ChannelCredentials>& c,
                                                int replica = 0) {
    grpc::ChannelArguments arguments;
    arguments.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    return grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", replicas_[replica]->grpc_port), c,
                                     arguments);
  }

  static std::unique_ptr<v1::PaymentService::Stub> As(const std::string& client, int replica = 0) {
    return v1::PaymentService::NewStub(Channel(Credentials(client), replica));
  }

  static grpc::Status Payout(v1::PaymentService::Stub& stub, const std::string& id,
                             int64_t amount_minor, grpc::ClientContext* context = nullptr) {
    v1::PayoutRequest payout;
    payout.set_merchant_transaction_id(id);
    payout.set_alias("success.payout@bankart.flik");
    payout.set_amount_minor(amount_minor);
    v1::Transaction out;
    grpc::ClientContext own;
    grpc::ClientContext* call = context != nullptr ? context : &own;
    call->set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    return stub.Payout(call, payout, &out);
  }

  // Every request the stand-in received for this merchant transaction id.
  static int RequestsAtBankart(const std::string& id) {
    const testing::Json journal = SimControl("GET", "/_sim/journal");
    int count = 0;
    for (const testing::Json& entry : journal["requests"]) {
      count += gateway::JsonText(entry, "merchantTransactionId") == id;
    }
    return count;
  }

  // Whatever a StreamStatus delivers within `wait`, and how it ended (OK when still open).
  static std::vector<v1::StatusEvent> Stream(v1::PaymentService::Stub& stub,
                                             const v1::StreamStatusRequest& request,
                                             absl::Duration wait, std::function<void()> meanwhile,
                                             grpc::Status* ended) {
    grpc::ClientContext context;
    auto reader = stub.StreamStatus(&context, request);
    std::vector<v1::StatusEvent> events;
    std::atomic<bool> done{false};
    std::thread collector([&] {
      v1::StatusEvent event;
      while (reader->Read(&event)) events.push_back(event);
      done = true;
    });
    absl::SleepFor(absl::Milliseconds(300));  // subscribed before the changes happen
    if (meanwhile) meanwhile();
    const absl::Time until = absl::Now() + wait;
    while (!done && absl::Now() < until) absl::SleepFor(absl::Milliseconds(20));
    const bool ended_by_server = done;
    // Cancelling a call that already ended would replace the server's status with CANCELLED.
    if (!ended_by_server) context.TryCancel();
    collector.join();
    grpc::Status status = reader->Finish();
    *ended = ended_by_server ? status : grpc::Status::OK;
    return events;
  }

  static inline std::unique_ptr<testing::TestCa> server_ca_;
  static inline std::unique_ptr<testing::TestCa> callers_ca_;
  static inline std::map<std::string, testing::CertFiles> clients_;
};

TEST_F(AuthTest, WithoutAClientCertificateEveryServiceIsUnauthenticated) {
  auto anonymous = Channel(Credentials(""));
  v1::Transaction out;
  const std::string id = NewId("anon");
  EXPECT_EQ(Create(*v1::PaymentService::NewStub(anonymous),
                   Rtp("success.debit@bankart.flik", v1::RTP_KIND_IN_PERSON), &out)
                .error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  grpc::ClientContext health_call;
  grpc::health::v1::HealthCheckRequest health_request;
  grpc::health::v1::HealthCheckResponse health;
  EXPECT_EQ(grpc::health::v1::Health::NewStub(anonymous)
                ->Check(&health_call, health_request, &health)
                .error_code(),
            grpc::StatusCode::UNAUTHENTICATED);

  // Any authenticated caller may ask for health, whatever its RPCs.
  grpc::ClientContext finance_health;
  EXPECT_TRUE(grpc::health::v1::Health::NewStub(Channel(Credentials("finance")))
                  ->Check(&finance_health, health_request, &health)
                  .ok());
  EXPECT_EQ(health.status(), grpc::health::v1::HealthCheckResponse::SERVING);
  // Reflection likewise: open to any authenticated caller, closed to the anonymous one.
  EXPECT_TRUE(ListServices(Channel(Credentials("finance"))).ok());
  EXPECT_EQ(ListServices(anonymous).error_code(), grpc::StatusCode::UNAUTHENTICATED);

  // A subject CN is the requester's to choose: it cannot claim a SPIFFE id.
  absl::StatusOr<testing::CertFiles> posing =
      callers_ca_->IssueClient("posing", "spiffe://flikpay.test/finance");
  ASSERT_TRUE(posing.ok());
  grpc::SslCredentialsOptions posing_options;
  posing_options.pem_root_certs = server_ca_->cert_pem();
  posing_options.pem_cert_chain = posing->cert_pem();
  posing_options.pem_private_key = posing->key_pem();
  EXPECT_EQ(Payout(*v1::PaymentService::NewStub(Channel(grpc::SslCredentials(posing_options))),
                   NewId("posing"), 100)
                .error_code(),
            grpc::StatusCode::UNAUTHENTICATED);

  // A certificate from a CA the replicas do not trust does not even connect.
  absl::StatusOr<testing::TestCa> stranger_ca = testing::TestCa::Create(dir_, "stranger");
  ASSERT_TRUE(stranger_ca.ok());
  absl::StatusOr<testing::CertFiles> stranger = stranger_ca->IssueClient("stranger", "shop", kShop);
  ASSERT_TRUE(stranger.ok());
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = server_ca_->cert_pem();
  options.pem_cert_chain = stranger->cert_pem();
  options.pem_private_key = stranger->key_pem();
  EXPECT_FALSE(Payout(*v1::PaymentService::NewStub(Channel(grpc::SslCredentials(options))),
                      NewId("stranger"), 100)
                   .ok());
}

TEST_F(AuthTest, TheShopMayNotPayOutAndNothingReachesBankart) {
  const std::string id = NewId("shop-payout");
  const grpc::Status status = Payout(*As("shop"), id, 100);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(status.error_message(), absl::StrCat("caller ", kShop, " may not call Payout"));
  EXPECT_EQ(RequestsAtBankart(id), 0);
  v1::Transaction stored;
  EXPECT_EQ(Get(*As("finance"), id, &stored).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(AuthTest, LimitsPerPayoutAndPerDayHoldAcrossReplicasBeforeBankartIsAsked) {
  auto finance_a = As("finance", 0);
  auto finance_b = As("finance", 1);
  const std::string too_big = NewId("payout-too-big");
  grpc::Status status = Payout(*finance_a, too_big, 10001);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_TRUE(absl::StrContains(status.error_message(), "limit per transaction (10000)"))
      << status.error_message();
  EXPECT_EQ(RequestsAtBankart(too_big), 0);

  // 25,000 a day: two full payouts on different replicas fit, a third does not; the refused one can
  // be retried with its id once there is room (nothing of it was kept).
  EXPECT_TRUE(Payout(*finance_a, NewId("payout-day"), 10000).ok());
  EXPECT_TRUE(Payout(*finance_b, NewId("payout-day"), 10000).ok());
  const std::string over_day = NewId("payout-over-day");
  status = Payout(*finance_a, over_day, 10000);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_TRUE(absl::StrContains(status.error_message(), "limit per day (25000; 20000 used"))
      << status.error_message();
  EXPECT_EQ(RequestsAtBankart(over_day), 0);
  EXPECT_TRUE(Payout(*finance_b, over_day, 5000).ok());
  v1::Transaction stored;
  ASSERT_TRUE(Get(*finance_a, over_day, &stored).ok());
  EXPECT_EQ(stored.created_by(), kFinance);
  EXPECT_EQ(RequestsAtBankart(over_day), 1);
}

TEST_F(AuthTest, ACallerSeesStreamsAndRefundsOnlyItsOwnTransactions) {
  auto shop = As("shop");
  auto other = As("other-shop", 1);
  auto reconciliation = As("reconciliation");
  v1::CreateRtpRequest debit = Rtp("success.debit@bankart.flik", v1::RTP_KIND_IN_PERSON);
  const std::string id = debit.merchant_transaction_id();

  // The other shop's stream, empty filter = all of its own, sees none of the shop's events; the
  // reconciliation job (read_all) sees them.
  grpc::Status other_ended;
  grpc::Status reconciliation_ended;
  std::vector<v1::StatusEvent> seen_by_reconciliation;
  v1::Transaction paid;
  std::thread reconciliation_stream([&] {
    seen_by_reconciliation =
        Stream(*reconciliation, {}, absl::Seconds(4), nullptr, &reconciliation_ended);
  });
  const std::vector<v1::StatusEvent> seen_by_other = Stream(
      *other, {}, absl::Seconds(3), [&] { PaidDebit(debit, &paid); }, &other_ended);
  reconciliation_stream.join();
  EXPECT_TRUE(other_ended.ok()) << other_ended.error_message();
  for (const v1::StatusEvent& event : seen_by_other) {
    EXPECT_NE(event.transaction().merchant_transaction_id(), id);
  }
  int shop_events = 0;
  for (const v1::StatusEvent& event : seen_by_reconciliation) {
    shop_events += event.transaction().merchant_transaction_id() == id;
  }
  EXPECT_GE(shop_events, 2);  // PENDING, SUCCESS

  // Asked by id, with send_current, the other shop gets nothing either.
  v1::StreamStatusRequest by_id;
  by_id.add_merchant_transaction_ids(id);
  by_id.set_send_current(true);
  EXPECT_TRUE(Stream(*other, by_id, absl::Milliseconds(500), nullptr, &other_ended).empty());
  EXPECT_TRUE(other_ended.ok()) << "the stream stays open, as for an id nobody used: "
                                << other_ended.error_message();

  v1::Transaction stored;
  EXPECT_EQ(Get(*other, id, &stored).error_code(), grpc::StatusCode::NOT_FOUND);
  ASSERT_TRUE(Get(*reconciliation, id, &stored).ok());
  EXPECT_EQ(stored.created_by(), kShop);
  v1::Transaction refund;
  EXPECT_EQ(RefundOn(*other, id, 100, &refund).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_TRUE(RefundOn(*shop, id, 100, &refund).ok());
  EXPECT_EQ(refund.created_by(), kShop);

  // The same id claimed by another caller is refused without showing the shop's transaction.
  v1::Transaction copied;
  const grpc::Status taken = Create(*other, debit, &copied);
  EXPECT_EQ(taken.error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_TRUE(copied.merchant_transaction_id().empty());
}

TEST_F(AuthTest, AStreamOfTooManyIdsIsRefused) {
  v1::StreamStatusRequest huge;
  for (int i = 0; i < 200000; ++i) huge.add_merchant_transaction_ids(absl::StrCat("order-", i));
  huge.set_send_current(true);
  grpc::Status ended;
  EXPECT_TRUE(Stream(A(), huge, absl::Seconds(3), nullptr, &ended).empty());
  EXPECT_EQ(ended.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << ended.error_message();

  v1::StreamStatusRequest over;
  for (int i = 0; i < 1001; ++i) over.add_merchant_transaction_ids(absl::StrCat("order-", i));
  EXPECT_TRUE(Stream(A(), over, absl::Seconds(3), nullptr, &ended).empty());
  EXPECT_EQ(ended.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(
      absl::StartsWith(ended.error_message(), "merchant_transaction_ids: at most 1000 distinct"))
      << ended.error_message();
}

TEST_F(AuthTest, FortySlowPayoutsDoNotMakeAShopMissItsDeadline) {
  const std::string prefix = NewPrefix("slow-payout");
  AddApiFault(testing::Json{{"kind", "slow"},
                            {"operation", "payout"},
                            {"delay_ms", 3000},
                            {"count", 40},
                            {"merchant_transaction_id_prefix", prefix}});
  auto payroll = As("payroll");
  std::atomic<int> ok{0}, exhausted{0}, other{0}, with_retry_hint{0};
  std::vector<std::thread> payouts;
  for (int i = 0; i < 40; ++i) {
    payouts.emplace_back([&, i] {
      grpc::ClientContext call;
      const grpc::Status status = Payout(*payroll, absl::StrCat(prefix, i), 100, &call);
      if (status.ok()) {
        ++ok;
      } else if (status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) {
        ++exhausted;
        with_retry_hint += call.GetServerTrailingMetadata().count("retry-after-ms");
      } else {
        ++other;
      }
    });
  }
  absl::SleepFor(absl::Milliseconds(500));  // the payouts hold their share of the gateway
  v1::Transaction created;
  const absl::Time started = absl::Now();
  const grpc::Status shop =
      Create(*As("shop"), Rtp("success.debit@bankart.flik", v1::RTP_KIND_IN_PERSON), &created,
             absl::Seconds(5));
  const absl::Duration took = absl::Now() - started;
  for (std::thread& payout : payouts) payout.join();
  EXPECT_TRUE(shop.ok()) << shop.error_message();
  EXPECT_LT(took, absl::Seconds(2)) << "the shop waited behind the payouts";
  EXPECT_EQ(ok, 4) << "payroll may run 4 at once";
  EXPECT_EQ(exhausted, 36);
  EXPECT_EQ(with_retry_hint, 36);
  EXPECT_EQ(other, 0);
}

TEST_F(AuthTest, ARecordInTheCacheIsAnsweredOnlyToCallersWhoMaySeeIt) {
  // GetStatus answers a record its replica's cache holds on gRPC's own thread (issue 15): with the
  // same rule as a read from Redis, another caller's record is an id nobody used.
  v1::CreateRtpRequest debit = Rtp("success.debit@bankart.flik", v1::RTP_KIND_IN_PERSON);
  const std::string id = debit.merchant_transaction_id();
  v1::Transaction paid;
  ASSERT_NO_FATAL_FAILURE(PaidDebit(debit, &paid));
  auto shop = As("shop", 1);
  auto other = As("other-shop", 1);
  auto reconciliation = As("reconciliation", 1);
  v1::Transaction read;
  bool cached = false;
  for (int i = 0; i < 50 && !cached; ++i) {
    const int64_t before = Metric(*replicas_[1], "flikpay_record_cache_hits_total");
    ASSERT_TRUE(Get(*shop, id, &read).ok());
    cached = Metric(*replicas_[1], "flikpay_record_cache_hits_total") > before;
  }
  ASSERT_TRUE(cached) << "replica B never answered " << id << " from its cache";
  EXPECT_EQ(read.created_by(), kShop);
  EXPECT_EQ(read.status(), v1::TRANSACTION_STATUS_SUCCESS);

  const grpc::Status refused = Get(*other, id, &read);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(refused.error_message(),
            absl::StrCat("no transaction with merchant_transaction_id ", id));
  ASSERT_TRUE(Get(*reconciliation, id, &read).ok());  // read_all
  EXPECT_EQ(read.created_by(), kShop);
  ASSERT_TRUE(Get(*shop, id, &read).ok());
  EXPECT_EQ(read.merchant_transaction_id(), id);
}

TEST_F(AuthTest, RotatedCertificatesAndPolicyTakeEffectWithoutARestart) {
  // A new client CA: certificates it issues are refused until the Secret holds it, then accepted.
  absl::StatusOr<testing::TestCa> next_ca = testing::TestCa::Create(dir_, "callers-next");
  ASSERT_TRUE(next_ca.ok());
  absl::StatusOr<testing::CertFiles> next_shop = next_ca->IssueClient("shop-next", "shop", kShop);
  ASSERT_TRUE(next_shop.ok());
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = server_ca_->cert_pem();
  options.pem_cert_chain = next_shop->cert_pem();
  options.pem_private_key = next_shop->key_pem();
  const auto next_credentials = grpc::SslCredentials(options);
  v1::Transaction out;
  EXPECT_FALSE(Get(*v1::PaymentService::NewStub(Channel(next_credentials)), "none", &out).ok());

  absl::StatusOr<testing::CertFiles> server = server_ca_->IssueServer("server-rotated");
  ASSERT_TRUE(server.ok());
  ASSERT_TRUE(WriteTls(*server, callers_ca_->cert_pem() + next_ca->cert_pem()).ok());
  // The shop may now pay out, up to 100 cents.
  ASSERT_TRUE(
      testing::WriteSecretVolume(dir_ + "/policy", {{"policy.json", Policy(true).dump()}}).ok());

  const pid_t pid_before = replicas_[0]->process->pid();
  bool rotated = false;
  std::string presented;
  for (absl::Time until = absl::Now() + absl::Seconds(10); !rotated && absl::Now() < until;) {
    absl::SleepFor(absl::Milliseconds(250));
    grpc::ClientContext call;
    v1::GetStatusRequest request;
    request.set_merchant_transaction_id("none");
    const grpc::Status status =
        v1::PaymentService::NewStub(Channel(next_credentials))->GetStatus(&call, request, &out);
    if (status.error_code() != grpc::StatusCode::NOT_FOUND) continue;
    for (const grpc::string_ref& pem : call.auth_context()->FindPropertyValues("x509_pem_cert")) {
      presented = std::string(pem.data(), pem.size());
    }
    rotated = presented == server->cert_pem();
  }
  EXPECT_TRUE(rotated) << "the new client CA and server certificate were not in force within 10 s";
  EXPECT_EQ(replicas_[0]->process->pid(), pid_before);

  EXPECT_TRUE(Payout(*As("shop"), NewId("shop-payout-granted"), 100).ok());
  EXPECT_EQ(Payout(*As("shop"), NewId("shop-payout-big"), 101).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);

  // A broken policy file, and a TLS Secret whose key is not its certificate's, leave the last good
  // versions in force; each is counted once.
  const int64_t failures_before = Metric(*replicas_[0], "flikpay_config_reload_failures_total");
  ASSERT_TRUE(testing::WriteSecretVolume(dir_ + "/policy", {{"policy.json", "{not json"}}).ok());
  absl::StatusOr<testing::CertFiles> stray = server_ca_->IssueServer("server-stray");
  ASSERT_TRUE(stray.ok());
  ASSERT_TRUE(testing::WriteSecretVolume(dir_ + "/tls", {{"tls.crt", server->cert_pem()},
                                                         {"tls.key", stray->key_pem()},
                                                         {"ca.crt", callers_ca_->cert_pem()}})
                  .ok());
  bool counted = false;
  for (absl::Time until = absl::Now() + absl::Seconds(5); !counted && absl::Now() < until;) {
    absl::SleepFor(absl::Milliseconds(100));
    counted = Metric(*replicas_[0], "flikpay_config_reload_failures_total") == failures_before + 2;
  }
  EXPECT_TRUE(counted) << Metric(*replicas_[0], "flikpay_config_reload_failures_total");
  absl::SleepFor(absl::Milliseconds(1500));  // past gRPC's own refresh of the files it serves
  EXPECT_TRUE(Payout(*As("shop"), NewId("shop-payout-still"), 100).ok());
  ASSERT_TRUE(WriteTls(*server, callers_ca_->cert_pem() + next_ca->cert_pem()).ok());
  // Back to the suite's policy, in force before the next test runs.
  ASSERT_TRUE(
      testing::WriteSecretVolume(dir_ + "/policy", {{"policy.json", Policy().dump()}}).ok());
  bool restored = false;
  for (absl::Time until = absl::Now() + absl::Seconds(5); !restored && absl::Now() < until;) {
    absl::SleepFor(absl::Milliseconds(100));
    restored = Payout(*As("shop"), NewId("shop-payout-revoked"), 1).error_code() ==
               grpc::StatusCode::PERMISSION_DENIED;
  }
  EXPECT_TRUE(restored);
}

// Behind a service mesh that already does mTLS: plaintext to the pod, callers named by bearer
// tokens kept hashed in a mounted file.
class TokenAuthTest : public FilesSuite {
 public:
  static void SetUpTestSuite() { StartReplicas(false); }

  // With `tls`, the replicas serve TLS (server certificate only) and gRPC's authenticator checks
  // the tokens before any service, health included.
  static void StartReplicas(bool tls) {
    MakeDirectory();
    ASSERT_TRUE(WriteTokens({{"shop", "shop-token-1"}}).ok());
    ASSERT_TRUE(testing::WriteSecretVolume(
                    dir_ + "/policy",
                    {{"policy.json", testing::Json{{"callers", {{"shop", ShopGrant()}}}}.dump()}})
                    .ok());
    replica_flags_ = {absl::StrCat("--caller_tokens=", dir_, "/tokens/tokens"),
                      absl::StrCat("--caller_policy=", dir_, "/policy/policy.json"),
                      "--policy_reload_interval=200ms",
                      "--fingerprint_key=e2e-token-test-fingerprint-key"};
    channel_credentials_.reset();
    if (!tls) replica_flags_.push_back("--grpc_reflection=false");
    if (tls) {
      absl::StatusOr<testing::TestCa> ca = testing::TestCa::Create(dir_, "server");
      ASSERT_TRUE(ca.ok());
      absl::StatusOr<testing::CertFiles> server = ca->IssueServer("server");
      ASSERT_TRUE(server.ok());
      replica_flags_.push_back(absl::StrCat("--grpc_tls_cert=", server->cert_path));
      replica_flags_.push_back(absl::StrCat("--grpc_tls_key=", server->key_path));
      grpc::SslCredentialsOptions options;
      options.pem_root_certs = ca->cert_pem();
      channel_credentials_ = grpc::SslCredentials(options);
    }
    E2eTest::SetUpTestSuite();
  }

 protected:
  // The token file as an operator writes it: each token's SHA-256, never the token.
  static absl::Status WriteTokens(const std::map<std::string, std::string>& tokens) {
    std::string file = "# caller sha256:<hex>\n";
    for (const auto& [caller, token] : tokens) {
      unsigned char digest[SHA256_DIGEST_LENGTH];
      SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(), digest);
      absl::StrAppend(&file, caller, " sha256:",
                      absl::BytesToHexString(
                          absl::string_view(reinterpret_cast<const char*>(digest), sizeof(digest))),
                      "\n");
    }
    return testing::WriteSecretVolume(dir_ + "/tokens", {{"tokens", file}});
  }

  static grpc::Status GetWithToken(const std::string& token, const std::string& id,
                                   v1::Transaction* out) {
    grpc::ClientContext call;
    if (!token.empty()) call.AddMetadata("authorization", absl::StrCat("Bearer ", token));
    v1::GetStatusRequest request;
    request.set_merchant_transaction_id(id);
    return A().GetStatus(&call, request, out);
  }

  static void ExpectATokenNamesItsCallerAndRotates();
};

class TlsTokenAuthTest : public TokenAuthTest {
 public:
  static void SetUpTestSuite() { StartReplicas(true); }
};

TEST_F(TokenAuthTest, AKnownTokenNamesTheCallerAndRotatesWithoutARestart) {
  ExpectATokenNamesItsCallerAndRotates();
  // These replicas run with --grpc_reflection=false.
  EXPECT_EQ(ListServices(grpc::CreateChannel(absl::StrCat("127.0.0.1:", replicas_[0]->grpc_port),
                                             grpc::InsecureChannelCredentials()))
                .error_code(),
            grpc::StatusCode::UNIMPLEMENTED);
}

TEST_F(TlsTokenAuthTest, AKnownTokenNamesTheCallerAndRotatesWithoutARestart) {
  ExpectATokenNamesItsCallerAndRotates();
  // Over TLS the authenticator runs before every service: health wants a token too.
  auto health = grpc::health::v1::Health::NewStub(grpc::CreateChannel(
      absl::StrCat("127.0.0.1:", replicas_[0]->grpc_port), channel_credentials_));
  grpc::health::v1::HealthCheckRequest request;
  grpc::health::v1::HealthCheckResponse response;
  grpc::ClientContext without;
  EXPECT_EQ(health->Check(&without, request, &response).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  grpc::ClientContext with;
  with.AddMetadata("authorization", "Bearer shop-token-2");
  EXPECT_TRUE(health->Check(&with, request, &response).ok());
  EXPECT_TRUE(ListServices(grpc::CreateChannel(absl::StrCat("127.0.0.1:", replicas_[0]->grpc_port),
                                               channel_credentials_),
                           "Bearer shop-token-2")
                  .ok())
      << "reflection is on by default";
}

void TokenAuthTest::ExpectATokenNamesItsCallerAndRotates() {
  v1::Transaction out;
  EXPECT_EQ(GetWithToken("", "none", &out).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(GetWithToken("shop-token-2", "none", &out).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(GetWithToken("shop-token-1", "none", &out).error_code(), grpc::StatusCode::NOT_FOUND);

  grpc::ClientContext create;
  create.AddMetadata("authorization", "Bearer shop-token-1");
  const v1::CreateRtpRequest debit = Rtp("success.debit@bankart.flik", v1::RTP_KIND_IN_PERSON);
  v1::Transaction created;
  ASSERT_TRUE(A().CreateRtp(&create, debit, &created).ok());
  EXPECT_EQ(created.created_by(), "shop");

  // The operator rotates: the new token works within the reload interval, the old one stops.
  ASSERT_TRUE(WriteTokens({{"shop", "shop-token-2"}}).ok());
  bool rotated = false;
  for (absl::Time until = absl::Now() + absl::Seconds(5); !rotated && absl::Now() < until;) {
    absl::SleepFor(absl::Milliseconds(100));
    rotated = GetWithToken("shop-token-2", debit.merchant_transaction_id(), &out).ok();
  }
  EXPECT_TRUE(rotated);
  EXPECT_EQ(GetWithToken("shop-token-1", "none", &out).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
}

}  // namespace
}  // namespace flikpay
