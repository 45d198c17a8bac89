// flikpay-server: the PaymentService gRPC API, the Bankart callback listener and the admin port.
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/impl/server_builder_option.h>
#include <grpcpp/impl/server_builder_plugin.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "absl/cleanup/cleanup.h"
#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "core/caller_policy.h"
#include "gateway/bankart_gateway.h"
#include "grpc/health/v1/health.pb.h"
#include "server/caller_auth.h"
#include "server/event_hub.h"
#include "server/flags.h"
#include "server/grpc_service.h"
#include "server/http_listeners.h"
#include "server/log.h"
#include "server/metered_gateway.h"
#include "server/metrics.h"
#include "server/payment_service.h"
#include "server/readiness.h"
#include "server/reconciler.h"
#include "server/record_cache.h"
#include "server/tls_files.h"
#include "store/redis_store.h"

extern char** environ;

namespace flikpay::server {

// Removes gRPC's reflection plugin from a ServerBuilder (--grpc_reflection=false).
class WithoutReflection final : public grpc::ServerBuilderOption {
 public:
  void UpdateArguments(grpc::ChannelArguments*) override {}
  void UpdatePlugins(std::vector<std::unique_ptr<grpc::ServerBuilderPlugin>>* plugins) override {
    std::erase_if(*plugins, [](const std::unique_ptr<grpc::ServerBuilderPlugin>& plugin) {
      return plugin->name() == "proto_server_reflection";
    });
  }
};

}  // namespace flikpay::server

namespace {

// Start-up and shutdown lines: written whatever the log level (a refusal to start must be seen).
void LogAlways(flikpay::server::LogLevel level, const std::string& message) {
  flikpay::server::WriteLog(level, message, flikpay::server::LogFields(), /*always=*/true);
}

}  // namespace

