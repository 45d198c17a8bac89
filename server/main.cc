// flikpay-server: the PaymentService gRPC API, the Bankart callback listener
// and the admin port.
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "gateway/bankart_gateway.h"
#include "grpc/health/v1/health.pb.h"
#include "server/event_hub.h"
#include "server/grpc_service.h"
#include "server/http_listeners.h"
#include "server/metrics.h"
#include "server/payment_service.h"
#include "server/reconciler.h"
#include "store/redis_store.h"

ABSL_FLAG(std::string, grpc_addr, "0.0.0.0:50051",
          "gRPC listen address (internal)");
ABSL_FLAG(std::string, callback_addr, "0.0.0.0:8080",
          "HTTP listen address for Bankart's callbacks (the only public port)");
ABSL_FLAG(
    std::string, admin_addr, "0.0.0.0:9090",
    "HTTP listen address for /healthz, /readyz and /metrics (never public)");
ABSL_FLAG(std::string, redis_url, "redis://127.0.0.1:6379/0",
          "Redis, redis://host:port/db");
ABSL_FLAG(std::string, gateway_url, "https://gateway.bankart.si/api/v3",
          "Bankart's API v3 base URL (the local bankart-sim: "
          "http://127.0.0.1:8480/api/v3)");
ABSL_FLAG(std::string, public_callback_url, "",
          "the URL Bankart calls back (default: http://127.0.0.1:<callback "
          "port>/callbacks/bankart)");
ABSL_FLAG(std::string, api_user, "", "Bankart API username");
ABSL_FLAG(std::string, api_password, "", "Bankart API password (secret)");
ABSL_FLAG(std::string, password_mode, "sha1",
          "how the API password is sent: sha1 (SHA-1 x10, Bankart's clients) "
          "or plain");
ABSL_FLAG(std::string, ecommerce_api_key, "", "E-commerce connector API key");
ABSL_FLAG(std::string, ecommerce_shared_secret, "",
          "E-commerce connector shared secret");
ABSL_FLAG(std::string, in_person_api_key, "", "In-Person connector API key");
ABSL_FLAG(std::string, in_person_shared_secret, "",
          "In-Person connector shared secret");
ABSL_FLAG(std::string, out_of_band_api_key, "",
          "Out-of-Band connector API key");
ABSL_FLAG(std::string, out_of_band_shared_secret, "",
          "Out-of-Band connector shared secret");
ABSL_FLAG(std::string, payout_api_key, "", "Payout connector API key");
ABSL_FLAG(std::string, payout_shared_secret, "",
          "Payout connector shared secret");
ABSL_FLAG(absl::Duration, retention, absl::Hours(24 * 30),
          "how long transaction records and idempotency keys are kept (at "
          "least 30 days)");
ABSL_FLAG(int64_t, max_events, 1000000,
          "status events kept in the Redis stream (approx.)");
ABSL_FLAG(
    int64_t, stream_buffer, 1024,
    "events a StreamStatus subscriber may fall behind before it is ended");
ABSL_FLAG(absl::Duration, callback_date_tolerance, absl::Seconds(60),
          "how far a callback's Date may be from now");
ABSL_FLAG(absl::Duration, max_connection_age, absl::Minutes(10),
          "gRPC connections are closed after this long so streams rebalance "
          "onto new pods");
ABSL_FLAG(absl::Duration, reconcile_interval, absl::Seconds(1),
          "how often each replica's reconciler looks for transactions due a "
          "status check");
ABSL_FLAG(absl::Duration, unknown_check_after, absl::Seconds(10),
          "an UNKNOWN outcome is first checked this long after its gateway "
          "call ended");
ABSL_FLAG(
    absl::Duration, pending_check_after, absl::Minutes(5),
    "a PENDING transaction with no news this long is checked (lost callbacks)");
ABSL_FLAG(absl::Duration, expiry_grace, absl::Seconds(60),
          "a PENDING request-to-pay is checked this long after it expired");
ABSL_FLAG(
    absl::Duration, not_found_grace, absl::Seconds(60),
    "an UNKNOWN transaction Bankart does not know after this long is ERROR");
ABSL_FLAG(absl::Duration, recheck_after, absl::Seconds(10),
          "the reconciler checks one transaction at most this often (Bankart: "
          "10/min)");
ABSL_FLAG(int32_t, status_queries_per_minute, 60,
          "status queries all replicas together may make per minute (Bankart: "
          "60 per API user)");
ABSL_FLAG(absl::Duration, drain_time, absl::Seconds(20),
          "on SIGTERM: how long unary calls may take to finish (below "
          "Kubernetes' 30 s)");

