// flikpay-server: the PaymentService gRPC API, the Bankart callback listener and the admin port.
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gateway/bankart_gateway.h"
#include "grpc/health/v1/health.pb.h"
#include "server/event_hub.h"
#include "server/flags.h"
#include "server/grpc_service.h"
#include "server/http_listeners.h"
#include "server/log.h"
#include "server/metrics.h"
#include "server/payment_service.h"
#include "server/reconciler.h"
#include "store/redis_store.h"

extern char** environ;

int main(int argc, char** argv) {
  using namespace flikpay;  // NOLINT: main wires the whole program together
  absl::SetProgramUsageMessage(
      "flikpay-server: Flik payments through Bankart over gRPC.\nEvery flag may also be set as "
      "FLIKPAY_<FLAG NAME> (secrets also as ..._FILE).");
  absl::FlagsUsageConfig usage_config;
  usage_config.contains_help_flags = [](absl::string_view path) {
    return absl::StrContains(path, "server/flags");
  };
  absl::SetFlagsUsageConfig(usage_config);
  for (const std::string& unknown : server::UnknownEnvironmentVariables(environ)) {
    std::fprintf(stderr, "flikpay-server: warning: %s names no flag; ignored\n", unknown.c_str());
  }
  if (absl::Status s = server::ApplyEnvironment([](const char* name) { return std::getenv(name); });
      !s.ok()) {
    std::fprintf(stderr, "flikpay-server: %s\n", std::string(s.message()).c_str());
    return 2;
  }
  absl::ParseCommandLine(argc, argv);
  if (absl::Status s = server::ValidateServerFlags(); !s.ok()) {
    std::fprintf(stderr, "flikpay-server: %s\n", std::string(s.message()).c_str());
    return 2;
  }
  absl::StatusOr<server::LogLevel> log_level =
      server::ParseLogLevel(absl::GetFlag(FLAGS_log_level));
  if (!log_level.ok()) {
    std::fprintf(stderr, "flikpay-server: log_level (FLIKPAY_LOG_LEVEL): %s\n",
                 std::string(log_level.status().message()).c_str());
    return 2;
  }
  server::SetLogLevel(*log_level);
  const std::string password_mode = absl::GetFlag(FLAGS_password_mode);

  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  gateway::BankartConfig gateway_config;
  gateway_config.base_url = absl::GetFlag(FLAGS_gateway_url);
  gateway_config.api_user = absl::GetFlag(FLAGS_api_user);
  gateway_config.api_password = absl::GetFlag(FLAGS_api_password);
  gateway_config.password_mode =
      password_mode == "plain" ? gateway::PasswordMode::kPlain : gateway::PasswordMode::kSha1Rounds;
  gateway_config.callback_date_tolerance = absl::GetFlag(FLAGS_callback_date_tolerance);
  // Each status query spends one of Bankart's shared per-minute quota (PaymentService takes it
  // first), so the adapter may not add attempts of its own; the reconciler's schedule retries.
  gateway_config.status_max_attempts = 1;
  const std::pair<gateway::Connector, std::pair<std::string, std::string>> connectors[] = {
      {gateway::Connector::kEcommerce,
       {absl::GetFlag(FLAGS_ecommerce_api_key), absl::GetFlag(FLAGS_ecommerce_shared_secret)}},
      {gateway::Connector::kInPerson,
       {absl::GetFlag(FLAGS_in_person_api_key), absl::GetFlag(FLAGS_in_person_shared_secret)}},
      {gateway::Connector::kOutOfBand,
       {absl::GetFlag(FLAGS_out_of_band_api_key), absl::GetFlag(FLAGS_out_of_band_shared_secret)}},
      {gateway::Connector::kPayout,
       {absl::GetFlag(FLAGS_payout_api_key), absl::GetFlag(FLAGS_payout_shared_secret)}}};
  for (const auto& [connector, credentials] : connectors) {
    if (!credentials.first.empty()) {
      gateway_config.connectors[connector] = {credentials.first, credentials.second};
    }
  }
  if (gateway_config.connectors.empty()) {
    std::fprintf(stderr, "flikpay-server: no Bankart connector configured (--*_api_key)\n");
    return 2;
  }
  gateway::BankartGateway gateway(gateway_config);

  store::RedisConfig redis_config;
  redis_config.url = absl::GetFlag(FLAGS_redis_url);
  if (absl::Status s = store::ParseRedisUrl(redis_config.url).status(); !s.ok()) {
    std::fprintf(stderr, "flikpay-server: redis_url (FLIKPAY_REDIS_URL): %s\n",
                 std::string(s.message()).c_str());
    return 2;
  }
  redis_config.retention = absl::GetFlag(FLAGS_retention);
  redis_config.max_events = absl::GetFlag(FLAGS_max_events);
  store::RedisStore store(redis_config);

  server::Metrics metrics;
  server::HttpListener callbacks;
  if (absl::Status s = callbacks.Start(absl::GetFlag(FLAGS_callback_addr)); !s.ok()) {
    std::fprintf(stderr, "flikpay-server: callbacks: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  server::ServiceConfig service_config;
  service_config.public_callback_url = absl::GetFlag(FLAGS_public_callback_url);
  if (service_config.public_callback_url.empty()) {
    service_config.public_callback_url =
        absl::StrCat("http://127.0.0.1:", callbacks.port(), "/callbacks/bankart");
  }
  service_config.schedule.unknown_check_after = absl::GetFlag(FLAGS_unknown_check_after);
  service_config.schedule.pending_check_after = absl::GetFlag(FLAGS_pending_check_after);
  service_config.schedule.expiry_grace = absl::GetFlag(FLAGS_expiry_grace);
  service_config.schedule.recheck_after = absl::GetFlag(FLAGS_recheck_after);
  service_config.schedule.pending_check_max = absl::GetFlag(FLAGS_pending_check_max);
  service_config.status_queries_per_window = absl::GetFlag(FLAGS_status_queries_per_minute);
  service_config.status_quota_window = absl::GetFlag(FLAGS_status_quota_window);
  server::PaymentService service(gateway, store, metrics, service_config);
  server::InstallCallbackRoutes(callbacks, service);

  server::EventHub hub(store, metrics);
  server::GrpcServiceConfig grpc_config;
  grpc_config.max_buffered_events = static_cast<size_t>(absl::GetFlag(FLAGS_stream_buffer));
  server::GrpcPaymentService grpc_service(service, store, hub, metrics, grpc_config);

  grpc::EnableDefaultHealthCheckService(true);
  // Referencing the compiled-in health descriptors keeps the linker from dropping them, so
  // reflection can describe grpc.health.v1.Health.
  (void)grpc::health::v1::HealthCheckRequest::descriptor();
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int grpc_port = 0;
  builder.AddListeningPort(absl::GetFlag(FLAGS_grpc_addr), grpc::InsecureServerCredentials(),
                           &grpc_port);
  builder.RegisterService(&grpc_service);
  const int age_ms =
      static_cast<int>(absl::ToInt64Milliseconds(absl::GetFlag(FLAGS_max_connection_age)));
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
    std::fprintf(stderr, "flikpay-server: admin: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  std::printf("flikpay-server listening grpc=%d callbacks=%d admin=%d\n", grpc_port,
              callbacks.port(), admin.port());
  std::fflush(stdout);

  int received = 0;
  sigwait(&signals, &received);
  // Shutdown order: stop advertising health, refuse new calls, end streams (UNAVAILABLE, with a
  // cursor to resume from), let unary calls finish within the drain time, then stop listening for
  // callbacks (Bankart retries any it could not deliver).
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