int main(int argc, char** argv) {
  using namespace flikpay;  // NOLINT: main wires the whole program together
  // hiredis writes with write(): a socket Redis (or any peer) reset must fail the call, not end
  // the process.
  signal(SIGPIPE, SIG_IGN);
  // Debian's Abseil is built with deadlock detection on (it aborts on a lock-order cycle even in
  // an -DNDEBUG program): every Mutex acquisition then updates one process-wide lock graph under
  // one global lock, which the GetStatus profile showed. The server runs without it; the unit
  // tests keep the library's default, and clang's -Wthread-safety checks the lock annotations.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  absl::SetProgramUsageMessage(
      "flikpay-server: Flik payments through Bankart over gRPC.\nEvery flag may also be set as "
      "FLIKPAY_<FLAG NAME> (secrets also as ..._FILE).");
  absl::FlagsUsageConfig usage_config;
  usage_config.contains_help_flags = [](absl::string_view path) {
    return absl::StrContains(path, "server/flags");
  };
  absl::SetFlagsUsageConfig(usage_config);
  for (const std::string& unknown : server::UnknownEnvironmentVariables(environ)) {
    LogAlways(server::LogLevel::kWarning, absl::StrCat(unknown, " names no flag; ignored"));
  }
  if (absl::Status s = server::ApplyEnvironment([](const char* name) { return std::getenv(name); });
      !s.ok()) {
    LogAlways(server::LogLevel::kError, std::string(s.message()));
    return 2;
  }
  absl::ParseCommandLine(argc, argv);
  if (absl::Status s = server::ValidateServerFlags(); !s.ok()) {
    LogAlways(server::LogLevel::kError, std::string(s.message()));
    return 2;
  }
  absl::StatusOr<server::LogLevel> log_level =
      server::ParseLogLevel(absl::GetFlag(FLAGS_log_level));
  if (!log_level.ok()) {
    LogAlways(server::LogLevel::kError,
              absl::StrFormat("log_level (FLIKPAY_LOG_LEVEL): %s",
                              std::string(log_level.status().message()).c_str()));
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
  for (absl::string_view name : absl::StrSplit(absl::GetFlag(FLAGS_legacy_signature_connectors),
                                               ',', absl::SkipWhitespace())) {
    std::optional<gateway::Connector> connector =
        gateway::ParseConnectorName(absl::StripAsciiWhitespace(name));
    if (!connector.has_value() || gateway_config.connectors.count(*connector) == 0) {
      LogAlways(server::LogLevel::kError,
                absl::StrFormat(
                    "legacy_signature_connectors "
                    "(FLIKPAY_LEGACY_SIGNATURE_CONNECTORS): \"%s\" is not a configured connector",
                    std::string(name).c_str()));
      return 2;
    }
    gateway_config.connectors[*connector].legacy_forms = {.md5_body_hash = true,
                                                          .v2_message = true};
  }
  if (gateway_config.connectors.empty()) {
    LogAlways(server::LogLevel::kError, "no Bankart connector configured (--*_api_key)");
    return 2;
  }
  gateway::BankartGateway gateway(gateway_config);

  store::RedisConfig redis_config;
  redis_config.url = absl::GetFlag(FLAGS_redis_url);
  if (absl::Status s = store::ParseRedisUrl(redis_config.url).status(); !s.ok()) {
    LogAlways(server::LogLevel::kError, absl::StrFormat("redis_url (FLIKPAY_REDIS_URL): %s",
                                                        std::string(s.message()).c_str()));
    return 2;
  }
  redis_config.retention = absl::GetFlag(FLAGS_retention);
  redis_config.max_events = absl::GetFlag(FLAGS_max_events);
  redis_config.change_notices = absl::GetFlag(FLAGS_change_notices);
  redis_config.min_replica_acks = absl::GetFlag(FLAGS_min_replica_acks);
  redis_config.replica_ack_timeout = absl::GetFlag(FLAGS_replica_ack_timeout);
  server::Metrics metrics;
  redis_config.observe_round_trip = [&metrics](absl::string_view command, absl::Duration latency,
                                               const absl::Status& status) {
    metrics.CountRedisRoundTrip(command, latency, status);
  };
  store::RedisStore store(redis_config);
  if (absl::GetFlag(FLAGS_drop_change_notices)) {
    // A maintenance run (README, "Record cache": going back to a release before notices).
    if (redis_config.change_notices) {
      LogAlways(server::LogLevel::kError,
                "drop_change_notices: this replica still writes change notices "
                "(FLIKPAY_CHANGE_NOTICES); turn them off on every replica first");
      return 2;
    }
    absl::StatusOr<int64_t> dropped = store.DropChangeNotices();
    if (!dropped.ok()) {
      LogAlways(server::LogLevel::kError, absl::StrFormat("drop_change_notices: %s",
                                                          std::string(dropped.status().message())));
      return 1;
    }
    LogAlways(
        server::LogLevel::kInfo,
        absl::StrFormat("drop_change_notices: %d change notices deleted from the event stream",
                        *dropped));
    return 0;
  }

  server::HttpListener callbacks;
  if (absl::Status s = callbacks.Start(absl::GetFlag(FLAGS_callback_addr)); !s.ok()) {
    LogAlways(server::LogLevel::kError,
              absl::StrFormat("callbacks: %s", std::string(s.message()).c_str()));
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
  service_config.callback_replay_window = 2 * absl::GetFlag(FLAGS_callback_date_tolerance);
  // The gateway is called with the caller's deadline less the store margin, the time kept to store
  // its answer before the caller's deadline. Storing it waits for replicas (WAIT, up to
  // --replica_ack_timeout, 1 s by default) when --min_replica_acks is in effect: that wait comes
  // out of the margin too (1.25 s by default), or the answer would be stored after the caller had
  // given up on it.
  service_config.store_margin = server::StoreMargin(
      service_config.store_margin, store.min_replica_acks(), redis_config.replica_ack_timeout);
  // Empty only with --insecure_dev (ValidateServerFlags): the development default stays.
  if (!absl::GetFlag(FLAGS_fingerprint_key).empty()) {
    service_config.fingerprint_key = absl::GetFlag(FLAGS_fingerprint_key);
  }
  server::MeteredGateway metered_gateway(gateway, metrics);
  // GetStatus' cache of final records, kept coherent by the event hub (server/record_cache.h).
  std::unique_ptr<server::RecordCache> record_cache;
  if (absl::GetFlag(FLAGS_record_cache_size) > 0) {
    record_cache = std::make_unique<server::RecordCache>(
        static_cast<size_t>(absl::GetFlag(FLAGS_record_cache_size)), redis_config.retention,
        absl::GetFlag(FLAGS_record_cache_max_age));
  }
  server::PaymentService service(metered_gateway, store, metrics, service_config,
                                 record_cache.get());
  server::InstallCallbackRoutes(callbacks, service);
  // Declared after `service`, so it runs first on every return: a callback arriving while a later
  // start-up step fails must not reach a service already destroyed.
  auto stop_callbacks = absl::MakeCleanup([&callbacks] { callbacks.Stop(); });

  // Who may call: the policy, the way callers are identified, the port's credentials.
  server::GrpcServiceConfig grpc_config;
  std::unique_ptr<server::ReloadingFile<core::CallerPolicy>> policy_file;
  std::unique_ptr<server::TokenFile> token_file;
  const absl::Duration policy_interval = absl::GetFlag(FLAGS_policy_reload_interval);
  if (!absl::GetFlag(FLAGS_caller_policy).empty()) {
    absl::StatusOr<std::unique_ptr<server::ReloadingFile<core::CallerPolicy>>> opened =
        server::ReloadingFile<core::CallerPolicy>::Open(
            absl::GetFlag(FLAGS_caller_policy),
            [](const std::string& content) { return core::ParseCallerPolicy(content); },
            policy_interval, &metrics.config_reload_failures);
    if (!opened.ok()) {
      LogAlways(server::LogLevel::kError,
                absl::StrFormat("caller_policy (FLIKPAY_CALLER_POLICY): %s",
                                std::string(opened.status().message()).c_str()));
      return 2;
    }
    policy_file = *std::move(opened);
  }
  if (!absl::GetFlag(FLAGS_caller_tokens).empty()) {
    absl::StatusOr<std::unique_ptr<server::TokenFile>> opened = server::TokenFile::Open(
        absl::GetFlag(FLAGS_caller_tokens),
        [](const std::string& content) { return core::ParseTokenFile(content); }, policy_interval,
        &metrics.config_reload_failures);
    if (!opened.ok()) {
      LogAlways(server::LogLevel::kError,
                absl::StrFormat("caller_tokens (FLIKPAY_CALLER_TOKENS): %s",
                                std::string(opened.status().message()).c_str()));
      return 2;
    }
    token_file = *std::move(opened);
  }
  const bool mutual_tls = !absl::GetFlag(FLAGS_grpc_client_ca).empty();
  grpc_config.auth_mode = mutual_tls              ? server::AuthMode::kMutualTls
                          : token_file != nullptr ? server::AuthMode::kBearerToken
                                                  : server::AuthMode::kInsecureDev;
  auto dev_policy = std::make_shared<const core::CallerPolicy>(core::DevPolicy(server::kDevCaller));
  server::PolicySource policy = [&policy_file, dev_policy] {
    return policy_file != nullptr ? policy_file->current() : dev_policy;
  };
  std::shared_ptr<grpc::ServerCredentials> credentials = grpc::InsecureServerCredentials();
  std::unique_ptr<server::TlsFiles> tls_files;
  if (!absl::GetFlag(FLAGS_grpc_tls_cert).empty()) {
    absl::StatusOr<std::unique_ptr<server::TlsFiles>> opened = server::TlsFiles::Open(
        absl::GetFlag(FLAGS_grpc_tls_cert), absl::GetFlag(FLAGS_grpc_tls_key),
        absl::GetFlag(FLAGS_grpc_client_ca), absl::GetFlag(FLAGS_tls_reload_interval),
        &metrics.config_reload_failures);
    if (!opened.ok()) {
      LogAlways(server::LogLevel::kError, std::string(opened.status().message()));
      return 2;
    }
    tls_files = *std::move(opened);
    // gRPC re-reads the checked copies on its own schedule, so a rotated Kubernetes secret takes
    // effect without a restart (connections already open keep their handshake).
    auto provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
        tls_files->key_path(), tls_files->cert_path(), tls_files->client_ca_path(), 1);
    grpc::experimental::TlsServerCredentialsOptions options(provider);
    options.watch_identity_key_cert_pairs();
    if (mutual_tls) {
      options.watch_root_certs();
      // Requested and verified, not required by the handshake: a caller without a certificate
      // gets a clear UNAUTHENTICATED from CallerAuthenticator instead of a failed connection.
      options.set_cert_request_type(GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY);
    } else {
      options.set_cert_request_type(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
    }
    credentials = grpc::experimental::TlsServerCredentials(options);
  }
  grpc_config.tokens = token_file.get();
  if (grpc_config.auth_mode == server::AuthMode::kInsecureDev) {
    // Straight to stderr, whatever the log level: this must not be silenced.
    LogAlways(server::LogLevel::kWarning,
              absl::StrFormat(
                  "INSECURE: --insecure_dev: the gRPC port is plaintext and every "
                  "call is made as caller \"%s\"%s. Never run this way where real money moves.",
                  server::kDevCaller,
                  policy_file != nullptr ? " under the policy file" : " with every permission"));
  } else if (absl::GetFlag(FLAGS_grpc_tls_cert).empty()) {
    server::Log(server::LogLevel::kWarning,
                "the gRPC port is plaintext (bearer tokens behind a mesh that encrypts): tokens "
                "are checked by PaymentService; health%s answer without one",
                absl::GetFlag(FLAGS_grpc_reflection) ? " and reflection" : "");
  } else {
    // Only on TLS: gRPC 1.51 aborts if plaintext credentials are given an authenticator.
    credentials->SetAuthMetadataProcessor(std::make_shared<server::CallerAuthenticator>(
        grpc_config.auth_mode, token_file.get(), &metrics.auth_refusals));
  }

  server::EventHub hub(store, metrics, record_cache.get());
  grpc_config.max_buffered_events = static_cast<size_t>(absl::GetFlag(FLAGS_stream_buffer));
  grpc_config.max_stream_ids = static_cast<int>(absl::GetFlag(FLAGS_max_stream_ids));
  grpc_config.gateway_threads = static_cast<int>(absl::GetFlag(FLAGS_gateway_threads));
  grpc_config.gateway_queue = static_cast<size_t>(absl::GetFlag(FLAGS_gateway_queue));
  grpc_config.store_threads = static_cast<int>(absl::GetFlag(FLAGS_store_threads));
  grpc_config.store_queue = static_cast<size_t>(absl::GetFlag(FLAGS_store_queue));
  grpc_config.record_cache = record_cache.get();  // the same cache as `service`'s
  server::GrpcPaymentService grpc_service(service, store, hub, metrics, policy, grpc_config);

  grpc::EnableDefaultHealthCheckService(true);
  // Referencing the compiled-in health descriptors keeps the linker from dropping them, so
  // reflection can describe grpc.health.v1.Health.
  (void)grpc::health::v1::HealthCheckRequest::descriptor();
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  // Linking the reflection library registers its plugin with every ServerBuilder; switching it off
  // means taking the plugin out again.
  if (!absl::GetFlag(FLAGS_grpc_reflection)) {
    builder.SetOption(std::make_unique<server::WithoutReflection>());
  }
  int grpc_port = 0;
  builder.AddListeningPort(absl::GetFlag(FLAGS_grpc_addr), credentials, &grpc_port);
  builder.RegisterService(&grpc_service);
  const int age_ms =
      static_cast<int>(absl::ToInt64Milliseconds(absl::GetFlag(FLAGS_max_connection_age)));
  builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_MS, age_ms);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS, 30'000);
  // One caller's request cannot be large: the biggest legitimate one is a StreamStatus with
  // --max_stream_ids ids.
  builder.SetMaxReceiveMessageSize(
      static_cast<int>(absl::GetFlag(FLAGS_max_receive_message_bytes)));
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS,
                             static_cast<int>(absl::GetFlag(FLAGS_max_concurrent_streams)));
  // Keepalive: the server finds dead peers (a stream to a vanished pod would otherwise hold its
  // subscription forever) and refuses clients that ping too often (a cheap way to burn CPU).
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 60'000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 20'000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10'000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 2);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || grpc_port == 0) {
    LogAlways(server::LogLevel::kError,
              absl::StrFormat("cannot listen on %s", absl::GetFlag(FLAGS_grpc_addr).c_str()));
    return 1;
  }
  // Health: "" (the server) is SERVING while the process runs and is not draining: liveness.
  // flikpay.v1.PaymentService is SERVING only while Redis answers as well: readiness.
  grpc::HealthCheckServiceInterface* health = server->GetHealthCheckService();
  health->SetServingStatus(true);
  server::ReadinessWatch readiness(
      [&store] { return store.Ping().ok(); }, absl::GetFlag(FLAGS_readiness_interval),
      [health](bool ready) {
        health->SetServingStatus("flikpay.v1.PaymentService", ready);
        server::WriteLog(ready ? server::LogLevel::kInfo : server::LogLevel::kWarning,
                         ready ? "ready: Redis answers" : "not ready: Redis does not answer");
      });
  readiness.Start();
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
  // Its own I/O thread and workers: probes must answer while the callback port is flooded.
  server::HttpListener admin(server::AdminListenerOptions());
  server::InstallAdminRoutes(
      admin, metrics, [&serving] { return serving.load(); },
      [&readiness] { return readiness.ready(); }, callbacks);
  if (absl::Status s = admin.Start(absl::GetFlag(FLAGS_admin_addr)); !s.ok()) {
    LogAlways(server::LogLevel::kError,
              absl::StrFormat("admin: %s", std::string(s.message()).c_str()));
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
  LogAlways(server::LogLevel::kInfo, "draining");
  serving = false;
  readiness.Stop();
  // Every service NOT_SERVING, and no later change.
  health->SetServingStatus(false);
  health->Shutdown();
  grpc_service.StartDraining();
  hub.Shutdown();
  reconciler.Stop();
  server->Shutdown(std::chrono::system_clock::now() +
                   absl::ToChronoSeconds(absl::GetFlag(FLAGS_drain_time)));
  std::move(stop_callbacks).Invoke();
  admin.Stop();
  LogAlways(server::LogLevel::kInfo, "stopped");
  return 0;
}