namespace {

// Every flag can also come from FLIKPAY_<NAME>; secrets also from
// FLIKPAY_<NAME>_FILE (a mounted Kubernetes secret). The command line wins.
constexpr const char* kEnvFlags[] = {"grpc_addr",
                                     "callback_addr",
                                     "admin_addr",
                                     "redis_url",
                                     "gateway_url",
                                     "public_callback_url",
                                     "api_user",
                                     "api_password",
                                     "password_mode",
                                     "ecommerce_api_key",
                                     "ecommerce_shared_secret",
                                     "in_person_api_key",
                                     "in_person_shared_secret",
                                     "out_of_band_api_key",
                                     "out_of_band_shared_secret",
                                     "payout_api_key",
                                     "payout_shared_secret",
                                     "retention",
                                     "max_events",
                                     "stream_buffer",
                                     "callback_date_tolerance",
                                     "max_connection_age",
                                     "drain_time"};

bool LoadEnvironment() {
  for (const char* name : kEnvFlags) {
    const std::string env =
        absl::StrCat("FLIKPAY_", absl::AsciiStrToUpper(name));
    std::string value;
    if (const char* file = std::getenv((env + "_FILE").c_str())) {
      std::ifstream in(file);
      if (!in) {
        std::fprintf(stderr, "flikpay-server: cannot read %s_FILE\n",
                     env.c_str());
        return false;
      }
      std::stringstream content;
      content << in.rdbuf();
      value = std::string(absl::StripTrailingAsciiWhitespace(content.str()));
    } else if (const char* direct = std::getenv(env.c_str())) {
      value = direct;
    } else {
      continue;
    }
    absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
    std::string error;
    if (flag == nullptr || !flag->ParseFrom(value, &error)) {
      std::fprintf(stderr, "flikpay-server: %s: %s\n", env.c_str(),
                   error.c_str());
      return false;
    }
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace flikpay;  // NOLINT: main wires the whole program together
  absl::SetProgramUsageMessage(
      "flikpay-server: Flik payments through Bankart over gRPC.\n"
      "Every flag may also be set as FLIKPAY_<FLAG NAME> (secrets also as "
      "..._FILE).");
  absl::FlagsUsageConfig usage_config;
  usage_config.contains_help_flags = [](absl::string_view path) {
    return absl::StrContains(path, "server/main");
  };
  absl::SetFlagsUsageConfig(usage_config);
  if (!LoadEnvironment()) return 2;
  absl::ParseCommandLine(argc, argv);

  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  gateway::BankartConfig gateway_config;
  gateway_config.base_url = absl::GetFlag(FLAGS_gateway_url);
  gateway_config.api_user = absl::GetFlag(FLAGS_api_user);
  gateway_config.api_password = absl::GetFlag(FLAGS_api_password);
  gateway_config.password_mode = absl::GetFlag(FLAGS_password_mode) == "plain"
                                     ? gateway::PasswordMode::kPlain
                                     : gateway::PasswordMode::kSha1Rounds;
  gateway_config.callback_date_tolerance =
      absl::GetFlag(FLAGS_callback_date_tolerance);
  const std::pair<gateway::Connector, std::pair<std::string, std::string>>
      connectors[] = {{gateway::Connector::kEcommerce,
                       {absl::GetFlag(FLAGS_ecommerce_api_key),
                        absl::GetFlag(FLAGS_ecommerce_shared_secret)}},
                      {gateway::Connector::kInPerson,
                       {absl::GetFlag(FLAGS_in_person_api_key),
                        absl::GetFlag(FLAGS_in_person_shared_secret)}},
                      {gateway::Connector::kOutOfBand,
                       {absl::GetFlag(FLAGS_out_of_band_api_key),
                        absl::GetFlag(FLAGS_out_of_band_shared_secret)}},
                      {gateway::Connector::kPayout,
                       {absl::GetFlag(FLAGS_payout_api_key),
                        absl::GetFlag(FLAGS_payout_shared_secret)}}};
  for (const auto& [connector, credentials] : connectors) {
    if (!credentials.first.empty()) {
      gateway_config.connectors[connector] = {credentials.first,
                                              credentials.second};
    }
  }
  if (gateway_config.connectors.empty()) {
    std::fprintf(
        stderr,
        "flikpay-server: no Bankart connector configured (--*_api_key)\n");
    return 2;
  }
  gateway::BankartGateway gateway(gateway_config);

  store::RedisConfig redis_config;
  redis_config.url = absl::GetFlag(FLAGS_redis_url);
  redis_config.retention = absl::GetFlag(FLAGS_retention);
  redis_config.max_events = absl::GetFlag(FLAGS_max_events);
  redis_config.unknown_check_after = absl::GetFlag(FLAGS_unknown_check_after);
  redis_config.pending_check_after = absl::GetFlag(FLAGS_pending_check_after);
  redis_config.expiry_grace = absl::GetFlag(FLAGS_expiry_grace);
  store::RedisStore store(redis_config);

  server::Metrics metrics;
  server::HttpListener callbacks;
  if (absl::Status s = callbacks.Start(absl::GetFlag(FLAGS_callback_addr));
      !s.ok()) {
    std::fprintf(stderr, "flikpay-server: callbacks: %s\n",
                 std::string(s.message()).c_str());
    return 1;
  }
  server::ServiceConfig service_config;
  service_config.public_callback_url = absl::GetFlag(FLAGS_public_callback_url);
  if (service_config.public_callback_url.empty()) {
    service_config.public_callback_url = absl::StrCat(
        "http://127.0.0.1:", callbacks.port(), "/callbacks/bankart");
  }
  server::PaymentService service(gateway, store, metrics, service_config);
  server::InstallCallbackRoutes(callbacks, service);

  server::EventHub hub(store, metrics);
  server::GrpcServiceConfig grpc_config;
  grpc_config.max_buffered_events =
      static_cast<size_t>(absl::GetFlag(FLAGS_stream_buffer));
  server::GrpcPaymentService grpc_service(service, store, hub, metrics,
                                          grpc_config);

  grpc::EnableDefaultHealthCheckService(true);
  // Referencing the compiled-in health descriptors keeps the linker from
  // dropping them, so reflection can describe grpc.health.v1.Health.
  (void)grpc::health::v1::HealthCheckRequest::descriptor();
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int grpc_port = 0;
  builder.AddListeningPort(absl::GetFlag(FLAGS_grpc_addr),
                           grpc::InsecureServerCredentials(), &grpc_port);
  builder.RegisterService(&grpc_service);
  const int age_ms = static_cast<int>(
      absl::ToInt64Milliseconds(absl::GetFlag(FLAGS_max_connection_age)));
  builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_MS, age_ms);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS, 30'000);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || grpc_port == 0) {
    std::fprintf(stderr, "flikpay-server: cannot listen on %s\n",
                 absl::GetFlag(FLAGS_grpc_addr).c_str());
    return 1;
  }
  grpc::HealthCheckServiceInterface* health = server->GetHealthCheckService();
  health->SetServingStatus("flikpay.v1.PaymentService", true);
  health->SetServingStatus(true);
  hub.Start();
  server::ReconcilerConfig reconciler_config;
  reconciler_config.interval = absl::GetFlag(FLAGS_reconcile_interval);
  reconciler_config.not_found_grace = absl::GetFlag(FLAGS_not_found_grace);
  reconciler_config.recheck_after = absl::GetFlag(FLAGS_recheck_after);
  reconciler_config.status_queries_per_minute =
      absl::GetFlag(FLAGS_status_queries_per_minute);
  char host[256] = "flikpay";
  gethostname(host, sizeof(host) - 1);
  reconciler_config.owner = absl::StrCat(host, "/", getpid());
  server::Reconciler reconciler(service, store, metrics, reconciler_config);
  reconciler.Start();

  std::atomic<bool> serving{true};
  server::HttpListener admin;
  server::InstallAdminRoutes(
      admin, metrics, [&serving] { return serving.load(); },
      [&store] { return store.Ping().ok(); });
  if (absl::Status s = admin.Start(absl::GetFlag(FLAGS_admin_addr)); !s.ok()) {
    std::fprintf(stderr, "flikpay-server: admin: %s\n",
                 std::string(s.message()).c_str());
    return 1;
  }
  std::printf("flikpay-server listening grpc=%d callbacks=%d admin=%d\n",
              grpc_port, callbacks.port(), admin.port());
  std::fflush(stdout);

  int received = 0;
  sigwait(&signals, &received);
  // Shutdown order: stop advertising health, refuse new calls, end streams
  // (UNAVAILABLE, with a cursor to resume from), let unary calls finish within
  // the drain time, then stop listening for callbacks (Bankart retries any it
  // could not deliver).
  std::fprintf(stderr, "flikpay-server: draining\n");
  serving = false;
  health->SetServingStatus(false);
  grpc_service.StartDraining();
  hub.Shutdown();
  reconciler.Stop();
  server->Shutdown(std::chrono::system_clock::now() +
                   absl::ToChronoSeconds(absl::GetFlag(FLAGS_drain_time)));
  callbacks.Stop();
  admin.Stop();
  std::fprintf(stderr, "flikpay-server: stopped\n");
  return 0;
}
